use super::*;
use std::time::Duration;

fn user(id: i64, email: &str) -> User {
    User {
        id,
        username: format!("u{id}"),
        email: email.to_owned(),
        password: String::new(),
        is_active: true,
        is_staff: false,
        is_superuser: false,
        date_joined: chrono::Utc::now(),
        last_login: None,
        tokens_valid_after: None,
        refresh_valid_after: None,
    }
}

async fn read(cache: &Cache, id: i64, email: &str, reads: &AtomicU64) -> String {
    cache
        .user(id, async {
            reads.fetch_add(1, Ordering::Relaxed);
            Ok(Some(user(id, email)))
        })
        .await
        .unwrap()
        .unwrap()
        .email
}

/// A PostgreSQL cache whose clock started a minute ago and, when
/// `listening`, whose LISTEN has been up all that time.
fn postgres(listening: bool) -> Cache {
    let c = Cache::with(
        Validity::postgres_at(std::time::Instant::now() - Duration::from_secs(60)),
        100,
    );
    c.use_channel(channel_for("public"));
    c.set_listening(listening);
    listening_since(&c, 0);
    c
}

#[test]
fn each_schema_has_a_channel_of_its_own() {
    assert_eq!(channel_for("public"), "tessera_cache");
    // As the triggers name it: 'tessera_cache_' ||
    // left(encode(sha256(convert_to('tenant_a', 'UTF8')), 'hex'), 32).
    assert_eq!(
        channel_for("tenant_a"),
        "tessera_cache_ea7c68e607dbd8ae6cf6b58db6206acc"
    );
    // The longest schema name still gives a channel PostgreSQL accepts.
    assert!(channel_for(&"s".repeat(63)).len() <= 63);
    assert_eq!(postgres(true).mark().unwrap().channel(), "tessera_cache");
}

fn listening_since(c: &Cache, ms: u64) {
    let Validity::Postgres {
        listening_since_ms, ..
    } = &c.inner.validity
    else {
        unreachable!()
    };
    listening_since_ms.store(ms, Ordering::Release);
}

/// How long [`Cache::settled`] takes for a fresh mark already heard back.
async fn settle_time(cache: &Cache) -> Duration {
    let mark = cache.mark().unwrap();
    cache.notified(mark.payload());
    let began = std::time::Instant::now();
    cache.settled(mark).await;
    began.elapsed()
}

fn now_ms(c: &Cache) -> u64 {
    let Validity::Postgres { start, .. } = &c.inner.validity else {
        unreachable!()
    };
    elapsed_ms(*start)
}

