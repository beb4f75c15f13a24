//! One request through the whole HTTP stack in process (middleware, router,
//! OpenAPI layer, handler), with no socket: the user-space cost per request
//! that `bench/load.sh` measures together with the kernel's TCP and the
//! scheduler. `cargo bench --bench http`.

use criterion::{Criterion, criterion_group, criterion_main};
use poem::http::Method;
use poem::{Endpoint, Request};

mod common;
use common::{PASSWORD, service_with_user};

fn stack(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (service, _) = service_with_user(&rt, dir.path());
    let pair = rt
        .block_on(service.obtain_pair("bench", PASSWORD.into()))
        .expect("login");
    let bearer = format!("Bearer {}", pair.access.token);
    let ep = tessera::http::app(service);
    let get = |path: &'static str, auth: Option<&String>| {
        let mut req = Request::builder().method(Method::GET).uri_str(path);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.finish()
    };
    let mut g = c.benchmark_group("one request in process");
    for (name, path, auth) in [
        ("GET /healthz", "/healthz", None),
        (
            "GET forward auth, Bearer JWT",
            "/api/v1/auth/forward/",
            Some(&bearer),
        ),
        (
            "GET users/me, Bearer JWT",
            "/api/v1/auth/users/me/",
            Some(&bearer),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let resp = rt.block_on(ep.call(get(path, auth))).expect("answer");
                assert!(resp.status().is_success());
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().noise_threshold(0.05);
    targets = stack
}
criterion_main!(benches);
