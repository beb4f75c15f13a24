//! Forward authentication for reverse proxies (nginx `auth_request`,
//! Traefik `ForwardAuth`, Caddy `forward_auth`): "is this request
//! authenticated, and who is it?", answered with headers only.

use poem::Request;
use poem::http::{HeaderName, HeaderValue, StatusCode, header};
use poem_openapi::param::{Header, Query};
use poem_openapi::{ApiResponse, OpenApi, Tags};

use super::auth::{bearer_claims, cookie_claims_as, token_key};
use super::cookies::is_safe;
use super::error::{ApiError, WWW_AUTHENTICATE};
use crate::app::{App, AuthError};
use crate::config::{AuthMethod, UserClaim};
use crate::tokens::Claims;
use crate::users::User;

#[derive(Tags)]
enum Tag {
    /// For reverse proxies that ask before forwarding a request.
    #[oai(rename = "Forward auth")]
    ForwardAuth,
}

/// The header a proxy may set to require a group (as `?group=` does).
const REQUIRED_GROUP: &str = "x-auth-required-group";

#[derive(ApiResponse)]
pub enum ForwardResponse {
    /// Authenticated (and in every required group): pass the request on,
    /// with who it is. Values are UTF-8.
    #[oai(status = 200)]
    Ok(
        /// The user id (the token's claim for a JWT; no database read).
        #[oai(header = "X-Auth-User-Id")]
        String,
        /// `jwt`, `cookie` or `token`.
        #[oai(header = "X-Auth-Method")]
        String,
        /// The username, when the token carries it (`jwt.extra_claims` has
        /// `username`).
        #[oai(header = "X-Auth-Username")]
        Option<String>,
        /// The user's groups, comma-separated, when the token carries them
        /// (`groups`; empty for none).
        #[oai(header = "X-Auth-Groups")]
        Option<String>,
        /// The email, when the token carries it (`email`).
        #[oai(header = "X-Auth-Email")]
        Option<String>,
    ),
    /// Not authenticated: refuse the request. Empty body.
    #[oai(status = 401)]
    Unauthorized(#[oai(header = "WWW-Authenticate")] String),
    /// Authenticated, but not in a group the route requires (`?group=`
    /// or `X-Auth-Required-Group`). Empty body.
    #[oai(status = 403)]
    Forbidden,
    /// The database is down and the answer needed it (an opaque key, a
    /// sliding token's blacklist check, a group check without the groups
    /// claim). Empty body.
    #[oai(status = 503)]
    Unavailable,
}

/// Who the request is, as the headers tell it.
struct Identity {
    user_id: String,
    via: &'static str,
    username: Option<String>,
    groups: Option<Vec<String>>,
    email: Option<String>,
}

/// What forward auth answers.
enum Decision {
    Pass(Identity),
    Unauthorized,
    Forbidden,
    Unavailable,
}

impl Decision {
    /// The answer, with header values as UTF-8 bytes (a username may be
    /// any letter).
    fn into_response(self) -> poem::Response {
        let status = match &self {
            Self::Pass(_) => StatusCode::OK,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut resp = poem::Response::builder().status(status).finish();
        let headers = resp.headers_mut();
        match self {
            Self::Pass(who) => {
                let mut set = |name: &'static str, value: &str| {
                    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                };
                set("x-auth-user-id", &who.user_id);
                set("x-auth-method", who.via);
                if let Some(name) = &who.username {
                    set("x-auth-username", name);
                }
                if let Some(groups) = &who.groups {
                    set("x-auth-groups", &groups.join(","));
                }
                if let Some(email) = &who.email {
                    set("x-auth-email", email);
                }
            }
            Self::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(WWW_AUTHENTICATE),
                );
            }
            Self::Forbidden | Self::Unavailable => {}
        }
        resp
    }

    /// The same answer as the documented type.
    fn documented(self) -> ForwardResponse {
        match self {
            Self::Pass(who) => ForwardResponse::Ok(
                who.user_id,
                who.via.into(),
                who.username,
                who.groups.map(|g| g.join(",")),
                who.email,
            ),
            Self::Unauthorized => ForwardResponse::Unauthorized(WWW_AUTHENTICATE.to_owned()),
            Self::Forbidden => ForwardResponse::Forbidden,
            Self::Unavailable => ForwardResponse::Unavailable,
        }
    }
}

/// A store failure: 503 if the database is down, else refused.
fn store_failure(e: AuthError) -> Decision {
    match e {
        AuthError::Store(e) => match ApiError::from(e) {
            ApiError::Unavailable => Decision::Unavailable,
            _ => Decision::Unauthorized,
        },
        _ => Decision::Unauthorized,
    }
}

/// Who verified claims name: everything from the token itself, under the
/// configured claim names.
fn from_claims(app: &App, claims: &Claims, via: &'static str) -> Option<Identity> {
    let user_id = match claims.user_id.as_ref()? {
        serde_json::Value::String(id) => id.clone(),
        serde_json::Value::Number(id) => id.to_string(),
        _ => return None,
    };
    let names = app.token_claims();
    let text = |field| claims.text(names.name(field)).map(str::to_owned);
    let groups = claims
        .extra
        .get(names.name(UserClaim::Groups))
        .and_then(|g| g.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        });
    Some(Identity {
        user_id,
        via,
        username: text(UserClaim::Username),
        groups,
        email: text(UserClaim::Email),
    })
}

