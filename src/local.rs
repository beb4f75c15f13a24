//! SQLite: the hot reads on a connection of our own, asked on the caller's
//! thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every
//! statement through the pool is a hand-off to that thread and back. On a
//! 2-core VM the context switches cost about 100 µs of CPU per statement
//! (a third of all CPU of a token rotation was the scheduler and futexes
//! around sqlx's channel), where SQLite runs the statement itself in a few.
//! The reads that the request paths make most (a user by id, a token family
//! by id, whether a jti is blacklisted) are asked here instead: rusqlite on
//! the same libsqlite3, a few microseconds each. In WAL mode a reader never
//! waits for a writer, and this connection has no busy timeout, so a locked
//! file is an error at once, never a wait on the caller's thread.
//!
//! What this module cannot map exactly as sqlx would (a date stored in
//! another format than sqlx writes, a value of another type) is an error,
//! and the caller reads through the pool instead: the answer never depends
//! on which path read it. Writes go through the pool, except a token
//! rotation's one statement ([`LocalWrites`]).

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use entity::token_families::Model as FamilyRow;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use crate::users::User;

mod writes;

pub use writes::{CHECKPOINT_EVERY, LocalWrites};

/// Why a read or write here did not answer; the caller goes through the
/// pool instead.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// Not RFC 3339, the format sqlx writes (its reader knows others).
    #[error("column {0}: a date in another format")]
    Date(&'static str),
}

/// A read-only connection to the database file (see the module
/// documentation).
pub struct LocalReads {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for LocalReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalReads").finish_non_exhaustive()
    }
}

const USER: &str = "SELECT id, username, email, password, is_active, is_staff, is_superuser, \
     date_joined, last_login, tokens_valid_after, refresh_valid_after FROM users WHERE id = ?1";
const FAMILY: &str = "SELECT id, user_id, current_jti, access_jti, issued_at, previous_jti, \
     rotated_at, expires_at, revoked_at, created_at FROM token_families WHERE id = ?1";
const BLACKLISTED: &str = "SELECT EXISTS (SELECT 1 FROM token_blacklist WHERE jti = ?1)";

/// A date column as sqlx reads one that sqlx wrote.
fn date(row: &Row<'_>, i: usize, name: &'static str) -> Result<DateTime<Utc>, LocalError> {
    let text: String = row.get(i)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| LocalError::Date(name))
}

fn optional_date(
    row: &Row<'_>,
    i: usize,
    name: &'static str,
) -> Result<Option<DateTime<Utc>>, LocalError> {
    match row.get_ref(i)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => date(row, i, name).map(Some),
    }
}

fn user(row: &Row<'_>) -> Result<User, LocalError> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        password: row.get(3)?,
        is_active: row.get(4)?,
        is_staff: row.get(5)?,
        is_superuser: row.get(6)?,
        date_joined: date(row, 7, "date_joined")?,
        last_login: optional_date(row, 8, "last_login")?,
        tokens_valid_after: optional_date(row, 9, "tokens_valid_after")?,
        refresh_valid_after: optional_date(row, 10, "refresh_valid_after")?,
    })
}

fn family(row: &Row<'_>) -> Result<FamilyRow, LocalError> {
    Ok(FamilyRow {
        id: row.get(0)?,
        user_id: row.get(1)?,
        current_jti: row.get(2)?,
        access_jti: row.get(3)?,
        issued_at: row.get(4)?,
        previous_jti: row.get(5)?,
        rotated_at: optional_date(row, 6, "rotated_at")?,
        expires_at: date(row, 7, "expires_at")?,
        revoked_at: optional_date(row, 8, "revoked_at")?,
        created_at: date(row, 9, "created_at")?,
    })
}

/// A connection to the database file at `path` for reading on the
/// caller's thread (here and the cache's data version): read-only, so a
/// file the service may only read does not stop it and nothing on it can
/// ever write; no mutex of SQLite's own, since its owner holds one; no
/// busy timeout (rusqlite's default is 5 s, which would be a wait on the
/// caller's thread).
pub(crate) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
}

impl LocalReads {
    /// The connection for the database file at `path`, which must exist
    /// (the pool has created and migrated it).
    pub fn open(path: &Path) -> Result<Self, String> {
        let conn = open_read_only(path)
            .map_err(|e| format!("cannot open {} to read it: {e}", path.display()))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `read` on the connection, with `sql` prepared (and kept).
    fn with<T>(
        &self,
        sql: &str,
        read: impl FnOnce(&mut rusqlite::CachedStatement<'_>) -> Result<T, LocalError>,
    ) -> Result<T, LocalError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare_cached(sql)?;
        read(&mut stmt)
    }

    /// The user `id`.
    pub fn user(&self, id: i64) -> Result<Option<User>, LocalError> {
        self.with(USER, |stmt| {
            let mut rows = stmt.query([id])?;
            rows.next()?.map(user).transpose()
        })
    }

    /// The token family `id`.
    pub fn family(&self, id: &str) -> Result<Option<FamilyRow>, LocalError> {
        self.with(FAMILY, |stmt| {
            let mut rows = stmt.query([id])?;
            rows.next()?.map(family).transpose()
        })
    }

    /// Whether `jti` is on the blacklist.
    pub fn blacklisted(&self, jti: &str) -> Result<bool, LocalError> {
        self.with(BLACKLISTED, |stmt| {
            Ok(stmt
                .query_row([jti], |row| row.get::<_, bool>(0))
                .optional()?
                .unwrap_or(false))
        })
    }
}

#[cfg(test)]
mod tests;
