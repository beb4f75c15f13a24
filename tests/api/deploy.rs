//! The deployment files as shipped: the compose file's trusted proxy and
//! the nginx configuration at the edge.

use crate::helpers::*;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The value after `key:` on its line, unquoted.
fn yaml_value<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().trim_matches('"'))
        .collect()
}

#[test]
fn compose_trusts_exactly_its_own_proxy() {
    let compose = repo_file("docker-compose.yml");
    let trusted = yaml_value(&compose, "TESSERA__SERVER__TRUSTED_PROXIES");
    let nginx = yaml_value(&compose, "ipv4_address");
    assert_eq!(trusted.len(), 1, "{compose}");
    assert_eq!(nginx.len(), 1, "nginx has a fixed address: {compose}");
    // One address, the proxy's: a private range would trust every client
    // on a LAN, a VPN or the Docker gateway to name its own address.
    assert_eq!(trusted, nginx);
    assert!(
        trusted[0].parse::<std::net::IpAddr>().is_ok(),
        "{}",
        trusted[0]
    );
}

#[tokio::test]
async fn the_shipped_nginx_config_hides_metrics_and_owns_x_forwarded_for() {
    let upstream = echo_upstream(|req| {
        format!(
            "{} xff={}",
            req.uri().path(),
            req.header("x-forwarded-for").unwrap_or("-")
        )
    })
    .await;
    // deploy/nginx.conf as shipped, but for the names only Docker resolves.
    let shipped = repo_file("deploy/nginx.conf");
    assert!(shipped.contains("server tessera:8000;") && shipped.contains("listen 8000;"));
    let Some(nginx) = Nginx::start(|port| {
        shipped
            .replace(
                "server tessera:8000;",
                &format!("server 127.0.0.1:{upstream};"),
            )
            .replace("listen 8000;", &format!("listen 127.0.0.1:{port};"))
    })
    .await
    else {
        return;
    };
    let client = reqwest::Client::new();
    for path in ["/metrics", "/metrics/", "/metrics?x=1"] {
        let a = client.get(nginx.url(path)).send().await.unwrap();
        assert_eq!(a.status(), 404, "{path}");
        assert!(
            !a.text().await.unwrap().contains("/metrics"),
            "{path} reached the upstream"
        );
    }
    let a = client
        .get(nginx.url("/healthz"))
        .header("x-forwarded-for", "198.51.100.7, 192.168.1.50")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200, "{}", nginx.error_log());
    // The client's claim is dropped: the upstream sees the real peer only.
    assert_eq!(a.text().await.unwrap(), "/healthz xff=127.0.0.1");
}

/// The upstream app behind the proxy: says who the proxy says the caller
/// is, and any identity header in another spelling that got through.
async fn identity_echo() -> u16 {
    echo_upstream(|req| {
        let user = req.header("x-auth-user-id").unwrap_or("-");
        let method = req.header("x-auth-method").unwrap_or("-");
        let name = req.header("x-auth-username").unwrap_or("-");
        let groups = req.header("x-auth-groups").unwrap_or("-");
        let email = req.header("x-auth-email").unwrap_or("-");
        let smuggled: Vec<String> = req
            .headers()
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.contains("auth_"))
            .collect();
        format!(
            "user={user} method={method} name={name} groups={groups} email={email} smuggled={smuggled:?}"
        )
    })
    .await
}

/// The settings the shipped proxy configs are tested with: tokens carry
/// the identity headers' claims.
const IDENTITY_CLAIMS: &[(&str, &str)] = &[("TESSERA__JWT__EXTRA_CLAIMS", "username,groups,email")];

/// A user of group "staff" (not "admin") behind the proxy: id, access token.
async fn staff_member(app: &TestApp) -> (i64, String) {
    let id = app.register("alice").await["id"].as_i64().unwrap();
    app.join_group(id, "staff").await;
    let (_, access) = app.login("alice").await;
    (id, access)
}

