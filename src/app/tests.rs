use super::*;
use crate::config::JwtAlgorithm;
use crate::tokens::SigningKey;

/// The state over an in-memory database (nothing here reads it), signing
/// with a new key of `alg`.
async fn app_signing_with(alg: JwtAlgorithm, dir: &std::path::Path) -> App {
    let env = [("TESSERA__DATABASE__URL", "sqlite::memory:")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    let settings = Settings::load_from(None, env).expect("settings");
    let key = if alg.is_hmac() {
        SigningKey::hmac(alg, &[7; 32])
    } else {
        let files = crate::tokens::keys::generate(alg, dir, false).expect("key files");
        let pem = std::fs::read(files.private).expect("private key");
        SigningKey::from_private_pem(alg, &pem, None, None).expect("key")
    };
    let db = sea_orm::Database::connect("sqlite::memory:")
        .await
        .expect("database");
    let tokens = TokenService::new(key, &settings.jwt);
    let hasher = PasswordHasher::new(&settings.password).expect("hasher");
    App::new(settings, db, tokens, hasher).expect("state")
}

/// On a current-thread runtime, as with one worker: an RSA signature off
/// the thread that serves requests, the cheap ones on it.
#[tokio::test]
async fn only_rsa_signs_off_the_async_worker() {
    let dir = tempfile::tempdir().unwrap();
    let here = std::thread::current().id();
    for (alg, elsewhere) in [
        (JwtAlgorithm::RS256, true),
        (JwtAlgorithm::PS256, true),
        (JwtAlgorithm::HS256, false),
        (JwtAlgorithm::EdDSA, false),
        (JwtAlgorithm::ES256, false),
    ] {
        let app = app_signing_with(alg, dir.path()).await;
        let (thread, pair) = app
            .signed(&Subject::new(7), |tokens, subject| {
                (
                    std::thread::current().id(),
                    tokens.pair(subject, 1_800_000_000),
                )
            })
            .await
            .unwrap();
        assert_eq!(thread != here, elsewhere, "{}", alg.as_str());
        let claims = app
            .tokens
            .verify(&pair.access.token, Expect::Access, 1_800_000_000)
            .unwrap();
        assert_eq!(claims.user_id(), Some(7), "{}", alg.as_str());
    }
}

/// However many requests sign at once, no more RSA signatures run than
/// there are CPUs: the rest wait their turn without a thread each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_signatures_at_once_are_bounded_by_the_cpus() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let app = app_signing_with(JwtAlgorithm::RS256, dir.path()).await;
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..16)
        .map(|_| {
            let (app, running, most) = (app.clone(), Arc::clone(&running), Arc::clone(&most));
            tokio::spawn(async move {
                app.signed(&Subject::new(7), move |_, _| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        })
        .collect();
    for job in jobs {
        job.await.unwrap().unwrap();
    }
    let cpus = std::thread::available_parallelism().unwrap().get();
    let most = most.load(Ordering::SeqCst);
    assert!(
        most >= 1 && most <= cpus,
        "{most} signatures at once on {cpus} CPUs"
    );
}
