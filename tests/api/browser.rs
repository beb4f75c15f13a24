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

/// Serves `html` at every path of a new port on 127.0.0.1 (a second origin).
async fn serve_page(html: String) -> u16 {
    serve_locally(poem::endpoint::make_sync(move |_| {
        poem::web::Html(html.clone())
    }))
    .await
}

/// The frontend: step 1 registers, logs in with credentials, reads
/// users/me with the cookie, refreshes with the cookie only; step 2
/// refreshes again, logs out, and refreshes once more. Each writes what it
/// saw into #out.
const FRONTEND_PAGE: &str = r#"<!doctype html><html><body><pre id="out"></pre><script>
const API = "API_ORIGIN";
const json = {"Content-Type": "application/json"};
function csrf() {
  const c = document.cookie.split("; ").find(c => c.startsWith("csrftoken="));
  return c ? c.slice("csrftoken=".length) : "";
}
async function post(path, body, extra) {
  const r = await fetch(API + path, {method: "POST", credentials: "include",
    headers: Object.assign({}, json, extra || {}), body: JSON.stringify(body)});
  return {status: r.status, body: await r.text()};
}
async function step1() {
  const out = {};
  out.register = (await post("/api/v1/auth/users/", {username: "web", password: "Tr0ub4dor_3xyz"})).status;
  const login = await post("/api/token/", {username: "web", password: "Tr0ub4dor_3xyz"});
  out.login = login.status; out.login_body = login.body;
  out.cookies = document.cookie;
  const me = await fetch(API + "/api/v1/auth/users/me/", {credentials: "include"});
  out.me = me.status; out.me_body = await me.text();
  out.refresh = (await post("/api/token/refresh/", {}, {"X-CSRFToken": csrf()})).status;
  return out;
}
async function step2() {
  const out = {};
  out.refresh = (await post("/api/token/refresh/", {}, {"X-CSRFToken": csrf()})).status;
  out.logout = (await post("/api/token/blacklist/", {}, {"X-CSRFToken": csrf()})).status;
  out.after_logout = await post("/api/token/refresh/", {}, {"X-CSRFToken": csrf()});
  return out;
}
(location.search.includes("step=2") ? step2() : step1())
  .then(o => document.getElementById("out").textContent = JSON.stringify(o))
  .catch(e => document.getElementById("out").textContent = JSON.stringify({error: String(e)}));
</script></body></html>"#;

/// A page of an origin Tessera does not allow: it reads users/me with
/// credentials, and posts a "log out everywhere" form into a frame: the
/// browser sends the access cookie, but no CSRF header.
const FOREIGN_PAGE: &str = r#"<!doctype html><html><body><pre id="out"></pre>
<iframe name="sink"></iframe>
<form id="forged" method="POST" action="API_ORIGIN/api/v1/auth/users/me/logout_all/" target="sink"></form>
<script>
fetch("API_ORIGIN/api/v1/auth/users/me/", {credentials: "include"})
  .then(r => "read " + r.status, e => "blocked: " + e.name)
  .then(result => {
    document.getElementById("forged").submit();
    setTimeout(() => document.getElementById("out").textContent = result, 1500);
  });
</script></body></html>"#;

/// Waits for the page's #out and parses it.
async fn outcome_of(c: &Client) -> String {
    for _ in 0..200 {
        let text = c
            .find(Locator::Css("#out"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !text.is_empty() {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page wrote no outcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_on_another_origin_logs_in_with_cookies_only() {
    // The pages' ports first: Tessera must name the frontend's origin.
    let tessera_port = free_port();
    let api = format!("http://localhost:{tessera_port}");
    let frontend = serve_page(FRONTEND_PAGE.replace("API_ORIGIN", &api)).await;
    let foreign = serve_page(FOREIGN_PAGE.replace("API_ORIGIN", &api)).await;
    let frontend_origin = format!("http://localhost:{frontend}");
    let port = tessera_port.to_string();
    let _app = spawn_app_with(&[
        ("TESSERA__SERVER__PORT", port.as_str()),
        ("TESSERA__CORS__ALLOWED_ORIGINS", frontend_origin.as_str()),
        ("TESSERA__CORS__ALLOW_CREDENTIALS", "true"),
        ("TESSERA__COOKIE__ENABLED", "true"),
        ("TESSERA__COOKIE__ACCESS_NAME", "access_token"),
        ("TESSERA__AUTH__METHODS", "jwt,token,cookie"),
    ])
    .await;
    let Some((_driver, c)) = browser().await else {
        return;
    };
    let run = async {
        c.goto(&format!("{frontend_origin}/app")).await.unwrap();
        let step1: serde_json::Value = serde_json::from_str(&outcome_of(&c).await).unwrap();
        assert_eq!(step1["register"], 201, "{step1}");
        assert_eq!(step1["login"], 200, "{step1}");
        assert_eq!(step1["login_body"], "{}", "the tokens went into cookies");
        let cookies = step1["cookies"].as_str().unwrap();
        assert!(cookies.contains("csrftoken="), "{cookies}");
        assert!(
            !cookies.contains("refresh_token") && !cookies.contains("access_token"),
            "JavaScript sees an HttpOnly cookie: {cookies}"
        );
        assert_eq!(step1["me"], 200, "{step1}");
        assert!(
            step1["me_body"]
                .as_str()
                .unwrap()
                .contains("\"username\":\"web\"")
        );
        assert_eq!(step1["refresh"], 200, "{step1}");

        // A page Tessera does not allow: it cannot read, and its forged
        // logout (cookies sent, no CSRF header) is refused.
        c.goto(&format!("http://localhost:{foreign}/evil"))
            .await
            .unwrap();
        let foreign_outcome = outcome_of(&c).await;
        assert!(foreign_outcome.starts_with("blocked"), "{foreign_outcome}");

        c.goto(&format!("{frontend_origin}/app?step=2"))
            .await
            .unwrap();
        let step2: serde_json::Value = serde_json::from_str(&outcome_of(&c).await).unwrap();
        assert_eq!(
            step2["refresh"], 200,
            "the forged logout ended the session: {step2}"
        );
        assert_eq!(step2["logout"], 200, "{step2}");
        assert_eq!(step2["after_logout"]["status"], 400, "{step2}");
        assert!(
            step2["after_logout"]["body"]
                .as_str()
                .unwrap()
                .contains("This field is required.")
        );
    };
    let result = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = c.close().await;
    result.expect("the browser test timed out");
}
