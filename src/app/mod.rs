//! The authentication flows (register, obtain, refresh, verify, blacklist),
//! as plain Rust over the token service, the password hasher and the
//! database. The HTTP layer only parses input and maps the errors.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use entity::token_families as family;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use secrecy::SecretString;

use crate::blacklist;
use crate::config::Settings;
use crate::db::{DbHealth, StoreError};
use crate::families;
use crate::metrics::Metrics;
use crate::passwords::{PasswordError, PasswordHasher};
use crate::time::{epoch, from_epoch};
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
    pub throttle: Arc<crate::throttle::Throttle>,
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
            .inspect_err(|e| self.metrics.token_refused(e.label()))
    }

    /// Login: a new access/refresh pair for valid credentials, starting a
    /// token family.
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
        let pair = self.tokens.pair(user.id, epoch(now));
        families::start(self.store()?, user.id, &pair, epoch(now), Utc::now()).await?;
        self.metrics.pair_issued();
        Ok(pair)
    }

    fn grace(&self) -> TimeDelta {
        TimeDelta::from_std(self.settings.jwt.reuse_grace_interval).unwrap_or(TimeDelta::MAX)
    }

    /// Whether rotation checks a token against its family (reuse detection).
    fn detects_reuse(&self) -> bool {
        let jwt = &self.settings.jwt;
        jwt.rotate_refresh_tokens && jwt.reuse_detection
    }

    fn refused_blacklisted(&self) -> AuthError {
        self.metrics
            .verification_failures
            .with_label_values(&["blacklisted"])
            .inc();
        AuthError::Blacklisted
    }

    /// Revokes a family because one of its rotated tokens came back: the
    /// token was copied, so every token of the family is suspect. Logged
    /// and counted once, by whichever request revokes it.
    async fn revoke_for_reuse(
        &self,
        family_id: &str,
        user_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        if families::revoke(self.store()?, family_id, now).await? {
            self.metrics
                .families_revoked
                .with_label_values(&["reuse"])
                .inc();
            tracing::warn!(
                target: "tessera::security",
                event = "refresh_token_reuse",
                user_id,
                family = family_id,
                "a rotated refresh token was presented again; its token family is revoked"
            );
        }
        Ok(())
    }

    /// Whether a verified refresh token may still be used, short of a
    /// rotation: not blacklisted, its family not revoked and, with reuse
    /// detection, not an old token of its family (whose presentation, here
    /// as on refresh, revokes the family). Returns the family row.
    async fn live_refresh(
        &self,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<Option<family::Model>, AuthError> {
        let db = self.store()?;
        let family = families::find(db, claims.family_id()).await?;
        let standing = family
            .as_ref()
            .map(|f| families::standing(f, &claims.jti, now, self.grace()));
        match standing {
            Some(families::Standing::Revoked) => return Err(self.refused_blacklisted()),
            Some(families::Standing::Stale) if self.detects_reuse() => {
                self.revoke_for_reuse(claims.family_id(), claims.user_id(), now)
                    .await?;
                return Err(self.refused_blacklisted());
            }
            // A rotated token whose family row is gone: the row outlives
            // every token of its family, so this one is dead (or the row was
            // lost, and with it any revocation).
            None if claims.family.is_some() => return Err(self.refused_blacklisted()),
            // The newest token of a live family is never blacklisted: a
            // logout revokes the family first, a rotation moves `current`
            // on. One query saved on every refresh.
            Some(families::Standing::Current) => {}
            _ => {
                if blacklist::contains(db, &claims.jti).await? {
                    return Err(self.refused_blacklisted());
                }
            }
        }
        Ok(family)
    }

    /// A new access token (and, with rotation, a new refresh token) for a
    /// valid refresh token whose user still exists and is active.
    ///
    /// With reuse detection (rotation on), the token's family decides: the
    /// current token is rotated by a compare-and-swap on the family row, so
    /// of concurrent refreshes exactly one mints tokens; the others, like a
    /// retry within the grace interval, get that same pair back (or, with
    /// `blacklist_after_rotation`, 401 as in Simple JWT); an older token
    /// revokes the family. Without it, Simple JWT's rule: with blacklisting
    /// on, one insert on a unique column lets exactly one of concurrent
    /// refreshes through.
    pub async fn refresh(&self, token: &str) -> Result<Refreshed, AuthError> {
        let now_dt = Utc::now();
        let claims = self.verify_token(token, Expect::Refresh, epoch(now_dt))?;
        self.refresh_verified(claims, now_dt).await
    }

    /// [`Self::refresh`] for a token already verified as a refresh token at
    /// `now_dt` (the HTTP layer needs its user first, for throttling).
    pub async fn refresh_verified(
        &self,
        claims: Claims,
        now_dt: DateTime<Utc>,
    ) -> Result<Refreshed, AuthError> {
        let now = epoch(now_dt);
        let family = if self.detects_reuse() {
            let db = self.store()?;
            families::find(db, claims.family_id()).await?
        } else {
            self.live_refresh(&claims, now_dt).await?
        };
        let user_id = claims.user_id().ok_or(AuthError::NoActiveAccount)?;
        let user = match users::find_by_id(self.store()?, user_id).await? {
            Some(u) if u.is_active => u,
            _ => return Err(AuthError::NoActiveAccount),
        };
        if issued_before_revocation(&claims, &user) {
            return Err(AuthError::PasswordChanged);
        }
        let jwt = &self.settings.jwt;
        if self.detects_reuse() {
            return self.rotate_in_family(&claims, family, &user, now_dt).await;
        }
        if jwt.rotate_refresh_tokens {
            // The family claim keeps the new token within reach of
            // logout_all, and the row follows the newest token, even though
            // nothing here checks for reuse.
            let pair = self.tokens.rotated_pair(user_id, now, claims.family_id());
            let db = self.store()?;
            let recorded = if jwt.blacklist_after_rotation {
                // Two writes that stand or fall together.
                let txn = db.begin().await.map_err(StoreError::from)?;
                let recorded = self
                    .record_rotation(&txn, &claims, user_id, family.is_some(), &pair, now_dt)
                    .await?;
                if recorded {
                    txn.commit().await.map_err(StoreError::from)?;
                }
                recorded
            } else {
                self.record_rotation(db, &claims, user_id, family.is_some(), &pair, now_dt)
                    .await?
            };
            if !recorded {
                return Err(self.refused_blacklisted());
            }
            if jwt.blacklist_after_rotation {
                self.metrics.blacklisted.inc();
            }
            return Ok(self.rotated(pair));
        }
        self.metrics.refreshed.inc();
        self.metrics
            .tokens_issued
            .with_label_values(&["access"])
            .inc();
        Ok(Refreshed {
            access: self.tokens.access(user_id, now).token,
            refresh: None,
        })
    }

    /// The answer to a refresh that minted `pair`, counted.
    fn rotated(&self, pair: Pair) -> Refreshed {
        self.metrics.refreshed.inc();
        self.metrics.pair_issued();
        Refreshed {
            access: pair.access.token,
            refresh: Some(pair.refresh.token),
        }
    }

    /// Records a rotation made without reuse detection: blacklists the used
    /// token (with `blacklist_after_rotation`) and moves the family row on to
    /// the new pair. `false` if the token was blacklisted or its family
    /// revoked meanwhile: nothing may then be issued.
    async fn record_rotation(
        &self,
        conn: &impl ConnectionTrait,
        claims: &Claims,
        user_id: i64,
        has_row: bool,
        pair: &Pair,
        now_dt: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        if self.settings.jwt.blacklist_after_rotation
            && !blacklist::add(
                conn,
                &claims.jti,
                Some(user_id),
                from_epoch(claims.exp),
                now_dt,
            )
            .await?
        {
            return Ok(false);
        }
        if !has_row {
            // A token that starts its own family (from Simple JWT, or older
            // than families): its row, so the new token has one.
            families::adopt(
                conn,
                claims.family_id(),
                &claims.jti,
                user_id,
                from_epoch(claims.exp),
                now_dt,
            )
            .await?;
        }
        // A logout that revoked the family meanwhile wins.
        families::advance(
            conn,
            claims.family_id(),
            &claims.jti,
            pair,
            epoch(now_dt),
            now_dt,
        )
        .await
        .map_err(AuthError::from)
    }

    /// Rotation with reuse detection (see [`Self::refresh`]).
    async fn rotate_in_family(
        &self,
        claims: &Claims,
        family: Option<family::Model>,
        user: &User,
        now_dt: DateTime<Utc>,
    ) -> Result<Refreshed, AuthError> {
        let db = self.store()?;
        let now = epoch(now_dt);
        let family_id = claims.family_id();
        let mut family = match family {
            Some(f) => f,
            // A rotated token whose row is gone is dead (see live_refresh);
            // only a token that starts its own family is adopted.
            None if claims.family.is_some() => return Err(self.refused_blacklisted()),
            None => {
                // A token logged out before families existed is refused
                // here, before it gets a row that would call it current.
                if blacklist::contains(db, &claims.jti).await? {
                    return Err(self.refused_blacklisted());
                }
                families::adopt(
                    db,
                    family_id,
                    &claims.jti,
                    user.id,
                    from_epoch(claims.exp),
                    now_dt,
                )
                .await?
                .ok_or(AuthError::Blacklisted)?
            }
        };
        // A lost compare-and-swap means another request rotated this token
        // meanwhile: read the family again and answer as a retry would be.
        for _ in 0..3 {
            match families::standing(&family, &claims.jti, now_dt, self.grace()) {
                families::Standing::Revoked => return Err(self.refused_blacklisted()),
                families::Standing::Current => {
                    let pair = self.tokens.rotated_pair(user.id, now, family_id);
                    let won = if self.settings.jwt.blacklist_after_rotation {
                        let txn = db.begin().await.map_err(StoreError::from)?;
                        let won =
                            families::rotate(&txn, family_id, &claims.jti, &pair, now, now_dt)
                                .await?;
                        if won {
                            if !blacklist::add(
                                &txn,
                                &claims.jti,
                                Some(user.id),
                                from_epoch(claims.exp),
                                now_dt,
                            )
                            .await?
                            {
                                // Blacklisted meanwhile: nothing is issued
                                // (the transaction rolls back).
                                return Err(self.refused_blacklisted());
                            }
                            txn.commit().await.map_err(StoreError::from)?;
                            self.metrics.blacklisted.inc();
                        }
                        won
                    } else {
                        // One statement: the compare-and-swap is the whole
                        // write.
                        families::rotate(db, family_id, &claims.jti, &pair, now, now_dt).await?
                    };
                    if won {
                        return Ok(self.rotated(pair));
                    }
                    family = families::find(db, family_id)
                        .await?
                        .ok_or(AuthError::Blacklisted)?;
                }
                // Blacklisting after rotation refuses the used token at once,
                // as Simple JWT does; within the grace interval that is not
                // reuse, so the family (and the new token) lives on.
                families::Standing::JustRotated if self.settings.jwt.blacklist_after_rotation => {
                    return Err(self.refused_blacklisted());
                }
                families::Standing::JustRotated => {
                    // The tokens handed out for this one, re-signed from the
                    // ids and issue time kept in the family row.
                    if user
                        .tokens_valid_after
                        .is_some_and(|after| family.issued_at < after.timestamp())
                    {
                        return Err(AuthError::PasswordChanged);
                    }
                    let pair = self.tokens.reissued_pair(
                        user.id,
                        family.issued_at,
                        family.current_jti.clone(),
                        family.access_jti.clone(),
                        family_id,
                    );
                    self.metrics.refresh_replayed.inc();
                    return Ok(Refreshed {
                        access: pair.access.token,
                        refresh: Some(pair.refresh.token),
                    });
                }
                families::Standing::Stale => {
                    self.revoke_for_reuse(family_id, Some(user.id), now_dt)
                        .await?;
                    return Err(self.refused_blacklisted());
                }
            }
        }
        Err(self.refused_blacklisted())
    }

    /// `/verify/`: any valid token; a refresh token that refresh would
    /// refuse for one of Tessera's own revocations (blacklisted, revoked
    /// family, reused, issued before a password change) is refused too.
    /// Whether its user still exists or is active is not asked, as in
    /// Simple JWT, which never looks at the user here.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now_dt = Utc::now();
        let claims = self.verify_token(token, Expect::Untyped, epoch(now_dt))?;
        // Only refresh tokens are ever revoked, so only they cost a query.
        if claims.token_type.as_deref() == Some("refresh") {
            self.live_refresh(&claims, now_dt).await?;
            let user = match claims.user_id() {
                Some(id) => users::find_by_id(self.store()?, id).await?,
                None => None,
            };
            if user.is_some_and(|u| issued_before_revocation(&claims, &u)) {
                return Err(AuthError::PasswordChanged);
            }
        }
        Ok(())
    }

    /// Logout: the refresh token, and the rest of its family, can no longer
    /// be used, whichever token of the family is presented.
    pub async fn blacklist(&self, token: &str) -> Result<(), AuthError> {
        let now_dt = Utc::now();
        let claims = self.verify_token(token, Expect::Refresh, epoch(now_dt))?;
        let db = self.store()?;
        let family_id = claims.family_id();
        // The family first: revoking is idempotent, so a failure between the
        // statements leaves a retry that finishes the job, never a
        // blacklisted token whose siblings live on.
        match families::find(db, family_id).await? {
            Some(f) if f.revoked_at.is_some() => return Err(self.refused_blacklisted()),
            // A rotated token: with reuse detection that is reuse (someone
            // else holds the newer one), so the family ends and it is
            // reported, even when the answer below is 401 because rotation
            // blacklisted this token already.
            Some(f) if f.current_jti != claims.jti && self.detects_reuse() => {
                self.revoke_for_reuse(family_id, claims.user_id(), now_dt)
                    .await?;
            }
            Some(_) => self.revoke_for_logout(family_id, now_dt).await?,
            // A rotated token whose row is gone is dead (see live_refresh).
            None if claims.family.is_some() => return Err(self.refused_blacklisted()),
            None => {
                // A token no refresh has adopted yet (from Simple JWT, or
                // older than families): its row, born revoked, is what a
                // concurrent adoption meets, so logout and adoption
                // serialize on the row's key. If a refresh adopted it first,
                // the revocation reaches what that refresh minted.
                if let Some(user_id) = claims.user_id() {
                    families::insert_revoked(
                        db,
                        family_id,
                        &claims.jti,
                        user_id,
                        from_epoch(claims.exp),
                        now_dt,
                    )
                    .await?;
                }
                self.revoke_for_logout(family_id, now_dt).await?;
            }
        }
        let inserted = blacklist::add(
            db,
            &claims.jti,
            claims.user_id(),
            from_epoch(claims.exp),
            now_dt,
        )
        .await?;
        if !inserted {
            return Err(self.refused_blacklisted());
        }
        self.metrics.blacklisted.inc();
        Ok(())
    }

    async fn revoke_for_logout(
        &self,
        family_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        if families::revoke(self.store()?, family_id, now).await? {
            self.metrics
                .families_revoked
                .with_label_values(&["logout"])
                .inc();
        }
        Ok(())
    }

    /// Revokes every refresh-token family of a user: all their sessions'
    /// refresh tokens stop working (access tokens run out on their own).
    pub async fn logout_all(&self, user_id: i64) -> Result<u64, AuthError> {
        let n = families::revoke_user(self.store()?, user_id, Utc::now()).await?;
        self.metrics
            .families_revoked
            .with_label_values(&["logout_all"])
            .inc_by(n);
        tracing::info!(user_id, families = n, "all refresh-token families revoked");
        Ok(n)
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
