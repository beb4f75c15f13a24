//! The HTTP layer: routes, the OpenAPI document and Swagger UI, and the
//! translation of every failure (ours and the framework's) into DRF's shapes.

mod aliases;
pub mod auth;
pub mod body;
pub mod client;
pub mod cookies;
pub mod cors;
mod docs;
pub mod error;
mod forward;
mod groups;
mod jwks;
mod jwt;
mod ops;
mod recovery;
mod sliding;
mod token;
mod users;
mod whoami;

use std::sync::Arc;

use poem::http::{HeaderValue, Method, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route};
use poem_openapi::OpenApiService;

use tracing::Instrument;

use crate::app::App;
use crate::config::{AuthMethod, AuthSettings};
use error::ApiError;

/// The route groups of each authentication method, by path prefix (after
/// Djoser's aliases are resolved). With the method switched off in
/// `auth.methods` they answer 404, as if absent.
const METHOD_ROUTES: &[(&str, AuthMethod)] = &[
    ("/api/token", AuthMethod::Jwt),
    ("/auth/token", AuthMethod::Token),
];

/// Whether `path` belongs to a route group whose method is switched off.
fn switched_off(path: &str, auth: &AuthSettings) -> bool {
    METHOD_ROUTES.iter().any(|(prefix, method)| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            && !auth.allows(*method)
    })
}

type Apis = (
    forward::ForwardApi,
    jwt::JwtApi,
    sliding::SlidingApi,
    jwks::JwksApi,
    users::UsersApi,
    groups::GroupsApi,
    recovery::RecoveryApi,
    token::TokenApi,
    whoami::WhoamiApi,
    ops::OpsApi,
);

/// The OpenAPI service for all operations.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(Apis::default(), "Tessera", env!("CARGO_PKG_VERSION")).description(
        "JWT authentication compatible with Django Simple JWT + Djoser. Every path is served \
         with and without its trailing slash. Request bodies may be JSON, URL-encoded forms or \
         multipart/form-data.",
    )
}

/// The OpenAPI document as JSON, e.g. for `tessera openapi` or tests.
pub fn spec_json() -> String {
    docs::polish(&openapi().spec())
}

/// The routes of the OpenAPI document: for a request path, its template
/// (the `route` of logs and metrics, bounded and free of ids) and the
/// methods it accepts (the `Allow` of a 405). Rows are kept by their number
/// of segments, the first thing a path must match: every request looks its
/// route up.
struct AllowTable(Vec<Vec<Row>>);

/// More segments than any route has (checked by a test).
const MAX_SEGMENTS: usize = 8;

struct Row {
    segments: Vec<String>,
    /// How many segments are literal (not `{param}`).
    literals: usize,
    template: String,
    allow: String,
}

impl Row {
    fn new(template: &str, allow: String) -> Self {
        let segments: Vec<String> = segments(template).map(str::to_owned).collect();
        Self {
            literals: segments.iter().filter(|p| !p.starts_with('{')).count(),
            segments,
            template: template.to_owned(),
            allow,
        }
    }

    fn matches(&self, words: &[&str]) -> bool {
        self.segments
            .iter()
            .zip(words)
            .all(|(p, w)| p.starts_with('{') || p == w)
    }
}

impl AllowTable {
    fn from_spec(spec: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut rows = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
            for (path, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                let methods: Vec<String> = ["get", "head", "post", "put", "patch", "delete"]
                    .iter()
                    .filter(|m| item.contains_key(**m))
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                rows.push(Row::new(path, methods.join(", ")));
            }
        }
        // Each alias answers as its canonical path, under its own name.
        for alias in aliases::ALIASES {
            let allow = rows
                .iter()
                .find(|r| r.template == alias.canonical)
                .map(|r| r.allow.clone());
            if let Some(allow) = allow {
                rows.push(Row::new(alias.path, allow));
            }
        }
        let mut by_length: Vec<Vec<Row>> = Vec::new();
        for row in rows {
            let n = row.segments.len();
            if by_length.len() <= n {
                by_length.resize_with(n + 1, Vec::new);
            }
            by_length[n].push(row);
        }
        Self(by_length)
    }

    /// The route `path` belongs to, if any. A literal segment beats a
    /// `{param}`, as in the router.
    fn route(&self, path: &str) -> Option<&Row> {
        // The path split once, on the stack: no route is longer.
        let mut words = [""; MAX_SEGMENTS];
        let mut n = 0;
        for word in segments(path) {
            *words.get_mut(n)? = word;
            n += 1;
        }
        self.0
            .get(n)?
            .iter()
            .filter(|row| row.matches(&words[..n]))
            .max_by_key(|row| row.literals)
    }

    /// The `Allow` value for `path`, if some route has that shape.
    fn allow(&self, path: &str) -> Option<&str> {
        self.route(path).map(|r| r.allow.as_str())
    }

    /// The template of `path`'s route, for logs and metric labels.
    fn template(&self, path: &str) -> &str {
        match self.route(path) {
            Some(r) => &r.template,
            None if path == "/" => "/",
            None if path.starts_with("/docs") => "/docs",
            None if path.trim_end_matches('/') == "/openapi.json" => "/openapi.json",
            None => "unmatched",
        }
    }
}

