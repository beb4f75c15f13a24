//! Requests of one kind sent through the whole stack in process (as
//! `cargo bench --bench http` sends them, without a socket), for counting
//! instructions under callgrind: `bench/instructions.sh` runs it. Counts,
//! unlike times, hardly move with the VM's neighbours.
//!
//! `cargo run --release --example requests -- healthz|forward|me [N]`
use poem::http::Method;
use poem::{Endpoint, Request};

#[path = "../benches/common/mod.rs"]
mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "healthz".into());
    let n: usize = args.next().map_or(1000, |n| n.parse().expect("a count"));
    let path = match kind.as_str() {
        "healthz" => "/healthz",
        "forward" => "/api/v1/auth/forward/",
        "me" => "/api/v1/auth/users/me/",
        other => panic!("{other}: one of healthz, forward, me"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (service, _) = common::service_with_user(&rt, dir.path());
    let pair = rt
        .block_on(service.obtain_pair("bench", common::PASSWORD.into()))
        .expect("login");
    let bearer = format!("Bearer {}", pair.access.token);
    let ep = tessera::http::app(service);
    for _ in 0..n {
        let mut req = Request::builder().method(Method::GET).uri_str(path);
        if kind != "healthz" {
            req = req.header("authorization", &bearer);
        }
        let resp = rt.block_on(ep.call(req.finish())).expect("answer");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }
}
