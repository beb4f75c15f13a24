//! Opaque `Authorization: Token <key>` sessions, beside JWT.

use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::*;

const INVALID: &str = "Invalid token.";
const LOGIN_FAILED: &str = "Unable to log in with provided credentials.";

#[tokio::test]
async fn each_login_gets_its_own_key_and_only_digests_are_stored() {
    let app = spawn_app().await;
    app.register("alice").await;
    let mut keys = Vec::new();
    for path in [
        "/auth/token/login/",
        "/auth/token/login",
        "/api/v1/auth/token/login/",
    ] {
        let a = app
            .post_multipart(path, &[("username", "alice"), ("password", PASSWORD)])
            .await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        let key = a.json["auth_token"].as_str().unwrap().to_owned();
        assert_eq!(key.len(), 40);
        assert!(
            key.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        keys.push(key);
    }
    let distinct: std::collections::HashSet<&String> = keys.iter().collect();
    assert_eq!(distinct.len(), 3, "a new key per login");
    for k in &keys {
        assert_eq!(
            app.get("/api/v1/auth/users/me/", Some(&token(k)))
                .await
                .status,
            200
        );
    }
    let rows = entity::auth_tokens::Entity::find()
        .all(app.service.database())
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert!(
            !keys.contains(&row.digest),
            "the key itself is never stored"
        );
        assert!(
            keys.iter()
                .any(|k| tessera::opaque::digest(k) == row.digest)
        );
    }
}

#[tokio::test]
async fn login_failures_all_look_the_same() {
    let app = spawn_app().await;
    let ivan = app.register("ivan").await["id"].as_i64().unwrap();
    app.register("alice").await;
    app.set_active(ivan, false).await;
    let failed = json!({"non_field_errors": [LOGIN_FAILED]});
    for body in [
        json!({"username": "alice", "password": "wrong"}),
        json!({"username": "nobody", "password": "wrong"}),
        json!({}),
        json!({"username": "ivan", "password": PASSWORD}),
        json!({"username": "alice"}),
        json!({"username": "", "password": ""}),
    ] {
        let a = app.post_json("/auth/token/login/", body.clone()).await;
        assert_eq!(
            (a.status.as_u16(), a.json.clone()),
            (400, failed.clone()),
            "{body}"
        );
    }
    let a = app
        .post_raw("/auth/token/login/", Some("application/json"), "{bad")
        .await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error")
    );
    let a = app
        .post_raw("/auth/token/login/", Some("text/plain"), "x")
        .await;
    assert_eq!(a.status, 415);
    let a = app.get("/auth/token/login/", None).await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (405, json!({"detail": "Method \"GET\" not allowed."}))
    );
}

#[tokio::test]
async fn token_headers_as_drf_reads_them() {
    let app = spawn_app().await;
    let ivan = app.register("ivan").await["id"].as_i64().unwrap();
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let ivan_key = app.token_login("ivan", PASSWORD).await;
    app.set_active(ivan, false).await;
    let cases = [
        (
            "Token".to_owned(),
            json!({"detail": "Invalid token header. No credentials provided."}),
        ),
        (
            "Token a b".to_owned(),
            json!({"detail": "Invalid token header. Token string should not contain spaces."}),
        ),
        (
            "Token 0000000000000000000000000000000000000000".to_owned(),
            json!({"detail": INVALID}),
        ),
        (format!("Token {access}"), json!({"detail": INVALID})),
        (
            format!("Token {ivan_key}"),
            json!({"detail": "User inactive or deleted."}),
        ),
    ];
    for (header, body) in cases {
        app.get("/api/v1/whoami/", Some(&header))
            .await
            .assert_401(body);
    }
    // The stateless view takes only JWT: a Token header is no credential there.
    let key = app.token_login("alice", PASSWORD).await;
    app.get("/api/v1/whoami-stateless/", Some(&token(&key)))
        .await
        .assert_401(json!({"detail": "Authentication credentials were not provided."}));
    let a = app
        .get("/api/v1/whoami/", Some(&format!("TOKEN {key}")))
        .await;
    assert_eq!(
        a.json["username"], "alice",
        "the keyword is case-insensitive"
    );
}

