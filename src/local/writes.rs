//! SQLite: a token rotation's one statement, written on the caller's
//! thread.
//!
//! Through the pool, that statement is two hand-offs to sqlx's worker
//! thread and back (the statement, then the ping sqlx sends as the
//! connection goes back to the pool): on a 2-core VM, half of a rotation's
//! CPU was futexes and the scheduler around them. Here it is one `UPDATE`
//! on a connection of our own, with the pool's settings where they matter
//! (WAL, `synchronous = NORMAL`, foreign keys). It does not wait for locks
//! held by other connections (no busy timeout: SQLite's own short retries
//! while a WAL index is being rebuilt aside): when another connection holds
//! the write lock, or committed since this one's snapshot, the statement
//! fails at once, nothing is written, and the caller writes through the
//! pool instead. Requests wanting the connection at once queue for it
//! without holding a thread.
//!
//! Checkpoints, with their syncs to disk, stay off the runtime's threads:
//! this connection makes none of its own (`wal_autocheckpoint = 0`), and
//! every [`CHECKPOINT_EVERY`] writes it runs a PASSIVE one on a blocking
//! thread, holding the connection so that no write of ours lands meanwhile
//! and the WAL, fully copied, starts over at the next write. One sync
//! stays on the request's thread: that next write syncs the WAL's new
//! header, as SQLite does wherever a WAL starts over (once per
//! [`CHECKPOINT_EVERY`] writes, not per checkpoint's pages). Tried before:
//! SQLite's automatic checkpoint here (its syncs stalled the request's
//! thread, the only async worker on 2 cores); PASSIVE through the pool
//! while this connection went on writing (always a few pages behind: the
//! WAL never started over and grew to 800 MB in 10 s); RESTART through the
//! pool (it holds every writer off; rotations waiting in the pool's busy
//! handler took p99 from 5 to 33 ms).
//!
//! Dates are written as sqlx writes them, so rows read the same whichever
//! path wrote them.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags};

use super::LocalError;
use crate::families::Rotation;

/// Local writes between two checkpoints. A rotation dirties two or three
/// pages, so the WAL stays near SQLite's own threshold of 1,000 pages.
pub const CHECKPOINT_EVERY: u32 = 400;

/// [`crate::families::advance`]'s update.
const ADVANCE: &str = "UPDATE token_families SET current_jti = ?1, access_jti = ?2, \
     issued_at = ?3, previous_jti = ?4, rotated_at = ?5, expires_at = ?6 \
     WHERE id = ?7 AND revoked_at IS NULL";
/// [`crate::families::rotate`]'s: the same, if the presented token (`?4`)
/// is still current.
const ROTATE: &str = "UPDATE token_families SET current_jti = ?1, access_jti = ?2, \
     issued_at = ?3, previous_jti = ?4, rotated_at = ?5, expires_at = ?6 \
     WHERE id = ?7 AND revoked_at IS NULL AND current_jti = ?4";

/// A date as sqlx's SQLite driver encodes one.
fn sqlx_text(d: DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A read-write connection to the database file (see the module
/// documentation).
pub struct LocalWrites {
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

/// The connection, and the writes made on it since its last checkpoint.
struct Writer {
    conn: Connection,
    since_checkpoint: u32,
}

impl std::fmt::Debug for LocalWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWrites").finish_non_exhaustive()
    }
}

impl LocalWrites {
    /// The connection for the database file at `path`, which must exist
    /// and be in WAL mode (the pool has created and migrated it).
    pub fn open(path: &Path) -> Result<Self, String> {
        let fail = |e: rusqlite::Error| format!("cannot open {} to write it: {e}", path.display());
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        // A moment's wait here, at start-up, rather than no local writes
        // for the life of the process because another instance was
        // migrating.
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(fail)?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(fail)? {
            // The file is write-protected: every write would fail here first.
            return Err(format!("{} can only be read", path.display()));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Outside WAL a writer blocks readers: not on the caller's thread.
            return Err(format!("{} is not in WAL mode", path.display()));
        }
        // As the pool's connections (db.rs): NORMAL in WAL syncs at
        // checkpoints and when the WAL starts over, not at every commit
        // (FULL, the default). Checkpoints: see the module documentation.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
        )
        .map_err(fail)?;
        conn.busy_timeout(std::time::Duration::ZERO).map_err(fail)?;
        Ok(Self {
            writer: Arc::new(tokio::sync::Mutex::new(Writer {
                conn,
                since_checkpoint: 0,
            })),
        })
    }

    /// Runs the update of [`crate::families::rotate`] (`compare`) or of
    /// [`crate::families::advance`]; whether it changed the row (the
    /// compare-and-swap won; the family was not revoked). An error means
    /// nothing was written: SQLite rolls an autocommit statement back when
    /// it fails.
    pub async fn rotate(&self, r: &Rotation<'_>, compare: bool) -> Result<bool, LocalError> {
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        let changed = writer
            .conn
            .prepare_cached(if compare { ROTATE } else { ADVANCE })?
            .execute(rusqlite::params![
                r.pair.refresh.jti,
                r.pair.access.jti,
                r.now.timestamp(),
                r.presented,
                sqlx_text(r.now),
                sqlx_text(r.expires_at()),
                r.id,
            ])?;
        writer.since_checkpoint += 1;
        if writer.since_checkpoint >= CHECKPOINT_EVERY {
            writer.since_checkpoint = 0;
            tokio::task::spawn_blocking(move || {
                // Busy (1) when another connection was checkpointing or a
                // reader kept the WAL: the next round copies the rest.
                match writer
                    .conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        row.get::<_, i64>(0)
                    }) {
                    Ok(busy) => tracing::debug!(busy, "WAL checkpoint"),
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            });
        }
        Ok(changed == 1)
    }
}
