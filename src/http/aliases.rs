//! Djoser's own paths for views that Simple JWT and DRF's authtoken serve
//! elsewhere. One table: the router serves each alias as its canonical
//! path, the OpenAPI document lists it as an operation of its own, and logs
//! and metrics name the path the client used.

use poem::Request;
use poem::http::Uri;

/// A path served as another.
pub struct Alias {
    pub path: &'static str,
    pub canonical: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
}

pub const ALIASES: &[Alias] = &[
    Alias {
        path: "/api/v1/auth/jwt/create",
        canonical: "/api/token",
        operation_id: "jwt_create",
        summary: "Obtain a token pair (Djoser path)",
        description: "The same as `POST /api/token/`, at the path Djoser's `jwt/create/` uses.",
    },
    Alias {
        path: "/api/v1/auth/jwt/refresh",
        canonical: "/api/token/refresh",
        operation_id: "jwt_refresh",
        summary: "Refresh an access token (Djoser path)",
        description: "The same as `POST /api/token/refresh/`, at Djoser's `jwt/refresh/`.",
    },
    Alias {
        path: "/api/v1/auth/jwt/verify",
        canonical: "/api/token/verify",
        operation_id: "jwt_verify",
        summary: "Verify a token (Djoser path)",
        description: "The same as `POST /api/token/verify/`, at Djoser's `jwt/verify/`.",
    },
    Alias {
        path: "/api/v1/auth/token/login",
        canonical: "/auth/token/login",
        operation_id: "api_token_login",
        summary: "Log in for an opaque key (API path)",
        description: "The same as `POST /auth/token/login/`.",
    },
    Alias {
        path: "/api/v1/auth/token/logout",
        canonical: "/auth/token/logout",
        operation_id: "api_token_logout",
        summary: "Log out (API path)",
        description: "The same as `POST /auth/token/logout/`.",
    },
    Alias {
        path: "/api/v1/auth/token/logoutall",
        canonical: "/auth/token/logoutall",
        operation_id: "api_token_logout_all",
        summary: "Log out everywhere (API path)",
        description: "The same as `POST /auth/token/logoutall/`.",
    },
];

/// The alias `path` names (with or without its trailing slash), if any.
pub fn find(path: &str) -> Option<&'static Alias> {
    let path = path.strip_suffix('/').unwrap_or(path);
    ALIASES.iter().find(|a| a.path == path)
}

/// `path` with repeated slashes merged and trailing ones trimmed (`/` stays
/// `/`), if that changes it: every route is served with and without its
/// trailing slash. `None` costs no allocation, the common case.
fn trimmed(path: &str) -> Option<String> {
    let end = path.trim_end_matches('/');
    if end.len() == path.len() && !path.contains("//") {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    for c in end.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Points a request at the path its route is served under: slashes
/// normalised (see [`trimmed`]), an alias resolved to its canonical path;
/// the query kept.
pub fn resolve(mut req: Request) -> Request {
    let path = req.uri().path();
    let trimmed = trimmed(path);
    let path = trimmed.as_deref().unwrap_or(path);
    let target = match find(path) {
        Some(alias) => alias.canonical,
        None if trimmed.is_some() => path,
        None => return req,
    };
    let target = match req.uri().query() {
        Some(q) => format!("{target}?{q}"),
        None => target.to_owned(),
    };
    // Scheme and authority (a request in absolute form) stay as sent.
    let mut parts = req.uri().clone().into_parts();
    if let Ok(path_and_query) = target.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_match_with_and_without_the_slash_only() {
        assert_eq!(
            find("/api/v1/auth/jwt/create/").unwrap().canonical,
            "/api/token"
        );
        assert_eq!(
            find("/api/v1/auth/jwt/create").unwrap().canonical,
            "/api/token"
        );
        assert!(find("/api/v1/auth/jwt/create/x").is_none());
        assert!(find("/api/token/").is_none());
    }

    #[test]
    fn a_resolved_request_keeps_its_query() {
        let req = Request::builder()
            .uri("/api/v1/auth/token/login/?next=%2F".parse::<Uri>().unwrap())
            .finish();
        assert_eq!(resolve(req).uri().to_string(), "/auth/token/login?next=%2F");
    }

    #[test]
    fn slashes_are_normalised_as_the_router_expects() {
        let path = |p: &str| {
            let req = Request::builder().uri(p.parse::<Uri>().unwrap()).finish();
            resolve(req).uri().to_string()
        };
        assert_eq!(path("/healthz"), "/healthz");
        assert_eq!(path("/healthz/"), "/healthz");
        assert_eq!(path("/healthz///?a=1"), "/healthz?a=1");
        assert_eq!(path("/api//token/refresh/"), "/api/token/refresh");
        assert_eq!(path("/"), "/");
        assert_eq!(path("//"), "/");
        assert_eq!(path("/api/v1/auth//jwt/create//"), "/api/token");
        assert_eq!(
            path("http://auth.example.com/healthz/?a=1"),
            "http://auth.example.com/healthz?a=1"
        );
    }
}
