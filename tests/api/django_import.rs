//! `tessera import django` from a database made by the real Django
//! (tests/fixtures/django.sqlite3, made by make_django_db.py).

use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::*;

fn fixture() -> Value {
    fixture_json("django_db.json")
}

/// A copy of the Django database (the import opens it read-only).
fn django_db(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("django.sqlite3");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django.sqlite3"),
        &path,
    )
    .unwrap();
    format!("sqlite://{}", path.display())
}

fn options(dry_run: bool) -> tessera::import::Options {
    tessera::import::Options {
        dry_run,
        user_table: "auth_user".into(),
        on_conflict: tessera::import::Conflict::Refuse,
    }
}

async fn import(app: &TestApp, url: &str, dry_run: bool) -> tessera::import::Report {
    let source = sea_orm::Database::connect(format!("{url}?mode=ro"))
        .await
        .unwrap();
    tessera::import::import_django(&source, app.service.database(), &options(dry_run))
        .await
        .unwrap()
}

/// Django's groups and memberships are here, but the one whose name
/// cannot travel in `X-Auth-Groups`.
async fn check_groups(app: &TestApp, f: &Value, report: &tessera::import::Report) {
    assert_eq!(report.groups.added, 2);
    assert_eq!(
        report
            .groups
            .skipped
            .get("names with a comma or control character"),
        Some(&1)
    );
    assert_eq!(report.memberships.added, 3);
    assert_eq!(
        report.memberships.skipped.get("of groups not imported"),
        Some(&1)
    );
    for (group, members) in f["groups"].as_object().unwrap() {
        for member in members.as_array().unwrap() {
            let user = app
                .service
                .user_named(member.as_str().unwrap())
                .await
                .unwrap();
            let names = app.service.group_names(user.id).await.unwrap();
            assert!(names.contains(group), "{member} in {group}: {names:?}");
        }
    }
    let names: Vec<String> = app
        .service
        .groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, ["ops", "staff"]);
}

