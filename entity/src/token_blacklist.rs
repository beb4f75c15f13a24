use sea_orm::entity::prelude::*;

/// A refresh token that may no longer be used. Rows are kept until the token
/// would have expired anyway, then purged.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_blacklist")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The token's `jti`; unique so that two concurrent blacklistings of one
    /// token cannot both succeed.
    #[sea_orm(unique)]
    pub jti: String,
    pub user_id: Option<i64>,
    pub expires_at: DateTimeUtc,
    pub blacklisted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
