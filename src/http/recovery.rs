//! Djoser's email flows under `/api/v1/auth/users/`: activation, resent
//! activation, password and username resets by mailed link.

use poem::Request;
use poem_openapi::{Object, OpenApi, Tags};

use super::body::FormBody;
use super::client::throttle;
use super::error::{Errors, FieldErrors, error_set};
use super::users::NoContent;
use crate::app::{App, Link};
use crate::mail::Kind;
use crate::throttle::Scope;

#[derive(Tags)]
enum Tag {
    Users,
}

/// The two parts of a mailed link.
// Documents the body for OpenAPI; FormBody reads it field by field.
#[allow(dead_code)]
#[derive(Object)]
pub struct Activation {
    /// The user id, URL-safe base64 (Django's `urlsafe_base64_encode`).
    pub uid: String,
    /// Django's account token from the link.
    pub token: String,
}

/// Where to send the link.
#[allow(dead_code)]
#[derive(Object)]
pub struct EmailAddress {
    pub email: String,
}

/// A mailed link and the new password (`re_new_password` too with
/// `users.password_reset_confirm_retype`).
#[allow(dead_code)]
#[derive(Object)]
pub struct PasswordResetConfirm {
    pub uid: String,
    pub token: String,
    #[oai(write_only)]
    pub new_password: String,
    #[oai(write_only)]
    pub re_new_password: Option<String>,
}

/// A mailed link and the new username (`re_new_username` too with
/// `users.username_reset_confirm_retype`).
#[allow(dead_code)]
#[derive(Object)]
pub struct UsernameResetConfirm {
    pub uid: String,
    pub token: String,
    pub new_username: String,
    pub re_new_username: Option<String>,
}

error_set!(
    /// Errors of activation (403: the account is active already).
    ActivationErrors: 400, 403, 413, 415, 429, 503
);
error_set!(
    /// Errors of the flows that mail a link, and of the confirmations.
    ResetErrors: 400, 413, 415, 429, 503
);

/// Reads `uid` and `token`, throttled by the uid.
async fn link<T>(
    app: &App,
    req: &Request,
    body: &FormBody<T>,
    errors: &mut FieldErrors,
) -> Result<Link, super::error::ApiError> {
    let uid = body.required("uid", errors);
    let token = body.required("token", errors);
    throttle(app, req, Scope::Reset, uid.as_deref()).await?;
    Ok(Link { uid, token })
}

/// Reads `email`, throttled by it.
async fn email(
    app: &App,
    req: &Request,
    body: &FormBody<EmailAddress>,
    errors: &mut FieldErrors,
) -> Result<Option<String>, super::error::ApiError> {
    let email = body.required("email", errors);
    throttle(app, req, Scope::Reset, email.as_deref()).await?;
    Ok(email)
}

/// reset_password/ and reset_username/: a link of `kind` to each account
/// of the email.
async fn mail_reset(
    app: &App,
    req: &Request,
    body: &FormBody<EmailAddress>,
    kind: Kind,
) -> Result<NoContent, Errors<ResetErrors>> {
    let mut errors = FieldErrors::default();
    let email = email(app, req, body, &mut errors).await?;
    app.send_reset(kind, email, errors).await?;
    Ok(NoContent::NoContent)
}

#[derive(Default)]
pub struct RecoveryApi;

#[OpenApi]
impl RecoveryApi {
    /// Activate an account
    ///
    /// The `uid` and `token` of the link mailed at registration (with
    /// `users.send_activation_email`). 403 `Stale token for given user.`
    /// once the account is active.
    #[oai(
        path = "/api/v1/auth/users/activation/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_activation"
    )]
    async fn activation(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<Activation>,
    ) -> Result<NoContent, Errors<ActivationErrors>> {
        let mut errors = FieldErrors::default();
        let link = link(&app, req, &body, &mut errors).await?;
        app.activate(link, errors).await?;
        Ok(NoContent::NoContent)
    }

    /// Mail the activation link again
    ///
    /// 204 whether or not an inactive account has this email; 400 with no
    /// body while `users.send_activation_email` is off.
    #[oai(
        path = "/api/v1/auth/users/resend_activation/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_resend_activation"
    )]
    async fn resend_activation(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<EmailAddress>,
    ) -> Result<NoContent, Errors<ResetErrors>> {
        let mut errors = FieldErrors::default();
        let email = email(&app, req, &body, &mut errors).await?;
        app.resend_activation(email, errors).await?;
        Ok(NoContent::NoContent)
    }

    /// Mail a password reset link
    ///
    /// 204 whether or not an account has this email (unless
    /// `users.password_reset_show_email_not_found`).
    #[oai(
        path = "/api/v1/auth/users/reset_password/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_reset_password"
    )]
    async fn reset_password(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<EmailAddress>,
    ) -> Result<NoContent, Errors<ResetErrors>> {
        mail_reset(&app, req, &body, Kind::PasswordReset).await
    }

    /// Choose a new password with a mailed link
    ///
    /// The link works once and for `users.password_reset_timeout`. The
    /// user's refresh tokens and opaque keys end, as with set_password.
    #[oai(
        path = "/api/v1/auth/users/reset_password_confirm/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_reset_password_confirm"
    )]
    async fn reset_password_confirm(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<PasswordResetConfirm>,
    ) -> Result<NoContent, Errors<ResetErrors>> {
        let mut errors = FieldErrors::default();
        let link = link(&app, req, &body, &mut errors).await?;
        let new_password = body.required("new_password", &mut errors);
        let retype = body.required_if(
            app.settings().users.password_reset_confirm_retype,
            "re_new_password",
            &mut errors,
        );
        app.reset_password(link, new_password, retype, errors)
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Mail a username reset link
    ///
    /// 204 whether or not an account has this email (unless
    /// `users.username_reset_show_email_not_found`).
    #[oai(
        path = "/api/v1/auth/users/reset_username/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_reset_username"
    )]
    async fn reset_username(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<EmailAddress>,
    ) -> Result<NoContent, Errors<ResetErrors>> {
        mail_reset(&app, req, &body, Kind::UsernameReset).await
    }

    /// Choose a new username with a mailed link
    ///
    /// The new name goes through the registration rules; the link works
    /// once and for `users.password_reset_timeout`.
    #[oai(
        path = "/api/v1/auth/users/reset_username_confirm/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_reset_username_confirm"
    )]
    async fn reset_username_confirm(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<UsernameResetConfirm>,
    ) -> Result<NoContent, Errors<ResetErrors>> {
        let mut errors = FieldErrors::default();
        let link = link(&app, req, &body, &mut errors).await?;
        let new_username = body.required("new_username", &mut errors);
        let retype = body.required_if(
            app.settings().users.username_reset_confirm_retype,
            "re_new_username",
            &mut errors,
        );
        app.reset_username(link, new_username, retype, errors)
            .await?;
        Ok(NoContent::NoContent)
    }
}
