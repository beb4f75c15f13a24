//! Users, opaque keys and refresh-token families kept in memory between
//! requests, and the token ids known not to be on the blacklist, so an
//! authenticated request or a refresh costs no database read, with
//! revocation still immediate on every instance.
//!
//! An entry is only served while the cache can tell that its row has not
//! changed since it was read:
//! - SQLite: every lookup asks the file's `PRAGMA data_version` (a few
//!   microseconds, no round trip through the pool), which moves with any
//!   commit by any connection of any process (another instance, the
//!   `tessera` CLI). An entry read before the last commit is read again.
//! - PostgreSQL: triggers on `users`, `auth_tokens`, `token_families` and
//!   `token_blacklist` send a notification at commit; each instance LISTENs
//!   and drops the entries named. While the listening connection is down the
//!   cache is bypassed and emptied.
//! - This instance's own writes drop their entries at once ([`Cache::forget_user`]),
//!   without waiting for the notification.
//!
//! Filling races with forgetting: a read that overlapped a forget is
//! answered but not kept (the generation counter tells).

mod listen;
mod sqlite;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use entity::auth_tokens::Model as KeyRow;
use entity::token_families::Model as FamilyRow;

use crate::db::StoreError;
use crate::users::User;

pub use listen::{CHANNEL, listen};

/// The notification payloads (see the migration that adds the triggers).
const USER_PREFIX: &str = "user:";
const KEYS_PREFIX: &str = "keys:";
const FAMILY_PREFIX: &str = "family:";
const BLACKLIST_PREFIX: &str = "blacklist:";
/// `sync:<instance>:<n>`: an instance's note to itself, sent by
/// [`Cache::settle`] or carried by a write ([`Cache::mark`]).
const SYNC_PREFIX: &str = "sync:";
/// Sent by every instance every [`BEAT`]: proof that the LISTEN still hears.
const BEAT: &str = "beat";

/// How often each instance sends [`BEAT`].
pub const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Without a notification for this long (a half-open connection, a
/// network partition), the cache serves nothing: reads go to the
/// database, which answers or fails as it would without a cache.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(3);

struct Entry<T> {
    value: T,
    /// SQLite: the data version before the row was read.
    version: u64,
}

enum Validity {
    /// No cache: every read goes to the database.
    Off,
    Sqlite(sqlite::DataVersion),
    /// Entries are good while the LISTEN connection is up.
    Postgres {
        listening: AtomicBool,
        /// Tells this instance's own sync notifications from others'.
        instance: u64,
        sent: AtomicU64,
        /// Our own sync notes the listener has heard and no waiter has
        /// claimed yet. Each is waited for by number: notes travel inside
        /// writes that commit in any order, so a later one heard says
        /// nothing of an earlier one.
        heard_marks: Mutex<std::collections::BTreeSet<u64>>,
        /// Moves whenever a note of ours is heard, to wake the waiters.
        heard_any: tokio::sync::watch::Sender<u64>,
        /// When the listener last heard anything, in ms since `start`.
        heard_ms: AtomicU64,
        start: std::time::Instant,
    },
}

impl Validity {
    fn postgres() -> Self {
        let mut random = [0u8; 8];
        // Only tells instances apart: any value will do if randomness fails.
        let _ = getrandom::fill(&mut random);
        Self::Postgres {
            listening: AtomicBool::new(false),
            instance: u64::from_le_bytes(random),
            sent: AtomicU64::new(0),
            heard_marks: Mutex::default(),
            heard_any: tokio::sync::watch::Sender::new(0),
            heard_ms: AtomicU64::new(0),
            start: std::time::Instant::now(),
        }
    }
}

/// A sync notification a write sends itself: see [`Cache::mark`].
#[derive(Debug)]
pub struct SyncMark {
    n: u64,
    payload: String,
}

impl SyncMark {
    /// What the write sends on [`CHANNEL`].
    pub fn payload(&self) -> &str {
        &self.payload
    }
}

/// At most this many notes of ours are kept heard but unclaimed (a waiter
/// that gave up never claims its own): far more than can be under way
/// within [`SETTLE_WAIT`].
const UNCLAIMED_MARKS: usize = 16_384;

/// The longest [`Cache::settled`] waits for its own notification.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

struct Inner {
    validity: Validity,
    users: Mutex<HashMap<i64, Entry<User>>>,
    /// By key digest.
    keys: Mutex<HashMap<String, Entry<KeyRow>>>,
    /// By family id.
    families: Mutex<HashMap<String, Entry<FamilyRow>>>,
    /// Token ids read as not blacklisted (a blacklisted one is never kept:
    /// rows leave the blacklist only once their token has expired).
    unlisted: Mutex<HashMap<String, Entry<()>>>,
    /// Bumped by every forget.
    generation: AtomicU64,
    max_entries: usize,
}

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner.validity {
            Validity::Off => "off",
            Validity::Sqlite(_) => "sqlite",
            Validity::Postgres { .. } => "postgres",
        };
        f.debug_struct("Cache").field("kind", &kind).finish()
    }
}

