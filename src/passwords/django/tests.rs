//! Against hashes made by the real Django (tests/fixtures/django_hashes.json).

use super::*;

fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../tests/fixtures/django_hashes.json")).unwrap()
}

#[test]
fn every_django_hasher_verifies_its_own_hashes_and_nothing_else() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for c in cases {
        let encoded = c["encoded"].as_str().unwrap();
        let password = c["password"].as_str().unwrap();
        seen.insert(c["algorithm"].as_str().unwrap());
        match Stored::parse(encoded) {
            // The pool's argon2 verifies these; only the format is read here.
            Stored::Argon2(phc) => assert!(phc.starts_with("$argon2i"), "{encoded}"),
            stored => {
                assert!(verify(&stored, password.as_bytes(), false), "{encoded}");
                assert!(!verify(&stored, b"wrong password", false), "{encoded}");
                let mut longer = password.to_owned();
                longer.push('x');
                // Plain bcrypt stops at 72 bytes, so a longer password with
                // the same start matches there as in Django.
                if password.len() < 72 {
                    assert!(!verify(&stored, longer.as_bytes(), false), "{encoded}");
                }
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "argon2",
            "bcrypt",
            "bcrypt_sha256",
            "pbkdf2_sha1",
            "pbkdf2_sha256",
            "scrypt"
        ]
    );
}

#[test]
fn weak_digests_match_only_when_allowed() {
    let f = fixture();
    for c in f["unsafe"].as_array().unwrap() {
        let encoded = c["encoded"].as_str().unwrap();
        let password = c["password"].as_str().unwrap().as_bytes();
        let stored = Stored::parse(encoded);
        assert!(matches!(stored, Stored::Weak(_)), "{encoded}");
        assert!(!verify(&stored, password, false), "{encoded}");
        assert!(verify(&stored, password, true), "{encoded}");
        assert!(!verify(&stored, b"wrong", true), "{encoded}");
    }
}

#[test]
fn unusable_and_unknown_formats_never_match() {
    let f = fixture();
    assert_eq!(
        Stored::parse(f["unusable"].as_str().unwrap()),
        Stored::Unusable
    );
    for encoded in [
        "",
        "plain",
        "pbkdf2_sha256$x$salt$hash",
        "scrypt$3$s$8$1$aGFzaA==",
        "crypt$$abcdef",
    ] {
        let stored = Stored::parse(encoded);
        assert!(!verify(&stored, b"", true), "{encoded}");
        assert!(!verify(&stored, b"plain", true), "{encoded}");
    }
    // An iteration count of 0 is no hash at all.
    let zero = Stored::parse("pbkdf2_sha256$0$salt$aGFzaA==");
    assert!(!verify(&zero, b"x", true));
}
