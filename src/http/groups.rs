//! Groups (Django's `auth_group`) and users' memberships, for staff. A
//! user's group names can travel in tokens (`jwt.extra_claims`) and in
//! forward auth's `X-Auth-Groups`.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use super::auth::Staff;
use super::body::FormBody;
use super::error::{ApiError, Errors, FieldErrors, error_set};
use crate::app::App;
use crate::groups::Group;

#[derive(Tags)]
enum Tag {
    /// Groups and memberships (staff only).
    Groups,
}

/// A group.
#[derive(Object)]
pub struct GroupOut {
    pub id: i64,
    pub name: String,
}

impl From<Group> for GroupOut {
    fn from(g: Group) -> Self {
        Self {
            id: g.id,
            name: g.name,
        }
    }
}

fn all(groups: Vec<Group>) -> Json<Vec<GroupOut>> {
    Json(groups.into_iter().map(GroupOut::from).collect())
}

/// A group name.
// Documents the body for OpenAPI; FormBody reads it field by field.
#[allow(dead_code)]
#[derive(Object)]
pub struct GroupName {
    /// At most 150 characters, no comma or control character; unique.
    pub name: String,
}

#[derive(ApiResponse)]
pub enum Created {
    /// Created.
    #[oai(status = 201)]
    Created(Json<GroupOut>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

error_set!(
    /// Errors of a staff read.
    ReadErrors: 401, 403, 503
);
error_set!(
    /// Errors of a staff read or delete of one thing.
    OneErrors: 401, 403, 404, 503
);
error_set!(
    /// Errors of a staff write with a body.
    WriteErrors: 400, 401, 403, 404, 413, 415, 503
);

/// An `{id}` path segment; anything but a number names nothing.
fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

#[derive(Default)]
pub struct GroupsApi;

#[OpenApi]
impl GroupsApi {
    /// List groups
    ///
    /// Every group, by name.
    #[oai(
        path = "/api/v1/groups/",
        method = "get",
        tag = "Tag::Groups",
        operation_id = "groups_list"
    )]
    async fn list(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
    ) -> Result<Json<Vec<GroupOut>>, Errors<ReadErrors>> {
        Ok(all(app.groups().await?))
    }

    /// Create a group
    ///
    /// `name`: at most 150 characters, unique, no comma or control
    /// character (names travel comma-separated in `X-Auth-Groups`).
    #[oai(
        path = "/api/v1/groups/",
        method = "post",
        tag = "Tag::Groups",
        operation_id = "groups_create"
    )]
    async fn create(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
        body: FormBody<GroupName>,
    ) -> Result<Created, Errors<WriteErrors>> {
        let mut errors = FieldErrors::default();
        let name = body.required("name", &mut errors);
        let group = app.create_group(name, errors).await?;
        Ok(Created::Created(Json(group.into())))
    }

    /// A group by id
    ///
    /// `id` and `name`.
    #[oai(
        path = "/api/v1/groups/:id/",
        method = "get",
        tag = "Tag::Groups",
        operation_id = "groups_read"
    )]
    async fn read(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
        id: Path<String>,
    ) -> Result<Json<GroupOut>, Errors<OneErrors>> {
        Ok(Json(app.group(parse_id(&id)?).await?.into()))
    }

    /// Delete a group
    ///
    /// Its memberships go with it. Tokens issued before keep the name in
    /// their claims until they expire.
    #[oai(
        path = "/api/v1/groups/:id/",
        method = "delete",
        tag = "Tag::Groups",
        operation_id = "groups_delete"
    )]
    async fn delete(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
        id: Path<String>,
    ) -> Result<NoContent, Errors<OneErrors>> {
        app.delete_group(parse_id(&id)?).await?;
        Ok(NoContent::NoContent)
    }

    /// A user's groups
    ///
    /// The groups of user `id`, by name: what the `groups` claim of their
    /// next access token will carry.
    #[oai(
        path = "/api/v1/auth/users/:id/groups/",
        method = "get",
        tag = "Tag::Groups",
        operation_id = "user_groups_list"
    )]
    async fn user_groups(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
        id: Path<String>,
    ) -> Result<Json<Vec<GroupOut>>, Errors<OneErrors>> {
        let user = app.user(parse_id(&id)?).await?;
        Ok(all(app.groups_of(&user).await?))
    }

    /// Add a user to a group
    ///
    /// By the group's name; adding a user to a group they are in already
    /// changes nothing. Answers the user's groups. Access tokens carry the
    /// change from the next refresh on.
    #[oai(
        path = "/api/v1/auth/users/:id/groups/",
        method = "post",
        tag = "Tag::Groups",
        operation_id = "user_groups_add"
    )]
    async fn add(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
        id: Path<String>,
        body: FormBody<GroupName>,
    ) -> Result<Json<Vec<GroupOut>>, Errors<WriteErrors>> {
        let user = app.user(parse_id(&id)?).await?;
        let mut errors = FieldErrors::default();
        let name = body.required("name", &mut errors);
        Ok(all(app.add_to_group(&user, name, errors).await?))
    }

    /// Remove a user from a group
    ///
    /// 404 if there is no such group or the user is not in it.
    #[oai(
        path = "/api/v1/auth/users/:id/groups/:name/",
        method = "delete",
        tag = "Tag::Groups",
        operation_id = "user_groups_remove"
    )]
    async fn remove(
        &self,
        _staff: Staff,
        app: poem::web::Data<&App>,
        id: Path<String>,
        name: Path<String>,
    ) -> Result<NoContent, Errors<OneErrors>> {
        let user = app.user(parse_id(&id)?).await?;
        app.remove_from_group(&user, &name).await?;
        Ok(NoContent::NoContent)
    }
}
