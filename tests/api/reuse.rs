//! Refresh-token reuse detection: token families, the grace interval and
//! logging out everywhere.

use futures::future::join_all;
use serde_json::json;

use crate::helpers::*;

const ROTATE: (&str, &str) = ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true");
const BLACKLIST: (&str, &str) = ("TESSERA__JWT__BLACKLIST_AFTER_ROTATION", "true");
const NO_GRACE: (&str, &str) = ("TESSERA__JWT__REUSE_GRACE_INTERVAL", "0s");

fn blacklisted() -> serde_json::Value {
    json!({"detail": "Token is blacklisted", "code": "token_not_valid"})
}

/// The pair a successful refresh returned.
fn pair(a: &Answer) -> (String, String) {
    assert_eq!(a.status, 200, "{}", a.text);
    (
        a.json["refresh"].as_str().unwrap().to_owned(),
        a.json["access"].as_str().unwrap().to_owned(),
    )
}

async fn metric(app: &TestApp, line: &str) -> bool {
    let m = app.get("/metrics", None).await;
    m.text.lines().any(|l| l == line)
}

#[tokio::test]
async fn rotated_tokens_carry_the_family_of_their_login() {
    let app = spawn_app_with(&[ROTATE]).await;
    app.register("rita").await;
    let (r1, a1) = app.login("rita").await;
    // A login's tokens keep Simple JWT's five claims.
    let c1 = claims(&r1);
    assert_eq!(
        c1.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["token_type", "exp", "iat", "jti", "user_id"]
    );
    assert!(claims(&a1).get("family").is_none());
    let (r2, a2) = pair(&app.refresh(&r1).await);
    let (r3, _) = pair(&app.refresh(&r2).await);
    for r in [&r2, &r3] {
        assert_eq!(claims(r)["family"], c1["jti"], "{}", claims(r));
        assert_eq!(
            claims(r).as_object().unwrap().keys().collect::<Vec<_>>(),
            ["token_type", "exp", "iat", "jti", "user_id", "family"]
        );
    }
    assert!(claims(&a2).get("family").is_none());
}

#[tokio::test]
async fn a_retry_within_the_grace_interval_gets_the_same_pair() {
    let app = spawn_app_with(&[ROTATE]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let first = pair(&app.refresh(&r1).await);
    // The client lost that answer and sends r1 again: the very same tokens,
    // not a second new refresh token, and no revocation.
    for path in ["/api/token/refresh/", "/api/v1/auth/jwt/refresh/"] {
        let again = app.post_form(path, &[("refresh", &r1)]).await;
        assert_eq!(pair(&again), first);
    }
    let (r3, a3) = pair(&app.refresh(&first.0).await);
    assert_eq!(app.me(&a3).await.status, 200);
    assert_eq!(app.refresh(&r3).await.status, 200);
    assert!(metric(&app, "tessera_refresh_replayed_total 2").await);
}

#[tokio::test]
async fn replaying_a_rotated_token_revokes_its_whole_family() {
    let app = spawn_app_with(&[ROTATE, NO_GRACE]).await;
    app.register("rita").await;
    let (r1, a1) = app.login("rita").await;
    let (r2, _) = pair(&app.refresh(&r1).await);
    // Another login of the same user is another family, untouched.
    let (other, _) = app.login("rita").await;
    // The thief replays r1: refused, and the owner's r2 dies with it.
    app.refresh(&r1).await.assert_401(blacklisted());
    app.refresh(&r2).await.assert_401(blacklisted());
    app.post_form("/api/token/verify/", &[("token", &r2)])
        .await
        .assert_401(blacklisted());
    app.post_json("/api/token/blacklist/", json!({"refresh": r2}))
        .await
        .assert_401(blacklisted());
    // Access tokens are stateless: they run out on their own.
    assert_eq!(app.me(&a1).await.status, 200);
    assert_eq!(app.refresh(&other).await.status, 200);
    assert!(
        metric(
            &app,
            r#"tessera_token_families_revoked_total{cause="reuse"} 1"#
        )
        .await
    );
    // One row per family, not per token.
    use sea_orm::EntityTrait;
    let rows = entity::token_families::Entity::find()
        .all(app.service.database())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().filter(|f| f.revoked_at.is_some()).count(), 1);
}

