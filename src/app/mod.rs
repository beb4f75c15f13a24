//! The application state every request shares, the domain error, and the
//! flows common to every kind of session: registration and the password
//! check. The JWT flows are in `sessions.rs`, account management and opaque
//! keys in `accounts.rs`; all are plain Rust that tests can call directly,
//! and only they see the state's parts.

mod accounts;
mod groups;
mod recovery;
mod sessions;
mod sliding;
#[cfg(test)]
mod tests;

pub use recovery::Link;
pub use sessions::Refreshed;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;

use crate::cache::Cache;
use crate::config::{AuthTokenClass, Settings};
use crate::db::{DbHealth, StoreError};
use crate::local::{LocalError, LocalReads, LocalWrites};
use crate::mail::{Kind, MailError, Mailer};
use crate::metrics::Metrics;
use crate::passwords::{PasswordError, PasswordHasher};
use crate::refresh::RotationPolicy;
use crate::throttle::Throttle;
use crate::tokens::{Claims, Expect, Subject, TokenError, TokenService};
use crate::users::{self, CreateUserError, NewUser, User};
use crate::validation::{self, FieldErrors};

/// What went wrong in a flow, said plainly; `http/error.rs` owns the
/// status codes and the wording clients see.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no active account found with the given credentials")]
    BadCredentials,
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A Bearer token that no class of `jwt.auth_token_classes` accepted,
    /// with each class's reason.
    #[error("bearer token refused")]
    BearerRefused(Vec<(AuthTokenClass, TokenError)>),
    #[error("token is blacklisted")]
    Blacklisted,
    #[error("no active account for the token")]
    NoActiveAccount,
    #[error("token carries no user id")]
    NoUserId,
    #[error("user not found")]
    UserNotFound,
    #[error("user inactive")]
    UserInactive,
    /// The refresh token predates the user's last password change.
    #[error("password changed since the token was issued")]
    PasswordChanged,
    /// An opaque key that does not exist (or expired).
    #[error("invalid opaque key")]
    InvalidKey,
    /// An opaque key whose user is inactive.
    #[error("opaque key of an inactive user")]
    KeyUserInactive,
    /// Input refused field by field.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// A user id that names no user.
    #[error("no such user")]
    NoSuchUser,
    /// No such group, or (for a removal) the user is not in it.
    #[error("no such group")]
    NoSuchGroup,
    /// A user the requester may not see.
    #[error("user hidden from the requester")]
    Hidden,
    /// An activation link of an account that is active already.
    #[error("stale token")]
    StaleToken,
    /// A reset asked for an unknown email, with the settings that say so.
    #[error("no user with that email")]
    EmailNotFound,
    /// resend_activation while activation mails are off.
    #[error("activation mails are off")]
    ActivationOff,
    #[error("permission denied")]
    Forbidden,
    /// The operating system gave no random bytes for a new secret.
    #[error("no randomness: {0}")]
    Randomness(String),
    /// A signing job stopped before it finished (the runtime shutting
    /// down).
    #[error("signing stopped: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// Why the state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Redis(#[from] crate::throttle::RedisError),
    #[error("database.cache_entries: {0}")]
    Cache(String),
    #[error("database.url: {0}")]
    LocalReads(String),
}

impl From<FieldErrors> for AuthError {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}

/// The fields of a registration as they arrived (HTTP body or command
/// line), `None` where reading the field failed already;
/// [`App::register`] validates them in Djoser's order.
#[derive(Debug, Default)]
pub struct Registration {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<SecretString>,
    /// `re_password`, when `users.user_create_password_retype` asks for it.
    pub password_retype: Option<SecretString>,
    /// Staff and superuser (only `createsuperuser` sets it).
    pub superuser: bool,
}

/// Everything the flows need, shared by all requests. Its parts are
/// private: callers say what they want done. Cheap to clone: every request
/// takes a handle (one reference count), not a copy of each part.
#[derive(Clone)]
pub struct App(Arc<Inner>);

