//! Authentication of protected routes from the `Authorization` header, with
//! Simple JWT's `JWTAuthentication` rules: the keyword is matched
//! case-sensitively against `jwt.auth_header_types`, an unknown keyword means
//! "no credentials", and the access token is verified without touching the
//! database.

use chrono::Utc;
use poem::Request;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use super::error::ApiError;
use crate::service::AuthService;
use crate::tokens::{Claims, Expect};
use crate::users::User;

/// Name of the Bearer scheme in the OpenAPI document.
pub const BEARER_SCHEME: &str = "Bearer";

/// The whole `Authorization` header; repeated headers are joined with `,`
/// as a WSGI server does, which makes such a request malformed.
fn authorization(req: &Request) -> Option<String> {
    let values: Vec<String> = req
        .headers()
        .get_all(poem::http::header::AUTHORIZATION)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Verifies the Bearer access token of `req`, if any. `Ok(None)`: no
/// credentials of ours were sent.
pub fn bearer_claims(service: &AuthService, req: &Request) -> Result<Option<Claims>, ApiError> {
    let Some(header) = authorization(req) else {
        return Ok(None);
    };
    let parts: Vec<&str> = header.split_whitespace().collect();
    let Some(keyword) = parts.first() else {
        return Ok(None);
    };
    if !service
        .settings
        .jwt
        .auth_header_types
        .iter()
        .any(|t| t == keyword)
    {
        return Ok(None);
    }
    if parts.len() != 2 {
        return Err(ApiError::BadAuthorizationHeader);
    }
    let claims = service
        .tokens
        .verify(parts[1], Expect::Access, Utc::now().timestamp())
        .map_err(ApiError::AccessToken)?;
    Ok(Some(claims))
}

/// A request authenticated by a valid access token whose user exists and is
/// active.
pub struct JwtUser {
    pub user: User,
    pub claims: Claims,
}

fn service(req: &Request) -> Result<&AuthService, ApiError> {
    req.data::<AuthService>().ok_or_else(|| {
        tracing::error!("AuthService missing from request data");
        ApiError::Internal
    })
}

/// A request authenticated by a valid access token alone: no database
/// query (Simple JWT's `JWTStatelessUserAuthentication`).
pub struct JwtClaims {
    pub claims: Claims,
    /// The user id claim as sent (a string or a number).
    pub user_id: serde_json::Value,
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
        let service = service(req)?;
        let claims = bearer_claims(service, req)?.ok_or(ApiError::NotAuthenticated)?;
        let user_id = claims.user_id.clone().ok_or(ApiError::NoUserId)?;
        Ok(Self { claims, user_id })
    }
}

impl<'a> ApiExtractor<'a> for JwtUser {
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
        let service = service(req)?;
        let claims = bearer_claims(service, req)?.ok_or(ApiError::NotAuthenticated)?;
        let user = service
            .user_for_access(&claims)
            .await
            .map_err(ApiError::from)?;
        Ok(Self { user, claims })
    }
}
