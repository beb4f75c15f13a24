//! Several real instances on one database, database outages, graceful
//! shutdown and the background purge.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::helpers::*;

#[tokio::test]
async fn two_instances_share_users_and_the_blacklist() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = two_instances(&dir, &[]).await;
    let client = reqwest::Client::new();
    let credentials = |name| [("username", name), ("password", PASSWORD)];
    assert_eq!(
        a.post_form(&client, "/api/v1/auth/users/", &credentials("alice"))
            .await
            .0,
        201
    );
    assert_eq!(
        b.post_form(&client, "/api/v1/auth/users/", &credentials("bob"))
            .await
            .0,
        201
    );
    // Registered through either, seen by both.
    for (server, name) in [(&b, "alice"), (&a, "bob")] {
        let (code, _) = server
            .post_form(&client, "/api/token/", &credentials(name))
            .await;
        assert_eq!(code, 200, "{name}");
    }
    let (code, _) = a
        .post_form(&client, "/api/v1/auth/users/", &credentials("bob"))
        .await;
    assert_eq!(code, 400, "the name taken through B is taken on A");
    // Blacklisted through A, refused by B at once.
    let (_, pair) = b
        .post_form(&client, "/api/token/", &credentials("alice"))
        .await;
    let refresh = pair["refresh"].as_str().unwrap();
    let (code, _) = a
        .post_form(&client, "/api/token/blacklist/", &[("refresh", refresh)])
        .await;
    assert_eq!(code, 200);
    let (code, body) = b
        .post_form(&client, "/api/token/refresh/", &[("refresh", refresh)])
        .await;
    assert_eq!(code, 401);
    assert_eq!(body["detail"], "Token is blacklisted");
    stop_cleanly([a, b]);
}

#[tokio::test]
async fn fifty_concurrent_refreshes_over_two_instances_give_one_200() {
    let dir = tempfile::tempdir().unwrap();
    let rotation = [
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
        ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", "true"),
    ];
    let (a, b, _) = two_instances(&dir, &rotation).await;
    let client = reqwest::Client::new();
    let pair = a.register_and_login(&client, "rita").await;
    let refresh = pair["refresh"].as_str().unwrap().to_owned();
    let statuses = join_all((0..50).map(|i| {
        let url = if i % 2 == 0 {
            a.url("/api/token/refresh/")
        } else {
            b.url("/api/token/refresh/")
        };
        let (client, refresh) = (client.clone(), refresh.clone());
        async move {
            client
                .post(url)
                .form(&[("refresh", refresh)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        49,
        "{statuses:?}"
    );
    a.stop();
    b.stop();
}

#[tokio::test]
async fn concurrent_migrations_take_turns() {
    // Four in-process applications build (and migrate) one empty database at once.
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let builds = join_all((0..4).map(|_| {
        let settings = tessera::config::Settings::load_from(None, base_env(&url)).unwrap();
        tessera::startup::Application::build(settings)
    }))
    .await;
    for b in builds {
        assert!(b.is_ok(), "{:?}", b.err());
    }
}

/// A TCP proxy in front of PostgreSQL that can be cut and restored, to
/// simulate an outage without stopping the shared server.
struct Proxy {
    port: u16,
    listener: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: &str) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Arc::new(Self {
            port,
            listener: Mutex::new(None),
            connections: Arc::new(Mutex::new(Vec::new())),
        });
        proxy.serve(listener, target.to_owned()).await;
        proxy
    }

    async fn serve(&self, listener: TcpListener, target: String) {
        let connections = Arc::clone(&self.connections);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                connections.lock().await.push(handle);
            }
        });
        *self.listener.lock().await = Some(task);
    }

    /// Closes the port and every open connection: like a stopped server.
    async fn cut(&self) {
        if let Some(t) = self.listener.lock().await.take() {
            t.abort();
            let _ = t.await;
        }
        for c in self.connections.lock().await.drain(..) {
            c.abort();
        }
    }

    async fn restore(&self, target: &str) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.serve(listener, target.to_owned()).await;
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn through_proxy(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_once('/').unwrap();
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}/{tail}")
}

