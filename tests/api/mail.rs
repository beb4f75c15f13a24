//! Djoser's email flows against a real SMTP server that the test starts
//! (a listener on 127.0.0.1 speaking enough SMTP to take mail), from the
//! mail's arrival to following its link.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::*;

/// Mails received: the raw DATA of each, with its recipients.
#[derive(Clone, Default)]
struct MailSink {
    port: u16,
    mails: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone, Debug)]
struct Received {
    to: Vec<String>,
    data: String,
}

impl Received {
    /// The body with quoted-printable soft breaks and `=3D` undone, enough
    /// to read links and text.
    fn text(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The `uid` and `token` of the link after `marker` (`.../{uid}/{token}`).
    fn link(&self, marker: &str) -> (String, String) {
        let text = self.text();
        let start = text
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in {text}"));
        let rest = &text[start + marker.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_/".contains(c)))
            .unwrap_or(rest.len());
        let mut parts = rest[..end].split('/');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    }
}

impl MailSink {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            port: listener.local_addr().unwrap().port(),
            mails: Arc::default(),
        };
        let mails = Arc::clone(&sink.mails);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mails = Arc::clone(&mails);
                tokio::spawn(async move {
                    let _ = session(stream, mails).await;
                });
            }
        });
        sink
    }

    /// Waits (up to 10 s) until `n` mails have arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let mails = self.mails.lock().unwrap().clone();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} mails expected, got {:?}", self.mails.lock().unwrap());
    }

    fn count(&self) -> usize {
        self.mails.lock().unwrap().len()
    }
}

/// One SMTP session (RFC 5321's minimum: no extensions offered).
async fn session(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink\r\n",
            "MAIL" => {
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    data.push_str(&l);
                    data.push_str("\r\n");
                }
                mails.lock().unwrap().push(Received {
                    to: to.clone(),
                    data,
                });
                b"250 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 OK\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// An app that mails through `sink`, with `extra` settings.
async fn app_mailing(sink: &MailSink, extra: &[(&str, &str)]) -> TestApp {
    let port = sink.port.to_string();
    let mut env = vec![
        ("TESSERA__EMAIL__BACKEND", "smtp"),
        ("TESSERA__EMAIL__HOST", "127.0.0.1"),
        ("TESSERA__EMAIL__PORT", port.as_str()),
        ("TESSERA__EMAIL__FROM", "Tessera <noreply@example.com>"),
        ("TESSERA__USERS__DOMAIN", "app.example.com"),
        ("TESSERA__USERS__PROTOCOL", "https"),
        ("TESSERA__USERS__ACTIVATION_URL", "activate/{uid}/{token}"),
        (
            "TESSERA__USERS__PASSWORD_RESET_CONFIRM_URL",
            "password/reset/{uid}/{token}",
        ),
        (
            "TESSERA__USERS__USERNAME_RESET_CONFIRM_URL",
            "username/reset/{uid}/{token}",
        ),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

const USERS: &str = "/api/v1/auth/users";

async fn post(app: &TestApp, path: &str, body: serde_json::Value) -> Answer {
    app.post_json(&format!("{USERS}/{path}/"), body).await
}

fn login_body(username: &str, password: &str) -> serde_json::Value {
    json!({"username": username, "password": password})
}

#[tokio::test]
async fn activation_by_the_mailed_link() {
    let sink = MailSink::start().await;
    let app = app_mailing(
        &sink,
        &[
            ("TESSERA__USERS__SEND_ACTIVATION_EMAIL", "true"),
            ("TESSERA__USERS__SEND_CONFIRMATION_EMAIL", "true"),
        ],
    )
    .await;
    let created = app.register("alice").await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to, ["alice@example.com"]);
    assert!(
        mails[0]
            .text()
            .contains("Subject: Account activation on Tessera")
    );
    assert!(
        mails[0]
            .text()
            .contains("https://app.example.com/activate/")
    );
    // Inactive until activated: login answers as for wrong credentials.
    let a = app
        .post_json("/api/token/", login_body("alice", PASSWORD))
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.json["detail"],
        "No active account found with the given credentials"
    );
    let (uid, token) = mails[0].link("activate/");
    assert_eq!(created["id"].as_i64().unwrap().to_string(), {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&uid)
                .unwrap(),
        )
        .unwrap()
    });
    let a = post(&app, "activation", json!({"uid": uid, "token": token})).await;
    assert_eq!(a.status, 204, "{}", a.text);
    assert!(a.text.is_empty());
    app.login("alice").await;
    // The confirmation follows; the link is spent.
    let mails = sink.wait_for(2).await;
    assert!(
        mails[1]
            .text()
            .contains("successfully created and activated")
    );
    let again = post(&app, "activation", json!({"uid": uid, "token": token})).await;
    assert_eq!(again.status, 403);
    assert_eq!(again.json, json!({"detail": "Stale token for given user."}));
}

