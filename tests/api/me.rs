use serde_json::json;

use crate::helpers::*;

fn refused(message: &str) -> serde_json::Value {
    json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}]
    })
}

#[tokio::test]
async fn me_with_a_bearer_token() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let (_, access) = app.login("alice").await;
    for path in ["/api/v1/auth/users/me/", "/api/v1/auth/users/me"] {
        let a = app.get(path, Some(&format!("Bearer {access}"))).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.text,
            format!(
                r#"{{"email":"alice@example.com","id":{},"username":"alice"}}"#,
                user["id"]
            )
        );
    }
    // Repeated spaces collapse, as Python's split().
    let a = app
        .get(
            "/api/v1/auth/users/me/",
            Some(&format!("Bearer    {access}")),
        )
        .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn me_without_usable_credentials() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    let bad_header = json!({"detail": "Authorization header must contain two space-delimited values", "code": "bad_authorization_header"});
    let lowercase = format!("bearer {access}");
    let jwt = format!("JWT {access}");
    let cases: Vec<(Option<&str>, serde_json::Value)> = vec![
        (None, not_provided.clone()),
        (Some(""), not_provided.clone()),
        (Some(&lowercase), not_provided.clone()),
        (Some(&jwt), not_provided.clone()),
        (Some("Basic YWxpY2U6eA=="), not_provided.clone()),
        (Some("Bearer"), bad_header.clone()),
        (Some("Bearer a b"), bad_header.clone()),
        (Some("Bearer not.a.jwt"), refused("Token is invalid")),
    ];
    for (header, body) in cases {
        app.get("/api/v1/auth/users/me/", header)
            .await
            .assert_401(body);
    }
    app.me(&refresh)
        .await
        .assert_401(refused("Token has wrong type"));
    // Two Authorization headers are joined as a WSGI server does: malformed.
    let a = Answer::from(
        app.client
            .get(app.url("/api/v1/auth/users/me/"))
            .header("authorization", format!("Bearer {access}"))
            .header(
                "authorization",
                "Token 0b99d2987c9e0306e92165d9bc75c7b5bea96010",
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    a.assert_401(bad_header);
}

#[tokio::test]
async fn me_refuses_hostile_access_tokens() {
    let app = spawn_app().await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    let now = chrono::Utc::now().timestamp();
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let claims_with = |extra: serde_json::Value| {
        let mut c = json!({"token_type": "access", "exp": now + 300, "iat": now, "jti": "1774dec69078454a9dafb8aa5b76d373", "user_id": alice.to_string()});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let parts: Vec<&str> = access.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let forged_payload =
        b64.encode(serde_json::to_vec(&claims_with(json!({"user_id": bob.to_string()}))).unwrap());
    let cases = [
        // Payload edited, signature kept.
        (
            format!("{}.{}.{}", parts[0], forged_payload, parts[2]),
            "Token is invalid",
        ),
        // alg none.
        (
            format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]),
            "Token is invalid",
        ),
        // Signed with another key.
        (
            sign_hs256(
                "another-key-another-key-another-key-0123",
                header,
                &claims_with(json!({})),
            ),
            "Token is invalid",
        ),
        // HS512 with our key: only the configured algorithm is allowed.
        (
            {
                let m = format!(
                    "{}.{}",
                    b64.encode(r#"{"alg":"HS512","typ":"JWT"}"#),
                    parts[1]
                );
                let sig = tessera::tokens::SigningKey::hmac(
                    tessera::config::JwtAlgorithm::HS512,
                    TEST_KEY.as_bytes(),
                )
                .sign(m.as_bytes());
                format!("{m}.{sig}")
            },
            "Token is invalid",
        ),
        (
            sign_hs256(
                TEST_KEY,
                header,
                &claims_with(json!({"exp": now - 1, "iat": now - 301})),
            ),
            "Token is expired",
        ),
        // exp as a numeric string: Simple JWT answers 500; we refuse the token.
        (
            sign_hs256(
                TEST_KEY,
                header,
                &claims_with(json!({"exp": (now + 300).to_string()})),
            ),
            "Token is invalid",
        ),
        (
            sign_hs256(TEST_KEY, header, &claims_with(json!({"iat": now + 3600}))),
            "Token is invalid",
        ),
        (
            sign_hs256(TEST_KEY, header, &claims_with(json!({"nbf": now + 3600}))),
            "Token is invalid",
        ),
        (
            sign_hs256(
                TEST_KEY,
                header,
                &claims_with(json!({"token_type": "sliding"})),
            ),
            "Token has wrong type",
        ),
        (
            sign_hs256(TEST_KEY, header, &claims_with(json!({"token_type": null}))),
            "Token has no type",
        ),
        (
            sign_hs256(TEST_KEY, header, &claims_with(json!({"jti": null}))),
            "Token has no id",
        ),
        (
            sign_hs256(TEST_KEY, header, &claims_with(json!({"exp": null}))),
            "Token has no 'exp' claim",
        ),
    ];
    for (token, message) in cases {
        app.me(&token).await.assert_401(refused(message));
    }
}

#[tokio::test]
async fn me_resolves_the_user_as_simple_jwt_does() {
    let app = spawn_app().await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    let carol = app.register("carol").await["id"].as_i64().unwrap();
    let mallory = app.register("mallory").await["id"].as_i64().unwrap();
    let now = chrono::Utc::now().timestamp();
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let token = |user_id: serde_json::Value| {
        let mut c = json!({"token_type": "access", "exp": now + 300, "iat": now, "jti": "96f10b42dfd34e3688ce3a91df2f64b0"});
        if !user_id.is_null() {
            c["user_id"] = user_id;
        }
        sign_hs256(TEST_KEY, header, &c)
    };
    // user_id as a JSON number is accepted too.
    let a = app.me(&token(json!(alice))).await;
    assert_eq!(
        (a.status.as_u16(), a.json["username"].clone()),
        (200, json!("alice"))
    );
    app.me(&token(serde_json::Value::Null))
        .await
        .assert_401(json!({"detail": "Token contained no recognizable user identification", "code": "token_not_valid"}));
    let (_, carol_access) = app.login("carol").await;
    let (_, mallory_access) = app.login("mallory").await;
    app.set_active(carol, false).await;
    app.delete_user(mallory).await;
    app.me(&carol_access)
        .await
        .assert_401(json!({"detail": "User is inactive", "code": "user_inactive"}));
    app.me(&mallory_access)
        .await
        .assert_401(json!({"detail": "User not found", "code": "user_not_found"}));
}

#[tokio::test]
async fn auth_header_types_are_configurable() {
    let app = spawn_app_with(&[("TESSERA__JWT__AUTH_HEADER_TYPES", "Bearer,JWT")]).await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    for kw in ["Bearer", "JWT"] {
        let a = app
            .get("/api/v1/auth/users/me/", Some(&format!("{kw} {access}")))
            .await;
        assert_eq!(a.status, 200, "{kw}");
    }
    let a = app
        .get("/api/v1/auth/users/me/", Some(&format!("jwt {access}")))
        .await;
    assert_eq!(a.status, 401, "keywords are case-sensitive");
}

#[tokio::test]
async fn whoami_with_and_without_the_database() {
    let app = spawn_app().await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    let bearer = format!("Bearer {access}");
    let a = app.get("/api/v1/whoami/", Some(&bearer)).await;
    assert_eq!(a.text, format!(r#"{{"id":{alice},"username":"alice"}}"#));
    let a = app.get("/api/v1/whoami-stateless/", Some(&bearer)).await;
    assert_eq!(
        a.json,
        json!({"user_id": alice.to_string()}),
        "the claim as issued: a string"
    );
    let now = chrono::Utc::now().timestamp();
    let numeric = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "96f10b42dfd34e3688ce3a91df2f64b0", "user_id": alice}),
    );
    let a = app
        .get(
            "/api/v1/whoami-stateless/",
            Some(&format!("Bearer {numeric}")),
        )
        .await;
    assert_eq!(a.json, json!({"user_id": alice}));
    // No database: a deleted user's token still names them here, not on whoami.
    app.delete_user(alice).await;
    assert_eq!(
        app.get("/api/v1/whoami-stateless/", Some(&bearer))
            .await
            .status,
        200
    );
    app.get("/api/v1/whoami/", Some(&bearer))
        .await
        .assert_401(json!({"detail": "User not found", "code": "user_not_found"}));
    app.get("/api/v1/whoami-stateless/", None)
        .await
        .assert_401(json!({"detail": "Authentication credentials were not provided."}));
    let no_user = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "access", "exp": now + 60, "iat": now, "jti": "96f10b42dfd34e3688ce3a91df2f64b0"}),
    );
    app.get("/api/v1/whoami-stateless/", Some(&format!("Bearer {no_user}")))
        .await
        .assert_401(json!({"detail": "Token contained no recognizable user identification", "code": "token_not_valid"}));
}