/// A snapshot taken before a database read, deciding whether its result
/// may be kept.
#[derive(Clone, Copy)]
struct Ticket {
    generation: u64,
    version: u64,
}

fn elapsed_ms(start: std::time::Instant) -> u64 {
    millis(start.elapsed())
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cache {
    fn with(validity: Validity, max_entries: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                validity,
                users: Mutex::default(),
                keys: Mutex::default(),
                families: Mutex::default(),
                unlisted: Mutex::default(),
                generation: AtomicU64::new(0),
                max_entries,
            }),
        }
    }

    /// Every read goes to the database.
    pub fn off() -> Self {
        Self::with(Validity::Off, 0)
    }

    /// The cache for `database_url`, holding at most `max_entries` users
    /// and as many keys and families (0: off). An in-memory SQLite database has no file
    /// to watch, so no cache. PostgreSQL's is bypassed until [`listen`]
    /// runs.
    pub fn for_database(database_url: &str, max_entries: usize) -> Result<Self, String> {
        if max_entries == 0 {
            return Ok(Self::off());
        }
        if database_url.starts_with("sqlite:") {
            return match crate::config::sqlite_file(database_url) {
                Some(path) => Ok(Self::with(
                    Validity::Sqlite(sqlite::DataVersion::open(&path)?),
                    max_entries,
                )),
                None => Ok(Self::off()),
            };
        }
        Ok(Self::with(Validity::postgres(), max_entries))
    }

    /// Whether entries may be served and kept right now; the ticket for a
    /// read that starts now.
    fn ticket(&self) -> Option<Ticket> {
        let version = match &self.inner.validity {
            Validity::Off => return None,
            Validity::Sqlite(v) => v.current()?,
            Validity::Postgres {
                listening,
                heard_ms,
                start,
                ..
            } => {
                let silent_ms = elapsed_ms(*start).saturating_sub(heard_ms.load(Ordering::Acquire));
                if !listening.load(Ordering::Acquire) || silent_ms > millis(SILENCE) {
                    return None;
                }
                0
            }
        };
        Some(Ticket {
            generation: self.inner.generation.load(Ordering::Acquire),
            version,
        })
    }

    fn keep<K: std::hash::Hash + Eq, T>(
        &self,
        map: &Mutex<HashMap<K, Entry<T>>>,
        key: K,
        value: T,
        ticket: Ticket,
    ) {
        let mut map = lock(map);
        // Under the lock, so a forget cannot slip in between.
        if self.inner.generation.load(Ordering::Acquire) != ticket.generation {
            return;
        }
        if map.len() >= self.inner.max_entries {
            map.clear();
        }
        map.insert(
            key,
            Entry {
                value,
                version: ticket.version,
            },
        );
    }

    /// The entry `key` of `map`, from memory if it is current, else from
    /// `load` (and then kept).
    async fn cached<K, Q, T, F>(
        &self,
        map: &Mutex<HashMap<K, Entry<T>>>,
        key: &Q,
        load: F,
    ) -> Result<Option<T>, StoreError>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
        T: Clone,
        F: Future<Output = Result<Option<T>, StoreError>>,
    {
        let Some(ticket) = self.ticket() else {
            return load.await;
        };
        if let Some(e) = lock(map).get(key)
            && e.version == ticket.version
        {
            return Ok(Some(e.value.clone()));
        }
        let found = load.await?;
        if let Some(value) = &found {
            self.keep(map, key.to_owned(), value.clone(), ticket);
        }
        Ok(found)
    }

    /// The user `id`, from memory if it is current, else from `load`.
    pub async fn user<F>(&self, id: i64, load: F) -> Result<Option<User>, StoreError>
    where
        F: Future<Output = Result<Option<User>, StoreError>>,
    {
        self.cached(&self.inner.users, &id, load).await
    }

    /// The token family `id`, from memory if it is current, else from
    /// `load`.
    pub async fn family<F>(&self, id: &str, load: F) -> Result<Option<FamilyRow>, StoreError>
    where
        F: Future<Output = Result<Option<FamilyRow>, StoreError>>,
    {
        self.cached(&self.inner.families, id, load).await
    }

    /// The key row of `digest` with its user, from memory if both are
    /// current, else from `load`.
    pub async fn key<F>(&self, digest: &str, load: F) -> Result<Option<(KeyRow, User)>, StoreError>
    where
        F: Future<Output = Result<Option<(KeyRow, User)>, StoreError>>,
    {
        let Some(ticket) = self.ticket() else {
            return load.await;
        };
        let row = lock(&self.inner.keys)
            .get(digest)
            .filter(|e| e.version == ticket.version)
            .map(|e| e.value.clone());
        if let Some(row) = row {
            let user = lock(&self.inner.users)
                .get(&row.user_id)
                .filter(|e| e.version == ticket.version)
                .map(|e| e.value.clone());
            if let Some(user) = user {
                return Ok(Some((row, user)));
            }
        }
        let found = load.await?;
        if let Some((row, user)) = &found {
            self.keep(&self.inner.keys, digest.to_owned(), row.clone(), ticket);
            self.keep(&self.inner.users, user.id, user.clone(), ticket);
        }
        Ok(found)
    }

    /// Whether `jti` is on the blacklist: `false` from memory if that is
    /// current, else from `load` (and a `false` then kept).
    pub async fn blacklisted<F>(&self, jti: &str, load: F) -> Result<bool, StoreError>
    where
        F: Future<Output = Result<bool, StoreError>>,
    {
        let listed = self
            .cached(&self.inner.unlisted, jti, async {
                Ok(if load.await? { None } else { Some(()) })
            })
            .await?;
        Ok(listed.is_none())
    }

    /// Drops what is kept of `jti` (it was just blacklisted).
    pub fn forget_unlisted(&self, jti: &str) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.unlisted).remove(jti);
    }

    /// Drops what is kept of user `id` (their row; their keys too, which
    /// carry it). Call after the write that changed them has committed.
    pub fn forget_user(&self, id: i64) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.users).remove(&id);
        self.forget_keys_of(id);
    }

    /// Drops the keys of user `id` (one was deleted).
    pub fn forget_keys_of(&self, id: i64) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.keys).retain(|_, e| e.value.user_id != id);
    }

    /// Drops what is kept of token family `id`.
    pub fn forget_family(&self, id: &str) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.families).remove(id);
    }

    /// Drops the token families of user `id`.
    pub fn forget_families_of(&self, id: i64) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.families).retain(|_, e| e.value.user_id != id);
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.inner.generation.fetch_add(1, Ordering::AcqRel);
        lock(&self.inner.users).clear();
        lock(&self.inner.keys).clear();
        lock(&self.inner.families).clear();
        lock(&self.inner.unlisted).clear();
    }

    /// Applies a notification from another instance (or this one).
    fn notified(&self, payload: &str) {
        self.heard();
        let id = |prefix: &str| payload.strip_prefix(prefix)?.parse::<i64>().ok();
        if payload == BEAT {
            // Heard: that is all it is for.
        } else if let Some(sync) = payload.strip_prefix(SYNC_PREFIX) {
            if let Validity::Postgres {
                instance,
                heard_marks,
                heard_any,
                ..
            } = &self.inner.validity
                && let Some((from, n)) = sync.split_once(':')
                && from.parse::<u64>().ok() == Some(*instance)
                && let Ok(n) = n.parse::<u64>()
            {
                {
                    let mut marks = lock(heard_marks);
                    marks.insert(n);
                    // Notes whose waiter gave up are never claimed.
                    while marks.len() > UNCLAIMED_MARKS {
                        marks.pop_first();
                    }
                }
                heard_any.send_modify(|v| *v = v.wrapping_add(1));
            }
        } else if let Some(user) = id(USER_PREFIX) {
            self.forget_user(user);
        } else if let Some(user) = id(KEYS_PREFIX) {
            self.forget_keys_of(user);
        } else if let Some(family) = payload.strip_prefix(FAMILY_PREFIX) {
            self.forget_family(family);
        } else if let Some(jti) = payload.strip_prefix(BLACKLIST_PREFIX) {
            self.forget_unlisted(jti);
        } else {
            // A truncation, or a payload of a later version.
            self.clear();
        }
    }

    /// PostgreSQL while listening: a sync notification for a write to send
    /// itself at its commit (`pg_notify(CHANNEL, payload)` in the same
    /// transaction), so that [`Self::settled`] needs no statement of its
    /// own. Elsewhere `None`: there is nothing to wait for.
    pub fn mark(&self) -> Option<SyncMark> {
        let Validity::Postgres {
            listening,
            instance,
            sent,
            ..
        } = &self.inner.validity
        else {
            return None;
        };
        if !listening.load(Ordering::Acquire) {
            return None;
        }
        let n = sent.fetch_add(1, Ordering::AcqRel) + 1;
        Some(SyncMark {
            n,
            payload: format!("{SYNC_PREFIX}{instance}:{n}"),
        })
    }

    /// Returns once this instance's listener has heard `mark`, sent by a
    /// committed transaction, at most `SETTLE_WAIT` later: the
    /// transaction's other notifications were delivered with it, and every
    /// notification committed before it earlier (they arrive in commit
    /// order). They reach the other instances at the same moment, so a
    /// write through Tessera answers only once they are under way, and the
    /// client's next request, wherever it goes, meets them.
    pub async fn settled(&self, mark: SyncMark) {
        let Validity::Postgres {
            heard_marks,
            heard_any,
            ..
        } = &self.inner.validity
        else {
            return;
        };
        let claimed = async {
            // Subscribed before looking, so a note heard in between wakes it.
            let mut heard = heard_any.subscribe();
            loop {
                if lock(heard_marks).remove(&mark.n) {
                    return;
                }
                if heard.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(SETTLE_WAIT, claimed).await;
    }

    /// [`Self::settled`] for writes already committed: sends a mark of its
    /// own (one more round trip) and waits for it. Elsewhere (SQLite, no
    /// cache, LISTEN down) there is nothing to wait for.
    pub async fn settle(&self, db: &sea_orm::DatabaseConnection) {
        let Some(mark) = self.mark() else {
            return;
        };
        let notify = sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), mark.payload.clone().into()],
        );
        if sea_orm::ConnectionTrait::execute_raw(db, notify)
            .await
            .is_err()
        {
            return;
        }
        self.settled(mark).await;
    }

    fn heard(&self) {
        if let Validity::Postgres {
            heard_ms, start, ..
        } = &self.inner.validity
        {
            heard_ms.store(elapsed_ms(*start), Ordering::Release);
        }
    }

    /// PostgreSQL: what [`listen`]'s companion sends every [`BEAT_EVERY`].
    async fn beat(&self, db: &sea_orm::sqlx::PgPool) -> Result<(), sea_orm::sqlx::Error> {
        sea_orm::sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(BEAT)
            .execute(db)
            .await
            .map(|_| ())
    }

    /// PostgreSQL: whether entries may be served (the LISTEN is up).
    fn set_listening(&self, up: bool) {
        if let Validity::Postgres { listening, .. } = &self.inner.validity {
            if !up {
                listening.store(false, Ordering::Release);
                self.clear();
            } else {
                self.clear();
                self.heard();
                listening.store(true, Ordering::Release);
            }
        }
    }

    /// Whether this cache needs [`listen`] to serve anything.
    pub fn needs_listener(&self) -> bool {
        matches!(self.inner.validity, Validity::Postgres { .. })
    }

    /// Entries kept now (users, keys, families), for tests and metrics.
    pub fn len(&self) -> (usize, usize, usize) {
        (
            lock(&self.inner.users).len(),
            lock(&self.inner.keys).len(),
            lock(&self.inner.families).len(),
        )
    }

    /// Token ids kept as not blacklisted.
    pub fn unlisted_len(&self) -> usize {
        lock(&self.inner.unlisted).len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0) && self.unlisted_len() == 0
    }
}

#[cfg(test)]
mod tests;