#[tokio::test]
async fn activation_errors_in_djosers_words() {
    let sink = MailSink::start().await;
    let app = app_mailing(&sink, &[("TESSERA__USERS__SEND_ACTIVATION_EMAIL", "true")]).await;
    app.register("bob").await;
    let (uid, token) = sink.wait_for(1).await[0].link("activate/");
    for (body, expected) in [
        (
            json!({}),
            json!({"uid": ["This field is required."], "token": ["This field is required."]}),
        ),
        (
            json!({"uid": "xx", "token": "yy"}),
            json!({"uid": ["Invalid user id or user doesn't exist."]}),
        ),
        (
            json!({"uid": "OTk5", "token": token}),
            json!({"uid": ["Invalid user id or user doesn't exist."]}),
        ),
        (
            json!({"uid": uid, "token": "yy"}),
            json!({"token": ["Invalid token for given user."]}),
        ),
        (
            json!({"uid": uid, "token": format!("{token}x")}),
            json!({"token": ["Invalid token for given user."]}),
        ),
    ] {
        let a = post(&app, "activation", body.clone()).await;
        assert_eq!((a.status.as_u16(), &a.json), (400, &expected), "{body}");
    }
}

#[tokio::test]
async fn resend_activation_mails_a_new_link_or_answers_a_bare_400_when_off() {
    let sink = MailSink::start().await;
    let app = app_mailing(&sink, &[("TESSERA__USERS__SEND_ACTIVATION_EMAIL", "true")]).await;
    app.register("carol").await;
    sink.wait_for(1).await;
    let a = post(
        &app,
        "resend_activation",
        json!({"email": "carol@example.com"}),
    )
    .await;
    assert_eq!(a.status, 204);
    let mails = sink.wait_for(2).await;
    let (uid, token) = mails[1].link("activate/");
    assert_eq!(
        post(&app, "activation", json!({"uid": uid, "token": token}))
            .await
            .status,
        204
    );
    // Active now: nothing more to send, and the same answer.
    let a = post(
        &app,
        "resend_activation",
        json!({"email": "carol@example.com"}),
    )
    .await;
    assert_eq!(a.status, 204);
    let a = post(&app, "resend_activation", json!({"email": "not-an-email"})).await;
    assert_eq!(a.json, json!({"email": ["Enter a valid email address."]}));

    let off = app_mailing(&sink, &[]).await;
    let a = post(
        &off,
        "resend_activation",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.text.is_empty(), "{}", a.text);
    assert!(a.header("content-type").is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 2);
}

#[tokio::test]
async fn password_reset_by_mailed_link_ends_the_old_password_and_sessions() {
    let sink = MailSink::start().await;
    let app = app_mailing(
        &sink,
        &[(
            "TESSERA__USERS__PASSWORD_CHANGED_EMAIL_CONFIRMATION",
            "true",
        )],
    )
    .await;
    app.register("dave").await;
    let (old_refresh, _) = app.login("dave").await;
    let key = app.token_login("dave", PASSWORD).await;
    let a = post(&app, "reset_password", json!({"email": "dave@example.com"})).await;
    assert_eq!(a.status, 204);
    assert!(a.text.is_empty());
    let mail = &sink.wait_for(1).await[0];
    assert!(mail.text().contains("Subject: Password reset on Tessera"));
    assert!(
        mail.text()
            .contains("Your username, in case you've forgotten: dave")
    );
    let (uid, token) = mail.link("password/reset/");
    let new = "An0ther-Good-Pass";
    let body = json!({"uid": uid, "token": token, "new_password": new});
    let a = post(&app, "reset_password_confirm", body.clone()).await;
    assert_eq!(a.status, 204, "{}", a.text);
    let old = app
        .post_json("/api/token/", login_body("dave", PASSWORD))
        .await;
    assert_eq!(old.status, 401);
    let fresh = app.post_json("/api/token/", login_body("dave", new)).await;
    assert_eq!(fresh.status, 200);
    let refused = app.refresh(&old_refresh).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json["code"], "password_changed");
    let me = app
        .get(&format!("{USERS}/me/"), Some(&token_header(&key)))
        .await;
    assert_eq!(me.status, 401, "opaque keys end too");
    // The link worked once.
    let again = post(&app, "reset_password_confirm", body).await;
    assert_eq!(
        (again.status.as_u16(), again.json),
        (400, json!({"token": ["Invalid token for given user."]}))
    );
    let mails = sink.wait_for(2).await;
    assert!(mails[1].text().contains("Your password has been changed!"));
}

