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
//!   and drops the entries named. An instance serves only while its
//!   listener is current (its own stamped beats come back within
//!   [`SILENCE`]), and a write through an instance is answered once no
//!   other instance can serve what it changed ([`Cache::settled`]). While
//!   the listening connection is down the cache is bypassed and emptied.
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
use std::sync::{Arc, Mutex, OnceLock};

use entity::auth_tokens::Model as KeyRow;
use entity::token_families::Model as FamilyRow;

use crate::db::StoreError;
use crate::users::User;

pub use listen::{channel_for, listen};

/// The notification payloads (see the migration that adds the triggers).
const USER_PREFIX: &str = "user:";
const KEYS_PREFIX: &str = "keys:";
const FAMILY_PREFIX: &str = "family:";
const BLACKLIST_PREFIX: &str = "blacklist:";
/// `sync:<instance>:<what>`: what instances tell each other. `<what>` is
/// - `<n>`: a write's mark, sent by [`Cache::settle`] or carried by the
///   write ([`Cache::mark`]); every other instance acknowledges it;
/// - `beat:<ms>`: sent every [`BEAT_EVERY`] while the instance listens,
///   stamped with its own clock: heard back, proof to itself that its
///   LISTEN is current up to that moment; to the others, that it is there,
///   may serve from memory, and acknowledges marks;
/// - `ack:<instance>:<n>,<n>...`: these marks of that instance were heard,
///   with every notification committed before them;
/// - `gone`: the instance stopped and serves nothing any more.
///
/// Versions before the acknowledgements ignore every `sync:` payload
/// that is not their own.
const SYNC_PREFIX: &str = "sync:";
/// The heartbeat of versions before the acknowledgements; still heard.
const BEAT: &str = "beat";
const BEAT_WHAT: &str = "beat";
const GONE_WHAT: &str = "gone";
const ACK_WHAT: &str = "ack:";
/// Marks per acknowledgement payload (PostgreSQL's limit is 8,000 bytes).
const ACKS_PER_PAYLOAD: usize = 200;

/// How often each instance sends its beat.
pub const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// An instance serves from memory only while the last beat of its own it
/// heard back was sent less than this long ago (by its own clock): its
/// listener is then current up to that moment. A half-open connection, a
/// network partition or a listener running behind ends serving within
/// this time; reads then go to the database, which answers or fails as it
/// would without a cache. It also bounds how long a write waits: an
/// instance that has not applied a write committed this long ago no longer
/// serves (see [`Cache::settled`]).
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
        /// This deployment's notification channel ([`channel_for`] its
        /// schema), set by the listener before its first LISTEN.
        channel: OnceLock<Arc<str>>,
        /// Tells this instance's own sync notifications from others'.
        instance: u64,
        sent: AtomicU64,
        /// Our own sync notes the listener has heard and no waiter has
        /// claimed yet. Each is waited for by number: notes travel inside
        /// writes that commit in any order, so a later one heard says
        /// nothing of an earlier one.
        heard_marks: Mutex<std::collections::BTreeSet<u64>>,
        /// Moves whenever a note of ours or an acknowledgement is heard, a
        /// peer leaves or the LISTEN comes up, to wake the waiters.
        heard_any: tokio::sync::watch::Sender<u64>,
        /// When the newest beat of ours the listener heard back was sent
        /// (or the LISTEN began), in ms since `start`.
        fresh_ms: AtomicU64,
        /// When the current LISTEN began, in ms since `start`.
        listening_since_ms: AtomicU64,
        start: std::time::Instant,
        peers: Mutex<Peers>,
    },
}

/// PostgreSQL: what an instance knows of the others on its database. A
/// write through one instance is answered once every other instance that
/// beats has acknowledged its mark or fallen silent (see
/// [`Cache::settled`]): by then none serves what the write changed, so
/// the client's next request, wherever it goes, gets the new state.
/// Hearing its own mark is not enough: each instance's listener hears the
/// commit on its own schedule.
#[derive(Default)]
struct Peers {
    /// Each other instance that beats, and when it was last heard (ms
    /// since `start`).
    seen: HashMap<u64, u64>,
    /// Our marks the others acknowledged: mark -> who.
    acks: std::collections::BTreeMap<u64, Vec<u64>>,
    /// Other instances' marks heard and not acknowledged yet.
    due: Vec<(u64, u64)>,
}

