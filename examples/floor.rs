//! The framework's floor: poem + poem-openapi serving one JSON operation on
//! the same runtime as Tessera, with none of Tessera's middleware.
//! `cargo run --release --example floor` (port 8111, or `PORT`).
use poem::{Route, Server, listener::TcpListener};
use poem_openapi::{Object, OpenApi, OpenApiService, payload::Json};

#[derive(Object)]
struct Status {
    status: String,
}

struct Api;

#[OpenApi]
impl Api {
    #[oai(path = "/healthz", method = "get")]
    async fn healthz(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
        })
    }
}

/// The runtime Tessera starts by default (`server.workers = 0`), or
/// `WORKERS` threads.
fn main() -> std::io::Result<()> {
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(tessera::config::all_cpus_but_one);
    tessera::startup::runtime(workers)?.block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8111".into());
    let api = OpenApiService::new(Api, "floor", "1");
    Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
        .run(Route::new().nest("/", api))
        .await
}
