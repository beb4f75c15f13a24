//! The JWT flows: login, refresh, verify, logout, logout everywhere. Each
//! gathers the facts `refresh.rs` decides on, then carries out the action
//! it chose; the database writes that must stand or fall together share a
//! transaction.

use chrono::{DateTime, Utc};
use entity::token_families::Model as FamilyRow;
use sea_orm::{ConnectionTrait, TransactionTrait};
use secrecy::SecretString;

use super::{App, AuthError, logged_out_everywhere, not_before_revocation};
use crate::blacklist;
use crate::cache::SyncMark;
use crate::db::StoreError;
use crate::families::{self, Orphan, Rotation};
use crate::refresh::{Action, Facts, Family, Holder, Logout, Refusal, Standing, Verdict};
use crate::time::{epoch, from_epoch};
use crate::tokens::{Claims, Expect, Pair, Subject};
use crate::users::{self, User};

/// What a refresh returns: always an access token, and a new refresh token
/// when rotation is on.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access: String,
    pub refresh: Option<String>,
}

impl From<Pair> for Refreshed {
    fn from(pair: Pair) -> Self {
        Self {
            access: pair.access.token,
            refresh: Some(pair.refresh.token),
        }
    }
}

/// The presented token, which has no family row yet.
fn orphan(claims: &Claims, user_id: i64) -> Orphan<'_> {
    Orphan {
        id: claims.family_id(),
        jti: &claims.jti,
        user_id,
        expires_at: from_epoch(claims.exp),
    }
}

/// The rotation of the presented token to `pair`, its update carrying
/// `mark` (see [`crate::cache::Cache::mark`]).
fn rotation<'a>(
    claims: &'a Claims,
    pair: &'a Pair,
    now: DateTime<Utc>,
    mark: Option<&'a SyncMark>,
) -> Rotation<'a> {
    Rotation {
        id: claims.family_id(),
        presented: &claims.jti,
        pair,
        now,
        mark,
    }
}

/// A rotation lost to a concurrent one is decided anew on the row it left;
/// a third loss in a row means the token is being hammered: refused.
const ROTATION_ATTEMPTS: usize = 3;

impl App {
    /// Login: a new access/refresh pair for valid credentials, starting a
    /// token family.
    pub async fn obtain_pair(
        &self,
        username: &str,
        password: SecretString,
    ) -> Result<Pair, AuthError> {
        let (subject, now) = self.jwt_login(username, password, "jwt").await?;
        let at = epoch(now);
        let pair = self.signed(&subject, move |t, s| t.pair(s, at)).await?;
        families::start(self.store()?, subject.id, &pair, epoch(now), Utc::now()).await?;
        self.metrics.pair_issued();
        Ok(pair)
    }

    /// The password check of a JWT login (counted under `kind`), and
    /// `UPDATE_LAST_LOGIN`: whom to issue tokens to, and when.
    pub(super) async fn jwt_login(
        &self,
        username: &str,
        password: SecretString,
        kind: &str,
    ) -> Result<(Subject, DateTime<Utc>), AuthError> {
        let outcome = self.authenticate(username, password).await;
        let label = if outcome.is_ok() { "ok" } else { "failed" };
        self.metrics.logins.with_label_values(&[kind, label]).inc();
        let user = outcome?;
        let now = not_before_revocation(&user).await;
        if self.settings().jwt.update_last_login {
            let recorded = users::set_last_login(self.store()?, user.id, now).await;
            self.cache.forget_user(user.id);
            recorded?;
        }
        Ok((self.subject(&user).await?, now))
    }

    /// A new access token (and, with rotation, a new refresh token) for a
    /// valid refresh token whose user still exists and is active. What is
    /// done is `RotationPolicy::refresh`'s decision.
    pub async fn refresh(&self, token: &str) -> Result<Refreshed, AuthError> {
        let now = Utc::now();
        let claims = self.verify_token(token, Expect::Refresh, epoch(now))?;
        self.refresh_verified(claims, now).await
    }