/// DRF and Simple JWT read the header as bytes and split it with Python's
/// `bytes.split()`: on ASCII whitespace only; and DRF decodes a key as UTF-8.
#[tokio::test]
async fn the_header_is_split_on_ascii_whitespace_as_drf_splits_bytes() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    let send = |value: Vec<u8>| {
        let request = reqwest::Client::new()
            .get(app.url("/api/v1/whoami/"))
            .header(
                "authorization",
                reqwest::header::HeaderValue::from_bytes(&value).unwrap(),
            );
        async move { Answer::from(request.send().await.unwrap()).await }
    };
    let joined = |keyword: &str, separator: &[u8], credential: &str| {
        [keyword.as_bytes(), separator, credential.as_bytes()].concat()
    };
    // A non-breaking space (in UTF-8, or the byte Latin-1 gives it) is no
    // separator: keyword and credential make one word, no method's.
    for separator in [&b"\xc2\xa0"[..], b"\xa0"] {
        for (keyword, credential) in [("Bearer", &access), ("Token", &key)] {
            send(joined(keyword, separator, credential))
                .await
                .assert_401(json!({"detail": "Authentication credentials were not provided."}));
        }
    }
    // Tabs separate, as spaces do.
    for (keyword, credential) in [("Bearer", &access), ("Token", &key)] {
        let a = send(joined(keyword, b" \t ", credential)).await;
        assert_eq!(
            (a.status.as_u16(), &a.json["username"]),
            (200, &json!("alice"))
        );
    }
    send(b"Token \xff\xfe".to_vec()).await.assert_401(json!({
        "detail": "Invalid token header. Token string should not contain invalid characters."
    }));
    // A Bearer token that is not UTF-8 is one no key signed.
    let a = send(b"Bearer \xff\xfe".to_vec()).await;
    assert_eq!(
        (a.status.as_u16(), &a.json["code"]),
        (401, &json!("token_not_valid"))
    );
}

