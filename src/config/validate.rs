//! Range checks on the settings, section by section, after parsing: each
//! refusal names the key and says what it accepts.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::{ConfigError, Settings};

/// `Err` naming `key` unless `ok`.
fn ensure(ok: bool, key: &str, message: impl std::fmt::Display) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::key(key, message))
    }
}

const POSITIVE: &str = "must be longer than 0s";

pub(super) fn settings(s: &Settings) -> Result<(), ConfigError> {
    server(s)?;
    database(s)?;
    jwt(s)?;
    ensure(
        !s.auth.methods.is_empty(),
        "auth.methods",
        "must list at least one of jwt, token",
    )?;
    ensure(
        !s.token.lifetime.is_some_and(|d| d.is_zero()),
        "token.lifetime",
        "must be longer than 0s, or empty",
    )?;
    password(s)?;
    throttle(s)?;
    email(s)?;
    browser(s)
}

fn server(s: &Settings) -> Result<(), ConfigError> {
    let server = &s.server;
    ensure(
        !server.request_timeout.is_zero(),
        "server.request_timeout",
        POSITIVE,
    )?;
    ensure(
        server.max_header_bytes >= 1024,
        "server.max_header_bytes",
        "must be at least 1024",
    )?;
    ensure(
        (1..=1_000_000).contains(&server.max_connections),
        "server.max_connections",
        "must be between 1 and 1000000",
    )?;
    ensure(
        !server.idle_timeout.is_zero(),
        "server.idle_timeout",
        POSITIVE,
    )?;
    ensure(
        server.workers <= 1024,
        "server.workers",
        "must be between 0 (one per CPU but one) and 1024",
    )
}

fn database(s: &Settings) -> Result<(), ConfigError> {
    let db = &s.database;
    ensure(
        ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| db.url.starts_with(p)),
        "database.url",
        "must start with sqlite:, postgres:// or postgresql://",
    )?;
    ensure(
        !db.health_probe_interval.is_zero(),
        "database.health_probe_interval",
        POSITIVE,
    )?;
    ensure(
        db.max_connections > 0,
        "database.max_connections",
        "must be at least 1",
    )?;
    ensure(
        s.blacklist.purge_batch > 0,
        "blacklist.purge_batch",
        "must be at least 1",
    )
}

fn jwt(s: &Settings) -> Result<(), ConfigError> {
    let jwt = &s.jwt;
    ensure(
        jwt.reuse_grace_interval <= Duration::from_secs(300),
        "jwt.reuse_grace_interval",
        "must be at most 5m: for that long a rotated token still fetches the current pair",
    )?;
    ensure(
        !jwt.access_token_lifetime.is_zero(),
        "jwt.access_token_lifetime",
        POSITIVE,
    )?;
    ensure(
        !jwt.refresh_token_lifetime.is_zero(),
        "jwt.refresh_token_lifetime",
        POSITIVE,
    )?;
    let key_len = jwt.signing_key.expose_secret().len();
    ensure(
        !(jwt.algorithm.is_hmac() && key_len > 0 && key_len < jwt.algorithm.min_hmac_key_bytes()),
        "jwt.signing_key",
        jwt.algorithm.too_short(key_len),
    )?;
    ensure(
        !jwt.auth_header_types.is_empty()
            && !jwt
                .auth_header_types
                .iter()
                .any(|t| t.is_empty() || t.contains(char::is_whitespace)),
        "jwt.auth_header_types",
        "must list at least one keyword, each a single word",
    )?;
    for (i, k) in jwt.previous_keys.iter().enumerate() {
        ensure(
            !k.kid.trim().is_empty(),
            &format!("jwt.previous_keys[{i}].kid"),
            "must not be empty",
        )?;
        ensure(
            k.verifying_key.is_empty() != k.verifying_key_file.is_empty(),
            &format!("jwt.previous_keys[{i}]"),
            "needs exactly one of verifying_key, verifying_key_file",
        )?;
    }
    ensure(
        !jwt.user_id_claim.trim().is_empty(),
        "jwt.user_id_claim",
        "must not be empty",
    )?;
    super::claims::validate(jwt)
}

