//! Groups and memberships: the flows behind the staff endpoints and
//! `tessera groups`. Who may call them is the caller's business (the HTTP
//! layer lets staff only).

use super::{App, AuthError};
use crate::groups::{self, CreateGroupError, Group};
use crate::users::{self, User};
use crate::validation::{self, FieldErrors};

/// DRF's message for a `SlugRelatedField` naming nothing.
fn no_group_named(name: &str) -> String {
    format!("Object with name={name} does not exist.")
}

impl App {
    /// Every group, by name.
    pub async fn groups(&self) -> Result<Vec<Group>, AuthError> {
        Ok(groups::list(self.store()?).await?)
    }

    /// The group `id`.
    pub async fn group(&self, id: i64) -> Result<Group, AuthError> {
        groups::find(self.store()?, id)
            .await?
            .ok_or(AuthError::NoSuchGroup)
    }

    /// A new group named `name` (read by the caller, `None` where reading
    /// failed and `errors` says why).
    pub async fn create_group(
        &self,
        name: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<Group, AuthError> {
        if let Some(name) = &name {
            for message in validation::group_name(name) {
                errors.add("name", message);
            }
        }
        let Some(name) = name.filter(|_| errors.is_empty()) else {
            return Err(errors.into());
        };
        match groups::create(self.store()?, &name).await {
            Ok(group) => {
                tracing::info!(group_id = group.id, "group created");
                Ok(group)
            }
            // Django's unique message for the model field, as DRF's
            // ModelSerializer words it.
            Err(CreateGroupError::NameTaken) => {
                Err(FieldErrors::single("name", "group with this name already exists.").into())
            }
            Err(CreateGroupError::Store(e)) => Err(e.into()),
        }
    }

    /// Deletes the group `id` and its memberships. The names already in
    /// tokens stay there until those tokens expire.
    pub async fn delete_group(&self, id: i64) -> Result<(), AuthError> {
        if !groups::delete(self.store()?, id).await? {
            return Err(AuthError::NoSuchGroup);
        }
        tracing::info!(group_id = id, "group deleted");
        Ok(())
    }

    /// The names of the groups of user `id` (none for no such user).
    pub async fn group_names(&self, id: i64) -> Result<Vec<String>, AuthError> {
        Ok(groups::names_of(self.store()?, id).await?)
    }

    /// The groups of `user`.
    pub async fn groups_of(&self, user: &User) -> Result<Vec<Group>, AuthError> {
        Ok(groups::of_user(self.store()?, user.id).await?)
    }

    /// Adds `user` to the group named `name` (read by the caller); already
    /// being in it is no error. Returns the user's groups.
    pub async fn add_to_group(
        &self,
        user: &User,
        name: Option<String>,
        errors: FieldErrors,
    ) -> Result<Vec<Group>, AuthError> {
        let Some(name) = name.filter(|_| errors.is_empty()) else {
            return Err(errors.into());
        };
        let db = self.store()?;
        let Some(group) = groups::find_by_name(db, &name).await? else {
            return Err(FieldErrors::single("name", no_group_named(&name)).into());
        };
        match groups::add_member(db, user.id, group.id).await {
            Ok(true) => tracing::info!(
                user_id = user.id,
                group_id = group.id,
                "user added to group"
            ),
            Ok(false) => {}
            // The user or the group was deleted meanwhile.
            Err(groups::MemberError::Gone) => return Err(AuthError::NoSuchGroup),
            Err(groups::MemberError::Store(e)) => return Err(e.into()),
        }
        self.groups_of(user).await
    }

    /// Removes `user` from the group named `name`: 404 if there is no such
    /// group or the user is not in it.
    pub async fn remove_from_group(&self, user: &User, name: &str) -> Result<(), AuthError> {
        // No group has such a name; the database need not be asked (and
        // PostgreSQL would refuse a NUL).
        if name.contains('\0') || name.chars().count() > validation::GROUP_NAME_MAX_LEN {
            return Err(AuthError::NoSuchGroup);
        }
        let db = self.store()?;
        let group = groups::find_by_name(db, name)
            .await?
            .ok_or(AuthError::NoSuchGroup)?;
        if !groups::remove_member(db, user.id, group.id).await? {
            return Err(AuthError::NoSuchGroup);
        }
        tracing::info!(
            user_id = user.id,
            group_id = group.id,
            "user removed from group"
        );
        Ok(())
    }

    /// The user named `username`, for the command line.
    pub async fn user_named(&self, username: &str) -> Result<User, AuthError> {
        users::find_by_username(self.store()?, username)
            .await?
            .ok_or(AuthError::NoSuchUser)
    }
}