#[tokio::test]
async fn logout_ends_one_key_logoutall_ends_all() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let phone = app.token_login("alice", PASSWORD).await;
    let laptop = app.token_login("alice", PASSWORD).await;
    let not_provided = json!({"detail": "Authentication credentials were not provided."});
    app.call("POST", "/auth/token/logout/", None, None)
        .await
        .assert_401(not_provided.clone());
    app.call(
        "POST",
        "/auth/token/logout/",
        Some("Token 0000000000000000000000000000000000000000"),
        None,
    )
    .await
    .assert_401(json!({"detail": INVALID}));
    // This route takes only Token credentials: a Bearer header is none.
    app.call("POST", "/auth/token/logout/", Some(&bearer(&access)), None)
        .await
        .assert_401(not_provided);
    let a = app
        .call("GET", "/auth/token/logout/", Some(&token(&phone)), None)
        .await;
    assert_eq!(a.status, 405);
    let a = app
        .call("POST", "/auth/token/logout/", Some(&token(&phone)), None)
        .await;
    assert_eq!((a.status.as_u16(), a.text.as_str()), (204, ""));
    assert!(a.header("content-type").is_none());
    app.get("/api/v1/whoami/", Some(&token(&phone)))
        .await
        .assert_401(json!({"detail": INVALID}));
    assert_eq!(
        app.get("/api/v1/whoami/", Some(&token(&laptop)))
            .await
            .status,
        200,
        "other devices keep theirs"
    );
    let tablet = app.token_login("alice", PASSWORD).await;
    let a = app
        .call(
            "POST",
            "/api/v1/auth/token/logoutall/",
            Some(&bearer(&access)),
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    for k in [&laptop, &tablet] {
        app.get("/api/v1/whoami/", Some(&token(k)))
            .await
            .assert_401(json!({"detail": INVALID}));
    }
    let k = app.token_login("alice", PASSWORD).await;
    let a = app
        .call("POST", "/api/v1/auth/token/logout", Some(&token(&k)), None)
        .await;
    assert_eq!(a.status, 204);
    let a = app
        .call("POST", "/auth/token/logoutall/", Some(&token(&k)), None)
        .await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn keys_expire_after_the_configured_lifetime() {
    let app = spawn_app_with(&[("TESSERA__TOKEN__LIFETIME", "1s")]).await;
    app.register("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    assert_eq!(
        app.get("/api/v1/whoami/", Some(&token(&key))).await.status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.get("/api/v1/whoami/", Some(&token(&key)))
        .await
        .assert_401(json!({"detail": INVALID}));
    let rows = entity::auth_tokens::Entity::find()
        .all(app.service.database())
        .await
        .unwrap();
    assert!(rows.is_empty(), "an expired key is deleted when seen");
}

#[tokio::test]
async fn auth_methods_narrow_what_the_service_accepts() {
    let jwt_only = spawn_app_with(&[("TESSERA__AUTH__METHODS", "jwt")]).await;
    jwt_only.register("alice").await;
    let (_, access) = jwt_only.login("alice").await;
    let a = jwt_only
        .post_form(
            "/auth/token/login/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json.clone()),
        (404, json!({"detail": "Not found."}))
    );
    assert_eq!(
        jwt_only
            .get("/api/v1/whoami/", Some(&bearer(&access)))
            .await
            .status,
        200
    );
    jwt_only
        .get(
            "/api/v1/whoami/",
            Some("Token 0000000000000000000000000000000000000000"),
        )
        .await
        .assert_401(json!({"detail": "Authentication credentials were not provided."}));

    let token_only = spawn_app_with(&[("TESSERA__AUTH__METHODS", "token")]).await;
    token_only.register("alice").await;
    let key = token_only.token_login("alice", PASSWORD).await;
    assert_eq!(
        token_only
            .get("/api/v1/whoami/", Some(&token(&key)))
            .await
            .status,
        200
    );
    let a = token_only
        .post_form(
            "/api/token/",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(a.status, 404, "no JWTs are issued when JWT is off");
    let forged = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "access", "exp": chrono::Utc::now().timestamp() + 60, "iat": chrono::Utc::now().timestamp(), "jti": "96f10b42dfd34e3688ce3a91df2f64b0", "user_id": "1"}),
    );
    token_only
        .get("/api/v1/whoami/", Some(&bearer(&forged)))
        .await
        .assert_401(json!({"detail": "Authentication credentials were not provided."}));
}

#[tokio::test]
async fn the_spec_offers_both_schemes_per_route() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", None).await.json;
    let token_scheme = &doc["components"]["securitySchemes"]["Token"];
    assert_eq!(token_scheme["type"], "apiKey");
    assert_eq!(token_scheme["in"], "header");
    assert_eq!(token_scheme["name"], "Authorization");
    assert!(
        token_scheme["description"]
            .as_str()
            .unwrap()
            .contains("Token <key>")
    );
    let op = |path: &str, method: &str| {
        let paths = doc["paths"].as_object().unwrap();
        let key = paths
            .keys()
            .find(|k| k.trim_end_matches('/') == path)
            .unwrap_or_else(|| panic!("{path}"));
        paths[key][method].clone()
    };
    let schemes = |o: serde_json::Value| -> Vec<String> {
        o["security"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_object().unwrap().keys().cloned().collect::<Vec<_>>())
            .collect()
    };
    assert_eq!(
        schemes(op("/api/v1/auth/users/me", "get")),
        ["Bearer", "Token", "Cookie"]
    );
    assert_eq!(schemes(op("/auth/token/logout", "post")), ["Token"]);
    assert_eq!(schemes(op("/api/v1/whoami-stateless", "get")), ["Bearer"]);
    assert!(op("/api/v1/auth/users/{id}", "delete")["responses"]["403"].is_object());
}
