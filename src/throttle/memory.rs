//! The counters of one instance: governor's GCRA limiters keyed by
//! address, username, or (username, address), and the addresses each user
//! has logged in from.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Limit, Rates};
use crate::config::Rate;

fn quota(rate: Rate) -> Quota {
    let per_cell = (rate.period / rate.count.get()).max(Duration::from_nanos(1));
    Quota::with_period(per_cell)
        .expect("a non-zero period")
        .allow_burst(rate.count)
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    rate: Option<Rate>,
) -> Option<DefaultKeyedRateLimiter<K>> {
    rate.map(|r| RateLimiter::dashmap(quota(r)))
}

pub(super) struct Counters {
    ip: Vec<Option<DefaultKeyedRateLimiter<IpAddr>>>,
    username: Vec<Option<DefaultKeyedRateLimiter<String>>>,
    /// Logins: one username from one address.
    login_pair: Option<DefaultKeyedRateLimiter<(String, IpAddr)>>,
    /// Logins: one username from every address it has not logged in from.
    ceiling: Option<DefaultKeyedRateLimiter<String>>,
    /// When each user last logged in from each address.
    known: Mutex<HashMap<(String, IpAddr), Instant>>,
    clock: DefaultClock,
}

impl Counters {
    pub(super) fn new(rates: &Rates, ceiling: Option<Rate>) -> Self {
        Self {
            ip: rates.iter().map(|(ip, _)| limiter(*ip)).collect(),
            username: rates.iter().map(|(_, name)| limiter(*name)).collect(),
            login_pair: limiter(rates[0].1),
            ceiling: limiter(ceiling),
            known: Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    fn wait<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<K>>,
        key: &K,
    ) -> Duration {
        match limiter.map(|l| l.check_key(key)) {
            Some(Err(not_until)) => not_until.wait_time_from(self.clock.now()),
            _ => Duration::ZERO,
        }
    }

    pub(super) fn check_ip(&self, scope: usize, ip: IpAddr) -> Duration {
        self.wait(self.ip[scope].as_ref(), &ip)
    }

    pub(super) fn check_username(&self, scope: usize, name: String) -> Duration {
        self.wait(self.username[scope].as_ref(), &name)
    }

    /// `name` is the counters' key, `account` the known addresses'.
    pub(super) fn check_login(
        &self,
        name: &str,
        account: &str,
        ip: IpAddr,
        known_for: Duration,
    ) -> (Duration, Limit) {
        let pair = (name.to_owned(), ip);
        let wait = self.wait(self.login_pair.as_ref(), &pair);
        if !wait.is_zero() {
            return (wait, Limit::Username);
        }
        if self.is_known(&(account.to_owned(), ip), known_for) {
            return (Duration::ZERO, Limit::UsernameAllClients);
        }
        (
            self.wait(self.ceiling.as_ref(), &pair.0),
            Limit::UsernameAllClients,
        )
    }

    fn is_known(&self, pair: &(String, IpAddr), known_for: Duration) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(pair).is_some_and(|at| at.elapsed() < known_for)
    }

    pub(super) fn remember(&self, name: String, ip: IpAddr) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.insert((name, ip), Instant::now());
    }

    pub(super) fn forget_idle(&self, known_for: Duration) {
        fn trim<K: std::hash::Hash + Eq + Clone>(l: &DefaultKeyedRateLimiter<K>) {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.ip.iter().flatten().for_each(trim);
        self.username.iter().flatten().for_each(trim);
        self.login_pair.iter().for_each(trim);
        self.ceiling.iter().for_each(trim);
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|_, at| at.elapsed() < known_for);
        known.shrink_to_fit();
    }
}
