use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let app = spawn_app().await;
    for path in ["/api/v1/nope/", "/nope", "/api/token/extra/"] {
        let a = app.get(path, None).await;
        assert_eq!(a.status, 404, "{path}");
        assert_eq!(a.json, json!({"detail": "Not found."}));
        assert_eq!(a.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = spawn_app().await;
    for (method, path, allow) in [
        ("GET", "/api/token/", "POST"),
        ("GET", "/api/v1/auth/jwt/create", "POST"),
        ("DELETE", "/api/token/refresh/", "POST"),
        ("POST", "/api/v1/auth/users/me/", "GET, PUT, PATCH, DELETE"),
        ("POST", "/api/v1/auth/users/42/", "GET, PUT, PATCH, DELETE"),
        ("GET", "/api/v1/auth/users/set_password/", "POST"),
        ("GET", "/auth/token/login", "POST"),
        ("PUT", "/api/token/blacklist", "POST"),
    ] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let a = Answer::from(app.client.request(m, app.url(path)).send().await.unwrap()).await;
        assert_eq!(a.status, 405, "{method} {path}");
        assert_eq!(
            a.json,
            json!({"detail": format!("Method \"{method}\" not allowed.")})
        );
        assert_eq!(a.header("allow"), Some(allow), "{method} {path}");
    }
}

#[tokio::test]
async fn bodies_that_cannot_be_read() {
    let app = spawn_app().await;
    let a = app
        .post_raw("/api/token/", Some("text/plain"), "username=alice")
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (
            415,
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        )
    );
    let a = app.post_raw("/api/token/", None, "username=alice").await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (
            415,
            json!({"detail": "Unsupported media type \"\" in request."})
        )
    );
    let a = app
        .post_raw("/api/token/", Some("application/json"), r#"{"username":"#)
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        a.text
    );
    let a = app
        .post_raw("/api/v1/auth/users/", Some("application/json"), "[1,2]")
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (
            400,
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        )
    );
    let a = app
        .post_raw(
            "/api/token/verify/",
            Some("application/json"),
            r#""a string""#,
        )
        .await;
    assert_eq!(
        a.json,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]})
    );
    let a = app
        .post_raw("/api/token/", Some("multipart/form-data"), "username=alice")
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("Multipart form parse error - "),
        "{}",
        a.text
    );
    // An empty body is an empty form, as DRF reads it.
    let a = app.post_raw("/api/token/verify/", None, "").await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"token": ["This field is required."]}))
    );
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_without_a_write() {
    let app = spawn_app().await;
    let huge = "x".repeat(70 * 1024);
    let a = app
        .post_json(
            "/api/v1/auth/users/",
            json!({"username": "big", "password": PASSWORD, "pad": huge}),
        )
        .await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert!(a.json["detail"].is_string());
    // Also when the size is not declared up front (chunked).
    let stream = futures::stream::iter((0..70).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 1024])));
    let a = Answer::from(
        app.client
            .post(app.url("/api/token/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(
        app.post_form(
            "/api/token/",
            &[("username", "big"), ("password", PASSWORD)]
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn every_401_carries_the_bearer_challenge() {
    let app = spawn_app().await;
    let expired = {
        let now = chrono::Utc::now().timestamp();
        sign_hs256(
            TEST_KEY,
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &json!({"token_type": "access", "exp": now - 1, "iat": now - 301, "jti": "0123456789abcdef0123456789abcdef", "user_id": "1"}),
        )
    };
    // Each kind of 401: bad credentials, no credentials, a bad token in a
    // body, a bad Bearer token, a bad opaque key, an expired token, and a
    // route that takes only opaque keys.
    let answers = [
        app.post_form("/api/token/", &[("username", "x"), ("password", "y")])
            .await,
        app.get("/api/v1/auth/users/me/", None).await,
        app.post_form("/api/token/refresh/", &[("refresh", "x")])
            .await,
        app.post_form("/api/token/verify/", &[("token", "x")]).await,
        app.post_form("/api/token/blacklist/", &[("refresh", "x")])
            .await,
        app.get("/api/v1/auth/users/me/", Some("Bearer x")).await,
        app.get("/api/v1/auth/users/me/", Some(&bearer(&expired)))
            .await,
        app.get(
            "/api/v1/auth/users/me/",
            Some("Token 0000000000000000000000000000000000000000"),
        )
        .await,
        app.call("POST", "/auth/token/logout/", Some("Bearer x"), None)
            .await,
    ];
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.status, 401, "{i}: {}", a.text);
        assert_eq!(
            a.header("www-authenticate"),
            Some(r#"Bearer realm="api""#),
            "{i}"
        );
    }
}

#[tokio::test]
async fn health_endpoints() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/readyz/"] {
        let a = app.get(path, None).await;
        assert_eq!(
            (a.status.as_u16(), a.json.clone()),
            (200, json!({"status": "ok"})),
            "{path}"
        );
    }
}
