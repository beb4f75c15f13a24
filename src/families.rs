//! Data access for refresh-token families: one row per login, updated in
//! place by each rotation, so reuse of an old token can be recognised
//! without storing one row per token. What a token's standing in its row
//! means is decided in `refresh.rs`.

use chrono::{DateTime, Utc};
use entity::token_families::{self, Column, Model};
use sea_orm::sea_query::{Expr, Func, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryTrait, UpdateMany,
};

use crate::cache::SyncMark;

use crate::db::{StoreError, purge_in_batches};
use crate::tokens::Pair;

/// A new row: `current_jti` is the family's only usable token so far
/// (none, when it is born revoked).
#[allow(clippy::too_many_arguments)]
fn new_row(
    id: &str,
    user_id: i64,
    current_jti: &str,
    access_jti: &str,
    issued_at: i64,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
) -> token_families::ActiveModel {
    token_families::ActiveModel {
        id: Set(id.to_owned()),
        user_id: Set(user_id),
        current_jti: Set(current_jti.to_owned()),
        access_jti: Set(access_jti.to_owned()),
        issued_at: Set(issued_at),
        previous_jti: Set(None),
        rotated_at: Set(None),
        expires_at: Set(expires_at),
        revoked_at: Set(revoked_at),
        created_at: Set(now),
    }
}

/// Records the family a login starts, named after its refresh token's jti.
pub async fn start(
    db: &impl ConnectionTrait,
    user_id: i64,
    pair: &Pair,
    issued_at: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = new_row(
        &pair.refresh.jti,
        user_id,
        &pair.refresh.jti,
        &pair.access.jti,
        issued_at,
        crate::time::from_epoch(pair.refresh.exp),
        now,
        None,
    );
    token_families::Entity::insert(row).exec(db).await?;
    Ok(())
}

/// A refresh token whose family has no row yet: issued by Simple JWT,
/// before this table existed, or kept from a database restored from an
/// older backup.
pub struct Orphan<'a> {
    /// Its family's id (the token's own jti: it starts the family).
    pub id: &'a str,
    pub jti: &'a str,
    pub user_id: i64,
    pub expires_at: DateTime<Utc>,
}

impl Orphan<'_> {
    /// Its family's row with the token current: no access token of ours
    /// belongs to it, and it is never replayed, since only a rotation
    /// (which sets both) makes a token "just rotated".
    fn row(
        &self,
        now: DateTime<Utc>,
        revoked_at: Option<DateTime<Utc>>,
    ) -> token_families::ActiveModel {
        new_row(
            self.id,
            self.user_id,
            self.jti,
            "",
            now.timestamp(),
            self.expires_at,
            now,
            revoked_at,
        )
    }
}

/// Records a family for an orphan token with that token as its current
/// one, so its rotations are tracked from now on. A concurrent adoption of
/// the same token is not an error.
pub async fn adopt(
    db: &impl ConnectionTrait,
    token: &Orphan<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Model>, StoreError> {
    insert_if_absent(db, token.row(now, None)).await?;
    find(db, token.id).await
}

/// Records an orphan token's family as revoked, in one statement, so no
/// moment exists in which its row calls a logged-out token current. A row
/// already there (adopted meanwhile) is left for the caller to revoke.
pub async fn insert_revoked(
    db: &impl ConnectionTrait,
    token: &Orphan<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_if_absent(db, token.row(now, Some(now))).await
}

/// Inserts `row` unless its family has a row already.
async fn insert_if_absent(
    db: &impl ConnectionTrait,
    row: token_families::ActiveModel,
) -> Result<(), StoreError> {
    token_families::Entity::insert(row)
        .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, StoreError> {
    Ok(token_families::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?)
}

/// A rotation: `pair`, issued at `now`, replaces `presented` as the
/// current tokens of family `id`.
pub struct Rotation<'a> {
    pub id: &'a str,
    pub presented: &'a str,
    pub pair: &'a Pair,
    pub now: DateTime<Utc>,
    /// The cache's sync notification for the update to send, if any (see
    /// [`update_one`]).
    pub mark: Option<&'a SyncMark>,
}

impl Rotation<'_> {
    /// When the row expires after the rotation: with the new refresh token.
    pub fn expires_at(&self) -> DateTime<Utc> {
        crate::time::from_epoch(self.pair.refresh.exp)
    }

    /// The update that makes the pair the family's current tokens; the row
    /// then lives as long as the new refresh token.
    fn update(&self) -> UpdateMany<token_families::Entity> {
        token_families::Entity::update_many()
            .col_expr(
                Column::CurrentJti,
                Expr::value(self.pair.refresh.jti.clone()),
            )
            .col_expr(Column::AccessJti, Expr::value(self.pair.access.jti.clone()))
            .col_expr(Column::IssuedAt, Expr::value(self.now.timestamp()))
            .col_expr(Column::PreviousJti, Expr::value(self.presented.to_owned()))
            .col_expr(Column::RotatedAt, Expr::value(self.now))
            .col_expr(Column::ExpiresAt, Expr::value(self.expires_at()))
            .filter(Column::Id.eq(self.id))
            .filter(Column::RevokedAt.is_null())
    }
}