/// Who an opaque key's user is: the fields a JWT would carry under the same
/// settings, from the row already read (and the groups with one query).
async fn from_user(app: &App, user: &User) -> Result<Identity, AuthError> {
    let carried = &app.settings().jwt.extra_claims;
    let has = |field| carried.contains(&field);
    Ok(Identity {
        user_id: user.id.to_string(),
        via: "token",
        username: has(UserClaim::Username).then(|| user.username.clone()),
        groups: if has(UserClaim::Groups) {
            Some(app.subject(user).await?.groups)
        } else {
            None
        },
        email: has(UserClaim::Email).then(|| user.email.clone()),
    })
}

/// The identity behind the request's credentials, in DRF's order: a
/// Bearer JWT (from the token alone), the access cookie, an opaque key
/// (one query).
async fn identify(app: &App, req: &Request) -> Result<Identity, Decision> {
    let methods = &app.settings().auth;
    let verified = |outcome: Result<Option<Claims>, ApiError>, via| match outcome {
        Ok(None) => Ok(None),
        Ok(Some(claims)) => from_claims(app, &claims, via)
            .map(Some)
            .ok_or(Decision::Unauthorized),
        Err(ApiError::Unavailable) => Err(Decision::Unavailable),
        Err(_) => Err(Decision::Unauthorized),
    };
    if methods.allows(AuthMethod::Jwt)
        && let Some(who) = verified(bearer_claims(app, req).await, "jwt")?
    {
        return Ok(who);
    }
    // The method the proxy saw, for the CSRF check of a cookie: if any
    // header naming it says an unsafe one, the check runs (a client may
    // send one of these headers itself, which proxies pass on).
    let original = ["x-original-method", "x-forwarded-method"]
        .iter()
        .filter_map(|h| req.headers().get(*h)?.to_str().ok()?.parse().ok())
        .find(|m| !is_safe(m))
        .unwrap_or_else(|| req.method().clone());
    if let Some(who) = verified(cookie_claims_as(app, req, &original).await, "cookie")? {
        return Ok(who);
    }
    if methods.allows(AuthMethod::Token) {
        match token_key(req) {
            Ok(Some(key)) => {
                let (user, _) = app.authenticate_key(&key).await.map_err(store_failure)?;
                return from_user(app, &user).await.map_err(store_failure);
            }
            Ok(None) => {}
            Err(_) => return Err(Decision::Unauthorized),
        }
    }
    Err(Decision::Unauthorized)
}

/// The groups a route requires: each `group` query parameter and each
/// `X-Auth-Required-Group` header, comma-separated in either. Naming a
/// group can only narrow who passes, so a client that sends one itself
/// gains nothing; an empty name (`?group=` from an unset proxy variable)
/// names a group nobody is in, so it fails closed.
fn required_groups(req: &Request) -> Vec<String> {
    let pairs: Vec<(String, String)> = req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let named = pairs
        .into_iter()
        .filter(|(k, _)| k == "group")
        .map(|(_, v)| v)
        .chain(
            req.headers()
                .get_all(REQUIRED_GROUP)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        );
    named
        .flat_map(|list| {
            list.split(',')
                .map(|g| g.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The answer for one request.
async fn decide(app: &App, req: &Request) -> Decision {
    let mut who = match identify(app, req).await {
        Ok(who) => who,
        Err(decision) => return decision,
    };
    let required = required_groups(req);
    if required.is_empty() {
        return Decision::Pass(who);
    }
    // A token without the groups claim: the user's groups as they are now
    // (checked, not told: the header says what the token carries).
    let carried = who.groups.is_some();
    let groups = match who.groups.take() {
        Some(groups) => groups,
        None => match who.user_id.parse() {
            Ok(id) => match app.group_names(id).await {
                Ok(groups) => groups,
                Err(e) => return store_failure(e),
            },
            Err(_) => Vec::new(),
        },
    };
    let passes = required.iter().all(|g| groups.contains(g));
    who.groups = carried.then_some(groups);
    if passes {
        Decision::Pass(who)
    } else {
        Decision::Forbidden
    }
}

/// Where proxies send their question (trailing slash trimmed, as routed).
pub const PATH: &str = "/api/v1/auth/forward";

/// The route that serves forward auth for any method; the operation below
/// documents it.
#[poem::handler]
pub async fn any_method(app: poem::web::Data<&App>, req: &Request) -> poem::Response {
    decide(&app, req).await.into_response()
}

#[derive(Default)]
pub struct ForwardApi;

#[OpenApi]
impl ForwardApi {
    /// Forward auth
    ///
    /// 200 with `X-Auth-User-Id` and `X-Auth-Method` when the request carries
    /// a valid `Bearer <access JWT>` (checked without the database; a
    /// sliding token, with `jwt.auth_token_classes` naming it, costs a
    /// blacklist lookup) or `Token <key>`; 401 with an empty body otherwise. `X-Auth-Username`,
    /// `X-Auth-Groups` and `X-Auth-Email` come from the token's claims when
    /// `jwt.extra_claims` puts them there. With `?group=NAME` (repeatable)
    /// or an `X-Auth-Required-Group` header, a user outside any of those
    /// groups gets 403 (the groups claim is read, else the database). Any
    /// method is accepted (OPTIONS, TRACE and WebDAV's too, not only those
    /// listed here), as proxies may forward the original one.
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
    async fn forward(
        &self,
        app: poem::web::Data<&App>,
        req: &Request,
        /// A group the user must be in (403 otherwise); repeatable, or
        /// comma-separated.
        #[oai(name = "group")]
        _group: Query<Option<String>>,
        /// The same, set by the proxy.
        #[oai(name = "X-Auth-Required-Group")]
        _required: Header<Option<String>>,
    ) -> ForwardResponse {
        decide(&app, req).await.documented()
    }
}
