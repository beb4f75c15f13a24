//! Simple JWT's sliding tokens: checked against the answers the real Simple
//! JWT gave to tokens it minted (tests/fixtures/simplejwt_sliding_vectors.json,
//! made by make_sliding_vectors.py), and through Tessera's own flows.

use serde_json::{Value, json};

use crate::helpers::*;

const OBTAIN: &str = "/api/token/sliding/";
const REFRESH: &str = "/api/token/sliding/refresh/";
const BLACKLIST: &str = "/api/token/sliding/blacklist/";
const ME: &str = "/api/v1/auth/users/me/";

fn keys(claims: &Value) -> Vec<String> {
    claims.as_object().unwrap().keys().cloned().collect()
}

/// Tessera configured as the fixture's Simple JWT was, with its user.
async fn as_the_fixture(doc: &Value) -> TestApp {
    let s = &doc["simplejwt_settings"];
    let lifetime = format!("{}s", s["SLIDING_TOKEN_LIFETIME_SECONDS"]);
    let refresh = format!("{}s", s["SLIDING_TOKEN_REFRESH_LIFETIME_SECONDS"]);
    let app = spawn_app_with(&[
        (
            "TESSERA__JWT__SIGNING_KEY",
            s["SIGNING_KEY"].as_str().unwrap(),
        ),
        ("TESSERA__JWT__SLIDING_TOKEN_LIFETIME", &lifetime),
        ("TESSERA__JWT__SLIDING_TOKEN_REFRESH_LIFETIME", &refresh),
        ("TESSERA__JWT__ACCESS_TOKEN_LIFETIME", &lifetime),
        ("TESSERA__JWT__AUTH_TOKEN_CLASSES", "access,sliding"),
    ])
    .await;
    let user = &doc["user"];
    app.insert_user(
        user["id"].as_i64(),
        user["username"].as_str().unwrap(),
        "",
        "!",
    )
    .await;
    app
}

#[tokio::test]
async fn simple_jwts_sliding_tokens_get_simple_jwts_answers() {
    let doc = fixture_json("simplejwt_sliding_vectors.json");
    let app = as_the_fixture(&doc).await;
    let tokens = doc["tokens"].as_object().unwrap();
    // Simple JWT blacklisted this one in its own database; here, through
    // Tessera's endpoint.
    let a = app
        .post_json(BLACKLIST, json!({"token": tokens["blacklisted"]}))
        .await;
    assert_eq!(
        (a.status.as_u16(), &a.json),
        (200, &json!({})),
        "{}",
        a.text
    );

    for (name, expected) in doc["refresh"].as_object().unwrap() {
        let body = match tokens.get(name) {
            Some(t) => json!({ "token": t }),
            None => json!({}),
        };
        let a = app.post_json(REFRESH, body).await;
        assert_eq!(
            a.status,
            expected["status"].as_u64().unwrap() as u16,
            "refresh {name}: {}",
            a.text
        );
        if a.status == 200 {
            // Same claims in the same order; the same jti and refresh_exp;
            // exp and iat moved on.
            let ours = claims(a.json["token"].as_str().unwrap());
            let theirs = &expected["claims"];
            assert_eq!(keys(&ours), keys(theirs), "refresh {name}");
            for same in ["token_type", "jti", "refresh_exp", "user_id"] {
                assert_eq!(ours[same], theirs[same], "refresh {name}: {same}");
            }
            let lifetime = theirs["exp"].as_i64().unwrap() - theirs["iat"].as_i64().unwrap();
            assert_eq!(
                ours["exp"].as_i64().unwrap() - ours["iat"].as_i64().unwrap(),
                lifetime
            );
            assert!(ours["iat"].as_i64() >= doc["claims"][name]["iat"].as_i64());
        } else {
            assert_eq!(a.json, expected["body"], "refresh {name}");
        }
    }

    for (name, expected) in doc["verify"].as_object().unwrap() {
        let a = app
            .post_json("/api/token/verify/", json!({"token": tokens[name]}))
            .await;
        if name == "blacklisted" {
            // Tessera refuses a blacklisted token at verify always (Simple
            // JWT only with BLACKLIST_AFTER_ROTATION).
            assert_eq!(a.status, 401);
            assert_eq!(
                a.json,
                json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
            );
            continue;
        }
        assert_eq!(
            a.status,
            expected["status"].as_u64().unwrap() as u16,
            "verify {name}"
        );
        assert_eq!(a.json, expected["body"], "verify {name}");
    }

    for (name, expected) in doc["authenticate"].as_object().unwrap() {
        let a = app
            .get(ME, Some(&bearer(tokens[name].as_str().unwrap())))
            .await;
        assert_eq!(
            a.status,
            expected["status"].as_u64().unwrap() as u16,
            "authenticate {name}: {}",
            a.text
        );
        if a.status == 200 {
            assert_eq!(a.json["id"], expected["body"]["id"], "authenticate {name}");
            assert_eq!(a.json["username"], expected["body"]["username"]);
        } else {
            assert_eq!(a.json, expected["body"], "authenticate {name}");
        }
    }
}