/// The parts of [`App`], reached through it.
pub struct Inner {
    db: DatabaseConnection,
    health: DbHealth,
    tokens: TokenService,
    hasher: PasswordHasher,
    settings: Settings,
    metrics: Arc<Metrics>,
    throttle: Throttle,
    policy: RotationPolicy,
    mailer: Mailer,
    /// What account tokens are keyed with (Django's `SECRET_KEY`).
    account_secret: secrecy::SecretBox<[u8]>,
    /// Whether a count of legacy password hashes is running.
    legacy_counting: std::sync::atomic::AtomicBool,
    /// Users, opaque keys and token families read lately (see `cache`).
    cache: Cache,
    /// SQLite file: the hot reads, asked on the caller's thread (see `local`).
    local: Option<LocalReads>,
    /// SQLite file: a rotation's write, made on the caller's thread (see
    /// `local::writes`).
    local_writes: Option<LocalWrites>,
    /// RSA signatures running at once: one per CPU (more would only queue
    /// on the cores, as threads, each with its stack and allocator arena).
    signers: Arc<tokio::sync::Semaphore>,
}

/// Whether a refresh or sliding token with these claims was issued before
/// its user's logout_all (or an administrator's) cutoff.
fn logged_out_everywhere(user: &User, claims: &Claims) -> bool {
    crate::refresh::predates(claims.iat, user.refresh_valid_after.map(|t| t.timestamp()))
}

/// The issue time for new tokens and keys: now, or, within the second in
/// which the user's tokens were revoked, the start of the next second
/// (waiting for it), so a token from just before a password change is
/// refused and one from just after is not.
async fn not_before_revocation(user: &User) -> DateTime<Utc> {
    let now = Utc::now();
    match users::refresh_cutoff(user) {
        Some(after) if after > now => {
            if let Ok(wait) = (after - now).to_std() {
                tokio::time::sleep(wait).await;
            }
            Utc::now().max(after)
        }
        _ => now,
    }
}

