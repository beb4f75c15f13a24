//! Simple JWT's sliding-token views at its paths (`/api/token/sliding/...`),
//! and a blacklist for sliding tokens (Simple JWT has the method, not the
//! view).

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use secrecy::SecretString;

use super::body::FormBody;
use super::client::{remember_login, throttle, throttle_ip, throttle_username};
use super::error::{ApiError, Errors, FieldErrors, error_set};
use super::jwt::{Credentials, Empty};
use crate::app::App;
use crate::throttle::Scope;
use crate::tokens::Expect;

#[derive(Tags)]
enum Tag {
    /// Simple JWT's sliding tokens: one token that authenticates requests
    /// (when `jwt.auth_token_classes` has `sliding`) and is refreshed before
    /// it expires, until its `refresh_exp`.
    #[oai(rename = "Sliding tokens")]
    Sliding,
}

#[derive(Object)]
pub struct SlidingToken {
    /// A sliding token: `token_type` `sliding`, with `refresh_exp`.
    pub token: String,
}

error_set!(
    /// Errors of obtain (404: JWT is switched off in `auth.methods`).
    ObtainErrors: 400, 401, 404, 413, 415, 429, 503
);
error_set!(
    /// Errors of refresh.
    RefreshErrors: 400, 401, 404, 413, 415, 429, 503
);
error_set!(
    /// Errors of blacklist.
    BlacklistErrors: 400, 401, 404, 413, 415, 503
);

/// The `token` field of a body.
fn token_field(body: &FormBody<SlidingToken>) -> Result<String, ApiError> {
    let mut errors = FieldErrors::default();
    body.required("token", &mut errors)
        .ok_or(ApiError::Validation(errors))
}

#[derive(Default)]
pub struct SlidingApi;

#[OpenApi]
impl SlidingApi {
    /// Obtain a sliding token
    ///
    /// Takes a username and password and returns one sliding token.
    /// Unknown users, wrong passwords and inactive users get the same 401.
    #[oai(
        path = "/api/token/sliding/",
        method = "post",
        tag = "Tag::Sliding",
        operation_id = "token_obtain_sliding"
    )]
    async fn obtain(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<Credentials>,
    ) -> Result<Json<SlidingToken>, Errors<ObtainErrors>> {
        let mut errors = FieldErrors::default();
        let username = body.required("username", &mut errors);
        let password = body.required("password", &mut errors);
        throttle(&app, req, Scope::Login, username.as_deref()).await?;
        let (Some(username), Some(password)) = (username, password) else {
            return Err(ApiError::Validation(errors).into());
        };
        let token = app
            .obtain_sliding(&username, SecretString::from(password))
            .await?;
        remember_login(&app, req, &username).await;
        Ok(Json(SlidingToken { token: token.token }))
    }

    /// Refresh a sliding token
    ///
    /// Takes a sliding token that has not expired and whose `refresh_exp`
    /// has not passed, and returns a new one with the same `jti` and
    /// `refresh_exp`. Beyond Simple JWT, a blacklisted token, a user who is
    /// gone or inactive, or a password changed since are refused.
    #[oai(
        path = "/api/token/sliding/refresh/",
        method = "post",
        tag = "Tag::Sliding",
        operation_id = "token_refresh_sliding"
    )]
    async fn refresh(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<SlidingToken>,
    ) -> Result<Json<SlidingToken>, Errors<RefreshErrors>> {
        throttle_ip(&app, req, Scope::Refresh).await?;
        let token = token_field(&body)?;
        // The per-user limit needs the token's user: only a token we
        // signed can spend a user's budget.
        let now = chrono::Utc::now();
        let claims = app
            .verify_token(&token, Expect::Sliding, now.timestamp())
            .map_err(ApiError::Token)?;
        if let Some(user) = claims.user_id() {
            throttle_username(&app, Scope::Refresh, &user.to_string()).await?;
        }
        let token = app.refresh_sliding_verified(claims, now).await?;
        Ok(Json(SlidingToken { token }))
    }

    /// Blacklist a sliding token (logout)
    ///
    /// The token, and every refresh of it, can no longer be used; the row
    /// is kept until its `refresh_exp`.
    #[oai(
        path = "/api/token/sliding/blacklist/",
        method = "post",
        tag = "Tag::Sliding",
        operation_id = "token_blacklist_sliding"
    )]
    async fn blacklist(
        &self,
        app: poem::web::Data<&App>,
        body: FormBody<SlidingToken>,
    ) -> Result<Json<Empty>, Errors<BlacklistErrors>> {
        let token = token_field(&body)?;
        app.blacklist_sliding(&token).await?;
        Ok(Json(Empty {}))
    }
}