#[tokio::test]
async fn a_kept_user_is_served_until_forgotten() {
    let cache = postgres(true);
    let reads = AtomicU64::new(0);
    assert_eq!(read(&cache, 1, "a@x", &reads).await, "a@x");
    assert_eq!(read(&cache, 1, "b@x", &reads).await, "a@x");
    assert_eq!(reads.load(Ordering::Relaxed), 1);
    cache.notified("user:1");
    assert_eq!(read(&cache, 1, "b@x", &reads).await, "b@x");
    assert_eq!(reads.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn nothing_is_served_while_not_listening() {
    let cache = postgres(true);
    let reads = AtomicU64::new(0);
    read(&cache, 1, "a@x", &reads).await;
    cache.set_listening(false);
    assert_eq!(read(&cache, 1, "b@x", &reads).await, "b@x");
    assert_eq!(
        cache.len(),
        (0, 0, 0),
        "emptied, and nothing kept meanwhile"
    );
    cache.set_listening(true);
    assert_eq!(read(&cache, 1, "c@x", &reads).await, "c@x");
    assert_eq!(reads.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn a_read_that_overlapped_a_forget_is_not_kept() {
    let cache = postgres(true);
    let got = cache
        .user(1, async {
            // The row changes and is forgotten while this read is under way.
            cache.forget_user(1);
            Ok(Some(user(1, "stale@x")))
        })
        .await
        .unwrap();
    assert_eq!(got.unwrap().email, "stale@x");
    assert_eq!(cache.len(), (0, 0, 0));
}

#[tokio::test]
async fn unknown_payloads_empty_everything() {
    let cache = postgres(true);
    let reads = AtomicU64::new(0);
    read(&cache, 1, "a@x", &reads).await;
    read(&cache, 2, "a@x", &reads).await;
    cache.notified("user:2");
    assert_eq!(cache.len(), (1, 0, 0));
    cache.notified("all");
    assert!(cache.is_empty());
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let cache = Cache::with(Validity::postgres(), 3);
    cache.set_listening(true);
    let reads = AtomicU64::new(0);
    for id in 0..10 {
        read(&cache, id, "a@x", &reads).await;
        assert!(cache.len().0 <= 3);
    }
}

#[tokio::test]
async fn sqlite_entries_end_with_any_commit_of_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (x INTEGER);")
        .unwrap();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let cache = Cache::for_database(&url, 100).unwrap();
    let reads = AtomicU64::new(0);
    read(&cache, 1, "a@x", &reads).await;
    assert_eq!(read(&cache, 1, "b@x", &reads).await, "a@x");
    writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(read(&cache, 1, "b@x", &reads).await, "b@x");
    assert_eq!(read(&cache, 1, "c@x", &reads).await, "b@x");
    assert_eq!(reads.load(Ordering::Relaxed), 2);
}

#[test]
fn no_cache_without_a_file_or_entries() {
    assert!(
        Cache::for_database("sqlite::memory:", 100)
            .unwrap()
            .ticket()
            .is_none()
    );
    assert!(
        Cache::for_database("postgres://x@y/z", 0)
            .unwrap()
            .ticket()
            .is_none()
    );
}

#[test]
fn only_its_own_recent_beat_heard_back_lets_it_serve() {
    let c = postgres(true);
    let Validity::Postgres { fresh_ms, .. } = &c.inner.validity else {
        unreachable!()
    };
    fresh_ms.store(0, Ordering::Release);
    assert!(
        c.ticket().is_none(),
        "nothing of its own heard for a minute"
    );
    // Others' notifications say nothing of how current this listener is.
    c.notified(BEAT);
    c.notified(&format!("{SYNC_PREFIX}7:beat:{}", now_ms(&c)));
    c.notified("user:1");
    assert!(c.ticket().is_none());
    // Its own beat, sent 10 s ago and heard only now: still behind.
    let me = instance(&c);
    c.notified(&format!("{SYNC_PREFIX}{me}:beat:{}", now_ms(&c) - 10_000));
    assert!(
        c.ticket().is_none(),
        "a listener 10 s behind serves nothing"
    );
    c.notified(&c.beat_payload().unwrap());
    assert!(c.ticket().is_some());
}

#[tokio::test]
async fn a_write_waits_until_a_silent_instance_cannot_be_serving() {
    let cache = postgres(true);
    // Instance 7 beat 2.8 s ago and never acknowledges: it may serve until
    // its beat is 3 s old, not longer.
    lock(match &cache.inner.validity {
        Validity::Postgres { peers, .. } => peers,
        _ => unreachable!(),
    })
    .seen
    .insert(7, now_ms(&cache) - 2_800);
    let waited = settle_time(&cache).await;
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_millis(1_500), "{waited:?}");
}

#[tokio::test]
async fn a_new_listener_holds_writes_until_every_serving_instance_is_known() {
    let cache = postgres(true);
    // Up for 2.7 s: an instance whose beats all came before may still
    // serve for 0.3 s.
    listening_since(&cache, now_ms(&cache) - 2_700);
    let waited = settle_time(&cache).await;
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_millis(1_500), "{waited:?}");
}

#[tokio::test]
async fn settled_returns_once_its_own_mark_is_heard() {
    let cache = postgres(true);
    let mark = cache.mark().expect("listening: a mark");
    let payload = mark.payload().to_owned();
    let other = cache.mark().unwrap();
    let waiting = tokio::spawn({
        let cache = cache.clone();
        async move { cache.settled(mark).await }
    });
    // Another instance's note with the same number releases nothing.
    let (_, n) = payload.rsplit_once(':').unwrap();
    cache.notified(&format!("{SYNC_PREFIX}1:{n}"));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "released by a note not its own");
    let heard = std::time::Instant::now();
    cache.notified(&payload);
    waiting.await.unwrap();
    assert!(
        heard.elapsed() < Duration::from_millis(500),
        "{:?}",
        heard.elapsed()
    );
    // Notes travel inside writes that commit in any order: a later note
    // heard does not release an earlier one still under way.
    let later = cache.mark().unwrap();
    cache.notified(later.payload());
    let earlier = tokio::spawn({
        let cache = cache.clone();
        async move { cache.settled(other).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(!earlier.is_finished(), "released by a later note");
    cache.settled(later).await;
    earlier.abort();
}

fn instance(cache: &Cache) -> u64 {
    match &cache.inner.validity {
        Validity::Postgres { instance, .. } => *instance,
        _ => unreachable!(),
    }
}

/// Waits (bounded) for `mark`; whether it was released within 100 ms.
async fn released(cache: &Cache, mark: SyncMark) -> (bool, tokio::task::JoinHandle<()>) {
    let waiting = tokio::spawn({
        let cache = cache.clone();
        async move { cache.settled(mark).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    (waiting.is_finished(), waiting)
}

#[tokio::test]
async fn a_write_waits_for_every_other_instance_that_beats() {
    let cache = postgres(true);
    let me = instance(&cache);
    // Two others beat; a third only ever sent marks (a version without
    // acknowledgements): it is not waited for.
    cache.notified(&format!("{SYNC_PREFIX}7:beat"));
    cache.notified(&format!("{SYNC_PREFIX}8:beat"));
    cache.notified(&format!("{SYNC_PREFIX}9:1"));
    let mark = cache.mark().unwrap();
    let n = mark.n;
    let own = mark.payload().to_owned();
    let (done, waiting) = released(&cache, mark).await;
    assert!(!done, "released before its own mark was heard");
    cache.notified(&own);
    cache.notified(&format!("{SYNC_PREFIX}7:ack:{me}:{}", n + 1));
    cache.notified(&format!("{SYNC_PREFIX}7:ack:99:{n}"));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "released by acknowledgements of others' marks"
    );
    cache.notified(&format!("{SYNC_PREFIX}7:ack:{me}:{},{n}", n + 2));
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "released with instance 8 still to acknowledge"
    );
    cache.notified(&format!("{SYNC_PREFIX}8:ack:{me}:{n}"));
    tokio::time::timeout(SETTLE_WAIT / 2, waiting)
        .await
        .expect("released once both acknowledged")
        .unwrap();

    // An instance that says it is gone is not waited for.
    let mark = cache.mark().unwrap();
    let (n, own) = (mark.n, mark.payload().to_owned());
    cache.notified(&own);
    cache.notified(&format!("{SYNC_PREFIX}7:ack:{me}:{n}"));
    let (done, waiting) = released(&cache, mark).await;
    assert!(!done, "released with instance 8 still to acknowledge");
    cache.notified(&format!("{SYNC_PREFIX}8:gone"));
    tokio::time::timeout(SETTLE_WAIT / 2, waiting)
        .await
        .expect("released once instance 8 left")
        .unwrap();
    // Its late acknowledgement does not bring it back.
    cache.notified(&format!("{SYNC_PREFIX}8:ack:{me}:{n}"));
    let mark = cache.mark().unwrap();
    let (n, own) = (mark.n, mark.payload().to_owned());
    cache.notified(&own);
    cache.notified(&format!("{SYNC_PREFIX}7:ack:{me}:{n}"));
    assert!(released(&cache, mark).await.0);
}

#[tokio::test]
async fn an_instance_silent_for_long_is_not_waited_for() {
    let cache = postgres(true);
    let Validity::Postgres { peers, start, .. } = &cache.inner.validity else {
        unreachable!()
    };
    // Heard 10 s before "now" (the clock starts at 0 with the cache).
    let now = elapsed_ms(*start) + 10_000;
    lock(peers).seen.insert(7, 0);
    assert!(lock(peers).all_acked(1, now));
    lock(peers).seen.insert(7, now - 1_000);
    assert!(!lock(peers).all_acked(1, now));
}

#[test]
fn the_others_marks_are_acknowledged_in_batches() {
    let cache = postgres(true);
    let me = instance(&cache);
    assert!(cache.acks_due().is_empty());
    // Our own marks and beats, and acknowledgements, are not acknowledged.
    let own = cache.mark().unwrap();
    cache.notified(own.payload());
    cache.notified(&format!("{SYNC_PREFIX}{me}:beat"));
    cache.notified(&format!("{SYNC_PREFIX}7:ack:{me}:1"));
    cache.notified(&format!("{SYNC_PREFIX}7:beat"));
    assert!(cache.acks_due().is_empty());
    for n in [3, 1, 2] {
        cache.notified(&format!("{SYNC_PREFIX}7:{n}"));
    }
    cache.notified(&format!("{SYNC_PREFIX}8:5"));
    assert_eq!(
        cache.acks_due(),
        [
            format!("{SYNC_PREFIX}{me}:ack:7:1,2,3"),
            format!("{SYNC_PREFIX}{me}:ack:8:5"),
        ]
    );
    assert!(cache.acks_due().is_empty(), "each acknowledged once");
    // Within PostgreSQL's 8,000-byte payload.
    for n in 0..1_000u64 {
        cache.notified(&format!("{SYNC_PREFIX}7:{}", u64::MAX - n));
    }
    let acks = cache.acks_due();
    assert_eq!(acks.len(), 1_000usize.div_ceil(ACKS_PER_PAYLOAD));
    assert!(acks.iter().all(|a| a.len() < 8_000), "{}", acks[0].len());
    assert_eq!(
        acks.iter()
            .map(|a| a.matches(',').count() + 1)
            .sum::<usize>(),
        1_000
    );
}

#[test]
fn no_mark_without_a_listener_to_hear_it() {
    assert!(postgres(false).mark().is_none());
    assert!(Cache::off().mark().is_none());
}

#[tokio::test]
async fn a_token_read_as_not_blacklisted_is_kept_until_it_is() {
    let cache = postgres(true);
    let reads = AtomicU64::new(0);
    let ask = |listed: bool| {
        let reads = &reads;
        cache.blacklisted("j1", async move {
            reads.fetch_add(1, Ordering::Relaxed);
            Ok(listed)
        })
    };
    assert!(!ask(false).await.unwrap());
    assert!(!ask(true).await.unwrap(), "kept: not asked again");
    assert_eq!(reads.load(Ordering::Relaxed), 1);
    assert_eq!(cache.unlisted_len(), 1);
    cache.notified("blacklist:j2");
    assert!(!ask(true).await.unwrap(), "another token's note leaves it");
    cache.notified("blacklist:j1");
    assert!(ask(true).await.unwrap());
    assert!(
        ask(true).await.unwrap(),
        "a blacklisted token is never kept"
    );
    assert_eq!(reads.load(Ordering::Relaxed), 3);
    assert!(cache.is_empty());
    // This instance's own blacklisting drops it at once.
    assert!(!ask(false).await.unwrap());
    cache.forget_unlisted("j1");
    assert!(ask(true).await.unwrap());
}

#[tokio::test]
async fn start_up_waits_for_the_listener() {
    assert!(Cache::off().until_listening(Duration::ZERO).await);
    let cache = postgres(false);
    assert!(!cache.until_listening(Duration::from_millis(20)).await);
    let up = tokio::spawn({
        let cache = cache.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cache.set_listening(true);
        }
    });
    let began = std::time::Instant::now();
    assert!(cache.until_listening(Duration::from_secs(10)).await);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "woken, not timed out"
    );
    up.await.unwrap();
}
