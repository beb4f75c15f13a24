//! Forward authentication for reverse proxies (nginx `auth_request`,
//! Traefik `ForwardAuth`, Caddy `forward_auth`): "is this request
//! authenticated, and who is it?", answered with headers only.

use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::auth::{bearer_claims, cookie_claims_as, token_key};
use super::cookies::is_safe;
use super::error::{ApiError, WWW_AUTHENTICATE};
use crate::app::{App, AuthError};
use crate::config::AuthMethod;
use crate::tokens::Claims;

#[derive(Tags)]
enum Tag {
    /// For reverse proxies that ask before forwarding a request.
    #[oai(rename = "Forward auth")]
    ForwardAuth,
}

#[derive(ApiResponse)]
pub enum ForwardResponse {
    /// Authenticated: pass the request on, with who it is.
    #[oai(status = 200)]
    Ok(
        /// The user id (the token's claim for a JWT; no database read).
        #[oai(header = "X-Auth-User-Id")]
        String,
        /// `jwt` or `token`.
        #[oai(header = "X-Auth-Method")]
        String,
    ),
    /// Not authenticated: refuse the request. Empty body.
    #[oai(status = 401)]
    Unauthorized(#[oai(header = "WWW-Authenticate")] String),
    /// The database is down and an opaque key needed it. Empty body.
    #[oai(status = 503)]
    Unavailable,
}

fn unauthorized() -> ForwardResponse {
    ForwardResponse::Unauthorized(WWW_AUTHENTICATE.to_owned())
}

/// The answer for verified (or refused) access-token claims, `via` the
/// method that carried them; `None` when none were sent.
fn answer_for(outcome: Result<Option<Claims>, ApiError>, via: &str) -> Option<ForwardResponse> {
    match outcome {
        Ok(None) => None,
        Ok(Some(claims)) => Some(match claims.user_id {
            Some(serde_json::Value::String(id)) => ForwardResponse::Ok(id, via.into()),
            Some(serde_json::Value::Number(id)) => ForwardResponse::Ok(id.to_string(), via.into()),
            _ => unauthorized(),
        }),
        Err(_) => Some(unauthorized()),
    }
}

/// The answer for one request: a Bearer JWT is checked from the token alone,
/// an opaque key with one query.
async fn decide(app: &App, req: &Request) -> ForwardResponse {
    let methods = &app.settings().auth;
    if methods.allows(AuthMethod::Jwt)
        && let Some(answer) = answer_for(bearer_claims(app, req), "jwt")
    {
        return answer;
    }
    // The method the proxy saw, for the CSRF check of a cookie: if any
    // header naming it says an unsafe one, the check runs (a client may
    // send one of these headers itself, which proxies pass on).
    let original = ["x-original-method", "x-forwarded-method"]
        .iter()
        .filter_map(|h| req.headers().get(*h)?.to_str().ok()?.parse().ok())
        .find(|m| !is_safe(m))
        .unwrap_or_else(|| req.method().clone());
    if let Some(answer) = answer_for(cookie_claims_as(app, req, &original), "cookie") {
        return answer;
    }
    if methods.allows(AuthMethod::Token) {
        match token_key(req) {
            Ok(Some(key)) => {
                return match app.authenticate_key(&key).await {
                    Ok((user, _)) => ForwardResponse::Ok(user.id.to_string(), "token".into()),
                    Err(AuthError::Store(e)) => match ApiError::from(e) {
                        ApiError::Unavailable => ForwardResponse::Unavailable,
                        _ => unauthorized(),
                    },
                    Err(_) => unauthorized(),
                };
            }
            Ok(None) => {}
            Err(_) => return unauthorized(),
        }
    }
    unauthorized()
}

/// Where proxies send their question (trailing slash trimmed, as routed).
pub const PATH: &str = "/api/v1/auth/forward";

/// The route that serves forward auth for any method; the operation below
/// documents it.
#[poem::handler]
pub async fn any_method(app: poem::web::Data<&App>, req: &Request) -> poem::Response {
    use poem::IntoResponse;
    decide(&app, req).await.into_response()
}

#[derive(Default)]
pub struct ForwardApi;

#[OpenApi]
impl ForwardApi {
    /// Forward auth
    ///
    /// 200 with `X-Auth-User-Id` and `X-Auth-Method` when the request carries
    /// a valid `Bearer <access JWT>` (checked without the database) or
    /// `Token <key>`; 401 with an empty body otherwise. Any method is
    /// accepted (OPTIONS, TRACE and WebDAV's too, not only those listed
    /// here), as proxies may forward the original one.
    #[oai(
        path = "/api/v1/auth/forward/",
        method = "get",
        method = "head",
        method = "post",
        method = "put",
        method = "patch",
        method = "delete",
        tag = "Tag::ForwardAuth"
    )]
    async fn forward(&self, app: poem::web::Data<&App>, req: &Request) -> ForwardResponse {
        decide(&app, req).await
    }
}
