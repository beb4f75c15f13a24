//! The command line: `serve` (the default), `migrate`, `createsuperuser`,
//! `flushexpiredtokens`, `healthcheck`, `openapi`.

mod groups;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::{AuthError, Registration};
use crate::config::Settings;
use crate::startup::{Application, build_app};
use crate::validation::FieldErrors;
use crate::{db, telemetry, validation};

/// Exit code for a bad configuration or command line.
const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "JWT authentication service compatible with Django Simple JWT + Djoser"
)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default). Flags override the environment, which
    /// overrides the config file.
    Serve {
        /// Address to listen on (server.host, TESSERA__SERVER__HOST).
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on (server.port, TESSERA__SERVER__PORT).
        #[arg(long)]
        port: Option<u16>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a staff superuser; the password comes from TESSERA_PASSWORD or a prompt.
    Createsuperuser {
        #[arg(long)]
        username: String,
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Delete blacklist rows whose tokens have expired.
    Flushexpiredtokens,
    /// Log a user out everywhere: every refresh and sliding token issued
    /// until now is refused (those Simple JWT issued too).
    Logoutall {
        #[arg(long)]
        username: String,
    },
    /// Exit 0 if the server configured here answers on /healthz (for Docker's HEALTHCHECK).
    Healthcheck {
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage groups and users' memberships (what `jwt.extra_claims`'s
    /// `groups` and forward auth's `X-Auth-Groups` carry).
    Groups {
        #[command(subcommand)]
        command: groups::GroupsCommand,
    },
    /// Take over a deployment's data.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Copy users (with their password hashes), DRF Token keys and Simple
    /// JWT's blacklisted tokens from a Django database, read-only. User ids
    /// are kept; a second run updates what changed.
    Django {
        /// The Django database: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long = "from")]
        from: String,
        /// Report what would change, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Django's user table (a custom user model's, e.g. accounts_user).
        #[arg(long, default_value = "auth_user")]
        user_table: String,
        /// When a target user has the id of a different Django user.
        #[arg(long, value_enum, default_value = "refuse")]
        on_conflict: crate::import::Conflict,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a fresh key pair (or HMAC secret) and print the settings that use it.
    Generate {
        /// EdDSA (recommended), ES256, ES384, RS256..PS512 or HS256/384/512.
        #[arg(long, value_enum)]
        algorithm: crate::config::JwtAlgorithm,
        /// Folder for the key files (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace key files that already exist (tokens signed with the old
        /// key stop verifying unless it is kept in jwt.previous_keys).
        #[arg(long)]
        force: bool,
    },
}

/// Parses the command line and the settings, starts the async runtime they
/// size, runs the command, and gives the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Generating keys needs no settings (and must work before any exist).
    if let Some(Command::Keys {
        command:
            KeysCommand::Generate {
                algorithm,
                out,
                force,
            },
    }) = &cli.command
    {
        return match keys_generate(*algorithm, out, *force) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tessera: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(&settings.log);
    let command = cli.command.unwrap_or(Command::Serve {
        host: None,
        port: None,
    });
    let result = match crate::startup::runtime(settings.server.worker_threads()) {
        Ok(rt) => rt.block_on(run(settings, command)),
        Err(e) => Err(failed(format!("cannot start the async runtime: {e}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Config(msg)) => {
            eprintln!("tessera: {msg}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("tessera: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` with `settings`.
async fn run(mut settings: Settings, command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve { host, port } => {
            if let Some(host) = host {
                settings.server.host = host;
            }
            if let Some(port) = port {
                settings.server.port = port;
            }
            serve(settings).await
        }
        Command::Migrate => migrate(settings).await,
        Command::Createsuperuser { username, email } => {
            createsuperuser(settings, username, email).await
        }
        Command::Flushexpiredtokens => flush(settings).await,
        Command::Logoutall { username } => logoutall(settings, &username).await,
        Command::Healthcheck { timeout } => healthcheck(&settings, timeout).await,
        Command::Openapi => {
            println!("{}", crate::http::spec_json());
            Ok(())
        }
        Command::Keys { .. } => unreachable!("handled before loading settings"),
        Command::Groups { command } => match build_app(settings).await {
            Ok(app) => groups::run(&app, command).await,
            Err(e) => Err(failed(e)),
        },
        Command::Import {
            command:
                ImportCommand::Django {
                    from,
                    dry_run,
                    user_table,
                    on_conflict,
                },
        } => {
            let opts = crate::import::Options {
                dry_run,
                user_table,
                on_conflict,
            };
            import_django(settings, &from, &opts).await
        }
    }
}

enum CliError {
    /// Wrong settings or input: exit code 2.
    Config(String),
    /// Anything else: exit code 1.
    Failed(String),
}

fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

async fn serve(settings: Settings) -> Result<(), CliError> {
    let app = Application::build(settings).await.map_err(|e| match e {
        crate::startup::StartupError::Key(k) => CliError::Config(k.to_string()),
        crate::startup::StartupError::Unsafe(msg) => CliError::Config(msg),
        crate::startup::StartupError::Init(crate::app::InitError::Redis(
            e @ crate::throttle::RedisError::Url(_),
        )) => CliError::Config(e.to_string()),
        other => failed(other),
    })?;
    app.run_until_stopped().await.map_err(failed)
}

/// The database for a one-off command: the same checks as at start-up,
/// one attempt.
async fn open_database(settings: &Settings) -> Result<sea_orm::DatabaseConnection, CliError> {
    db::prepare_sqlite_file(&settings.database.url).map_err(failed)?;
    db::connect(&settings.database)
        .await
        .map_err(|e| failed(format!("cannot connect to the database: {e}")))
}

async fn migrate(settings: Settings) -> Result<(), CliError> {
    let conn = open_database(&settings).await?;
    db::migrate(&conn).await.map_err(failed)?;
    eprintln!("tessera: migrations applied");
    Ok(())
}

async fn createsuperuser(
    settings: Settings,
    username: String,
    email: String,
) -> Result<(), CliError> {
    // The name and email are checked before the password is asked for.
    let name = validation::normalize_username(&username);
    let mut problems = validation::username(&name);
    problems.extend(validation::email(&email));
    if !problems.is_empty() {
        return Err(CliError::Config(problems.join(" ")));
    }
    let password = match std::env::var("TESSERA_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ if !std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            return Err(CliError::Config(
                "no terminal to ask for the password: set TESSERA_PASSWORD \
                 (e.g. docker exec -e TESSERA_PASSWORD=... <container> tessera createsuperuser --username admin)"
                    .into(),
            ));
        }
        _ => {
            let first = rpassword::prompt_password("Password: ").map_err(failed)?;
            let again = rpassword::prompt_password("Password (again): ").map_err(failed)?;
            if first != again {
                return Err(CliError::Config("the two passwords differ".into()));
            }
            first
        }
    };
    let app = build_app(settings).await.map_err(failed)?;
    let registration = Registration {
        username: Some(username),
        email: Some(email),
        password: Some(SecretString::from(password)),
        password_retype: None,
        superuser: true,
    };
    let user = app
        .register(registration, FieldErrors::default())
        .await
        .map_err(|e| match e {
            AuthError::Invalid(errors) => CliError::Config(errors.messages().join(" ")),
            other => failed(other),
        })?;
    eprintln!(
        "tessera: superuser {} created (id {})",
        user.username, user.id
    );
    Ok(())
}

fn keys_generate(
    alg: crate::config::JwtAlgorithm,
    out: &std::path::Path,
    force: bool,
) -> Result<(), crate::tokens::keys::KeyError> {
    let files = crate::tokens::keys::generate(alg, out, force)?;
    let abs = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let private = abs(&files.private);
    eprintln!(
        "tessera: wrote {} (mode 0600: keep it secret)",
        private.display()
    );
    if let Some(public) = &files.public {
        eprintln!(
            "tessera: wrote {} (public: share it freely)",
            abs(public).display()
        );
    }
    // The settings, on stdout: lines a shell can run as they are
    // (`eval "$(tessera keys generate ...)"`), or an env file can take.
    println!("export TESSERA__JWT__ALGORITHM={}", alg.as_str());
    println!(
        "export TESSERA__JWT__SIGNING_KEY_FILE={}",
        shell_quote(&private.display().to_string())
    );
    if let Some(public) = &files.public {
        println!(
            "export TESSERA__JWT__VERIFYING_KEY_FILE={}",
            shell_quote(&abs(public).display().to_string())
        );
    }
    Ok(())
}

/// `text` as one shell word: as it is when it needs no quoting.
fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@".contains(&b))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

async fn flush(settings: Settings) -> Result<(), CliError> {
    let conn = open_database(&settings).await?;
    let purged = crate::purge::purge_expired(&conn, &settings, Utc::now())
        .await
        .map_err(failed)?;
    eprintln!(
        "tessera: deleted {} expired blacklist rows and {} expired token families",
        purged.blacklist, purged.families
    );
    Ok(())
}

async fn logoutall(settings: Settings, username: &str) -> Result<(), CliError> {
    let app = build_app(settings).await.map_err(failed)?;
    let user = app.user_named(username).await.map_err(|e| match e {
        AuthError::NoSuchUser => CliError::Config(format!("no user named {username:?}")),
        other => failed(other),
    })?;
    let families = app.logout_all(user.id).await.map_err(failed)?;
    eprintln!(
        "tessera: {} logged out everywhere ({families} token families revoked)",
        user.username
    );
    Ok(())
}

async fn import_django(
    settings: Settings,
    from: &str,
    opts: &crate::import::Options,
) -> Result<(), CliError> {
    let source = open_source(from).await?;
    let target = open_database(&settings).await?;
    db::migrate(&target).await.map_err(failed)?;
    let report = crate::import::import_django(&source, &target, opts)
        .await
        .map_err(|e| match e {
            crate::import::ImportError::Conflict(_) | crate::import::ImportError::BadTable(_) => {
                CliError::Config(e.to_string())
            }
            other => failed(other),
        })?;
    let what = if opts.dry_run { "would be" } else { "were" };
    eprintln!("tessera: users {what}: {}", report.users);
    eprintln!("tessera: groups {what}: {}", report.groups);
    eprintln!("tessera: group memberships {what}: {}", report.memberships);
    eprintln!("tessera: Token keys {what}: {}", report.tokens);
    eprintln!(
        "tessera: blacklisted refresh tokens {what}: {}",
        report.blacklist
    );
    if opts.dry_run {
        eprintln!("tessera: dry run: nothing was written");
    }
    Ok(())
}

/// The Django database, opened so that nothing can be written to it.
async fn open_source(url: &str) -> Result<sea_orm::DatabaseConnection, CliError> {
    use sea_orm::ConnectionTrait;
    let url = if url.starts_with("sqlite:") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{}{sep}mode=ro", url.replace("mode=rwc", "mode=ro"))
    } else {
        url.to_owned()
    };
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(1).sqlx_logging(false);
    let conn = sea_orm::Database::connect(options)
        .await
        .map_err(|e| CliError::Config(format!("--from: cannot open the Django database: {e}")))?;
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_unprepared("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .await
            .map_err(failed)?;
    }
    Ok(conn)
}

/// A plain HTTP/1.0 GET of /healthz on the configured port, so the check needs
/// no HTTP client and works in a minimal container.
async fn healthcheck(settings: &Settings, timeout: u64) -> Result<(), CliError> {
    let host = match settings.server.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    };
    let port = settings.server.port;
    let check = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream
            .write_all(format!("GET /healthz HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let answer = tokio::time::timeout(Duration::from_secs(timeout), check)
        .await
        .map_err(|_| failed(format!("no answer from {host}:{port} within {timeout}s")))?
        .map_err(|e| failed(format!("{host}:{port}: {e}")))?;
    let status_line = String::from_utf8_lossy(&answer);
    let status_line = status_line.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(failed(format!("unhealthy: {status_line}")))
    }
}