impl Peers {
    /// Whether every other instance that beat within [`SILENCE`] has
    /// acknowledged mark `n`. One that has not beaten for that long cannot
    /// be serving from memory: its last beat was sent before we heard it.
    fn all_acked(&self, n: u64, now_ms: u64) -> bool {
        self.waiting_on(n, now_ms).next().is_none()
    }

    /// When the wait for `n` ends by itself if no acknowledgement comes:
    /// the latest moment one of those still to acknowledge stops serving.
    fn gives_up_at(&self, n: u64, now_ms: u64) -> Option<u64> {
        self.waiting_on(n, now_ms)
            .map(|at| at.saturating_add(millis(SILENCE)).saturating_add(1))
            .max()
    }

    /// When each instance still to acknowledge `n` last beat.
    fn waiting_on(&self, n: u64, now_ms: u64) -> impl Iterator<Item = u64> + '_ {
        let acked = self.acks.get(&n);
        self.seen.iter().filter_map(move |(peer, &at)| {
            let live = now_ms.saturating_sub(at) <= millis(SILENCE);
            (live && !acked.is_some_and(|a| a.contains(peer))).then_some(at)
        })
    }
}

impl Validity {
    fn postgres() -> Self {
        Self::postgres_at(std::time::Instant::now())
    }

    /// With its clock started at `start`.
    fn postgres_at(start: std::time::Instant) -> Self {
        let mut random = [0u8; 8];
        if getrandom::fill(&mut random).is_err() {
            // Only tells instances apart; two equal ids would take each
            // other's notes for their own, so not a constant.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            random = (nanos as u64 ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
        }
        Self::Postgres {
            listening: AtomicBool::new(false),
            channel: OnceLock::new(),
            instance: u64::from_le_bytes(random),
            sent: AtomicU64::new(0),
            heard_marks: Mutex::default(),
            heard_any: tokio::sync::watch::Sender::new(0),
            fresh_ms: AtomicU64::new(0),
            listening_since_ms: AtomicU64::new(0),
            start,
            peers: Mutex::default(),
        }
    }
}

/// A sync notification a write sends itself: see [`Cache::mark`].
#[derive(Debug)]
pub struct SyncMark {
    n: u64,
    channel: Arc<str>,
    payload: String,
}

impl SyncMark {
    /// The channel the write sends it on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// What the write sends.
    pub fn payload(&self) -> &str {
        &self.payload
    }
}

/// At most this many notes of ours are kept heard but unclaimed (a waiter
/// that gave up never claims its own): far more than can be under way
/// within [`SETTLE_WAIT`].
const UNCLAIMED_MARKS: usize = 16_384;

/// The longest [`Cache::settled`] waits: by then every instance that has
/// not applied the write has stopped serving from memory ([`SILENCE`]).
const SETTLE_WAIT: std::time::Duration =
    SILENCE.saturating_add(std::time::Duration::from_millis(100));

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

/// Wakes the writes waiting in [`Cache::settled`] and
/// [`Cache::until_listening`] to look again.
fn wake(waiters: &tokio::sync::watch::Sender<u64>) {
    waiters.send_modify(|v| *v = v.wrapping_add(1));
}