/// The method as a metric label or log field: one of HTTP's standard
/// methods, else `other`. A client may send any token as a method, and
/// each distinct label would be a series kept forever.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Any error that escaped an operation, as a DRF-shaped response.
fn error_response(err: poem::Error, method: &Method, path: &str, table: &AllowTable) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.to_response();
    }
    let status = err.status();
    let api = if err.is::<poem::error::NotFoundError>() {
        ApiError::NotFound
    } else if err.is::<poem::error::MethodNotAllowedError>() {
        match table.allow(path) {
            Some(allow) => ApiError::MethodNotAllowed {
                method: method.clone(),
                allow: allow.to_owned(),
            },
            None => ApiError::NotFound,
        }
    } else if err.is::<poem_openapi::error::ParseParamError>() {
        // A path parameter of the wrong shape names no resource.
        ApiError::NotFound
    } else if status.is_server_error() {
        tracing::error!(error = %err, "unhandled server error");
        ApiError::Internal
    } else {
        // A framework rejection we have no DRF twin for: keep its status.
        let body = serde_json::json!({ "detail": err.to_string() }).to_string();
        return Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
    };
    api.to_response()
}

/// DRF sends `application/json` without a charset; so do we.
fn plain_json_content_type(mut resp: Response) -> Response {
    if resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(b"application/json; charset=utf-8")
    }) {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    resp
}

