//! Unit tests of the token service: what it signs and what it refuses.

use super::*;
use crate::config::Settings;

const KEY: &str = "unit-test-signing-key-0123456789abcdef0123456789";

fn service() -> TokenService {
    let settings = Settings::load_from(None, Default::default()).unwrap();
    TokenService::new(
        SigningKey::hmac(settings.jwt.algorithm, KEY.as_bytes()),
        &settings.jwt,
    )
}

fn decode_part(token: &str, i: usize) -> String {
    String::from_utf8(B64.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

#[test]
fn issued_tokens_have_simple_jwt_bytes() {
    let svc = service();
    let pair = svc.pair(&Subject::new(7), 1_800_000_000);
    assert!(
        pair.access
            .token
            .starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.")
    );
    let payload = decode_part(&pair.access.token, 1);
    assert_eq!(
        payload,
        format!(
            r#"{{"token_type":"access","exp":1800000300,"iat":1800000000,"jti":"{}","user_id":"7"}}"#,
            pair.access.jti
        )
    );
    assert!(decode_part(&pair.refresh.token, 1).contains(r#""exp":1800086400,"iat":1800000000"#));
    assert_eq!(pair.access.jti.len(), 32);
    assert!(
        pair.access
            .jti
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(pair.access.jti, pair.refresh.jti);
}

#[test]
fn round_trip_and_type_checks() {
    let svc = service();
    let now = 1_800_000_000;
    let pair = svc.pair(&Subject::new(7), now);
    let c = svc.verify(&pair.access.token, Expect::Access, now).unwrap();
    assert_eq!(c.user_id(), Some(7));
    assert_eq!(c.jti, pair.access.jti);
    assert_eq!(
        svc.verify(&pair.refresh.token, Expect::Access, now)
            .unwrap_err(),
        TokenError::WrongType
    );
    assert_eq!(
        svc.verify(&pair.access.token, Expect::Refresh, now)
            .unwrap_err(),
        TokenError::WrongType
    );
    assert!(
        svc.verify(&pair.refresh.token, Expect::Untyped, now)
            .is_ok()
    );
    assert_eq!(
        svc.verify(&pair.access.token, Expect::Access, now + 300)
            .unwrap_err(),
        TokenError::Expired
    );
}

#[test]
fn tampering_is_refused() {
    let svc = service();
    let token = svc.access(&Subject::new(7), 1_800_000_000).token;
    let mut bytes = token.clone().into_bytes();
    let mid = token.len() - 10;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert_eq!(
        svc.verify(&tampered, Expect::Access, 1_800_000_000)
            .unwrap_err(),
        TokenError::Invalid
    );
    for garbage in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "....",
        &format!("{token}.x"),
    ] {
        assert_eq!(
            svc.verify(garbage, Expect::Untyped, 1_800_000_000)
                .unwrap_err(),
            TokenError::Invalid,
            "{garbage}"
        );
    }
}

fn service_with(env: &[(&str, &str)]) -> TokenService {
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let settings = Settings::load_from(None, env).unwrap();
    TokenService::new(
        SigningKey::hmac(settings.jwt.algorithm, KEY.as_bytes()),
        &settings.jwt,
    )
}

fn alice() -> Subject {
    Subject {
        id: 7,
        username: "alice".into(),
        email: "a@example.com".into(),
        is_staff: true,
        is_superuser: false,
        groups: vec!["admin".into(), "ops".into()],
    }
}

#[test]
fn configured_claims_follow_simple_jwts_and_precede_ours() {
    let svc = service_with(&[
        ("TESSERA__JWT__EXTRA_CLAIMS", "groups,is_staff,username"),
        ("TESSERA__JWT__REFRESH_EXTRA_CLAIMS", "is_superuser"),
        ("TESSERA__JWT__CLAIM_NAMES__GROUPS", "roles"),
        ("TESSERA__JWT__STATIC_CLAIMS__TENANT", "acme"),
        ("TESSERA__JWT__ISSUER", "https://auth.example.com"),
    ]);
    let pair = svc.rotated_pair(&alice(), 1_800_000_000, "fam");
    assert_eq!(
        decode_part(&pair.access.token, 1),
        format!(
            r#"{{"token_type":"access","exp":1800000300,"iat":1800000000,"jti":"{}","user_id":"7","username":"alice","is_staff":true,"roles":["admin","ops"],"tenant":"acme","iss":"https://auth.example.com"}}"#,
            pair.access.jti
        )
    );
    assert_eq!(
        decode_part(&pair.refresh.token, 1),
        format!(
            r#"{{"token_type":"refresh","exp":1800086400,"iat":1800000000,"jti":"{}","user_id":"7","is_superuser":false,"tenant":"acme","family":"fam","iss":"https://auth.example.com"}}"#,
            pair.refresh.jti
        )
    );
    // What a verifier keeps of them.
    let c = svc
        .verify(&pair.access.token, Expect::Access, 1_800_000_001)
        .unwrap();
    assert_eq!(c.text("username"), Some("alice"));
    assert_eq!(c.extra["roles"], serde_json::json!(["admin", "ops"]));
}

#[test]
fn sliding_tokens_slide_until_refresh_exp() {
    let svc = service();
    let t0 = 1_800_000_000;
    let first = svc.sliding(&Subject::new(7), t0);
    assert_eq!(
        decode_part(&first.token, 1),
        format!(
            r#"{{"token_type":"sliding","exp":1800000300,"iat":1800000000,"jti":"{}","refresh_exp":1800086400,"user_id":"7"}}"#,
            first.jti
        )
    );
    let c = svc.verify(&first.token, Expect::Sliding, t0 + 10).unwrap();
    assert_eq!(svc.check_refresh_exp(&c, t0 + 10), Ok(1_800_086_400));
    assert_eq!(
        svc.verify(&first.token, Expect::Access, t0).unwrap_err(),
        TokenError::WrongType
    );
    let next = svc.slid(&Subject::new(7), t0 + 200, c.jti.clone(), 1_800_086_400);
    let n = svc.verify(&next.token, Expect::Sliding, t0 + 450).unwrap();
    assert_eq!(
        (n.jti.as_str(), n.exp, n.iat),
        (first.jti.as_str(), t0 + 500, Some(t0 + 200))
    );
    assert_eq!(
        svc.check_refresh_exp(&n, 1_800_086_400),
        Err(TokenError::RefreshExpired)
    );
    let access = svc.access(&Subject::new(7), t0);
    let a = svc.verify(&access.token, Expect::Access, t0).unwrap();
    assert_eq!(svc.check_refresh_exp(&a, t0), Err(TokenError::NoRefreshExp));
}