#[tokio::test]
async fn a_login_gives_a_sliding_token_shaped_as_simple_jwts() {
    let doc = fixture_json("simplejwt_sliding_vectors.json");
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let a = app
        .post_json(OBTAIN, json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(keys(&a.json), ["token"]);
    let token = a.json["token"].as_str().unwrap().to_owned();
    let c = claims(&token);
    assert_eq!(keys(&c), keys(&doc["login"]["ok"]["claims"]));
    assert_eq!(c["token_type"], "sliding");
    assert_eq!(c["user_id"], id.to_string());
    let iat = c["iat"].as_i64().unwrap();
    assert_eq!(
        c["exp"].as_i64().unwrap() - iat,
        300,
        "SLIDING_TOKEN_LIFETIME's default"
    );
    assert_eq!(
        c["refresh_exp"].as_i64().unwrap() - iat,
        86_400,
        "SLIDING_TOKEN_REFRESH_LIFETIME's default"
    );

    let wrong = app
        .post_json(OBTAIN, json!({"username": "alice", "password": "nope"}))
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json, doc["login"]["wrong_password"]["body"]);
    let a = app.post_json(OBTAIN, json!({})).await;
    assert_eq!(
        a.json,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );

    // With the default AUTH_TOKEN_CLASSES (access only), not a credential.
    let a = app.me(&token).await;
    a.assert_401(json!({
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token has wrong type"}],
    }));
    // Nor is it a refresh token, nor is a refresh token a sliding one.
    let a = app.refresh(&token).await;
    assert_eq!(
        a.json,
        json!({"detail": "Token has wrong type", "code": "token_not_valid"})
    );
    let (refresh, _) = app.login("alice").await;
    let a = app.post_json(REFRESH, json!({"token": refresh})).await;
    assert_eq!(
        a.json,
        json!({"detail": "Token has wrong type", "code": "token_not_valid"})
    );
    let a = app.post_json(BLACKLIST, json!({"token": refresh})).await;
    assert_eq!(
        a.json,
        json!({"detail": "Token has wrong type", "code": "token_not_valid"})
    );
    let a = app.post_json(BLACKLIST, json!({"token": "x"})).await;
    assert_eq!(
        a.json,
        json!({"detail": "Token is invalid", "code": "token_not_valid"})
    );
    let a = app.post_json(BLACKLIST, json!({})).await;
    assert_eq!(a.json, json!({"token": ["This field is required."]}));
}

