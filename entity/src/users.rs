use sea_orm::entity::prelude::*;

/// A Django-style user. `password` is an argon2id PHC string, never plain text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    pub email: String,
    pub password: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: DateTimeUtc,
    pub last_login: Option<DateTimeUtc>,
    /// Refresh tokens issued (`iat`) before this instant are refused; set on
    /// a password change. Whole seconds, rounded up.
    pub tokens_valid_after: Option<DateTimeUtc>,
    /// Refresh and sliding tokens issued before this instant are refused;
    /// set by logout_all and by an administrator. Whole seconds.
    pub refresh_valid_after: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::auth_tokens::Entity")]
    AuthTokens,
}

impl Related<super::auth_tokens::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::AuthTokens.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
