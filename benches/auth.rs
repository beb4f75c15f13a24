//! The costs behind a login and an opaque-key request: argon2id hashing and
//! verification at the configured (production) cost, and the database lookup
//! of an opaque key. `cargo bench --bench auth`.

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::{PASSWORD, register, service, service_with_user, settings};
use tessera::passwords::PasswordHasher;

fn passwords(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let s = settings(dir.path());
    let hasher = PasswordHasher::new(&s.password).expect("hasher");
    let hash = rt.block_on(hasher.hash(PASSWORD.into())).expect("hash");
    let mut g = c.benchmark_group("argon2id (19 MiB, t=2, p=1)");
    g.sample_size(10);
    g.bench_function("hash", |b| {
        b.iter(|| rt.block_on(hasher.hash(PASSWORD.into())).expect("hash"))
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            rt.block_on(hasher.verify(PASSWORD.into(), Some(hash.clone())))
                .expect("verify")
        })
    });
    // The floor a login is measured against: the argon2 crate's own
    // verification, on this thread, with memory allocated for each call.
    let bare = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(
            s.password.argon2_memory_kib,
            s.password.argon2_iterations,
            s.password.argon2_parallelism,
            None,
        )
        .expect("params"),
    );
    g.bench_function("bare verify (argon2 crate)", |b| {
        use argon2::PasswordVerifier as _;
        b.iter(|| {
            bare.verify_password(PASSWORD.as_bytes(), hash.as_str())
                .expect("verify")
        })
    });
    g.finish();
}

fn opaque_keys(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (service, user_id) = service_with_user(&rt, dir.path());
    let key = tessera::opaque::generate_key().expect("randomness");
    rt.block_on(tessera::opaque::create(
        service.database(),
        &key,
        user_id,
        chrono::Utc::now(),
    ))
    .expect("key");
    c.bench_function("opaque key: digest + lookup with its user (SQLite)", |b| {
        b.iter(|| {
            rt.block_on(service.authenticate_key(&key))
                .expect("valid key")
        })
    });
}

/// Login for an unknown user, with a wrong password and for an inactive user
/// must cost the same: the three medians should agree within noise.
fn login_timing(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let service = service(&rt, settings(dir.path()));
    register(&rt, &service, "alice");
    let ivan = register(&rt, &service, "ivan");
    rt.block_on(async {
        use sea_orm::{ActiveModelTrait, ActiveValue::Set};
        entity::users::ActiveModel {
            id: Set(ivan),
            is_active: Set(false),
            ..Default::default()
        }
        .update(service.database())
        .await
        .expect("deactivate")
    });
    let mut g = c.benchmark_group("failed login (production argon2id)");
    g.sample_size(20);
    for (case, username, password) in [
        ("unknown user", "nobody", PASSWORD),
        ("wrong password", "alice", "wrong-password"),
        ("inactive user", "ivan", PASSWORD),
    ] {
        g.bench_function(case, |b| {
            b.iter(|| {
                let r = rt.block_on(service.authenticate(username, password.into()));
                assert!(r.is_err());
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = passwords, opaque_keys, login_timing
}
criterion_main!(benches);
