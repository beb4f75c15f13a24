use serde_json::json;

use crate::helpers::*;

fn forged(token_type: &str, user_id: serde_json::Value, iat: i64, exp: i64) -> String {
    sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": token_type, "exp": exp, "iat": iat, "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id}),
    )
}

#[tokio::test]
async fn refresh_returns_a_new_access_token_only() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    for path in [
        "/api/token/refresh/",
        "/api/v1/auth/jwt/refresh/",
        "/api/token/refresh",
    ] {
        let a = app.post_form(path, &[("refresh", &refresh)]).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        let obj = a.json.as_object().unwrap();
        assert_eq!(obj.keys().collect::<Vec<_>>(), ["access"]);
        let new_access = obj["access"].as_str().unwrap();
        let c = claims(new_access);
        assert_eq!(c["token_type"], "access");
        assert_ne!(c["jti"], claims(&access)["jti"]);
        assert_eq!(c["user_id"], claims(&access)["user_id"]);
        assert_eq!(app.me(new_access).await.status, 200);
    }
    // Without rotation the same refresh token keeps working.
    assert_eq!(app.refresh(&refresh).await.status, 200);
}

#[tokio::test]
async fn refresh_refuses_bad_tokens_with_simple_jwt_messages() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (refresh, access) = app.login("alice").await;
    let now = chrono::Utc::now().timestamp();
    let mut tampered = refresh.clone();
    tampered.truncate(refresh.len() - 3);
    tampered.push_str("AAA");
    let expired = forged("refresh", json!(id.to_string()), now - 7200, now - 60);
    let cases = [
        (access.as_str(), "Token has wrong type"),
        (tampered.as_str(), "Token is invalid"),
        ("abc", "Token is invalid"),
        (expired.as_str(), "Token is expired"),
    ];
    for (token, message) in cases {
        app.refresh(token)
            .await
            .assert_401(json!({"detail": message, "code": "token_not_valid"}));
    }
    // DRF's CharField reads a number as its text: an invalid token, not a 400.
    app.post_json("/api/token/refresh/", json!({"refresh": 123}))
        .await
        .assert_401(json!({"detail": "Token is invalid", "code": "token_not_valid"}));
    let a = app.post_json("/api/token/refresh/", json!({})).await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"refresh": ["This field is required."]}))
    );
    let a = app
        .post_json("/api/token/refresh/", json!({"refresh": null}))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"refresh": ["This field may not be null."]}))
    );
    // The token in the Authorization header instead of the body is not read.
    let a = Answer::from(
        app.client
            .post(app.url("/api/token/refresh/"))
            .header("authorization", format!("Bearer {refresh}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (400, json!({"refresh": ["This field is required."]}))
    );
}

#[tokio::test]
async fn refresh_for_an_inactive_or_deleted_user_is_refused() {
    let app = spawn_app().await;
    let carol = app.register("carol").await["id"].as_i64().unwrap();
    let mallory = app.register("mallory").await["id"].as_i64().unwrap();
    let (carol_refresh, _) = app.login("carol").await;
    let (mallory_refresh, _) = app.login("mallory").await;
    app.set_active(carol, false).await;
    app.delete_user(mallory).await;
    let expected = json!({"detail": "No active account found for the given token.", "code": "no_active_account"});
    app.refresh(&carol_refresh)
        .await
        .assert_401(expected.clone());
    app.refresh(&mallory_refresh)
        .await
        .assert_401(expected.clone());
    // A refresh token with no usable user id is refused the same way.
    let now = chrono::Utc::now().timestamp();
    app.refresh(&forged("refresh", json!("not-a-number"), now, now + 60))
        .await
        .assert_401(expected);
}

#[tokio::test]
async fn rotation_with_blacklist() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
        ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", "true"),
    ])
    .await;
    app.register("rita").await;
    let (r1, a1) = app.login("rita").await;
    let a = app.refresh(&r1).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let keys: Vec<&String> = a.json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access", "refresh"]);
    let r2 = a.json["refresh"].as_str().unwrap().to_owned();
    let (c1, c2) = (claims(&r1), claims(&r2));
    assert_ne!(c1["jti"], c2["jti"]);
    assert_eq!(c1["user_id"], c2["user_id"]);
    assert_eq!(
        c2["exp"].as_i64().unwrap() - c2["iat"].as_i64().unwrap(),
        86400
    );
    let blacklisted = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    app.refresh(&r1).await.assert_401(blacklisted.clone());
    app.post_form("/api/token/verify/", &[("token", &r1)])
        .await
        .assert_401(blacklisted.clone());
    let a = app
        .post_form("/api/v1/auth/jwt/refresh/", &[("refresh", &r2)])
        .await;
    assert_eq!(a.status, 200);
    assert!(a.json["refresh"].is_string());
    // Access tokens are not affected by the blacklist.
    assert_eq!(app.me(&a1).await.status, 200);
}

#[tokio::test]
async fn rotation_without_blacklist_keeps_the_old_token_valid() {
    // Simple JWT's rule (reuse detection off, so no grace replay): the old
    // token keeps minting new pairs, each one different and usable.
    let app = spawn_app_with(&[
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
        ("TESSERA__JWT__REUSE_DETECTION", "false"),
    ])
    .await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let first = app.refresh(&r1).await;
    let second = app.refresh(&r1).await;
    assert_eq!(
        (first.status.as_u16(), second.status.as_u16()),
        (200, 200),
        "{}",
        second.text
    );
    let (r2, r3) = (
        first.json["refresh"].as_str().unwrap(),
        second.json["refresh"].as_str().unwrap(),
    );
    assert_ne!(r2, r3, "a new pair each time, not a replay");
    assert_ne!(claims(r2)["jti"], claims(r3)["jti"]);
    for r in [&r1[..], r2, r3] {
        assert_eq!(app.refresh(r).await.status, 200);
    }
}

#[tokio::test]
async fn leeway_tolerates_clock_skew() {
    let app = spawn_app_with(&[("TESSERA__JWT__LEEWAY", "30s")]).await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    let just_expired = forged("refresh", json!(id.to_string()), now - 100, now - 5);
    assert_eq!(app.refresh(&just_expired).await.status, 200);
    let long_expired = forged("refresh", json!(id.to_string()), now - 100, now - 60);
    assert_eq!(
        app.refresh(&long_expired).await.json["detail"],
        "Token is expired"
    );
}