impl App {
    /// What `sign` makes with the token service. An RSA signature takes
    /// most of a millisecond of CPU (more with longer keys), too long for an
    /// async worker, which every other request on it would wait for (with
    /// one worker, every request): it runs on a blocking thread. The other
    /// algorithms sign in a few to a hundred-odd µs, about what the hop
    /// would cost.
    async fn signed<T, F>(&self, subject: &Subject, sign: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce(&TokenService, &Subject) -> T + Send + 'static,
    {
        if !self.tokens.keys().current.algorithm().is_rsa() {
            return Ok(sign(&self.tokens, subject));
        }
        let permit = Arc::clone(&self.signers)
            .acquire_owned()
            .await
            .map_err(|e| AuthError::Signing(e.to_string()))?;
        let app = self.clone();
        let subject = subject.clone();
        let job = move || {
            let signed = sign(&app.tokens, &subject);
            drop(permit);
            signed
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(signed) => Ok(signed),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(AuthError::Signing(e.to_string())),
        }
    }
}

impl std::ops::Deref for App {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    /// The state, with the mail queue's task started on the current
    /// runtime.
    pub fn new(
        settings: Settings,
        db: DatabaseConnection,
        tokens: TokenService,
        hasher: PasswordHasher,
    ) -> Result<Self, InitError> {
        let metrics = Arc::new(Metrics::new());
        let mailer = Mailer::start(&settings.email, Arc::clone(&metrics))?;
        let throttle = Throttle::new(&settings.throttle, &metrics)?;
        let cache = Cache::for_database(&settings.database.url, settings.database.cache_entries)
            .map_err(InitError::Cache)?;
        let file = crate::config::sqlite_file(&settings.database.url);
        let local = file
            .as_deref()
            .map(LocalReads::open)
            .transpose()
            .map_err(InitError::LocalReads)?;
        // Without it every write goes through the pool, as it can.
        let writable = !crate::config::sqlite_read_only(&settings.database.url);
        let local_writes = file.as_deref().filter(|_| writable).and_then(|path| {
            LocalWrites::open(path)
                .inspect_err(
                    |e| tracing::warn!(error = %e, "rotations will write through the pool"),
                )
                .ok()
        });
        let configured = secrecy::ExposeSecret::expose_secret(&settings.users.token_secret);
        let account_secret: Box<[u8]> = if configured.is_empty() {
            tokens.keys().current.derived_secret().into()
        } else {
            configured.as_bytes().into()
        };
        Ok(Self(Arc::new(Inner {
            db,
            health: DbHealth::default(),
            tokens,
            hasher,
            metrics,
            throttle,
            policy: RotationPolicy::new(&settings.jwt),
            mailer,
            account_secret: account_secret.into(),
            legacy_counting: Default::default(),
            cache,
            local,
            local_writes,
            signers: Arc::new(tokio::sync::Semaphore::new(crate::config::cpus())),
            settings,
        })))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The users, keys and token families kept in memory.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The password hasher (its pool is shared by every request).
    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The database connection whatever its health mark: for the health
    /// probe, maintenance and tests. Flows use [`Self::store`].
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The database, or `Unavailable` at once while it is known to be down,
    /// rather than a wait for a pool timeout per request.
    pub fn store(&self) -> Result<&DatabaseConnection, StoreError> {
        if self.health.is_down() {
            Err(StoreError::Unavailable(
                "the database is marked unreachable".into(),
            ))
        } else {
            Ok(&self.db)
        }
    }

    /// The database's health mark, which requests set when it fails them
    /// and the probe clears.
    pub fn database_health(&self) -> &DbHealth {
        &self.health
    }

    /// The public half of every key that verifies tokens (JWKS).
    pub fn public_jwks(&self) -> Vec<&jsonwebtoken::jwk::Jwk> {
        self.tokens.keys().public_jwks()
    }

    /// Whether the database answers now; an answer clears a mark of it
    /// being down.
    pub async fn database_ready(&self) -> Result<(), sea_orm::DbErr> {
        crate::db::ping(&self.db).await?;
        if self.health.mark_up() {
            tracing::info!("database reachable again");
        }
        Ok(())
    }

    /// The metrics in Prometheus' text format, with the hashing queue as
    /// it stands now. The users still on a legacy hash are counted off the
    /// request path (a scrape must not wait for the database): each scrape
    /// shows the last count and starts the next, one at a time.
    pub fn render_metrics(&self) -> String {
        self.metrics.hash_queue_depth.set(self.hasher.queue_depth());
        let counting = std::sync::atomic::Ordering::AcqRel;
        if !self.legacy_counting.swap(true, counting) {
            let app = self.clone();
            tokio::spawn(async move {
                if let Ok(db) = app.store()
                    && let Ok(n) = users::count_legacy_hashes(db).await
                {
                    app.metrics
                        .legacy_password_hashes
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                app.legacy_counting
                    .store(false, std::sync::atomic::Ordering::Release);
            });
        }
        self.metrics.render()
    }

    /// Validates a registration the way Djoser does (each field on its
    /// own, the username's uniqueness as a field error, then the password
    /// against the others) and creates the user with a freshly hashed
    /// password. The insert's unique index settles a race between two
    /// registrations of one name.
    /// `errors` holds what reading the fields found (missing, null...).
    pub async fn register(
        &self,
        r: Registration,
        mut errors: FieldErrors,
    ) -> Result<User, AuthError> {
        let email = r.email.unwrap_or_default();
        for m in validation::email(&email) {
            errors.add("email", m);
        }
        let username = match r.username {
            Some(name) => Some(
                self.available_username(&name, "username", &mut errors)
                    .await?,
            ),
            None => None,
        };
        let (Some(username), Some(password), true) = (username, r.password, errors.is_empty())
        else {
            return Err(errors.into());
        };
        // Djoser's validate(): only once every field is valid on its own.
        let attributes = validation::UserAttributes {
            username: &username,
            email: &email,
        };
        for m in validation::password(secrecy::ExposeSecret::expose_secret(&password), attributes) {
            errors.add("password", m);
        }
        errors.into_result()?;
        // Compared only once the password passed its rules, as Djoser.
        validation::password_retyped(
            r.password_retype
                .as_ref()
                .map(secrecy::ExposeSecret::expose_secret),
            secrecy::ExposeSecret::expose_secret(&password),
        )?;
        let password_hash = self.hasher.hash(password).await?;
        // With activation mails, a new account waits for its link (a
        // superuser made on the command line does not).
        let activation = self.settings.users.send_activation_email && !r.superuser;
        let created = users::create(
            self.store()?,
            NewUser {
                username,
                email,
                password_hash,
                is_staff: r.superuser,
                is_superuser: r.superuser,
                is_active: !activation,
            },
            Utc::now(),
        )
        .await;
        match created {
            Ok(user) => {
                if activation {
                    self.mail(Kind::Activation, &user);
                } else if self.settings.users.send_confirmation_email && !r.superuser {
                    self.mail(Kind::Confirmation, &user);
                }
                Ok(user)
            }
            Err(CreateUserError::UsernameTaken) => Err(AuthError::Invalid(FieldErrors::single(
                "username",
                validation::USERNAME_TAKEN,
            ))),
            Err(CreateUserError::Store(e)) => Err(e.into()),
        }
    }

    /// `name` normalized as Django stores it, with the username rules'
    /// complaints and "taken" (a field-level check, as DRF's
    /// UniqueValidator, so it comes before any password rule) added to
    /// `errors` under `field`.
    async fn available_username(
        &self,
        name: &str,
        field: &'static str,
        errors: &mut FieldErrors,
    ) -> Result<String, AuthError> {
        let name = validation::normalize_username(name);
        let problems = validation::username(&name);
        if problems.is_empty() {
            if users::find_by_username(self.store()?, &name)
                .await?
                .is_some()
            {
                errors.add(field, validation::USERNAME_TAKEN);
            }
        } else {
            for m in problems {
                errors.add(field, m);
            }
        }
        Ok(name)
    }

    /// Checks credentials. Unknown users, wrong passwords and inactive users
    /// all cost one argon2 verification and give the same error.
    pub async fn authenticate(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<User, AuthError> {
        let user = users::find_by_username(self.store()?, username).await?;
        let stored = user.as_ref().map(|u| u.password.clone());
        let matches = self.hasher.verify(password.clone(), stored).await?;
        let user = match user {
            Some(user) if matches && user.is_active => user,
            _ => return Err(AuthError::BadCredentials),
        };
        // The check may have waited for the hashing pool: a password change
        // or deactivation committed meanwhile must win over this login.
        let fresh = match users::find_by_id(self.store()?, user.id).await? {
            Some(fresh) if fresh.password == user.password && fresh.is_active => fresh,
            _ => return Err(AuthError::BadCredentials),
        };
        if self.hasher.needs_upgrade(&fresh.password) {
            return self.upgrade_hash(fresh, password).await;
        }
        Ok(fresh)
    }

    /// Replaces a hash imported from Django (or of an older cost) by one
    /// of the configured argon2id cost, as Django's `must_update` does
    /// after a login. A failure leaves the old hash, which still works.
    async fn upgrade_hash(&self, user: User, password: SecretString) -> Result<User, AuthError> {
        let new_hash = match self.hasher.hash(password).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(user_id = user.id, error = %e, "password hash not upgraded");
                return Ok(user);
            }
        };
        let replaced = users::replace_hash(self.store()?, user.id, &user.password, &new_hash).await;
        self.cache.forget_user(user.id);
        match replaced {
            Ok(true) => {
                tracing::info!(user_id = user.id, "password hash upgraded to argon2id");
                Ok(User {
                    password: new_hash,
                    ..user
                })
            }
            // Changed meanwhile: the newer hash stays.
            Ok(false) => Ok(user),
            Err(e) => {
                tracing::warn!(user_id = user.id, error = %e, "password hash not upgraded");
                Ok(user)
            }
        }
    }

    /// The claims tokens carry beyond Simple JWT's, and their names.
    pub fn token_claims(&self) -> &crate::tokens::ClaimSet {
        self.tokens.claims()
    }

    /// Whom tokens for `user` are issued to; the groups are read only
    /// when a configured claim carries them.
    pub async fn subject(&self, user: &User) -> Result<Subject, AuthError> {
        let groups = if self.tokens.claims().needs_groups() {
            crate::groups::names_of(self.store()?, user.id).await?
        } else {
            Vec::new()
        };
        Ok(Subject {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            is_staff: user.is_staff,
            is_superuser: user.is_superuser,
            groups,
        })
    }

    /// [`Self::subject`] for the user a refresh found: every action that
    /// issues tokens has an active one (the policy refuses first without).
    async fn subject_of(&self, user: Option<&User>) -> Result<Subject, AuthError> {
        match user {
            Some(user) => self.subject(user).await,
            None => Err(AuthError::NoActiveAccount),
        }
    }

    /// The user `id` as it is now, from the cache when it can vouch for
    /// that (see `cache`).
    pub(crate) async fn current_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.cache.user(id, self.read_user(id)).await
    }

