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
    let Some(nginx) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        panic!("nginx is needed for this test (apt-get install nginx; .ci/run installs it)");
    };
    let app = spawn_app().await;
    let id = app.register("alice").await["id"].as_i64().unwrap();
    let (_, access) = app.login("alice").await;

    // The tiny upstream: echoes who nginx says the caller is.
    let upstream = poem::listener::TcpListener::bind("127.0.0.1:0");
    let acceptor = poem::listener::Listener::into_acceptor(upstream)
        .await
        .unwrap();
    let upstream_port = poem::listener::Acceptor::local_addr(&acceptor)[0]
        .as_socket_addr()
        .unwrap()
        .port();
    #[poem::handler]
    fn echo(req: &poem::Request) -> String {
        let user = req.header("x-auth-user-id").unwrap_or("?");
        let method = req.header("x-auth-method").unwrap_or("?");
        format!("hello {user} via {method}")
    }
    tokio::spawn(
        poem::Server::new_with_acceptor(acceptor).run(poem::Route::new().at("/*path", echo)),
    );

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tessera = app.base.trim_start_matches("http://");
    let d = dir.path().display();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
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
}}
"#
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut child = std::process::Command::new(nginx)
        .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
        .arg(&conf_path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/app/page");
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..50 {
        if client.get(&url).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = async {
        assert!(
            ready,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
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
    let outcome = tokio::time::timeout(Duration::from_secs(30), result).await;
    let _ = child.kill();
    let _ = child.wait();
    outcome.expect("nginx test timed out");
}
