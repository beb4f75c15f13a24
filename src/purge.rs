//! Deleting what expired tokens leave behind: blacklist rows and token
//! families. One function for the background loop and
//! `flushexpiredtokens`; several instances may run it at once, since each
//! batch deletes rows by id and never conflicts with another.

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;

use crate::config::Settings;
use crate::db::StoreError;
use crate::{blacklist, families};

/// How many rows one purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub blacklist: u64,
    pub families: u64,
}

/// Deletes rows whose tokens can no longer pass verification anywhere at
/// `now` (see [`blacklist::purge_cutoff`]), `blacklist.purge_batch` at a
/// time.
pub async fn purge_expired(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Purged, StoreError> {
    let cutoff = blacklist::purge_cutoff(now, settings.jwt.leeway);
    let batch = settings.blacklist.purge_batch;
    Ok(Purged {
        blacklist: blacklist::purge_expired(db, cutoff, batch).await?,
        families: families::purge_expired(db, cutoff, batch).await?,
    })
}
