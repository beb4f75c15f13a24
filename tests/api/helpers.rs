//! Starts the real application on a fresh database for each test and talks
//! to it over HTTP. `TEST_DATABASE_URL` selects PostgreSQL (each test gets its
//! own schema); without it each test gets its own SQLite file.

use std::collections::HashMap;
use std::path::PathBuf;

use reqwest::{Client, Response, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use tempfile::TempDir;
use tessera::app::App;
use tessera::config::Settings;
use tessera::startup::Application;

pub const PASSWORD: &str = "Tr0ub4dor_3xyz";
/// A key long enough for HS256, used by tests that forge tokens.
pub const TEST_KEY: &str = "test-signing-key-0123456789abcdef0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub service: App,
    _dir: TempDir,
}

/// A database of its own for one test: a SQLite file in `dir`, or a fresh
/// schema in the PostgreSQL database named by `TEST_DATABASE_URL`.
pub async fn fresh_database_url(dir: &TempDir) -> String {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        // A URL for another database must not turn into a silent SQLite run.
        Some(url) if !url.starts_with("postgres") => {
            panic!(
                "TEST_DATABASE_URL must be a postgres:// URL (unset it to test on SQLite): {url}"
            )
        }
        Some(url) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(url.as_str())
                .await
                .expect("connect to TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                .await
                .expect("create test schema");
            admin.close().await.ok();
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{schema}")
        }
        None => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("tessera.db").display()
        ),
    }
}

/// The environment a test server starts with: cheap argon2 (the cost is
/// not under test here), a fixed key, a free port.
pub fn base_env(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("TESSERA__SERVER__PORT", "0"),
        ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
        ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "1024"),
        ("TESSERA__PASSWORD__ARGON2_ITERATIONS", "1"),
        ("TESSERA__PASSWORD__HASH_WORKERS", "4"),
        ("TESSERA__LOG__LEVEL", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// For the tests marked `#[ignore = "needs PostgreSQL..."]`: run with
/// `--include-ignored` but without PostgreSQL, they fail rather than pass.
/// The `TEST_DATABASE_URL`.
pub fn require_postgres() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .expect("this test needs PostgreSQL: TEST_DATABASE_URL=postgres://... cargo test -- --include-ignored")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra `TESSERA__...` settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(&dir).await;
    spawn_app_on(dir, &database_url, extra).await
}

/// Starts the app on `database_url` (see [`spawn_app_with`]), keeping `dir`
/// for as long as it runs.
pub async fn spawn_app_on(dir: TempDir, database_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut env = base_env(database_url);
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::load_from(None, env).expect("test settings");
    tessera::telemetry::init(&settings.log);
    let app = Application::build(settings).await.expect("build app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let service = app.app().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        service,

        _dir: dir,
    }
}

