//! Data access for the `users` table. No HTTP types here.

use chrono::{DateTime, Utc};
use entity::users;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};

use crate::db::{StoreError, is_unique_violation};
use crate::validation;

pub use users::Model as User;

/// Refresh and sliding tokens issued before this instant are refused: the
/// later of a password change and a refresh cutoff (logout_all, an
/// administrator).
pub fn refresh_cutoff(user: &User) -> Option<DateTime<Utc>> {
    user.tokens_valid_after.max(user.refresh_valid_after)
}

/// Sets `user`'s refresh cutoff to `at`, never earlier than it was.
pub async fn cut_off_refresh<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    users::Entity::update_many()
        .col_expr(users::Column::RefreshValidAfter, Expr::value(at))
        .filter(users::Column::Id.eq(id))
        .filter(
            users::Column::RefreshValidAfter
                .is_null()
                .or(users::Column::RefreshValidAfter.lt(at)),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// A user about to be created; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// `false` until activated by the mailed link.
    pub is_active: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user with that username already exists")]
    UsernameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A write refused by the unique index on `username` is "taken".
fn taken_or_store(e: sea_orm::DbErr) -> CreateUserError {
    if is_unique_violation(&e) {
        CreateUserError::UsernameTaken
    } else {
        CreateUserError::Store(e.into())
    }
}

/// Inserts the user in one statement; the unique index on `username`, not a
/// prior lookup, decides between two concurrent registrations of one name.
pub async fn create(
    db: &DatabaseConnection,
    new: NewUser,
    now: DateTime<Utc>,
) -> Result<User, CreateUserError> {
    let row = users::ActiveModel {
        username: Set(validation::normalize_username(&new.username)),
        email: Set(new.email),
        password: Set(new.password_hash),
        is_active: Set(new.is_active),
        is_staff: Set(new.is_staff),
        is_superuser: Set(new.is_superuser),
        date_joined: Set(now),
        last_login: Set(None),
        tokens_valid_after: Set(None),
        refresh_valid_after: Set(None),
        ..Default::default()
    };
    row.insert(db).await.map_err(taken_or_store)
}

pub async fn find_by_id(db: &DatabaseConnection, id: i64) -> Result<Option<User>, StoreError> {
    Ok(users::Entity::find_by_id(id).one(db).await?)
}

/// Exact, case-sensitive match of the normalized name, as Django's
/// default username lookup.
pub async fn find_by_username(
    db: &impl sea_orm::ConnectionTrait,
    username: &str,
) -> Result<Option<User>, StoreError> {
    Ok(users::Entity::find()
        .filter(users::Column::Username.eq(validation::normalize_username(username)))
        .one(db)
        .await?)
}

pub async fn set_last_login(
    db: &DatabaseConnection,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(
            users::Column::LastLogin,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Every user, in id order (for staff).
pub async fn list_all(db: &DatabaseConnection) -> Result<Vec<User>, StoreError> {
    use sea_orm::QueryOrder;
    Ok(users::Entity::find()
        .order_by_asc(users::Column::Id)
        .all(db)
        .await?)
}

/// Sets the email; with `deactivate`, the account waits for a new
/// activation too.
pub async fn set_email(
    db: &DatabaseConnection,
    id: i64,
    email: &str,
    deactivate: bool,
) -> Result<(), StoreError> {
    let mut update = users::Entity::update_many()
        .col_expr(users::Column::Email, sea_orm::sea_query::Expr::value(email));
    if deactivate {
        update = update.col_expr(
            users::Column::IsActive,
            sea_orm::sea_query::Expr::value(false),
        );
    }
    update.filter(users::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Stores a new password hash and revokes earlier refresh tokens, in the
/// transaction or connection given.
pub async fn set_password<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: i64,
    password_hash: &str,
    tokens_valid_after: DateTime<Utc>,
) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(
            users::Column::Password,
            sea_orm::sea_query::Expr::value(password_hash),
        )
        .col_expr(
            users::Column::TokensValidAfter,
            sea_orm::sea_query::Expr::value(tokens_valid_after),
        )
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Renames a user; the unique index settles a race for one name.
pub async fn set_username(
    db: &DatabaseConnection,
    id: i64,
    username: &str,
) -> Result<(), CreateUserError> {
    users::Entity::update_many()
        .col_expr(
            users::Column::Username,
            sea_orm::sea_query::Expr::value(validation::normalize_username(username)),
        )
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await
        .map_err(taken_or_store)?;
    Ok(())
}

/// Replaces `old` by `new` as the user's password hash if `old` is still
/// it; whether it was. Earlier tokens stay valid: the password is the same.
pub async fn replace_hash(
    db: &DatabaseConnection,
    id: i64,
    old: &str,
    new: &str,
) -> Result<bool, StoreError> {
    let done = users::Entity::update_many()
        .col_expr(
            users::Column::Password,
            sea_orm::sea_query::Expr::value(new),
        )
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::Password.eq(old))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Users whose password hash is not Tessera's argon2id (imported from
/// Django and not logged in since), unusable ones aside.
pub async fn count_legacy_hashes(db: &DatabaseConnection) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(users::Entity::find()
        .filter(users::Column::Password.not_like("$argon2id$%"))
        .filter(users::Column::Password.not_like("!%"))
        .count(db)
        .await?)
}

/// The users with exactly this email and activity whose password is usable
/// (Django marks an unusable one with a leading `!`), as Djoser's
/// `get_user` looks them up for a reset or a resent activation.
pub async fn find_by_email(
    db: &DatabaseConnection,
    email: &str,
    is_active: bool,
) -> Result<Vec<User>, StoreError> {
    use sea_orm::QueryOrder;
    let found = users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .filter(users::Column::IsActive.eq(is_active))
        .order_by_asc(users::Column::Id)
        .all(db)
        .await?;
    Ok(found
        .into_iter()
        .filter(|u| !u.password.starts_with('!'))
        .collect())
}

/// An update of `user` that applies only while what an account token
/// covers (password, last login, email) is as `user` has it: of two uses
/// of one token, one wins.
fn while_unchanged(user: &User) -> sea_orm::UpdateMany<users::Entity> {
    let update = users::Entity::update_many()
        .filter(users::Column::Id.eq(user.id))
        .filter(users::Column::Password.eq(user.password.as_str()))
        .filter(users::Column::Email.eq(user.email.as_str()));
    // At the token's precision, whole seconds: a timestamp stored with
    // another sub-second form (imported from Django) still matches.
    match user.last_login {
        Some(at) => {
            let second =
                at - chrono::TimeDelta::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
            update
                .filter(users::Column::LastLogin.gte(second))
                .filter(users::Column::LastLogin.lt(second + chrono::TimeDelta::seconds(1)))
        }
        None => update.filter(users::Column::LastLogin.is_null()),
    }
}

/// Activates `user` if still inactive; whether this call did.
pub async fn activate(db: &DatabaseConnection, user: &User) -> Result<bool, StoreError> {
    let done = while_unchanged(user)
        .col_expr(
            users::Column::IsActive,
            sea_orm::sea_query::Expr::value(true),
        )
        .filter(users::Column::IsActive.eq(false))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// A password reset by token: the new hash, last login now (Djoser's
/// mark of a used link) and earlier refresh tokens revoked, if `user` is
/// unchanged since the token was checked.
pub async fn reset_password<C: sea_orm::ConnectionTrait>(
    db: &C,
    user: &User,
    password_hash: &str,
    now: DateTime<Utc>,
    tokens_valid_after: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use sea_orm::sea_query::Expr;
    let done = while_unchanged(user)
        .col_expr(users::Column::Password, Expr::value(password_hash))
        .col_expr(users::Column::LastLogin, Expr::value(now))
        .col_expr(
            users::Column::TokensValidAfter,
            Expr::value(tokens_valid_after),
        )
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// A username reset by token: the new name and last login now, if `user`
/// is unchanged since the token was checked.
pub async fn reset_username(
    db: &DatabaseConnection,
    user: &User,
    username: &str,
    now: DateTime<Utc>,
) -> Result<bool, CreateUserError> {
    use sea_orm::sea_query::Expr;
    let done = while_unchanged(user)
        .col_expr(
            users::Column::Username,
            Expr::value(validation::normalize_username(username)),
        )
        .col_expr(users::Column::LastLogin, Expr::value(now))
        .exec(db)
        .await
        .map_err(taken_or_store)?;
    Ok(done.rows_affected == 1)
}

/// Deletes a user; their opaque keys go with them (foreign key cascade).
pub async fn delete(db: &DatabaseConnection, id: i64) -> Result<(), StoreError> {
    users::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
