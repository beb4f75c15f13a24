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

/// Points a request for an alias at its canonical path, query kept.
pub fn resolve(mut req: Request) -> Request {
    if let Some(alias) = find(req.uri().path()) {
        let target = match req.uri().query() {
            Some(q) => format!("{}?{q}", alias.canonical),
            None => alias.canonical.to_owned(),
        };
        if let Ok(uri) = target.parse::<Uri>() {
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
}
