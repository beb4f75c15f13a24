//! The floors under Tessera's `/healthz`: one JSON answer served by each
//! layer of its stack alone, on the same runtime, with none of Tessera's
//! middleware. `bench/floor.sh` measures them side by side.
//!
//! `cargo run --release --example floor` (port 8111, or `PORT`); `LAYER`
//! picks what answers:
//! - `tokio`: canned bytes written back for each request head read, no
//!   HTTP library at all (the kernel's TCP, epoll and the runtime);
//! - `hyper`: hyper's connection as poem drives it (`auto::Builder`);
//! - `poem`: a poem route and handler;
//! - `openapi` (the default): a poem-openapi operation.
use std::convert::Infallible;

use poem::http::{Response as HttpResponse, header};
use poem::{Route, Server, listener::TcpListener};
use poem_openapi::{Object, OpenApi, OpenApiService, payload::Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BODY: &str = r#"{"status":"ok"}"#;

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

#[poem::handler]
fn healthz() -> poem::Response {
    poem::Response::builder()
        .content_type("application/json")
        .body(BODY)
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
    let addr = format!("127.0.0.1:{port}");
    match std::env::var("LAYER").as_deref().unwrap_or("openapi") {
        "tokio" => canned(tokio::net::TcpListener::bind(addr).await?).await,
        "hyper" => hyper_alone(tokio::net::TcpListener::bind(addr).await?).await,
        "poem" => {
            Server::new(TcpListener::bind(addr))
                .run(Route::new().at("/healthz", poem::get(healthz)))
                .await
        }
        "openapi" => {
            let api = OpenApiService::new(Api, "floor", "1");
            Server::new(TcpListener::bind(addr))
                .run(Route::new().nest("/", api))
                .await
        }
        other => Err(std::io::Error::other(format!(
            "LAYER={other}: one of tokio, hyper, poem, openapi"
        ))),
    }
}

/// Answers every request head (`\r\n\r\n`; the load test's are bodiless
/// GETs) with the same bytes: what any HTTP server on tokio pays at least.
async fn canned(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let answer: &'static [u8] = answer.leak().as_bytes();
    loop {
        let (mut socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut have = 0;
            let mut out = Vec::new();
            loop {
                match socket.read(&mut buf[have..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => have += n,
                }
                let mut start = 0;
                while let Some(end) = buf[start..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    start += end + 4;
                    out.extend_from_slice(answer);
                }
                buf.copy_within(start..have, 0);
                have -= start;
                if have == buf.len() || socket.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
        });
    }
}

/// hyper 1 serving each connection through hyper-util's `auto::Builder`
/// on tokio's executor, as poem's server does, with a fixed answer.
async fn hyper_alone(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(
                    HttpResponse::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(BODY.to_owned())
                        .expect("a valid response"),
                )
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}
