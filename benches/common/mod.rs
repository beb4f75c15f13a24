//! Set-up shared by the benchmarks: settings on a fresh SQLite file and a
//! service with a registered user.

use tessera::app::App;
use tessera::config::Settings;
use tokio::runtime::Runtime;

pub const PASSWORD: &str = "Tr0ub4dor_3xyz";

/// Production settings on a SQLite file in `dir`, logging warnings only.
pub fn settings(dir: &std::path::Path) -> Settings {
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let env = [
        ("DATABASE_URL".to_owned(), url),
        (
            "TESSERA__JWT__SIGNING_KEY".to_owned(),
            "bench-secret-bench-secret-bench-secret-0123456789".to_owned(),
        ),
        ("TESSERA__LOG__LEVEL".to_owned(), "warn".to_owned()),
    ];
    Settings::load_from(None, env.into_iter().collect()).expect("settings")
}

/// The service on `settings`.
pub fn service(rt: &Runtime, settings: Settings) -> App {
    rt.block_on(tessera::startup::build_app(settings))
        .expect("service")
}

/// Registers `name` with [`PASSWORD`]; returns their id.
pub fn register(rt: &Runtime, service: &App, name: &str) -> i64 {
    rt.block_on(service.register(
        tessera::app::Registration {
            username: Some(name.into()),
            email: Some(String::new()),
            password: Some(PASSWORD.into()),
            password_retype: None,
            superuser: false,
        },
        Default::default(),
    ))
    .expect("user")
    .id
}

/// The service with cheap password hashing (the benchmark is not about
/// it) and one user, `bench`, whose id comes with it.
pub fn service_with_user(rt: &Runtime, dir: &std::path::Path) -> (App, i64) {
    let mut s = settings(dir);
    s.password.argon2_memory_kib = 64;
    s.password.argon2_iterations = 1;
    let service = service(rt, s);
    let id = register(rt, &service, "bench");
    (service, id)
}
