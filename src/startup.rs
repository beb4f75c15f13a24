//! Building and running the application. `main` and the tests start it the
//! same way: build (connect, migrate, bind), read the port, run.

use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::app::App;
use crate::config::Settings;
use crate::db;
use crate::passwords::{PasswordError, PasswordHasher};
use crate::tokens::keys::{KeyError, KeySource};
use crate::tokens::{KeyRing, TokenService};

/// PostgreSQL: how long start-up waits for the cache's LISTEN connection
/// before serving without it.
const LISTEN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    SqliteFile(#[from] db::SqliteFileError),
    #[error("cannot connect to the database: {0}")]
    Connect(sea_orm::DbErr),
    #[error("cannot migrate the database: {0}")]
    Migrate(sea_orm::DbErr),
    /// `database.auto_migrate` is off and the schema is older than this
    /// binary: queries would fail on missing tables or columns, and the
    /// cache's triggers could be the old ones.
    #[error(
        "database.auto_migrate is off and the database is not migrated: {} of this version's \
         {total} migrations {} not applied ({}); run `tessera migrate`, or set \
         database.auto_migrate = true, and start again",
        .pending.len(),
        if .pending.len() == 1 { "is" } else { "are" },
        named(.pending)
    )]
    NotMigrated { pending: Vec<String>, total: usize },
    #[error("cannot read which migrations the database has applied: {0}")]
    MigrationStatus(sea_orm::DbErr),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Init(#[from] crate::app::InitError),
    /// Settings that are valid alone but unsafe for how the server listens.
    #[error("configuration error: {0}")]
    Unsafe(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// Migration names for a message: all of a few, the first and last of many
/// (an empty database lacks every one).
fn named(names: &[String]) -> String {
    match names {
        [first, _, _, .., last] => format!("{first} to {last}"),
        few => few.join(", "),
    }
}

/// Builds the application state from the settings: key, database, hasher.
pub async fn build_app(settings: Settings) -> Result<App, StartupError> {
    // Before the key, which may be generated beside the database file.
    db::prepare_sqlite_file(&settings.database.url)?;
    let (keys, source) = KeyRing::from_settings(&settings)?;
    match &source {
        KeySource::Configured => {}
        KeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            "jwt.signing_key is not set: generated a new random key and saved it; \
             set jwt.signing_key to share one key between instances"
        ),
        KeySource::Reused(path) => tracing::warn!(
            path = %path.display(),
            "jwt.signing_key is not set: using the key generated at first start"
        ),
        KeySource::Ephemeral => tracing::warn!(
            "jwt.signing_key is not set and the database is in memory: \
             using a random key that lives as long as this process"
        ),
    }
    let db = db::connect_with_retry(&settings.database)
        .await
        .map_err(StartupError::Connect)?;
    if settings.database.auto_migrate {
        db::migrate(&db).await.map_err(StartupError::Migrate)?;
    } else {
        let pending = db::pending_migrations(&db)
            .await
            .map_err(StartupError::MigrationStatus)?;
        if !pending.is_empty() {
            return Err(StartupError::NotMigrated {
                pending,
                total: <migration::Migrator as migration::MigratorTrait>::migrations().len(),
            });
        }
    }
    let hasher = PasswordHasher::new(&settings.password)?;
    let keys_are_hmac = settings.jwt.algorithm.is_hmac();
    let tokens = TokenService::with_keys(keys, &settings.jwt);
    if !keys_are_hmac
        && secrecy::ExposeSecret::expose_secret(&settings.users.token_secret).is_empty()
    {
        tracing::warn!(
            "users.token_secret is not set: activation and reset links are keyed by a secret \
             derived from the signing key and stop working when it changes; set \
             users.token_secret to keep them across key rotations"
        );
    }
    if settings.cookie.enabled && !settings.cookie.secure {
        tracing::warn!(
            "cookie.secure is false: token cookies also travel over plain HTTP; \
             accepted for a deployment on localhost only"
        );
    }
    let required = settings.throttle.redis_required;
    let app = App::new(settings, db, tokens, hasher)?;
    if required {
        app.throttle()
            .ping()
            .await
            .map_err(crate::app::InitError::from)?;
    }
    Ok(app)
}

/// The async runtime the server runs on, with `workers` worker threads
/// (the benchmarks' framework floor starts the same one).
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

/// The URL a browser on this machine opens to reach a server bound to
/// `host`: a wildcard address is reached on loopback.
pub fn local_url(host: &str, port: u16) -> String {
    match host {
        "0.0.0.0" | "" => format!("http://127.0.0.1:{port}/"),
        "::" | "[::]" => format!("http://[::1]:{port}/"),
        h if h.contains(':') && !h.starts_with('[') => format!("http://[{h}]:{port}/"),
        h => format!("http://{h}:{port}/"),
    }
}

/// A built application, listening but not yet serving.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    app: App,
}

