//! The one HTTP error type, and the one place where every failure becomes a
//! DRF-shaped response: `{"detail": ...}` or `{"field": ["..."]}`.

use std::collections::HashMap;
use std::marker::PhantomData;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::Object;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::Type;
use serde::Serialize;

use crate::config::AuthTokenClass;
use crate::db::StoreError;
use crate::tokens::TokenError;

/// The challenge on every 401, as DRF sends it for Simple JWT.
pub const WWW_AUTHENTICATE: &str = r#"Bearer realm="api""#;
/// Djoser's wording when a user id names no user at all.
pub const NO_SUCH_USER: &str = "No User matches the given query.";

pub use crate::validation::FieldErrors;

impl From<FieldErrors> for ApiError {
    fn from(errors: FieldErrors) -> Self {
        Self::Validation(errors)
    }
}

/// One entry of Simple JWT's `messages` list on a refused access token.
#[derive(Debug, Clone, Serialize, Object)]
pub struct TokenMessage {
    pub token_class: String,
    pub token_type: String,
    pub message: String,
}

/// The `{"detail": ...}` body of every error that is not about fields.
#[derive(Debug, Clone, Serialize, Object)]
#[oai(rename = "Error")]
pub struct Detail {
    /// Human-readable reason, in DRF's / Simple JWT's wording.
    pub detail: String,
    /// Machine-readable reason where Simple JWT gives one (`token_not_valid`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub code: Option<String>,
    /// Per token class reasons, for a refused access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none)]
    pub messages: Option<Vec<TokenMessage>>,
}

/// Everything an endpoint can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(FieldErrors),
    /// A body that cannot be parsed; the text is DRF's whole `detail`
    /// (`JSON parse error - ...`, `Multipart form parse error - ...`).
    #[error("malformed body: {0}")]
    Malformed(String),
    /// A refresh/verify/blacklist token was refused.
    #[error("token refused: {0}")]
    Token(TokenError),
    #[error("token is blacklisted")]
    Blacklisted,
    /// A Bearer (or cookie) token was refused by every class of
    /// `jwt.auth_token_classes`, each for its reason.
    #[error("access token refused")]
    AccessToken(Vec<(AuthTokenClass, TokenError)>),
    #[error("token carries no user id")]
    NoUserId,
    #[error("bad credentials")]
    BadCredentials,
    #[error("refresh for a missing or inactive user")]
    NoActiveAccount,
    #[error("no credentials")]
    NotAuthenticated,
    #[error("malformed Authorization header")]
    BadAuthorizationHeader,
    #[error("user not found")]
    UserNotFound,
    #[error("user inactive")]
    UserInactive,
    /// A 401 with a DRF `detail` and no code (TokenAuthentication's errors).
    #[error("authentication failed: {0}")]
    AuthFailed(&'static str),
    #[error("refresh token predates a password change")]
    PasswordChanged,
    #[error("permission denied")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// A 404 with Djoser's own wording.
    #[error("not found: {0}")]
    NotFoundDetail(&'static str),
    #[error("method {method} not allowed")]
    MethodNotAllowed { method: Method, allow: String },
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("database unavailable")]
    Unavailable,
    /// The password-hashing queue is full.
    #[error("busy")]
    Busy,
    #[error("request timed out")]
    Timeout,
    #[error("request headers too large")]
    HeadersTooLarge,
    /// Over a rate limit; the seconds until one more request would pass.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// A cookie-authenticated request that failed Django's CSRF check.
    #[error("CSRF check failed: {0}")]
    Csrf(String),
    /// A 403 with a DRF `detail` (Djoser's stale activation link).
    #[error("forbidden: {0}")]
    ForbiddenDetail(&'static str),
    /// A 400 whose body is a bare list of messages, as DRF answers a
    /// serializer's `fail()` outside `is_valid` (Djoser's unknown email).
    #[error("refused: {0}")]
    Refused(&'static str),
    /// A 400 with no body at all (Djoser's resend_activation while
    /// activation mails are off).
    #[error("bad request")]
    BareBadRequest,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable
            }
            StoreError::Other(e) => {
                tracing::error!(error = %e, "database error");
                Self::Internal
            }
        }
    }
}

impl From<crate::passwords::PasswordError> for ApiError {
    fn from(err: crate::passwords::PasswordError) -> Self {
        if matches!(err, crate::passwords::PasswordError::Busy) {
            return Self::Busy;
        }
        tracing::error!(error = %err, "password hashing failed");
        Self::Internal
    }
}

fn detail(detail: impl Into<String>) -> Detail {
    Detail {
        detail: detail.into(),
        code: None,
        messages: None,
    }
}

