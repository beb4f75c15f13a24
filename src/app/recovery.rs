//! Djoser's email flows: activation, resent activation, password and
//! username resets by mailed link, and the confirmation mails. Links carry
//! Django's account tokens (`reset_tokens.rs`), so each works once and
//! until `users.password_reset_timeout`.

use chrono::Utc;
use sea_orm::TransactionTrait;
use secrecy::{ExposeSecret, SecretString};

use super::accounts::revocation_instant;
use super::{App, AuthError};
use crate::db::StoreError;
use crate::mail::{Context, Kind};
use crate::opaque;
use crate::reset_tokens::{self, TokenUser};
use crate::users::{self, CreateUserError, User};
use crate::validation::{self, FieldErrors, UserAttributes};

/// A link's fields as they arrived; `None` where reading failed already.
#[derive(Debug, Default)]
pub struct Link {
    pub uid: Option<String>,
    pub token: Option<String>,
}

fn token_user(user: &User) -> TokenUser<'_> {
    TokenUser {
        id: user.id,
        password: &user.password,
        last_login: user.last_login,
        email: &user.email,
    }
}

impl App {
    /// The context of `kind`'s mail to `user`, with a fresh link when the
    /// kind carries one.
    fn mail_context(&self, kind: Kind, user: &User) -> Context {
        let users = &self.settings.users;
        let url_template = match kind {
            Kind::Activation => Some(&users.activation_url),
            Kind::PasswordReset => Some(&users.password_reset_confirm_url),
            Kind::UsernameReset => Some(&users.username_reset_confirm_url),
            _ => None,
        };
        let (uid, token, url) = match url_template {
            Some(template) => {
                let uid = reset_tokens::encode_uid(user.id);
                let token = reset_tokens::make_token(
                    &token_user(user),
                    self.account_secret.expose_secret(),
                    Utc::now(),
                );
                let url = template.replace("{uid}", &uid).replace("{token}", &token);
                (uid, token, url)
            }
            None => Default::default(),
        };
        Context {
            site_name: users.site_name.clone(),
            domain: users.domain.clone(),
            protocol: users.protocol.clone(),
            username: user.username.clone(),
            email: user.email.clone(),
            link: format!("{}://{}/{url}", users.protocol, users.domain),
            uid,
            token,
            url,
        }
    }

    /// Queues `kind`'s mail to `user` (never waits for it).
    pub(super) fn mail(&self, kind: Kind, user: &User) {
        if user.email.is_empty() {
            return;
        }
        self.mailer
            .send(kind, &user.email, &self.mail_context(kind, user));
    }

    /// The user a link names, if its token is valid for them now: Djoser's
    /// `uid` error first, then its `token` error.
    async fn user_by_link(&self, uid: &str, token: &str) -> Result<User, AuthError> {
        let user = match reset_tokens::decode_uid(uid) {
            Some(id) => users::find_by_id(self.store()?, id).await?,
            None => None,
        }
        .ok_or_else(|| AuthError::Invalid(FieldErrors::single("uid", validation::INVALID_UID)))?;
        let valid = reset_tokens::check_token(
            &token_user(&user),
            token,
            self.account_secret.expose_secret(),
            Utc::now(),
            self.settings.users.password_reset_timeout,
        );
        if valid {
            Ok(user)
        } else {
            Err(invalid_token())
        }
    }

    /// The users a reset or resend for `email` reaches (none is an error
    /// only with the `*_show_email_not_found` settings).
    async fn users_by_email(
        &self,
        email: Option<String>,
        is_active: bool,
        mut errors: FieldErrors,
    ) -> Result<Vec<User>, AuthError> {
        if let Some(e) = &email {
            for m in validation::email(e) {
                errors.add("email", m);
            }
        }
        let (Some(email), true) = (email, errors.is_empty()) else {
            return Err(errors.into());
        };
        let found = users::find_by_email(self.store()?, &email, is_active).await?;
        if found.is_empty() && self.settings.users.show_email_not_found() {
            return Err(AuthError::EmailNotFound);
        }
        Ok(found)
    }

    /// `activation/`: the mailed link activates its inactive account.
    pub async fn activate(&self, link: Link, errors: FieldErrors) -> Result<(), AuthError> {
        let (Some(uid), Some(token), true) = (link.uid, link.token, errors.is_empty()) else {
            return Err(errors.into());
        };
        let user = self.user_by_link(&uid, &token).await?;
        // Of two uses of one link, the second finds the account active.
        if user.is_active {
            return Err(AuthError::StaleToken);
        }
        let activated = users::activate(self.store()?, &user).await;
        self.changed_user(user.id).await;
        if !activated? {
            return Err(AuthError::StaleToken);
        }
        tracing::info!(user_id = user.id, "account activated");
        if self.settings.users.send_confirmation_email {
            self.mail(Kind::Confirmation, &user);
        }
        Ok(())
    }

