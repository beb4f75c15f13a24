//! Djoser's user endpoints under `/api/v1/auth/users/`.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::SecretString;

use super::auth::{Auth, JwtOrToken};
use super::body::FormBody;
use super::client::throttle;
use super::error::{ApiError, Errors, FieldErrors, error_set};
use crate::app::{App, Registration};
use crate::throttle::Scope;
use crate::users::User;
use crate::validation;

#[derive(Tags)]
enum Tag {
    /// Djoser's user management at `/api/v1/auth/users/`. Protected
    /// operations accept `Bearer <access JWT>` or `Token <key>`.
    Users,
}

/// A new account. Other fields (`is_staff`...) are ignored.
// Documents the body for OpenAPI; FormBody reads it field by field.
#[allow(dead_code)]
#[derive(Object)]
pub struct UserCreate {
    /// Optional.
    pub email: Option<String>,
    pub username: String,
    #[oai(write_only)]
    pub password: String,
}

/// The created account, in Djoser's field order.
#[derive(Object)]
pub struct UserCreated {
    pub email: String,
    pub username: String,
    pub id: i64,
}

/// A user, as Djoser's `UserSerializer` shows one.
#[derive(Object)]
pub struct UserOut {
    pub email: String,
    pub id: i64,
    pub username: String,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            email: u.email,
            id: u.id,
            username: u.username,
        }
    }
}

/// The writable fields of a user: only `email` (`username` is read-only here).
#[allow(dead_code)]
#[derive(Object)]
pub struct UserUpdate {
    pub email: Option<String>,
}

#[allow(dead_code)]
#[derive(Object)]
pub struct CurrentPassword {
    #[oai(write_only)]
    pub current_password: String,
}

#[allow(dead_code)]
#[derive(Object)]
pub struct SetPassword {
    #[oai(write_only)]
    pub new_password: String,
    #[oai(write_only)]
    pub current_password: String,
}

#[allow(dead_code)]
#[derive(Object)]
pub struct SetUsername {
    #[oai(write_only)]
    pub current_password: String,
    pub new_username: String,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<UserCreated>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

error_set!(
    /// Errors of registration.
    RegisterErrors: 400, 413, 415, 429, 503
);
error_set!(
    /// Errors of an authenticated read.
    ReadErrors: 401, 503
);
error_set!(
    /// Errors of reading one user.
    ReadOneErrors: 401, 404, 503
);
error_set!(
    /// Errors of an authenticated write with a body.
    WriteErrors: 400, 401, 413, 415, 503
);
error_set!(
    /// Errors of the operations that check `current_password`.
    SetPasswordErrors: 400, 401, 413, 415, 429, 503
);
error_set!(
    /// Errors of a write to one user.
    WriteOneErrors: 400, 401, 404, 413, 415, 503
);
error_set!(
    /// Errors of deleting a user.
    DeleteErrors: 400, 401, 403, 404, 413, 415, 429, 503
);

/// An `{id}` path segment; anything but a number names no user.
fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound)
}

/// Reads an update body, then updates `user`.
async fn update(
    app: &App,
    user: User,
    body: &FormBody<UserUpdate>,
) -> Result<Json<UserOut>, ApiError> {
    let mut errors = FieldErrors::default();
    let email = body.optional("email", &mut errors);
    Ok(Json(app.update_email(user, email, errors).await?.into()))
}

#[derive(Default)]
pub struct UsersApi;

