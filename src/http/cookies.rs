//! Cookie mode, as dj-rest-auth wraps Simple JWT's views: login and
//! refresh answers put the tokens into HttpOnly cookies (and, by default,
//! leave them out of the JSON), refresh/ and blacklist/ take the refresh
//! cookie when the body names no token, logout clears the cookies. Every
//! unsafe request that a cookie authenticates passes Django's CSRF check:
//! a trusted Origin (or Referer), and the CSRF cookie's value repeated in
//! the CSRF header.

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Request, Response};
use serde_json::Value;

use super::cors::Cors;
use super::error::ApiError;
use crate::config::{CookieSettings, Settings};

/// What cookie mode needs, built once.
pub struct CookieMode {
    settings: CookieSettings,
    access_max_age: u64,
    refresh_max_age: u64,
}

/// The JWT routes cookie mode wraps (canonical paths, no trailing slash).
const OBTAIN: &str = "/api/token";
const REFRESH: &str = "/api/token/refresh";
const BLACKLIST: &str = "/api/token/blacklist";
const LOGOUT_ALL: &str = "/api/v1/auth/users/me/logout_all";

/// Django's CSRF_COOKIE_AGE: 52 weeks.
const CSRF_COOKIE_AGE: u64 = 52 * 7 * 24 * 3600;

/// The largest body read to look for a token: a frontend in cookie mode
/// sends `{}` or nothing.
const SMALL_BODY: u64 = 1024;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn csrf_failed(reason: String) -> ApiError {
    ApiError::Csrf(reason)
}

/// Whether `origin` (`scheme://host[:port]`) is the request's own host:
/// the `Host` it was sent to, or the one a proxy in front received
/// (`X-Forwarded-Host`, as forward auth is asked).
fn same_host(origin: &str, req: &Request) -> bool {
    let host = origin.split_once("://").map_or("", |(_, h)| h);
    [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .any(|name| {
            req.headers()
                .get(*name)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| h.eq_ignore_ascii_case(host))
        })
}

