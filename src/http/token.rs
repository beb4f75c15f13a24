//! Djoser's authtoken routes (`/auth/token/...`, also under
//! `/api/v1/auth/token/...`), with knox's improvements: a new key per login,
//! only digests stored, and logout of every device at once.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::SecretString;

use super::auth::{Auth, JwtOrToken, TokenOnly, Via};
use super::body::FormBody;
use super::client::{remember_login, throttle};
use super::error::{ApiError, Errors, FieldErrors, error_set};
use crate::app::{App, AuthError};
use crate::throttle::Scope;

#[derive(Tags)]
enum Tag {
    /// Opaque `Authorization: Token <key>` sessions (DRF authtoken through Djoser).
    #[oai(rename = "Token")]
    OpaqueToken,
}

/// Login credentials (both optional: any failure gets one answer).
#[allow(dead_code)]
#[derive(Object)]
pub struct TokenCredentials {
    pub username: Option<String>,
    #[oai(write_only)]
    pub password: Option<String>,
}

/// A new key: send it as `Authorization: Token <auth_token>`.
#[derive(Object)]
pub struct AuthToken {
    /// 40 lowercase hex digits. Shown once: only its digest is stored.
    pub auth_token: String,
}

#[derive(ApiResponse)]
pub enum LoggedOut {
    /// Logged out.
    #[oai(status = 204)]
    NoContent,
}

error_set!(
    /// Errors of token login.
    LoginErrors: 400, 404, 413, 415, 429, 503
);
error_set!(
    /// Errors of token logout.
    LogoutErrors: 401, 404, 503
);

async fn login(
    app: &App,
    req: &Request,
    body: FormBody<TokenCredentials>,
) -> Result<Json<AuthToken>, Errors<LoginErrors>> {
    // Djoser's fields are optional: missing or blank ones simply fail to log
    // in; a value that is no string at all (null, a list, NUL inside) is a
    // field error, as in its serializer.
    let mut errors = FieldErrors::default();
    let username = body.optional("username", &mut errors);
    let password = body.optional("password", &mut errors);
    throttle(app, req, Scope::Login, username.as_deref()).await?;
    errors.into_result().map_err(ApiError::Validation)?;
    let key = app
        .token_login(username.as_deref(), password.map(SecretString::from))
        .await
        .map_err(|e| match e {
            // Djoser's answer to every failed token login.
            AuthError::BadCredentials => ApiError::Validation(FieldErrors::single(
                "non_field_errors",
                "Unable to log in with provided credentials.",
            )),
            other => other.into(),
        })?;
    if let Some(name) = &username {
        remember_login(app, req, name).await;
    }
    Ok(Json(AuthToken { auth_token: key }))
}

async fn logout(app: &App, auth: Auth<TokenOnly>) -> Result<LoggedOut, Errors<LogoutErrors>> {
    let Via::Token(token_id) = auth.via else {
        return Err(ApiError::NotAuthenticated.into());
    };
    app.token_logout(auth.user.id, token_id).await?;
    Ok(LoggedOut::NoContent)
}

async fn logout_all(app: &App, auth: Auth<JwtOrToken>) -> Result<LoggedOut, Errors<LogoutErrors>> {
    app.token_logout_all(auth.user.id).await?;
    Ok(LoggedOut::NoContent)
}

#[derive(Default)]
pub struct TokenApi;

#[OpenApi]
impl TokenApi {
    /// Log in for an opaque key
    ///
    /// Each login creates a new key, so every device has its own. Wrong
    /// credentials, an unknown or inactive user and missing fields all get
    /// the same 400.
    #[oai(
        path = "/auth/token/login/",
        method = "post",
        tag = "Tag::OpaqueToken",
        operation_id = "token_login"
    )]
    async fn token_login(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<TokenCredentials>,
    ) -> Result<Json<AuthToken>, Errors<LoginErrors>> {
        login(&app, req, body).await
    }

    /// Log out: end the key in the Authorization header
    ///
    /// Takes only `Authorization: Token <key>`; the key stops working at once.
    #[oai(
        path = "/auth/token/logout/",
        method = "post",
        tag = "Tag::OpaqueToken",
        operation_id = "token_logout"
    )]
    async fn token_logout(
        &self,
        auth: Auth<TokenOnly>,
        app: poem::web::Data<&App>,
    ) -> Result<LoggedOut, Errors<LogoutErrors>> {
        logout(&app, auth).await
    }

    /// Log out everywhere: end every key of the user
    ///
    /// Takes a `Token` key or a Bearer JWT; every opaque key of the user stops
    /// working.
    #[oai(
        path = "/auth/token/logoutall/",
        method = "post",
        tag = "Tag::OpaqueToken",
        operation_id = "token_logout_all"
    )]
    async fn token_logout_all(
        &self,
        auth: Auth<JwtOrToken>,
        app: poem::web::Data<&App>,
    ) -> Result<LoggedOut, Errors<LogoutErrors>> {
        logout_all(&app, auth).await
    }
}