    /// The user `id` read now: see [`Self::read_now`].
    pub(crate) async fn read_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.read_now(|l| l.user(id), users::find_by_id(self.store()?, id))
            .await
    }

    /// The token family `id` read now: see [`Self::read_now`].
    pub(crate) async fn read_family(
        &self,
        id: &str,
    ) -> Result<Option<entity::token_families::Model>, StoreError> {
        self.read_now(|l| l.family(id), crate::families::find(self.store()?, id))
            .await
    }

    /// Whether `jti` is on the blacklist now: from the cache when it can
    /// vouch for a "no", else read as [`Self::read_now`] reads.
    pub(crate) async fn blacklisted(&self, jti: &str) -> Result<bool, StoreError> {
        let read = self.read_now(
            |l| l.blacklisted(jti),
            crate::blacklist::contains(self.store()?, jti),
        );
        self.cache.blacklisted(jti, read).await
    }

    /// After `jti` was blacklisted (committed): see [`Self::changed_user`].
    pub(crate) async fn changed_blacklist(&self, jti: &str) {
        self.cache.forget_unlisted(jti);
        self.cache.settle(&self.db).await;
    }

    /// A read now: `local` on this thread from a SQLite file (see
    /// `local`), else, or if that read cannot answer, `pool` (not polled
    /// unless needed).
    async fn read_now<T>(
        &self,
        local: impl FnOnce(&LocalReads) -> Result<T, LocalError>,
        pool: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(reads) = &self.local else {
            return pool.await;
        };
        match local(reads) {
            Ok(found) => Ok(found),
            Err(e) => {
                tracing::debug!(error = %e, "local read failed; reading through the pool");
                pool.await
            }
        }
    }

    /// After a committed write to user `id` that must show on every
    /// instance at once (a revocation, a changed field): this instance
    /// forgets them, and answers once no other instance can serve what it
    /// kept of them (PostgreSQL; see [`Cache::settle`]).
    pub(crate) async fn changed_user(&self, id: i64) {
        self.cache.forget_user(id);
        self.cache.settle(&self.db).await;
    }

    /// [`Self::changed_user`] for a deletion of user `id`'s opaque keys.
    pub(crate) async fn changed_keys(&self, id: i64) {
        self.cache.forget_keys_of(id);
        self.cache.settle(&self.db).await;
    }

    /// Verifies a token, counting refusals by reason.
    pub fn verify_token(
        &self,
        token: &str,
        expect: Expect,
        now: i64,
    ) -> Result<Claims, TokenError> {
        self.tokens
            .verify(token, expect, now)
            .inspect_err(|e| self.metrics.token_refused(e.label()))
    }
}
