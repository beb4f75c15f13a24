//! PostgreSQL: the LISTEN side of the cache's invalidation. Triggers
//! (migrations `m20261202_000008_cache_notify`,
//! `m20261202_000009_blacklist_notify` and
//! `m20261202_000010_cache_channel_per_schema`) send `user:<id>`,
//! `keys:<user id>` or `family:<id>` on the schema's [`channel_for`] when
//! such a row changes or goes, and `blacklist:<jti>` when a token is
//! blacklisted; every instance drops what it kept of it, and acknowledges
//! the other instances' sync notes (see `SYNC_PREFIX`) on the same
//! connection.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use sea_orm::sqlx::PgPool;
use sea_orm::sqlx::postgres::PgListener;

use super::Cache;

/// The notification channel of the deployment whose tables are in
/// `schema`, as the triggers name it: `tessera_cache` in `public`, else
/// `tessera_cache_` and 32 hex digits of the schema's SHA-256 (a channel
/// name has at most 63 bytes, a schema name as many; SHA-256 rather than
/// MD5, which a FIPS-mode PostgreSQL refuses). Notifications reach every session of the
/// database, so deployments in different schemas of one database need
/// channels of their own: on one channel each would wait for the others'
/// acknowledgements, and for up to `SILENCE` after one of them stopped
/// without saying so.
pub fn channel_for(schema: &str) -> String {
    if schema == "public" {
        return "tessera_cache".to_owned();
    }
    let digest = <sha2::Sha256 as sha2::Digest>::digest(schema.as_bytes());
    format!("tessera_cache_{}", hex::encode(&digest[..16]))
}

/// Listens for as long as the task runs, reconnecting after a failure,
/// and sends a heartbeat every [`super::BEAT_EVERY`]. The cache serves
/// only while the LISTEN is up and hearing: notifications sent while it
/// was down are lost, so it starts empty each time it comes back.
///
/// The LISTEN has a connection of its own, opened from `url`, outside the
/// pool: taken from the pool it would leave the pool's warm connection
/// busy for good.
pub async fn listen(cache: Cache, pool: PgPool, url: String) {
    let beating = {
        let (cache, pool) = (cache.clone(), pool.clone());
        async move {
            // The first one a beat after start, not in the start-up rush.
            let first = tokio::time::Instant::now() + super::BEAT_EVERY;
            let mut every = tokio::time::interval_at(first, super::BEAT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // A failure shows as silence, which the cache acts on.
                let _ = cache.beat(&pool).await;
            }
        }
    };
    tokio::select! {
        () = beating => {}
        () = hear(cache, &url) => {}
    }
}

async fn hear(cache: Cache, url: &str) {
    let mut failures = 0u32;
    loop {
        match subscribe(&cache, url).await {
            Ok((mut listener, channel)) => {
                failures = 0;
                cache.set_listening(true);
                tracing::debug!("cache invalidation: listening");
                // Until the connection is gone.
                let why = match take_in(&cache, &mut listener, &channel).await {
                    Ok(()) => "closed or silent".to_owned(),
                    Err(e) => e.to_string(),
                };
                cache.set_listening(false);
                tracing::warn!(
                    error = %why,
                    "cache invalidation: lost the LISTEN connection; reading from the database until it is back"
                );
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(error = %e, "cache invalidation: cannot LISTEN; reading from the database");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Notifications taken in between two yields to the other tasks.
const BATCH: usize = 256;

/// With our own beats every second, this long without a notification means
/// the connection is dead though not closed (a half-open TCP connection):
/// reconnect, rather than keep beating and have the others wait for
/// acknowledgements that cannot come.
const DEAD_AFTER: Duration = Duration::from_secs(6);

/// Applies notifications as they come; once it has taken in everything
/// that had arrived, acknowledges the other instances' marks among them
/// (PostgreSQL sends a transaction's notifications together, so what came
/// with a mark has been applied too). Returns when the connection is gone.
async fn take_in(
    cache: &Cache,
    listener: &mut PgListener,
    channel: &str,
) -> Result<(), sea_orm::sqlx::Error> {
    // `None`: the connection is gone.
    while let Ok(next) = tokio::time::timeout(DEAD_AFTER, listener.try_recv()).await {
        let Some(n) = next? else {
            return Ok(());
        };
        cache.notified(n.payload());
        for taken in 1.. {
            if taken % BATCH == 0 {
                tokio::task::yield_now().await;
            }
            // One poll: what is already read or waiting in the socket.
            // `try_recv` is cancel-safe (a message is consumed whole).
            let mut next = std::pin::pin!(listener.try_recv());
            match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
                Poll::Ready(Ok(Some(n))) => cache.notified(n.payload()),
                Poll::Ready(Ok(None)) => return Ok(()),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        let acks = cache.acks_due();
        if !acks.is_empty() {
            // On the LISTEN connection: no pool connection to wait for, and
            // notifications arriving meanwhile are kept for the next turn.
            super::send(&mut *listener, channel, acks).await?;
        }
    }
    Ok(())
}

/// A LISTEN connection that has told the others this instance is here:
/// its first beat is committed before the cache serves anything, so a
/// write committed after any entry was kept waits for this instance's
/// acknowledgement.
/// With the channel it listens on.
async fn subscribe(
    cache: &Cache,
    url: &str,
) -> Result<(PgListener, Arc<str>), sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    // The schema the tables are found in, as for the pool's connections
    // (same URL, so the same search_path).
    let schema: Option<String> = sea_orm::sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(&mut listener)
        .await?;
    let schema = schema.ok_or_else(|| {
        sea_orm::sqlx::Error::Configuration(
            "no schema of the search_path exists, so there are no tables to watch".into(),
        )
    })?;
    let channel = cache.use_channel(channel_for(&schema));
    listener.listen(&channel).await?;
    if let Some(beat) = cache.beat_payload() {
        super::send(&mut listener, &channel, vec![beat]).await?;
    }
    Ok((listener, channel))
}