fn pg_target(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let host = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); CI runs it with --include-ignored"]
async fn a_database_outage_gives_fast_503s_and_heals_by_itself() {
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let direct = fresh_database_url(&dir).await;
    let target = pg_target(&direct);
    let proxy = Proxy::start(&target).await;
    let url = through_proxy(&direct, proxy.port);
    let server = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
            ("TESSERA__DATABASE__HEALTH_PROBE_INTERVAL", "200ms"),
            ("TESSERA__DATABASE__ACQUIRE_TIMEOUT", "1s"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let pair = server.register_and_login(&client, "alice").await;
    let (access, refresh) = (
        pair["access"].as_str().unwrap().to_owned(),
        pair["refresh"].as_str().unwrap().to_owned(),
    );
    let me = |c: reqwest::Client| {
        let (url, access) = (server.url("/api/v1/auth/users/me/"), access.clone());
        async move { c.get(url).bearer_auth(access).send().await.unwrap() }
    };
    assert_eq!(me(client.clone()).await.status(), 200);

    let refresh_now = |c: reqwest::Client| {
        let (url, refresh) = (server.url("/api/token/refresh/"), refresh.clone());
        async move {
            c.post(url)
                .form(&[("refresh", &refresh)])
                .send()
                .await
                .unwrap()
        }
    };
    proxy.cut().await;
    // The first request to meet the outage fails within the pool timeout
    // (a refresh: users/me may still be answered from memory for the
    // moment it takes to notice the lost LISTEN connection)...
    let started = Instant::now();
    let r = refresh_now(client.clone()).await;
    assert_eq!(r.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5"),
        "an outage tells clients when to come back"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"].is_string());
    // ...and the next ones at once.
    for _ in 0..5 {
        let started = Instant::now();
        let r = client
            .post(server.url("/api/token/refresh/"))
            .form(&[("refresh", &refresh)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("5")
        );
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The user cache has stopped serving: it cannot hear of changes.
    let noticed = Instant::now();
    while me(client.clone()).await.status() != 503 {
        assert!(
            noticed.elapsed() < Duration::from_secs(5),
            "users/me still answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Access tokens are verified without the database, throughout.
    let r = client
        .get(server.url("/api/v1/whoami-stateless/"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(server.url("/api/token/verify/"))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    proxy.restore(&target).await;
    let healed = Instant::now();
    loop {
        if me(client.clone()).await.status() == 200 {
            break;
        }
        assert!(
            healed.elapsed() < Duration::from_secs(10),
            "did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = client
        .post(server.url("/api/token/refresh/"))
        .form(&[("refresh", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, log) = server.stop();
    assert!(status.success());
    assert!(log.contains("database unreachable"), "{log}");
    assert!(log.contains("database reachable again"), "{log}");
}

#[tokio::test]
async fn start_up_waits_for_the_database_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let started = Instant::now();
    let out = tessera(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
            ("TESSERA__DATABASE__CONNECT_ATTEMPTS", "3"),
            ("TESSERA__DATABASE__CONNECT_RETRY_INTERVAL", "200ms"),
        ],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        log.matches("database not reachable yet, retrying").count(),
        2,
        "{log}"
    );
    assert!(log.contains("cannot connect to the database"), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); CI runs it with --include-ignored"]
async fn start_up_waits_for_a_database_that_comes_up() {
    require_postgres();
    let dir = tempfile::tempdir().unwrap();
    let direct = fresh_database_url(&dir).await;
    let target = pg_target(&direct);
    let proxy = Proxy::start(&target).await;
    proxy.cut().await;
    let url = through_proxy(&direct, proxy.port);
    let port = free_port().to_string();
    let mut child = tessera(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
            ("TESSERA__SERVER__PORT", port.as_str()),
            ("TESSERA__DATABASE__CONNECT_RETRY_INTERVAL", "200ms"),
        ],
    )
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.restore(&target).await;
    let mut up = false;
    for _ in 0..50 {
        if reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send_sigterm(child.id());
    assert!(child.wait().unwrap().success());
    assert!(up, "came up once the database did");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    // A deliberately slow hash makes the registration take a while.
    let server = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
            ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "16384"),
            ("TESSERA__PASSWORD__ARGON2_ITERATIONS", "4"),
            ("TESSERA__LOG__FORMAT", "json"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let in_flight = tokio::spawn(
        client
            .post(server.url("/api/v1/auth/users/"))
            .form(&[("username", "slow"), ("password", PASSWORD)])
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!in_flight.is_finished(), "the request is still in flight");
    let port = server.port;
    send_sigterm(server.child.id());
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 201, "the request in flight completed");
    let (status, log) = server.stop();
    assert!(status.success(), "{status:?} {log}");
    // The server's own account: the signal came first, the answer after.
    let lines = json_log_lines(&log);
    let signal = lines
        .iter()
        .position(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("shutdown signal received"))
        })
        .unwrap_or_else(|| panic!("no shutdown line: {log}"));
    let answered = lines
        .iter()
        .position(|l| {
            l["target"] == "tessera::access"
                && l["fields"]["route"] == "/api/v1/auth/users"
                && l["fields"]["status"] == 201
        })
        .unwrap_or_else(|| panic!("no access line for the registration: {log}"));
    assert!(signal < answered, "answered after the signal: {log}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn the_background_purge_deletes_expired_rows() {
    use chrono::{Duration as D, Utc};
    let app = spawn_app_with(&[("TESSERA__BLACKLIST__PURGE_INTERVAL", "100ms")]).await;
    let db = app.service.database();
    let now = Utc::now();
    // Past its expiry plus the leeway and the 5-minute clock margin.
    tessera::blacklist::add(db, "gone", None, now - D::minutes(6), now)
        .await
        .unwrap();
    // Expired, but recently enough that another instance's clock may still accept it.
    tessera::blacklist::add(db, "recent", None, now - D::minutes(1), now)
        .await
        .unwrap();
    tessera::blacklist::add(db, "kept", None, now + D::hours(1), now)
        .await
        .unwrap();
    let started = Instant::now();
    while tessera::blacklist::contains(db, "gone").await.unwrap() {
        assert!(started.elapsed() < Duration::from_secs(5), "not purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tessera::blacklist::contains(db, "kept").await.unwrap());
    assert!(tessera::blacklist::contains(db, "recent").await.unwrap());
}
