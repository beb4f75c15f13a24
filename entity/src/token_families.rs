use sea_orm::entity::prelude::*;

/// One login's chain of refresh tokens. Rotation replaces `current_jti`; a
/// token of the family that is neither current nor (within the grace
/// interval) the one just replaced is a replay, and revokes the family.
/// One row per family, never one per token.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_families")]
pub struct Model {
    /// The jti of the family's first refresh token (the one login issued).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: i64,
    /// The only refresh token of the family that may still be rotated.
    pub current_jti: String,
    /// The jti of the access token issued together with `current_jti`, and
    /// their shared `iat`: enough to answer a retried refresh with the very
    /// same pair, without storing any token.
    pub access_jti: String,
    pub issued_at: i64,
    /// The refresh token that `current_jti` replaced, and when.
    pub previous_jti: Option<String>,
    pub rotated_at: Option<DateTimeUtc>,
    /// Expiry of `current_jti`; after it (plus leeway) the row is purged.
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