    /// `resend_activation/`: a new link for each inactive account of
    /// `email`; 400 with no body while activation mails are off.
    pub async fn resend_activation(
        &self,
        email: Option<String>,
        errors: FieldErrors,
    ) -> Result<(), AuthError> {
        let found = self.users_by_email(email, false, errors).await?;
        if !self.settings.users.send_activation_email {
            return Err(AuthError::ActivationOff);
        }
        for user in &found {
            self.mail(Kind::Activation, user);
        }
        Ok(())
    }

    /// `reset_password/` and `reset_username/`: a link for each active
    /// account of `email`; the same answer for an unknown email.
    pub async fn send_reset(
        &self,
        kind: Kind,
        email: Option<String>,
        errors: FieldErrors,
    ) -> Result<(), AuthError> {
        for user in &self.users_by_email(email, true, errors).await? {
            self.mail(kind, user);
        }
        Ok(())
    }

    /// `reset_password_confirm/`: the new password (checked by Django's
    /// rules, then against `re_new_password` if asked for), then the link.
    /// Like set_password, it ends the user's refresh tokens and opaque keys.
    pub async fn reset_password(
        &self,
        link: Link,
        new_password: Option<String>,
        retype: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<(), AuthError> {
        let (Some(uid), Some(token), Some(new_password), true) =
            (link.uid, link.token, new_password, errors.is_empty())
        else {
            return Err(errors.into());
        };
        // Djoser checks the password before it knows the user, so without
        // the similarity rule's attributes.
        let attributes = UserAttributes {
            username: "",
            email: "",
        };
        for m in validation::password(&new_password, attributes) {
            errors.add("new_password", m);
        }
        errors.into_result()?;
        validation::password_retyped(retype.as_deref(), &new_password)?;
        let user = self.user_by_link(&uid, &token).await?;
        let hash = self.hasher.hash(SecretString::from(new_password)).await?;
        let now = Utc::now();
        let txn = self.store()?.begin().await.map_err(StoreError::from)?;
        if !users::reset_password(&txn, &user, &hash, now, revocation_instant(now)).await? {
            // Used meanwhile by another request.
            return Err(invalid_token());
        }
        opaque::delete_for_user(&txn, user.id).await?;
        let committed = txn.commit().await;
        self.changed_user(user.id).await;
        committed.map_err(StoreError::from)?;
        tracing::info!(user_id = user.id, "password reset by mailed link");
        if self.settings.users.password_changed_email_confirmation {
            self.mail(Kind::PasswordChangedConfirmation, &user);
        }
        Ok(())
    }

    /// `reset_username_confirm/`: the new username (the registration
    /// rules, then `re_new_username` if asked for), then the link.
    pub async fn reset_username(
        &self,
        link: Link,
        new_username: Option<String>,
        retype: Option<String>,
        mut errors: FieldErrors,
    ) -> Result<(), AuthError> {
        let new_username = match new_username {
            Some(name) => Some(
                self.available_username(&name, "new_username", &mut errors)
                    .await?,
            ),
            None => None,
        };
        let (Some(uid), Some(token), Some(new_username), true) =
            (link.uid, link.token, new_username, errors.is_empty())
        else {
            return Err(errors.into());
        };
        validation::username_retyped(retype.as_deref(), &new_username)?;
        let user = self.user_by_link(&uid, &token).await?;
        let renamed = users::reset_username(self.store()?, &user, &new_username, Utc::now()).await;
        self.changed_user(user.id).await;
        match renamed {
            Ok(true) => {}
            Ok(false) => return Err(invalid_token()),
            Err(CreateUserError::UsernameTaken) => {
                return Err(FieldErrors::single("new_username", validation::USERNAME_TAKEN).into());
            }
            Err(CreateUserError::Store(e)) => return Err(e.into()),
        }
        tracing::info!(user_id = user.id, "username reset by mailed link");
        if self.settings.users.username_changed_email_confirmation {
            let renamed = User {
                username: new_username,
                ..user
            };
            self.mail(Kind::UsernameChangedConfirmation, &renamed);
        }
        Ok(())
    }
}

fn invalid_token() -> AuthError {
    AuthError::Invalid(FieldErrors::single("token", validation::INVALID_TOKEN))
}
