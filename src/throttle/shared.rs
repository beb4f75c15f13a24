//! Counters in Redis, shared by every instance: GCRA in Lua, one atomic
//! call per check, on Redis's clock (instances' clocks need not agree).
//! While Redis cannot be reached each check falls back to the instance's
//! own counters: said once in the log, counted in a metric, and Redis is
//! tried again every second until it answers.

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::Limit;
use crate::config::Rate;
use crate::metrics::Metrics;

/// A Redis URL that cannot be used, or Redis not answering at start-up.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("throttle.redis_url is not a Redis URL: {0}")]
    Url(String),
    #[error("Redis at throttle.redis_url does not answer: {0}")]
    Unreachable(String),
}

/// GCRA on one key, in microseconds (Lua numbers hold them exactly for
/// centuries). Returns the microseconds to wait; 0: counted.
const GCRA: &str = r#"
local function gcra(key, interval, burst, now)
  if interval <= 0 then return 0 end
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local wait = new_tat - interval * burst - now
  if wait > 0 then return wait end
  redis.call('SET', key, new_tat, 'PX', math.max(math.ceil((new_tat - now) / 1000), 1))
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"#;

/// One limit: KEYS[1], ARGV = interval (µs), burst.
const CHECK: &str = r#"
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
"#;

/// A login: KEYS = (username, address) counter, username ceiling, known
/// (account, address); ARGV = the two limits' interval and burst (0: no
/// such limit). Returns {wait µs, which limit: 1 pair, 2 ceiling}.
const LOGIN: &str = r#"
local w = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now)
if w > 0 then return {w, 1} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 0} end
w = gcra(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), now)
if w > 0 then return {w, 2} end
return {0, 0}
"#;

const PREFIX: &str = "tessera:throttle:";

/// A rate as the scripts take it: microseconds per request and burst.
fn gcra_args(rate: Option<Rate>) -> (u64, u32) {
    match rate {
        Some(r) => {
            let us = (r.period.as_micros() / u128::from(r.count.get())).max(1);
            (u64::try_from(us).unwrap_or(u64::MAX), r.count.get())
        }
        None => (0, 0),
    }
}

pub(super) struct Shared {
    conn: ConnectionManager,
    check: redis::Script,
    login: redis::Script,
    timeout: Duration,
    /// Redis failed and the instance counts on its own.
    down: AtomicBool,
    /// Milliseconds after `started` before Redis is tried again.
    retry_at: AtomicU64,
    started: Instant,
    fallbacks: IntCounter,
    up: IntGauge,
}

impl Shared {
    pub(super) fn new(url: &str, timeout: Duration, metrics: &Metrics) -> Result<Self, RedisError> {
        let client = redis::Client::open(url).map_err(|e| RedisError::Url(e.to_string()))?;
        // A lazy connection: a Redis that is down at start-up is no
        // reason not to serve. One reconnection attempt per failed call;
        // `run` spaces the calls.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RedisError::Url(e.to_string()))?;
        // Up once Redis has answered.
        metrics.throttle_redis_up.set(0);
        Ok(Self {
            conn,
            check: redis::Script::new(&format!("{GCRA}{CHECK}")),
            login: redis::Script::new(&format!("{GCRA}{LOGIN}")),
            timeout,
            down: AtomicBool::new(false),
            retry_at: AtomicU64::new(0),
            started: Instant::now(),
            fallbacks: metrics.throttle_redis_fallbacks.clone(),
            up: metrics.throttle_redis_up.clone(),
        })
    }

    pub(super) async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(2)), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RedisError::Unreachable(e.to_string())),
            Err(_) => Err(RedisError::Unreachable("no answer in time".into())),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs one call, within the timeout; `None` when Redis is down (the
    /// caller counts on its own). While down, one call a second probes
    /// Redis; the others do not wait for it.
    async fn run<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if self.down.load(Ordering::Relaxed) {
            let due = self.retry_at.load(Ordering::Relaxed);
            let now = self.now_ms();
            let probe = now >= due
                && self
                    .retry_at
                    .compare_exchange(due, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok();
            if !probe {
                self.fallbacks.inc();
                return None;
            }
        }
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => {
                self.up.set(1);
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: rate limits are shared again");
                }
                Some(value)
            }
            outcome => {
                self.retry_at.store(self.now_ms() + 1000, Ordering::Relaxed);
                self.up.set(0);
                if !self.down.swap(true, Ordering::Relaxed) {
                    let error = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {:?}", self.timeout),
                    };
                    tracing::warn!(
                        error,
                        "Redis is unreachable: each instance counts rate limits on its own until it is back"
                    );
                }
                self.fallbacks.inc();
                None
            }
        }
    }

    /// One limit on `key`: the wait (zero: counted), or `None` if Redis is
    /// down.
    pub(super) async fn check(&self, key: &str, rate: Rate) -> Option<Duration> {
        let (interval, burst) = gcra_args(Some(rate));
        let mut conn = self.conn.clone();
        let mut call = self.check.key(format!("{PREFIX}{key}"));
        call.arg(interval).arg(burst);
        let wait: u64 = self.run(call.invoke_async(&mut conn)).await?;
        Some(Duration::from_micros(wait))
    }

    pub(super) async fn check_login(
        &self,
        name: &str,
        account: &str,
        ip: IpAddr,
        per_client: Option<Rate>,
        ceiling: Option<Rate>,
    ) -> Option<(Duration, Limit)> {
        let (pair_interval, pair_burst) = gcra_args(per_client);
        let (all_interval, all_burst) = gcra_args(ceiling);
        let mut conn = self.conn.clone();
        let mut call = self.login.key(format!("{PREFIX}login:user_ip:{name}:{ip}"));
        call.key(format!("{PREFIX}login:user_all:{name}"))
            .key(known_key(account, ip))
            .arg(pair_interval)
            .arg(pair_burst)
            .arg(all_interval)
            .arg(all_burst);
        let (wait, which): (u64, u8) = self.run(call.invoke_async(&mut conn)).await?;
        let limit = if which == 1 {
            Limit::Username
        } else {
            Limit::UsernameAllClients
        };
        Some((Duration::from_micros(wait), limit))
    }

    /// Marks (account, address) known for `lifetime`; `false` if Redis is
    /// down.
    pub(super) async fn remember(&self, account: &str, ip: IpAddr, lifetime: Duration) -> bool {
        let mut conn = self.conn.clone();
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("SET");
        cmd.arg(known_key(account, ip)).arg(1).arg("PX").arg(ms);
        self.run(cmd.query_async::<()>(&mut conn)).await.is_some()
    }
}

fn known_key(account: &str, ip: IpAddr) -> String {
    format!("{PREFIX}login:known:{account}:{ip}")
}