fn throttle(s: &Settings) -> Result<(), ConfigError> {
    let t = &s.throttle;
    if t.backend == super::ThrottleBackend::Redis {
        let url = t.redis_url.expose_secret();
        ensure(
            url.starts_with("redis://") || url.starts_with("redis+unix://"),
            "throttle.redis_url",
            "with backend = \"redis\": redis://[:PASSWORD@]HOST:PORT/DB or redis+unix:///PATH \
             (TLS to Redis is not built in: keep Redis on a private network or behind a TLS tunnel)",
        )?;
    }
    ensure(
        !t.redis_timeout.is_zero(),
        "throttle.redis_timeout",
        POSITIVE,
    )?;
    ensure(
        !t.login.known_client_lifetime.is_zero(),
        "throttle.login.known_client_lifetime",
        POSITIVE,
    )
}

fn password(s: &Settings) -> Result<(), ConfigError> {
    let pw = &s.password;
    ensure(
        pw.argon2_memory_kib >= 8 * pw.argon2_parallelism.max(1),
        "password.argon2_memory_kib",
        "must be at least 8 KiB per lane",
    )?;
    ensure(
        pw.argon2_iterations > 0,
        "password.argon2_iterations",
        "must be at least 1",
    )?;
    ensure(
        pw.argon2_parallelism > 0,
        "password.argon2_parallelism",
        "must be at least 1",
    )
}

fn email(s: &Settings) -> Result<(), ConfigError> {
    let email = &s.email;

    ensure(
        email.backend != super::EmailBackend::File || email.file_path.is_some(),
        "email.file_path",
        "must name a folder when email.backend is \"file\"",
    )?;
    ensure(email.queue > 0, "email.queue", "must be at least 1")?;
    ensure(email.attempts > 0, "email.attempts", "must be at least 1")?;
    ensure(!email.timeout.is_zero(), "email.timeout", POSITIVE)?;
    for (key, template) in [
        ("users.activation_url", &s.users.activation_url),
        (
            "users.password_reset_confirm_url",
            &s.users.password_reset_confirm_url,
        ),
        (
            "users.username_reset_confirm_url",
            &s.users.username_reset_confirm_url,
        ),
    ] {
        ensure(
            template.contains("{uid}") && template.contains("{token}"),
            key,
            "must contain {uid} and {token}",
        )?;
    }
    ensure(
        !s.users.password_reset_timeout.is_zero(),
        "users.password_reset_timeout",
        POSITIVE,
    )
}

fn browser(s: &Settings) -> Result<(), ConfigError> {
    for origin in &s.cors.allowed_origins {
        ensure(
            (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.trim_end_matches('/').contains(['*', '?', '#'])
                && origin.matches('/').count() == 2,
            "cors.allowed_origins",
            format!("{origin:?} is not an origin: scheme://host[:port], no path or wildcard"),
        )?;
    }
    for re in &s.cors.allowed_origin_regexes {
        if let Err(e) = regex::Regex::new(re) {
            return Err(ConfigError::key(
                "cors.allowed_origin_regexes",
                format!("{re:?}: {e}"),
            ));
        }
    }
    let cookie = &s.cookie;
    let uses_cookies = s.auth.allows(super::AuthMethod::Cookie);
    ensure(
        !uses_cookies || (cookie.enabled && !cookie.access_name.is_empty()),
        "auth.methods",
        "\"cookie\" needs cookie.enabled = true and a cookie.access_name",
    )?;
    ensure(
        !cookie.enabled || !cookie.refresh_name.is_empty(),
        "cookie.refresh_name",
        "must not be empty",
    )?;
    ensure(
        cookie.refresh_path.starts_with('/'),
        "cookie.refresh_path",
        "must start with /",
    )?;
    ensure(
        cookie.secure || cookie.samesite != super::SameSite::None,
        "cookie.samesite",
        "\"None\" needs cookie.secure = true (browsers refuse it otherwise)",
    )?;
    ensure(
        !cookie.enabled || cookie.secure || is_loopback(&s.server.host),
        "cookie.secure",
        "false is accepted only when server.host is 127.0.0.1, ::1 or localhost",
    )
}

/// A host only this machine can reach.
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "::1" | "[::1]" | "localhost")
}
