//! Limits answer with a status of their own, never a 500 and never a hang.

use futures::future::join_all;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn oversized_headers_get_431() {
    let app = spawn_app().await;
    let big = "x".repeat(17 * 1024);
    let a = Answer::from(
        app.client
            .get(app.url("/healthz"))
            .header("x-padding", big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 431, "{}", a.text);
    assert_eq!(
        a.json,
        json!({"detail": "Request header fields too large."})
    );
    let fits = "x".repeat(8 * 1024);
    let a = Answer::from(
        app.client
            .get(app.url("/healthz"))
            .header("x-padding", fits)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503_at_once() {
    // One hashing thread, no waiting room, a slow hash: concurrent logins
    // beyond the first are refused rather than queued.
    let app = spawn_app_with(&[
        ("TESSERA__PASSWORD__HASH_WORKERS", "1"),
        ("TESSERA__PASSWORD__HASH_QUEUE", "0"),
        ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "32768"),
        ("TESSERA__PASSWORD__ARGON2_ITERATIONS", "6"),
    ])
    .await;
    app.register("alice").await;
    let answers = join_all((0..6).map(|_| {
        app.post_json(
            "/api/token/",
            json!({"username": "alice", "password": PASSWORD}),
        )
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert!(statuses.contains(&200), "{statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    for a in answers.iter().filter(|a| a.status == 503) {
        assert_eq!(a.header("retry-after"), Some("1"));
        assert_eq!(
            a.json,
            json!({"detail": "Too many password checks in progress, try again later."})
        );
    }
    // Once the burst is over, logins work again.
    app.login("alice").await;
}

#[tokio::test]
async fn requests_that_take_too_long_get_503() {
    let app = spawn_app_with(&[
        ("TESSERA__SERVER__REQUEST_TIMEOUT", "20ms"),
        ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "65536"),
        ("TESSERA__PASSWORD__ARGON2_ITERATIONS", "4"),
    ])
    .await;
    let a = app
        .post_json(
            "/api/v1/auth/users/",
            json!({"username": "slow", "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.json, json!({"detail": "The request took too long."}));
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(
        app.get("/healthz", None).await.status,
        200,
        "quick requests are unaffected"
    );
}

#[tokio::test]
async fn a_timed_out_request_keeps_its_hashing_slot_until_the_hash_ends() {
    // One slot, no queue, a hash far longer than the request timeout: the
    // first request times out but its hash still runs, so the next one must
    // find the pool full rather than start a second hash beside it.
    let app = spawn_app_with(&[
        // Far shorter than the hash (seconds in a debug build), long enough
        // for the lookup before it on a machine busy with parallel tests.
        ("TESSERA__SERVER__REQUEST_TIMEOUT", "500ms"),
        ("TESSERA__PASSWORD__HASH_WORKERS", "1"),
        ("TESSERA__PASSWORD__HASH_QUEUE", "0"),
        ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "65536"),
        ("TESSERA__PASSWORD__ARGON2_ITERATIONS", "8"),
    ])
    .await;
    // A pooled connection ready, so the first request reaches its hash
    // within its time rather than spend it connecting.
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz", None).await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        ready,
        "the database never answered within the request timeout"
    );
    let first = app
        .post_json(
            "/api/token/",
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await;
    assert_eq!(first.json, json!({"detail": "The request took too long."}));
    let second = app
        .post_json(
            "/api/token/",
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await;
    assert_eq!(second.status, 503);
    assert_eq!(
        second.json,
        json!({"detail": "Too many password checks in progress, try again later."})
    );
    let metrics = app.get("/metrics", None).await.text;
    assert!(
        metrics.contains("tessera_password_hash_queue_depth 1"),
        "{metrics}"
    );
}
