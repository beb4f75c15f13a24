//! SQLite: a token rotation's one statement, written on the caller's
//! thread.
//!
//! Through the pool, that statement is two hand-offs to sqlx's worker
//! thread and back (the statement, then the ping sqlx sends as the
//! connection goes back to the pool): on a 2-core VM, half of a rotation's
//! CPU was futexes and the scheduler around them. Here it is one `UPDATE`
//! on a connection of our own, with the pool's settings where they matter
//! (WAL, `synchronous = NORMAL`, foreign keys), and it never waits for a
//! lock:
//! - no busy timeout: when another connection holds the write lock, or
//!   committed since this one's snapshot, the statement fails at once,
//!   nothing is written, and the caller writes through the pool instead;
//! - a second request finding the connection in use also goes to the pool.
//!
//! SQLite's automatic checkpoint stays on: once the WAL holds 1,000 pages,
//! the commit that crossed the mark copies them into the database file (a
//! millisecond or two on the caller's thread, every few hundred
//! rotations). Checkpoints through the pool instead were tried: a PASSIVE
//! one runs beside the next writes, always a few pages behind, so the WAL
//! never starts over and grew to 800 MB in 10 s; a RESTART one holds every
//! writer off, and the rotations waiting in the pool's busy handler took
//! p99 from 5 to 33 ms.
//!
//! Dates are written as sqlx writes them, so rows read the same whichever
//! path wrote them.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags};

use super::LocalError;
use crate::families::Rotation;

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
    conn: Mutex<Connection>,
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
        conn.busy_timeout(std::time::Duration::ZERO).map_err(fail)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Outside WAL a writer blocks readers: not on the caller's thread.
            return Err(format!("{} is not in WAL mode", path.display()));
        }
        // As the pool's connections (db.rs): NORMAL in WAL syncs only at
        // checkpoints (FULL, the default, would sync every commit).
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(fail)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs the update of [`crate::families::rotate`] (`compare`) or of
    /// [`crate::families::advance`]; whether it changed the row (the
    /// compare-and-swap won; the family was not revoked). An error means
    /// nothing was written: SQLite rolls an autocommit statement back when
    /// it fails.
    pub fn rotate(&self, r: &Rotation<'_>, compare: bool) -> Result<bool, LocalError> {
        let Ok(conn) = self.conn.try_lock() else {
            return Err(LocalError::InUse);
        };
        let mut stmt = conn.prepare_cached(if compare { ROTATE } else { ADVANCE })?;
        let changed = stmt.execute(rusqlite::params![
            r.pair.refresh.jti,
            r.pair.access.jti,
            r.now.timestamp(),
            r.presented,
            sqlx_text(r.now),
            sqlx_text(r.expires_at()),
            r.id,
        ])?;
        Ok(changed == 1)
    }
}