    /// [`Self::refresh`] for a token already verified as a refresh token at
    /// `now` (the HTTP layer needs its user first, for throttling).
    pub async fn refresh_verified(
        &self,
        claims: Claims,
        now: DateTime<Utc>,
    ) -> Result<Refreshed, AuthError> {
        let user = match claims.user_id() {
            Some(id) => self.current_user(id).await?,
            None => None,
        };
        // With reuse detection, only what memory holds (see below).
        let row = if self.policy.detect_reuse {
            self.cache.kept_family(claims.family_id())
        } else {
            self.current_family(claims.family_id()).await?
        };
        let assumed = self.policy.detect_reuse && row.is_none();
        let (mut row, mut facts) = if assumed {
            // Not read: the token is taken as its family's current one. Only
            // a rotation follows from that, and its compare-and-swap checks
            // exactly this in the statement that writes; a lost swap reads
            // the row and decides anew (below). The read would be a round
            // trip spent on every rotation to learn what the swap tells.
            let family = Family::Row(Standing::Current);
            (
                None,
                self.facts_of(&claims, family, 0, user.as_ref(), true)
                    .await?,
            )
        } else {
            let facts = self
                .facts(&claims, row.as_ref(), user.as_ref(), now, true)
                .await?;
            (row, facts)
        };
        // Every action past a refusal has an active user (the policy refuses
        // first without one).
        let user_id = || {
            user.as_ref()
                .map(|u| u.id)
                .ok_or(AuthError::NoActiveAccount)
        };
        // A swap lost on an assumption is not a lost race.
        for _ in 0..ROTATION_ATTEMPTS + usize::from(assumed) {
            match self.policy.refresh(&facts) {
                Action::Refuse(r) => return Err(self.refused(r)),
                Action::RevokeFamily => return Err(self.revoke_for_reuse(&claims, now).await?),
                Action::IssueAccess => {
                    let subject = self.subject_of(user.as_ref()).await?;
                    return self.issue_access(&subject, now).await;
                }
                Action::Advance { adopt } => {
                    let subject = self.subject_of(user.as_ref()).await?;
                    return self.advance(&claims, &subject, adopt, now).await;
                }
                Action::Replay => match &row {
                    Some(row) => {
                        let subject = self.subject_of(user.as_ref()).await?;
                        return self.replay(&claims, &subject, row).await;
                    }
                    None => return Err(self.refused(Refusal::Blacklisted)),
                },
                Action::Adopt => {
                    row = families::adopt(self.store()?, &orphan(&claims, user_id()?), now).await?;
                    self.changed_family(claims.family_id()).await;
                    self.refuse_if_cut_off(&claims, now).await?;
                }
                Action::Rotate => match self
                    .rotate(&claims, &self.subject_of(user.as_ref()).await?, now)
                    .await?
                {
                    Some(pair) => return Ok(self.rotated(pair)),
                    // The token was not (or no longer) current: the row as
                    // it is now, not as kept, and kept from now on, so a
                    // dead token presented again is refused from memory.
                    None => {
                        self.cache.forget_family(claims.family_id());
                        row = self.current_family(claims.family_id()).await?;
                    }
                },
            }
            // Decide again on the row as it is now.
            facts = self
                .facts(&claims, row.as_ref(), user.as_ref(), now, true)
                .await?;
        }
        Err(self.refused(Refusal::Blacklisted))
    }

    /// `/verify/`: any valid token; a refresh token that refresh would
    /// refuse for one of Tessera's own revocations (blacklisted, revoked
    /// family, reused, issued before a password change) is refused too.
    pub async fn verify(&self, token: &str) -> Result<(), AuthError> {
        let now = Utc::now();
        let claims = self.verify_token(token, Expect::Untyped, epoch(now))?;
        // Only refresh and sliding tokens are ever revoked, so only they
        // cost a query.
        match claims.token_type.as_deref() {
            Some("refresh") => {}
            Some("sliding") if self.sliding_revoked(&claims).await? => {
                return Err(self.refused(Refusal::Blacklisted));
            }
            _ => return Ok(()),
        }
        let row = self.current_family(claims.family_id()).await?;
        let user = match claims.user_id() {
            Some(id) => self.current_user(id).await?,
            None => None,
        };
        let facts = self
            .facts(&claims, row.as_ref(), user.as_ref(), now, false)
            .await?;
        match self.policy.verify(&facts) {
            Verdict::Accept => Ok(()),
            Verdict::Refuse(r) => Err(self.refused(r)),
            Verdict::RevokeFamily => Err(self.revoke_for_reuse(&claims, now).await?),
        }
    }

