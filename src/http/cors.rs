//! CORS as django-cors-headers does it: a preflight is answered 200 with
//! an empty body before routing (no authentication, no throttling), and
//! any answer to an allowed origin names that origin (never `*`). Every
//! answer varies on `Origin`.

use poem::http::{HeaderValue, Method, header};
use poem::{Request, Response};
use regex::Regex;

use crate::config::CorsSettings;

pub struct Cors {
    origins: Vec<String>,
    patterns: Vec<Regex>,
    credentials: bool,
    methods: HeaderValue,
    headers: HeaderValue,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

fn joined(items: &[String]) -> HeaderValue {
    HeaderValue::from_str(&items.join(", ")).unwrap_or(HeaderValue::from_static(""))
}

impl Cors {
    /// From settings already checked (patterns compile).
    pub fn new(s: &CorsSettings) -> Self {
        Self {
            origins: s
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            patterns: s
                .allowed_origin_regexes
                .iter()
                // Python's re.match: anchored at the start.
                .filter_map(|r| Regex::new(&format!("^(?:{r})")).ok())
                .collect(),
            credentials: s.allow_credentials,
            methods: joined(&s.allowed_methods),
            headers: joined(&s.allowed_headers),
            expose: (!s.expose_headers.is_empty()).then(|| joined(&s.expose_headers)),
            max_age: (!s.preflight_max_age.is_zero())
                .then(|| HeaderValue::from(s.preflight_max_age.as_secs())),
        }
    }

    /// Whether `origin` may read answers (and, with credentials, send
    /// cookies).
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin) || self.patterns.iter().any(|p| p.is_match(origin))
    }

    fn allowed<'a>(&self, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
        origin.filter(|o| o.to_str().is_ok_and(|o| self.allows(o)))
    }

    /// The answer to a preflight (`OPTIONS` with
    /// `Access-Control-Request-Method`), whatever the path.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        let is_preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if !is_preflight {
            return None;
        }
        let mut resp = Response::builder()
            .status(poem::http::StatusCode::OK)
            .finish();
        if self.allowed(req.headers().get(header::ORIGIN)).is_some() {
            let h = resp.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, self.headers.clone());
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, self.methods.clone());
            if let Some(age) = &self.max_age {
                h.insert(header::ACCESS_CONTROL_MAX_AGE, age.clone());
            }
        }
        Some(resp)
    }

    /// Adds the CORS headers for the request's `origin`, if allowed, and
    /// `Vary: Origin` in any case.
    pub fn decorate(&self, origin: Option<&HeaderValue>, resp: &mut Response) {
        let origin = self.allowed(origin).cloned();
        let h = resp.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("origin"));
        if let Some(origin) = origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            if self.credentials {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if let Some(expose) = &self.expose {
                h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> CorsSettings {
        CorsSettings {
            allowed_origins: vec![],
            allowed_origin_regexes: vec![],
            allow_credentials: false,
            allowed_methods: vec![],
            allowed_headers: vec![],
            expose_headers: vec![],
            preflight_max_age: Duration::ZERO,
        }
    }

    fn cors() -> Cors {
        Cors::new(&CorsSettings {
            allowed_origins: vec!["http://localhost:3000".into()],
            allowed_origin_regexes: vec![r"^https://\w+\.example\.com$".into()],
            allow_credentials: true,
            allowed_methods: vec!["GET".into(), "POST".into()],
            allowed_headers: vec!["content-type".into()],
            expose_headers: vec![],
            preflight_max_age: Duration::from_secs(86400),
        })
    }

    #[test]
    fn origins_match_exactly_or_by_pattern() {
        let c = cors();
        assert!(c.allows("http://localhost:3000"));
        assert!(c.allows("https://app.example.com"));
        assert!(!c.allows("http://localhost:3001"));
        assert!(!c.allows("https://app.example.com.evil.org"));
        assert!(!c.allows("null"));
        let unanchored = Cors::new(&CorsSettings {
            allowed_origin_regexes: vec![r"example\.com".into()],
            ..settings()
        });
        assert!(
            !unanchored.allows("https://notexample.com"),
            "anchored at the start, as re.match"
        );
    }

    #[test]
    fn a_preflight_is_answered_with_headers_only_for_allowed_origins() {
        let c = cors();
        let pre = |origin: &str| {
            Request::builder()
                .method(Method::OPTIONS)
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .finish()
        };
        let ok = c.preflight(&pre("http://localhost:3000")).unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(
            ok.headers()[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET, POST"
        );
        assert_eq!(ok.headers()[header::ACCESS_CONTROL_MAX_AGE], "86400");
        let refused = c.preflight(&pre("http://evil.test")).unwrap();
        assert!(
            !refused
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_METHODS)
        );
        let plain = Request::builder().method(Method::OPTIONS).finish();
        assert!(c.preflight(&plain).is_none());
    }

    #[test]
    fn an_answer_names_the_allowed_origin_never_a_wildcard() {
        let c = cors();
        let mut resp = Response::default();
        c.decorate(
            Some(&HeaderValue::from_static("http://localhost:3000")),
            &mut resp,
        );
        assert_eq!(
            resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3000"
        );
        assert_eq!(
            resp.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
            "true"
        );
        assert_eq!(resp.headers()[header::VARY], "origin");
        let mut resp = Response::default();
        c.decorate(
            Some(&HeaderValue::from_static("http://evil.test")),
            &mut resp,
        );
        assert!(
            !resp
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert_eq!(resp.headers()[header::VARY], "origin");
    }
}
