//! The `[cors]` and `[cookie]` sections: what single-page apps on another
//! origin need (django-cors-headers' settings; dj-rest-auth's JWT cookies
//! with Django's CSRF habit).

use std::time::Duration;

use serde::Deserialize;

use super::values::{self, Named};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`https://app.example.com`, `http://localhost:3000`).
    pub allowed_origins: Vec<String>,
    /// Origins matching any of these regular expressions.
    pub allowed_origin_regexes: Vec<String>,
    pub allow_credentials: bool,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    #[serde(deserialize_with = "values::duration")]
    pub preflight_max_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lax => "Lax",
            Self::Strict => "Strict",
            Self::None => "None",
        }
    }
}

impl Named for SameSite {
    const ALL: &'static [Self] = &[Self::Lax, Self::Strict, Self::None];
    const EXAMPLE: &'static str =
        "[cookie] samesite = \"Lax\", or TESSERA__COOKIE__SAMESITE=Strict";
    fn name(self) -> &'static str {
        self.as_str()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieSettings {
    /// Login and refresh set the refresh token (and the access token, with
    /// `access_name`) as HttpOnly cookies.
    pub enabled: bool,
    pub refresh_name: String,
    /// Empty: the access token is not put in a cookie.
    pub access_name: String,
    /// The refresh cookie's path: it must cover the refresh and logout
    /// routes.
    pub refresh_path: String,
    /// Empty: the host of the request (no Domain attribute).
    pub domain: String,
    pub samesite: SameSite,
    /// `false` only for a deployment on localhost.
    pub secure: bool,
    /// The JSON answer leaves out what went into cookies (dj-rest-auth's
    /// `JWT_AUTH_HTTPONLY`).
    pub omit_from_body: bool,
    pub csrf_cookie_name: String,
    pub csrf_header_name: String,
}