/// What every forward-auth setup must do, checked through the proxy at
/// `base` (`/app/page` for anyone, `/admin/page` for group "admin").
async fn check_forward_auth(app: &TestApp, base: &str, id: i64, access: &str, what: &str) {
    let url = &format!("{base}/app/page");
    let client = reqwest::Client::new();
    let ok = client.get(url).bearer_auth(access).send().await.unwrap();
    assert_eq!(ok.status(), 200, "{what}");
    let identity =
        format!("user={id} method=jwt name=alice groups=staff email=alice@example.com smuggled=[]");
    assert_eq!(ok.text().await.unwrap(), identity, "{what}");
    // Outside the group the route requires: 403 through the proxy; in it
    // (with a token minted after the change), through.
    let admin = &format!("{base}/admin/page");
    let no = client.get(admin).bearer_auth(access).send().await.unwrap();
    assert_eq!(no.status(), 403, "{what}: not in admin");
    app.join_group(id, "admin").await;
    let (_, fresh) = app.login("alice").await;
    let yes = client.get(admin).bearer_auth(&fresh).send().await.unwrap();
    assert_eq!(yes.status(), 200, "{what}: in admin");
    assert_eq!(
        yes.text().await.unwrap(),
        identity.replace("groups=staff", "groups=admin,staff"),
        "{what}"
    );
    let refused = client.get(url).send().await.unwrap();
    assert_eq!(refused.status(), 401, "{what}: no token, no entry");
    // A client naming itself: refused without a token, overridden with one,
    // in every spelling.
    let forged = client
        .get(url)
        .header("X-Auth-User-Id", "999")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401, "{what}");
    let forged = client
        .post(url)
        .bearer_auth(access)
        .header("X-Auth-User-Id", "999")
        .header("X_Auth_User_Id", "999")
        .header("x-auth-method", "token")
        .header("X-Auth-Username", "root")
        .header("X-Auth-Groups", "admin")
        .header("X_Auth_Groups", "admin")
        .header("X-Auth-Email", "root@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200, "{what}");
    assert_eq!(
        forged.text().await.unwrap(),
        identity,
        "{what}: forged headers must not reach the app"
    );
}

#[tokio::test]
async fn the_shipped_nginx_forward_auth_config_works() {
    let app = spawn_app_with(IDENTITY_CLAIMS).await;
    let (id, access) = staff_member(&app).await;
    let upstream = identity_echo().await;
    let tessera = app.base.trim_start_matches("http://").to_owned();
    let shipped = repo_file("deploy/forward-auth/nginx.conf");
    let Some(nginx) = Nginx::start(|port| {
        shipped
            .replace("tessera:8000", &tessera)
            .replace("http://app:8080", &format!("http://127.0.0.1:{upstream}"))
            .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
    })
    .await
    else {
        return;
    };
    check_forward_auth(&app, &nginx.url(""), id, &access, "nginx").await;
}

#[tokio::test]
async fn the_shipped_caddyfile_works() {
    let Some(caddy) = required_tool("caddy", &["/usr/bin/caddy"]) else {
        return;
    };
    let app = spawn_app_with(IDENTITY_CLAIMS).await;
    let (id, access) = staff_member(&app).await;
    let upstream = identity_echo().await;
    let port = free_port();
    let home = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(format!(
            "{}/deploy/forward-auth/Caddyfile",
            env!("CARGO_MANIFEST_DIR")
        ))
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("CADDY_ADMIN", "off")
        .env("LISTEN", format!("http://127.0.0.1:{port}"))
        .env("TESSERA_ADDR", app.base.trim_start_matches("http://"))
        .env("APP_ADDR", format!("127.0.0.1:{upstream}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _caddy = KillOnDrop(child);
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "caddy did not start");
    let base = format!("http://127.0.0.1:{port}");
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        check_forward_auth(&app, &base, id, &access, "caddy"),
    )
    .await
    .expect("the caddy test timed out");
}
