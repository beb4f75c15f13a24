//! Unit tests of the settings: layering, validation and value parsing.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_simple_jwt() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s.server.host, "127.0.0.1");
    assert_eq!(s.server.port, 8000);
    assert_eq!(s.jwt.access_token_lifetime, Duration::from_secs(300));
    assert_eq!(s.jwt.refresh_token_lifetime, Duration::from_secs(86400));
    assert_eq!(s.jwt.leeway, Duration::ZERO);
    assert_eq!(s.jwt.auth_header_types, vec!["Bearer"]);
    assert_eq!(s.jwt.audience, None);
    assert!(!s.jwt.rotate_refresh_tokens);
    assert_eq!(s.password.argon2_memory_kib, 19456);
    assert_eq!(s.auth.methods, vec![AuthMethod::Jwt, AuthMethod::Token]);
    assert_eq!(s.token.lifetime, None);
}

#[test]
fn auth_methods_and_token_lifetime() {
    let s = Settings::load_from(
        None,
        env(&[
            ("TESSERA__AUTH__METHODS", "token"),
            ("TESSERA__TOKEN__LIFETIME", "10h"),
        ]),
    )
    .unwrap();
    assert_eq!(s.auth.methods, vec![AuthMethod::Token]);
    assert_eq!(s.token.lifetime, Some(Duration::from_secs(36000)));
    let err = Settings::load_from(None, env(&[("TESSERA__AUTH__METHODS", "jwt,cookie")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("auth.methods"), "{err}");
}

#[test]
fn environment_overrides_with_human_durations_and_lists() {
    let s = Settings::load_from(
        None,
        env(&[
            ("TESSERA__JWT__ACCESS_TOKEN_LIFETIME", "10m"),
            ("TESSERA__SERVER__PORT", "9000"),
            ("TESSERA__JWT__AUTH_HEADER_TYPES", "Bearer,JWT"),
            ("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true"),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.jwt.access_token_lifetime, Duration::from_secs(600));
    assert_eq!(s.server.port, 9000);
    assert_eq!(s.jwt.auth_header_types, vec!["Bearer", "JWT"]);
    assert!(s.jwt.rotate_refresh_tokens);
    assert_eq!(s.database.url, "postgres://postgres@127.0.0.1/test");
}

#[test]
fn file_layer_sits_between_defaults_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "[server]\nport = 7000\nhost = \"0.0.0.0\"\n[jwt]\nleeway = \"1m\"\n",
    )
    .unwrap();
    let s = Settings::load_from(Some(&path), env(&[("TESSERA__SERVER__PORT", "7001")])).unwrap();
    assert_eq!(s.server.port, 7001);
    assert_eq!(s.server.host, "0.0.0.0");
    assert_eq!(s.jwt.leeway, Duration::from_secs(60));
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("TESSERA__SERVER__PORT", "eighty", "server.port"),
        (
            "TESSERA__JWT__ACCESS_TOKEN_LIFETIME",
            "soon",
            "jwt.access_token_lifetime",
        ),
        ("TESSERA__JWT__ALGORITHM", "XS256", "jwt.algorithm"),
        ("TESSERA__JWT__SIGNING_KEY", "short", "jwt.signing_key"),
        (
            "TESSERA__JWT__REFRESH_TOKEN_LIFETIME",
            "0s",
            "jwt.refresh_token_lifetime",
        ),
        ("TESSERA__DATABASE__URL", "mysql://x", "database.url"),
        ("TESSERA__TOKEN__LIFETIME", "forever", "token.lifetime"),
    ];
    for (k, v, key) in cases {
        let err = Settings::load_from(None, env(&[(k, v)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{k}={v}: {err}");
    }
}

#[test]
fn tessera_database_url_wins_over_database_url() {
    let s = Settings::load_from(
        None,
        env(&[
            ("DATABASE_URL", "postgres://a@127.0.0.1/a"),
            ("TESSERA__DATABASE__URL", "postgres://b@127.0.0.1/b"),
        ]),
    )
    .unwrap();
    assert_eq!(s.database.url, "postgres://b@127.0.0.1/b");
}

#[test]
fn missing_file_is_an_error() {
    let err = Settings::load_from(Some(Path::new("/nonexistent/tessera.toml")), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn debug_does_not_print_the_signing_key() {
    let key = "a-very-secret-signing-key-of-more-than-32-bytes";
    let s = Settings::load_from(None, env(&[("TESSERA__JWT__SIGNING_KEY", key)])).unwrap();
    assert!(!format!("{s:?}").contains(key));
}

#[test]
fn debug_prints_no_secret() {
    let s = Settings::load_from(
        None,
        HashMap::from([
            (
                "DATABASE_URL".to_owned(),
                "postgres://tessera:hunter2-db-pass@db:5432/auth?sslmode=require&password=q-pass"
                    .to_owned(),
            ),
            (
                "TESSERA__JWT__SIGNING_KEY".to_owned(),
                "a-very-private-signing-secret-0123456789".to_owned(),
            ),
            (
                "TESSERA__THROTTLE__REDIS_URL".to_owned(),
                "redis://:redis-pass-77@cache:6379/0".to_owned(),
            ),
        ]),
    )
    .unwrap();
    let debug = format!("{s:?}");
    for secret in [
        "hunter2-db-pass",
        "q-pass",
        "a-very-private-signing-secret",
        "redis-pass-77",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("postgres://tessera:***@db:5432/auth?sslmode=require&password=***"));
    assert_eq!(
        redacted_url("sqlite://tessera.db?mode=rwc"),
        "sqlite://tessera.db?mode=rwc"
    );
    assert_eq!(redacted_url("postgres://u@h/d"), "postgres://u@h/d");
}

#[test]
fn claim_settings_from_a_file_keep_their_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        r#"
[jwt]
extra_claims = ["groups", "username", "groups"]
claim_names = { username = "preferredUsername" }
static_claims = { "https://example.com/Tier" = "gold", Tenant = 7, flags = [true] }
auth_token_classes = ["sliding", "access"]
"#,
    )
    .unwrap();
    let s = Settings::load_from(Some(&path), env(&[])).unwrap();
    assert_eq!(s.jwt.claim_name(UserClaim::Username), "preferredUsername");
    assert_eq!(s.jwt.claim_name(UserClaim::Groups), "groups");
    let mut statics: Vec<(&str, String)> = s
        .jwt
        .static_claims
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    statics.sort();
    assert_eq!(
        statics,
        [
            ("Tenant", "7".to_owned()),
            ("flags", "[true]".to_owned()),
            ("https://example.com/Tier", "\"gold\"".to_owned()),
        ],
        "names as written (case, dots), values of any type"
    );
    assert_eq!(
        s.jwt.auth_token_classes,
        [AuthTokenClass::Sliding, AuthTokenClass::Access]
    );
    let claims = crate::tokens::ClaimSet::new(&s.jwt);
    assert!(claims.needs_groups());
    assert_eq!(claims.name(UserClaim::Username), "preferredUsername");
}

#[test]
fn workers_default_to_one_per_cpu_but_one_and_are_bounded() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s.server.workers, 0);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(s.server.worker_threads(), cpus.saturating_sub(1).max(1));
    let s = Settings::load_from(None, env(&[("TESSERA__SERVER__WORKERS", "3")])).unwrap();
    assert_eq!(s.server.workers, 3);
    assert_eq!(s.server.worker_threads(), 3);
    let err = Settings::load_from(None, env(&[("TESSERA__SERVER__WORKERS", "5000")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.workers"), "{err}");
    assert!(Settings::load_from(None, env(&[("TESSERA__SERVER__WORKERS", "-1")])).is_err());
}

#[test]
fn a_read_only_sqlite_url_is_told_apart() {
    for url in [
        "sqlite:///srv/t.db?mode=ro",
        "sqlite:///srv/t.db?immutable=true",
        "sqlite:///srv/t.db?immutable=1",
    ] {
        assert!(sqlite_read_only(url), "{url}");
    }
    for url in [
        "sqlite:///srv/t.db?mode=rwc",
        "sqlite:///srv/t.db?mode=rw",
        "sqlite:///srv/t.db",
        "sqlite::memory:",
        "sqlite://:memory:",
        "postgres://u@h/db",
    ] {
        assert!(!sqlite_read_only(url), "{url}");
    }
}