fn token_header(key: &str) -> String {
    format!("Token {key}")
}

#[tokio::test]
async fn password_reset_confirm_errors_in_djosers_order() {
    let sink = MailSink::start().await;
    let app = app_mailing(
        &sink,
        &[("TESSERA__USERS__PASSWORD_RESET_CONFIRM_RETYPE", "true")],
    )
    .await;
    app.register("erin").await;
    post(&app, "reset_password", json!({"email": "erin@example.com"})).await;
    let (uid, token) = sink.wait_for(1).await[0].link("password/reset/");
    let good = "An0ther-Good-Pass";
    for (body, expected) in [
        (
            json!({"uid": uid, "token": token}),
            json!({"new_password": ["This field is required."], "re_new_password": ["This field is required."]}),
        ),
        // The password's rules come before the link is looked at.
        (
            json!({"uid": "xx", "token": "yy", "new_password": "123", "re_new_password": "123"}),
            json!({"new_password": [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric."
            ]}),
        ),
        (
            json!({"uid": uid, "token": token, "new_password": good, "re_new_password": "other-Good-Pass1"}),
            json!({"non_field_errors": ["The two password fields didn't match."]}),
        ),
        (
            json!({"uid": "xx", "token": token, "new_password": good, "re_new_password": good}),
            json!({"uid": ["Invalid user id or user doesn't exist."]}),
        ),
        (
            json!({"uid": uid, "token": "0-0", "new_password": good, "re_new_password": good}),
            json!({"token": ["Invalid token for given user."]}),
        ),
    ] {
        let a = post(&app, "reset_password_confirm", body.clone()).await;
        assert_eq!((a.status.as_u16(), &a.json), (400, &expected), "{body}");
    }
    let ok = json!({"uid": uid, "token": token, "new_password": good, "re_new_password": good});
    assert_eq!(post(&app, "reset_password_confirm", ok).await.status, 204);
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    let sink = MailSink::start().await;
    let app = app_mailing(&sink, &[("TESSERA__USERS__PASSWORD_RESET_TIMEOUT", "1s")]).await;
    app.register("frank").await;
    post(
        &app,
        "reset_password",
        json!({"email": "frank@example.com"}),
    )
    .await;
    let (uid, token) = sink.wait_for(1).await[0].link("password/reset/");
    // Token times are whole seconds: past one second for certain.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a = post(
        &app,
        "reset_password_confirm",
        json!({"uid": uid, "token": token, "new_password": "An0ther-Good-Pass"}),
    )
    .await;
    assert_eq!(a.json, json!({"token": ["Invalid token for given user."]}));
}

