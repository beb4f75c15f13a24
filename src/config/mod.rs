//! The settings tree, loaded once at start-up from three layers:
//! `config/default.toml` (compiled in) < a TOML file < `TESSERA__SECTION__KEY`
//! environment variables (`DATABASE_URL` also sets `database.url`).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

mod browser;
mod claims;
mod jwt;
mod mail;
mod validate;
mod values;
use values::{Named, networks, optional_duration, optional_rate};

pub use browser::{CookieSettings, CorsSettings, SameSite};
pub use claims::{AuthTokenClass, UserClaim};
pub use jwt::{JwtAlgorithm, JwtSettings, KeyFilePermissions, PreviousKey};
pub use mail::{EmailBackend, EmailSettings, SmtpTls, UsersSettings};
pub use validate::is_loopback;

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

/// Whether a SQLite URL opens its file read-only (`mode=ro`,
/// `immutable=true`): nothing is then written to it, by any path.
pub fn sqlite_read_only(database_url: &str) -> bool {
    // The query as sqlx reads it (`SqliteConnectOptions` has no getter for
    // the mode, and its `to_url_lossy` panics on `sqlite::memory:`).
    let Some((_, query)) = database_url.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        matches!(
            pair.split_once('='),
            Some(("mode", "ro")) | Some(("immutable", "true" | "1"))
        )
    })
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
    pub users: UsersSettings,
    pub email: EmailSettings,
    pub cors: CorsSettings,
    pub cookie: CookieSettings,
    pub log: LogSettings,
}

/// A way to authenticate a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Bearer <access JWT>`.
    Jwt,
    /// `Authorization: Token <opaque key>`.
    Token,
    /// The access JWT in a cookie (`cookie.access_name`), with CSRF checks.
    Cookie,
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
    /// Threads running the async runtime (HTTP and database I/O); 0: one
    /// per CPU but one (see [`ServerSettings::worker_threads`]).
    pub workers: usize,
    /// Peers whose `X-Forwarded-For` names the client (IPs or CIDR blocks).
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ServerSettings {
    /// The async worker threads to start. Where `workers` is 0, one per CPU
    /// but one: a worker woken for a request another worker has already
    /// taken costs CPU for nothing, and on two CPUs one worker served most
    /// requests for a quarter to a third less CPU than two (README,
    /// Performance). The
    /// work that needs whole cores (password hashing, RSA signing) runs on
    /// threads of its own.
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            0 => all_cpus_but_one(),
            n => n,
        }
    }
}

/// The CPUs this process may use (a container's CPU quota included), at
/// least one.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// One thread per CPU but one, at least one.
pub fn all_cpus_but_one() -> usize {
    cpus().saturating_sub(1).max(1)
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
    /// Users (and as many opaque keys, token families and token ids found
    /// not blacklisted) kept in memory between requests; 0 reads every one
    /// from the database.
    pub cache_entries: usize,
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
            .field("cache_entries", &self.cache_entries)
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub hash_workers: usize,
    pub hash_queue: usize,
    /// Accept Django's MD5 and SHA-1 digests (salted or not) at login.
    pub allow_weak_django_hashes: bool,
}

/// Rate limits of sensitive endpoints, per client IP and per username.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// Where the counters live: this instance's memory, or Redis (one
    /// budget per key across every instance).
    pub backend: ThrottleBackend,
    /// `redis://[:PASSWORD@]HOST:PORT/DB`, with `backend = "redis"`; a
    /// secret (it may hold a password), never printed.
    #[serde(deserialize_with = "values::secret_string")]
    pub redis_url: secrecy::SecretString,
    /// Refuse to start while Redis cannot be reached (otherwise start on
    /// the per-instance limiter and switch to Redis once it answers).
    pub redis_required: bool,
    /// A Redis answer slower than this counts as Redis down for the
    /// request (which the per-instance limiter then decides).
    #[serde(deserialize_with = "values::duration")]
    pub redis_timeout: Duration,
    pub login: LoginRates,
    pub register: ScopeRates,
    pub refresh: ScopeRates,
    pub set_password: ScopeRates,
    pub reset: ScopeRates,
}

/// Where the throttle's counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleBackend {
    Memory,
    Redis,
}

impl Named for ThrottleBackend {
    const ALL: &'static [Self] = &[Self::Memory, Self::Redis];
    const EXAMPLE: &'static str =
        "[throttle] backend = \"redis\", or TESSERA__THROTTLE__BACKEND=redis";
    fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
        }
    }
}

/// The limits of logins: per client address, per (username, client
/// address), and per username across every client but those the user has
/// logged in from before, so that a stranger cannot lock a user out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRates {
    #[serde(deserialize_with = "optional_rate")]
    pub ip: Option<Rate>,
    /// Attempts for one username from one client address.
    #[serde(deserialize_with = "optional_rate")]
    pub username: Option<Rate>,
    /// Attempts for one username from every client address it has not
    /// logged in from (a much higher ceiling).
    #[serde(deserialize_with = "optional_rate")]
    pub username_all_clients: Option<Rate>,
    /// How long an address a user logged in from stays exempt from
    /// `username_all_clients`.
    #[serde(deserialize_with = "values::duration")]
    pub known_client_lifetime: Duration,
}

impl LoginRates {
    /// The per-address and per-(username, address) limits, as other
    /// scopes have them.
    pub fn scope_rates(&self) -> ScopeRates {
        ScopeRates {
            ip: self.ip,
            username: self.username,
        }
    }
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
    const ALL: &'static [Self] = &[Self::Jwt, Self::Token, Self::Cookie];
    const EXAMPLE: &'static str =
        "[auth] methods = [\"jwt\", \"token\"], or TESSERA__AUTH__METHODS=jwt,token";
    fn name(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Token => "token",
            Self::Cookie => "cookie",
        }
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
deserialize_by_name!(
    ThrottleBackend,
    KeyFilePermissions,
    UserClaim,
    AuthTokenClass,
    LogFormat,
    AuthMethod,
    JwtAlgorithm,
    EmailBackend,
    SmtpTls,
    SameSite
);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
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
                .with_list_parse_key("jwt.extra_claims")
                .with_list_parse_key("jwt.refresh_extra_claims")
                .with_list_parse_key("jwt.auth_token_classes")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("cors.allowed_origins")
                .with_list_parse_key("cors.allowed_origin_regexes")
                .with_list_parse_key("cors.allowed_methods")
                .with_list_parse_key("cors.allowed_headers")
                .with_list_parse_key("cors.expose_headers")
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
mod tests;
