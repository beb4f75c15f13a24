//! Djoser's tutorial and the README's walkthroughs, as literal curl
//! commands against a running server.

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
    if required_tool("curl", &["/usr/bin/curl"]).is_none() {
        return;
    }
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

/// The README's runnable blocks (fenced as `sh walkthrough`): each line
/// that follows a command and starts with `# ` is what that command prints.
fn readme_blocks() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh walkthrough") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), l) => block.push(l.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

/// A block as a script against `base`, and the output its comments promise.
fn script_and_expected(block: &[String], base: &str) -> (String, Vec<String>) {
    let mut script = String::new();
    let mut expected = Vec::new();
    let mut after_command = false;
    for line in block {
        if let Some(out) = line.strip_prefix("# ").filter(|_| after_command) {
            expected.push(out.to_owned());
            continue;
        }
        let is_command = !line.trim().is_empty() && !line.starts_with('#');
        if after_command && !script.ends_with("echo\n") {
            // Bodies end without a newline: keep each output on its own line.
            script.push_str("echo\n");
        }
        after_command = is_command;
        script.push_str(&line.replace("http://127.0.0.1:8000", base));
        script.push('\n');
    }
    if after_command {
        script.push_str("echo\n");
    }
    (script, expected)
}

/// Whether `actual` matches `expected`, where `...` stands for anything.
fn matches(expected: &str, actual: &str) -> bool {
    let mut rest = actual;
    let parts: Vec<&str> = expected.split("...").collect();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

#[tokio::test]
async fn the_readme_walkthroughs_run_as_written() {
    if required_tool("curl", &["/usr/bin/curl"]).is_none()
        || required_tool("jq", &["/usr/bin/jq"]).is_none()
    {
        return;
    }
    let blocks = readme_blocks();
    assert_eq!(
        blocks.len(),
        4,
        "the JWT walkthrough, the opaque-token tutorial, the password reset, claims"
    );
    // One server for the first two, as a reader would run them one after
    // the other; the reset walkthrough asks for a server that writes its
    // mail into mail/ of the folder the reader is in.
    let app = spawn_app().await;
    let folder = tempfile::tempdir().unwrap();
    let mail_dir = folder.path().join("mail").display().to_string();
    let mailing = spawn_app_with(&[
        ("TESSERA__EMAIL__BACKEND", "file"),
        ("TESSERA__EMAIL__FILE_PATH", mail_dir.as_str()),
    ])
    .await;
    let claiming = spawn_app_with(&[("TESSERA__JWT__EXTRA_CLAIMS", "username,groups")]).await;
    for (i, block) in blocks.into_iter().enumerate() {
        let base = match i {
            2 => &mailing.base,
            3 => &claiming.base,
            _ => &app.base,
        };
        let (script, expected) = script_and_expected(&block, base);
        assert!(!expected.is_empty(), "{script}");
        let run = script.clone();
        let cwd = folder.path().to_owned();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .args(["-euo", "pipefail", "-c", &run])
                .current_dir(cwd)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{script}\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let actual: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(actual.len(), expected.len(), "{script}\n{stdout}");
        for (e, a) in expected.iter().zip(&actual) {
            assert!(matches(e, a), "expected {e}\n     got {a}\nin\n{script}");
        }
    }
}
