//! The settings tree, loaded once at start-up from three layers:
//! `config/default.toml` (compiled in) < a TOML file < `TESSERA__SECTION__KEY`
//! environment variables (`DATABASE_URL` also sets `database.url`).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

mod validate;
mod values;
use values::Named;

/// The defaults, documented key by key.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The file of a SQLite URL (`sqlite://path?...`), as sqlx reads it
/// (percent-decoded), or `None` for another database or an in-memory one.
pub fn sqlite_file(database_url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    if !database_url.starts_with("sqlite:") || database_url.contains("mode=memory") {
        return None;
    }
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(database_url).ok()?;
    let path = options.get_filename();
    let in_memory = path.to_string_lossy().starts_with("file:sqlx-in-memory");
    (!in_memory && !path.as_os_str().is_empty()).then(|| path.to_path_buf())
}

/// A setting that is missing, of the wrong type or out of range. The message
/// always names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn key(key: &str, msg: impl fmt::Display) -> Self {
        // The config crate appends " for key `k` in <origin>": the key is
        // already named in front, the origin is worth keeping.
        let msg = msg.to_string();
        let msg = match msg.split_once(" for key `") {
            Some((what, rest)) => match rest.split_once("` in ") {
                Some((_, origin)) => format!("{what} (set in {origin})"),
                None => what.to_owned(),
            },
            None => msg,
        };
        Self(format!("{key}: {msg}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub blacklist: BlacklistSettings,
    pub jwt: JwtSettings,
    pub auth: AuthSettings,
    pub token: TokenSettings,
    pub password: PasswordSettings,
    pub throttle: ThrottleSettings,
    pub log: LogSettings,
}

/// A way to authenticate a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Bearer <access JWT>`.
    Jwt,
    /// `Authorization: Token <opaque key>`.
    Token,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub methods: Vec<AuthMethod>,
}

impl AuthSettings {
    pub fn allows(&self, method: AuthMethod) -> bool {
        self.methods.contains(&method)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// `None`: keys never expire.
    #[serde(deserialize_with = "optional_duration")]
    pub lifetime: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "values::duration")]
    pub shutdown_timeout: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub request_timeout: Duration,
    pub max_header_bytes: usize,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection with no traffic for this long is closed (and its slot
    /// freed).
    #[serde(deserialize_with = "values::duration")]
    pub idle_timeout: Duration,
    /// Peers whose `X-Forwarded-For` names the client (IPs or CIDR blocks).
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub auto_migrate: bool,
    pub max_connections: u32,
    #[serde(deserialize_with = "values::duration")]
    pub acquire_timeout: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub sqlite_busy_timeout: Duration,
    pub connect_attempts: u32,
    #[serde(deserialize_with = "values::duration")]
    pub connect_retry_interval: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub health_probe_interval: Duration,
}

/// The URL with its password, if any, replaced: `Debug` output ends up in
/// logs and panics.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redacted_url(&self.url))
            .field("auto_migrate", &self.auto_migrate)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("sqlite_busy_timeout", &self.sqlite_busy_timeout)
            .field("connect_attempts", &self.connect_attempts)
            .field("connect_retry_interval", &self.connect_retry_interval)
            .field("health_probe_interval", &self.health_probe_interval)
            .finish()
    }
}

/// `scheme://user:secret@host/...` as `scheme://user:***@host/...`, and a
/// `password=` query parameter likewise.
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let authority_end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlacklistSettings {
    /// Zero: no background purge.
    #[serde(deserialize_with = "values::duration")]
    pub purge_interval: Duration,
    pub purge_batch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum JwtAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl JwtAlgorithm {
    pub const ALL: [JwtAlgorithm; 12] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The shortest HMAC secret this algorithm accepts: RFC 7518 §3.2 asks
    /// for a key at least as long as the hash (32, 48 or 64 bytes).
    pub fn min_hmac_key_bytes(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }

    /// Why an HMAC secret of `len` bytes is refused for this algorithm.
    pub fn too_short(self, len: usize) -> String {
        let min = self.min_hmac_key_bytes();
        format!(
            "an HMAC key for {} must be at least {min} bytes ({} bits, the hash size, as RFC 7518 §3.2 requires); this one has {len}",
            self.as_str(),
            min * 8
        )
    }

    /// HMAC algorithms share one secret; the others sign with a private key.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

/// A retired key that still verifies and is still published.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    pub kid: String,
    /// Defaults to `jwt.algorithm`.
    #[serde(default)]
    pub algorithm: Option<JwtAlgorithm>,
    #[serde(default)]
    pub verifying_key: String,
    #[serde(default)]
    pub verifying_key_file: String,
}

/// A retired HMAC key's `verifying_key` is a secret: never printed.
impl fmt::Debug for PreviousKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviousKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field(
                "verifying_key",
                &if self.verifying_key.is_empty() {
                    ""
                } else {
                    "[REDACTED]"
                },
            )
            .field("verifying_key_file", &self.verifying_key_file)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    pub algorithm: JwtAlgorithm,
    /// Empty means "generate one and keep it beside the database".
    #[serde(deserialize_with = "secret_string")]
    pub signing_key: SecretString,
    #[serde(deserialize_with = "empty_is_none")]
    pub signing_key_file: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub verifying_key: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub verifying_key_file: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub key_id: Option<String>,
    #[serde(deserialize_with = "values::duration")]
    pub jwks_max_age: Duration,
    pub previous_keys: Vec<PreviousKey>,
    #[serde(deserialize_with = "values::duration")]
    pub access_token_lifetime: Duration,
    #[serde(deserialize_with = "values::duration")]
    pub refresh_token_lifetime: Duration,
    pub rotate_refresh_tokens: bool,
    pub blacklist_after_rotation: bool,
    pub reuse_detection: bool,
    #[serde(deserialize_with = "values::duration")]
    pub reuse_grace_interval: Duration,
    pub update_last_login: bool,
    #[serde(deserialize_with = "values::duration")]
    pub leeway: Duration,
    #[serde(deserialize_with = "empty_is_none")]
    pub audience: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    pub issuer: Option<String>,
    pub auth_header_types: Vec<String>,
    pub user_id_claim: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub hash_workers: usize,
    pub hash_queue: usize,
}

