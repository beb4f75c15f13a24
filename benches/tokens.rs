//! What each signing algorithm costs: issuing an access token (sign) and
//! verifying one, through the same TokenService the server uses.
//! `cargo bench --bench tokens`; the README quotes one run.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tessera::config::{JwtAlgorithm, Settings};
use tessera::tokens::keys::generate;
use tessera::tokens::{Expect, SigningKey, Subject, TokenService};

fn service(alg: JwtAlgorithm, dir: &std::path::Path) -> TokenService {
    let settings = Settings::load_from(None, Default::default()).expect("default settings");
    let key = if alg.is_hmac() {
        SigningKey::hmac(alg, b"bench-secret-bench-secret-bench-secret-0123456789")
    } else {
        let files = generate(alg, &dir.join(alg.as_str()), false).expect("key generation");
        let pem = std::fs::read(files.private).expect("private key");
        SigningKey::from_private_pem(alg, &pem, None, None).expect("key")
    };
    TokenService::new(key, &settings.jwt)
}

fn tokens(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = chrono::Utc::now().timestamp();
    let services: Vec<(JwtAlgorithm, TokenService)> = JwtAlgorithm::ALL
        .into_iter()
        .map(|alg| (alg, service(alg, dir.path())))
        .collect();
    let mut sign = c.benchmark_group("sign access token");
    for (alg, svc) in &services {
        sign.bench_with_input(BenchmarkId::from_parameter(alg.as_str()), &svc, |b, svc| {
            b.iter(|| svc.access(&Subject::new(42), now))
        });
    }
    sign.finish();
    let mut verify = c.benchmark_group("verify access token");
    for (alg, svc) in &services {
        let token = svc.access(&Subject::new(42), now).token;
        verify.bench_with_input(
            BenchmarkId::from_parameter(alg.as_str()),
            &token,
            |b, token| b.iter(|| svc.verify(token, Expect::Access, now).expect("valid")),
        );
    }
    verify.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1));
    targets = tokens
}
criterion_main!(benches);
