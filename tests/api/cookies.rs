//! Browser apps over HTTP: CORS as django-cors-headers, cookie mode as
//! dj-rest-auth, Django's CSRF check. (The same in a real browser is in
//! browser.rs.)

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::*;

const FRONTEND: &str = "http://localhost:3000";

/// An app in cookie mode that lets `FRONTEND` in with credentials.
async fn cookie_app() -> TestApp {
    spawn_app_with(&[
        ("TESSERA__CORS__ALLOWED_ORIGINS", FRONTEND),
        ("TESSERA__CORS__ALLOW_CREDENTIALS", "true"),
        ("TESSERA__COOKIE__ENABLED", "true"),
        ("TESSERA__COOKIE__ACCESS_NAME", "access_token"),
        ("TESSERA__AUTH__METHODS", "jwt,token,cookie"),
    ])
    .await
}

/// The cookies a browser keeps: name → value, from Set-Cookie headers.
#[derive(Default, Debug)]
struct Jar(HashMap<String, String>);

impl Jar {
    /// Takes an answer's Set-Cookie headers; returns them whole.
    fn take(&mut self, a: &Answer) -> Vec<String> {
        let set: Vec<String> = a
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for c in &set {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.0.remove(k);
            } else {
                self.0.insert(k.to_owned(), v.to_owned());
            }
        }
        set
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&self, name: &str) -> &str {
        &self.0[name]
    }
}

/// A request as the frontend's fetch sends it: its cookies, its Origin
/// and any extra headers.
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    jar: &Jar,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app
        .client
        .request(m, app.url(path))
        .header("origin", FRONTEND)
        .header("cookie", jar.header());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Answer::from(req.send().await.unwrap()).await
}

async fn login(app: &TestApp, jar: &mut Jar, username: &str) -> Answer {
    let a = send(
        app,
        "POST",
        "/api/token/",
        jar,
        &[],
        Some(json!({"username": username, "password": PASSWORD})),
    )
    .await;
    jar.take(&a);
    a
}

#[tokio::test]
async fn by_default_no_origin_is_let_in() {
    let app = spawn_app().await;
    let a = app
        .client
        .get(app.url("/healthz"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert!(a.headers().get("access-control-allow-origin").is_none());
    assert_eq!(a.headers()["vary"], "origin");
}

#[tokio::test]
async fn preflights_are_answered_before_authentication_and_throttling() {
    let app = spawn_app_with(&[
        ("TESSERA__CORS__ALLOWED_ORIGINS", FRONTEND),
        (
            "TESSERA__CORS__ALLOWED_ORIGIN_REGEXES",
            r"^https://[a-z]+\.example\.com$",
        ),
        ("TESSERA__CORS__ALLOW_CREDENTIALS", "true"),
        ("TESSERA__CORS__EXPOSE_HEADERS", "x-request-id"),
        ("TESSERA__THROTTLE__LOGIN__IP", "1/min"),
    ])
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/users/me/"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    for origin in [FRONTEND, "https://app.example.com"] {
        let a = preflight(origin).await.unwrap();
        assert_eq!(a.status(), 200);
        let h = a.headers();
        assert_eq!(h["access-control-allow-origin"], origin);
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("GET")
        );
        assert!(
            h["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("authorization")
        );
        assert_eq!(h["access-control-max-age"], "86400");
    }
    let foreign = preflight("http://evil.test").await.unwrap();
    assert_eq!(foreign.status(), 200);
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // Many preflights of the throttled login: none throttled.
    for _ in 0..5 {
        let a = app
            .client
            .request(reqwest::Method::OPTIONS, app.url("/api/token/"))
            .header("origin", FRONTEND)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), 200);
    }
    // An actual answer to the frontend names it and exposes what it may read.
    let a = app
        .client
        .get(app.url("/api/v1/auth/users/me/"))
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 401);
    assert_eq!(a.headers()["access-control-allow-origin"], FRONTEND);
    assert_eq!(a.headers()["access-control-expose-headers"], "x-request-id");
    assert_eq!(a.headers()["vary"], "origin");
}

