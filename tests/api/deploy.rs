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
