//! Rate limits of the endpoints that guess or spend passwords (login,
//! registration, set_password, the email flows) and of refresh: GCRA, per
//! client address and per username, with logins counted so that a stranger
//! cannot lock a user out (see [`Throttle::check_login`]). The counters
//! live in this instance's memory (`memory.rs`, governor) or in Redis
//! (`shared.rs`), shared by every instance; when Redis is unreachable each
//! instance falls back to its own counters. Plain Rust: the HTTP layer
//! finds the client's address and username.

mod memory;
mod shared;

use std::net::IpAddr;
use std::time::Duration;

use crate::config::{Rate, ThrottleBackend, ThrottleSettings};
use crate::metrics::Metrics;

pub use shared::RedisError;

/// The groups of endpoints with limits of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Login,
    Register,
    Refresh,
    /// Every check of `current_password` by a signed-in user: set_password,
    /// set_username and deleting a user.
    SetPassword,
    /// The email flows: activation, resends and resets.
    Reset,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::Refresh => "refresh",
            Self::SetPassword => "set_password",
            Self::Reset => "reset",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Login => 0,
            Self::Register => 1,
            Self::Refresh => 2,
            Self::SetPassword => 3,
            Self::Reset => 4,
        }
    }
}

/// Which limit refused a request (a metric label and a log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Ip,
    Username,
    /// A username's attempts from every client it has not logged in from.
    UsernameAllClients,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Username => "username",
            Self::UsernameAllClients => "username_all_clients",
        }
    }
}

/// A request over a limit, and how long until one more would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("throttled for {wait:?} by the {} limit", limit.as_str())]
pub struct Throttled {
    pub wait: Duration,
    pub limit: Limit,
}

