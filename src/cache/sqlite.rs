//! SQLite's `PRAGMA data_version`, read on a connection of our own.
//!
//! The pool's connections each run on a worker thread of sqlx, so asking
//! one costs the same round trip as the read the cache saves. This is a
//! plain connection (rusqlite, on the same libsqlite3 as sqlx) asked on the
//! caller's thread: a read lock on the WAL index and a counter, a few
//! microseconds. It never writes, so every change of the value is a commit
//! by another connection, this process's pool included.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

pub struct DataVersion {
    conn: Mutex<Connection>,
}

impl DataVersion {
    pub fn open(path: &Path) -> Result<Self, String> {
        let conn = crate::local::open_read_only(path)
            .map_err(|e| format!("cannot open {} to watch it: {e}", path.display()))?;
        let this = Self {
            conn: Mutex::new(conn),
        };
        this.read()
            .map_err(|e| format!("cannot read the data version of {}: {e}", path.display()))?;
        Ok(this)
    }

    fn read(&self) -> rusqlite::Result<u64> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn.prepare_cached("PRAGMA data_version")?;
        stmt.query_row([], |row| row.get::<_, i64>(0))
            .map(|v| v.cast_unsigned())
    }

    /// The current data version; `None` when it cannot be read (the file
    /// is locked for longer than a moment, or gone): no entry is served.
    pub fn current(&self) -> Option<u64> {
        self.read().ok()
    }
}