fn coded(text: impl Into<String>, code: &str) -> Detail {
    Detail {
        code: Some(code.to_owned()),
        ..detail(text)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::Malformed(_) | Self::Refused(_) | Self::BareBadRequest => {
                StatusCode::BAD_REQUEST
            }
            Self::Token(_)
            | Self::Blacklisted
            | Self::AccessToken(_)
            | Self::NoUserId
            | Self::BadCredentials
            | Self::NoActiveAccount
            | Self::NotAuthenticated
            | Self::BadAuthorizationHeader
            | Self::UserNotFound
            | Self::UserInactive
            | Self::AuthFailed(_)
            | Self::PasswordChanged => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForbiddenDetail(_) | Self::Csrf(_) => StatusCode::FORBIDDEN,
            Self::NotFound | Self::NotFoundDetail(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable | Self::Busy | Self::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        let d = match self {
            Self::Validation(fields) => return serde_json::to_vec(fields),
            Self::Refused(text) => return serde_json::to_vec(&[text]),
            Self::BareBadRequest => return Ok(Vec::new()),
            Self::Malformed(text) => detail(text.clone()),
            Self::Token(e) => coded(e.to_string(), "token_not_valid"),
            Self::Blacklisted => coded("Token is blacklisted", "token_not_valid"),
            Self::AccessToken(refusals) => Detail {
                messages: Some(
                    refusals
                        .iter()
                        .map(|(class, e)| TokenMessage {
                            token_class: class.class_name().into(),
                            token_type: class.token_type().into(),
                            message: e.to_string(),
                        })
                        .collect(),
                ),
                ..coded(
                    "Given token not valid for any token type",
                    "token_not_valid",
                )
            },
            Self::NoUserId => coded(
                "Token contained no recognizable user identification",
                "token_not_valid",
            ),
            Self::BadCredentials => detail("No active account found with the given credentials"),
            Self::NoActiveAccount => coded(
                "No active account found for the given token.",
                "no_active_account",
            ),
            Self::NotAuthenticated => detail("Authentication credentials were not provided."),
            Self::BadAuthorizationHeader => coded(
                "Authorization header must contain two space-delimited values",
                "bad_authorization_header",
            ),
            Self::UserNotFound => coded("User not found", "user_not_found"),
            Self::UserInactive => coded("User is inactive", "user_inactive"),
            Self::AuthFailed(text) => detail(*text),
            Self::PasswordChanged => {
                coded("The user's password has been changed.", "password_changed")
            }
            Self::Forbidden => detail("You do not have permission to perform this action."),
            Self::ForbiddenDetail(text) => detail(*text),
            // DRF's SessionAuthentication.enforce_csrf wording.
            Self::Csrf(reason) => detail(format!("CSRF Failed: {reason}")),
            Self::NotFound => detail("Not found."),
            Self::NotFoundDetail(text) => detail(*text),
            Self::MethodNotAllowed { method, .. } => {
                detail(format!("Method \"{method}\" not allowed."))
            }
            Self::PayloadTooLarge { limit } => {
                detail(format!("Request body is larger than {limit} bytes."))
            }
            Self::UnsupportedMediaType(ct) => {
                detail(format!("Unsupported media type \"{ct}\" in request."))
            }
            Self::Unavailable => detail("Service temporarily unavailable, try again later."),
            Self::Busy => detail("Too many password checks in progress, try again later."),
            Self::Timeout => detail("The request took too long."),
            Self::HeadersTooLarge => detail("Request header fields too large."),
            // DRF's Throttled message, singular and plural alike.
            Self::Throttled(1) => detail("Request was throttled. Expected available in 1 second."),
            Self::Throttled(wait) => detail(format!(
                "Request was throttled. Expected available in {wait} seconds."
            )),
            Self::Internal => detail("A server error occurred."),
        };
        serde_json::to_vec(&d)
    }

    pub fn to_response(&self) -> Response {
        if matches!(self, Self::BareBadRequest) {
            return Response::builder().status(self.status()).finish();
        }
        let body = self
            .body()
            .unwrap_or_else(|_| br#"{"detail":"A server error occurred."}"#.to_vec());
        let mut resp = Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        let headers = resp.headers_mut();
        match self {
            Self::MethodNotAllowed { allow, .. } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, v);
                }
            }
            Self::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::Busy | Self::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Throttled(wait) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*wait));
            }
            _ => {}
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        resp
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// The error statuses one operation can answer, for its OpenAPI entry.
pub trait ErrorSet: Send + Sync + 'static {
    const STATUSES: &'static [u16];
}