#[tokio::test]
async fn unknown_and_inactive_emails_get_the_same_answer_and_no_mail() {
    let sink = MailSink::start().await;
    let app = app_mailing(&sink, &[]).await;
    let id = app.register("gina").await["id"].as_i64().unwrap();
    app.set_active(id, false).await;
    for email in ["nobody@example.com", "gina@example.com"] {
        for path in ["reset_password", "reset_username"] {
            let a = post(&app, path, json!({"email": email})).await;
            assert_eq!(
                (a.status.as_u16(), a.text.as_str()),
                (204, ""),
                "{path} {email}"
            );
        }
    }
    for (body, expected) in [
        (json!({}), json!({"email": ["This field is required."]})),
        (
            json!({"email": ""}),
            json!({"email": ["This field may not be blank."]}),
        ),
        (
            json!({"email": "x@"}),
            json!({"email": ["Enter a valid email address."]}),
        ),
    ] {
        // The three endpoints that take an email read it alike.
        for path in ["reset_password", "reset_username", "resend_activation"] {
            let a = post(&app, path, body.clone()).await;
            assert_eq!((a.status.as_u16(), &a.json), (400, &expected), "{path}");
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 0);

    let shown = app_mailing(
        &sink,
        &[(
            "TESSERA__USERS__PASSWORD_RESET_SHOW_EMAIL_NOT_FOUND",
            "true",
        )],
    )
    .await;
    for path in ["reset_password", "reset_username", "resend_activation"] {
        let a = post(&shown, path, json!({"email": "nobody@example.com"})).await;
        assert_eq!(
            (a.status.as_u16(), a.json),
            (400, json!(["User with given email does not exist."])),
            "{path}"
        );
    }
}

#[tokio::test]
async fn username_reset_by_mailed_link() {
    let sink = MailSink::start().await;
    let app = app_mailing(
        &sink,
        &[
            ("TESSERA__USERS__USERNAME_RESET_CONFIRM_RETYPE", "true"),
            (
                "TESSERA__USERS__USERNAME_CHANGED_EMAIL_CONFIRMATION",
                "true",
            ),
        ],
    )
    .await;
    app.register("hank").await;
    app.register("taken").await;
    post(&app, "reset_username", json!({"email": "hank@example.com"})).await;
    let mail = &sink.wait_for(1).await[0];
    assert!(mail.text().contains("Subject: Username reset on Tessera"));
    let (uid, token) = mail.link("username/reset/");
    for (body, expected) in [
        (
            json!({"uid": uid, "token": token, "new_username": "taken", "re_new_username": "taken"}),
            json!({"new_username": ["A user with that username already exists."]}),
        ),
        (
            json!({"uid": uid, "token": token, "new_username": "hank2", "re_new_username": "hank3"}),
            json!({"non_field_errors": ["The two username fields didn't match."]}),
        ),
        (
            json!({"uid": uid, "token": "1-2", "new_username": "hank2", "re_new_username": "hank2"}),
            json!({"token": ["Invalid token for given user."]}),
        ),
    ] {
        let a = post(&app, "reset_username_confirm", body.clone()).await;
        assert_eq!((a.status.as_u16(), &a.json), (400, &expected), "{body}");
    }
    let ok =
        json!({"uid": uid, "token": token, "new_username": "hank2", "re_new_username": "hank2"});
    let a = post(&app, "reset_username_confirm", ok.clone()).await;
    assert_eq!(a.status, 204, "{}", a.text);
    app.login("hank2").await;
    // Spent: the last login moved.
    let again = post(&app, "reset_username_confirm", ok).await;
    assert_eq!(again.status, 400);
    let mails = sink.wait_for(2).await;
    assert!(mails[1].text().contains("Your username has been changed!"));
}

#[tokio::test]
async fn retype_settings_ask_for_the_second_field() {
    let sink = MailSink::start().await;
    let app = app_mailing(
        &sink,
        &[
            ("TESSERA__USERS__USER_CREATE_PASSWORD_RETYPE", "true"),
            ("TESSERA__USERS__SET_PASSWORD_RETYPE", "true"),
            ("TESSERA__USERS__SET_USERNAME_RETYPE", "true"),
        ],
    )
    .await;
    let a = app
        .post_json(
            &format!("{USERS}/"),
            json!({"username": "ivy", "password": PASSWORD}),
        )
        .await;
    assert_eq!(a.json, json!({"re_password": ["This field is required."]}));
    let a = app
        .post_json(
            &format!("{USERS}/"),
            json!({"username": "ivy", "password": PASSWORD, "re_password": "different-Pass1"}),
        )
        .await;
    assert_eq!(
        (a.status.as_u16(), a.json),
        (
            400,
            json!({"non_field_errors": ["The two password fields didn't match."]})
        )
    );
    let a = app
        .post_json(
            &format!("{USERS}/"),
            json!({"username": "ivy", "password": PASSWORD, "re_password": PASSWORD}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let (_, access) = app.login("ivy").await;
    let auth = bearer(&access);
    let a = app
        .call(
            "POST",
            &format!("{USERS}/set_password/"),
            Some(&auth),
            Some(json!({"current_password": PASSWORD, "new_password": "An0ther-Good-Pass", "re_new_password": "x-An0ther-Good"})),
        )
        .await;
    assert_eq!(
        a.json,
        json!({"non_field_errors": ["The two password fields didn't match."]})
    );
    let a = app
        .call(
            "POST",
            &format!("{USERS}/set_username/"),
            Some(&auth),
            Some(json!({"current_password": PASSWORD, "new_username": "ivy2"})),
        )
        .await;
    assert_eq!(
        a.json,
        json!({"re_new_username": ["This field is required."]})
    );
}

#[tokio::test]
async fn a_dead_smtp_server_slows_nothing_and_the_loss_is_counted() {
    // A port nobody listens on.
    let port = free_port().to_string();
    let app = spawn_app_with(&[
        ("TESSERA__EMAIL__BACKEND", "smtp"),
        ("TESSERA__EMAIL__HOST", "127.0.0.1"),
        ("TESSERA__EMAIL__PORT", port.as_str()),
        ("TESSERA__EMAIL__ATTEMPTS", "2"),
    ])
    .await;
    app.register("jack").await;
    let started = std::time::Instant::now();
    let a = post(&app, "reset_password", json!({"email": "jack@example.com"})).await;
    assert_eq!(a.status, 204);
    assert!(started.elapsed() < Duration::from_secs(1));
    let failed = "tessera_emails_total{kind=\"password_reset\",outcome=\"failed\"} 1";
    for _ in 0..100 {
        if app.get("/metrics", None).await.text.contains(failed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{}", app.get("/metrics", None).await.text);
}

#[tokio::test]
async fn a_link_mailed_by_django_works_for_an_imported_user() {
    let fixture = fixture_json("account_tokens.json");
    let case = &fixture["cases"][0];
    let app = spawn_app_with(&[
        (
            "TESSERA__USERS__TOKEN_SECRET",
            case["secret"].as_str().unwrap(),
        ),
        // The fixture was made on a fixed day; only its signature is under
        // test here.
        ("TESSERA__USERS__PASSWORD_RESET_TIMEOUT", "100years"),
    ])
    .await;
    // The user as Django stored them.
    app.insert_user(
        case["id"].as_i64(),
        "imported",
        case["email"].as_str().unwrap(),
        case["password"].as_str().unwrap(),
    )
    .await;
    let a = post(
        &app,
        "reset_password_confirm",
        json!({"uid": case["uid"], "token": case["token"], "new_password": "An0ther-Good-Pass"}),
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.text);
    let ok = app
        .post_json("/api/token/", login_body("imported", "An0ther-Good-Pass"))
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_used_twice_at_once_works_once() {
    let sink = MailSink::start().await;
    // Eight tries of one uid would be throttled past five.
    let app = app_mailing(&sink, &[("TESSERA__THROTTLE__ENABLED", "false")]).await;
    app.register("kate").await;
    app.warm_connections(8).await;
    post(&app, "reset_password", json!({"email": "kate@example.com"})).await;
    let (uid, token) = sink.wait_for(1).await[0].link("password/reset/");
    let attempts = (0..8).map(|i| {
        let body =
            json!({"uid": uid, "token": token, "new_password": format!("An0ther-Good-Pass{i}")});
        let app = &app;
        async move {
            post(app, "reset_password_confirm", body)
                .await
                .status
                .as_u16()
        }
    });
    let mut statuses = futures::future::join_all(attempts).await;
    statuses.sort();
    assert_eq!(statuses[0], 204, "{statuses:?}");
    assert!(statuses[1..].iter().all(|s| *s == 400), "{statuses:?}");
}

#[tokio::test]
async fn a_new_email_waits_for_its_own_activation() {
    let sink = MailSink::start().await;
    let app = app_mailing(&sink, &[("TESSERA__USERS__SEND_ACTIVATION_EMAIL", "true")]).await;
    app.register("lena").await;
    let (uid, token) = sink.wait_for(1).await[0].link("activate/");
    post(&app, "activation", json!({"uid": uid, "token": token})).await;
    let (_, access) = app.login("lena").await;
    let a = app
        .call(
            "PATCH",
            &format!("{USERS}/me/"),
            Some(&bearer(&access)),
            Some(json!({"email": "lena@new.example.com"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let mail = &sink.wait_for(2).await[1];
    assert_eq!(mail.to, ["lena@new.example.com"]);
    // As in Djoser: inactive until the new address's link is used.
    let refused = app
        .post_json("/api/token/", login_body("lena", PASSWORD))
        .await;
    assert_eq!(refused.status, 401);
    let (uid, token) = mail.link("activate/");
    assert_eq!(
        post(&app, "activation", json!({"uid": uid, "token": token}))
            .await
            .status,
        204
    );
    app.login("lena").await;
}
