//! Users whose password hashes came from Django log in with the password
//! they have, and leave with Tessera's argon2id.

use sea_orm::EntityTrait;
use serde_json::Value;

use crate::helpers::*;

fn fixture() -> Value {
    fixture_json("django_hashes.json")
}

/// A user row as an import from Django leaves it.
async fn insert(app: &TestApp, username: &str, encoded: &str) -> i64 {
    app.insert_user(None, username, "", encoded).await
}

async fn stored_hash(app: &TestApp, id: i64) -> String {
    entity::users::Entity::find_by_id(id)
        .one(app.service.database())
        .await
        .unwrap()
        .unwrap()
        .password
}

/// The legacy-hash gauge once it shows `expected`, or its last value after
/// 5 s. It is counted off the request path, each scrape starting the next
/// count, so at least two scrapes are read: the last one shows a count made
/// after the call began.
async fn legacy_gauge(app: &TestApp, expected: u64) -> u64 {
    let mut last = u64::MAX;
    for scrape in 0..50 {
        let text = app.get("/metrics", None).await.text;
        last = text
            .lines()
            .find_map(|l| l.strip_prefix("tessera_legacy_password_hashes "))
            .unwrap()
            .parse()
            .unwrap();
        if scrape > 0 && last == expected {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test]
async fn every_django_hasher_logs_in_and_is_upgraded_to_argon2id() {
    let app = spawn_app().await;
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    let mut users = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("{}{i}", c["algorithm"].as_str().unwrap());
        let id = insert(&app, &name, c["encoded"].as_str().unwrap()).await;
        users.push((name, id, c));
    }
    assert_eq!(
        legacy_gauge(&app, cases.len() as u64).await,
        cases.len() as u64
    );
    for (name, id, c) in &users {
        let password = c["password"].as_str().unwrap();
        assert_eq!(
            login_status(&app, name, "wrong-password").await,
            401,
            "{name}"
        );
        assert_eq!(
            stored_hash(&app, *id).await,
            c["encoded"].as_str().unwrap(),
            "{name}: a failed login changes nothing"
        );
        assert_eq!(login_status(&app, name, password).await, 200, "{name}");
        let upgraded = stored_hash(&app, *id).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{name}: {upgraded}"
        );
        // The same password, now checked against the new hash.
        assert_eq!(login_status(&app, name, password).await, 200, "{name}");
        assert_eq!(
            stored_hash(&app, *id).await,
            upgraded,
            "{name}: upgraded once"
        );
    }
    assert_eq!(legacy_gauge(&app, 0).await, 0);
}

#[tokio::test]
async fn weak_and_unusable_hashes_never_log_in_unless_weak_ones_are_allowed() {
    let f = fixture();
    let strict = spawn_app().await;
    let lenient = spawn_app_with(&[("TESSERA__PASSWORD__ALLOW_WEAK_DJANGO_HASHES", "true")]).await;
    for (i, c) in f["unsafe"].as_array().unwrap().iter().enumerate() {
        let name = format!("weak{i}");
        let encoded = c["encoded"].as_str().unwrap();
        let password = c["password"].as_str().unwrap();
        insert(&strict, &name, encoded).await;
        assert_eq!(
            login_status(&strict, &name, password).await,
            401,
            "{encoded}"
        );
        let id = insert(&lenient, &name, encoded).await;
        assert_eq!(
            login_status(&lenient, &name, "wrong").await,
            401,
            "{encoded}"
        );
        assert_eq!(
            login_status(&lenient, &name, password).await,
            200,
            "{encoded}"
        );
        assert!(stored_hash(&lenient, id).await.starts_with("$argon2id$"));
    }
    let unusable = f["unusable"].as_str().unwrap();
    let id = insert(&strict, "nopass", unusable).await;
    assert_eq!(login_status(&strict, "nopass", "anything").await, 401);
    assert_eq!(login_status(&strict, "nopass", unusable).await, 401);
    assert_eq!(stored_hash(&strict, id).await, unusable);
}

#[tokio::test]
async fn a_hash_of_another_argon2_cost_is_renewed_at_login() {
    let app = spawn_app_with(&[("TESSERA__PASSWORD__ARGON2_ITERATIONS", "2")]).await;
    // A hash of one pass, as a Tessera configured with less made it.
    let older = tessera::passwords::PasswordHasher::new(&tessera::config::PasswordSettings {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        hash_workers: 1,
        hash_queue: 1,
        allow_weak_django_hashes: false,
    })
    .unwrap()
    .hash(PASSWORD.into())
    .await
    .unwrap();
    let id = insert(&app, "alice", &older).await;
    assert_eq!(
        legacy_gauge(&app, 0).await,
        0,
        "argon2id is not a legacy format"
    );
    assert_eq!(login_status(&app, "alice", PASSWORD).await, 200);
    let renewed = stored_hash(&app, id).await;
    assert!(
        renewed.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"),
        "{renewed}"
    );
    assert_eq!(login_status(&app, "alice", PASSWORD).await, 200);
}
