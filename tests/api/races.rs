//! Concurrency is part of correctness: one token, one winner. Each test
//! runs on a multi-threaded runtime, so the server's request tasks run in
//! parallel on several threads rather than taking turns at await points.

use futures::future::join_all;
use serde_json::json;

use crate::helpers::*;

const N: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_of_one_token_mint_one_new_refresh_token() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
        ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", "true"),
    ])
    .await;
    app.register("rita").await;
    let (refresh, _) = app.login("rita").await;
    app.warm_connections(N).await;
    let answers = join_all((0..N).map(|_| app.refresh(&refresh))).await;
    let ok: Vec<_> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(
        ok.len(),
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for a in answers.iter().filter(|a| a.status != 200) {
        a.assert_401(json!({"detail": "Token is blacklisted", "code": "token_not_valid"}));
    }
    // The one new refresh token works.
    let new_refresh = ok[0].json["refresh"].as_str().unwrap();
    assert_eq!(app.refresh(new_refresh).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logouts_of_one_token_succeed_once() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, _) = app.login("alice").await;
    app.warm_connections(N).await;
    let answers = join_all(
        (0..N).map(|_| app.post_json("/api/token/blacklist/", json!({ "refresh": refresh }))),
    )
    .await;
    assert_eq!(answers.iter().filter(|a| a.status == 200).count(), 1);
    assert_eq!(answers.iter().filter(|a| a.status == 401).count(), N - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_username_create_one_user() {
    use sea_orm::EntityTrait;
    let app = spawn_app().await;
    app.warm_connections(N).await;
    let answers = join_all((0..N).map(|_| {
        app.post_json(
            "/api/v1/auth/users/",
            json!({"username": "dup", "password": PASSWORD}),
        )
    }))
    .await;
    assert_eq!(answers.iter().filter(|a| a.status == 201).count(), 1);
    for a in answers.iter().filter(|a| a.status != 201) {
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(
            a.json,
            json!({"username": ["A user with that username already exists."]})
        );
    }
    let users = entity::users::Entity::find()
        .all(app.service.database())
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logout_racing_the_adoption_of_a_family_less_token_wins() {
    // A refresh adopts a token Simple JWT issued into a new family while a
    // logout blacklists it: once the logout answered 200, no refresh token
    // minted by that refresh may work.
    const TRIALS: usize = 300;
    for detection in ["true", "false"] {
        let app = spawn_app_with(&[
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
            ("TESSERA__JWT__REUSE_DETECTION", detection),
        ])
        .await;
        let id = app.register("rita").await["id"].as_i64().unwrap();
        app.warm_connections(2).await;
        let (mut both_ok, mut survived) = (0, 0);
        for trial in 0..TRIALS {
            let legacy = family_less_token(id);
            // The logout leaves 0 to 10 ms after the refresh, so that both
            // orders, and the overlaps between, all occur on either
            // database.
            let delay = std::time::Duration::from_millis((trial % 11) as u64);
            let (refreshed, out) = tokio::join!(app.refresh(&legacy), async {
                tokio::time::sleep(delay).await;
                app.post_json("/api/token/blacklist/", json!({ "refresh": legacy }))
                    .await
            });
            assert_eq!(out.status, 200, "{}", out.text);
            if refreshed.status == 200 {
                both_ok += 1;
                let minted = refreshed.json["refresh"].as_str().unwrap();
                if app.refresh(minted).await.status == 200 {
                    survived += 1;
                }
            }
        }
        assert_eq!(
            survived, 0,
            "reuse detection {detection}: {survived} of {both_ok} refresh tokens minted beside a logout survived it"
        );
        eprintln!(
            "reuse detection {detection}: the refresh also succeeded in {both_ok} of {TRIALS} trials"
        );
        // The dangerous order (the refresh adopts first) did happen.
        assert!(
            both_ok > 0,
            "reuse detection {detection}: the race never interleaved"
        );
    }
}
