//! Simple JWT's sliding tokens: one token that authenticates requests (when
//! `jwt.auth_token_classes` has `sliding`) and is refreshed, before its
//! `exp`, into a new one, until its `refresh_exp`. Revocable through the
//! blacklist, which is why authenticating with one costs a query.

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::{App, AuthError, logged_out_everywhere, not_before_revocation};
use crate::blacklist;
use crate::config::AuthTokenClass;
use crate::refresh::{Refusal, predates};
use crate::time::{epoch, from_epoch};
use crate::tokens::{Claims, Expect, Issued, TokenError};

impl App {
    /// Login for a sliding token (`TokenObtainSlidingView`).
    pub async fn obtain_sliding(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<Issued, AuthError> {
        let (subject, now) = self.jwt_login(username, password, "sliding").await?;
        let at = epoch(now);
        let token = self.signed(&subject, move |t, s| t.sliding(s, at)).await?;
        self.count_sliding();
        Ok(token)
    }

    /// A sliding token refreshed (`TokenRefreshSlidingView`): the token
    /// must be valid (its `exp` not passed), not blacklisted, and its
    /// `refresh_exp` not passed. Beyond Simple JWT, as for refresh tokens,
    /// its user must still be active and must not have changed password
    /// since it was issued.
    pub async fn refresh_sliding(&self, token: &str) -> Result<String, AuthError> {
        let now = Utc::now();
        let claims = self.verify_token(token, Expect::Sliding, epoch(now))?;
        self.refresh_sliding_verified(claims, now).await
    }

    /// [`Self::refresh_sliding`] for a token already verified as a sliding
    /// token at `now` (the HTTP layer needs its user first, for throttling).
    pub async fn refresh_sliding_verified(
        &self,
        claims: Claims,
        now: DateTime<Utc>,
    ) -> Result<String, AuthError> {
        if self.sliding_blacklisted(&claims).await? {
            return Err(self.refused(Refusal::Blacklisted));
        }
        let refresh_exp = self
            .tokens
            .check_refresh_exp(&claims, epoch(now))
            .inspect_err(|e| self.metrics.token_refused(e.label()))?;
        let user = match claims.user_id() {
            Some(id) => self.current_user(id).await?,
            None => None,
        };
        let user = user
            .filter(|u| u.is_active)
            .ok_or(AuthError::NoActiveAccount)?;
        if predates(claims.iat, user.tokens_valid_after.map(|t| t.timestamp())) {
            return Err(AuthError::PasswordChanged);
        }
        if logged_out_everywhere(&user, &claims) {
            return Err(self.refused(Refusal::Blacklisted));
        }
        let subject = self.subject(&user).await?;
        let now = not_before_revocation(&user).await.max(now);
        let (at, jti) = (epoch(now), claims.jti);
        let token = self
            .signed(&subject, move |t, s| t.slid(s, at, jti, refresh_exp))
            .await?;
        self.count_sliding();
        Ok(token.token)
    }

    /// Blacklists a sliding token, and with it every refresh of it (they
    /// share its `jti`), until its `refresh_exp`.
    pub async fn blacklist_sliding(&self, token: &str) -> Result<(), AuthError> {
        let now = Utc::now();
        let claims = self.verify_token(token, Expect::Sliding, epoch(now))?;
        // The row must outlive every refresh of the token: one made just
        // before `refresh_exp` lives a sliding lifetime past it.
        let until = self
            .tokens
            .check_refresh_exp(&claims, epoch(now))
            .map_or(claims.exp, |r| {
                r.saturating_add(self.tokens.sliding_lifetime())
            })
            .max(claims.exp);
        let inserted = blacklist::add(
            self.store()?,
            &claims.jti,
            claims.user_id(),
            from_epoch(until),
            now,
        )
        .await;
        self.changed_blacklist(&claims.jti).await;
        if !inserted? {
            return Err(self.refused(Refusal::Blacklisted));
        }
        self.metrics.blacklisted.inc();
        Ok(())
    }

    /// Verifies a Bearer token as each of `jwt.auth_token_classes` in
    /// turn, as Simple JWT's `get_validated_token`: the first that accepts
    /// it wins; otherwise every class's reason. An access token costs no
    /// query; a sliding token a blacklist lookup (from the cache while it
    /// can vouch for the answer).
    pub async fn verify_bearer(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let mut refusals = Vec::new();
        for class in &self.settings().jwt.auth_token_classes {
            let expect = match class {
                AuthTokenClass::Access => Expect::Access,
                AuthTokenClass::Sliding => Expect::Sliding,
            };
            match self.tokens.verify(token, expect, now) {
                Ok(claims)
                    if *class == AuthTokenClass::Sliding
                        && self.sliding_revoked(&claims).await? =>
                {
                    refusals.push((*class, TokenError::Blacklisted));
                }
                Ok(claims) => return Ok(claims),
                Err(e) => refusals.push((*class, e)),
            }
        }
        if let Some((_, first)) = refusals.first() {
            self.metrics.token_refused(first.label());
        }
        Err(AuthError::BearerRefused(refusals))
    }

    /// Whether a sliding token's `jti` is on the blacklist.
    pub(super) async fn sliding_blacklisted(&self, claims: &Claims) -> Result<bool, AuthError> {
        Ok(self.blacklisted(&claims.jti).await?)
    }

    /// Whether a sliding token no longer authenticates: blacklisted, or
    /// issued before its user's logout_all (one more query).
    pub(super) async fn sliding_revoked(&self, claims: &Claims) -> Result<bool, AuthError> {
        Ok(self.sliding_blacklisted(claims).await? || self.cut_off_now(claims).await?)
    }

    fn count_sliding(&self) {
        self.metrics
            .tokens_issued
            .with_label_values(&["sliding"])
            .inc();
    }
}
