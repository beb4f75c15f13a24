//! Rate limits: 429 in DRF's words with Retry-After, per client IP and per
//! username, X-Forwarded-For only from trusted proxies.

use serde_json::json;

use crate::helpers::*;

fn assert_throttled(a: &Answer, max_wait: u64) {
    assert_eq!(a.status, 429, "{}", a.text);
    let wait: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1 && wait <= max_wait, "Retry-After {wait}");
    let unit = if wait == 1 { "second" } else { "seconds" };
    assert_eq!(
        a.json,
        json!({"detail": format!("Request was throttled. Expected available in {wait} {unit}.")})
    );
    assert!(a.header("www-authenticate").is_none());
}

async fn login_as(app: &TestApp, username: &str, password: &str) -> Answer {
    app.post_json(
        "/api/token/",
        json!({"username": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn login_attempts_per_username() {
    let app = spawn_app_with(&[
        ("TESSERA__THROTTLE__LOGIN__USERNAME", "3/min"),
        ("TESSERA__THROTTLE__LOGIN__IP", ""),
    ])
    .await;
    app.register("alice").await;
    // Spellings that log in as the same account share its budget: another
    // width or another case buys no extra attempts.
    for name in ["alice", "ａｌｉｃｅ", "𝐚𝐥𝐢𝐜𝐞"] {
        assert_eq!(login_as(&app, name, "wrong-password").await.status, 401);
    }
    // The right password does not help once the budget is spent, whatever
    // the case of the name or the kind of login.
    assert_throttled(&login_as(&app, "alice", PASSWORD).await, 20);
    assert_throttled(&login_as(&app, "ＡＬＩＣＥ", PASSWORD).await, 20);
    assert_throttled(&login_as(&app, "ALICE", PASSWORD).await, 20);
    let opaque = app
        .post_json(
            "/api/v1/auth/token/login/",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_throttled(&opaque, 20);
    let djoser = app
        .post_form(
            "/api/v1/auth/jwt/create/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_throttled(&djoser, 20);
    // Another username has its own budget.
    app.register("bob").await;
    assert_eq!(login_as(&app, "bob", PASSWORD).await.status, 200);
    let metrics = app.get("/metrics", None).await.text;
    assert!(
        metrics.contains(r#"tessera_requests_throttled_total{key="username",scope="login"} 5"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn login_attempts_per_ip() {
    let app = spawn_app_with(&[
        ("TESSERA__THROTTLE__LOGIN__IP", "1/s"),
        ("TESSERA__THROTTLE__LOGIN__USERNAME", ""),
    ])
    .await;
    assert_eq!(login_as(&app, "a", "x").await.status, 401);
    let second = login_as(&app, "b", "y").await;
    // DRF's singular: one second.
    assert_throttled(&second, 1);
    assert_eq!(
        second.json["detail"],
        "Request was throttled. Expected available in 1 second."
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(login_as(&app, "c", "z").await.status, 401);
}

#[tokio::test]
async fn x_forwarded_for_counts_only_from_trusted_proxies() {
    let forwarded = |app: &TestApp, client: &'static str| {
        let req = app
            .client
            .post(app.url("/api/token/"))
            .header("x-forwarded-for", client)
            .json(&json!({"username": "u", "password": "p"}));
        async move { Answer::from(req.send().await.unwrap()).await }
    };
    let limits = [
        ("TESSERA__THROTTLE__LOGIN__IP", "1/hour"),
        ("TESSERA__THROTTLE__LOGIN__USERNAME", ""),
    ];
    // Not trusted: the header is ignored and every request is 127.0.0.1's.
    let app = spawn_app_with(&limits).await;
    assert_eq!(forwarded(&app, "1.1.1.1").await.status, 401);
    assert_eq!(forwarded(&app, "2.2.2.2").await.status, 429);

    // Trusted: each forwarded client has its own budget, and a client's own
    // entries left of the proxy's do not buy a new one.
    let mut env = limits.to_vec();
    env.push(("TESSERA__SERVER__TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8"));
    let app = spawn_app_with(&env).await;
    assert_eq!(forwarded(&app, "1.1.1.1").await.status, 401);
    assert_eq!(forwarded(&app, "2.2.2.2").await.status, 401);
    assert_eq!(forwarded(&app, "9.9.9.9, 1.1.1.1").await.status, 429);
    assert_eq!(forwarded(&app, "2.2.2.2, 10.1.1.1").await.status, 429);
}

#[tokio::test]
async fn registration_per_ip_and_per_username() {
    let app = spawn_app_with(&[
        ("TESSERA__THROTTLE__REGISTER__IP", "4/min"),
        ("TESSERA__THROTTLE__REGISTER__USERNAME", "2/min"),
    ])
    .await;
    let register = |name: &'static str| {
        app.post_json(
            "/api/v1/auth/users/",
            json!({"username": name, "password": PASSWORD}),
        )
    };
    assert_eq!(register("carol").await.status, 201);
    assert_eq!(register("carol").await.status, 400);
    assert_throttled(&register("carol").await, 30);
    assert_eq!(register("dave").await.status, 201);
    assert_throttled(&register("erin").await, 20);
    // Nothing was written by a throttled request.
    use sea_orm::EntityTrait;
    let users = entity::users::Entity::find()
        .all(app.service.database())
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
}

#[tokio::test]
async fn refresh_per_user() {
    let app = spawn_app_with(&[("TESSERA__THROTTLE__REFRESH__USERNAME", "2/min")]).await;
    app.register("alice").await;
    app.register("bob").await;
    let (alice, _) = app.login("alice").await;
    let (bob, _) = app.login("bob").await;
    assert_eq!(app.refresh(&alice).await.status, 200);
    assert_eq!(app.refresh(&alice).await.status, 200);
    assert_throttled(&app.refresh(&alice).await, 30);
    assert_eq!(app.refresh(&bob).await.status, 200);
    // A token that does not verify counts against the IP only and gets its
    // own error.
    let bad = app.refresh("not-a-token").await;
    assert_eq!(bad.status, 401, "{}", bad.text);
}

#[tokio::test]
async fn set_password_per_user() {
    let app = spawn_app_with(&[("TESSERA__THROTTLE__SET_PASSWORD__USERNAME", "2/min")]).await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let auth = bearer(&access);
    let attempt = || {
        app.call(
            "POST",
            "/api/v1/auth/users/set_password/",
            Some(&auth),
            Some(json!({"current_password": "guess", "new_password": "An0ther-pass!"})),
        )
    };
    assert_eq!(attempt().await.status, 400);
    assert_eq!(attempt().await.status, 400);
    assert_throttled(&attempt().await, 30);
    // Every other check of current_password shares that budget.
    let set_username = app
        .call(
            "POST",
            "/api/v1/auth/users/set_username/",
            Some(&auth),
            Some(json!({"current_password": "guess", "new_username": "alicia"})),
        )
        .await;
    assert_throttled(&set_username, 30);
    let delete = app
        .call(
            "DELETE",
            "/api/v1/auth/users/me/",
            Some(&auth),
            Some(json!({"current_password": "guess"})),
        )
        .await;
    assert_throttled(&delete, 30);
}

#[tokio::test]
async fn throttling_can_be_switched_off() {
    let app = spawn_app_with(&[
        ("TESSERA__THROTTLE__ENABLED", "false"),
        ("TESSERA__THROTTLE__LOGIN__IP", "1/day"),
        ("TESSERA__THROTTLE__LOGIN__USERNAME", "1/day"),
    ])
    .await;
    for _ in 0..10 {
        assert_eq!(login_as(&app, "nobody", "x").await.status, 401);
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let app = spawn_app_with(&[("TESSERA__SERVER__MAX_CONNECTIONS", "2")]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    async fn answered(stream: &mut TcpStream, within_ms: u64) -> bool {
        let mut buf = [0u8; 512];
        matches!(
            tokio::time::timeout(
                std::time::Duration::from_millis(within_ms),
                stream.read(&mut buf)
            )
            .await,
            Ok(Ok(n)) if n > 0 && buf.starts_with(b"HTTP/1.1 200")
        )
    }
    // Two idle keep-alive connections take both slots.
    let mut first = TcpStream::connect(&addr).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    for s in [&mut first, &mut second] {
        s.write_all(get).await.unwrap();
        assert!(answered(s, 2000).await);
    }
    let mut third = TcpStream::connect(&addr).await.unwrap();
    third.write_all(get).await.unwrap();
    assert!(!answered(&mut third, 500).await, "served beyond the cap");
    drop(first);
    assert!(
        answered(&mut third, 2000).await,
        "not served once a slot was free"
    );
}

#[tokio::test]
async fn an_idle_connection_gives_its_slot_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let app = spawn_app_with(&[
        ("TESSERA__SERVER__MAX_CONNECTIONS", "1"),
        ("TESSERA__SERVER__IDLE_TIMEOUT", "1s"),
    ])
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Connects and never sends a byte: it must not hold the only slot.
    let _silent = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let mut next = TcpStream::connect(&addr).await.unwrap();
    next.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), next.read(&mut buf))
        .await
        .expect("served once the idle connection was closed")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
}