/// A response read whole: status, headers and JSON body (Null if empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Answer {
    pub async fn from(resp: Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a 401 with the challenge every 401 carries.
    pub fn assert_401(&self, body: Value) {
        assert_eq!(self.status, 401, "{}", self.text);
        assert_eq!(self.json, body);
        assert_eq!(
            self.header("www-authenticate"),
            Some(r#"Bearer realm="api""#)
        );
    }
}

impl TestApp {
    /// Opens `n` pooled connections to the server, so that `n` requests
    /// sent next leave at once rather than each waiting for a handshake:
    /// what makes a concurrency test overlap its requests.
    pub async fn warm_connections(&self, n: usize) {
        futures::future::join_all((0..n).map(|_| self.get("/healthz", None))).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Answer {
        Answer::from(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        Answer::from(
            self.client
                .post(self.url(path))
                .form(fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_multipart(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        Answer::from(
            self.client
                .post(self.url(path))
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: &str) -> Answer {
        let mut req = self.client.post(self.url(path)).body(body.to_owned());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, authorization: Option<&str>) -> Answer {
        let mut req = self.client.get(self.url(path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    pub async fn me(&self, access: &str) -> Answer {
        self.get("/api/v1/auth/users/me/", Some(&format!("Bearer {access}")))
            .await
    }

    pub async fn register(&self, username: &str) -> Value {
        let a = self
            .post_json(
                "/api/v1/auth/users/",
                serde_json::json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com")}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.json
    }

    /// Logs in and returns (refresh, access).
    pub async fn login(&self, username: &str) -> (String, String) {
        let a = self
            .post_json(
                "/api/token/",
                serde_json::json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        (
            a.json["refresh"].as_str().unwrap().to_owned(),
            a.json["access"].as_str().unwrap().to_owned(),
        )
    }

    /// Logs in for a sliding token.
    pub async fn sliding_login(&self, username: &str) -> String {
        let a = self
            .post_json(
                "/api/token/sliding/",
                serde_json::json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["token"].as_str().unwrap().to_owned()
    }

    pub async fn refresh(&self, refresh: &str) -> Answer {
        self.post_json(
            "/api/token/refresh/",
            serde_json::json!({ "refresh": refresh }),
        )
        .await
    }

    /// Sets a user's `is_active` directly in the database, as an admin
    /// tool would, and waits until the server has heard of it.
    pub async fn set_active(&self, id: i64, active: bool) {
        use sea_orm::{ActiveModelTrait, ActiveValue::Set};
        entity::users::ActiveModel {
            id: Set(id),
            is_active: Set(active),
            ..Default::default()
        }
        .update(self.service.database())
        .await
        .unwrap();
        self.outside_write_heard().await;
    }

    /// Deletes a user directly in the database (see [`Self::set_active`]).
    pub async fn delete_user(&self, id: i64) {
        use sea_orm::EntityTrait;
        entity::users::Entity::delete_by_id(id)
            .exec(self.service.database())
            .await
            .unwrap();
        self.outside_write_heard().await;
    }

    /// A write made beside the server reaches its user cache on SQLite with
    /// the next request (the file's data version), on PostgreSQL by a
    /// notification a moment later: this waits for that moment.
    pub async fn outside_write_heard(&self) {
        self.service.cache().settle(self.service.database()).await;
    }
}

/// The decoded claims of a token we issued.
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Signs arbitrary claims with `key` (HS256), for forging test tokens.
pub fn sign_hs256(key: &str, header: &str, claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!(
        "{}.{}",
        b64.encode(header),
        b64.encode(serde_json::to_vec(claims).unwrap())
    );
    let sig =
        tessera::tokens::SigningKey::hmac(tessera::config::JwtAlgorithm::HS256, key.as_bytes())
            .sign(message.as_bytes());
    format!("{message}.{sig}")
}

/// A refresh token that no refresh has adopted: issued by Simple JWT (or
/// before families existed), with no family row.
pub fn family_less_token(user_id: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &serde_json::json!({"token_type": "refresh", "exp": now + 600, "iat": now, "jti": uuid::Uuid::new_v4().simple().to_string(), "user_id": user_id.to_string()}),
    )
}

/// The Simple JWT vectors (override with `TESSERA_VECTORS`), made by the
/// real Simple JWT with `tests/fixtures/make_vectors.py`.
pub fn vectors_path() -> PathBuf {
    std::env::var("TESSERA_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/simplejwt_vectors.json")
        })
}

/// A JSON file of `tests/fixtures/`.
pub fn fixture_json(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl TestApp {
    /// Writes an active user row directly, as an import from Django (or a
    /// fixture) leaves it: `id` as given (or the next one), the stored
    /// password hash as it is. Returns the id.
    pub async fn insert_user(
        &self,
        id: Option<i64>,
        username: &str,
        email: &str,
        password_hash: &str,
    ) -> i64 {
        use sea_orm::{ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set};
        entity::users::ActiveModel {
            id: id.map_or(NotSet, Set),
            username: Set(username.into()),
            email: Set(email.into()),
            password: Set(password_hash.into()),
            is_active: Set(true),
            is_staff: Set(false),
            is_superuser: Set(false),
            date_joined: Set(chrono::Utc::now()),
            last_login: Set(None),
            tokens_valid_after: Set(None),
            refresh_valid_after: Set(None),
        }
        .insert(self.service.database())
        .await
        .unwrap()
        .id
    }

    /// Any method, with an optional Authorization header and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m, self.url(path));
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    /// Logs in for an opaque key.
    pub async fn token_login(&self, username: &str, password: &str) -> String {
        let a = self
            .post_form(
                "/auth/token/login/",
                &[("username", username), ("password", password)],
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json["auth_token"].as_str().unwrap().to_owned()
    }

    /// Puts user `id` in the group `name`, creating the group if needed.
    pub async fn join_group(&self, id: i64, name: &str) {
        self.service
            .create_group(Some(name.into()), Default::default())
            .await
            .ok();
        let user = self.service.user(id).await.unwrap();
        self.service
            .add_to_group(&user, Some(name.into()), Default::default())
            .await
            .unwrap();
    }

    /// A staff user, created through the service as `createsuperuser` does.
    pub async fn create_staff(&self, username: &str) -> i64 {
        self.service
            .register(
                tessera::app::Registration {
                    username: Some(username.to_owned()),
                    email: Some(format!("{username}@example.com")),
                    password: Some(PASSWORD.into()),
                    password_retype: None,
                    superuser: true,
                },
                Default::default(),
            )
            .await
            .unwrap()
            .id
    }
}

/// The value of the first line of a Prometheus text that starts with
/// `name_and_labels`.
pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name_and_labels} missing from\n{text}"))
}

/// The status of a JWT login.
pub async fn login_status(app: &TestApp, username: &str, password: &str) -> u16 {
    app.post_json(
        "/api/token/",
        serde_json::json!({"username": username, "password": password}),
    )
    .await
    .status
    .as_u16()
}

pub fn bearer(access: &str) -> String {
    format!("Bearer {access}")
}

pub fn token(key: &str) -> String {
    format!("Token {key}")
}

/// The lines of a JSON log (`log.format = "json"`), parsed; others skipped.
pub fn json_log_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- the real binary ----

use std::process::{Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A command with a clean environment apart from what the test sets.
pub fn tessera(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Two `tessera serve` processes started at the same moment on one empty
/// database, sharing a key and the given settings.
pub async fn two_instances(
    dir: &tempfile::TempDir,
    extra: &[(&str, &str)],
) -> (Server, Server, String) {
    let url = fresh_database_url(dir).await;
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("TESSERA__JWT__SIGNING_KEY", TEST_KEY),
    ];
    env.extend_from_slice(extra);
    let (a, b) = tokio::join!(
        Server::start(dir.path(), &env),
        Server::start(dir.path(), &env)
    );
    (a, b, url)
}

/// Stops each server and checks that it exited cleanly.
pub fn stop_cleanly(servers: impl IntoIterator<Item = Server>) {
    for s in servers {
        let (status, log) = s.stop();
        assert!(status.success(), "{status}\n{log}");
    }
}

/// Starts `tessera serve` in `dir` on a free port and waits until it answers.
/// Its log is collected as it comes (a full pipe would stall the server).
pub struct Server {
    pub child: std::process::Child,
    pub port: u16,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    pub async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let port_s = port.to_string();
        let mut all = vec![
            ("TESSERA__SERVER__PORT", port_s.as_str()),
            ("TESSERA__PASSWORD__ARGON2_MEMORY_KIB", "1024"),
            ("TESSERA__PASSWORD__ARGON2_ITERATIONS", "1"),
        ];
        all.extend_from_slice(env);
        let mut child = tessera(dir, &all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let mut server = Self {
            child,
            port,
            log: Some(log),
        };
        for _ in 0..200 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok()
            {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("tessera exited at start ({status}):\n{}", server.take_log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = server.child.kill();
        let _ = server.child.wait();
        panic!("tessera did not start within 20 s:\n{}", server.take_log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Registers `username` (unless taken) and logs in: the JWT pair.
    pub async fn register_and_login(&self, client: &reqwest::Client, username: &str) -> Value {
        let form = [("username", username), ("password", PASSWORD)];
        let created = client
            .post(self.url("/api/v1/auth/users/"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(created.status().as_u16(), 201 | 400),
            "{}",
            created.status()
        );
        let login = client
            .post(self.url("/api/token/"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        login.json().await.unwrap()
    }

    /// A form POST to `path`: the status and the JSON body (`Null` when
    /// there is none).
    pub async fn post_form(
        &self,
        client: &reqwest::Client,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let r = client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(Value::Null))
    }

    /// Logs `username` in for an opaque key: the key.
    pub async fn token_login(&self, client: &reqwest::Client, username: &str) -> String {
        let (code, body) = self
            .post_form(
                client,
                "/auth/token/login/",
                &[("username", username), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(code, 200, "{body}");
        body["auth_token"].as_str().unwrap().to_owned()
    }

    /// SIGTERM, then the exit status and everything it logged.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        send_sigterm(self.child.id());
        let status = self.child.wait().unwrap();
        (status, self.take_log())
    }

    /// Everything the server logged (once it has exited).
    fn take_log(&mut self) -> String {
        self.log
            .take()
            .and_then(|l| l.join().ok())
            .unwrap_or_default()
    }
}

/// A server a failing test did not stop is killed, not left running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn send_sigterm(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

// ---- tools outside Rust ----

/// The first of `paths` that exists, for a test that needs an outside tool.
/// Absent, the test is skipped with a one-line reason, unless
/// `TESSERA_REQUIRE_TOOLS=1` (CI sets it), where a missing tool fails it.
pub fn required_tool(name: &str, paths: &[&str]) -> Option<PathBuf> {
    let found = paths
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(name))
                    .find(|p| p.exists())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var("TESSERA_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{name} is required (TESSERA_REQUIRE_TOOLS=1) but not installed"
        );
        eprintln!("skipped: {name} is not installed (apt-get install {name})");
    }
    found
}

/// A real nginx on a free loopback port, running the `http { }` contents
/// that `conf` makes from that port; stopped when dropped.
pub struct Nginx {
    pub port: u16,
    child: std::process::Child,
    dir: TempDir,
}

impl Nginx {
    /// `None` (skipped) when nginx is not installed.
    pub async fn start(conf: impl FnOnce(u16) -> String) -> Option<Self> {
        let nginx = required_tool("nginx", &["/usr/sbin/nginx", "/usr/bin/nginx"])?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        let full = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
{}
}}
"#,
            conf(port)
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, full).unwrap();
        let child = Command::new(nginx)
            .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
            .arg(&conf_path)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Self { port, child, dir };
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(nginx);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("nginx did not start: {}", nginx.error_log());
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A tiny upstream on a free port that answers every request with `reply`
/// applied to it. Returns its port.
pub async fn echo_upstream(reply: fn(&poem::Request) -> String) -> u16 {
    serve_locally(poem::endpoint::make_sync(move |req: poem::Request| {
        reply(&req)
    }))
    .await
}

/// Serves `ep` at every path of a new port on 127.0.0.1; returns the port.
pub async fn serve_locally(ep: impl poem::Endpoint + 'static) -> u16 {
    let listener = poem::listener::TcpListener::bind("127.0.0.1:0");
    let acceptor = poem::listener::Listener::into_acceptor(listener)
        .await
        .unwrap();
    let port = poem::listener::Acceptor::local_addr(&acceptor)[0]
        .as_socket_addr()
        .unwrap()
        .port();
    tokio::spawn(
        poem::Server::new_with_acceptor(acceptor).run(poem::Route::new().at("/*path", ep)),
    );
    port
}
