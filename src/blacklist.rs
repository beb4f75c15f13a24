//! Data access for the refresh-token blacklist, the only state that tokens need.

use chrono::{DateTime, Utc};
use entity::token_blacklist;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter,
};

use crate::db::{StoreError, purge_in_batches};

/// Blacklists `jti`. Returns `false` when it already was: the unique index
/// makes this a single atomic test-and-set, so of N concurrent calls for one
/// token exactly one gets `true`. `ON CONFLICT DO NOTHING` rather than a
/// caught unique violation, which would abort an enclosing PostgreSQL
/// transaction.
pub async fn add(
    db: &impl ConnectionTrait,
    jti: &str,
    user_id: Option<i64>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = token_blacklist::ActiveModel {
        jti: Set(jti.to_owned()),
        user_id: Set(user_id),
        expires_at: Set(expires_at),
        blacklisted_at: Set(now),
        ..Default::default()
    };
    let inserted = token_blacklist::Entity::insert(row)
        .on_conflict(
            OnConflict::column(token_blacklist::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

pub async fn contains(db: &DatabaseConnection, jti: &str) -> Result<bool, StoreError> {
    let n = token_blacklist::Entity::find()
        .filter(token_blacklist::Column::Jti.eq(jti))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// The purge cutoff: a row may go once its token can no longer pass
/// verification anywhere, that is after `exp + leeway`, with a margin for
/// clocks that disagree between instances.
pub fn purge_cutoff(now: DateTime<Utc>, leeway: std::time::Duration) -> DateTime<Utc> {
    const CLOCK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
    let leeway = chrono::TimeDelta::from_std(leeway).unwrap_or(chrono::TimeDelta::MAX);
    now.checked_sub_signed(leeway)
        .and_then(|t| t.checked_sub_signed(CLOCK_MARGIN))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Deletes rows whose token expired before `before` (see [`purge_cutoff`]),
/// `batch` at a time so no statement holds the table for long. Returns the
/// number deleted.
pub async fn purge_expired(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    purge_in_batches::<token_blacklist::Entity, i64>(
        db,
        token_blacklist::Column::Id,
        token_blacklist::Column::ExpiresAt,
        before,
        batch,
    )
    .await
}
