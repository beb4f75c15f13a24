//! The framework's floor: poem + poem-openapi serving one JSON operation on
//! the same runtime, with none of Tessera's middleware.
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8111".into());
    let api = OpenApiService::new(Api, "floor", "1");
    Server::new(TcpListener::bind(format!("127.0.0.1:{port}")))
        .run(Route::new().nest("/", api))
        .await
}
