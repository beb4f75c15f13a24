//! Account management (Djoser's user endpoints) and opaque-token sessions,
//! as plain Rust over the same service as the JWT flows.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use sea_orm::TransactionTrait;
use secrecy::SecretString;

use crate::app::{App, AuthError, not_before_revocation};
use crate::mail::Kind;
use crate::users::{self, CreateUserError, User};
use crate::validation::{self, FieldErrors, INVALID_PASSWORD, UserAttributes};
use crate::{db::StoreError, opaque};

/// The instant from which tokens are valid again after a revocation: the
/// next whole second, since token `iat`s are whole seconds.
pub(super) fn revocation_instant(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(TimeDelta::seconds(1)).unwrap_or(now) + TimeDelta::seconds(1)
}

impl App {
    /// Djoser's token login: a new opaque key for valid credentials (one per
    /// login, so each device has its own). Every failure, missing fields
    /// included, is `BadCredentials`.
    pub async fn token_login(
        &self,
        username: Option<&str>,
        password: Option<SecretString>,
    ) -> Result<String, AuthError> {
        let outcome = self
            .authenticate(
                username.unwrap_or_default(),
                password.unwrap_or_else(|| SecretString::from(String::new())),
            )
            .await;
        let label = if outcome.is_ok() { "ok" } else { "failed" };
        self.metrics
            .logins
            .with_label_values(&["token", label])
            .inc();
        let user = outcome?;
        // As for JWTs: a key made in the second of a revocation is dated after it.
        let now = not_before_revocation(&user).await;
        // Django's user_logged_in signal records the login.
        let recorded = users::set_last_login(self.store()?, user.id, now).await;
        self.cache.forget_user(user.id);
        recorded?;
        let key = opaque::generate_key().map_err(|e| AuthError::Randomness(e.to_string()))?;
        opaque::create(self.store()?, &key, user.id, now).await?;
        self.metrics
            .tokens_issued
            .with_label_values(&["opaque"])
            .inc();
        Ok(key)
    }

    /// The user behind an opaque key, as DRF's `TokenAuthentication` finds
    /// it, and the key's id. Expired keys are deleted on sight.
    pub async fn authenticate_key(&self, key: &str) -> Result<(User, i64), AuthError> {
        let digest = opaque::digest(key);
        let (token, user) = self
            .cache
            .key(&digest, opaque::find_digest(self.store()?, &digest))
            .await?
            .ok_or(AuthError::InvalidKey)?;
        if let Some(lifetime) = self.settings.token.lifetime {
            let lifetime = TimeDelta::from_std(lifetime).unwrap_or(TimeDelta::MAX);
            if token
                .created_at
                .checked_add_signed(lifetime)
                .is_some_and(|end| end <= Utc::now())
            {
                self.delete_key(&token).await?;
                return Err(AuthError::InvalidKey);
            }
        }
        if !user.is_active {
            return Err(AuthError::KeyUserInactive);
        }
        // A key that slipped in while a password change was committing.
        if user
            .tokens_valid_after
            .is_some_and(|after| token.created_at < after)
        {
            self.delete_key(&token).await?;
            return Err(AuthError::InvalidKey);
        }
        Ok((user, token.id))
    }

    async fn delete_key(&self, token: &opaque::KeyRow) -> Result<(), AuthError> {
        let deleted = opaque::delete(self.store()?, token.id).await;
        self.changed_keys(token.user_id).await;
        Ok(deleted?)
    }

    pub async fn token_logout(&self, user_id: i64, token_id: i64) -> Result<(), AuthError> {
        let deleted = opaque::delete(self.store()?, token_id).await;
        self.changed_keys(user_id).await;
        Ok(deleted?)
    }

    pub async fn token_logout_all(&self, user_id: i64) -> Result<u64, AuthError> {
        let deleted = opaque::delete_for_user(self.store()?, user_id).await;
        self.changed_keys(user_id).await;
        Ok(deleted?)
    }

    /// Djoser's list with HIDE_USERS: staff see everyone, others themselves.
    pub async fn visible_users(&self, requester: &User) -> Result<Vec<User>, AuthError> {
        if requester.is_staff {
            Ok(users::list_all(self.store()?).await?)
        } else {
            Ok(vec![requester.clone()])
        }
    }

    /// The user `id` as the requester may see it: themselves, or anyone for
    /// staff. Others are hidden (404), as Djoser does.
    pub async fn visible_user(&self, requester: &User, id: i64) -> Result<User, AuthError> {
        let user = self.user(id).await?;
        if user.id == requester.id || requester.is_staff {
            Ok(user)
        } else {
            Err(AuthError::Hidden)
        }
    }

    /// The user `id`, whoever asks (a deletion's target is checked by
    /// [`Self::delete_user`]).
    pub async fn user(&self, id: i64) -> Result<User, AuthError> {
        self.current_user(id).await?.ok_or(AuthError::NoSuchUser)
    }

