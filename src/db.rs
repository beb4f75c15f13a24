//! Connecting to the database (SQLite or PostgreSQL), migrating it under a
//! lock, and knowing whether it is reachable right now.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DbErr, EntityTrait, QueryFilter, QuerySelect, RuntimeErr, TransactionTrait, TryGetableMany,
};

use migration::MigratorTrait;

use crate::config::DatabaseSettings;

/// A storage failure, split by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (pool timeout, connection
    /// refused or lost): worth a 503 and a retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(DbErr),
}

/// Whether `err` means "the database is not reachable" rather than "the
/// statement failed".
pub fn is_unreachable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            Sqlx::Io(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed
                | Sqlx::Tls(_)
        ),
        _ => false,
    }
}

/// No connection within `database.acquire_timeout`.
fn is_pool_timeout(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e)) => matches!(e.as_ref(), Sqlx::PoolTimedOut),
        _ => false,
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED: another connection holds the file for a
/// moment.
fn is_sqlite_busy(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("(code: 5)") || text.contains("(code: 6)") || text.contains("database is locked")
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unreachable(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::Other(err)
        }
    }
}

/// Whether a unique constraint was violated (portable across backends).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

fn options(settings: &DatabaseSettings) -> ConnectOptions {
    let mut options = ConnectOptions::new(settings.url.clone());
    options
        .max_connections(settings.max_connections)
        .min_connections(1)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        // Statements would otherwise be logged with their parameters:
        // password hashes and token ids have no place in a log.
        .sqlx_logging(false);
    if settings.url.starts_with("sqlite:") {
        // A file has no connection to go stale; sqlx's default ping on
        // every checkout was a second round trip through the connection's
        // worker thread for each query.
        options.test_before_acquire(false);
    } else {
        // A connection in use is known alive; one idle for a while may have
        // been dropped by the server or a proxy, so it is pinged first.
        // Pinging on every checkout doubled each query's round trips.
        options.test_before_acquire_if_idle_for(Duration::from_secs(1));
    }
    let busy_timeout = settings.sqlite_busy_timeout;
    options.map_sqlx_sqlite_opts(move |o| {
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true)
    });
    options
}

/// Why a SQLite database file cannot be used, with the path and the fix:
/// a problem of the machine, not of the settings, and one that waiting
/// will not heal.
#[derive(Debug, thiserror::Error)]
#[error("database.url names the SQLite file {path}: {cause}; {fix}")]
pub struct SqliteFileError {
    pub path: String,
    pub cause: String,
    pub fix: String,
}

/// Checks that the SQLite file of `url` can be opened, and creates a new
/// one readable by its owner alone: it holds password hashes, key digests
/// and emails (SQLite gives the `-wal` and `-shm` files beside it the same
/// mode). An existing file is left as it is. Other URLs pass unchecked.
pub fn prepare_sqlite_file(url: &str) -> Result<(), SqliteFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = crate::config::sqlite_file(url) else {
        return Ok(());
    };
    let fail = |cause: String, fix: &str| SqliteFileError {
        path: path.display().to_string(),
        cause,
        fix: fix.to_owned(),
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(fail(
                format!("{} is not a folder", folder.display()),
                "point DATABASE_URL at a file inside a folder",
            ));
        }
        Err(e) => {
            return Err(fail(
                format!("its folder {} cannot be used ({e})", folder.display()),
                &format!(
                    "create the folder (mkdir -p {}) or point DATABASE_URL elsewhere",
                    folder.display()
                ),
            ));
        }
    }
    let create = url.contains("mode=rwc");
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(!url.contains("mode=ro"))
        .create(create)
        .mode(0o600)
        .open(&path);
    match opened {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(fail(
            "it does not exist".into(),
            "create it, or add ?mode=rwc to DATABASE_URL to let Tessera create it",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(fail(
            format!("permission denied ({e})"),
            "give the user running Tessera read and write access to the file and its folder",
        )),
        Err(e) => Err(fail(e.to_string(), "point DATABASE_URL at a usable file")),
    }
}

/// Opens the pool once. SQLite runs in WAL mode with a busy timeout, so
/// readers never wait for the writer and writers queue instead of failing.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(settings)).await
}

