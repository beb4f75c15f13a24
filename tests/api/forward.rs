//! Forward auth, directly and behind a real nginx with `auth_request`.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const PATH: &str = "/api/v1/auth/forward/";

#[tokio::test]
async fn forward_auth_answers_with_headers_only() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (refresh, access) = app.login("alice").await;
    let key = app.token_login("alice", PASSWORD).await;

    let a = app.get(PATH, Some(&bearer(&access))).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("x-auth-user-id"), Some(id.to_string().as_str()));
    assert_eq!(a.header("x-auth-method"), Some("jwt"));
    assert_eq!(a.text, "");
    let a = app.get("/api/v1/auth/forward", Some(&token(&key))).await;
    assert_eq!(
        (a.status.as_u16(), a.header("x-auth-method")),
        (200, Some("token"))
    );
    assert_eq!(a.header("x-auth-user-id"), Some(id.to_string().as_str()));
    // Proxies may forward the original method.
    for method in ["POST", "PUT", "PATCH", "DELETE", "HEAD"] {
        let a = app.call(method, PATH, Some(&bearer(&access)), None).await;
        assert_eq!(a.status, 200, "{method}");
    }
    let now = chrono::Utc::now().timestamp();
    let expired = sign_hs256(
        TEST_KEY,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &json!({"token_type": "access", "exp": now - 1, "iat": now - 301, "jti": "0123456789abcdef0123456789abcdef", "user_id": id.to_string()}),
    );
    let refused = [
        None,
        Some(bearer(&refresh)),
        Some(bearer(&expired)),
        Some("Bearer not.a.jwt".to_owned()),
        Some("Bearer a b".to_owned()),
        Some("Token 0000000000000000000000000000000000000000".to_owned()),
        Some("Basic YWxpY2U6eA==".to_owned()),
    ];
    for header in refused {
        let a = app.get(PATH, header.as_deref()).await;
        assert_eq!(a.status, 401, "{header:?}");
        assert_eq!(a.text, "", "an empty body");
        assert_eq!(a.header("www-authenticate"), Some(r#"Bearer realm="api""#));
        assert!(a.header("x-auth-user-id").is_none());
    }
    // The JWT answer reads no database: it holds for a deleted user until
    // the token expires, while the opaque key dies with the user.
    app.delete_user(id).await;
    assert_eq!(app.get(PATH, Some(&bearer(&access))).await.status, 200);
    assert_eq!(app.get(PATH, Some(&token(&key))).await.status, 401);
}

#[tokio::test]
async fn nginx_auth_request_in_front_of_an_upstream() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    // The tiny upstream: echoes who nginx says the caller is.
    let upstream_port = echo_upstream(|req| {
        let user = req.header("x-auth-user-id").unwrap_or("?");
        let method = req.header("x-auth-method").unwrap_or("?");
        format!("hello {user} via {method}")
    })
    .await;
    let tessera = app.base.trim_start_matches("http://").to_owned();
    let Some(nginx) = Nginx::start(|port| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{port};
        location = /_tessera {{
            internal;
            proxy_pass http://{tessera}/api/v1/auth/forward/;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
        location / {{
            auth_request /_tessera;
            auth_request_set $auth_user $upstream_http_x_auth_user_id;
            auth_request_set $auth_method $upstream_http_x_auth_method;
            proxy_set_header X-Auth-User-Id $auth_user;
            proxy_set_header X-Auth-Method $auth_method;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
    }}
"#
        )
    })
    .await
    else {
        return;
    };
    let url = nginx.url("/app/page");
    let client = reqwest::Client::new();
    let result = async {
        let ok = client.get(&url).bearer_auth(&access).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.text().await.unwrap(), format!("hello {id} via jwt"));
        let refused = client.get(&url).send().await.unwrap();
        assert_eq!(refused.status(), 401, "no token, no entry");
        let refused = client
            .get(&url)
            .bearer_auth("not.a.jwt")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    };
    tokio::time::timeout(Duration::from_secs(30), result)
        .await
        .expect("nginx test timed out");
}

#[tokio::test]
async fn forward_auth_serves_every_method() {
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;
    // A CORS preflight, TRACE and WebDAV methods reach forward auth through
    // a proxy that forwards the original method.
    for method in ["OPTIONS", "TRACE", "PROPFIND", "MKCOL", "GET", "HEAD"] {
        for path in [PATH, PATH.trim_end_matches('/')] {
            let ok = app.call(method, path, Some(&bearer(&access)), None).await;
            assert_eq!(ok.status, 200, "{method} {path}: {}", ok.text);
            assert_eq!(ok.header("x-auth-user-id"), Some(id.to_string().as_str()));
            assert_eq!(ok.text, "");
            let refused = app.call(method, path, None, None).await;
            assert_eq!(refused.status, 401, "{method} {path}: {}", refused.text);
            assert_eq!(refused.text, "", "{method}: an empty body, not a JSON 405");
            assert_eq!(
                refused.header("www-authenticate"),
                Some(r#"Bearer realm="api""#)
            );
        }
    }
}