    /// Updates the only writable field, `email` (absent: unchanged).
    /// `errors` holds what reading the fields found. With activation mails
    /// on, a new email deactivates the account until its link is used.
    pub async fn update_email(
        &self,
        user: User,
        email: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<User, AuthError> {
        if let Some(e) = &email {
            for m in validation::email(e) {
                errors.add("email", m);
            }
        }
        errors.into_result()?;
        match email {
            Some(email) if email != user.email => {
                // With activation mails, a new address is confirmed the way
                // the first one was, as Djoser's UserSerializer does.
                let reactivate = self.settings.users.send_activation_email;
                let set = users::set_email(self.store()?, user.id, &email, reactivate).await;
                self.changed_user(user.id).await;
                set?;
                let user = User {
                    email,
                    is_active: user.is_active && !reactivate,
                    ..user
                };
                if reactivate {
                    self.mail(Kind::Activation, &user);
                }
                Ok(user)
            }
            _ => Ok(user),
        }
    }

    /// Whether `password` is `user`'s, at the cost of one argon2 verification.
    async fn check_password(&self, user: &User, password: String) -> Result<bool, AuthError> {
        Ok(self
            .hasher
            .verify(SecretString::from(password), Some(user.password.clone()))
            .await?)
    }

    /// Checks `current_password` of the requester, as Djoser's
    /// `CurrentPasswordSerializer`; missing or wrong goes into `errors`.
    async fn current_password_ok(
        &self,
        requester: &User,
        current: Option<String>,
        errors: &mut FieldErrors,
    ) -> Result<bool, AuthError> {
        let Some(current) = current else {
            return Ok(false);
        };
        if self.check_password(requester, current).await? {
            Ok(true)
        } else {
            errors.add("current_password", INVALID_PASSWORD);
            Ok(false)
        }
    }

    /// Djoser's `set_password`, and unlike Djoser it revokes: the user's
    /// opaque keys are deleted and refresh tokens issued before now refused.
    pub async fn set_password(
        &self,
        user: &User,
        new_password: Option<String>,
        current_password: Option<String>,
        retype: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<(), AuthError> {
        let current_ok = self
            .current_password_ok(user, current_password, &mut errors)
            .await?;
        let (Some(new_password), true, true) = (new_password, current_ok, errors.is_empty()) else {
            return Err(errors.into());
        };
        // PasswordSerializer.validate: only once the fields are valid.
        let problems = validation::password(
            &new_password,
            UserAttributes {
                username: &user.username,
                email: &user.email,
            },
        );
        for m in problems {
            errors.add("new_password", m);
        }
        errors.into_result()?;
        // `re_new_password`, with users.set_password_retype.
        validation::password_retyped(retype.as_deref(), &new_password)?;
        let hash = self.hasher.hash(SecretString::from(new_password)).await?;
        let valid_after = revocation_instant(Utc::now());
        let txn = self.store()?.begin().await.map_err(StoreError::from)?;
        users::set_password(&txn, user.id, &hash, valid_after).await?;
        opaque::delete_for_user(&txn, user.id).await?;
        let committed = txn.commit().await;
        self.changed_user(user.id).await;
        committed.map_err(StoreError::from)?;
        if self.settings.users.password_changed_email_confirmation {
            self.mail(Kind::PasswordChangedConfirmation, user);
        }
        Ok(())
    }

    /// Djoser's `set_username`.
    pub async fn set_username(
        &self,
        user: &User,
        current_password: Option<String>,
        new_username: Option<String>,
        retype: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<(), AuthError> {
        let current_ok = self
            .current_password_ok(user, current_password, &mut errors)
            .await?;
        let new_username = match new_username {
            Some(name) => Some(
                self.available_username(&name, "new_username", &mut errors)
                    .await?,
            ),
            None => None,
        };
        let (Some(new_username), true, true) = (new_username, current_ok, errors.is_empty()) else {
            return Err(errors.into());
        };
        // `re_new_username`, with users.set_username_retype.
        validation::username_retyped(retype.as_deref(), &new_username)?;
        let renamed = users::set_username(self.store()?, user.id, &new_username).await;
        self.changed_user(user.id).await;
        renamed.map_err(|e| match e {
            CreateUserError::UsernameTaken => AuthError::Invalid(FieldErrors::single(
                "new_username",
                validation::USERNAME_TAKEN,
            )),
            CreateUserError::Store(s) => AuthError::Store(s),
        })?;
        if self.settings.users.username_changed_email_confirmation {
            let renamed = User {
                username: new_username,
                ..user.clone()
            };
            self.mail(Kind::UsernameChangedConfirmation, &renamed);
        }
        Ok(())
    }

    /// Djoser's destroy: `target` is deleted once the requester confirms with
    /// their own current password. Only the user themselves or staff may.
    pub async fn delete_user(
        &self,
        requester: &User,
        target: &User,
        current_password: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<(), AuthError> {
        if target.id != requester.id && !requester.is_staff {
            return Err(AuthError::Forbidden);
        }
        let ok = self
            .current_password_ok(requester, current_password, &mut errors)
            .await?;
        if !ok || !errors.is_empty() {
            return Err(errors.into());
        }
        let deleted = users::delete(self.store()?, target.id).await;
        self.changed_user(target.id).await;
        Ok(deleted?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn revocation_starts_at_the_next_whole_second() {
        let t = Utc.timestamp_opt(1_800_000_000, 250_000_000).unwrap();
        assert_eq!(revocation_instant(t).timestamp(), 1_800_000_001);
        assert_eq!(revocation_instant(t).timestamp_subsec_nanos(), 0);
        let exact = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        assert_eq!(revocation_instant(exact).timestamp(), 1_800_000_001);
    }
}