/// Rate limits of sensitive endpoints, per client IP and per username.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    pub enabled: bool,
    pub login: ScopeRates,
    pub register: ScopeRates,
    pub refresh: ScopeRates,
    pub set_password: ScopeRates,
}

/// The two limits of one group of endpoints; `None`: no limit of that kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRates {
    #[serde(deserialize_with = "optional_rate")]
    pub ip: Option<Rate>,
    #[serde(deserialize_with = "optional_rate")]
    pub username: Option<Rate>,
}

/// `count` requests per `period`, written as DRF writes throttle rates:
/// `"5/min"`, `"100/hour"`, `"10/s"`, `"1000/day"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: std::num::NonZeroU32,
    pub period: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a rate like \"5/min\" (per s, min, hour or day)");
        let (count, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count = count.trim().parse().map_err(|_| bad())?;
        // DRF reads only the unit's first letter: "m", "min" and "minute" alike.
        let period = match unit.trim().chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86400,
            _ => return Err(bad()),
        };
        Ok(Self {
            count,
            period: Duration::from_secs(period),
        })
    }
}

fn optional_rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

/// IP networks, each written as a CIDR block or a single address.
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR block"))
                })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Named for LogFormat {
    const ALL: &'static [Self] = &[Self::Pretty, Self::Json];
    const EXAMPLE: &'static str = "[log] format = \"json\", or TESSERA__LOG__FORMAT=json";
    fn name(self) -> &'static str {
        match self {
            Self::Pretty => "pretty",
            Self::Json => "json",
        }
    }
}

impl Named for AuthMethod {
    const ALL: &'static [Self] = &[Self::Jwt, Self::Token];
    const EXAMPLE: &'static str =
        "[auth] methods = [\"jwt\", \"token\"], or TESSERA__AUTH__METHODS=jwt,token";
    fn name(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Token => "token",
        }
    }
}

impl Named for JwtAlgorithm {
    const ALL: &'static [Self] = &Self::ALL;
    const EXAMPLE: &'static str = "[jwt] algorithm = \"EdDSA\", or TESSERA__JWT__ALGORITHM=HS256";
    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// The enums of the settings, read by name (see [`values::named`]).
macro_rules! deserialize_by_name {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                values::named(d)
            }
        }
    )*};
}
deserialize_by_name!(LogFormat, AuthMethod, JwtAlgorithm);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(s.trim())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((!s.trim().is_empty()).then_some(s))
}

impl Settings {
    /// Loads the layers from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars().collect())
    }

    /// Loads the layers with an explicit environment, so tests need not touch
    /// the process's.
    pub fn load_from(
        file: Option<&Path>,
        env: HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let env_layer = |vars: HashMap<String, String>| {
            Environment::with_prefix("TESSERA")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("jwt.auth_header_types")
                .with_list_parse_key("auth.methods")
                .with_list_parse_key("server.trusted_proxies")
                .try_parsing(true)
                .source(Some(vars))
        };
        // DATABASE_URL is a layer of its own, under TESSERA__DATABASE__URL.
        if let Some(url) = env.get("DATABASE_URL").filter(|u| !u.is_empty()) {
            let vars = HashMap::from([("TESSERA__DATABASE__URL".to_owned(), url.clone())]);
            builder = builder.add_source(env_layer(vars));
        }
        let tessera_env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TESSERA__"))
            .collect();
        builder = builder.add_source(env_layer(tessera_env));
        let raw = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        let settings: Settings = serde_path_to_error::deserialize(raw).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::key(&path, e.into_inner())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate::settings(self)
    }

    /// Whether the database is SQLite (as opposed to PostgreSQL).
    pub fn is_sqlite(&self) -> bool {
        self.database.url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
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
        let s =
            Settings::load_from(Some(&path), env(&[("TESSERA__SERVER__PORT", "7001")])).unwrap();
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
                    "postgres://tessera:hunter2-db-pass@db:5432/auth?sslmode=require&password=q-pass".to_owned(),
                ),
                (
                    "TESSERA__JWT__SIGNING_KEY".to_owned(),
                    "a-very-private-signing-secret-0123456789".to_owned(),
                ),
            ]),
        )
        .unwrap();
        let debug = format!("{s:?}");
        for secret in ["hunter2-db-pass", "q-pass", "a-very-private-signing-secret"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(debug.contains("postgres://tessera:***@db:5432/auth?sslmode=require&password=***"));
        assert_eq!(
            redacted_url("sqlite://tessera.db?mode=rwc"),
            "sqlite://tessera.db?mode=rwc"
        );
        assert_eq!(redacted_url("postgres://u@h/d"), "postgres://u@h/d");
    }
}