async fn login(app: &TestApp, username: &str, password: &str) -> Answer {
    app.post_json(
        "/api/token/",
        json!({"username": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn a_django_deployment_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let url = django_db(&dir);
    let app = spawn_app().await;
    let f = fixture();
    let password = f["password"].as_str().unwrap();

    let dry = import(&app, &url, true).await;
    assert_eq!(
        (dry.users.added, dry.groups.added, dry.memberships.added),
        (8, 2, 3)
    );
    assert!(
        app.service.groups().await.unwrap().is_empty(),
        "a dry run writes no group"
    );
    assert_eq!(
        login(&app, "user_pbkdf2_sha256", password).await.status,
        401,
        "a dry run writes nothing"
    );

    let report = import(&app, &url, false).await;
    assert_eq!(
        (
            report.users.added,
            report.tokens.added,
            report.blacklist.added
        ),
        (8, 2, 1)
    );
    check_groups(&app, &f, &report).await;

    // Every user logs in with the password Django had, and is upgraded.
    for u in f["users"].as_array().unwrap() {
        let name = u["username"].as_str().unwrap();
        assert_eq!(
            login(&app, name, "wrong-password").await.status,
            401,
            "{name}"
        );
        let a = login(&app, name, password).await;
        assert_eq!(a.status, 200, "{name}: {}", a.text);
        let me = app.me(a.json["access"].as_str().unwrap()).await;
        assert_eq!(me.json["id"], u["id"], "{name} keeps the id Django gave");
        let row = entity::users::Entity::find_by_id(u["id"].as_i64().unwrap())
            .one(app.service.database())
            .await
            .unwrap()
            .unwrap();
        assert!(
            row.password.starts_with("$argon2id$"),
            "{name}: upgraded at login"
        );
    }
    assert_eq!(login(&app, "inactive", password).await.status, 401);
    assert_eq!(login(&app, "nopass", password).await.status, 401);

    // The apps' Token keys keep working.
    for (name, key) in f["keys"].as_object().unwrap() {
        let me = app
            .get(
                "/api/v1/auth/users/me/",
                Some(&token(key.as_str().unwrap())),
            )
            .await;
        assert_eq!(me.json["username"], name.as_str(), "{}", me.text);
    }
    // Logged out in Django, logged out here; a live session goes on.
    let out = app
        .refresh(f["blacklisted_refresh"].as_str().unwrap())
        .await;
    assert_eq!(out.json["detail"], "Token is blacklisted");
    let live = app.refresh(f["live_refresh"].as_str().unwrap()).await;
    assert_eq!(live.status, 200, "{}", live.text);

    // Again, for the delta of a cut-over: nothing new, and the hashes
    // upgraded here stay.
    let again = import(&app, &url, false).await;
    assert_eq!((again.users.added, again.users.updated), (0, 0));
    assert_eq!(again.users.skipped.get("unchanged"), Some(&8));
    assert_eq!(again.tokens.skipped.get("already imported"), Some(&2));
    assert_eq!(again.groups.skipped.get("already imported"), Some(&2));
    assert_eq!(again.memberships.skipped.get("already imported"), Some(&3));
    assert_eq!(again.memberships.added, 0);
    assert_eq!(login(&app, "user_bcrypt", password).await.status, 200);

    // New users get ids after Django's.
    let created = app.register("newcomer").await;
    assert!(created["id"].as_i64().unwrap() > 8, "{created}");
}

#[tokio::test]
async fn different_users_with_the_same_ids_are_refused_unless_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let url = django_db(&dir);
    let app = spawn_app().await;
    app.register("someone_else").await; // id 1, not Django's user 1
    let source = sea_orm::Database::connect(format!("{url}?mode=ro"))
        .await
        .unwrap();
    let err = tessera::import::import_django(&source, app.service.database(), &options(false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ids 1"), "{err}");
    assert_eq!(
        login(&app, "user_argon2", "Tr0ub4dor_3xyz").await.status,
        401,
        "nothing written"
    );
    let skip = tessera::import::Options {
        on_conflict: tessera::import::Conflict::Skip,
        ..options(false)
    };
    let report = tessera::import::import_django(&source, app.service.database(), &skip)
        .await
        .unwrap();
    assert_eq!(
        report.users.skipped.get("ids held by another user"),
        Some(&1)
    );
    assert_eq!(report.users.added, 7);
    app.login("someone_else").await;
    // Nothing of Django's user 1 reaches the user who kept id 1.
    assert!(app.service.group_names(1).await.unwrap().is_empty());
    let f = fixture();
    let key = f["keys"]["user_pbkdf2_sha256"].as_str().unwrap();
    let me = app.get("/api/v1/auth/users/me/", Some(&token(key))).await;
    assert_eq!(me.status, 401, "{}", me.text);
    assert_eq!(report.tokens.skipped.get("of users not imported"), Some(&1));
}

#[tokio::test]
async fn an_overwritten_user_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let url = django_db(&dir);
    let app = spawn_app().await;
    let id = app.register("someone_else").await["id"].as_i64().unwrap();
    assert_eq!(id, 1);
    app.join_group(id, "local").await;
    let (refresh, _) = app.login("someone_else").await;
    let key = app.token_login("someone_else", PASSWORD).await;
    let source = sea_orm::Database::connect(format!("{url}?mode=ro"))
        .await
        .unwrap();
    let overwrite = tessera::import::Options {
        on_conflict: tessera::import::Conflict::Overwrite,
        ..options(false)
    };
    tessera::import::import_django(&source, app.service.database(), &overwrite)
        .await
        .unwrap();
    // Id 1 is Django's user now, with Django's groups only; the replaced
    // user's key and refresh token act for nobody.
    let user = app.service.user(1).await.unwrap();
    assert_eq!(user.username, "user_pbkdf2_sha256");
    assert_eq!(app.service.group_names(1).await.unwrap(), ["staff"]);
    let me = app.get("/api/v1/auth/users/me/", Some(&token(&key))).await;
    assert_eq!(me.status, 401, "{}", me.text);
    assert_eq!(app.refresh(&refresh).await.status, 401);
    let f = fixture();
    let django_key = f["keys"]["user_pbkdf2_sha256"].as_str().unwrap();
    let me = app
        .get("/api/v1/auth/users/me/", Some(&token(django_key)))
        .await;
    assert_eq!(me.json["username"], "user_pbkdf2_sha256", "{}", me.text);
}

#[tokio::test]
async fn the_command_reports_and_refuses_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let url = django_db(&dir);
    let target = format!("sqlite://{}/tessera.db?mode=rwc", dir.path().display());
    let run = |args: &[&str]| {
        tessera(
            dir.path(),
            &[
                ("DATABASE_URL", target.as_str()),
                ("TESSERA__LOG__LEVEL", "warn"),
            ],
        )
        .args(["import", "django"])
        .args(args)
        .output()
        .unwrap()
    };
    let out = run(&["--from", &url, "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("users would be: 8 added, 0 updated, 0 skipped"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    let out = run(&["--from", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Token keys were: 2 added"), "{err}");
    assert!(
        err.contains(
            "groups were: 2 added, 0 updated, 1 skipped (1 names with a comma or control character)"
        ),
        "{err}"
    );
    assert!(err.contains("group memberships were: 3 added"), "{err}");
    let out = run(&["--from", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("users were: 0 added, 0 updated, 8 skipped (8 unchanged)"),
        "{err}"
    );
    let out = run(&[
        "--from",
        &url,
        "--user-table",
        "auth_user; DROP TABLE users",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--from", "sqlite:///nonexistent/django.db"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The same Django data in PostgreSQL, as Django's migrations lay it out
/// (tests/fixtures/django_pg.sql, dumped by make_django_db.py), in a schema
/// of its own; the URL that reads it.
async fn django_in_postgres(pg: &str) -> String {
    use sea_orm::ConnectionTrait;
    let schema = format!("dj_{}", uuid::Uuid::new_v4().simple());
    let dump = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django_pg.sql"),
    )
    .unwrap();
    // psql's own commands are not SQL.
    let sql: String = dump
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("django_fixture", &schema);
    let admin = sea_orm::Database::connect(pg).await.unwrap();
    admin.execute_unprepared(&sql).await.unwrap();
    let sep = if pg.contains('?') { '&' } else { '?' };
    format!("{pg}{sep}options=-c%20search_path%3D{schema}")
}

#[tokio::test]
#[ignore = "needs PostgreSQL (TEST_DATABASE_URL); CI runs it with --include-ignored"]
async fn a_django_deployment_on_postgresql_is_taken_over() {
    let pg = require_postgres();
    let source_url = django_in_postgres(&pg).await;
    let app = spawn_app().await;
    let f = fixture();
    let source = sea_orm::Database::connect(source_url).await.unwrap();
    let report = tessera::import::import_django(&source, app.service.database(), &options(false))
        .await
        .unwrap();
    assert_eq!(
        (
            report.users.added,
            report.tokens.added,
            report.blacklist.added
        ),
        (8, 2, 1)
    );
    check_groups(&app, &f, &report).await;
    let password = f["password"].as_str().unwrap();
    for u in f["users"].as_array().unwrap() {
        let name = u["username"].as_str().unwrap();
        assert_eq!(login(&app, name, password).await.status, 200, "{name}");
    }
    let out = app
        .refresh(f["blacklisted_refresh"].as_str().unwrap())
        .await;
    assert_eq!(out.json["detail"], "Token is blacklisted");
    for key in f["keys"].as_object().unwrap().values() {
        let me = app
            .get(
                "/api/v1/auth/users/me/",
                Some(&token(key.as_str().unwrap())),
            )
            .await;
        assert_eq!(me.status, 200);
    }
}
