use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn obtain_pair_in_every_body_format_at_both_paths() {
    let app = spawn_app().await;
    let created = app
        .post_multipart(
            "/api/v1/auth/users/",
            &[
                ("email", "alice@example.com"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let fields = [("username", "alice"), ("password", PASSWORD)];
    for path in [
        "/api/token/",
        "/api/v1/auth/jwt/create/",
        "/api/token",
        "/api/v1/auth/jwt/create",
    ] {
        let answers = [
            app.post_json(path, json!({"username": "alice", "password": PASSWORD}))
                .await,
            app.post_form(path, &fields).await,
            app.post_multipart(path, &fields).await,
        ];
        for a in answers {
            assert_eq!(a.status, 200, "{path}: {}", a.text);
            assert_eq!(a.header("content-type"), Some("application/json"));
            let keys: Vec<&String> = a.json.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["refresh", "access"], "Simple JWT's order");
        }
    }
}

#[tokio::test]
async fn issued_tokens_look_like_simple_jwt_tokens() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    for token in [&refresh, &access] {
        assert!(
            token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."),
            "{token}"
        );
    }
    let (r, a) = (claims(&refresh), claims(&access));
    assert_eq!(a["token_type"], "access");
    assert_eq!(r["token_type"], "refresh");
    assert_eq!(
        a["user_id"],
        json!(user["id"].as_i64().unwrap().to_string())
    );
    assert_eq!(r["user_id"], a["user_id"]);
    assert_eq!(a["iat"], r["iat"], "a pair shares iat");
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 300);
    assert_eq!(
        r["exp"].as_i64().unwrap() - r["iat"].as_i64().unwrap(),
        86400
    );
    for c in [&a, &r] {
        let jti = c["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(
            jti.chars()
                .all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch))
        );
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["token_type", "exp", "iat", "jti", "user_id"]);
    }
    assert_ne!(a["jti"], r["jti"]);
}

#[tokio::test]
async fn bad_credentials_get_one_answer() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let ivan_id = app.register("ivan").await["id"].as_i64().unwrap();
    app.set_active(ivan_id, false).await;
    let expected = json!({"detail": "No active account found with the given credentials"});
    for (username, password) in [
        ("alice", "wrong"),
        ("nobody", "wrong"),
        ("nobody", PASSWORD),
        ("ivan", PASSWORD),
        ("Alice", PASSWORD),
    ] {
        let a = app
            .post_form(
                "/api/token/",
                &[("username", username), ("password", password)],
            )
            .await;
        a.assert_401(expected.clone());
    }
    assert!(user["id"].is_i64());
}

#[tokio::test]
async fn missing_and_blank_fields() {
    let app = spawn_app().await;
    let a = app.post_json("/api/token/", json!({})).await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
    let a = app
        .post_json("/api/token/", json!({"username": "", "password": ""}))
        .await;
    assert_eq!(
        a.json,
        json!({"username": ["This field may not be blank."], "password": ["This field may not be blank."]})
    );
    let a = app
        .post_json("/api/token/", json!({"username": null, "password": "x"}))
        .await;
    assert_eq!(a.json, json!({"username": ["This field may not be null."]}));
    // curl -d '{...}' without a JSON content type: one odd form key.
    let a = app
        .post_raw(
            "/api/token/",
            Some("application/x-www-form-urlencoded"),
            r#"{"username":"alice","password":"x"}"#,
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
}

#[tokio::test]
async fn update_last_login_when_configured() {
    use sea_orm::EntityTrait;
    let app = spawn_app_with(&[("TESSERA__JWT__UPDATE_LAST_LOGIN", "true")]).await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let before = entity::users::Entity::find_by_id(id)
        .one(app.service.database())
        .await
        .unwrap()
        .unwrap();
    assert!(before.last_login.is_none());
    app.login("alice").await;
    let after = entity::users::Entity::find_by_id(id)
        .one(app.service.database())
        .await
        .unwrap()
        .unwrap();
    assert!(after.last_login.is_some());

    let plain = spawn_app().await;
    let id = plain.register("bob").await["id"].as_i64().unwrap();
    plain.login("bob").await;
    let row = entity::users::Entity::find_by_id(id)
        .one(plain.service.database())
        .await
        .unwrap()
        .unwrap();
    assert!(row.last_login.is_none(), "off by default, as Simple JWT");
}

#[tokio::test]
async fn configured_lifetimes_audience_and_issuer_are_used() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__ACCESS_TOKEN_LIFETIME", "10m"),
        ("TESSERA__JWT__REFRESH_TOKEN_LIFETIME", "2d"),
        ("TESSERA__JWT__AUDIENCE", "my-api"),
        ("TESSERA__JWT__ISSUER", "tessera-test"),
    ])
    .await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    let (a, r) = (claims(&access), claims(&refresh));
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 600);
    assert_eq!(
        r["exp"].as_i64().unwrap() - r["iat"].as_i64().unwrap(),
        172800
    );
    assert_eq!(a["aud"], "my-api");
    assert_eq!(a["iss"], "tessera-test");
    assert_eq!(app.me(&access).await.status, 200);
    // A token without the audience, signed with the right key, is refused.
    let now = chrono::Utc::now().timestamp();
    let no_aud = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "0123456789abcdef0123456789abcdef", "user_id": a["user_id"], "iss": "tessera-test"}),
    );
    let ans = app.me(&no_aud).await;
    assert_eq!(ans.status, 401);
    assert_eq!(ans.json["messages"][0]["message"], "Token is invalid");
}

#[tokio::test]
async fn a_failed_login_costs_one_argon2_verification_whatever_the_cause() {
    // Timing cannot tell an unknown user from a wrong password or an
    // inactive account when each costs exactly the same work.
    let app = spawn_app().await;
    app.register("alice").await;
    app.register("ivan").await;
    let ivan = app
        .post_json(
            "/api/token/",
            json!({"username": "ivan", "password": PASSWORD}),
        )
        .await;
    assert_eq!(ivan.status, 200);
    let ivan_id: i64 = claims(ivan.json["access"].as_str().unwrap())["user_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.set_active(ivan_id, false).await;
    let cases = [
        ("nobody", PASSWORD, 401),
        ("alice", "wrong-password", 401),
        ("ivan", PASSWORD, 401),
        ("alice", PASSWORD, 200),
    ];
    for path in ["/api/token/", "/auth/token/login/"] {
        for (username, password, ok_status) in cases {
            let before = app.service.password_hasher().argon2_runs();
            let a = app
                .post_json(path, json!({"username": username, "password": password}))
                .await;
            let expected = if path == "/api/token/" {
                ok_status
            } else if ok_status == 200 {
                200
            } else {
                400
            };
            assert_eq!(a.status, expected, "{path} {username}: {}", a.text);
            assert_eq!(
                app.service.password_hasher().argon2_runs() - before,
                1,
                "{path} {username}: one argon2 verification"
            );
        }
    }
}
