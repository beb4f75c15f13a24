use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn verify_accepts_any_valid_token() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (refresh, access) = app.login("alice").await;
    for path in [
        "/api/token/verify/",
        "/api/v1/auth/jwt/verify/",
        "/api/token/verify",
    ] {
        for token in [&refresh, &access] {
            let a = app.post_json(path, json!({ "token": token })).await;
            assert_eq!((a.status.as_u16(), a.text.as_str()), (200, "{}"), "{path}");
        }
    }
    // Verify never looks at the user: inactive or deleted, the token is valid.
    app.set_active(id, false).await;
    assert_eq!(
        app.post_form("/api/token/verify/", &[("token", &access)])
            .await
            .status,
        200
    );
    app.delete_user(id).await;
    assert_eq!(
        app.post_form("/api/token/verify/", &[("token", &access)])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn verify_refuses_bad_tokens() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    let now = chrono::Utc::now().timestamp();
    let expired = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "access", "exp": now - 60, "iat": now - 7200, "jti": "30488c5019f1459da3f1cc7e6323a8f9", "user_id": id.to_string()}),
    );
    let parts: Vec<&str> = access.split('.').collect();
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let cases = [
        (expired.as_str(), "Token is expired"),
        (alg_none.as_str(), "Token is invalid"),
        (
            "0b99d2987c9e0306e92165d9bc75c7b5bea96010",
            "Token is invalid",
        ),
    ];
    for (token, message) in cases {
        app.post_form("/api/token/verify/", &[("token", token)])
            .await
            .assert_401(json!({"detail": message, "code": "token_not_valid"}));
    }
    let a = app
        .post_form("/api/token/verify/", &[("access", &access)])
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"token": ["This field is required."]}))
    );
}

#[tokio::test]
async fn blacklist_is_logout() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    let a = app
        .post_json("/api/token/blacklist/", json!({ "refresh": refresh }))
        .await;
    assert_eq!((a.status.as_u16(), a.text.as_str()), (200, "{}"));
    let blacklisted = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    app.post_form("/api/token/blacklist/", &[("refresh", &refresh)])
        .await
        .assert_401(blacklisted.clone());
    app.refresh(&refresh).await.assert_401(blacklisted.clone());
    // Unlike Simple JWT, verify refuses a blacklisted refresh token.
    app.post_form("/api/token/verify/", &[("token", &refresh)])
        .await
        .assert_401(blacklisted);
    // The access token of the same pair lives on until it expires.
    assert_eq!(app.me(&access).await.status, 200);
    app.post_form("/api/token/blacklist/", &[("refresh", &access)])
        .await
        .assert_401(json!({"detail": "Token has wrong type", "code": "token_not_valid"}));
    let a = app.post_json("/api/token/blacklist/", json!({})).await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"refresh": ["This field is required."]}))
    );
    // The row records the token's expiry, for the purge.
    use sea_orm::EntityTrait;
    let rows = entity::token_blacklist::Entity::find()
        .all(app.service.database())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].jti, claims(&refresh)["jti"].as_str().unwrap());
    assert_eq!(
        rows[0].expires_at.timestamp(),
        claims(&refresh)["exp"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn blacklisting_an_expired_token_is_refused() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().timestamp();
    let expired = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "refresh", "exp": now - 60, "iat": now - 7200, "jti": "40488c5019f1459da3f1cc7e6323a8f9", "user_id": "1"}),
    );
    app.post_form("/api/token/blacklist/", &[("refresh", &expired)])
        .await
        .assert_401(json!({"detail": "Token is expired", "code": "token_not_valid"}));
}

#[tokio::test]
async fn expired_blacklist_rows_are_purged_and_live_ones_kept() {
    use chrono::{Duration, Utc};
    let app = spawn_app().await;
    let db = app.service.database();
    let now = Utc::now();
    for (jti, exp) in [
        ("old1", now - Duration::hours(1)),
        ("old2", now - Duration::seconds(1)),
        ("live", now + Duration::hours(1)),
    ] {
        assert!(
            tessera::blacklist::add(db, jti, Some(1), exp, now)
                .await
                .unwrap()
        );
    }
    assert!(
        !tessera::blacklist::add(db, "live", Some(1), now, now)
            .await
            .unwrap(),
        "second add is refused"
    );
    assert_eq!(
        tessera::blacklist::purge_expired(db, now, 1).await.unwrap(),
        2
    );
    assert!(tessera::blacklist::contains(db, "live").await.unwrap());
    assert!(!tessera::blacklist::contains(db, "old1").await.unwrap());
}
