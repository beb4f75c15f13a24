//! The user cache (`database.cache_entries`): an authenticated request
//! reads no database row, yet every change (through this instance, another
//! instance, or straight in the database as an admin tool would) shows on
//! the very next request, on every instance.

use reqwest::Client;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

use crate::helpers::*;

/// What a tool other than Tessera does to the database (an admin, a script).
async fn outside(url: &str) -> DatabaseConnection {
    Database::connect(url)
        .await
        .expect("connect as an outside tool")
}

async fn sql(db: &DatabaseConnection, statement: &str) {
    db.execute_unprepared(statement).await.expect(statement);
}

async fn status(client: &Client, url: String, authorization: &str) -> u16 {
    client
        .get(url)
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn me(client: &Client, server: &Server, authorization: &str) -> (u16, Value) {
    let r = client
        .get(server.url("/api/v1/auth/users/me/"))
        .header("authorization", authorization)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// A refresh at `server`: the status and the body.
async fn refresh(client: &Client, server: &Server, token: &str) -> (u16, Value) {
    server
        .post_form(client, "/api/token/refresh/", &[("refresh", token)])
        .await
}

#[tokio::test]
async fn changes_made_outside_tessera_show_on_the_next_request() {
    let app = spawn_app().await;
    let user = app.register("alice").await;
    let id = user["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;
    let bearer = format!("Bearer {access}");
    let token = format!("Token {key}");
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/v1/auth/users/me/", Some(bearer.as_str()))
                .await
                .status,
            200
        );
        assert_eq!(
            app.get("/api/v1/auth/users/me/", Some(token.as_str()))
                .await
                .status,
            200
        );
    }
    // Repeatedly, so a notification arriving late would show.
    for round in 0..20 {
        app.set_active(id, false).await;
        let a = app
            .get("/api/v1/auth/users/me/", Some(bearer.as_str()))
            .await;
        assert_eq!(a.status, 401, "round {round}: {}", a.text);
        assert_eq!(a.json["detail"], "User is inactive");
        let a = app
            .get("/api/v1/auth/users/me/", Some(token.as_str()))
            .await;
        assert_eq!(a.status, 401, "round {round}: {}", a.text);
        app.set_active(id, true).await;
        assert_eq!(
            app.get("/api/v1/auth/users/me/", Some(bearer.as_str()))
                .await
                .status,
            200,
            "round {round}"
        );
        assert_eq!(
            app.get("/api/v1/auth/users/me/", Some(token.as_str()))
                .await
                .status,
            200,
            "round {round}"
        );
    }
    app.delete_user(id).await;
    let a = app
        .get("/api/v1/auth/users/me/", Some(bearer.as_str()))
        .await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(a.json["detail"], "User not found");
    assert_eq!(
        app.get("/api/v1/auth/users/me/", Some(token.as_str()))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn changes_through_the_api_show_on_the_next_request() {
    let app = spawn_app().await;
    app.register("bob").await;
    let (refresh, access) = app.login("bob").await;
    let bearer = format!("Bearer {access}");
    let key = app.token_login("bob", PASSWORD).await;
    let token = format!("Token {key}");
    // The user, the key and the family are kept (on PostgreSQL once the
    // LISTEN is up, a moment after start).
    let mut kept = (0, 0, 0);
    for _ in 0..100 {
        for auth in [&bearer, &token] {
            let a = app.get("/api/v1/auth/users/me/", Some(auth.as_str())).await;
            assert_eq!(a.status, 200);
        }
        assert_eq!(app.refresh(&refresh).await.status, 200);
        kept = app.service.cache().len();
        if kept == (1, 1, 1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(kept, (1, 1, 1), "users, keys, families kept");
    let a = app
        .call(
            "PATCH",
            "/api/v1/auth/users/me/",
            Some(bearer.as_str()),
            Some(json!({"email": "new@example.com"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    for auth in [&bearer, &token] {
        let a = app.get("/api/v1/auth/users/me/", Some(auth.as_str())).await;
        assert_eq!(a.json["email"], "new@example.com", "{auth}");
    }
    // A password change ends the keys and the refresh tokens at once.
    assert_eq!(app.refresh(&refresh).await.status, 200);
    let a = app
        .post_json(
            "/api/v1/auth/users/set_password/",
            json!({"current_password": PASSWORD, "new_password": "An0ther-Passw0rd_z"}),
        )
        .await;
    // Unauthenticated: refused before anything changes.
    assert_eq!(a.status, 401);
    let a = app
        .call(
            "POST",
            "/api/v1/auth/users/set_password/",
            Some(bearer.as_str()),
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Passw0rd_z"})),
        )
        .await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert_eq!(
        app.get("/api/v1/auth/users/me/", Some(token.as_str()))
            .await
            .status,
        401
    );
    assert_eq!(app.refresh(&refresh).await.status, 401);
}

/// Two `tessera serve` processes on one database (a SQLite file, or
/// PostgreSQL with `TEST_DATABASE_URL`): what one does, or what is done
/// to the database directly, the other refuses on its very next request.
#[tokio::test]
async fn revocation_reaches_the_other_instance_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, url) = two_instances(&dir, &[("TESSERA__THROTTLE__ENABLED", "false")]).await;
    let client = Client::new();
    let pair = a.register_and_login(&client, "carol").await;
    let bearer = format!("Bearer {}", pair["access"].as_str().unwrap());
    let refresh_token = pair["refresh"].as_str().unwrap().to_owned();
    let me_url = |s: &Server| s.url("/api/v1/auth/users/me/");
    let (code, body) = me(&client, &a, &bearer).await;
    assert_eq!(code, 200);
    let id = body["id"].as_i64().unwrap();

    // A key logged out on A: refused by B, which had it in memory.
    let token = crate::helpers::token(&a.token_login(&client, "carol").await);
    for _ in 0..2 {
        assert_eq!(status(&client, me_url(&b), &token).await, 200);
    }
    let r = client
        .post(a.url("/auth/token/logout/"))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status(&client, me_url(&b), &token).await, 401);

    // An email changed on one: the other, which had the user in memory,
    // answers with the new one. Over and over, each way: on PostgreSQL
    // each instance hears the change on its own schedule, and the write
    // is answered only once the other has acknowledged it.
    assert_eq!(me(&client, &b, &bearer).await.1["email"], "");
    for round in 0..20 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        assert_eq!(me(&client, reader, &bearer).await.0, 200);
        let email = format!("carol{round}@example.com");
        let r = client
            .patch(me_url(writer))
            .header("authorization", &bearer)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            me(&client, reader, &bearer).await.1["email"],
            email.as_str(),
            "round {round}"
        );
    }

    // Deactivated and reactivated by an outside tool, over and over: on
    // SQLite both instances follow on the next request (the file's data
    // version); on PostgreSQL when the notification arrives, within
    // milliseconds.
    let admin = outside(&url).await;
    let token = crate::helpers::token(&a.token_login(&client, "carol").await);
    let tries = if url.starts_with("postgres") { 100 } else { 1 };
    let settled = |s: &Server, auth: &str, want: u16| {
        let (client, url, auth) = (client.clone(), me_url(s), auth.to_owned());
        async move {
            for _ in 0..tries {
                let got = status(&client, url.clone(), &auth).await;
                if got == want {
                    return got;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            status(&client, url, &auth).await
        }
    };
    for round in 0..20 {
        sql(
            &admin,
            &format!("UPDATE users SET is_active = false WHERE id = {id}"),
        )
        .await;
        for s in [&a, &b] {
            assert_eq!(settled(s, &bearer, 401).await, 401, "round {round}");
            assert_eq!(settled(s, &token, 401).await, 401, "round {round}");
        }
        sql(
            &admin,
            &format!("UPDATE users SET is_active = true WHERE id = {id}"),
        )
        .await;
        for s in [&b, &a] {
            assert_eq!(settled(s, &bearer, 200).await, 200, "round {round}");
            assert_eq!(settled(s, &token, 200).await, 200, "round {round}");
        }
    }

    // A refresh token B has refreshed (its family in B's memory),
    // blacklisted through A: B refuses it on the next request.
    let other = a.register_and_login(&client, "carol").await;
    let other = other["refresh"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(refresh(&client, &b, other).await.0, 200);
    }
    let blacklisted = a
        .post_form(&client, "/api/token/blacklist/", &[("refresh", other)])
        .await;
    assert_eq!(blacklisted.0, 200);
    assert_eq!(refresh(&client, &b, other).await.0, 401);

    // logout_all on A: B refuses the refresh token it accepted a moment ago.
    assert_eq!(refresh(&client, &b, &refresh_token).await.0, 200);
    let r = client
        .post(a.url("/api/v1/auth/users/me/logout_all/"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(refresh(&client, &b, &refresh_token).await.0, 401);

    // Deleted through A: B no longer knows the user.
    let r = client
        .delete(me_url(&a))
        .header("authorization", &bearer)
        .json(&json!({"current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (code, body) = me(&client, &b, &bearer).await;
    assert_eq!(code, 401);
    assert_eq!(body["detail"], "User not found");
    assert_eq!(status(&client, me_url(&b), &token).await, 401);
    stop_cleanly([a, b]);
}

/// With rotation and reuse detection, a rotation through one instance
/// reaches the other, which had the family in memory: kept as it was, the
/// token two rotations back would pass there for the one just replaced
/// (and get a replay); it is reuse, which revokes the family.
#[tokio::test]
async fn a_rotation_on_one_instance_is_seen_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = two_instances(
        &dir,
        &[
            ("TESSERA__THROTTLE__ENABLED", "false"),
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
        ],
    )
    .await;
    let client = Client::new();
    let pair = a.register_and_login(&client, "dave").await;
    let r0 = pair["refresh"].as_str().unwrap().to_owned();
    // B rotates r0 and, verifying r1, keeps the family (current r1,
    // previous r0); then A rotates r1.
    let (code, body) = refresh(&client, &b, &r0).await;
    assert_eq!(code, 200);
    let r1 = body["refresh"].as_str().unwrap().to_owned();
    let verified = client
        .post(b.url("/api/token/verify/"))
        .form(&[("token", r1.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let (code, body) = refresh(&client, &a, &r1).await;
    assert_eq!(code, 200);
    let r2 = body["refresh"].as_str().unwrap().to_owned();
    // r0, two rotations back, at B: reuse; the family is revoked everywhere.
    let (code, _) = refresh(&client, &b, &r0).await;
    assert_eq!(code, 401);
    let (code, _) = refresh(&client, &a, &r2).await;
    assert_eq!(code, 401);
    stop_cleanly([a, b]);
}

/// Waits (at most 10 s) until `app`'s LISTEN is up and has been for 3 s,
/// after which a write waits only for acknowledgements.
async fn until_writes_unheld(app: &TestApp) {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.service.cache().until_writes_unheld(),
    )
    .await
    .expect("the cache's LISTEN is up");
}

/// Rotates `token` `times` times in a row at `app`, leaving the newest
/// refresh token in it: how long that took.
async fn rotations(app: &TestApp, token: &mut String, times: usize) -> std::time::Duration {
    let started = std::time::Instant::now();
    for _ in 0..times {
        let a = app.refresh(token).await;
        assert_eq!(a.status, 200, "{}", a.text);
        *token = a.json["refresh"].as_str().unwrap().to_owned();
    }
    started.elapsed()
}

/// PostgreSQL: a rotation's own update carries the note its instance waits
/// for before answering (`Cache::mark`), so no rotation waits out the
/// 3.1 s bound of that wait; five in a row would take 15 s if the note
/// were never sent or never heard. (SQLite has nothing to wait for.)
#[tokio::test]
async fn a_rotation_is_answered_once_its_own_note_is_heard() {
    let app = spawn_app_with(&[
        ("TESSERA__THROTTLE__ENABLED", "false"),
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
    ])
    .await;
    app.register("erin").await;
    let (mut token, _) = app.login("erin").await;
    // Until the LISTEN is up a rotation carries no note and waits for none;
    // for its first 3 s it holds writes: neither is what is timed here.
    until_writes_unheld(&app).await;
    let took = rotations(&app, &mut token, 5).await;
    assert!(
        took < std::time::Duration::from_secs(2),
        "five rotations took {took:?}"
    );
}

/// Waits until `app` keeps its one user's row (PostgreSQL: once its LISTEN
/// is up), asking `/users/me/` with that user's `bearer`.
async fn until_the_user_is_kept(app: &TestApp, bearer: &str) {
    for _ in 0..100 {
        let a = app.get("/api/v1/auth/users/me/", Some(bearer)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if app.service.cache().len().0 == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the user was never kept");
}

/// PostgreSQL: deployments in two schemas of one database have a
/// notification channel each. One neither drops what it keeps on the
/// other's changes nor waits for the other's acknowledgements, so when an
/// instance of the other stops without a word (SIGKILL), no write here
/// waits out the 3 s after its last beat.
#[tokio::test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); CI runs it with --include-ignored"]
async fn a_deployment_in_another_schema_is_neither_heard_nor_waited_for() {
    require_postgres();
    let app = spawn_app_with(&[
        ("TESSERA__THROTTLE__ENABLED", "false"),
        ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
    ])
    .await;
    app.register("gil").await;
    let (mut token, access) = app.login("gil").await;
    until_writes_unheld(&app).await;
    until_the_user_is_kept(&app, &format!("Bearer {access}")).await;

    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let other = Server::start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
        ],
    )
    .await;
    // Its user 1 changes (gil is user 1 here): a notification `user:1`,
    // committed before this instance's own note below.
    other.register_and_login(&Client::new(), "hal").await;
    let db = outside(&url).await;
    sql(
        &db,
        "UPDATE users SET email = 'hal@example.com' WHERE id = 1",
    )
    .await;
    db.close().await.ok();
    app.outside_write_heard().await;
    assert_eq!(app.service.cache().len().0, 1, "gil is still kept");

    // It beats once a second: long enough for two beats to be heard.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    drop(other);
    let took = rotations(&app, &mut token, 3).await;
    assert!(
        took < std::time::Duration::from_millis(1500),
        "three rotations took {took:?}"
    );
}

/// PostgreSQL: a deployment in the `public` schema (a database of its
/// own, as most run) hears what an outside tool changes, on the channel
/// its triggers name for `public`.
#[tokio::test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); CI runs it with --include-ignored"]
async fn a_deployment_in_the_public_schema_hears_outside_changes() {
    let base = require_postgres();
    let name = format!("tessera_t_{}", uuid::Uuid::new_v4().simple());
    let admin = outside(&base).await;
    sql(&admin, &format!("CREATE DATABASE {name}")).await;
    let mut url = reqwest::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    let app = spawn_app_on(tempfile::tempdir().unwrap(), url.as_str(), &[]).await;
    let schema = outside(url.as_str()).await;
    let row = schema
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT current_schema()::text AS s",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "s").unwrap(), "public");
    schema.close().await.ok();

    let id = app.register("ida").await["id"].as_i64().unwrap();
    let (_, access) = app.login("ida").await;
    let bearer = format!("Bearer {access}");
    assert!(
        app.service
            .cache()
            .until_listening(std::time::Duration::from_secs(10))
            .await,
        "the cache's LISTEN is up"
    );
    until_the_user_is_kept(&app, &bearer).await;
    app.set_active(id, false).await;
    let a = app.get("/api/v1/auth/users/me/", Some(&bearer)).await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(a.json["detail"], "User is inactive");
    sql(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")).await;
}

/// A sliding token is checked against the blacklist on every request; the
/// "not blacklisted" answers are kept, yet a blacklisting on one instance,
/// or by an outside tool, is refused everywhere on the next request.
#[tokio::test]
async fn a_blacklisting_reaches_every_instance_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, url) = two_instances(
        &dir,
        &[
            ("TESSERA__THROTTLE__ENABLED", "false"),
            ("TESSERA__JWT__AUTH_TOKEN_CLASSES", "access,sliding"),
        ],
    )
    .await;
    let client = Client::new();
    a.register_and_login(&client, "fay").await;
    let sliding = |server: &Server| {
        let client = client.clone();
        let url = server.url("/api/token/sliding/");
        async move {
            let r = client
                .post(url)
                .json(&json!({"username": "fay", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            format!("Bearer {}", body["token"].as_str().unwrap())
        }
    };
    let me_url = |s: &Server| s.url("/api/v1/auth/users/me/");

    // Blacklisted through A: B, which kept it as not blacklisted, refuses it.
    let token = sliding(&a).await;
    for server in [&a, &b, &b] {
        assert_eq!(status(&client, me_url(server), &token).await, 200);
    }
    let r = client
        .post(a.url("/api/token/sliding/blacklist/"))
        .json(&json!({"token": token.trim_start_matches("Bearer ")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for server in [&b, &a] {
        assert_eq!(status(&client, me_url(server), &token).await, 401);
    }

    // Blacklisted by an outside tool: refused by both once the write is
    // heard (SQLite: the next request; PostgreSQL: the notification).
    let token = sliding(&b).await;
    for server in [&a, &b] {
        assert_eq!(status(&client, me_url(server), &token).await, 200);
    }
    let jti = crate::helpers::claims(token.trim_start_matches("Bearer "))["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let db = outside(&url).await;
    sql(
        &db,
        &format!(
            "INSERT INTO token_blacklist (jti, user_id, expires_at, blacklisted_at) \
             VALUES ('{jti}', NULL, '2100-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
        ),
    )
    .await;
    for server in [&a, &b] {
        let refused = async {
            while status(&client, me_url(server), &token).await != 401 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), refused)
            .await
            .expect("the outside blacklisting is heard");
    }
    stop_cleanly([a, b]);
}
