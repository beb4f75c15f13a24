//! The per-user refresh cutoff: logout_all (by the user, by staff, from the
//! command line) reaches every refresh and sliding token issued until then,
//! those Simple JWT issued before a migration (no family row) too.

use serde_json::json;

use crate::helpers::*;

fn blacklisted() -> serde_json::Value {
    json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
}

#[tokio::test]
async fn logout_all_reaches_tokens_simple_jwt_issued() {
    for (rotate, detection, blacklist) in [
        ("false", "true", "false"),
        ("true", "true", "false"),
        ("true", "false", "false"),
        ("true", "true", "true"),
    ] {
        let app = spawn_app_with(&[
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", rotate),
            ("TESSERA__JWT__REUSE_DETECTION", detection),
            ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", blacklist),
        ])
        .await;
        let id = app.register("rita").await["id"].as_i64().unwrap();
        // Two sessions Simple JWT started before the migration: no row.
        let (legacy, other_legacy) = (family_less_token(id), family_less_token(id));
        let sliding = app.sliding_login("rita").await;
        let (_, access) = app.login("rita").await;
        let key = app.token_login("rita", PASSWORD).await;
        let out = app
            .call(
                "POST",
                "/api/v1/auth/users/me/logout_all/",
                Some(&bearer(&access)),
                None,
            )
            .await;
        assert_eq!(out.status, 204, "{}", out.text);
        let what = format!("rotate={rotate} detection={detection} blacklist={blacklist}");
        for legacy in [&legacy, &other_legacy] {
            app.refresh(legacy).await.assert_401(blacklisted());
            // Refused again: the refusal left no row that calls it current.
            app.refresh(legacy).await.assert_401(blacklisted());
            app.post_form("/api/token/verify/", &[("token", legacy)])
                .await
                .assert_401(blacklisted());
        }
        let a = app
            .post_json("/api/token/sliding/refresh/", json!({"token": sliding}))
            .await;
        assert_eq!(a.json, blacklisted(), "{what}");
        // Opaque keys have their own logoutall; new logins work at once.
        let me = app.get("/api/v1/auth/users/me/", Some(&token(&key))).await;
        assert_eq!(me.status, 200, "{what}");
        let (fresh, _) = app.login("rita").await;
        assert_eq!(app.refresh(&fresh).await.status, 200, "{what}");
    }
}

#[tokio::test]
async fn sliding_tokens_stop_authenticating_at_logout_all() {
    let app = spawn_app_with(&[("TESSERA__JWT__AUTH_TOKEN_CLASSES", "access,sliding")]).await;
    app.register("rita").await;
    let sliding = app.sliding_login("rita").await;
    assert_eq!(app.me(&sliding).await.status, 200);
    let out = app
        .call(
            "POST",
            "/api/v1/auth/users/me/logout_all/",
            Some(&bearer(&sliding)),
            None,
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    let a = app.me(&sliding).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.json["messages"][1]["message"], "Token is blacklisted",
        "{}",
        a.text
    );
    let a = app
        .get("/api/v1/auth/forward/", Some(&bearer(&sliding)))
        .await;
    assert_eq!(a.status, 401);
    app.post_form("/api/token/verify/", &[("token", &sliding)])
        .await
        .assert_401(blacklisted());
    // A new login after it works at once.
    let fresh = app.sliding_login("rita").await;
    assert_eq!(app.me(&fresh).await.status, 200);
}

#[tokio::test]
async fn staff_log_anyone_out_and_users_themselves() {
    let app = spawn_app().await;
    app.create_staff("boss").await;
    let (_, staff) = app.login("boss").await;
    let alice = app.register("alice").await["id"].as_i64().unwrap();
    let bob = app.register("bob").await["id"].as_i64().unwrap();
    let (alices, _) = app.login("alice").await;
    let (bobs, bob_access) = app.login("bob").await;
    let path = |id: i64| format!("/api/v1/auth/users/{id}/logout_all/");

    let a = app.call("POST", &path(alice), None, None).await;
    assert_eq!(a.status, 401);
    // Bob cannot end Alice's sessions: she is hidden from him.
    let a = app
        .call("POST", &path(alice), Some(&bearer(&bob_access)), None)
        .await;
    assert_eq!(a.status, 404);
    assert_eq!(app.refresh(&alices).await.status, 200, "untouched");
    for missing in ["999999", "abc"] {
        let a = app
            .call(
                "POST",
                &format!("/api/v1/auth/users/{missing}/logout_all/"),
                Some(&bearer(&staff)),
                None,
            )
            .await;
        assert_eq!(a.status, 404, "{missing}");
    }
    let a = app
        .call("POST", &path(alice), Some(&bearer(&staff)), None)
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    app.refresh(&alices).await.assert_401(blacklisted());
    assert_eq!(app.refresh(&bobs).await.status, 200, "only alice");
    let a = app
        .call("POST", &path(bob), Some(&bearer(&bob_access)), None)
        .await;
    assert_eq!(a.status, 204);
    app.refresh(&bobs).await.assert_401(blacklisted());
}

#[tokio::test]
async fn the_command_line_logs_a_user_out_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let mut env = base_env(&url);
    env.remove("TESSERA__SERVER__PORT");
    // The server and the command share the database.
    let app = spawn_app_with(&[("DATABASE_URL", url.as_str())]).await;
    let id = app.register("rita").await["id"].as_i64().unwrap();
    let legacy = family_less_token(id);
    let (refresh, _) = app.login("rita").await;
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = tessera(dir.path(), &pairs)
        .args(["logoutall", "--username", "rita"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("rita logged out everywhere (1 token families revoked)"),
        "{err}"
    );
    for r in [&legacy, &refresh] {
        app.refresh(r).await.assert_401(blacklisted());
    }
    let out = tessera(dir.path(), &pairs)
        .args(["logoutall", "--username", "nobody"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
