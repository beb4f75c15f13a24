//! Authentication of protected routes from the `Authorization` header.
//!
//! Each route declares the methods it takes, as DRF's
//! `authentication_classes` do (`Auth<JwtOrToken>`, `Auth<TokenOnly>`...),
//! and `auth.methods` narrows them for the whole service. Methods are tried
//! in DRF's order, JWT then Token; a header that belongs to neither means "no
//! credentials", a malformed or refused one is an error, never anonymous.

use std::borrow::Cow;
use std::marker::PhantomData;

use chrono::Utc;
use poem::Request;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::error::ApiError;
use crate::app::App;
use crate::config::AuthMethod;
use crate::tokens::Claims;
use crate::users::User;

/// Name of the Bearer (JWT) scheme in the OpenAPI document.
pub const BEARER_SCHEME: &str = "Bearer";
/// Name of the opaque-token scheme in the OpenAPI document.
pub const TOKEN_SCHEME: &str = "Token";

/// The whole `Authorization` header, as bytes (DRF reads it as bytes);
/// repeated headers are joined with `,` as a WSGI server does, which makes
/// such a request malformed.
fn authorization(req: &Request) -> Option<Cow<'_, [u8]>> {
    let mut values = req
        .headers()
        .get_all(poem::http::header::AUTHORIZATION)
        .iter();
    let first = values.next()?.as_bytes();
    let mut rest = values.peekable();
    if rest.peek().is_none() {
        return Some(Cow::Borrowed(first));
    }
    let mut joined = first.to_vec();
    for value in rest {
        joined.push(b',');
        joined.extend_from_slice(value.as_bytes());
    }
    Some(Cow::Owned(joined))
}

/// The words of a header as DRF and Simple JWT split it: Python's
/// `bytes.split()`, on ASCII whitespace only (a non-breaking space is part
/// of a word).
fn words(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    header
        .split(|b| b" \t\n\r\x0b\x0c".contains(b))
        .filter(|word| !word.is_empty())
}

/// Verifies the Bearer token of `req` with Simple JWT's `JWTAuthentication`
/// rules (keyword matched case-sensitively against `jwt.auth_header_types`;
/// the classes of `jwt.auth_token_classes` in turn). `Ok(None)`: no JWT
/// credentials were sent. No database query for an access token.
pub async fn bearer_claims(app: &App, req: &Request) -> Result<Option<Claims>, ApiError> {
    let Some(header) = authorization(req) else {
        return Ok(None);
    };
    let mut parts = words(&header);
    let Some(keyword) = parts.next() else {
        return Ok(None);
    };
    if !app
        .settings()
        .jwt
        .auth_header_types
        .iter()
        .any(|t| t.as_bytes() == keyword)
    {
        return Ok(None);
    }
    let (Some(raw), None) = (parts.next(), parts.next()) else {
        return Err(ApiError::BadAuthorizationHeader);
    };
    // Bytes that are not UTF-8 make a token no key signed: refused as invalid.
    let token = String::from_utf8_lossy(raw);
    let claims = app.verify_bearer(&token, Utc::now().timestamp()).await?;
    Ok(Some(claims))
}

/// The key of `Authorization: Token <key>`, with DRF's `TokenAuthentication`
/// rules (keyword case-insensitive). `Ok(None)`: not a Token header.
pub fn token_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(header) = authorization(req) else {
        return Ok(None);
    };
    let mut parts = words(&header);
    match (parts.next(), parts.next(), parts.next()) {
        (None, ..) => Ok(None),
        (Some(keyword), ..) if !keyword.eq_ignore_ascii_case(b"token") => Ok(None),
        (Some(_), None, _) => Err(ApiError::AuthFailed(
            "Invalid token header. No credentials provided.",
        )),
        (Some(_), Some(key), None) => match std::str::from_utf8(key) {
            Ok(key) => Ok(Some(key.to_owned())),
            Err(_) => Err(ApiError::AuthFailed(
                "Invalid token header. Token string should not contain invalid characters.",
            )),
        },
        (Some(_), Some(_), Some(_)) => Err(ApiError::AuthFailed(
            "Invalid token header. Token string should not contain spaces.",
        )),
    }
}

/// The methods a route accepts.
pub trait Methods: Send + Sync + 'static {
    const JWT: bool;
    const TOKEN: bool;
}

/// `Authorization: Bearer <access>` or `Authorization: Token <key>`.
pub struct JwtOrToken;
impl Methods for JwtOrToken {
    const JWT: bool = true;
    const TOKEN: bool = true;
}

/// Only `Authorization: Token <key>` (e.g. token logout).
pub struct TokenOnly;
impl Methods for TokenOnly {
    const JWT: bool = false;
    const TOKEN: bool = true;
}

/// How the request was authenticated.
pub enum Via {
    Jwt(Box<Claims>),
    /// The id of the opaque key used.
    Token(i64),
}

/// A request authenticated by one of the methods `M` allows, for a user
/// that exists and is active.
pub struct Auth<M> {
    pub user: User,
    pub via: Via,
    _methods: PhantomData<M>,
}

fn app(req: &Request) -> Result<&App, ApiError> {
    req.data::<App>().ok_or_else(|| {
        tracing::error!("App missing from request data");
        ApiError::Internal
    })
}