/// Opens the pool, waiting for the database: up to `connect_attempts`
/// tries, `connect_retry_interval` apart, with a log line for each miss.
pub async fn connect_with_retry(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let attempts = settings.connect_attempts.max(1);
    let mut attempt = 1;
    loop {
        match connect(settings).await {
            Ok(db) => return Ok(db),
            // A server may come up later; a SQLite file only stops being
            // busy (another instance setting it up at the same moment), or
            // opens slowly on a loaded machine: any other problem with the
            // file will not heal by waiting.
            Err(e)
                if attempt < attempts
                    && is_unreachable(&e)
                    && (!settings.url.starts_with("sqlite:")
                        || is_sqlite_busy(&e)
                        || is_pool_timeout(&e)) =>
            {
                tracing::warn!(
                    attempt,
                    attempts,
                    retry_in = ?settings.connect_retry_interval,
                    error = %e,
                    "database not reachable yet, retrying"
                );
                tokio::time::sleep(settings.connect_retry_interval).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Any 64-bit number fixed for this program: the PostgreSQL advisory lock
/// that serialises migrations between instances starting together.
const MIGRATION_LOCK: i64 = 0x7465_7373_6572_6131; // "tessera1"

/// Applies every pending migration, in one transaction. Instances starting
/// at the same moment take turns: the first migrates under a lock
/// (PostgreSQL: a transaction-scoped advisory lock), the others wait for it
/// and then find nothing to do.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let lock = match db.get_database_backend() {
        DatabaseBackend::Postgres => format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"),
        // A write as the transaction's first statement takes SQLite's write
        // lock at once; another process waits for it (busy timeout) instead
        // of reading a stale list of applied migrations.
        _ => "PRAGMA user_version = 1".to_owned(),
    };
    txn.execute_unprepared(&lock).await?;
    migration::Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// The migrations this binary has and the database has not applied, by
/// name, oldest first. Reads only: no migrations table is created, so a
/// database user without DDL rights can be checked. Like `migrate`, it fails
/// when the database has applied a migration this binary does not know (a
/// newer binary migrated it).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(migration::Migrator::get_pending_migrations_read_only(db)
        .await?
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}

/// A cheap round trip, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Whether the database answered lately. Requests that need it fail fast
/// with 503 while it is marked down, instead of each waiting for a pool
/// timeout; a background probe marks it up again as soon as it answers.
#[derive(Debug, Clone, Default)]
pub struct DbHealth {
    down: Arc<AtomicBool>,
}

impl DbHealth {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Records a failure to reach the database; returns whether this call
    /// changed the state (so it is logged once).
    pub fn mark_down(&self) -> bool {
        !self.down.swap(true, Ordering::Relaxed)
    }

    pub fn mark_up(&self) -> bool {
        self.down.swap(false, Ordering::Relaxed)
    }

    /// Pings the database every `interval` while it is marked down (and
    /// every few intervals otherwise, to notice an outage between requests).
    pub async fn probe(self, db: DatabaseConnection, interval: Duration) {
        let mut ticks: u32 = 0;
        loop {
            tokio::time::sleep(interval).await;
            ticks = ticks.wrapping_add(1);
            if !self.is_down() && !ticks.is_multiple_of(5) {
                continue;
            }
            let ok = matches!(
                tokio::time::timeout(interval.max(Duration::from_secs(1)), ping(&db)).await,
                Ok(Ok(()))
            );
            if ok && self.mark_up() {
                tracing::info!("database reachable again");
            } else if !ok && self.mark_down() {
                tracing::warn!("database unreachable; answering 503 until it is back");
            }
        }
    }
}

/// Deletes the rows of `E` whose `expires_at` column is before `before`,
/// `batch` at a time (select ids, delete by id) so no statement holds the
/// table for long and instances purging at once never conflict. Returns
/// the number deleted. `K` is the type of the `id` column.
pub async fn purge_in_batches<E, K>(
    db: &DatabaseConnection,
    id: E::Column,
    expires_at: E::Column,
    before: chrono::DateTime<chrono::Utc>,
    batch: u64,
) -> Result<u64, StoreError>
where
    E: EntityTrait,
    K: TryGetableMany + Into<sea_orm::Value>,
{
    let mut total = 0;
    loop {
        let ids: Vec<K> = E::find()
            .select_only()
            .column(id)
            .filter(expires_at.lt(before))
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(total);
        }
        total += E::delete_many()
            .filter(id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
    }
}