#[tokio::test]
async fn login_puts_the_tokens_in_httponly_cookies() {
    let app = cookie_app().await;
    app.register("alice").await;
    let mut jar = Jar::default();
    let a = send(
        &app,
        "POST",
        "/api/v1/auth/jwt/create/",
        &jar,
        &[],
        Some(json!({"username": "alice", "password": PASSWORD})),
    )
    .await;
    assert_eq!(a.status, 200);
    // Both tokens went into cookies, so the answer holds neither.
    assert_eq!(a.json, json!({}));
    let set = jar.take(&a);
    let find = |name: &str| {
        set.iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap()
            .clone()
    };
    let refresh = find("refresh_token");
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/api/",
        "Max-Age=86400",
    ] {
        assert!(refresh.contains(attr), "{refresh} lacks {attr}");
    }
    let access = find("access_token");
    assert!(
        access.contains("HttpOnly") && access.contains("Path=/;") && access.contains("Max-Age=300")
    );
    let csrf = find("csrftoken");
    assert!(!csrf.contains("HttpOnly"), "JavaScript must read {csrf}");
    assert_eq!(jar.get("csrftoken").len(), 32);
    assert_eq!(claims(jar.get("refresh_token"))["token_type"], "refresh");
    // A login from a page Tessera does not trust would set cookies in the
    // victim's browser (login CSRF): refused.
    let a = app
        .client
        .post(app.url("/api/token/"))
        .header("origin", "http://evil.test")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 403);
    assert!(a.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn the_refresh_cookie_refreshes_and_logs_out_with_the_csrf_header() {
    let app = cookie_app().await;
    app.register("bob").await;
    let mut jar = Jar::default();
    login(&app, &mut jar, "bob").await;
    let csrf = jar.get("csrftoken").to_owned();
    let first_refresh = jar.get("refresh_token").to_owned();
    for (headers, reason) in [
        (vec![], "CSRF token missing."),
        (vec![("x-csrftoken", "wrong")], "CSRF token incorrect."),
    ] {
        let a = send(
            &app,
            "POST",
            "/api/token/refresh/",
            &jar,
            &headers,
            Some(json!({})),
        )
        .await;
        assert_eq!(
            (a.status.as_u16(), a.json),
            (403, json!({"detail": format!("CSRF Failed: {reason}")}))
        );
    }
    // From a page of another origin, even with the token: refused.
    let a = app
        .client
        .post(app.url("/api/token/refresh/"))
        .header("origin", "http://evil.test")
        .header("cookie", jar.header())
        .header("x-csrftoken", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 403);
    let body: Value = a.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "CSRF Failed: Origin checking failed - http://evil.test does not match any trusted origins."
    );
    // With the header, an empty body: the cookie's token is used.
    let a = send(
        &app,
        "POST",
        "/api/token/refresh/",
        &jar,
        &[("x-csrftoken", &csrf)],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json, json!({}));
    jar.take(&a);
    // A token in the body wins over the cookie, and needs no CSRF header;
    // the answer goes into cookies all the same.
    let a = app.refresh(&first_refresh).await;
    assert_eq!((a.status.as_u16(), &a.json), (200, &json!({})));
    assert!(a.header("set-cookie").is_some());
    // Logout with the cookie clears both token cookies.
    let a = send(
        &app,
        "POST",
        "/api/token/blacklist/",
        &jar,
        &[("x-csrftoken", &csrf)],
        Some(json!({})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let cleared = jar.take(&a);
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("refresh_token=;") && c.contains("Max-Age=0"))
    );
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("access_token=;") && c.contains("Max-Age=0"))
    );
    // Rotation is off: the cookie held the login's token, now logged out.
    let a = app.refresh(&first_refresh).await;
    assert_eq!(a.json["detail"], "Token is blacklisted");
    // With no cookie and no token: DRF's required field.
    let a = send(
        &app,
        "POST",
        "/api/token/refresh/",
        &jar,
        &[("x-csrftoken", &csrf)],
        Some(json!({})),
    )
    .await;
    assert_eq!(a.json, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn the_access_cookie_authenticates_with_csrf_on_unsafe_methods() {
    let app = cookie_app().await;
    app.register("carol").await;
    let mut jar = Jar::default();
    login(&app, &mut jar, "carol").await;
    let csrf = jar.get("csrftoken").to_owned();
    let a = send(&app, "GET", "/api/v1/auth/users/me/", &jar, &[], None).await;
    assert_eq!(
        (a.status.as_u16(), a.json["username"].as_str()),
        (200, Some("carol"))
    );
    let change = Some(json!({"email": "new@example.com"}));
    let a = send(
        &app,
        "PATCH",
        "/api/v1/auth/users/me/",
        &jar,
        &[],
        change.clone(),
    )
    .await;
    assert_eq!(
        a.json,
        json!({"detail": "CSRF Failed: CSRF token missing."})
    );
    let a = send(
        &app,
        "PATCH",
        "/api/v1/auth/users/me/",
        &jar,
        &[("x-csrftoken", &csrf)],
        change,
    )
    .await;
    assert_eq!(a.json["email"], "new@example.com");
    // Forward auth takes it too, checked as the proxy's original method.
    let a = send(&app, "GET", "/api/v1/auth/forward/", &jar, &[], None).await;
    assert_eq!(
        (a.status.as_u16(), a.header("x-auth-method")),
        (200, Some("cookie"))
    );
    let a = send(
        &app,
        "GET",
        "/api/v1/auth/forward/",
        &jar,
        &[("x-forwarded-method", "POST")],
        None,
    )
    .await;
    assert_eq!(a.status, 401);
    // A Bearer header needs no CSRF token, as in DRF.
    let access = jar.get("access_token").to_owned();
    let a = app
        .client
        .patch(app.url("/api/v1/auth/users/me/"))
        .header("authorization", bearer(&access))
        .json(&json!({"email": "again@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    // logout_all with the cookie ends the families and clears the cookies.
    let a = send(
        &app,
        "POST",
        "/api/v1/auth/users/me/logout_all/",
        &jar,
        &[("x-csrftoken", &csrf)],
        None,
    )
    .await;
    assert_eq!(a.status, 204);
    assert!(jar.take(&a).iter().all(|c| c.contains("Max-Age=0")));
}

#[tokio::test]
async fn without_cookie_in_auth_methods_the_access_cookie_is_ignored() {
    let app = spawn_app_with(&[
        ("TESSERA__CORS__ALLOWED_ORIGINS", FRONTEND),
        ("TESSERA__COOKIE__ENABLED", "true"),
        ("TESSERA__COOKIE__OMIT_FROM_BODY", "false"),
    ])
    .await;
    app.register("dave").await;
    let mut jar = Jar::default();
    let a = login(&app, &mut jar, "dave").await;
    // Kept in the body as configured; only the refresh token has a cookie.
    assert!(a.json["access"].is_string() && a.json["refresh"].is_string());
    assert!(!jar.0.contains_key("access_token"));
    jar.0.insert(
        "access_token".into(),
        a.json["access"].as_str().unwrap().into(),
    );
    let me = send(&app, "GET", "/api/v1/auth/users/me/", &jar, &[], None).await;
    assert_eq!(me.status, 401);
}

#[tokio::test]
async fn cookie_settings_that_cannot_work_are_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for (env, key) in [
        (
            vec![("TESSERA__AUTH__METHODS", "jwt,cookie")],
            "auth.methods",
        ),
        (
            vec![
                ("TESSERA__COOKIE__ENABLED", "true"),
                ("TESSERA__COOKIE__SECURE", "false"),
                ("TESSERA__SERVER__HOST", "0.0.0.0"),
            ],
            "cookie.secure",
        ),
        (
            vec![("TESSERA__CORS__ALLOWED_ORIGINS", "*")],
            "cors.allowed_origins",
        ),
        (
            vec![("TESSERA__CORS__ALLOWED_ORIGIN_REGEXES", "(")],
            "cors.allowed_origin_regexes",
        ),
    ] {
        let out = tessera(dir.path(), &env).arg("openapi").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(key), "{err}");
    }
}

#[tokio::test]
async fn the_console_mail_backend_is_refused_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let mut cmd = tessera(
        dir.path(),
        &[
            ("TESSERA__SERVER__HOST", "0.0.0.0"),
            ("TESSERA__SERVER__PORT", port.as_str()),
            ("DATABASE_URL", "sqlite::memory:"),
        ],
    );
    cmd.arg("serve");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || cmd.output().unwrap()),
    )
    .await
    .expect("refused at once, not served")
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("email.backend"), "{err}");
}

#[tokio::test]
async fn forward_auth_decides_preflight_shaped_requests_itself() {
    let app = spawn_app_with(&[("TESSERA__CORS__ALLOWED_ORIGINS", FRONTEND)]).await;
    let a = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/forward/"))
        .header("origin", FRONTEND)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 401, "no credentials: not let through");
}