fn register_bearer(registry: &mut Registry) {
    registry.create_security_scheme(
        BEARER_SCHEME,
        MetaSecurityScheme {
            ty: "http",
            description: Some(
                "An access token from `POST /api/token/`: paste the token alone, Swagger UI adds `Bearer `.",
            ),
            name: None,
            key_in: None,
            scheme: Some("bearer"),
            bearer_format: Some("JWT"),
            flows: None,
            openid_connect_url: None,
        },
    );
}

fn register_token(registry: &mut Registry) {
    registry.create_security_scheme(
        TOKEN_SCHEME,
        MetaSecurityScheme {
            ty: "apiKey",
            description: Some(
                "An opaque key from `POST /auth/token/login/`: type `Token <key>` (the word Token, a space, the key).",
            ),
            name: Some("Authorization"),
            key_in: Some("header"),
            scheme: None,
            bearer_format: None,
            flows: None,
            openid_connect_url: None,
        },
    );
}

impl<'a, M: Methods> ApiExtractor<'a> for Auth<M> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        if M::JWT {
            register_bearer(registry);
        }
        if M::TOKEN {
            register_token(registry);
        }
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = Vec::new();
        if M::JWT {
            schemes.push(BEARER_SCHEME);
        }
        if M::TOKEN {
            schemes.push(TOKEN_SCHEME);
        }
        schemes
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let app = app(req)?;
        let methods = &app.settings().auth;
        if M::JWT
            && methods.allows(AuthMethod::Jwt)
            && let Some(claims) = bearer_claims(app, req).await?
        {
            let user = app.user_for_access(&claims).await.map_err(ApiError::from)?;
            return Ok(Self {
                user,
                via: Via::Jwt(Box::new(claims)),
                _methods: PhantomData,
            });
        }
        if M::TOKEN
            && methods.allows(AuthMethod::Token)
            && let Some(key) = token_key(req)?
        {
            let (user, token_id) = app.authenticate_key(&key).await.map_err(ApiError::from)?;
            return Ok(Self {
                user,
                via: Via::Token(token_id),
                _methods: PhantomData,
            });
        }
        if M::JWT
            && let Some(claims) = cookie_claims(app, req).await?
        {
            let user = app.user_for_access(&claims).await.map_err(ApiError::from)?;
            return Ok(Self {
                user,
                via: Via::Jwt(Box::new(claims)),
                _methods: PhantomData,
            });
        }
        Err(ApiError::NotAuthenticated.into())
    }
}

/// The access token of the access cookie, for a request with no
/// `Authorization` header, when `auth.methods` has `cookie`: verified as a
/// Bearer token is, and, for an unsafe request as `method`, Django's CSRF
/// check. `Ok(None)`: no cookie credentials.
pub async fn cookie_claims_as(
    app: &App,
    req: &Request,
    method: &poem::http::Method,
) -> Result<Option<Claims>, ApiError> {
    let cookie = &app.settings().cookie;
    if !app.settings().auth.allows(AuthMethod::Cookie) || authorization(req).is_some() {
        return Ok(None);
    }
    let Some(token) = super::cookies::cookie(req, &cookie.access_name) else {
        return Ok(None);
    };
    let cors = req
        .data::<std::sync::Arc<super::cors::Cors>>()
        .ok_or_else(|| {
            tracing::error!("Cors missing from request data");
            ApiError::Internal
        })?;
    super::cookies::check_csrf(req, method, cookie, cors)?;
    let claims = app.verify_bearer(token, Utc::now().timestamp()).await?;
    Ok(Some(claims))
}

async fn cookie_claims(app: &App, req: &Request) -> Result<Option<Claims>, ApiError> {
    cookie_claims_as(app, req, req.method()).await
}

/// A request authenticated by a valid access token alone: no database
/// query (Simple JWT's `JWTStatelessUserAuthentication`); a sliding token,
/// where configured, a blacklist lookup (from the cache while it can vouch).
pub struct JwtClaims {
    pub claims: Claims,
    /// The user id claim as sent (a string or a number).
    pub user_id: serde_json::Value,
}

impl<'a> ApiExtractor<'a> for JwtClaims {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        register_bearer(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BEARER_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let app = app(req)?;
        if !app.settings().auth.allows(AuthMethod::Jwt) {
            return Err(ApiError::NotAuthenticated.into());
        }
        let claims = bearer_claims(app, req)
            .await?
            .ok_or(ApiError::NotAuthenticated)?;
        let user_id = claims.user_id.clone().ok_or(ApiError::NoUserId)?;
        Ok(Self { claims, user_id })
    }
}

/// A request by an active staff user (DRF's `IsAdminUser`): 401 without
/// credentials, 403 for anyone else.
pub struct Staff(pub User);

impl<'a> ApiExtractor<'a> for Staff {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Auth<JwtOrToken> as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <Auth<JwtOrToken> as ApiExtractor>::security_schemes()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut poem::RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let auth = Auth::<JwtOrToken>::from_request(req, body, param_opts).await?;
        if !auth.user.is_staff {
            return Err(ApiError::Forbidden.into());
        }
        Ok(Self(auth.user))
    }
}