/// Sends `payloads` on `channel` in one statement, on `db` (the pool or
/// the LISTEN connection).
async fn send<'c, E>(
    db: E,
    channel: &str,
    payloads: Vec<String>,
) -> Result<(), sea_orm::sqlx::Error>
where
    E: sea_orm::sqlx::Executor<'c, Database = sea_orm::sqlx::Postgres>,
{
    sea_orm::sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
        .bind(channel)
        .bind(payloads)
        .execute(db)
        .await
        .map(|_| ())
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
                fresh_ms,
                start,
                ..
            } => {
                let silent_ms = elapsed_ms(*start).saturating_sub(fresh_ms.load(Ordering::Acquire));
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

    /// The entry `key` of `map` if memory holds it as of `ticket`.
    fn current<K, Q, T>(map: &Mutex<HashMap<K, Entry<T>>>, key: &Q, ticket: Ticket) -> Option<T>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
        T: Clone,
    {
        lock(map)
            .get(key)
            .filter(|e| e.version == ticket.version)
            .map(|e| e.value.clone())
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
        if let Some(value) = Self::current(map, key, ticket) {
            return Ok(Some(value));
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

    /// The token family `id` if memory holds it current; `None` says
    /// nothing of the database.
    pub fn kept_family(&self, id: &str) -> Option<FamilyRow> {
        Self::current(&self.inner.families, id, self.ticket()?)
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
        if let Some(row) = Self::current(&self.inner.keys, digest, ticket)
            && let Some(user) = Self::current(&self.inner.users, &row.user_id, ticket)
        {
            return Ok(Some((row, user)));
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
        let id = |prefix: &str| payload.strip_prefix(prefix)?.parse::<i64>().ok();
        if payload == BEAT {
            // An older version's: it says nothing of our listener.
        } else if let Some(sync) = payload.strip_prefix(SYNC_PREFIX) {
            self.synced(sync);
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

    /// A `sync:` payload (without the prefix): see [`SYNC_PREFIX`].
    fn synced(&self, sync: &str) {
        let Validity::Postgres {
            instance,
            heard_marks,
            heard_any,
            fresh_ms,
            peers,
            start,
            ..
        } = &self.inner.validity
        else {
            return;
        };
        let Some((from, what)) = sync.split_once(':') else {
            return;
        };
        let Ok(from) = from.parse::<u64>() else {
            return;
        };
        let beat = what
            .strip_prefix(BEAT_WHAT)
            .filter(|rest| rest.is_empty() || rest.starts_with(':'));
        if from == *instance {
            if let Some(sent) = beat.and_then(|b| b.strip_prefix(':')?.parse::<u64>().ok()) {
                fresh_ms.fetch_max(sent, Ordering::AcqRel);
            } else if let Ok(n) = what.parse::<u64>() {
                let mut marks = lock(heard_marks);
                marks.insert(n);
                // Notes whose waiter gave up are never claimed.
                while marks.len() > UNCLAIMED_MARKS {
                    marks.pop_first();
                }
                drop(marks);
                wake(heard_any);
            }
            return;
        }
        let now = elapsed_ms(*start);
        let mut peers = lock(peers);
        if let Ok(n) = what.parse::<u64>() {
            peers.due.push((from, n));
        } else if beat.is_some() {
            // Instances that stopped beating long ago (each start is a new
            // instance) are not kept for ever.
            peers
                .seen
                .retain(|_, at| now.saturating_sub(*at) <= 10 * millis(SILENCE));
            peers.seen.insert(from, now);
        } else if what == GONE_WHAT {
            peers.seen.remove(&from);
            drop(peers);
            wake(heard_any);
        } else if let Some(acked) = what.strip_prefix(ACK_WHAT) {
            // Not a sign of life: an instance that said it was gone may
            // still acknowledge what it heard before it stopped.
            let Some((to, marks)) = acked.split_once(':') else {
                return;
            };
            if to.parse::<u64>().ok() != Some(*instance) {
                return;
            }
            for n in marks.split(',').filter_map(|n| n.parse::<u64>().ok()) {
                peers.acks.entry(n).or_default().push(from);
            }
            // Acknowledgements of marks whose waiter gave up.
            while peers.acks.len() > UNCLAIMED_MARKS {
                peers.acks.pop_first();
            }
            drop(peers);
            wake(heard_any);
        }
    }

    /// The acknowledgements of the other instances' marks heard since the
    /// last call, as payloads to send on this deployment's channel. The listener sends
    /// them once it has taken in everything that had arrived, so the
    /// notifications committed with and before each mark were applied.
    pub fn acks_due(&self) -> Vec<String> {
        let Validity::Postgres {
            instance, peers, ..
        } = &self.inner.validity
        else {
            return Vec::new();
        };
        let mut due = std::mem::take(&mut lock(peers).due);
        due.sort_unstable();
        let mut payloads = Vec::new();
        for chunk in due.chunk_by(|a, b| a.0 == b.0) {
            for marks in chunk.chunks(ACKS_PER_PAYLOAD) {
                let list: Vec<String> = marks.iter().map(|(_, n)| n.to_string()).collect();
                payloads.push(format!(
                    "{SYNC_PREFIX}{instance}:{ACK_WHAT}{}:{}",
                    marks[0].0,
                    list.join(",")
                ));
            }
        }
        payloads
    }

    /// PostgreSQL: the channel this deployment's triggers send on, as the
    /// listener found it; kept from the first time on (every connection
    /// comes from the same URL, so finds the same schema).
    fn use_channel(&self, channel: String) -> Arc<str> {
        match &self.inner.validity {
            Validity::Postgres { channel: kept, .. } => kept.get_or_init(|| channel.into()).clone(),
            _ => channel.into(),
        }
    }

    /// The channel of [`Self::use_channel`]; `None` before the first
    /// LISTEN, when there is nothing to send (no mark, no beat).
    fn channel(&self) -> Option<&str> {
        match &self.inner.validity {
            Validity::Postgres { channel, .. } => channel.get().map(|c| &**c),
            _ => None,
        }
    }

    /// This instance's `sync:` payload saying `what`, if it has any to say
    /// (PostgreSQL).
    fn own_sync(&self, what: &str) -> Option<String> {
        match &self.inner.validity {
            Validity::Postgres { instance, .. } => Some(format!("{SYNC_PREFIX}{instance}:{what}")),
            _ => None,
        }
    }

    /// This instance's beat (PostgreSQL), stamped now.
    pub fn beat_payload(&self) -> Option<String> {
        let Validity::Postgres { start, .. } = &self.inner.validity else {
            return None;
        };
        self.own_sync(&format!("{BEAT_WHAT}:{}", elapsed_ms(*start)))
    }

    /// Tells the other instances that this one stopped serving, so their
    /// writes stop waiting for its acknowledgements. Best effort: without
    /// it they stop waiting after [`SILENCE`].
    pub async fn leave(&self, db: &sea_orm::sqlx::PgPool) {
        let Some(gone) = self.own_sync(GONE_WHAT) else {
            return;
        };
        // Nothing more from memory: nobody waits for this instance now.
        self.set_listening(false);
        // Never listened: nobody knows of this instance.
        let Some(channel) = self.channel() else {
            return;
        };
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            send(db, channel, vec![gone]),
        )
        .await;
    }

    /// PostgreSQL while listening: a sync notification for a write to send
    /// itself at its commit (`pg_notify(channel, payload)` in the same
    /// transaction), so that [`Self::settled`] needs no statement of its
    /// own. Elsewhere `None`: there is nothing to wait for.
    pub fn mark(&self) -> Option<SyncMark> {
        let Validity::Postgres {
            listening,
            channel,
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
        let channel = channel.get()?.clone();
        let n = sent.fetch_add(1, Ordering::AcqRel) + 1;
        Some(SyncMark {
            n,
            channel,
            payload: format!("{SYNC_PREFIX}{instance}:{n}"),
        })
    }

    /// Returns once no instance serves from memory what the write that
    /// carried `mark` (committed before the call) changed, so the client's
    /// next request, wherever it goes, meets the new state:
    /// - this instance's listener has heard `mark`;
    /// - every other instance that beat within [`SILENCE`] has acknowledged
    ///   it (having applied the transaction's other notifications, which
    ///   came with it, and every one committed before, which came earlier),
    ///   or has not beaten for [`SILENCE`] (then it no longer serves);
    /// - this LISTEN has been up for [`SILENCE`]: an instance whose beats
    ///   all came before it may still be serving until then.
    ///
    /// At most [`SETTLE_WAIT`]: an instance that has not applied the write
    /// by then has stopped serving (its last beat heard back was sent
    /// before the write committed).
    pub async fn settled(&self, mark: SyncMark) {
        let Validity::Postgres {
            heard_marks,
            heard_any,
            peers,
            listening_since_ms,
            start,
            ..
        } = &self.inner.validity
        else {
            return;
        };
        let n = mark.n;
        let claimed = async {
            // Subscribed before looking, so a note heard in between wakes it.
            let mut heard = heard_any.subscribe();
            loop {
                let now = elapsed_ms(*start);
                let new_listener = listening_since_ms
                    .load(Ordering::Acquire)
                    .saturating_add(millis(SILENCE));
                // When the wait may end by itself, without a notification.
                let mut until = (now < new_listener).then_some(new_listener);
                // The others are counted once our own mark is heard: an
                // instance that beat before our write committed is known by
                // then (notifications arrive in commit order).
                if lock(heard_marks).contains(&n) {
                    let peers = lock(peers);
                    if until.is_none() && peers.all_acked(n, now) {
                        return;
                    }
                    until = until.max(peers.gives_up_at(n, now));
                }
                let changed = heard.changed();
                match until {
                    Some(at) => {
                        let at = *start + std::time::Duration::from_millis(at);
                        if let Ok(Err(_)) = tokio::time::timeout_at(at.into(), changed).await {
                            return;
                        }
                    }
                    None => {
                        if changed.await.is_err() {
                            return;
                        }
                    }
                }
            }
        };
        let _ = tokio::time::timeout(SETTLE_WAIT, claimed).await;
        lock(heard_marks).remove(&n);
        lock(peers).acks.remove(&n);
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
            [mark.channel().into(), mark.payload().into()],
        );
        if sea_orm::ConnectionTrait::execute_raw(db, notify)
            .await
            .is_err()
        {
            return;
        }
        self.settled(mark).await;
    }

    /// PostgreSQL: what [`listen`]'s companion sends every [`BEAT_EVERY`]
    /// while listening; not otherwise, when this instance could not
    /// acknowledge the others' marks (they would wait for it in vain).
    async fn beat(&self, db: &sea_orm::sqlx::PgPool) -> Result<(), sea_orm::sqlx::Error> {
        let Validity::Postgres { listening, .. } = &self.inner.validity else {
            return Ok(());
        };
        if !listening.load(Ordering::Acquire) {
            return Ok(());
        }
        match (self.channel(), self.beat_payload()) {
            (Some(channel), Some(beat)) => send(db, channel, vec![beat]).await,
            _ => Ok(()),
        }
    }

    /// PostgreSQL: whether entries may be served (the LISTEN is up).
    fn set_listening(&self, up: bool) {
        if let Validity::Postgres { listening, .. } = &self.inner.validity {
            if !up {
                listening.store(false, Ordering::Release);
                self.clear();
            } else {
                self.clear();
                if let Validity::Postgres {
                    fresh_ms,
                    listening_since_ms,
                    heard_any,
                    start,
                    ..
                } = &self.inner.validity
                {
                    // Empty, and current from now on.
                    let now = elapsed_ms(*start);
                    fresh_ms.store(now, Ordering::Release);
                    listening_since_ms.store(now, Ordering::Release);
                    listening.store(true, Ordering::Release);
                    wake(heard_any);
                }
            }
        }
    }

    /// PostgreSQL: waits until the LISTEN is up and has been for
    /// [`SILENCE`], after which a write waits only for acknowledgements
    /// (see [`Self::settled`]). Elsewhere at once.
    pub async fn until_writes_unheld(&self) {
        let Validity::Postgres {
            listening_since_ms,
            start,
            ..
        } = &self.inner.validity
        else {
            return;
        };
        while !self.until_listening(SILENCE).await {}
        let at = listening_since_ms
            .load(Ordering::Acquire)
            .saturating_add(millis(SILENCE));
        tokio::time::sleep_until((*start + std::time::Duration::from_millis(at)).into()).await;
    }

    /// PostgreSQL: waits at most `max` for [`listen`] to be up; whether it
    /// is. Until then this instance's writes cannot wait for the others'
    /// acknowledgements (it would not hear them), so it should not serve.
    pub async fn until_listening(&self, max: std::time::Duration) -> bool {
        let Validity::Postgres {
            listening,
            heard_any,
            ..
        } = &self.inner.validity
        else {
            return true;
        };
        let mut changed = heard_any.subscribe();
        let up = async {
            while !listening.load(Ordering::Acquire) {
                if changed.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(max, up).await;
        listening.load(Ordering::Acquire)
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