#[tokio::test]
async fn sliding_tokens_authenticate_when_configured_and_stop_when_revoked() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__AUTH_TOKEN_CLASSES", "sliding"),
        ("TESSERA__JWT__EXTRA_CLAIMS", "username,groups"),
    ])
    .await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let token = app.sliding_login("alice").await;
    assert_eq!(claims(&token)["username"], "alice");
    let a = app.me(&token).await;
    assert_eq!((a.status.as_u16(), &a.json["id"]), (200, &json!(id)));
    let a = app
        .get("/api/v1/auth/forward/", Some(&bearer(&token)))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-auth-username"), Some("alice"));
    // Access tokens are not accepted now.
    let (_, access) = app.login("alice").await;
    let a = app.me(&access).await;
    assert_eq!(a.json["messages"][0]["token_class"], "SlidingToken");
    assert_eq!(a.json["messages"][0]["message"], "Token has wrong type");

    // A refresh carries the user's current groups, keeps jti and refresh_exp.
    app.join_group(id, "ops").await;
    let a = app.post_json(REFRESH, json!({"token": token})).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let slid = a.json["token"].as_str().unwrap().to_owned();
    let (before, after) = (claims(&token), claims(&slid));
    assert_eq!(after["groups"], json!(["ops"]));
    assert_eq!(
        (&after["jti"], &after["refresh_exp"]),
        (&before["jti"], &before["refresh_exp"])
    );

    // Blacklisting one reaches every refresh of it (they share the jti),
    // everywhere; a second blacklisting is refused as Simple JWT's is.
    let a = app.post_json(BLACKLIST, json!({"token": token})).await;
    assert_eq!(a.status, 200);
    // Its row outlives the last refresh any holder could have made, so the
    // purge cannot bring one back.
    let row = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::token_blacklist::Entity::find()
            .filter(entity::token_blacklist::Column::Jti.eq(before["jti"].as_str().unwrap()))
            .one(app.service.database())
            .await
            .unwrap()
            .unwrap()
    };
    let last_possible_exp = before["refresh_exp"].as_i64().unwrap() + 300;
    assert!(row.expires_at.timestamp() >= last_possible_exp, "{row:?}");
    let a = app.post_json(BLACKLIST, json!({"token": slid})).await;
    assert_eq!(
        a.json,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
    );
    for t in [&token, &slid] {
        let a = app.post_json(REFRESH, json!({"token": t})).await;
        assert_eq!(
            a.json,
            json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
        );
        let a = app.me(t).await;
        a.assert_401(json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{"token_class": "SlidingToken", "token_type": "sliding", "message": "Token is blacklisted"}],
        }));
        let a = app.get("/api/v1/auth/forward/", Some(&bearer(t))).await;
        assert_eq!(a.status, 401);
        let a = app
            .post_json("/api/token/verify/", json!({"token": t}))
            .await;
        assert_eq!(a.status, 401);
    }

    // Beyond Simple JWT: no refresh for a user who changed password, is
    // inactive, or is gone.
    let token = app.sliding_login("alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let a = app
        .post_json(
            "/api/v1/auth/users/set_password/",
            json!({"current_password": PASSWORD, "new_password": "An0ther-Good-Pass"}),
        )
        .await;
    assert_eq!(a.status, 401, "needs credentials");
    let a = app
        .client
        .post(app.url("/api/v1/auth/users/set_password/"))
        .header("authorization", bearer(&token))
        .json(&json!({"current_password": PASSWORD, "new_password": "An0ther-Good-Pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 204);
    let a = app.post_json(REFRESH, json!({"token": token})).await;
    assert_eq!(
        a.json,
        json!({"detail": "The user's password has been changed.", "code": "password_changed"})
    );
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    let token = app.sliding_login("bob").await;
    app.set_active(bob, false).await;
    let no_account = json!({"detail": "No active account found for the given token.", "code": "no_active_account"});
    assert_eq!(
        app.post_json(REFRESH, json!({"token": token})).await.json,
        no_account
    );
    app.delete_user(bob).await;
    assert_eq!(
        app.post_json(REFRESH, json!({"token": token})).await.json,
        no_account
    );
}

#[tokio::test]
async fn concurrent_blacklistings_of_one_token_succeed_once() {
    let app = spawn_app().await;
    app.register("alice").await;
    app.warm_connections(8).await;
    let token = app.sliding_login("alice").await;
    let tries = (0..8).map(|_| app.post_json(BLACKLIST, json!({"token": token})));
    let ok = futures::future::join_all(tries)
        .await
        .iter()
        .filter(|a| a.status == 200)
        .count();
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn sliding_endpoints_go_with_jwt() {
    let app = spawn_app_with(&[("TESSERA__AUTH__METHODS", "token")]).await;
    for path in [OBTAIN, REFRESH, BLACKLIST] {
        let a = app.post_json(path, json!({})).await;
        assert_eq!(a.status, 404, "{path}");
    }
}
