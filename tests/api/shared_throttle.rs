//! Rate limits shared by instances through Redis (`throttle.backend =
//! "redis"`), against a real Redis this test starts: one budget across
//! instances, a fallback to each instance's own counters while Redis is
//! down (logins keep working), and the return to Redis when it is back.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

/// A redis-server of the test's own on a free port; stopped when dropped.
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    async fn start() -> Option<Self> {
        required_tool("redis-server", &["/usr/bin/redis-server"])?;
        let mut redis = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.run().await;
        Some(redis)
    }

    async fn run(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of an instance's metric.
async fn metric_of(app: &TestApp, name: &str) -> f64 {
    metric(&app.get("/metrics", None).await.text, name)
}

#[tokio::test]
async fn instances_share_one_budget_and_survive_redis_going_away() {
    let Some(mut redis) = Redis::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database_url(&dir).await;
    let url = redis.url();
    let settings = [
        ("DATABASE_URL", database.as_str()),
        ("TESSERA__THROTTLE__BACKEND", "redis"),
        ("TESSERA__THROTTLE__REDIS_URL", url.as_str()),
        ("TESSERA__THROTTLE__LOGIN__USERNAME", "4/hour"),
        ("TESSERA__THROTTLE__LOGIN__IP", ""),
    ];
    let a = spawn_app_with(&settings).await;
    let b = spawn_app_with(&settings).await;
    for name in ["alice", "bob", "carol"] {
        a.register(name).await;
    }

    // One budget of 4 for alice from this address, whichever instance
    // answers.
    for app in [&a, &b, &a, &b] {
        assert_eq!(login_status(app, "alice", "wrong").await, 401);
    }
    assert_eq!(login_status(&a, "alice", PASSWORD).await, 429);
    assert_eq!(login_status(&b, "alice", PASSWORD).await, 429);
    assert_eq!(metric_of(&a, "tessera_throttle_redis_up").await, 1.0);

    // Redis goes away: logins keep working, each instance counting on its
    // own (4 each for bob, 8 in all), said in the metrics.
    redis.stop();
    assert_eq!(
        login_status(&a, "bob", PASSWORD).await,
        200,
        "a login never fails for Redis"
    );
    for app in [&a, &b] {
        let mut passed = 0;
        for _ in 0..6 {
            match login_status(app, "bob", "wrong").await {
                401 => passed += 1,
                429 => {}
                other => panic!("{other} while Redis is down"),
            }
        }
        let expected = if std::ptr::eq(app, &a) { 3 } else { 4 };
        assert_eq!(passed, expected, "each instance's own budget");
        assert_eq!(metric_of(app, "tessera_throttle_redis_up").await, 0.0);
        assert!(metric_of(app, "tessera_throttle_redis_fallbacks_total").await >= 4.0);
    }

    // Redis is back: within a second or so the budget is shared again.
    redis.run().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The first check after the pause may still find the old connection
    // broken; the next ones use Redis.
    let _ = login_status(&a, "nobody", "x").await;
    let _ = login_status(&b, "nobody", "x").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for app in [&a, &b, &a, &b] {
        assert_eq!(login_status(app, "carol", "wrong").await, 401);
    }
    assert_eq!(
        login_status(&b, "carol", PASSWORD).await,
        429,
        "shared again"
    );
    assert_eq!(metric_of(&a, "tessera_throttle_redis_up").await, 1.0);
    assert_eq!(metric_of(&b, "tessera_throttle_redis_up").await, 1.0);
}

#[tokio::test]
async fn a_required_redis_must_answer_at_start() {
    let closed = format!("redis://127.0.0.1:{}/0", free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut env = base_env(&fresh_database_url(&dir).await);
    env.insert("TESSERA__THROTTLE__BACKEND".into(), "redis".into());
    env.insert("TESSERA__THROTTLE__REDIS_URL".into(), closed.clone());
    env.insert("TESSERA__THROTTLE__REDIS_REQUIRED".into(), "true".into());
    let settings = tessera::config::Settings::load_from(None, env.clone()).unwrap();
    let err = tessera::startup::Application::build(settings)
        .await
        .err()
        .expect("started without a required Redis")
        .to_string();
    assert!(err.contains("throttle.redis_url does not answer"), "{err}");
    // Not required: it starts, and logins work on the instance's own counters.
    env.insert("TESSERA__THROTTLE__REDIS_REQUIRED".into(), "false".into());
    let settings = tessera::config::Settings::load_from(None, env.clone()).unwrap();
    assert!(tessera::startup::Application::build(settings).await.is_ok());
    // A URL that is no Redis URL is a configuration error.
    env.insert(
        "TESSERA__THROTTLE__REDIS_URL".into(),
        "http://localhost".into(),
    );
    let err = tessera::config::Settings::load_from(None, env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("throttle.redis_url"), "{err}");
}
