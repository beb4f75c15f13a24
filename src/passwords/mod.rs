//! Password hashing with argon2id, off the async runtime on a bounded pool.
//!
//! Hashing costs tens of milliseconds of CPU by design. Running it on the
//! async workers would stall every other request (token verification
//! included), so each hash runs on a blocking thread, and a semaphore keeps
//! the number of simultaneous hashes at `password.hash_workers`.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use crate::config::PasswordSettings;

mod django;
mod memory;
use django::Stored;
pub use memory::IDLE as MEMORY_IDLE;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the password hashing pool is closed")]
    PoolClosed,
    /// More password checks are waiting than `password.hash_queue` allows.
    #[error("the password hashing queue is full")]
    Busy,
}

/// Hashes and verifies passwords with the configured argon2id cost.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Hashes waiting for a slot or running.
    queued: std::sync::atomic::AtomicI64,
    /// The most that may be waiting or running at once.
    capacity: i64,
    workers: usize,
    /// A real hash of a random password with the configured cost: verifying
    /// against it makes a login for an unknown user cost what a wrong
    /// password costs, so timing does not reveal which usernames exist.
    dummy_hash: String,
    /// The configured cost, to tell a hash that needs renewing.
    params: Params,
    allow_weak: bool,
    /// argon2 computations (hashes and verifications, dummy ones included)
    /// since start: what lets a test prove that every failed login costs
    /// exactly one.
    runs: std::sync::atomic::AtomicU64,
    /// Working memory kept between checks (see `memory`).
    arena: memory::Arena,
}

impl Inner {
    /// Whether `candidate` is the password of the argon2 PHC `hash`: what
    /// `PasswordVerifier::verify_password` does, in a reused block.
    fn verify_argon2(&self, candidate: &[u8], hash: &PasswordHash) -> bool {
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
            return false;
        };
        let version = match hash.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(hash) else {
            return false;
        };
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut out = [0u8; 64];
        let Some(out) = out.get_mut(..expected.len()) else {
            return false;
        };
        let computed = self.arena.with(blocks, |memory| {
            argon2.hash_password_into_with_memory(candidate, salt, &mut *out, memory)
        });
        // Constant time, as the crate's own comparison of outputs.
        computed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("workers", &self.inner.workers)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(settings: &PasswordSettings) -> Result<Self, PasswordError> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|e| PasswordError::Hash(e.to_string()))?;
        let dummy_hash = argon2
            .hash_password(&random)
            .map_err(|e| PasswordError::Hash(e.to_string()))?
            .to_string();
        let workers = match settings.hash_workers {
            0 => crate::config::all_cpus_but_one(),
            n => n,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                argon2,
                permits: Arc::new(Semaphore::new(workers)),
                queued: std::sync::atomic::AtomicI64::new(0),
                capacity: i64::try_from(workers.saturating_add(settings.hash_queue))
                    .unwrap_or(i64::MAX),
                workers,
                dummy_hash,
                params,
                allow_weak: settings.allow_weak_django_hashes,
                runs: std::sync::atomic::AtomicU64::new(0),
                arena: memory::Arena::default(),
            }),
        })
    }

    /// Whether `stored` should be replaced by a hash of the configured cost
    /// after a successful login: any format but Tessera's own argon2id
    /// with exactly the configured parameters (Django's `must_update`).
    pub fn needs_upgrade(&self, stored: &str) -> bool {
        if !stored.starts_with("$argon2id$") {
            return !stored.starts_with('!');
        }
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return false;
        };
        let want = &self.inner.params;
        (params.m_cost(), params.t_cost(), params.p_cost())
            != (want.m_cost(), want.t_cost(), want.p_cost())
    }

    /// argon2 computations run so far (see [`Inner::runs`]).
    pub fn argon2_runs(&self) -> u64 {
        self.inner.runs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Gives back the argon2 working memory unused for `idle` (a
    /// background task calls this); returns how many blocks were released.
    pub fn release_idle_memory(&self, idle: std::time::Duration) -> usize {
        self.inner.arena.release_idle(idle)
    }

    /// Hashes waiting for a pool slot or running now.
    pub fn queue_depth(&self) -> i64 {
        self.inner.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on a blocking thread once a pool slot is free. The slot and
    /// the queue count move into the blocking job: a request dropped while
    /// its hash runs (client gone, timeout) still holds its place until the
    /// hash ends, so the bounds hold however requests end.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        struct Queued(Arc<Inner>);
        impl Drop for Queued {
            fn drop(&mut self) {
                self.0
                    .queued
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let before = self
            .inner
            .queued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let queued = Queued(Arc::clone(&self.inner));
        if before >= self.inner.capacity {
            return Err(PasswordError::Busy);
        }
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| PasswordError::PoolClosed)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            queued
                .0
                .runs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let result = span.in_scope(|| f(&queued.0));
            drop(permit);
            drop(queued);
            result
        })
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        self.run(move |inner| {
            inner
                .argon2
                .hash_password(password.expose_secret().as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown
    /// user) the dummy hash is verified instead, at the same cost, and the
    /// answer is always `false`. An unparsable stored hash never matches.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move |inner| {
            let candidate = password.expose_secret().as_bytes();
            let dummy = || {
                if let Ok(hash) = PasswordHash::new(&inner.dummy_hash) {
                    inner.verify_argon2(candidate, &hash);
                }
                false
            };
            let Some(stored) = &stored else {
                return dummy();
            };
            match Stored::parse(stored) {
                Stored::Argon2(phc) => match PasswordHash::new(phc) {
                    Ok(hash) => inner.verify_argon2(candidate, &hash),
                    Err(_) => dummy(),
                },
                // A password that never matches still costs what a wrong
                // one costs.
                Stored::Unusable | Stored::Unknown => dummy(),
                Stored::Weak(_) if !inner.allow_weak => dummy(),
                // Django's own formats cost what their parameters say.
                legacy => django::verify(&legacy, candidate, inner.allow_weak),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordSettings {
        PasswordSettings {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            hash_workers: 2,
            hash_queue: 8,
            allow_weak_django_hashes: false,
        }
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let phc = h.hash("Tr0ub4dor_3xyz".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(
            h.verify("Tr0ub4dor_3xyz".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify("wrong".into(), Some(phc.clone())).await.unwrap());
        assert!(!h.verify("Tr0ub4dor_3xyz".into(), None).await.unwrap());
        assert!(
            !h.verify("x".into(), Some("not a hash".into()))
                .await
                .unwrap()
        );
        let again = h.hash("Tr0ub4dor_3xyz".into()).await.unwrap();
        assert_ne!(phc, again, "each hash has its own salt");
    }

    #[tokio::test]
    async fn only_the_configured_argon2id_cost_is_current() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let current = h.hash("pw".into()).await.unwrap();
        assert!(!h.needs_upgrade(&current));
        let mut stronger = cheap();
        stronger.argon2_iterations = 2;
        assert!(
            PasswordHasher::new(&stronger)
                .unwrap()
                .needs_upgrade(&current)
        );
        assert!(h.needs_upgrade("pbkdf2_sha256$1000$salt$aGFzaA=="));
        assert!(
            h.needs_upgrade(&format!("argon2{current}")),
            "Django's prefix"
        );
        assert!(!h.needs_upgrade("!unusable"));
    }

    #[test]
    fn bad_params_are_an_error() {
        let mut s = cheap();
        s.argon2_memory_kib = 1;
        assert!(PasswordHasher::new(&s).is_err());
    }
}
