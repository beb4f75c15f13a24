//! Any string given as a token: verification must refuse or accept it,
//! never panic, whatever the header, payload or signature hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use tessera::config::{JwtAlgorithm, Settings};
use tessera::tokens::{Expect, SigningKey, TokenService};

fn service() -> &'static TokenService {
    static SVC: OnceLock<TokenService> = OnceLock::new();
    SVC.get_or_init(|| {
        let settings = Settings::load_from(None, Default::default()).expect("defaults");
        TokenService::new(
            SigningKey::hmac(JwtAlgorithm::HS256, b"fuzz-signing-key-0123456789abcdef0123456789"),
            &settings.jwt,
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let svc = service();
    let text = String::from_utf8_lossy(data);
    for expect in [Expect::Access, Expect::Refresh, Expect::Untyped] {
        let _ = svc.verify(&text, expect, 1_800_000_000);
    }
    // Also as a well-signed token around the fuzzed payload, so the claim
    // checks (not only the signature check) see arbitrary JSON.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}", b64.encode(data));
    let key = SigningKey::hmac(JwtAlgorithm::HS256, b"fuzz-signing-key-0123456789abcdef0123456789");
    let token = format!("{message}.{}", key.sign(message.as_bytes()));
    for expect in [Expect::Access, Expect::Refresh, Expect::Untyped] {
        if let Ok(claims) = svc.verify(&token, expect, 1_800_000_000) {
            let _ = claims.user_id();
            let _ = claims.family_id();
        }
    }
});
