//! The real binary: configuration errors, the generated key, and the
//! maintenance commands.

use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::*;

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_settings_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, named) in [
        ("TESSERA__SERVER__PORT", "eighty", "server.port"),
        (
            "TESSERA__JWT__ACCESS_TOKEN_LIFETIME",
            "soon",
            "jwt.access_token_lifetime",
        ),
        ("TESSERA__JWT__SIGNING_KEY", "too-short", "jwt.signing_key"),
        ("TESSERA__JWT__ALGORITHM", "none", "jwt.algorithm"),
    ] {
        let o = run(tessera(dir.path(), &[(key, value)]).arg("serve"));
        assert_eq!(o.status.code(), Some(2), "{key}: {}", stderr(&o));
        assert!(stderr(&o).contains(named), "{key}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("too-short") || key != "TESSERA__JWT__SIGNING_KEY",
            "the key is not echoed"
        );
    }
    let o = run(tessera(dir.path(), &[]).args(["--config", "missing.toml", "migrate"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn an_hmac_key_is_at_least_as_long_as_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    for (alg, len, min) in [("HS256", 31, 32), ("HS384", 47, 48), ("HS512", 63, 64)] {
        // Varied enough to pass the check for non-random secrets.
        let key: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
            .chars()
            .take(len)
            .collect();
        let o = run(tessera(
            dir.path(),
            &[
                ("TESSERA__JWT__ALGORITHM", alg),
                ("TESSERA__JWT__SIGNING_KEY", &key),
            ],
        )
        .arg("migrate"));
        assert_eq!(o.status.code(), Some(2), "{alg}: {}", stderr(&o));
        let wanted = format!("an HMAC key for {alg} must be at least {min} bytes");
        assert!(stderr(&o).contains(&wanted), "{alg}: {}", stderr(&o));
        assert!(!stderr(&o).contains(&key), "the key is not echoed");
        // One byte more is enough.
        let key = format!("{key}!");
        let o = run(tessera(
            dir.path(),
            &[
                ("TESSERA__JWT__ALGORITHM", alg),
                ("TESSERA__JWT__SIGNING_KEY", &key),
                ("DATABASE_URL", "sqlite::memory:"),
            ],
        )
        .arg("migrate"));
        assert_eq!(o.status.code(), Some(0), "{alg}: {}", stderr(&o));
    }
}

#[test]
fn unknown_keys_in_a_config_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.toml"),
        "[jwt]\nacess_token_lifetime = \"5m\"\n",
    )
    .unwrap();
    let o = run(tessera(dir.path(), &[("TESSERA_CONFIG", "t.toml")]).arg("migrate"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("acess_token_lifetime"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn generated_key_is_kept_private_and_reused_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = Server::start(dir.path(), &[]).await;
    let key_path = dir.path().join("tessera.key");
    assert!(dir.path().join("tessera.db").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key.trim().len(), 64);
    let pair = server.register_and_login(&client, "alice").await;
    // The database holds password hashes, key digests and emails: as
    // private as the key, and so are SQLite's files beside it.
    #[cfg(unix)]
    for name in ["tessera.db", "tessera.db-wal", "tessera.db-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    let (status, log) = server.stop();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    assert_eq!(
        log.matches("jwt.signing_key is not set").count(),
        1,
        "{log}"
    );
    assert!(!log.contains(key.trim()), "the key never reaches the log");

    let server = Server::start(dir.path(), &[]).await;
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
    let r = client
        .get(server.url("/api/v1/auth/users/me/"))
        .bearer_auth(pair["access"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a token from before the restart still verifies"
    );
    let (_, log) = server.stop();
    assert!(
        log.contains("using the key generated at first start"),
        "{log}"
    );
}

#[tokio::test]
async fn healthcheck_reports_whether_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let port = server.port.to_string();
    let o = run(tessera(dir.path(), &[("TESSERA__SERVER__PORT", &port)]).arg("healthcheck"));
    assert!(o.status.success(), "{}", stderr(&o));
    server.stop();
    let o = run(tessera(dir.path(), &[("TESSERA__SERVER__PORT", &port)]).arg("healthcheck"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[tokio::test]
async fn migrate_createsuperuser_and_flush() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
        ("TESSERA__DATABASE__AUTO_MIGRATE", "false"),
        ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "1024"),
    ];
    let o = run(tessera(dir.path(), &env).arg("migrate"));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut with_pw = env.to_vec();
    with_pw.push(("TESSERA_PASSWORD", PASSWORD));
    let o = run(tessera(dir.path(), &with_pw).args([
        "createsuperuser",
        "--username",
        "admin",
        "--email",
        "admin@example.com",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains(PASSWORD));
    let o = run(tessera(dir.path(), &with_pw).args(["createsuperuser", "--username", "admin"]));
    assert_eq!(o.status.code(), Some(2), "a taken name: {}", stderr(&o));
    assert!(stderr(&o).contains("already exists"));
    let mut weak = env.to_vec();
    weak.push(("TESSERA_PASSWORD", "1234"));
    let o = run(tessera(dir.path(), &weak).args(["createsuperuser", "--username", "root2"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let server = Server::start(dir.path(), &env).await;
    let client = reqwest::Client::new();
    let pair: serde_json::Value = client
        .post(server.url("/api/token/"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = client
        .post(server.url("/api/token/blacklist/"))
        .json(&json!({"refresh": pair["refresh"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop();

    // A live row survives the purge; an expired one does not.
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    tessera::blacklist::add(&db, "expired-jti", None, past, past)
        .await
        .unwrap();
    let o = run(tessera(dir.path(), &env).arg("flushexpiredtokens"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("deleted 1 expired"), "{}", stderr(&o));
    assert!(
        !tessera::blacklist::contains(&db, "expired-jti")
            .await
            .unwrap()
    );
    let jti = claims(pair["refresh"].as_str().unwrap())["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(tessera::blacklist::contains(&db, &jti).await.unwrap());
}

#[test]
fn enum_and_duration_errors_list_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, wanted) in [
        (
            "TESSERA__JWT__ALGORITHM",
            "hs256",
            r#"did you mean "HS256"?); accepted: HS256, HS384, HS512"#,
        ),
        (
            "TESSERA__LOG__FORMAT",
            "yaml",
            "accepted: pretty, json (e.g.",
        ),
        (
            "TESSERA__AUTH__METHODS",
            "jwt,session",
            "accepted: jwt, token",
        ),
        (
            "TESSERA__JWT__ACCESS_TOKEN_LIFETIME",
            "300",
            r#"300 has no unit; write a number with its unit, e.g. "300s", "5m""#,
        ),
        (
            "TESSERA__JWT__ACCESS_TOKEN_LIFETIME",
            "soon",
            r#""soon" is not a duration"#,
        ),
    ] {
        let o = run(tessera(dir.path(), &[(key, value)]).arg("migrate"));
        assert_eq!(o.status.code(), Some(2), "{key}: {}", stderr(&o));
        assert!(stderr(&o).contains(wanted), "{key}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("variant"),
            "no Rust words: {}",
            stderr(&o)
        );
    }
    // In a config file too.
    std::fs::write(
        dir.path().join("t.toml"),
        "[jwt]\naccess_token_lifetime = 300\n",
    )
    .unwrap();
    let o = run(tessera(dir.path(), &[]).args(["--config", "t.toml", "migrate"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("jwt.access_token_lifetime: 300 has no unit"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unusable_sqlite_path_is_named_with_its_fix_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    for (url, wanted) in [
        (
            "sqlite://missing/folder/t.db?mode=rwc",
            "create the folder (mkdir -p missing/folder)",
        ),
        ("sqlite://a-file/t.db?mode=rwc", "a-file is not a folder"),
        ("sqlite://absent.db", "add ?mode=rwc to DATABASE_URL"),
    ] {
        for command in ["serve", "migrate"] {
            let started = std::time::Instant::now();
            let o = run(tessera(dir.path(), &[("DATABASE_URL", url)]).arg(command));
            assert_eq!(o.status.code(), Some(1), "{url}: {}", stderr(&o));
            assert!(stderr(&o).contains(wanted), "{url}: {}", stderr(&o));
            assert!(!stderr(&o).contains("retrying"), "{}", stderr(&o));
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
    }
    assert!(
        !dir.path().join("missing").exists(),
        "no folder made silently"
    );
    assert!(!dir.path().join("absent.db").exists());
}

#[test]
fn createsuperuser_without_a_terminal_asks_for_tessera_password() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(tessera(dir.path(), &[]).args(["createsuperuser", "--username", "admin"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("set TESSERA_PASSWORD"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn serve_flags_beat_the_environment_and_the_log_gives_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = tessera(
        dir.path(),
        &[
            ("TESSERA__SERVER__PORT", "1"),
            ("TESSERA__SERVER__HOST", "0.0.0.0"),
        ],
    )
    .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let mut up = false;
    for _ in 0..100 {
        if reqwest::get(format!("{url}healthz")).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    send_sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(up, "{log}");
    assert!(
        log.contains(&format!("listening on {url} (Swagger UI: {url}docs)")),
        "{log}"
    );
    assert!(!log.contains("\u{1b}["), "no colour codes in a pipe: {log}");
    // A misspelt flag is told apart from a setting.
    let o = run(tessera(dir.path(), &[]).args(["serve", "--prot", "9000"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--port"), "{}", stderr(&o));
}

/// Runs a command that should exit by itself; one still running after 20 s
/// is killed and the test fails (a `serve` that went on serving).
fn run_to_exit(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("still running after 20 s:\n{}", stderr(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn with_auto_migrate_off_an_unmigrated_database_is_named_and_refused() {
    use migration::{MigratorTrait, SchemaManager};
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
        ("TESSERA__DATABASE__AUTO_MIGRATE", "false"),
    ];
    let names: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let (first, last) = (&names[0], names.last().unwrap());
    let total = names.len();

    // An empty database: every migration is missing, and the check writes
    // nothing (no migrations table).
    for command in ["serve", "logoutall"] {
        let mut cmd = tessera(dir.path(), &env);
        cmd.arg(command);
        if command == "logoutall" {
            cmd.args(["--username", "someone"]);
        }
        let o = run_to_exit(&mut cmd);
        assert_eq!(o.status.code(), Some(1), "{command}: {}", stderr(&o));
        let text = stderr(&o);
        for wanted in [
            format!("{total} of this version's {total} migrations are not applied"),
            format!("({first} to {last})"),
            "run `tessera migrate`".to_owned(),
        ] {
            assert!(text.contains(&wanted), "{command}: {wanted:?} in {text}");
        }
    }
    let db = sea_orm::Database::connect(url.as_str()).await.unwrap();
    assert!(
        !SchemaManager::new(&db)
            .has_table("seaql_migrations")
            .await
            .unwrap()
    );

    // One migration behind: that one is named.
    let o = run(tessera(dir.path(), &env).arg("migrate"));
    assert!(o.status.success(), "{}", stderr(&o));
    db.execute_unprepared(&format!(
        "DELETE FROM seaql_migrations WHERE version = '{last}'"
    ))
    .await
    .unwrap();
    let o = run_to_exit(tessera(dir.path(), &env).arg("serve"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "1 of this version's {total} migrations is not applied ({last})"
        )),
        "{}",
        stderr(&o)
    );

    // Migrated (the last one again: it replaces two functions): it serves.
    let o = run(tessera(dir.path(), &env).arg("migrate"));
    assert!(o.status.success(), "{}", stderr(&o));
    let server = Server::start(dir.path(), &env).await;
    let r = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
}
