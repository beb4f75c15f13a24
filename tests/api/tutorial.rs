//! Djoser's tutorial and the README walkthrough, as literal curl commands
//! against a running server.

use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

/// Runs one shell line with `$BASE` set, returning (status line, body). It
/// blocks, so it runs off the runtime that serves the app.
async fn curl(base: &str, vars: &[(&str, &str)], line: &str) -> (String, String) {
    let (base, line) = (base.to_owned(), line.to_owned());
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || curl_blocking(&base, &vars, &line))
        .await
        .unwrap()
}

fn curl_blocking(base: &str, vars: &[(String, String)], line: &str) -> (String, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(line).env("BASE", base);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("sh and curl are needed for the tutorial test");
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text.rsplit("\n\n").next().unwrap_or_default().to_owned();
    (status, body)
}

#[tokio::test]
async fn djoser_tutorial_with_an_opaque_token() {
    let app = spawn_app().await;
    let base = app.base.clone();
    let (status, body) = curl(&base, &[], "curl -s -i -X POST $BASE/api/v1/auth/users/ -F 'email=alice@example.com' -F 'username=alice' -F 'password=Tr0ub4dor_3xyz'").await;
    assert!(status.contains("201"), "{status}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let (status, body) = curl(&base, &[], "curl -s -i -X POST $BASE/auth/token/login/ -F 'username=alice' -F 'password=Tr0ub4dor_3xyz'").await;
    assert!(status.contains("200"), "{status}");
    let key = serde_json::from_str::<Value>(&body).unwrap()["auth_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let vars = [("AUTHTOKEN", key.as_str())];
    let (status, body) = curl(
        &base,
        &vars,
        r#"curl -s -i $BASE/api/v1/auth/users/me/ -H "Authorization: Token $AUTHTOKEN""#,
    )
    .await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["id"],
        created["id"]
    );
    let (status, body) = curl(
        &base,
        &vars,
        r#"curl -s -i -X POST $BASE/auth/token/logout/ -H "Authorization: Token $AUTHTOKEN""#,
    )
    .await;
    assert!(status.contains("204"), "{status}");
    assert!(
        body.trim().is_empty() || body.starts_with("HTTP/"),
        "{body}"
    );
    let (status, body) = curl(
        &base,
        &vars,
        r#"curl -s -i $BASE/api/v1/auth/users/me/ -H "Authorization: Token $AUTHTOKEN""#,
    )
    .await;
    assert!(status.contains("401"), "{status}");
    assert_eq!(body, r#"{"detail":"Invalid token."}"#);
}

#[tokio::test]
async fn readme_walkthrough_with_jwt() {
    let app = spawn_app().await;
    let base = app.base.clone();
    let (status, _) = curl(&base, &[], "curl -s -i -X POST $BASE/api/v1/auth/users/ -F username=alice -F email=alice@example.com -F password=Tr0ub4dor_3xyz").await;
    assert!(status.contains("201"), "{status}");
    let (_, body) = curl(
        &base,
        &[],
        "curl -s -i -X POST $BASE/api/token/ -F username=alice -F password=Tr0ub4dor_3xyz",
    )
    .await;
    let pair: Value = serde_json::from_str(&body).unwrap();
    let (access, refresh) = (
        pair["access"].as_str().unwrap(),
        pair["refresh"].as_str().unwrap(),
    );
    let vars = [("ACCESS", access), ("REFRESH", refresh)];
    let (_, body) = curl(
        &base,
        &vars,
        r#"curl -s -i $BASE/api/v1/auth/users/me/ -H "Authorization: Bearer $ACCESS""#,
    )
    .await;
    assert_eq!(
        body,
        format!(
            r#"{{"email":"alice@example.com","id":{},"username":"alice"}}"#,
            claims(access)["user_id"].as_str().unwrap()
        )
    );
    let (status, body) = curl(
        &base,
        &vars,
        r#"curl -s -i -X POST $BASE/api/token/refresh/ -d "refresh=$REFRESH""#,
    )
    .await;
    assert!(
        status.contains("200") && body.contains("\"access\""),
        "{status} {body}"
    );
    let (_, body) = curl(
        &base,
        &vars,
        r#"curl -s -i -X POST $BASE/api/token/verify/ -d "token=$ACCESS""#,
    )
    .await;
    assert_eq!(body, "{}");
    let (_, body) = curl(
        &base,
        &vars,
        r#"curl -s -i -X POST $BASE/api/token/blacklist/ -d "refresh=$REFRESH""#,
    )
    .await;
    assert_eq!(body, "{}");
    let (status, body) = curl(
        &base,
        &vars,
        r#"curl -s -i -X POST $BASE/api/token/refresh/ -d "refresh=$REFRESH""#,
    )
    .await;
    assert!(status.contains("401"), "{status}");
    assert_eq!(
        body,
        r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
    );
}