#[tokio::test]
async fn an_older_token_is_reuse_even_within_the_grace_interval() {
    let app = spawn_app_with(&[ROTATE]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let (r2, _) = pair(&app.refresh(&r1).await);
    let (r3, _) = pair(&app.refresh(&r2).await);
    // r1 is two rotations old: only the token just rotated has a grace.
    app.refresh(&r1).await.assert_401(blacklisted());
    app.refresh(&r3).await.assert_401(blacklisted());
    app.refresh(&r2).await.assert_401(blacklisted());
}

#[tokio::test]
async fn the_grace_interval_runs_out() {
    // PostgreSQL: a rotation is answered once every instance on the
    // database has acknowledged it, and other tests' instances that just
    // ended are waited for up to 3.1 s: the grace interval outlasts that.
    let app = spawn_app_with(&[ROTATE, ("TESSERA__JWT__REUSE_GRACE_INTERVAL", "5s")]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    // A new instance holds writes for its first 3 s.
    app.service.cache().until_writes_unheld().await;
    let first = pair(&app.refresh(&r1).await);
    assert_eq!(pair(&app.refresh(&r1).await), first);
    tokio::time::sleep(std::time::Duration::from_millis(5300)).await;
    app.refresh(&r1).await.assert_401(blacklisted());
    app.refresh(&first.0).await.assert_401(blacklisted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_mint_one_refresh_token_and_all_get_it() {
    let app = spawn_app_with(&[ROTATE]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    app.warm_connections(20).await;
    let answers = join_all((0..20).map(|_| app.refresh(&r1))).await;
    let pairs: std::collections::HashSet<_> = answers.iter().map(pair).collect();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let (r2, _) = pairs.into_iter().next().unwrap();
    assert_eq!(app.refresh(&r2).await.status, 200);
}

/// On a SQLite file a rotation is written on the request's own thread
/// without waiting for locks; while another connection holds the write
/// lock it goes through the pool, which waits its turn.
#[tokio::test]
async fn a_rotation_waits_for_a_write_lock_held_elsewhere() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    for detection in ["true", "false"] {
        let app = spawn_app_with(&[ROTATE, ("TESSERA__JWT__REUSE_DETECTION", detection)]).await;
        app.register("rita").await;
        let (r1, _) = app.login("rita").await;
        let (r2, _) = pair(&app.refresh(&r1).await);
        let holder = app.service.database().begin().await.unwrap();
        holder
            .execute_unprepared("UPDATE users SET email = 'held@example.com'")
            .await
            .unwrap();
        let held = std::time::Duration::from_millis(300);
        let started = std::time::Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(held).await;
            holder.commit().await.unwrap();
        });
        let (r3, _) = pair(&app.refresh(&r2).await);
        if app.service.database().get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
            assert!(
                started.elapsed() >= held,
                "answered before the lock was released"
            );
        }
        release.await.unwrap();
        // The write through the pool moved the family on to r3.
        assert_eq!(family_row(&app, &r1).await.current_jti, claims(&r3)["jti"]);
        assert_eq!(app.refresh(&r3).await.status, 200);
    }
}

#[tokio::test]
async fn with_blacklisting_a_retry_is_refused_but_revokes_nothing() {
    // Simple JWT's rotation variant: the used token is blacklisted at once.
    let app = spawn_app_with(&[ROTATE, BLACKLIST]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let (r2, _) = pair(&app.refresh(&r1).await);
    app.refresh(&r1).await.assert_401(blacklisted());
    assert_eq!(app.refresh(&r2).await.status, 200);
}

#[tokio::test]
async fn with_blacklisting_a_replay_after_the_grace_revokes_the_family() {
    let app = spawn_app_with(&[ROTATE, BLACKLIST, NO_GRACE]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let (r2, _) = pair(&app.refresh(&r1).await);
    app.refresh(&r1).await.assert_401(blacklisted());
    app.refresh(&r2).await.assert_401(blacklisted());
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let app = spawn_app_with(&[ROTATE]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let (r2, _) = pair(&app.refresh(&r1).await);
    let out = app
        .post_json("/api/token/blacklist/", json!({"refresh": r2}))
        .await;
    assert_eq!(out.status, 200, "{}", out.text);
    // The token just rotated no longer gets the (logged out) pair back.
    app.refresh(&r1).await.assert_401(blacklisted());
}

#[tokio::test]
async fn a_token_without_a_family_row_is_adopted() {
    // Tokens Simple JWT issued (or that predate families) have no row.
    let app = spawn_app_with(&[ROTATE, NO_GRACE]).await;
    let id = app.register("rita").await["id"].as_i64().unwrap();
    let legacy = family_less_token(id);
    let (r2, _) = pair(&app.refresh(&legacy).await);
    assert_eq!(claims(&r2)["family"], claims(&legacy)["jti"]);
    app.refresh(&legacy).await.assert_401(blacklisted());
    app.refresh(&r2).await.assert_401(blacklisted());
}

#[tokio::test]
async fn without_reuse_detection_rotation_is_simple_jwts() {
    let app = spawn_app_with(&[ROTATE, ("TESSERA__JWT__REUSE_DETECTION", "false")]).await;
    app.register("rita").await;
    let (r1, _) = app.login("rita").await;
    let (a, _) = pair(&app.refresh(&r1).await);
    let (b, _) = pair(&app.refresh(&r1).await);
    assert_ne!(a, b);
    assert_eq!(app.refresh(&a).await.status, 200);
    assert_eq!(app.refresh(&b).await.status, 200);
}

#[tokio::test]
async fn a_rotated_token_whose_family_row_is_gone_is_refused() {
    use sea_orm::EntityTrait;
    for detection in ["true", "false"] {
        let app = spawn_app_with(&[ROTATE, ("TESSERA__JWT__REUSE_DETECTION", detection)]).await;
        app.register("rita").await;
        let (r1, _) = app.login("rita").await;
        let (r2, _) = pair(&app.refresh(&r1).await);
        // The row lives as long as the newest token of the family.
        let row = entity::token_families::Entity::find_by_id(claims(&r1)["jti"].as_str().unwrap())
            .one(app.service.database())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.expires_at.timestamp(),
            claims(&r2)["exp"].as_i64().unwrap()
        );
        assert_eq!(row.current_jti, claims(&r2)["jti"].as_str().unwrap());
        // Without its row (lost, or purged too early), a family's token
        // cannot escape a revocation: it is refused, never adopted.
        entity::token_families::Entity::delete_by_id(row.id)
            .exec(app.service.database())
            .await
            .unwrap();
        app.refresh(&r2).await.assert_401(blacklisted());
        app.post_form("/api/token/verify/", &[("token", &r2)])
            .await
            .assert_401(blacklisted());
    }
}

#[tokio::test]
async fn without_reuse_detection_a_legacy_token_rotates_into_a_family() {
    let app = spawn_app_with(&[ROTATE, ("TESSERA__JWT__REUSE_DETECTION", "false")]).await;
    let id = app.register("rita").await["id"].as_i64().unwrap();
    let legacy = family_less_token(id);
    let (r2, _) = pair(&app.refresh(&legacy).await);
    let (r3, access) = pair(&app.refresh(&r2).await);
    let out = app
        .call(
            "POST",
            "/api/v1/auth/users/me/logout_all/",
            Some(&bearer(&access)),
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    for r in [&legacy, &r2, &r3] {
        app.refresh(r).await.assert_401(blacklisted());
    }
}

#[tokio::test]
async fn logout_all_revokes_every_family_of_the_user() {
    for (rotate, detection) in [("false", "true"), ("true", "true"), ("true", "false")] {
        let app = spawn_app_with(&[
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", rotate),
            ("TESSERA__JWT__REUSE_DETECTION", detection),
        ])
        .await;
        app.register("rita").await;
        app.register("bob").await;
        let (phone, _) = app.login("rita").await;
        let (laptop, access) = app.login("rita").await;
        let rotated = app.refresh(&laptop).await;
        let rotated = rotated.json["refresh"].as_str().map(str::to_owned);
        let (bobs, _) = app.login("bob").await;
        let key = app.token_login("rita", PASSWORD).await;

        let path = "/api/v1/auth/users/me/logout_all/";
        app.call("POST", path, None, None)
            .await
            .assert_401(json!({"detail": "Authentication credentials were not provided."}));
        let bad = app
            .call("POST", path, Some("Bearer not-a-token"), None)
            .await;
        assert_eq!(bad.status, 401, "{}", bad.text);
        assert_eq!(bad.json["code"], "token_not_valid");
        let wrong_method = app.call("GET", path, Some(&bearer(&access)), None).await;
        assert_eq!(wrong_method.status, 405, "{}", wrong_method.text);
        assert_eq!(wrong_method.header("allow"), Some("POST"));
        let out = app.call("POST", path, Some(&bearer(&access)), None).await;
        assert_eq!(out.status, 204, "{}", out.text);
        assert_eq!(out.text, "");

        for r in [Some(phone), Some(laptop), rotated].into_iter().flatten() {
            app.refresh(&r).await.assert_401(blacklisted());
            app.post_form("/api/token/verify/", &[("token", &r)])
                .await
                .assert_401(blacklisted());
        }
        // Other users, opaque keys and new logins are not affected.
        assert_eq!(app.refresh(&bobs).await.status, 200);
        assert_eq!(
            app.get("/api/v1/auth/users/me/", Some(&token(&key)))
                .await
                .status,
            200
        );
        let (fresh, _) = app.login("rita").await;
        assert_eq!(app.refresh(&fresh).await.status, 200);
        // With an opaque key, and without the trailing slash.
        let out = app
            .call("POST", path.trim_end_matches('/'), Some(&token(&key)), None)
            .await;
        assert_eq!(out.status, 204, "{}", out.text);
        app.refresh(&fresh).await.assert_401(blacklisted());
    }
}

#[tokio::test]
async fn a_legacy_token_logged_out_is_never_adopted() {
    let app = spawn_app_with(&[ROTATE]).await;
    let id = app.register("rita").await["id"].as_i64().unwrap();
    let legacy = family_less_token(id);
    let out = app
        .post_json("/api/token/blacklist/", json!({"refresh": legacy}))
        .await;
    assert_eq!(out.status, 200, "{}", out.text);
    // Refused every time: the first refusal must not leave a row that
    // calls it current.
    for _ in 0..2 {
        app.refresh(&legacy).await.assert_401(blacklisted());
        app.post_form("/api/token/verify/", &[("token", &legacy)])
            .await
            .assert_401(blacklisted());
    }
}

#[tokio::test]
async fn a_legacy_token_blacklisted_without_a_family_row_is_never_adopted() {
    // As after importing Django's blacklist: the token is listed, and no
    // row of ours knows its family. A rotation that took it for current
    // finds no row to swap, and must then ask the blacklist.
    let app = spawn_app_with(&[ROTATE]).await;
    let id = app.register("rita").await["id"].as_i64().unwrap();
    let legacy = family_less_token(id);
    let c = claims(&legacy);
    let now = chrono::Utc::now();
    let expires = chrono::DateTime::from_timestamp(c["exp"].as_i64().unwrap(), 0).unwrap();
    let jti = c["jti"].as_str().unwrap();
    let db = app.service.database();
    assert!(
        tessera::blacklist::add(db, jti, Some(id), expires, now)
            .await
            .unwrap()
    );
    for _ in 0..2 {
        app.refresh(&legacy).await.assert_401(blacklisted());
    }
    assert!(tessera::families::find(db, jti).await.unwrap().is_none());
}

#[tokio::test]
async fn expired_families_are_purged_and_live_ones_kept() {
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
    let app = spawn_app().await;
    app.register("rita").await;
    let (old, _) = app.login("rita").await;
    let (live, _) = app.login("rita").await;
    let db = app.service.database();
    let id = |t: &str| claims(t)["jti"].as_str().unwrap().to_owned();
    let mut row = entity::token_families::Entity::find_by_id(id(&old))
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    row.expires_at = Set(chrono::Utc::now() - chrono::TimeDelta::hours(1));
    row.update(db).await.unwrap();
    let cutoff = tessera::blacklist::purge_cutoff(chrono::Utc::now(), std::time::Duration::ZERO);
    assert_eq!(
        tessera::families::purge_expired(db, cutoff, 1)
            .await
            .unwrap(),
        1
    );
    let left: Vec<String> = entity::token_families::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(left, [id(&live)]);
    assert_eq!(app.refresh(&live).await.status, 200);
}

async fn family_row(app: &TestApp, first_refresh: &str) -> entity::token_families::Model {
    use sea_orm::EntityTrait;
    entity::token_families::Entity::find_by_id(claims(first_refresh)["jti"].as_str().unwrap())
        .one(app.service.database())
        .await
        .unwrap()
        .expect("the family row")
}

#[tokio::test]
async fn logging_out_with_an_already_rotated_token_ends_the_family() {
    // The thief refreshed the owner's token first; the owner's logout with
    // the token they hold must still shut the thief out.
    let grace_1s = ("TESSERA__JWT__REUSE_GRACE_INTERVAL", "1s");
    let no_detection = ("TESSERA__JWT__REUSE_DETECTION", "false");
    // (settings, wait past the grace, logout's status, cause counted)
    type Case<'a> = (Vec<(&'a str, &'a str)>, bool, u16, &'a str);
    let cases: [Case; 4] = [
        (vec![ROTATE, grace_1s], true, 200, "reuse"),
        (vec![ROTATE], false, 200, "reuse"),
        // Rotation blacklisted the token already: Simple JWT's 401, and the
        // family ends all the same.
        (vec![ROTATE, BLACKLIST], false, 401, "reuse"),
        (vec![ROTATE, no_detection], false, 200, "logout"),
    ];
    for (settings, wait, status, cause) in cases {
        let app = spawn_app_with(&settings).await;
        app.register("rita").await;
        let (t1, _) = app.login("rita").await;
        let (t2, _) = pair(&app.refresh(&t1).await);
        if wait {
            tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
        }
        let out = app
            .post_json("/api/token/blacklist/", json!({"refresh": t1}))
            .await;
        if status == 200 {
            assert_eq!(
                (out.status.as_u16(), &out.json),
                (200, &json!({})),
                "{settings:?}"
            );
        } else {
            out.assert_401(blacklisted());
        }
        assert!(
            family_row(&app, &t1).await.revoked_at.is_some(),
            "{settings:?}: the family is revoked"
        );
        app.refresh(&t2).await.assert_401(blacklisted());
        let counted = format!(r#"tessera_token_families_revoked_total{{cause="{cause}"}} 1"#);
        assert!(metric(&app, &counted).await, "{settings:?}: {counted}");
    }
}

#[tokio::test]
async fn verifying_an_already_rotated_token_is_reuse_too() {
    // Decided: verify/ of a stale token revokes its family, as refresh/
    // does. Whoever presents it holds a copy of a token that was rotated.
    let app = spawn_app_with(&[ROTATE, NO_GRACE]).await;
    app.register("rita").await;
    let (t1, _) = app.login("rita").await;
    let (t2, _) = pair(&app.refresh(&t1).await);
    let current = app.post_form("/api/token/verify/", &[("token", &t2)]).await;
    assert_eq!(
        current.status, 200,
        "the current token verifies: {}",
        current.text
    );
    app.post_form("/api/token/verify/", &[("token", &t1)])
        .await
        .assert_401(blacklisted());
    assert!(family_row(&app, &t1).await.revoked_at.is_some());
    app.refresh(&t2).await.assert_401(blacklisted());
    assert!(
        metric(
            &app,
            r#"tessera_token_families_revoked_total{cause="reuse"} 1"#
        )
        .await
    );
}

#[tokio::test]
async fn verify_agrees_with_refresh_on_a_password_change() {
    let app = spawn_app().await;
    let id = app.register("rita").await["id"].as_i64().unwrap();
    let (refresh, access) = app.login("rita").await;
    let (_, other_access) = app.login("rita").await;
    let changed = app
        .call(
            "POST",
            "/api/v1/auth/users/set_password/",
            Some(&bearer(&access)),
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Passw0rd!"})),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    let cutoff =
        json!({"detail": "The user's password has been changed.", "code": "password_changed"});
    app.refresh(&refresh).await.assert_401(cutoff.clone());
    for path in ["/api/token/verify/", "/api/v1/auth/jwt/verify/"] {
        app.post_form(path, &[("token", &refresh)])
            .await
            .assert_401(cutoff.clone());
    }
    // Simple JWT's verify never looks at the user: an access token, or a
    // refresh token of a deleted user, stays a valid signature.
    let ok = app
        .post_form("/api/token/verify/", &[("token", &access)])
        .await;
    assert_eq!((ok.status.as_u16(), &ok.json), (200, &json!({})));
    let (fresh, _) = {
        let a = app
            .post_json(
                "/api/token/",
                json!({"username": "rita", "password": "An0ther-Passw0rd!"}),
            )
            .await;
        pair(&a)
    };
    app.delete_user(id).await;
    for token in [&fresh, &other_access] {
        let ok = app
            .post_form("/api/token/verify/", &[("token", token)])
            .await;
        assert_eq!(
            (ok.status.as_u16(), &ok.json),
            (200, &json!({})),
            "{}",
            ok.text
        );
    }
}
