//! What tokens say about their user (`jwt.extra_claims` and friends), and
//! that a refresh reads it anew.

use serde_json::{Value, json};

use crate::helpers::*;

const ALL: &str = "username,email,is_staff,is_superuser,groups";

fn keys(claims: &Value) -> Vec<&str> {
    claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn by_default_tokens_carry_simple_jwts_claims_only() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (refresh, access) = app.login("alice").await;
    assert_eq!(
        keys(&claims(&access)),
        ["token_type", "exp", "iat", "jti", "user_id"]
    );
    assert_eq!(
        keys(&claims(&refresh)),
        ["token_type", "exp", "iat", "jti", "user_id"]
    );
}

#[tokio::test]
async fn each_user_claim_reaches_access_tokens_in_order() {
    for field in ["username", "email", "is_staff", "is_superuser", "groups"] {
        let app = spawn_app_with(&[("TESSERA__JWT__EXTRA_CLAIMS", field)]).await;
        let id = app.register("alice").await["id"].as_i64().unwrap();
        app.join_group(id, "ops").await;
        let (refresh, access) = app.login("alice").await;
        let c = claims(&access);
        assert_eq!(
            keys(&c),
            ["token_type", "exp", "iat", "jti", "user_id", field]
        );
        let expected = match field {
            "username" => json!("alice"),
            "email" => json!("alice@example.com"),
            "groups" => json!(["ops"]),
            _ => json!(false),
        };
        assert_eq!(c[field], expected, "{field}");
        assert!(
            claims(&refresh).get(field).is_none(),
            "{field} not in refresh tokens"
        );
        // Still a token every endpoint takes.
        assert_eq!(app.me(&access).await.status, 200);
    }
}

#[tokio::test]
async fn claims_are_named_as_configured_and_static_ones_added() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__EXTRA_CLAIMS", ALL),
        ("TESSERA__JWT__REFRESH_EXTRA_CLAIMS", "username"),
        ("TESSERA__JWT__CLAIM_NAMES__USERNAME", "preferred_username"),
        ("TESSERA__JWT__CLAIM_NAMES__GROUPS", "roles"),
        ("TESSERA__JWT__STATIC_CLAIMS__TENANT", "acme"),
        ("TESSERA__JWT__AUDIENCE", "api"),
    ])
    .await;
    let id = app.create_staff("boss").await;
    app.join_group(id, "ops").await;
    app.join_group(id, "admin").await;
    let (refresh, access) = app.login("boss").await;
    let c = claims(&access);
    assert_eq!(
        keys(&c),
        [
            "token_type",
            "exp",
            "iat",
            "jti",
            "user_id",
            "preferred_username",
            "email",
            "is_staff",
            "is_superuser",
            "roles",
            "tenant",
            "aud"
        ]
    );
    assert_eq!(c["preferred_username"], "boss");
    assert_eq!(c["roles"], json!(["admin", "ops"]), "sorted");
    assert_eq!(
        (c["is_staff"].clone(), c["is_superuser"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(c["tenant"], "acme");
    let r = claims(&refresh);
    assert_eq!(
        keys(&r),
        [
            "token_type",
            "exp",
            "iat",
            "jti",
            "user_id",
            "preferred_username",
            "tenant",
            "aud"
        ]
    );
    let a = app.refresh(&refresh).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        claims(a.json["access"].as_str().unwrap())["roles"],
        json!(["admin", "ops"])
    );
}

/// A change of groups (or of name) reaches the next access token a refresh
/// mints, whatever the rotation settings.
#[tokio::test]
async fn a_refresh_reads_the_users_current_values() {
    for (rotate, blacklist) in [("false", "false"), ("true", "false"), ("true", "true")] {
        let app = spawn_app_with(&[
            ("TESSERA__JWT__EXTRA_CLAIMS", "username,groups"),
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", rotate),
            ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", blacklist),
        ])
        .await;
        let id = app.register("alice").await["id"].as_i64().unwrap();
        let (refresh, access) = app.login("alice").await;
        assert_eq!(claims(&access)["groups"], json!([]));
        app.join_group(id, "ops").await;
        let a = app.refresh(&refresh).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let access = a.json["access"].as_str().unwrap();
        assert_eq!(claims(access)["groups"], json!(["ops"]), "rotate={rotate}");
        // And a removal, on the next refresh.
        let user = app.service.user(id).await.unwrap();
        app.service.remove_from_group(&user, "ops").await.unwrap();
        let next = a.json["refresh"].as_str().unwrap_or(&refresh).to_owned();
        let a = app.refresh(&next).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            claims(a.json["access"].as_str().unwrap())["groups"],
            json!([])
        );
    }
}

#[tokio::test]
async fn claim_settings_that_clash_are_refused_at_start() {
    let refused = [
        (
            "TESSERA__JWT__CLAIM_NAMES__USERNAME",
            "exp",
            "jwt.claim_names.username",
        ),
        (
            "TESSERA__JWT__CLAIM_NAMES__USERNAME",
            "user_id",
            "jwt.claim_names.username",
        ),
        (
            "TESSERA__JWT__CLAIM_NAMES__USERNAME",
            "email",
            "jwt.claim_names",
        ),
        (
            "TESSERA__JWT__CLAIM_NAMES__NICKNAME",
            "nick",
            "jwt.claim_names.nickname",
        ),
        (
            "TESSERA__JWT__STATIC_CLAIMS__JTI",
            "x",
            "jwt.static_claims.jti",
        ),
        (
            "TESSERA__JWT__STATIC_CLAIMS__GROUPS",
            "x",
            "jwt.static_claims.groups",
        ),
        (
            "TESSERA__JWT__EXTRA_CLAIMS",
            "username,password",
            "password",
        ),
        ("TESSERA__JWT__AUTH_TOKEN_CLASSES", "refresh", "refresh"),
        (
            "TESSERA__JWT__SLIDING_TOKEN_LIFETIME",
            "0s",
            "jwt.sliding_token_lifetime",
        ),
    ];
    for (key, value, named) in refused {
        let mut env = base_env("sqlite::memory:");
        env.insert(key.into(), value.into());
        let err = tessera::config::Settings::load_from(None, env)
            .err()
            .unwrap_or_else(|| panic!("{key}={value} was accepted"))
            .to_string();
        assert!(err.contains(named), "{key}={value}: {err}");
    }
    // A field under its own name may not be the user id claim either.
    let mut env = base_env("sqlite::memory:");
    env.insert("TESSERA__JWT__USER_ID_CLAIM".into(), "username".into());
    env.insert(
        "TESSERA__JWT__REFRESH_EXTRA_CLAIMS".into(),
        "username".into(),
    );
    let err = tessera::config::Settings::load_from(None, env)
        .expect_err("a user id claim named as a carried field was accepted")
        .to_string();
    assert!(err.contains("jwt.refresh_extra_claims"), "{err}");
}