#[OpenApi]
impl UsersApi {
    /// Register a user
    ///
    /// Username: letters, digits and `@.+-_`, at most 150 characters, unique
    /// (case-sensitive). Email: optional. Password: Django's validators (not
    /// too similar to the username or email, at least 8 characters, not a
    /// common password, not entirely numeric).
    #[oai(
        path = "/api/v1/auth/users/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_create"
    )]
    async fn create(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<UserCreate>,
    ) -> Result<RegisterResponse, Errors<RegisterErrors>> {
        let mut errors = FieldErrors::default();
        let email = body.optional("email", &mut errors);
        let username = body.required("username", &mut errors);
        let password = body.required("password", &mut errors);
        let retype = body.required_if(
            app.settings().users.user_create_password_retype,
            "re_password",
            &mut errors,
        );
        // Keyed by the name that would be stored.
        let key = username.as_deref().map(validation::normalize_username);
        throttle(&app, req, Scope::Register, key.as_deref()).await?;
        let registration = Registration {
            username,
            email,
            password: password.map(SecretString::from),
            password_retype: retype.map(SecretString::from),
            superuser: false,
        };
        let user = app.register(registration, errors).await?;
        Ok(RegisterResponse::Created(Json(UserCreated {
            email: user.email,
            username: user.username,
            id: user.id,
        })))
    }

    /// List users
    ///
    /// Staff see every user; others see only themselves.
    #[oai(
        path = "/api/v1/auth/users/",
        method = "get",
        tag = "Tag::Users",
        operation_id = "users_list"
    )]
    async fn list(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
    ) -> Result<Json<Vec<UserOut>>, Errors<ReadErrors>> {
        let users = app.visible_users(&auth.user).await?;
        Ok(Json(users.into_iter().map(UserOut::from).collect()))
    }

    /// The current user
    ///
    /// `id`, `username` and `email` of the caller.
    #[oai(
        path = "/api/v1/auth/users/me/",
        method = "get",
        tag = "Tag::Users",
        operation_id = "users_me_read"
    )]
    async fn me(&self, auth: Auth<JwtOrToken>) -> Result<Json<UserOut>, Errors<ReadErrors>> {
        Ok(Json(auth.user.into()))
    }

    /// Update the current user (email)
    ///
    /// PUT and PATCH alike: `email` is the only writable field and optional
    /// in both; `username` is read-only here (see `set_username/`).
    #[oai(
        path = "/api/v1/auth/users/me/",
        method = "put",
        method = "patch",
        tag = "Tag::Users"
    )]
    async fn me_update(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        body: FormBody<UserUpdate>,
    ) -> Result<Json<UserOut>, Errors<WriteErrors>> {
        Ok(update(&app, auth.user, &body).await?)
    }

    /// Delete the current user
    ///
    /// Needs `current_password`. The user's opaque keys go with them; their
    /// refresh tokens are refused from then on.
    #[oai(
        path = "/api/v1/auth/users/me/",
        method = "delete",
        tag = "Tag::Users",
        operation_id = "users_me_delete"
    )]
    async fn me_delete(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<CurrentPassword>,
    ) -> Result<NoContent, Errors<SetPasswordErrors>> {
        throttle(&app, req, Scope::SetPassword, Some(&auth.user.username)).await?;
        let mut errors = FieldErrors::default();
        let current = body.required("current_password", &mut errors);
        app.delete_user(&auth.user, &auth.user, current, errors)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// A user by id
    ///
    /// Yourself, or anyone for staff; other users are hidden (404).
    #[oai(
        path = "/api/v1/auth/users/:id/",
        method = "get",
        tag = "Tag::Users",
        operation_id = "users_read"
    )]
    async fn read(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        id: Path<String>,
    ) -> Result<Json<UserOut>, Errors<ReadOneErrors>> {
        let user = app.visible_user(&auth.user, parse_id(&id)?).await?;
        Ok(Json(user.into()))
    }

    /// Update a user by id (email)
    ///
    /// Yourself, or anyone for staff; PUT and PATCH alike.
    #[oai(
        path = "/api/v1/auth/users/:id/",
        method = "put",
        method = "patch",
        tag = "Tag::Users"
    )]
    async fn update_by_id(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        id: Path<String>,
        body: FormBody<UserUpdate>,
    ) -> Result<Json<UserOut>, Errors<WriteOneErrors>> {
        let user = app.visible_user(&auth.user, parse_id(&id)?).await?;
        Ok(update(&app, user, &body).await?)
    }

    /// Delete a user by id
    ///
    /// Yourself, or anyone for staff (403 otherwise); `current_password` is
    /// the requester's own.
    #[oai(
        path = "/api/v1/auth/users/:id/",
        method = "delete",
        tag = "Tag::Users",
        operation_id = "users_delete"
    )]
    async fn delete(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        id: Path<String>,
        req: &Request,
        body: FormBody<CurrentPassword>,
    ) -> Result<NoContent, Errors<DeleteErrors>> {
        throttle(&app, req, Scope::SetPassword, Some(&auth.user.username)).await?;
        let id = parse_id(&id)?;
        let target = app.user(id).await?;
        let mut errors = FieldErrors::default();
        let current = body.required("current_password", &mut errors);
        app.delete_user(&auth.user, &target, current, errors)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Change the password
    ///
    /// Unlike Djoser, this ends the user's opaque keys at once and refuses
    /// refresh tokens issued before the change. Access tokens stay valid
    /// until they expire (`jwt.access_token_lifetime`).
    #[oai(
        path = "/api/v1/auth/users/set_password/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_set_password"
    )]
    async fn set_password(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<SetPassword>,
    ) -> Result<NoContent, Errors<SetPasswordErrors>> {
        throttle(&app, req, Scope::SetPassword, Some(&auth.user.username)).await?;
        let mut errors = FieldErrors::default();
        let new_password = body.required("new_password", &mut errors);
        let retype = body.required_if(
            app.settings().users.set_password_retype,
            "re_new_password",
            &mut errors,
        );
        let current = body.required("current_password", &mut errors);
        app.set_password(&auth.user, new_password, current, retype, errors)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Change the username
    ///
    /// Needs the current password. The new name goes through the same rules
    /// as at registration (normalized, at most 150 characters, not taken).
    #[oai(
        path = "/api/v1/auth/users/set_username/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_set_username"
    )]
    async fn set_username(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<SetUsername>,
    ) -> Result<NoContent, Errors<SetPasswordErrors>> {
        throttle(&app, req, Scope::SetPassword, Some(&auth.user.username)).await?;
        let mut errors = FieldErrors::default();
        let current = body.required("current_password", &mut errors);
        let new_username = body.required("new_username", &mut errors);
        let retype = body.required_if(
            app.settings().users.set_username_retype,
            "re_new_username",
            &mut errors,
        );
        app.set_username(&auth.user, current, new_username, retype, errors)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Log out everywhere (JWT)
    ///
    /// Every refresh and sliding token of the current user issued until now
    /// is refused from then on (401 `Token is blacklisted`), those Simple
    /// JWT issued before a migration too: one cutoff time per user, checked
    /// at every refresh, and every refresh-token family revoked. Access
    /// tokens already issued stay valid until they expire
    /// (`jwt.access_token_lifetime`); opaque keys have their own
    /// `token/logoutall/`.
    #[oai(
        path = "/api/v1/auth/users/me/logout_all/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_me_logout_all"
    )]
    async fn logout_all(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
    ) -> Result<NoContent, Errors<ReadErrors>> {
        app.logout_all(auth.user.id).await?;
        Ok(NoContent::NoContent)
    }

    /// Log a user out everywhere (JWT)
    ///
    /// As `me/logout_all/`, for user `id`: staff may end anyone's sessions
    /// (a stolen laptop, a departure), others only their own (404 for
    /// anyone else, as reads).
    #[oai(
        path = "/api/v1/auth/users/:id/logout_all/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_logout_all"
    )]
    async fn logout_all_of(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
        id: Path<String>,
    ) -> Result<NoContent, Errors<ReadOneErrors>> {
        let user = app.visible_user(&auth.user, parse_id(&id)?).await?;
        app.logout_all(user.id).await?;
        Ok(NoContent::NoContent)
    }
}
