//! Rate limits of the endpoints that guess or spend passwords (login,
//! registration, set_password) and of refresh: GCRA limiters from
//! `governor`, one per client IP and one per username for each group.
//! Plain Rust: the HTTP layer finds the client's address and username.

use std::net::IpAddr;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Rate, ScopeRates, ThrottleSettings};

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
}

/// A request over a limit, and how long until one more would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("throttled for {wait:?}")]
pub struct Throttled {
    pub wait: Duration,
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

struct Limits {
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    username: Option<DefaultKeyedRateLimiter<String>>,
}

fn quota(rate: Rate) -> Quota {
    let per_cell = (rate.period / rate.count.get()).max(Duration::from_nanos(1));
    Quota::with_period(per_cell)
        .expect("a non-zero period")
        .allow_burst(rate.count)
}

impl Limits {
    fn new(rates: &ScopeRates) -> Self {
        Self {
            ip: rates.ip.map(|r| RateLimiter::dashmap(quota(r))),
            username: rates.username.map(|r| RateLimiter::dashmap(quota(r))),
        }
    }
}

/// Every limiter of the service; `None` when throttling is off.
pub struct Throttle {
    scopes: Option<[Limits; 5]>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("enabled", &self.scopes.is_some())
            .finish()
    }
}

impl Throttle {
    pub fn new(settings: &ThrottleSettings) -> Self {
        let scopes = settings.enabled.then(|| {
            [
                Limits::new(&settings.login),
                Limits::new(&settings.register),
                Limits::new(&settings.refresh),
                Limits::new(&settings.set_password),
                Limits::new(&settings.reset),
            ]
        });
        Self {
            scopes,
            clock: DefaultClock::default(),
        }
    }

    fn limits(&self, scope: Scope) -> Option<&Limits> {
        let i = match scope {
            Scope::Login => 0,
            Scope::Register => 1,
            Scope::Refresh => 2,
            Scope::SetPassword => 3,
            Scope::Reset => 4,
        };
        self.scopes.as_ref().map(|s| &s[i])
    }

    /// Counts one request from `ip`.
    pub fn check_ip(&self, scope: Scope, ip: IpAddr) -> Result<(), Throttled> {
        let Some(limiter) = self.limits(scope).and_then(|l| l.ip.as_ref()) else {
            return Ok(());
        };
        limiter
            .check_key(&canonical(ip))
            .map_err(|not_until| Throttled {
                wait: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Counts one request for `username` (normalized as logins look it up,
    /// and case-insensitively, so neither another width nor another case
    /// buys extra attempts).
    pub fn check_username(&self, scope: Scope, username: &str) -> Result<(), Throttled> {
        let Some(limiter) = self.limits(scope).and_then(|l| l.username.as_ref()) else {
            return Ok(());
        };
        let key: String = crate::validation::normalize_username(username)
            .chars()
            .take(MAX_KEY_CHARS)
            .collect::<String>()
            .to_lowercase();
        limiter.check_key(&key).map_err(|not_until| Throttled {
            wait: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Forgets keys whose limit is back to a full burst, so that the maps
    /// do not grow with every address and username ever seen.
    pub fn forget_idle(&self) {
        for limits in self.scopes.iter().flatten() {
            if let Some(l) = &limits.ip {
                l.retain_recent();
                l.shrink_to_fit();
            }
            if let Some(l) = &limits.username {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
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
        Throttle::new(&Settings::load_from(None, env).unwrap().throttle)
    }

    #[test]
    fn a_burst_then_refusal_with_the_wait() {
        let t = throttle(&[("TESSERA__THROTTLE__LOGIN__USERNAME", "3/min")]);
        for _ in 0..3 {
            t.check_username(Scope::Login, "Alice").unwrap();
        }
        let refused = t.check_username(Scope::Login, "alice").unwrap_err();
        // One cell comes back every 20 s.
        assert!(
            refused.wait_secs() > 15 && refused.wait_secs() <= 20,
            "{refused:?}"
        );
        // Other usernames and other scopes count apart.
        t.check_username(Scope::Login, "bob").unwrap();
        t.check_username(Scope::Register, "alice").unwrap();
    }

    #[test]
    fn per_ip_and_v4_mapped_addresses_count_as_one() {
        let t = throttle(&[("TESSERA__THROTTLE__REFRESH__IP", "1/hour")]);
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        t.check_ip(Scope::Refresh, v4).unwrap();
        assert!(t.check_ip(Scope::Refresh, mapped).unwrap_err().wait_secs() > 3500);
        t.check_ip(Scope::Refresh, "10.1.2.4".parse().unwrap())
            .unwrap();
        // One IPv6 /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        t.check_ip(Scope::Refresh, v6("2001:db8:0:1::1")).unwrap();
        assert!(
            t.check_ip(Scope::Refresh, v6("2001:db8:0:1:ffff::2"))
                .is_err()
        );
        t.check_ip(Scope::Refresh, v6("2001:db8:0:2::1")).unwrap();
    }

    #[test]
    fn disabled_or_empty_rates_never_refuse() {
        let t = throttle(&[
            ("TESSERA__THROTTLE__ENABLED", "false"),
            ("TESSERA__THROTTLE__LOGIN__IP", "1/day"),
        ]);
        let t2 = throttle(&[("TESSERA__THROTTLE__LOGIN__IP", "")]);
        for _ in 0..500 {
            t.check_ip(Scope::Login, "10.0.0.1".parse().unwrap())
                .unwrap();
            t2.check_ip(Scope::Login, "10.0.0.1".parse().unwrap())
                .unwrap();
        }
    }

    #[test]
    fn wait_rounds_up_to_whole_seconds() {
        let w = |ms| {
            Throttled {
                wait: Duration::from_millis(ms),
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
