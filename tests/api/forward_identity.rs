//! Forward auth's identity headers (from the token's claims) and required
//! groups.

use crate::helpers::*;

const PATH: &str = "/api/v1/auth/forward/";

async fn forward(app: &TestApp, path: &str, auth: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = app.client.get(app.url(path)).header("authorization", auth);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Answer::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn identity_headers_come_from_the_tokens_claims() {
    let app = spawn_app_with(&[
        ("TESSERA__JWT__EXTRA_CLAIMS", "username,email,groups"),
        ("TESSERA__JWT__CLAIM_NAMES__USERNAME", "preferred_username"),
    ])
    .await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    app.join_group(id, "ops").await;
    app.join_group(id, "admin").await;
    let (_, access) = app.login("alice").await;
    let a = forward(&app, PATH, &bearer(&access), &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-auth-user-id"), Some(id.to_string().as_str()));
    assert_eq!(a.header("x-auth-username"), Some("alice"));
    assert_eq!(a.header("x-auth-groups"), Some("admin,ops"));
    assert_eq!(a.header("x-auth-email"), Some("alice@example.com"));
    // No database: the user gone, the token still says who it was.
    app.delete_user(id).await;
    let a = forward(&app, PATH, &bearer(&access), &[]).await;
    assert_eq!(a.header("x-auth-username"), Some("alice"));

    // An opaque key: the same headers, from the user's row.
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    app.join_group(bob, "ops").await;
    let key = app.token_login("bob", PASSWORD).await;
    let a = forward(&app, PATH, &token(&key), &[]).await;
    assert_eq!(a.header("x-auth-method"), Some("token"));
    assert_eq!(a.header("x-auth-username"), Some("bob"));
    assert_eq!(a.header("x-auth-groups"), Some("ops"));
    assert_eq!(a.header("x-auth-email"), Some("bob@example.com"));
}

#[tokio::test]
async fn without_the_claims_only_the_id_is_told() {
    let app = spawn_app().await;
    app.register("alice").await;
    let (_, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    for auth in [bearer(&access), token(&key)] {
        let a = forward(&app, PATH, &auth, &[]).await;
        assert_eq!(a.status, 200);
        for h in ["x-auth-username", "x-auth-groups", "x-auth-email"] {
            assert_eq!(a.header(h), None, "{h}");
        }
    }
    // A name in any script travels as UTF-8.
    let app = spawn_app_with(&[("TESSERA__JWT__EXTRA_CLAIMS", "username")]).await;
    let a = app
        .post_json(
            "/api/v1/auth/users/",
            serde_json::json!({"username": "zoë", "password": PASSWORD, "email": "zoe@example.com"}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let (_, access) = app.login("zoë").await;
    let a = forward(&app, PATH, &bearer(&access), &[]).await;
    assert_eq!(
        a.headers.get("x-auth-username").unwrap().as_bytes(),
        "zoë".as_bytes()
    );
}

#[tokio::test]
async fn a_required_group_is_checked() {
    let app = spawn_app_with(&[("TESSERA__JWT__EXTRA_CLAIMS", "groups")]).await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    app.join_group(id, "ops").await;
    app.join_group(id, "admin").await;
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    app.join_group(bob, "ops").await;
    let (_, alice) = app.login("alice").await;
    let (_, bob) = app.login("bob").await;
    // Query, headers the proxy adds, then the status for alice and bob.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, u16);
    let cases: [Case; 10] = [
        ("?group=admin", &[], 200, 403),
        ("?group=ops", &[], 200, 200),
        ("?group=ops&group=admin", &[], 200, 403),
        ("?group=nope", &[], 403, 403),
        ("", &[("x-auth-required-group", "admin")], 200, 403),
        ("", &[("x-auth-required-group", "ops, admin")], 200, 403),
        (
            "?group=ops",
            &[("x-auth-required-group", "admin")],
            200,
            403,
        ),
        // An empty name (an unset proxy variable) fails closed.
        ("?group=", &[], 403, 403),
        ("", &[("x-auth-required-group", "")], 403, 403),
        ("?group=ops,admin", &[], 200, 403),
    ];
    for (query, headers, for_alice, for_bob) in cases {
        let path = format!("{PATH}{query}");
        let a = forward(&app, &path, &bearer(&alice), headers).await;
        assert_eq!(a.status, for_alice, "alice {query} {headers:?}");
        assert_eq!(a.text, "");
        let b = forward(&app, &path, &bearer(&bob), headers).await;
        assert_eq!(b.status, for_bob, "bob {query} {headers:?}");
        assert_eq!(b.text, "");
    }
    // No credentials stays 401, whatever the group.
    let a = app.get(&format!("{PATH}?group=ops"), None).await;
    assert_eq!(a.status, 401);
    // Without trailing slash too.
    let a = forward(&app, "/api/v1/auth/forward?group=admin", &bearer(&bob), &[]).await;
    assert_eq!(a.status, 403);
}

/// A token without the groups claim: the check reads the user's groups as
/// they are now.
#[tokio::test]
async fn without_the_groups_claim_the_database_decides() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    for auth in [bearer(&access), token(&key)] {
        let a = forward(&app, &format!("{PATH}?group=admin"), &auth, &[]).await;
        assert_eq!(a.status, 403);
    }
    app.join_group(id, "admin").await;
    for auth in [bearer(&access), token(&key)] {
        let a = forward(&app, &format!("{PATH}?group=admin"), &auth, &[]).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-auth-groups"), None, "not carried, so not told");
    }
}
