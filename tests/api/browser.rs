//! Swagger UI in a real browser: headless Chromium, driven through
//! chromedriver, does what a newcomer does on `/docs`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::helpers::*;

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `None` (skipped) when Chromium or chromedriver is not installed.
async fn browser() -> Option<(Driver, Client)> {
    let chromium = required_tool("chromium", &["/usr/bin/chromium"])?;
    let chromedriver = required_tool("chromedriver", &["/usr/bin/chromedriver"])?;
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,2000"]
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    Some((driver, client))
}

/// Waits for the element and clicks it (scrolled into view first).
async fn click(c: &Client, css: &str) {
    let e = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    c.execute(
        "arguments[0].scrollIntoView({block: 'center'});",
        vec![serde_json::to_value(&e).unwrap()],
    )
    .await
    .unwrap();
    e.click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Runs "Try it out" then "Execute" on the operation whose block is `op`,
/// and returns (status, body) as the page shows them.
async fn try_it_out(c: &Client, op: &str) -> (String, String) {
    click(c, &format!("#{op} .opblock-summary")).await;
    click(c, &format!("#{op} .try-out__btn")).await;
    click(c, &format!("#{op} .execute")).await;
    let status_css = format!("#{op} .live-responses-table .response .response-col_status");
    let status = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&status_css))
        .await
        .unwrap_or_else(|e| panic!("{status_css}: {e}"))
        .text()
        .await
        .unwrap();
    let body = c
        .find(Locator::Css(&format!(
            "#{op} .live-responses-table .response .response-col_description pre"
        )))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (status.trim().to_owned(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_logs_in_authorizes_and_reads_users_me() {
    let app = spawn_app().await;
    // The obtain example is alice's: her account exists.
    app.register("alice").await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let outcome = async {
        c.goto(&app.url("/docs")).await.unwrap();
        // The first group is the JWT one, and obtain is in it.
        let first_tag = c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(".opblock-tag-section .opblock-tag"))
            .await
            .unwrap()
            .attr("data-tag")
            .await
            .unwrap();
        assert_eq!(first_tag.as_deref(), Some("JWT"));
        let (status, body) = try_it_out(&c, "operations-JWT-token_obtain").await;
        assert_eq!(status, "200", "{body}");
        let pair: serde_json::Value = serde_json::from_str(&body).expect("the pair as JSON");
        let access = pair["access"].as_str().unwrap().to_owned();

        // Authorize with the access token (Bearer scheme).
        click(&c, ".auth-wrapper .authorize").await;
        let input = c
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(".modal-ux-content .auth-container input"))
            .await
            .unwrap();
        input.send_keys(&access).await.unwrap();
        click(
            &c,
            ".modal-ux-content .auth-container .auth-btn-wrapper .authorize",
        )
        .await;
        click(&c, ".modal-ux-content .btn-done").await;

        let (status, body) = try_it_out(&c, "operations-Users-users_me_read").await;
        assert_eq!(status, "200", "{body}");
        let me: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(me["username"], "alice");
    };
    let result = tokio::time::timeout(Duration::from_secs(120), outcome).await;
    let _ = c.close().await;
    result.expect("the browser test timed out");
}