    /// Logout: the refresh token, and the rest of its family, can no longer
    /// be used, whichever token of the family is presented.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let now = Utc::now();
        let claims = self.verify_token(token, Expect::Refresh, epoch(now))?;
        let db = self.store()?;
        let row = self.read_family(claims.family_id()).await?;
        // The family first: revoking is idempotent, so a failure between the
        // statements leaves a retry that finishes the job, never a
        // blacklisted token whose siblings live on.
        match self
            .policy
            .logout(self.family_of(&claims, row.as_ref(), now))
        {
            Logout::Refuse => return Err(self.refused(Refusal::Blacklisted)),
            // Reported even when the answer below is 401 because rotation
            // blacklisted this token already.
            Logout::RevokeForReuse => {
                self.revoke_for_reuse(&claims, now).await?;
            }
            Logout::Revoke => self.revoke_for_logout(claims.family_id(), now).await?,
            Logout::RecordRevoked => {
                // Its row, born revoked, is what a concurrent adoption
                // meets, so logout and adoption serialize on the row's key.
                // If a refresh adopted it first, the revocation reaches what
                // that refresh minted.
                if let Some(user_id) = claims.user_id() {
                    families::insert_revoked(db, &orphan(&claims, user_id), now).await?;
                    self.changed_family(claims.family_id()).await;
                }
                self.revoke_for_logout(claims.family_id(), now).await?;
            }
        }
        let inserted = blacklist::add(
            db,
            &claims.jti,
            claims.user_id(),
            from_epoch(claims.exp),
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

    /// Ends every session of a user: refresh and sliding tokens issued
    /// until now are refused from now on, those without a family row
    /// (issued by Simple JWT) too, and every family is revoked (access
    /// tokens run out on their own). Both writes stand or fall together.
    pub async fn logout_all(&self, user_id: i64) -> Result<u64, AuthError> {
        let now = Utc::now();
        let db = self.store()?;
        // The cutoff first, committed on its own: it alone refuses every
        // token issued until now. A refresh that read the user before it
        // and adopts a family-less token meanwhile either inserts its row
        // before the revocation below (which then reaches it) or reads the
        // cutoff again after inserting it (`refuse_if_cut_off`).
        let cut =
            users::cut_off_refresh(db, user_id, super::accounts::revocation_instant(now)).await;
        self.changed_user(user_id).await;
        cut?;
        let revoked = families::revoke_user(db, user_id, now).await;
        self.changed_families_of(user_id).await;
        let n = revoked?;
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
        match self.current_user(id).await? {
            None => Err(AuthError::UserNotFound),
            Some(u) if !u.is_active => Err(AuthError::UserInactive),
            Some(u) => Ok(u),
        }
    }

    /// After a family-less token was given a row: if a logout_all cut the
    /// user's tokens off while this refresh was deciding on an older read
    /// of the user, the new row is revoked and nothing is issued.
    async fn refuse_if_cut_off(
        &self,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        if self.cut_off_now(claims).await? {
            families::revoke(self.store()?, claims.family_id(), now).await?;
            self.changed_family(claims.family_id()).await;
            return Err(self.refused(Refusal::Blacklisted));
        }
        Ok(())
    }

    /// Whether `claims` predate their user's logout_all cutoff, the user
    /// read now (one query).
    pub(super) async fn cut_off_now(&self, claims: &Claims) -> Result<bool, AuthError> {
        let Some(id) = claims.user_id() else {
            return Ok(false);
        };
        let user = self.read_user(id).await?;
        Ok(user.is_some_and(|u| logged_out_everywhere(&u, claims)))
    }

    /// The token family `id` as it is now, from the cache when it can
    /// vouch for that.
    async fn current_family(&self, id: &str) -> Result<Option<FamilyRow>, StoreError> {
        self.cache.family(id, self.read_family(id)).await
    }

    /// After a committed write to token family `id`: see
    /// [`App::changed_user`]. A rotation too: an instance still holding
    /// the old row would take the token just rotated for the current one.
    async fn changed_family(&self, id: &str) {
        self.cache.forget_family(id);
        self.cache.settle(&self.db).await;
    }

    /// After a rotation's update of family `id`, which carried `mark`: as
    /// [`Self::changed_family`], without a statement of its own. `changed`
    /// is `false` only when nothing was written (no notification to wait
    /// for); an error may have committed, so it waits (bounded).
    async fn rotated_family(&self, id: &str, mark: Option<SyncMark>, changed: bool) {
        self.cache.forget_family(id);
        if let Some(mark) = mark
            && changed
        {
            self.cache.settled(mark).await;
        }
    }

    /// [`Self::changed_family`] for every family of user `id`.
    async fn changed_families_of(&self, id: i64) {
        self.cache.forget_families_of(id);
        self.cache.settle(&self.db).await;
    }

    /// Where the token's family stands, from its row (if any).
    fn family_of(&self, claims: &Claims, row: Option<&FamilyRow>, now: DateTime<Utc>) -> Family {
        match row {
            Some(row) => Family::Row(Standing::of(row, &claims.jti, now, self.policy.grace)),
            None if claims.family.is_some() => Family::Gone,
            None => Family::Unadopted,
        }
    }

    /// The facts a decision reads; the blacklist is asked only where it can
    /// change the answer.
    async fn facts(
        &self,
        claims: &Claims,
        row: Option<&FamilyRow>,
        user: Option<&User>,
        now: DateTime<Utc>,
        refreshing: bool,
    ) -> Result<Facts, AuthError> {
        let family = self.family_of(claims, row, now);
        let family_issued_at = row.map_or(0, |r| r.issued_at);
        self.facts_of(claims, family, family_issued_at, user, refreshing)
            .await
    }

    /// [`Self::facts`] with the token's standing in its family (and when
    /// the family's current pair was issued) given.
    async fn facts_of(
        &self,
        claims: &Claims,
        family: Family,
        family_issued_at: i64,
        user: Option<&User>,
        refreshing: bool,
    ) -> Result<Facts, AuthError> {
        // A token from before the user's refresh cutoff (logout_all, an
        // administrator) stands as in a revoked family, whether it has a
        // row or not: a family-less token issued by Simple JWT is reached
        // too, and so is a row adopted while the cutoff was being written.
        let cut_off = user.is_some_and(|u| logged_out_everywhere(u, claims));
        let family = if cut_off {
            Family::Row(Standing::Revoked)
        } else {
            family
        };
        let blacklisted = self.policy.needs_blacklist(family, refreshing)
            && self.blacklisted(&claims.jti).await?;
        let holder = match user {
            None => Holder::Missing,
            Some(u) => {
                let valid_after = u.tokens_valid_after.map(|t| t.timestamp());
                if u.is_active {
                    Holder::Active { valid_after }
                } else {
                    Holder::Inactive { valid_after }
                }
            }
        };
        Ok(Facts {
            family,
            issued_at: claims.iat,
            family_issued_at,
            blacklisted,
            holder,
        })
    }

    pub(super) fn refused(&self, refusal: Refusal) -> AuthError {
        match refusal {
            Refusal::Blacklisted => {
                self.metrics
                    .verification_failures
                    .with_label_values(&["blacklisted"])
                    .inc();
                AuthError::Blacklisted
            }
            Refusal::NoActiveAccount => AuthError::NoActiveAccount,
            Refusal::PasswordChanged => AuthError::PasswordChanged,
        }
    }

    /// Revokes a family because one of its rotated tokens came back: the
    /// token was copied, so every token of the family is suspect. Logged
    /// and counted once, by whichever request revokes it. Returns the
    /// refusal to answer.
    async fn revoke_for_reuse(
        &self,
        claims: &Claims,
        now: DateTime<Utc>,
    ) -> Result<AuthError, AuthError> {
        let family = claims.family_id();
        let revoked = families::revoke(self.store()?, family, now).await;
        self.changed_family(family).await;
        if revoked? {
            self.metrics
                .families_revoked
                .with_label_values(&["reuse"])
                .inc();
            tracing::warn!(
                target: "tessera::security",
                event = "refresh_token_reuse",
                user_id = claims.user_id(),
                family,
                "a rotated refresh token was presented again; its token family is revoked"
            );
        }
        Ok(self.refused(Refusal::Blacklisted))
    }

    async fn revoke_for_logout(&self, family: &str, now: DateTime<Utc>) -> Result<(), AuthError> {
        let revoked = families::revoke(self.store()?, family, now).await;
        self.changed_family(family).await;
        if revoked? {
            self.metrics
                .families_revoked
                .with_label_values(&["logout"])
                .inc();
        }
        Ok(())
    }

    /// No rotation: a new access token only.
    async fn issue_access(
        &self,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<Refreshed, AuthError> {
        let at = epoch(now);
        let access = self.signed(subject, move |t, s| t.access(s, at)).await?;
        self.metrics.refreshed.inc();
        self.metrics
            .tokens_issued
            .with_label_values(&["access"])
            .inc();
        Ok(Refreshed {
            access: access.token,
            refresh: None,
        })
    }

    /// The answer to a refresh that minted `pair`, counted.
    fn rotated(&self, pair: Pair) -> Refreshed {
        self.metrics.refreshed.inc();
        self.metrics.pair_issued();
        pair.into()
    }

    /// The tokens handed out for the token the family's current one
    /// replaced, re-signed from the ids and issue time kept in its row.
    async fn replay(
        &self,
        claims: &Claims,
        subject: &Subject,
        row: &FamilyRow,
    ) -> Result<Refreshed, AuthError> {
        let (at, refresh_jti, access_jti) = (
            row.issued_at,
            row.current_jti.clone(),
            row.access_jti.clone(),
        );
        let family = claims.family_id().to_owned();
        let pair = self
            .signed(subject, move |t, s| {
                t.reissued_pair(s, at, refresh_jti, access_jti, &family)
            })
            .await?;
        self.metrics.refresh_replayed.inc();
        Ok(pair.into())
    }

    /// The pair a rotation of `family` hands out.
    async fn rotated_pair(
        &self,
        subject: &Subject,
        now: DateTime<Utc>,
        family: &str,
    ) -> Result<Pair, AuthError> {
        let (at, family) = (epoch(now), family.to_owned());
        self.signed(subject, move |t, s| t.rotated_pair(s, at, &family))
            .await
    }

    /// Rotation with reuse detection: a compare-and-swap on the family row,
    /// so of concurrent refreshes exactly one mints tokens (`None` for the
    /// others). With `blacklist_after_rotation` the used token is
    /// blacklisted in the same transaction.
    async fn rotate(
        &self,
        claims: &Claims,
        subject: &Subject,
        now: DateTime<Utc>,
    ) -> Result<Option<Pair>, AuthError> {
        let db = self.store()?;
        let family = claims.family_id();
        let user_id = subject.id;
        let pair = self.rotated_pair(subject, now, family).await?;
        let mark = self.cache.mark();
        let rotation = rotation(claims, &pair, now, mark.as_ref());
        if !self.policy.blacklist_after_rotation {
            // One statement: the compare-and-swap is the whole write.
            let won = self.write_rotation(&rotation, true).await;
            let changed = !matches!(won, Ok(false));
            self.rotated_family(family, mark, changed).await;
            return Ok(won?.then_some(pair));
        }
        let txn = db.begin().await.map_err(StoreError::from)?;
        if !families::rotate(&txn, &rotation).await? {
            return Ok(None);
        }
        if !blacklist::add(
            &txn,
            &claims.jti,
            Some(user_id),
            from_epoch(claims.exp),
            now,
        )
        .await?
        {
            // Blacklisted meanwhile: nothing is issued (the transaction
            // rolls back).
            return Err(self.refused(Refusal::Blacklisted));
        }
        let committed = txn.commit().await;
        // The blacklisting's notification goes with the mark.
        self.cache.forget_unlisted(&claims.jti);
        self.rotated_family(family, mark, true).await;
        committed.map_err(StoreError::from)?;
        self.metrics.blacklisted.inc();
        Ok(Some(pair))
    }

    /// A rotation's one statement, [`families::rotate`] (`compare`) or
    /// [`families::advance`]: on this thread for a SQLite file (see
    /// `local::writes`), else, or when it cannot be made there, through the
    /// pool.
    async fn write_rotation(
        &self,
        rotation: &Rotation<'_>,
        compare: bool,
    ) -> Result<bool, StoreError> {
        let db = self.store()?;
        if let Some(local) = &self.local_writes
            && rotation.mark.is_none()
        {
            match local.rotate(rotation, compare).await {
                Ok(changed) => return Ok(changed),
                Err(e) => {
                    tracing::debug!(error = %e, "local write failed; writing through the pool")
                }
            }
        }
        if compare {
            families::rotate(db, rotation).await
        } else {
            families::advance(db, rotation).await
        }
    }

    /// Rotation without reuse detection: the family claim keeps the new
    /// token within reach of logout_all, and the row follows the newest
    /// token, even though nothing checks for reuse.
    async fn advance(
        &self,
        claims: &Claims,
        subject: &Subject,
        adopt: bool,
        now: DateTime<Utc>,
    ) -> Result<Refreshed, AuthError> {
        let user_id = subject.id;
        let pair = self.rotated_pair(subject, now, claims.family_id()).await?;
        let db = self.store()?;
        let mark = self.cache.mark();
        let rotation = rotation(claims, &pair, now, mark.as_ref());
        let recorded = if self.policy.blacklist_after_rotation {
            // Two writes that stand or fall together.
            let txn = db.begin().await.map_err(StoreError::from)?;
            let recorded = self
                .record_advance(&txn, claims, user_id, adopt, &rotation)
                .await?;
            if recorded {
                txn.commit().await.map_err(StoreError::from)?;
            }
            recorded
        } else if adopt {
            self.record_advance(db, claims, user_id, adopt, &rotation)
                .await?
        } else {
            // A logout that revoked the family meanwhile wins.
            self.write_rotation(&rotation, false).await?
        };
        if recorded && self.policy.blacklist_after_rotation {
            // The blacklisting's notification goes with the mark.
            self.cache.forget_unlisted(&claims.jti);
        }
        self.rotated_family(claims.family_id(), mark, recorded)
            .await;
        if !recorded {
            return Err(self.refused(Refusal::Blacklisted));
        }
        if adopt {
            self.refuse_if_cut_off(claims, now).await?;
        }
        if self.policy.blacklist_after_rotation {
            self.metrics.blacklisted.inc();
        }
        Ok(self.rotated(pair))
    }

    /// Blacklists the used token (with `blacklist_after_rotation`) and
    /// moves the family row on to the new pair. `false` if the token was
    /// blacklisted or its family revoked meanwhile: nothing may then be
    /// issued.
    async fn record_advance(
        &self,
        conn: &impl ConnectionTrait,
        claims: &Claims,
        user_id: i64,
        adopt: bool,
        rotation: &Rotation<'_>,
    ) -> Result<bool, AuthError> {
        let now = rotation.now;
        let expires = from_epoch(claims.exp);
        if self.policy.blacklist_after_rotation
            && !blacklist::add(conn, &claims.jti, Some(user_id), expires, now).await?
        {
            return Ok(false);
        }
        if adopt {
            families::adopt(conn, &orphan(claims, user_id), now).await?;
        }
        // A logout that revoked the family meanwhile wins.
        Ok(families::advance(conn, rotation).await?)
    }
}
