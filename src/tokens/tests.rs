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
    let pair = svc.pair(7, 1_800_000_000);
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
    let pair = svc.pair(7, now);
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
    let token = svc.access(7, 1_800_000_000).token;
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