/// The request id: the client's `X-Request-Id` when it is a sane token,
/// else a new one.
fn request_id(req: &poem::Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// The whole application: API routes, `/docs` (Swagger UI) and
/// `/openapi.json`, every path with and without its trailing slash.
pub fn app(app: App) -> impl Endpoint<Output = Response> {
    let request_timeout = app.settings().server.request_timeout;
    let max_header_bytes = app.settings().server.max_header_bytes;
    let methods = Arc::new(app.settings().auth.clone());
    let cors = Arc::new(cors::Cors::new(&app.settings().cors));
    let cookie_mode = cookies::CookieMode::new(app.settings()).map(Arc::new);
    let state = app.clone();
    let api = openapi();
    let derived = api.spec();
    let table = Arc::new(AllowTable::from_spec(&derived));
    // Swagger UI embeds the document it is given: the polished one.
    let shown = docs::polish(&derived);
    let ui = api.swagger_ui_html().replace(&derived, &shown);
    let spec = poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(shown.clone())
    });
    Route::new()
        .at(
            "/docs",
            poem::endpoint::make_sync(move |_| poem::web::Html(ui.clone())),
        )
        .at("/openapi.json", spec)
        // Every method, not only the documented ones: a proxy forwards the
        // original request's (OPTIONS for a CORS preflight, PROPFIND...).
        .at(forward::PATH, forward::any_method)
        .nest("/", api)
        .data(app)
        .data(Arc::clone(&cors))
        .around(move |ep, req| {
            let methods = Arc::clone(&methods);
            let table = Arc::clone(&table);
            let state = state.clone();
            let cors = Arc::clone(&cors);
            let cookie_mode = cookie_mode.clone();
            async move {
                let started = std::time::Instant::now();
                let method = req.method().clone();
                let path = req.uri().path().to_owned();
                let id = request_id(&req);
                let origin = req.headers().get(header::ORIGIN).cloned();
                // Every line logged while serving the request carries its id.
                let span = tracing::info_span!("request", request_id = %id);
                let header_bytes: usize = req
                    .headers()
                    .iter()
                    .map(|(k, v)| k.as_str().len() + v.len())
                    .sum();
                let outcome = if header_bytes > max_header_bytes {
                    Err(ApiError::HeadersTooLarge.into())
                } else if let Some(preflight) = (path.trim_end_matches('/') != forward::PATH)
                    .then(|| cors.preflight(&req))
                    .flatten()
                {
                    // Forward auth answers every method itself: a proxy asking
                    // about a preflight-shaped request gets a real decision.
                    Ok(preflight)
                } else if path == "/" {
                    // Ahead of the router, whose trailing-slash trimming
                    // leaves no path for the root.
                    Ok(ops::index(&req))
                } else {
                    let req = aliases::resolve(req);
                    // Boxed: the route's future is kilobytes, and each layer
                    // that wraps it (timeout, span, poem's own boxing) would
                    // move it; boxed here, they move a pointer.
                    let call = Box::pin(async {
                        if switched_off(req.uri().path(), &methods) {
                            return Err(ApiError::NotFound.into());
                        }
                        let Some(mode) = &cookie_mode else {
                            return ep.call(req).await.map(IntoResponse::into_response);
                        };
                        let canonical = req.uri().path().to_owned();
                        let csrf_present = cookies::cookie(&req, &mode.settings().csrf_cookie_name)
                            .map(str::to_owned);
                        let req = mode.before(req, &canonical, &cors).await?;
                        let resp = ep.call(req).await?.into_response();
                        Ok(mode.after(resp, &method, &canonical, csrf_present).await)
                    });
                    tokio::time::timeout(request_timeout, call)
                        .instrument(span)
                        .await
                        .unwrap_or_else(|_| Err(ApiError::Timeout.into()))
                };
                let mut resp = match outcome {
                    Ok(resp) => plain_json_content_type(resp.into_response()),
                    Err(err) => {
                        // The first request to meet an outage marks it, so the
                        // next ones answer 503 at once until the probe sees the
                        // database back.
                        if matches!(err.downcast_ref::<ApiError>(), Some(ApiError::Unavailable))
                            && state.database_health().mark_down()
                        {
                            tracing::warn!("database unreachable; answering 503 until it is back");
                        }
                        error_response(err, &method, &path, &table)
                    }
                };
                // One line and one sample per request: the route template,
                // never the raw path, query or headers (tokens live there).
                let route = table.template(&path);
                let status = resp.status();
                let elapsed = started.elapsed();
                let metrics = state.metrics();
                metrics
                    .requests
                    .with_label_values(&[route, method_label(&method), status.as_str()])
                    .inc();
                metrics
                    .latency
                    .with_label_values(&[route])
                    .observe(elapsed.as_secs_f64());
                tracing::info!(
                    target: "tessera::access",
                    method = method_label(&method),
                    route,
                    status = status.as_u16(),
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    request_id = %id,
                    "request"
                );
                if let Ok(v) = HeaderValue::from_str(&id) {
                    resp.headers_mut().insert("x-request-id", v);
                }
                cors.decorate(origin.as_ref(), &mut resp);
                Ok(resp)
            }
        })
        .map_to_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_table_matches_with_and_without_slash() {
        let t = AllowTable::from_spec(
            r#"{"paths":{"/api/token":{"post":{}},"/api/v1/auth/users/{id}":{"get":{},"delete":{}},"/api/v1/auth/users/me":{"get":{}}}}"#,
        );
        assert_eq!(t.allow("/api/token/"), Some("POST"));
        assert_eq!(t.allow("/api/token"), Some("POST"));
        assert_eq!(t.allow("/api/v1/auth/users/3/"), Some("GET, DELETE"));
        assert_eq!(t.allow("/api/v1/auth/users/me"), Some("GET"));
        assert_eq!(t.allow("/api/nope/"), None);
    }

    #[test]
    fn every_route_fits_the_lookup() {
        let table = AllowTable::from_spec(&openapi().spec());
        let longest = table.0.len() - 1;
        assert!(longest <= MAX_SEGMENTS, "a route of {longest} segments");
        let t = AllowTable::from_spec(
            r#"{"paths":{"/a/b/c/d/e/f/g/h":{"get":{}},"/a/b/c/d/e/f/g/h/i":{"get":{}}}}"#,
        );
        assert_eq!(t.template("/a/b/c/d/e/f/g/h/"), "/a/b/c/d/e/f/g/h");
        assert_eq!(t.template("/a/b/c/d/e/f/g/h/i"), "unmatched", "too long");
    }

    #[test]
    fn a_switched_off_method_takes_its_route_groups_only() {
        let only_token = AuthSettings {
            methods: vec![AuthMethod::Token],
        };
        assert!(switched_off("/api/token/", &only_token));
        assert!(switched_off("/api/token", &only_token));
        assert!(!switched_off("/api/tokens/", &only_token));
        assert!(!switched_off("/auth/token/login/", &only_token));
        assert!(!switched_off("/api/v1/auth/users/me/", &only_token));
    }
}