impl Application {
    /// Connects, migrates and binds. Port 0 picks a free port.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Checked here, with --host applied: the console backend prints
        // every mail, reset links included, which is fine on a developer's
        // machine and not where others can read the output or reach the
        // server.
        if settings.email.backend == crate::config::EmailBackend::Console
            && !crate::config::is_loopback(&settings.server.host)
        {
            return Err(StartupError::Unsafe(format!(
                "email.backend: \"console\" prints every mail, reset links included, on stdout; \
                 it is for a loopback server.host, not {}: set email.backend to \"smtp\" \
                 (or \"file\")",
                settings.server.host
            )));
        }
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let app = build_app(settings).await?;
        let acceptor = TcpListener::bind(addr.clone())
            .into_acceptor()
            .await
            .map_err(|e| StartupError::Bind(addr.clone(), e))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or_default();
        Ok(Self {
            acceptor,
            port,
            app,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting and lets
    /// in-flight requests finish. Background tasks (database probe,
    /// blacklist purge, forgetting idle throttle keys) run alongside.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let app = self.app;
        let settings = app.settings().clone();
        let probe = tokio::spawn(app.database_health().clone().probe(
            app.database().clone(),
            settings.database.health_probe_interval,
        ));
        let purge = (!settings.blacklist.purge_interval.is_zero())
            .then(|| tokio::spawn(purge_loop(app.clone(), settings.blacklist.purge_interval)));
        let forget = tokio::spawn({
            let app = app.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    app.throttle().forget_idle();
                }
            }
        });
        // PostgreSQL: the cache serves nothing until it hears about changes.
        let listen = app.cache().needs_listener().then(|| {
            let pool = app.database().get_postgres_connection_pool().clone();
            let task = tokio::spawn(crate::cache::listen(
                app.cache().clone(),
                pool.clone(),
                settings.database.url.clone(),
            ));
            (task, app.cache().clone(), pool)
        });
        // The port is bound: connections wait in the backlog meanwhile.
        if listen.is_some() && !app.cache().until_listening(LISTEN_WAIT).await {
            tracing::warn!(
                "cache invalidation: the LISTEN connection is not up yet; serving without the cache, and without holding writes until the other instances heard them, until it is"
            );
        }
        // argon2's 19 MiB blocks stay while logins keep coming, not after.
        let release = tokio::spawn({
            let app = app.clone();
            async move {
                let mut every = tokio::time::interval(crate::passwords::MEMORY_IDLE / 2);
                loop {
                    every.tick().await;
                    app.password_hasher()
                        .release_idle_memory(crate::passwords::MEMORY_IDLE);
                }
            }
        });
        let url = local_url(&settings.server.host, self.port);
        tracing::info!(
            host = %settings.server.host,
            port = self.port,
            workers = tokio::runtime::Handle::current().metrics().num_workers(),
            "listening on {url} (Swagger UI: {url}docs)"
        );
        let acceptor = crate::listener::LimitedAcceptor::new(
            self.acceptor,
            settings.server.max_connections,
            app.metrics().connections_open.clone(),
        );
        let endpoint = crate::http::app(app);
        let result = Server::new_with_acceptor(acceptor)
            .idle_timeout(settings.server.idle_timeout)
            .run_with_graceful_shutdown(
                endpoint,
                shutdown_signal(),
                Some(settings.server.shutdown_timeout),
            )
            .await;
        probe.abort();
        forget.abort();
        release.abort();
        if let Some((task, cache, pool)) = listen {
            task.abort();
            // No beat after this: the others stop waiting for this one.
            let _ = task.await;
            cache.leave(&pool).await;
        }
        if let Some(p) = purge {
            p.abort();
        }
        tracing::info!("stopped");
        result
    }
}

/// Deletes expired blacklist rows and token families every `interval`.
async fn purge_loop(app: App, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Ok(db) = app.store() else { continue };
        match crate::purge::purge_expired(db, app.settings(), chrono::Utc::now()).await {
            Ok(p) if p.blacklist + p.families == 0 => {}
            Ok(p) => tracing::info!(
                blacklist = p.blacklist,
                families = p.families,
                "purged expired blacklist rows and token families"
            ),
            Err(e) => tracing::warn!(error = %e, "purge of expired rows failed; will retry"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
