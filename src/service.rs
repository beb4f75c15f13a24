//! The authentication flows (register, obtain, refresh, verify, blacklist),
//! as plain Rust over the token service, the password hasher and the
//! database. The HTTP layer only parses input and maps the errors.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;

use crate::blacklist;
use crate::config::Settings;
use crate::db::{DbHealth, StoreError};
use crate::metrics::Metrics;
use crate::passwords::{PasswordError, PasswordHasher};
use crate::tokens::{Claims, Expect, Pair, TokenError, TokenService};
use crate::users::{self, CreateUserError, NewUser, User};
use crate::validation::FieldErrors;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no active account found with the given credentials")]
    BadCredentials,
    #[error(transparent)]
    Token(#[from] TokenError),
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
    #[error("username taken")]
    UsernameTaken,
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
    /// The object is not there (`detail` says how Djoser words it).
    #[error("not found")]
    NotFound(&'static str),
    #[error("permission denied")]
    Forbidden,
    /// The route belongs to an authentication method that is switched off.
    #[error("authentication method disabled")]
    MethodDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl From<FieldErrors> for AuthError {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<CreateUserError> for AuthError {
    fn from(e: CreateUserError) -> Self {
        match e {
            CreateUserError::UsernameTaken => Self::UsernameTaken,
            CreateUserError::Store(s) => Self::Store(s),
        }
    }
}

/// What a refresh returns: always an access token, and a new refresh token
/// when rotation is on.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access: String,
    pub refresh: Option<String>,
}

/// A user to register, already validated.
#[derive(Debug)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: SecretString,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// Everything the flows need, shared by all requests.
#[derive(Clone)]
pub struct AuthService {
    pub db: DatabaseConnection,
    pub health: DbHealth,
    pub tokens: Arc<TokenService>,
    pub hasher: PasswordHasher,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
}

pub(crate) fn epoch(now: DateTime<Utc>) -> i64 {
    now.timestamp()
}

pub(crate) fn from_epoch(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whether a refresh token was issued before the user's tokens were revoked
/// (`iat` earlier than `tokens_valid_after`, a whole second rounded up).
fn issued_before_revocation(claims: &Claims, user: &User) -> bool {
    match user.tokens_valid_after {
        None => false,
        Some(after) => claims.iat.is_none_or(|iat| iat < after.timestamp()),
    }
}

/// The issue time for new tokens: now, or, within the second in which the
/// user's tokens were revoked, the start of the next second (waiting for it),
/// so a token from just before a password change is refused and one from
/// just after is not.
pub(crate) async fn not_before_revocation(user: &User) -> DateTime<Utc> {
    let now = Utc::now();
    match user.tokens_valid_after {
        Some(after) if after > now => {
            if let Ok(wait) = (after - now).to_std() {
                tokio::time::sleep(wait).await;
            }
            Utc::now().max(after)
        }
        _ => now,
    }
}

impl AuthService {
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

    /// Creates a user with a freshly hashed password.
    pub async fn register(&self, r: Registration) -> Result<User, AuthError> {
        let password_hash = self.hasher.hash(r.password).await?;
        let user = users::create(
            self.store()?,
            NewUser {
                username: r.username,
                email: r.email,
                password_hash,
                is_staff: r.is_staff,
                is_superuser: r.is_superuser,
            },
            Utc::now(),
        )
        .await?;
        Ok(user)
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
        let matches = self.hasher.verify(password, stored).await?;
        let user = match user {
            Some(user) if matches && user.is_active => user,
            _ => return Err(AuthError::BadCredentials),
        };
        // The check may have waited for the hashing pool: a password change
        // or deactivation committed meanwhile must win over this login.
        match users::find_by_id(self.store()?, user.id).await? {
            Some(fresh) if fresh.password == user.password && fresh.is_active => Ok(fresh),
            _ => Err(AuthError::BadCredentials),
        }
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
            .inspect_err(|e| self.metrics.token_refused(e))
    }

    /// Login: a new access/refresh pair for valid credentials.
    pub async fn obtain_pair(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<Pair, AuthError> {
        let outcome = self.authenticate(username, password).await;
        let label = if outcome.is_ok() { "ok" } else { "failed" };
        self.metrics.logins.with_label_values(&["jwt", label]).inc();
        let user = outcome?;
        let now = not_before_revocation(&user).await;
        if self.settings.jwt.update_last_login {
            users::set_last_login(self.store()?, user.id, now).await?;
        }
        self.metrics
            .tokens_issued
            .with_label_values(&["access"])
            .inc();
        self.metrics
            .tokens_issued
            .with_label_values(&["refresh"])
            .inc();
        Ok(self.tokens.pair(user.id, epoch(now)))
    }

    /// Verifies a refresh token and that it is not blacklisted.
    async fn live_refresh(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let claims = self.verify_token(token, Expect::Refresh, now)?;
        if blacklist::contains(self.store()?, &claims.jti).await? {
            self.metrics
                .verification_failures
                .with_label_values(&["blacklisted"])
                .inc();
            return Err(AuthError::Blacklisted);
        }
        Ok(claims)
    }

    /// A new access token (and, with rotation, a new refresh token) for a
    /// valid refresh token whose user still exists and is active.
    ///
    /// With rotation and blacklisting on, the old token is blacklisted
    /// before anything is returned, by one insert on a unique column: of
    /// several concurrent refreshes of one token exactly one succeeds.
    pub async fn refresh(&self, token: &str) -> Result<Refreshed, AuthError> {
        let now = epoch(Utc::now());
        let claims = self.live_refresh(token, now).await?;
        let user_id = claims.user_id().ok_or(AuthError::NoActiveAccount)?;
        let user = match users::find_by_id(self.store()?, user_id).await? {
            Some(u) if u.is_active => u,
            _ => return Err(AuthError::NoActiveAccount),
        };
        if issued_before_revocation(&claims, &user) {
            return Err(AuthError::PasswordChanged);
        }
        let jwt = &self.settings.jwt;
        let refresh = if jwt.rotate_refresh_tokens {
            if jwt.blacklist_after_rotation
                && !blacklist::add(
                    self.store()?,
                    &claims.jti,
                    Some(user_id),
                    from_epoch(claims.exp),
                    Utc::now(),
                )
                .await?
            {
                self.metrics
                    .verification_failures
                    .with_label_values(&["blacklisted"])
                    .inc();
                return Err(AuthError::Blacklisted);
            }
            if jwt.blacklist_after_rotation {
                self.metrics.blacklisted.inc();
            }
            self.metrics
                .tokens_issued
                .with_label_values(&["refresh"])
                .inc();
            Some(self.tokens.refresh(user_id, now).token)
        } else {
            None
        };
        self.metrics.refreshed.inc();
        self.metrics
            .tokens_issued
            .with_label_values(&["access"])
            .inc();
        Ok(Refreshed {
            access: self.tokens.access(user_id, now).token,
            refresh,
        })
    }

    /// `/verify/`: any valid token; a blacklisted refresh token is refused.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now = epoch(Utc::now());
        let claims = self.verify_token(token, Expect::Untyped, now)?;
        // Only refresh tokens are ever blacklisted, so only they cost a query.
        if claims.token_type.as_deref() == Some("refresh")
            && blacklist::contains(self.store()?, &claims.jti).await?
        {
            self.metrics
                .verification_failures
                .with_label_values(&["blacklisted"])
                .inc();
            return Err(AuthError::Blacklisted);
        }
        Ok(())
    }

    /// Logout: the refresh token can no longer be used.
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let now = epoch(Utc::now());
        let claims = self.live_refresh(token, now).await?;
        let inserted = blacklist::add(
            self.store()?,
            &claims.jti,
            claims.user_id(),
            from_epoch(claims.exp),
            Utc::now(),
        )
        .await?;
        if inserted {
            self.metrics.blacklisted.inc();
            Ok(())
        } else {
            Err(AuthError::Blacklisted)
        }
    }

    /// The user behind a verified access token, as Simple JWT's
    /// `JWTAuthentication.get_user` finds it.
    pub async fn user_for_access(&self, claims: &Claims) -> Result<User, AuthError> {
        let id = claims.user_id().ok_or(AuthError::NoUserId)?;
        match users::find_by_id(self.store()?, id).await? {
            None => Err(AuthError::UserNotFound),
            Some(u) if !u.is_active => Err(AuthError::UserInactive),
            Some(u) => Ok(u),
        }
    }
}