/// The origin part of a Referer URL.
fn referer_origin(referer: &str) -> Option<&str> {
    let (scheme, rest) = referer.split_once("://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&referer[..scheme.len() + 3 + end])
}

/// A method Django's CSRF check lets through (RFC 9110's safe methods).
pub fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Django's CSRF check for a request that a cookie authenticates, as the
/// request's `method` (a proxy's original one for forward auth).
pub fn check_csrf(
    req: &Request,
    method: &Method,
    settings: &CookieSettings,
    cors: &Cors,
) -> Result<(), ApiError> {
    if is_safe(method) {
        return Ok(());
    }
    check_origin(req, cors)?;
    let Some(expected) = cookie(req, &settings.csrf_cookie_name) else {
        return Err(csrf_failed("CSRF cookie not set.".into()));
    };
    let Some(sent) = req
        .headers()
        .get(settings.csrf_header_name.as_str())
        .map(HeaderValue::as_bytes)
    else {
        return Err(csrf_failed("CSRF token missing.".into()));
    };
    aws_lc_rs::constant_time::verify_slices_are_equal(sent, expected.as_bytes())
        .map_err(|_| csrf_failed("CSRF token incorrect.".into()))
}

/// Django's origin check: the request's `Origin` (or, without one, its
/// `Referer`'s origin) is this service's own or an allowed CORS origin.
/// Neither header: nothing to check (the token check decides).
pub fn check_origin(req: &Request, cors: &Cors) -> Result<(), ApiError> {
    let claimed = match req.headers().get(header::ORIGIN) {
        Some(o) => Some(o.to_str().unwrap_or_default().to_owned()),
        None => req
            .headers()
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(referer_origin)
            .map(str::to_owned),
    };
    match claimed {
        Some(origin) if !(same_host(&origin, req) || cors.allows(&origin)) => Err(csrf_failed(
            format!("Origin checking failed - {origin} does not match any trusted origins."),
        )),
        _ => Ok(()),
    }
}

impl CookieMode {
    /// `None` when cookie mode is off.
    pub fn new(settings: &Settings) -> Option<Self> {
        settings.cookie.enabled.then(|| Self {
            settings: settings.cookie.clone(),
            access_max_age: settings.jwt.access_token_lifetime.as_secs(),
            refresh_max_age: settings.jwt.refresh_token_lifetime.as_secs(),
        })
    }

    pub fn settings(&self) -> &CookieSettings {
        &self.settings
    }

    fn set_cookie(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: u64,
        http_only: bool,
    ) -> String {
        let s = &self.settings;
        let mut c = format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; SameSite={}",
            s.samesite.as_str()
        );
        if !s.domain.is_empty() {
            c.push_str(&format!("; Domain={}", s.domain));
        }
        if s.secure {
            c.push_str("; Secure");
        }
        if http_only {
            c.push_str("; HttpOnly");
        }
        c
    }

    /// The request as the JWT view should see it: for refresh/ and
    /// blacklist/ with no token in a small JSON (or empty) body, the
    /// refresh cookie's token, once the CSRF check passes.
    pub async fn before(
        &self,
        mut req: Request,
        path: &str,
        cors: &Cors,
    ) -> Result<Request, ApiError> {
        let path = path.trim_end_matches('/');
        if req.method() != Method::POST || !(path == OBTAIN || path == REFRESH || path == BLACKLIST)
        {
            return Ok(req);
        }
        // Answers to these set or clear cookies: a page of an untrusted
        // origin may not cause that (login CSRF), whatever the body holds.
        check_origin(&req, cors)?;
        if path == OBTAIN {
            return Ok(req);
        }
        let Some(token) = cookie(&req, &self.settings.refresh_name).map(str::to_owned) else {
            return Ok(req);
        };
        let json_or_none = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_none_or(|c| c.starts_with("application/json"));
        let small = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|l| l.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|l| l <= SMALL_BODY)
            || req.headers().get(header::CONTENT_LENGTH).is_none()
                && req.headers().get(header::TRANSFER_ENCODING).is_none();
        if !json_or_none || !small {
            return Ok(req);
        }
        // Bounded as every body is: no Content-Length (HTTP/2) must not
        // mean no limit.
        let bytes = req
            .take_body()
            .into_bytes_limit(super::body::MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge {
                limit: super::body::MAX_BODY_BYTES,
            })?;
        let names_token = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("refresh").cloned())
            .is_some();
        let body = if names_token
            || (!bytes.is_empty() && serde_json::from_slice::<Value>(&bytes).is_err())
        {
            // A token in the body wins; a malformed body gets its 400.
            bytes.to_vec()
        } else {
            check_csrf(&req, &Method::POST, &self.settings, cors)?;
            serde_json::to_vec(&serde_json::json!({ "refresh": token })).unwrap_or_default()
        };
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        req.headers_mut().remove(header::CONTENT_LENGTH);
        req.set_body(Body::from(body));
        Ok(req)
    }

    /// The answer as the browser gets it: tokens of a login or refresh
    /// moved into cookies, cookies cleared by a logout.
    pub async fn after(
        &self,
        mut resp: Response,
        method: &Method,
        path: &str,
        csrf_present: Option<String>,
    ) -> Response {
        let path = path.trim_end_matches('/');
        if *method != Method::POST {
            return resp;
        }
        let s = &self.settings;
        match (path, resp.status()) {
            (OBTAIN | REFRESH, StatusCode::OK) => {
                let Ok(bytes) = resp.take_body().into_bytes().await else {
                    return resp;
                };
                let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&bytes) else {
                    resp.set_body(bytes);
                    return resp;
                };
                let mut cookies = Vec::new();
                if let Some(Value::String(refresh)) = body.get("refresh") {
                    cookies.push(self.set_cookie(
                        &s.refresh_name,
                        refresh,
                        &s.refresh_path,
                        self.refresh_max_age,
                        true,
                    ));
                    if s.omit_from_body {
                        body.remove("refresh");
                    }
                }
                if !s.access_name.is_empty()
                    && let Some(Value::String(access)) = body.get("access")
                {
                    cookies.push(self.set_cookie(
                        &s.access_name,
                        access,
                        "/",
                        self.access_max_age,
                        true,
                    ));
                    if s.omit_from_body {
                        body.remove("access");
                    }
                }
                // A new CSRF token at each login, as Django's login()
                // rotates it; refresh renews the one the browser has.
                let csrf = match (path, csrf_present) {
                    (REFRESH, Some(current)) => current,
                    _ => new_csrf_token(),
                };
                cookies.push(self.set_cookie(
                    &s.csrf_cookie_name,
                    &csrf,
                    "/",
                    CSRF_COOKIE_AGE,
                    false,
                ));
                for c in cookies {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        resp.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                resp.set_body(serde_json::to_vec(&body).unwrap_or_default());
                resp
            }
            (BLACKLIST, StatusCode::OK) | (LOGOUT_ALL, StatusCode::NO_CONTENT) => {
                let mut gone = vec![self.set_cookie(&s.refresh_name, "", &s.refresh_path, 0, true)];
                if !s.access_name.is_empty() {
                    gone.push(self.set_cookie(&s.access_name, "", "/", 0, true));
                }
                for c in gone {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        resp.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                resp
            }
            _ => resp,
        }
    }
}

/// A fresh CSRF token: 32 random letters and digits, as Django's secret.
fn new_csrf_token() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut bytes = [0u8; 32];
    // Without randomness there is no token to give; an empty cookie then
    // fails every check rather than a guessable one passing.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    bytes
        .iter()
        .map(|b| CHARS[usize::from(*b) % CHARS.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let req = Request::builder()
            .header(header::COOKIE, "a=1; refresh_token=abc.def; csrftoken=xyz")
            .finish();
        assert_eq!(cookie(&req, "refresh_token"), Some("abc.def"));
        assert_eq!(cookie(&req, "csrftoken"), Some("xyz"));
        assert_eq!(cookie(&req, "missing"), None);
    }

    #[test]
    fn a_referer_gives_its_origin() {
        assert_eq!(
            referer_origin("https://app.example.com:8443/page?x=1"),
            Some("https://app.example.com:8443")
        );
        assert_eq!(referer_origin("nonsense"), None);
    }
}
