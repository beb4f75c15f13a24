//! Who the client is, for per-IP limits: the socket's peer, or, when that
//! peer is a trusted reverse proxy, the address it reports in
//! `X-Forwarded-For`.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::Request;
use poem::http::HeaderMap;

use super::error::ApiError;
use crate::app::App;
use crate::throttle::{Scope, Throttled, unmapped};

/// The client's address, or `None` when the connection has no IP peer.
pub fn client_ip(req: &Request, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    Some(forwarded_client(peer, req.headers(), trusted))
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = unmapped(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// Walks `X-Forwarded-For` from the right (the hop nearest to us) past
/// trusted proxies; the first other address is the client. Entries to its
/// left were written by the client itself and prove nothing.
fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // Some proxies write the client's port too: `1.2.3.4:5678`, `[::1]:80`.
        let parsed = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()));
        match parsed {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip, trusted) {
                    break;
                }
            }
            // Garbage from a proxy's client: stop at the last address a
            // trusted hop vouched for.
            Err(_) => break,
        }
    }
    client
}

fn refused(app: &App, scope: Scope, e: Throttled) -> ApiError {
    let key = e.limit.as_str();
    app.metrics()
        .throttled
        .with_label_values(&[scope.as_str(), key])
        .inc();
    tracing::info!(
        target: "tessera::security",
        event = "throttled",
        scope = scope.as_str(),
        key,
        wait_secs = e.wait_secs(),
        "request over a rate limit"
    );
    ApiError::Throttled(e.wait_secs())
}

/// Counts one request from the client's address against `scope`'s limit.
pub async fn throttle_ip(app: &App, req: &Request, scope: Scope) -> Result<(), ApiError> {
    let ip = client_ip(req, &app.settings().server.trusted_proxies);
    check_ip(app, scope, ip).await
}

async fn check_ip(app: &App, scope: Scope, ip: Option<IpAddr>) -> Result<(), ApiError> {
    match ip {
        Some(ip) => app
            .throttle()
            .check_ip(scope, ip)
            .await
            .map_err(|e| refused(app, scope, e)),
        None => Ok(()),
    }
}

/// Counts one request for `username` against `scope`'s limit.
pub async fn throttle_username(app: &App, scope: Scope, username: &str) -> Result<(), ApiError> {
    app.throttle()
        .check_username(scope, username)
        .await
        .map_err(|e| refused(app, scope, e))
}

/// Counts one request against `scope`'s limits: the client's address, then
/// `username` when the request names one; for a login, the username from
/// this address, and across addresses the user has not logged in from.
pub async fn throttle(
    app: &App,
    req: &Request,
    scope: Scope,
    username: Option<&str>,
) -> Result<(), ApiError> {
    let ip = client_ip(req, &app.settings().server.trusted_proxies);
    check_ip(app, scope, ip).await?;
    let Some(name) = username else {
        return Ok(());
    };
    match ip {
        Some(ip) if scope == Scope::Login => app
            .throttle()
            .check_login(name, ip)
            .await
            .map_err(|e| refused(app, scope, e)),
        _ => throttle_username(app, scope, name).await,
    }
}

/// After a successful login: the client's address is one `username` logs
/// in from, exempt from the username's ceiling across addresses.
pub async fn remember_login(app: &App, req: &Request, username: &str) {
    if let Some(ip) = client_ip(req, &app.settings().server.trusted_proxies) {
        app.throttle().remember_login(username, ip).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |peer: &str, xff: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in xff {
                headers.append("x-forwarded-for", v.parse().unwrap());
            }
            forwarded_client(peer.parse().unwrap(), &headers, &trusted).to_string()
        };
        assert_eq!(ip("203.0.113.9", &["1.2.3.4"]), "203.0.113.9");
        assert_eq!(ip("10.0.0.2", &["1.2.3.4"]), "1.2.3.4");
        // A client's own forged entries sit left of the proxy's and are skipped.
        assert_eq!(ip("10.0.0.2", &["6.6.6.6, 1.2.3.4"]), "1.2.3.4");
        assert_eq!(ip("10.0.0.2", &["6.6.6.6", "1.2.3.4, 10.0.0.7"]), "1.2.3.4");
        assert_eq!(ip("10.0.0.2", &[]), "10.0.0.2");
        assert_eq!(ip("10.0.0.2", &["garbage"]), "10.0.0.2");
        assert_eq!(ip("10.0.0.2", &["10.0.0.3"]), "10.0.0.3");
        assert_eq!(ip("::ffff:10.0.0.2", &["1.2.3.4"]), "1.2.3.4");
        assert_eq!(ip("10.0.0.2", &["1.2.3.4:5678"]), "1.2.3.4");
        assert_eq!(ip("10.0.0.2", &["[2001:db8::7]:443"]), "2001:db8::7");
    }
}