/// Runs a rotation's update of one row; whether it changed it. With a
/// mark (PostgreSQL), the changed row also sends the cache's sync
/// notification, in the same statement: one round trip where a separate
/// `settle` took two.
async fn update_one(
    db: &impl ConnectionTrait,
    update: UpdateMany<token_families::Entity>,
    mark: Option<&SyncMark>,
) -> Result<bool, StoreError> {
    let Some(mark) = mark else {
        return Ok(update.exec(db).await?.rows_affected == 1);
    };
    let mut statement = update.into_query();
    statement.returning(
        Query::returning().expr(
            Func::cust("pg_notify")
                .arg(mark.channel())
                .arg(mark.payload()),
        ),
    );
    let statement = db.get_database_backend().build(&statement);
    Ok(db.query_all_raw(statement).await?.len() == 1)
}

/// Makes the rotation's pair the family's current tokens if the presented
/// token still is its current refresh token: a compare-and-swap in one
/// statement, so of concurrent rotations of one token exactly one gets
/// `true`.
pub async fn rotate(db: &impl ConnectionTrait, r: &Rotation<'_>) -> Result<bool, StoreError> {
    update_one(
        db,
        r.update().filter(Column::CurrentJti.eq(r.presented)),
        r.mark,
    )
    .await
}

/// Records a rotation made without reuse detection (several tokens of the
/// family may then be live): the newest pair becomes current, and the row
/// lives as long as the newest token, so a revocation keeps covering every
/// token of the family until the last one expires. `false` when the family
/// is revoked (or gone): nothing may be issued in it.
pub async fn advance(db: &impl ConnectionTrait, r: &Rotation<'_>) -> Result<bool, StoreError> {
    update_one(db, r.update(), r.mark).await
}

/// The update that revokes the families it is filtered to, sparing those
/// already revoked (their first revocation time stays).
fn revoking(now: DateTime<Utc>) -> UpdateMany<token_families::Entity> {
    token_families::Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::RevokedAt.is_null())
}

/// Revokes one family. Returns whether this call did it (so the event is
/// reported once).
pub async fn revoke(
    db: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = revoking(now).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(updated.rows_affected == 1)
}

/// Revokes every live family of a user; returns how many.
pub async fn revoke_user(
    db: &impl ConnectionTrait,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let updated = revoking(now)
        .filter(Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}

/// Deletes families whose newest token expired before `before` (the
/// blacklist's cutoff: every token of the family is dead by then), `batch`
/// at a time. Returns the number deleted.
pub async fn purge_expired(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    purge_in_batches::<token_families::Entity, String>(
        db,
        token_families::Column::Id,
        token_families::Column::ExpiresAt,
        before,
        batch,
    )
    .await
}
