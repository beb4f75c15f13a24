//! Metrics, the request log, and what must never reach either.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn metrics_count_what_happens() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
        ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", "true"),
    ])
    .await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    app.post_form(
        "/api/token/",
        &[("username", "alice"), ("password", "wrong")],
    )
    .await;
    app.token_login("alice", PASSWORD).await;
    assert_eq!(app.refresh(&refresh).await.status, 200);
    assert_eq!(app.refresh(&refresh).await.status, 401);
    app.me(&access).await;
    app.me("not.a.jwt").await;
    let a = app.get("/metrics", None).await;
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").unwrap().starts_with("text/plain"));
    let m = &a.text;
    assert_eq!(
        metric(m, r#"tessera_logins_total{kind="jwt",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        metric(m, r#"tessera_logins_total{kind="jwt",outcome="failed"}"#),
        1.0
    );
    assert_eq!(
        metric(m, r#"tessera_logins_total{kind="token",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        metric(m, r#"tessera_tokens_issued_total{type="opaque"}"#),
        1.0
    );
    assert_eq!(
        metric(m, r#"tessera_tokens_issued_total{type="access"}"#),
        2.0
    );
    assert_eq!(
        metric(m, r#"tessera_tokens_issued_total{type="refresh"}"#),
        2.0
    );
    assert_eq!(metric(m, "tessera_tokens_refreshed_total"), 1.0);
    assert_eq!(metric(m, "tessera_tokens_blacklisted_total"), 1.0);
    assert_eq!(
        metric(
            m,
            r#"tessera_token_verification_failures_total{reason="blacklisted"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"tessera_token_verification_failures_total{reason="invalid"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"tessera_http_requests_total{method="POST",route="/api/token",status="401"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            m,
            r#"tessera_http_requests_total{method="GET",route="/api/v1/auth/users/me",status="200"}"#
        ),
        1.0
    );
    assert!(
        m.contains(r#"tessera_http_request_duration_seconds_bucket{route="/api/token/refresh""#)
    );
    assert_eq!(metric(m, "tessera_password_hash_queue_depth"), 0.0);
}

#[tokio::test]
async fn request_ids_are_kept_or_made() {
    let app = spawn_app().await;
    let a = Answer::from(
        app.client
            .get(app.url("/healthz"))
            .header("x-request-id", "trace-42")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.header("x-request-id"), Some("trace-42"));
    let a = Answer::from(
        app.client
            .get(app.url("/healthz"))
            .header("x-request-id", "bad id\twith spaces")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let made = a.header("x-request-id").unwrap();
    assert_eq!(made.len(), 32, "an unusable id is replaced: {made}");
    let b = app.get("/healthz", None).await;
    assert_ne!(b.header("x-request-id"), Some(made));
}

/// A whole session against the real binary, logging JSON at debug level:
/// no password, token, key or hash may appear in the log or the metrics.
/// Every step's status is checked, so none fails early and skips the code
/// that might log; the security events (reuse, throttling) fire too.
#[tokio::test]
async fn secrets_never_reach_the_log_or_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let signing_key = "log-hygiene-signing-key-0123456789abcdef-0123456789";
    let server = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", signing_key),
            ("TESSERA__LOG__FORMAT", "json"),
            ("TESSERA__LOG__LEVEL", "debug"),
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
            ("TESSERA__JWT__REUSE_GRACE_INTERVAL", "0s"),
            ("TESSERA__THROTTLE__LOGIN__USERNAME", "4/min"),
        ],
    )
    .await;
    let c = reqwest::Client::new();
    let password = "Sup3r-Secret-Passw0rd!";
    let new_password = "An0ther-Secret-Passw0rd?";
    let call = |method: reqwest::Method, path: &str, body: Value, auth: Option<String>| {
        let mut r = c
            .request(method, server.url(path))
            .json(&body)
            .header("x-request-id", "hygiene-1");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let post = |path: &str, body: Value, auth: Option<String>| {
        call(reqwest::Method::POST, path, body, auth)
    };
    let get = |path: &str, auth: String| call(reqwest::Method::GET, path, Value::Null, Some(auth));
    let (status, _) = post(
        "/api/v1/auth/users/",
        json!({"username": "alice", "password": password}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let (status, pair) = post(
        "/api/token/",
        json!({"username": "alice", "password": password}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        "/api/token/",
        json!({"username": "alice", "password": "wrong-password-attempt"}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (access, refresh) = (
        pair["access"].as_str().unwrap().to_owned(),
        pair["refresh"].as_str().unwrap().to_owned(),
    );
    let (status, refreshed) =
        post("/api/token/refresh/", json!({ "refresh": refresh }), None).await;
    assert_eq!(status, 200);
    let rotated = refreshed["refresh"].as_str().unwrap().to_owned();
    let (status, key) = post(
        "/auth/token/login/",
        json!({"username": "alice", "password": password}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let key = key["auth_token"].as_str().unwrap().to_owned();
    assert_eq!(
        get("/api/v1/auth/users/me/", format!("Bearer {access}"))
            .await
            .0,
        200
    );
    assert_eq!(
        get("/api/v1/auth/forward/", format!("Token {key}")).await.0,
        200
    );
    assert_eq!(
        get("/api/v1/auth/forward/", format!("Bearer {access}"))
            .await
            .0,
        200
    );
    assert_eq!(
        get("/api/v1/auth/users/me/", "Bearer forged.token.value".into())
            .await
            .0,
        401
    );
    assert_eq!(
        post("/api/token/verify/", json!({ "token": access }), None)
            .await
            .0,
        200
    );
    assert_eq!(
        post("/api/token/verify/", json!({ "token": rotated }), None)
            .await
            .0,
        200
    );
    // The first refresh token again, after the rotation: reuse, logged.
    assert_eq!(
        post("/api/token/refresh/", json!({ "refresh": refresh }), None)
            .await
            .0,
        401
    );
    let (status, second) = post(
        "/api/token/",
        json!({"username": "alice", "password": password}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let second_refresh = second["refresh"].as_str().unwrap().to_owned();
    // Before the password change, which ends opaque keys.
    let (status, _) = post(
        "/auth/token/logout/",
        json!({}),
        Some(format!("Token {key}")),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = post(
        "/api/v1/auth/users/set_password/",
        json!({"current_password": password, "new_password": new_password}),
        Some(format!("Bearer {access}")),
    )
    .await;
    assert_eq!(status, 204);
    // Alice's fifth login within the minute is over the limit (JWT and
    // opaque logins share it): throttled, logged.
    let (status, _) = post(
        "/api/token/",
        json!({"username": "alice", "password": new_password}),
        None,
    )
    .await;
    assert_eq!(status, 429);
    let (status, _) = post(
        "/api/token/blacklist/",
        json!({ "refresh": second_refresh }),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let metrics = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, log) = server.stop();
    assert!(status.success());
    assert!(
        log.contains("\"request_id\":\"hygiene-1\""),
        "the request log is there: {log}"
    );
    assert!(
        log.lines()
            .filter(|l| l.contains("tessera::access"))
            .count()
            >= 18,
        "{log}"
    );
    assert_eq!(
        events(&log, "tessera::security", "refresh_token_reuse").len(),
        1,
        "{log}"
    );
    assert_eq!(
        events(&log, "tessera::security", "throttled").len(),
        1,
        "{log}"
    );
    let hash_prefix = "$argon2id$";
    let secrets = [
        password,
        new_password,
        "wrong-password-attempt",
        signing_key,
        &access,
        &refresh,
        &rotated,
        &second_refresh,
        refreshed["access"].as_str().unwrap(),
        second["access"].as_str().unwrap(),
        &key,
        &access[access.len() - 20..],
        &rotated[rotated.len() - 20..],
        &key[..20],
        hash_prefix,
        "forged.token.value",
    ];
    for secret in secrets {
        assert!(!log.contains(secret), "the log contains {secret}");
        assert!(!metrics.contains(secret), "the metrics contain {secret}");
    }
}

#[tokio::test]
async fn metric_labels_stay_bounded_whatever_the_client_sends() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("tessera_http_requests_total{"))
            .count()
    };
    let before = series(&app.get("/metrics", None).await.text);
    for i in 0..200 {
        let method = reqwest::Method::from_bytes(format!("ZZMETHOD{i}").as_bytes()).unwrap();
        let a = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert!(a.status().is_client_error(), "{}", a.status());
        app.get(&format!("/no/such/path/{i}"), None).await;
        // A path parameter: one template, whatever the id.
        app.get(&format!("/api/v1/auth/users/{i}/"), Some(&bearer(&access)))
            .await;
    }
    let m = app.get("/metrics", None).await.text;
    assert!(!m.contains("ZZMETHOD"), "a raw method became a label");
    assert!(!m.contains("/no/such/path/"), "a raw path became a label");
    assert!(m.contains(r#"method="other",route="/healthz""#), "{m}");
    assert!(m.contains(r#"route="unmatched""#), "{m}");
    assert!(m.contains(r#"route="/api/v1/auth/users/{id}""#), "{m}");
    assert!(!m.contains(r#"route="/api/v1/auth/users/17""#));
    // 600 requests with distinct methods and paths added a handful of
    // series (one per route template, method class and status).
    let added = series(&m) - before;
    assert!(added <= 8, "{added} new series:\n{m}");
}

/// The JSON log lines of `target` whose `fields.event` is `event`.
fn events(log: &str, target: &str, event: &str) -> Vec<Value> {
    json_log_lines(log)
        .into_iter()
        .filter(|l| l["target"] == target && l["fields"]["event"] == event)
        .collect()
}

#[tokio::test]
async fn security_events_are_logged_with_who_but_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let server = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
            ("TESSERA__LOG__FORMAT", "json"),
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
            ("TESSERA__JWT__REUSE_GRACE_INTERVAL", "0s"),
            ("TESSERA__THROTTLE__LOGIN__USERNAME", "3/min"),
        ],
    )
    .await;
    let c = reqwest::Client::new();
    let pair = server.register_and_login(&c, "alice").await;
    let t1 = pair["refresh"].as_str().unwrap().to_owned();
    let post = |path: &str, body: Value| c.post(server.url(path)).json(&body).send();
    let rotated: Value = post("/api/token/refresh/", json!({ "refresh": t1 }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t2 = rotated["refresh"].as_str().unwrap().to_owned();
    // The owner logs out with the token the thief already rotated.
    let out = c
        .post(server.url("/api/token/blacklist/"))
        .header("x-request-id", "logout-1")
        .json(&json!({ "refresh": t1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    // Wrong passwords until the per-username limit answers 429.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let a = post(
            "/api/token/",
            json!({"username": "alice", "password": "nope-nope"}),
        )
        .await
        .unwrap();
        statuses.push(a.status().as_u16());
    }
    // register_and_login's login spent one of the three.
    assert_eq!(statuses, [401, 401, 429, 429]);
    let (status, log) = server.stop();
    assert!(status.success());
    let reuse = events(&log, "tessera::security", "refresh_token_reuse");
    assert_eq!(reuse.len(), 1, "{log}");
    let user_id = claims(&t1)["user_id"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    assert_eq!(reuse[0]["fields"]["user_id"], user_id);
    assert_eq!(reuse[0]["fields"]["family"], claims(&t1)["jti"]);
    // The request's span carries its id into the event, as in the access log.
    assert_eq!(reuse[0]["span"]["request_id"], "logout-1", "{log}");
    let throttled = events(&log, "tessera::security", "throttled");
    assert_eq!(throttled.len(), 2, "{log}");
    for t in &throttled {
        assert_eq!(t["fields"]["scope"], "login");
        assert_eq!(t["fields"]["key"], "username");
        assert!(t["fields"]["wait_secs"].as_u64().unwrap() >= 1);
        assert!(t["span"]["request_id"].is_string(), "{t}");
    }
    for secret in [&t1, &t2, "nope-nope", PASSWORD, TEST_KEY] {
        assert!(!log.contains(secret), "the log contains {secret}");
    }
}
