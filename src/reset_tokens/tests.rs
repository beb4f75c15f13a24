//! Against tokens made by the real Django (tests/fixtures/account_tokens.json).

use std::time::Duration;

use super::*;

const THREE_DAYS: Duration = Duration::from_secs(3 * 24 * 3600);

struct Case {
    id: i64,
    password: String,
    last_login: Option<DateTime<Utc>>,
    email: String,
    secret: String,
    now: DateTime<Utc>,
    uid: String,
    token: String,
}

fn cases() -> Vec<Case> {
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/account_tokens.json")).unwrap();
    let time = |v: &serde_json::Value| {
        v.as_str()
            .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    };
    file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            id: c["id"].as_i64().unwrap(),
            password: c["password"].as_str().unwrap().into(),
            last_login: time(&c["last_login"]),
            email: c["email"].as_str().unwrap().into(),
            secret: c["secret"].as_str().unwrap().into(),
            now: time(&c["now"]).unwrap(),
            uid: c["uid"].as_str().unwrap().into(),
            token: c["token"].as_str().unwrap().into(),
        })
        .collect()
}

fn user(c: &Case) -> TokenUser<'_> {
    TokenUser {
        id: c.id,
        password: &c.password,
        last_login: c.last_login,
        email: &c.email,
    }
}

#[test]
fn djangos_uids_and_tokens_are_made_and_accepted() {
    for c in cases() {
        assert_eq!(encode_uid(c.id), c.uid);
        assert_eq!(decode_uid(&c.uid), Some(c.id));
        let secret = c.secret.as_bytes();
        assert_eq!(
            make_token(&user(&c), secret, c.now),
            c.token,
            "user {}",
            c.id
        );
        assert!(check_token(&user(&c), &c.token, secret, c.now, THREE_DAYS));
    }
}

#[test]
fn a_token_dies_with_any_change_of_what_it_covers() {
    for c in cases() {
        let secret = c.secret.as_bytes();
        let ok = |u: &TokenUser<'_>| check_token(u, &c.token, secret, c.now, THREE_DAYS);
        assert!(
            !ok(&TokenUser {
                password: "other",
                ..user(&c)
            }),
            "password"
        );
        assert!(
            !ok(&TokenUser {
                email: "new@example.com",
                ..user(&c)
            }),
            "email"
        );
        assert!(
            !ok(&TokenUser {
                id: c.id + 1,
                ..user(&c)
            }),
            "id"
        );
        let login = Some(c.now);
        assert!(
            !ok(&TokenUser {
                last_login: login,
                ..user(&c)
            }),
            "login"
        );
        assert!(!check_token(
            &user(&c),
            &c.token,
            b"another secret",
            c.now,
            THREE_DAYS
        ));
    }
}

#[test]
fn a_token_lives_exactly_as_long_as_the_timeout() {
    let c = &cases()[0];
    let secret = c.secret.as_bytes();
    let later = |secs| c.now + chrono::TimeDelta::seconds(secs);
    assert!(check_token(
        &user(c),
        &c.token,
        secret,
        later(259_200),
        THREE_DAYS
    ));
    assert!(!check_token(
        &user(c),
        &c.token,
        secret,
        later(259_201),
        THREE_DAYS
    ));
}

#[test]
fn malformed_tokens_and_uids_are_refused() {
    let c = &cases()[0];
    let secret = c.secret.as_bytes();
    let (ts, hash) = c.token.split_once('-').unwrap();
    for bad in [
        "",
        "-",
        hash,
        &format!("{ts}-{hash}-x"),
        &format!("{}-{hash}", ts.to_uppercase()),
        &format!("0{ts}-{hash}"),
        &format!("{ts}-{}", &hash[1..]),
        "zzzzzzzzzzzzzz-0",
    ] {
        assert!(
            !check_token(&user(c), bad, secret, c.now, THREE_DAYS),
            "{bad}"
        );
    }
    for bad in ["", "xx", "!!", "LTE", "MQ==x", "w6k"] {
        assert!(decode_uid(bad).is_none() || bad == "LTE", "{bad}");
    }
    // Django accepts a negative id too; no user has one.
    assert_eq!(decode_uid("LTE"), Some(-1));
    assert_eq!(decode_uid("MQ=="), Some(1));
}
