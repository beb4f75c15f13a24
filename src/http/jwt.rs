//! Simple JWT's views at their paths (`/api/token/...`) and at Djoser's
//! (`/api/v1/auth/jwt/...`): obtain, refresh, verify, blacklist.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};
use secrecy::SecretString;

use super::body::FormBody;
use super::client::{remember_login, throttle, throttle_ip, throttle_username};
use super::error::{ApiError, Errors, FieldErrors, error_set};
use crate::app::App;
use crate::throttle::Scope;
use crate::tokens::Expect;

#[derive(Tags)]
enum Tag {
    /// Simple JWT's views at `/api/token/...` (obtain, refresh and verify
    /// also at Djoser's `/api/v1/auth/jwt/...`: see `aliases.rs`).
    Jwt,
}

/// Login credentials.
// Documents the body for OpenAPI; FormBody reads it field by field.
#[allow(dead_code)]
#[derive(Object)]
pub struct Credentials {
    pub username: String,
    #[oai(write_only)]
    pub password: String,
}

/// A new pair: `refresh` for `/refresh/`, `access` for `Authorization: Bearer`.
#[derive(Object)]
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
}

#[derive(Object)]
pub struct RefreshRequest {
    /// A refresh token.
    pub refresh: String,
}

/// A new access token; a new refresh token too when rotation is on.
#[derive(Object)]
pub struct RefreshResponse {
    pub access: String,
    #[oai(skip_serializing_if_is_none)]
    pub refresh: Option<String>,
}

#[derive(Object)]
pub struct VerifyRequest {
    /// Any token: access or refresh.
    pub token: String,
}

/// An empty object: the operation succeeded.
#[derive(Object)]
pub struct Empty {}

error_set!(
    /// Errors of obtain (404: JWT is switched off in `auth.methods`).
    ObtainErrors: 400, 401, 404, 413, 415, 429, 503
);
error_set!(
    /// Errors of refresh.
    RefreshErrors: 400, 401, 404, 413, 415, 429, 503
);
error_set!(
    /// Errors of verify and blacklist.
    TokenErrors: 400, 401, 404, 413, 415, 503
);

#[derive(Default)]
pub struct JwtApi;

async fn obtain(
    app: &App,
    req: &Request,
    body: FormBody<Credentials>,
) -> Result<Json<TokenPair>, Errors<ObtainErrors>> {
    let mut errors = FieldErrors::default();
    let username = body.required("username", &mut errors);
    let password = body.required("password", &mut errors);
    throttle(app, req, Scope::Login, username.as_deref()).await?;
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::Validation(errors).into());
    };
    let pair = app
        .obtain_pair(&username, SecretString::from(password))
        .await?;
    remember_login(app, req, &username).await;
    Ok(Json(TokenPair {
        refresh: pair.refresh.token,
        access: pair.access.token,
    }))
}

/// Reads the one token field that refresh, verify and blacklist take.
fn token_field<T>(body: &FormBody<T>, name: &str) -> Result<String, FieldErrors> {
    let mut errors = FieldErrors::default();
    match body.required(name, &mut errors) {
        Some(v) => Ok(v),
        None => Err(errors),
    }
}

async fn refresh(
    app: &App,
    req: &Request,
    body: FormBody<RefreshRequest>,
) -> Result<Json<RefreshResponse>, Errors<RefreshErrors>> {
    throttle_ip(app, req, Scope::Refresh).await?;
    let token = token_field(&body, "refresh").map_err(ApiError::Validation)?;
    // The per-user limit needs the token's user, so the token is verified
    // first (only a token we signed can spend a user's budget).
    let now = chrono::Utc::now();
    let claims = app
        .verify_token(&token, Expect::Refresh, now.timestamp())
        .map_err(ApiError::Token)?;
    if let Some(user) = claims.user_id() {
        throttle_username(app, Scope::Refresh, &user.to_string()).await?;
    }
    let r = app.refresh_verified(claims, now).await?;
    Ok(Json(RefreshResponse {
        access: r.access,
        refresh: r.refresh,
    }))
}

async fn verify(
    app: &App,
    body: FormBody<VerifyRequest>,
) -> Result<Json<Empty>, Errors<TokenErrors>> {
    let token = token_field(&body, "token").map_err(ApiError::Validation)?;
    app.verify(&token).await?;
    Ok(Json(Empty {}))
}

async fn blacklist(
    app: &App,
    body: FormBody<RefreshRequest>,
) -> Result<Json<Empty>, Errors<TokenErrors>> {
    let token = token_field(&body, "refresh").map_err(ApiError::Validation)?;
    app.logout(&token).await?;
    Ok(Json(Empty {}))
}

#[OpenApi]
impl JwtApi {
    /// Obtain a token pair
    ///
    /// Takes a username and password and returns an access and refresh JSON
    /// web token pair. Unknown users, wrong passwords and inactive users get
    /// the same 401.
    #[oai(
        path = "/api/token/",
        method = "post",
        tag = "Tag::Jwt",
        operation_id = "token_obtain"
    )]
    async fn token_obtain(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<Credentials>,
    ) -> Result<Json<TokenPair>, Errors<ObtainErrors>> {
        obtain(&app, req, body).await
    }

    /// Refresh an access token
    ///
    /// Takes a refresh token and returns an access token (and a new refresh
    /// token when `jwt.rotate_refresh_tokens` is on) if the refresh token is
    /// valid, not blacklisted, and its user is still active.
    #[oai(
        path = "/api/token/refresh/",
        method = "post",
        tag = "Tag::Jwt",
        operation_id = "token_refresh"
    )]
    async fn token_refresh(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        body: FormBody<RefreshRequest>,
    ) -> Result<Json<RefreshResponse>, Errors<RefreshErrors>> {
        refresh(&app, req, body).await
    }

    /// Verify a token
    ///
    /// Takes any token and says whether it is valid. Unlike Simple JWT, a
    /// blacklisted refresh token is always refused.
    #[oai(
        path = "/api/token/verify/",
        method = "post",
        tag = "Tag::Jwt",
        operation_id = "token_verify"
    )]
    async fn token_verify(
        &self,
        app: poem::web::Data<&App>,
        body: FormBody<VerifyRequest>,
    ) -> Result<Json<Empty>, Errors<TokenErrors>> {
        verify(&app, body).await
    }

    /// Blacklist a refresh token (logout)
    ///
    /// The refresh token can no longer be used; the row is kept until the
    /// token would have expired.
    #[oai(
        path = "/api/token/blacklist/",
        method = "post",
        tag = "Tag::Jwt",
        operation_id = "token_blacklist"
    )]
    async fn token_blacklist(
        &self,
        app: poem::web::Data<&App>,
        body: FormBody<RefreshRequest>,
    ) -> Result<Json<Empty>, Errors<TokenErrors>> {
        blacklist(&app, body).await
    }
}