/// Declares a marker type listing an operation's error statuses.
macro_rules! error_set {
    ($(#[$doc:meta])* $name:ident: $($status:literal),+) => {
        $(#[$doc])*
        pub struct $name;
        impl $crate::http::error::ErrorSet for $name {
            const STATUSES: &'static [u16] = &[$($status),+];
        }
    };
}
pub(crate) use error_set;

/// An [`ApiError`] as the return type of an operation whose documented
/// error statuses are `S::STATUSES`.
pub struct Errors<S>(pub ApiError, PhantomData<S>);

impl<S> std::fmt::Debug for Errors<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S, E: Into<ApiError>> From<E> for Errors<S> {
    fn from(err: E) -> Self {
        Self(err.into(), PhantomData)
    }
}

impl<S> From<Errors<S>> for poem::Error {
    fn from(err: Errors<S>) -> Self {
        err.0.into()
    }
}

fn status_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Invalid input: `{\"field\": [\"message\", ...]}` per field, or `{\"detail\": ...}` for a malformed body."
        }
        401 => {
            "Not authenticated, or a token or credentials were refused: `{\"detail\", \"code\"}`."
        }
        403 => "Authenticated but not allowed.",
        404 => "No such resource.",
        405 => "Method not allowed on this path.",
        413 => "Request body too large.",
        415 => "Unsupported Content-Type: send JSON, a URL-encoded form or multipart/form-data.",
        429 => {
            "Throttled (`throttle.*`): `{\"detail\": \"Request was throttled. Expected available in N seconds.\"}`, with Retry-After."
        }
        503 => "The database is unavailable; retry later.",
        _ => "Error.",
    }
}

impl<S: ErrorSet> ApiResponse for Errors<S> {
    fn meta() -> MetaResponses {
        let responses = S::STATUSES
            .iter()
            .map(|&status| {
                let schema = if status == 400 {
                    // Field errors, or `{"detail"}` for a body that cannot be parsed.
                    MetaSchemaRef::Inline(Box::new(MetaSchema {
                        any_of: vec![
                            <HashMap<String, Vec<String>> as Type>::schema_ref(),
                            <Detail as Type>::schema_ref(),
                        ],
                        ..MetaSchema::ANY
                    }))
                } else {
                    <Detail as Type>::schema_ref()
                };
                let mut headers = Vec::new();
                if status == 401 {
                    headers.push(MetaHeader {
                        name: "WWW-Authenticate".into(),
                        description: Some(WWW_AUTHENTICATE.into()),
                        required: true,
                        deprecated: false,
                        schema: <String as Type>::schema_ref(),
                    });
                }
                if status == 429 {
                    headers.push(MetaHeader {
                        name: "Retry-After".into(),
                        description: Some("Seconds until the request may be sent again.".into()),
                        required: true,
                        deprecated: false,
                        schema: <u64 as Type>::schema_ref(),
                    });
                }
                MetaResponse {
                    description: status_description(status),
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json",
                        schema,
                    }],
                    headers,
                }
            })
            .collect();
        MetaResponses { responses }
    }

    fn register(registry: &mut Registry) {
        <Detail as Type>::register(registry);
        <HashMap<String, Vec<String>> as Type>::register(registry);
    }
}

impl From<crate::app::AuthError> for ApiError {
    fn from(err: crate::app::AuthError) -> Self {
        use crate::app::AuthError as A;
        match err {
            A::BadCredentials => Self::BadCredentials,
            A::Token(e) => Self::Token(e),
            A::BearerRefused(refusals) => Self::AccessToken(refusals),
            A::Blacklisted => Self::Blacklisted,
            A::NoActiveAccount => Self::NoActiveAccount,
            A::NoUserId => Self::NoUserId,
            A::UserNotFound => Self::UserNotFound,
            A::UserInactive => Self::UserInactive,
            A::PasswordChanged => Self::PasswordChanged,
            A::InvalidKey => Self::AuthFailed("Invalid token."),
            A::KeyUserInactive => Self::AuthFailed("User inactive or deleted."),
            A::Invalid(errors) => Self::Validation(errors),
            A::NoSuchUser => Self::NotFoundDetail(NO_SUCH_USER),
            A::Hidden => Self::NotFound,
            A::NoSuchGroup => Self::NotFoundDetail("No Group matches the given query."),
            A::StaleToken => Self::ForbiddenDetail("Stale token for given user."),
            A::EmailNotFound => Self::Refused("User with given email does not exist."),
            A::ActivationOff => Self::BareBadRequest,
            A::Forbidden => Self::Forbidden,
            A::Randomness(e) => {
                tracing::error!(error = %e, "the random source failed");
                Self::Internal
            }
            A::Signing(e) => {
                tracing::error!(error = %e, "a token could not be signed");
                Self::Internal
            }
            A::Store(e) => e.into(),
            A::Password(e) => e.into(),
        }
    }
}