impl Throttled {
    /// Whole seconds to wait, rounded up as DRF does (at least 1).
    pub fn wait_secs(&self) -> u64 {
        let secs = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Usernames longer than Django's 150 characters cannot exist; counting
/// only a prefix bounds the memory one key takes.
const MAX_KEY_CHARS: usize = 150;

/// A username as the counters know it: normalized as logins look it up,
/// and case-insensitively, so neither another width nor another case buys
/// extra attempts.
fn username_key(username: &str) -> String {
    account_key(username).to_lowercase()
}

/// A username as the account it names: normalized as logins look it up,
/// case kept (usernames are case-sensitive, as in Django). What a known
/// address is remembered under: `Victim` logging in from an address must
/// not make it known for `victim`.
fn account_key(username: &str) -> String {
    crate::validation::normalize_username(username)
        .chars()
        .take(MAX_KEY_CHARS)
        .collect()
}

/// The rates of every scope, in `Scope::index` order: (per address, per
/// username); for logins, per (username, address).
type Rates = [(Option<Rate>, Option<Rate>); 5];

/// Every limit of the service; off when throttling is off.
pub struct Throttle {
    enabled: bool,
    rates: Rates,
    ceiling: Option<Rate>,
    known_lifetime: Duration,
    memory: memory::Counters,
    shared: Option<shared::Shared>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("enabled", &self.enabled)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Throttle {
    /// The limits the settings describe. With the Redis backend nothing is
    /// connected yet: the first check connects (see [`Self::ping`]).
    pub fn new(settings: &ThrottleSettings, metrics: &Metrics) -> Result<Self, RedisError> {
        let rates: Rates = [
            (settings.login.ip, settings.login.username),
            (settings.register.ip, settings.register.username),
            (settings.refresh.ip, settings.refresh.username),
            (settings.set_password.ip, settings.set_password.username),
            (settings.reset.ip, settings.reset.username),
        ];
        let shared = match settings.backend {
            ThrottleBackend::Redis if settings.enabled => Some(shared::Shared::new(
                secrecy::ExposeSecret::expose_secret(&settings.redis_url),
                settings.redis_timeout,
                metrics,
            )?),
            _ => None,
        };
        Ok(Self {
            enabled: settings.enabled,
            memory: memory::Counters::new(&rates, settings.login.username_all_clients),
            rates,
            ceiling: settings.login.username_all_clients,
            known_lifetime: settings.login.known_client_lifetime,
            shared,
        })
    }

    /// Whether Redis answers (for a start-up that requires it); `Ok` with
    /// the memory backend.
    pub async fn ping(&self) -> Result<(), RedisError> {
        match &self.shared {
            Some(shared) => shared.ping().await,
            None => Ok(()),
        }
    }

    fn rate(&self, scope: Scope, per_username: bool) -> Option<Rate> {
        if !self.enabled {
            return None;
        }
        let (ip, username) = self.rates[scope.index()];
        if per_username { username } else { ip }
    }

    /// Counts one request from `ip`.
    pub async fn check_ip(&self, scope: Scope, ip: IpAddr) -> Result<(), Throttled> {
        let Some(rate) = self.rate(scope, false) else {
            return Ok(());
        };
        let ip = canonical(ip);
        let key = format!("{}:ip:{ip}", scope.as_str());
        let wait = self
            .spend(&key, rate, || self.memory.check_ip(scope.index(), ip))
            .await;
        refusal(wait, Limit::Ip)
    }

    /// Counts one request for `username`.
    pub async fn check_username(&self, scope: Scope, username: &str) -> Result<(), Throttled> {
        let Some(rate) = self.rate(scope, true) else {
            return Ok(());
        };
        let name = username_key(username);
        let key = format!("{}:user:{name}", scope.as_str());
        let wait = self
            .spend(&key, rate, || {
                self.memory.check_username(scope.index(), name)
            })
            .await;
        refusal(wait, Limit::Username)
    }

    /// The wait for one request counted under `key`: in Redis while it
    /// answers, else in this instance (`local`).
    async fn spend(&self, key: &str, rate: Rate, local: impl FnOnce() -> Duration) -> Duration {
        if let Some(shared) = &self.shared
            && let Some(wait) = shared.check(key, rate).await
        {
            return wait;
        }
        local()
    }

    /// Counts one login attempt for `username` from `ip` (after
    /// [`Self::check_ip`]): against the (username, address) limit, then,
    /// unless the user has logged in from `ip` before, against the
    /// username's ceiling across every such address. A stranger spraying a
    /// user's name spends their own budgets and the ceiling, never the
    /// user's own address's. One atomic Redis call.
    pub async fn check_login(&self, username: &str, ip: IpAddr) -> Result<(), Throttled> {
        if !self.enabled {
            return Ok(());
        }
        let (per_client, ceiling) = (self.rate(Scope::Login, true), self.ceiling);
        if per_client.is_none() && ceiling.is_none() {
            return Ok(());
        }
        let (name, account) = (username_key(username), account_key(username));
        let ip = canonical(ip);
        let outcome = match &self.shared {
            Some(shared) => {
                shared
                    .check_login(&name, &account, ip, per_client, ceiling)
                    .await
            }
            None => None,
        };
        let (wait, limit) = match outcome {
            Some(outcome) => outcome,
            None => self
                .memory
                .check_login(&name, &account, ip, self.known_lifetime),
        };
        refusal(wait, limit)
    }

    /// Remembers that the account `username` logged in from `ip`: that
    /// address is exempt from the username's ceiling for
    /// `known_client_lifetime`. In memory too, so that it holds while
    /// Redis is away.
    pub async fn remember_login(&self, username: &str, ip: IpAddr) {
        if !self.enabled || self.ceiling.is_none() {
            return;
        }
        let account = account_key(username);
        let ip = canonical(ip);
        if let Some(shared) = &self.shared {
            shared.remember(&account, ip, self.known_lifetime).await;
        }
        self.memory.remember(account, ip);
    }

    /// Forgets keys whose limit is back to a full burst, and addresses
    /// known longer than their lifetime, so that memory does not grow with
    /// every address and username ever seen.
    pub fn forget_idle(&self) {
        self.memory.forget_idle(self.known_lifetime);
    }
}

/// `Err` for a wait longer than zero.
fn refusal(wait: Duration, limit: Limit) -> Result<(), Throttled> {
    if wait.is_zero() {
        Ok(())
    } else {
        Err(Throttled { wait, limit })
    }
}

/// The key of a client address: an IPv4 client reached over an IPv6 socket
/// counts as its IPv4 address, and an IPv6 client as its /64, the block a
/// single host or subscriber gets (otherwise one host would have 2^64
/// budgets).
fn canonical(ip: IpAddr) -> IpAddr {
    match unmapped(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// An IPv4 address reached over an IPv6 socket (`::ffff:a.b.c.d`) as the
/// IPv4 address it is.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn throttle(env: &[(&str, &str)]) -> Throttle {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Throttle::new(
            &Settings::load_from(None, env).unwrap().throttle,
            &Metrics::new(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_burst_then_refusal_with_the_wait() {
        let t = throttle(&[("TESSERA__THROTTLE__LOGIN__USERNAME", "3/min")]);
        for _ in 0..3 {
            t.check_username(Scope::Login, "Alice").await.unwrap();
        }
        let refused = t.check_username(Scope::Login, "alice").await.unwrap_err();
        // One cell comes back every 20 s.
        assert!(
            refused.wait_secs() > 15 && refused.wait_secs() <= 20,
            "{refused:?}"
        );
        // Other usernames and other scopes count apart.
        t.check_username(Scope::Login, "bob").await.unwrap();
        t.check_username(Scope::Register, "alice").await.unwrap();
    }

    #[tokio::test]
    async fn per_ip_and_v4_mapped_addresses_count_as_one() {
        let t = throttle(&[("TESSERA__THROTTLE__REFRESH__IP", "1/hour")]);
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        t.check_ip(Scope::Refresh, v4).await.unwrap();
        assert!(
            t.check_ip(Scope::Refresh, mapped)
                .await
                .unwrap_err()
                .wait_secs()
                > 3500
        );
        t.check_ip(Scope::Refresh, "10.1.2.4".parse().unwrap())
            .await
            .unwrap();
        // One IPv6 /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        t.check_ip(Scope::Refresh, v6("2001:db8:0:1::1"))
            .await
            .unwrap();
        assert!(
            t.check_ip(Scope::Refresh, v6("2001:db8:0:1:ffff::2"))
                .await
                .is_err()
        );
        t.check_ip(Scope::Refresh, v6("2001:db8:0:2::1"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn disabled_or_empty_rates_never_refuse() {
        let t = throttle(&[
            ("TESSERA__THROTTLE__ENABLED", "false"),
            ("TESSERA__THROTTLE__LOGIN__IP", "1/day"),
        ]);
        let t2 = throttle(&[("TESSERA__THROTTLE__LOGIN__IP", "")]);
        for _ in 0..500 {
            t.check_ip(Scope::Login, "10.0.0.1".parse().unwrap())
                .await
                .unwrap();
            t2.check_ip(Scope::Login, "10.0.0.1".parse().unwrap())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_stranger_cannot_lock_a_user_out_of_an_address_they_logged_in_from() {
        let t = throttle(&[
            ("TESSERA__THROTTLE__LOGIN__USERNAME", "2/hour"),
            ("TESSERA__THROTTLE__LOGIN__USERNAME_ALL_CLIENTS", "5/hour"),
        ]);
        let ip = |n: u8| IpAddr::from([127, 0, 0, n]);
        t.remember_login("victim", ip(1)).await;
        // Two tries per address, five across addresses the victim never
        // used: the sixth stranger is refused by the ceiling.
        for n in 10..13 {
            t.check_login("victim", ip(n)).await.unwrap();
            if n < 12 {
                t.check_login("Victim", ip(n)).await.unwrap();
            } else {
                let e = t.check_login("victim", ip(n)).await.unwrap_err();
                assert_eq!(e.limit, Limit::UsernameAllClients);
            }
        }
        let e = t.check_login("victim", ip(10)).await.unwrap_err();
        assert_eq!(e.limit, Limit::Username, "its own per-address budget");
        // The victim's own address is exempt from the ceiling.
        t.check_login("victim", ip(1)).await.unwrap();
        t.check_login("victim", ip(1)).await.unwrap();
        assert_eq!(
            t.check_login("victim", ip(1)).await.unwrap_err().limit,
            Limit::Username,
            "but not from its per-address limit"
        );
        // Other users are untouched.
        t.check_login("bob", ip(10)).await.unwrap();
        // Another account whose name differs only by case makes nothing
        // known for this one.
        t.remember_login("Victim", ip(20)).await;
        assert_eq!(
            t.check_login("victim", ip(20)).await.unwrap_err().limit,
            Limit::UsernameAllClients
        );
    }

    #[test]
    fn wait_rounds_up_to_whole_seconds() {
        let w = |ms| {
            Throttled {
                wait: Duration::from_millis(ms),
                limit: Limit::Ip,
            }
            .wait_secs()
        };
        assert_eq!(w(0), 1);
        assert_eq!(w(200), 1);
        assert_eq!(w(1000), 1);
        assert_eq!(w(1001), 2);
    }

    #[test]
    fn rates_parse_as_drf_writes_them() {
        for (s, n, secs) in [
            ("5/min", 5, 60),
            ("5/m", 5, 60),
            ("100/hour", 100, 3600),
            ("10/s", 10, 1),
            ("1000/day", 1000, 86400),
        ] {
            let r: Rate = s.parse().unwrap();
            assert_eq!((r.count.get(), r.period.as_secs()), (n, secs), "{s}");
        }
        for bad in ["5", "0/min", "x/min", "5/week", "5/"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }
}
