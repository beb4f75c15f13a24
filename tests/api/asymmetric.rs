//! Every algorithm end to end, the JWKS document, verification by an
//! independent JWT implementation fed only that document, and key rotation.

use std::path::Path;

use jwt_compact::{Algorithm as _, AlgorithmExt as _, UntrustedToken};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera::config::JwtAlgorithm;
use tessera::tokens::keys::generate;

use crate::helpers::*;

/// An app signing with a fresh key for `alg`, kept in `dir`.
async fn app_with_algorithm(alg: JwtAlgorithm, dir: &Path, extra: &[(&str, &str)]) -> TestApp {
    let files = generate(alg, dir, false).unwrap();
    let private = files.private.display().to_string();
    let mut env = vec![
        ("TESSERA__JWT__ALGORITHM", alg.as_str()),
        ("TESSERA__JWT__SIGNING_KEY", ""),
        ("TESSERA__JWT__SIGNING_KEY_FILE", private.as_str()),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[derive(Debug, Deserialize)]
struct Custom {
    token_type: String,
    user_id: String,
}

/// Verifies `token` with jwt-compact, using only the JWKS document: finds
/// the key by `kid`, builds the verifying key from the JWK. `None` where
/// jwt-compact has no implementation of the algorithm (ES384).
fn independent_verify(token: &str, jwks: &Value) -> Option<Custom> {
    let untrusted = UntrustedToken::new(token).expect("parses");
    let kid = untrusted
        .header()
        .key_id
        .clone()
        .expect("asymmetric tokens carry a kid");
    let jwk_json = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published")
        .clone();
    let jwk: jwt_compact::jwk::JsonWebKey<'_> = serde_json::from_value(jwk_json).unwrap();
    let claims = match untrusted.algorithm() {
        "EdDSA" => {
            let key =
                <jwt_compact::alg::Ed25519 as jwt_compact::Algorithm>::VerifyingKey::try_from(&jwk)
                    .unwrap();
            jwt_compact::alg::Ed25519
                .validator::<Custom>(&key)
                .validate(&untrusted)
                .unwrap()
                .into_parts()
                .1
                .custom
        }
        "ES256" => {
            let key =
                <jwt_compact::alg::Es256 as jwt_compact::Algorithm>::VerifyingKey::try_from(&jwk)
                    .unwrap();
            jwt_compact::alg::Es256
                .validator::<Custom>(&key)
                .validate(&untrusted)
                .unwrap()
                .into_parts()
                .1
                .custom
        }
        name @ ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512") => {
            let key = jwt_compact::alg::RsaPublicKey::try_from(&jwk).unwrap();
            let rsa = jwt_compact::alg::Rsa::with_name(name);
            assert_eq!(rsa.name(), name);
            rsa.validator::<Custom>(&key)
                .validate(&untrusted)
                .unwrap()
                .into_parts()
                .1
                .custom
        }
        _ => return None,
    };
    Some(claims)
}

#[tokio::test]
async fn every_algorithm_end_to_end() {
    for alg in JwtAlgorithm::ALL {
        let dir = tempfile::tempdir().unwrap();
        let app = app_with_algorithm(alg, dir.path(), &[]).await;
        let id = app.register("alice").await["id"].as_i64().unwrap();
        let (refresh, access) = app.login("alice").await;
        let h = header(&access);
        assert_eq!(h["alg"], alg.as_str());
        assert_eq!(h["typ"], "JWT");
        assert_eq!(app.me(&access).await.status, 200, "{alg:?}");
        let refreshed = app.refresh(&refresh).await;
        assert_eq!(refreshed.status, 200, "{alg:?}");
        let a = app
            .post_json(
                "/api/token/verify/",
                json!({ "token": refreshed.json["access"] }),
            )
            .await;
        assert_eq!(a.status, 200, "{alg:?}");
        let jwks = app.get("/.well-known/jwks.json", None).await;
        assert_eq!(jwks.status, 200);
        assert_eq!(jwks.header("cache-control"), Some("public, max-age=300"));
        let keys = jwks.json["keys"].as_array().unwrap();
        if alg.is_hmac() {
            assert!(keys.is_empty(), "a shared secret is never published");
            assert!(h.get("kid").is_none(), "as Simple JWT's HMAC tokens");
            continue;
        }
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["kid"], h["kid"]);
        assert_eq!(keys[0]["alg"], alg.as_str());
        assert_eq!(keys[0]["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                keys[0].get(private).is_none(),
                "{alg:?} publishes {private}"
            );
        }
        if let Some(claims) = independent_verify(&access, &jwks.json) {
            assert_eq!(claims.token_type, "access");
            assert_eq!(claims.user_id, id.to_string());
        } else {
            assert_eq!(
                alg,
                JwtAlgorithm::ES384,
                "only ES384 lacks an independent verifier"
            );
        }
        // A token signed by another key of the same kind, kid or not, is refused.
        let other = tempfile::tempdir().unwrap();
        let stranger = app_with_algorithm(alg, other.path(), &[]).await;
        stranger.register("alice").await;
        let (_, foreign) = stranger.login("alice").await;
        assert_eq!(app.me(&foreign).await.status, 401, "{alg:?}");
    }
}

#[tokio::test]
async fn rotation_keeps_tokens_of_the_previous_key_valid() {
    let old_dir = tempfile::tempdir().unwrap();
    let old = generate(JwtAlgorithm::EdDSA, old_dir.path(), false).unwrap();
    // The old deployment issued tokens with the old key as its current key.
    let old_private = old.private.display().to_string();
    let before = spawn_app_with(&[
        ("TESSERA__JWT__ALGORITHM", "EdDSA"),
        ("TESSERA__JWT__SIGNING_KEY", ""),
        ("TESSERA__JWT__SIGNING_KEY_FILE", &old_private),
        ("TESSERA__JWT__KEY_ID", "2026-01"),
    ])
    .await;
    let uid = before.register("alice").await["id"].as_i64().unwrap();
    let (old_refresh, old_access) = before.login("alice").await;
    assert_eq!(header(&old_access)["kid"], "2026-01");

    // The new deployment: a new current key, the old one retired.
    let new_dir = tempfile::tempdir().unwrap();
    let new = generate(JwtAlgorithm::EdDSA, new_dir.path(), false).unwrap();
    let config = new_dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "[jwt]\nalgorithm = \"EdDSA\"\nsigning_key_file = \"{}\"\nkey_id = \"2026-06\"\n\n[[jwt.previous_keys]]\nkid = \"2026-01\"\nverifying_key_file = \"{}\"\n",
            new.private.display(),
            old.public.as_ref().unwrap().display()
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let mut env = base_env(&url);
    env.insert("TESSERA__JWT__SIGNING_KEY".into(), String::new());
    let settings = tessera::config::Settings::load_from(Some(&config), env).unwrap();
    let app = tessera::startup::Application::build(settings)
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let service = app.app().clone();
    tokio::spawn(app.run_until_stopped());
    // The same user exists in the new deployment's database.
    service
        .register(
            tessera::app::Registration {
                username: Some("alice".into()),
                email: Some(String::new()),
                password: Some(PASSWORD.into()),
                password_retype: None,
                superuser: false,
            },
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(uid, 1);
    let client = reqwest::Client::new();
    let me = |token: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            client
                .get(format!("{base}/api/v1/auth/users/me/"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        me(old_access.clone()).await,
        200,
        "a token of the retired key still verifies"
    );
    let r = client
        .post(format!("{base}/api/token/refresh/"))
        .form(&[("refresh", &old_refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let new_access = body["access"].as_str().unwrap().to_owned();
    assert_eq!(
        header(&new_access)["kid"],
        "2026-06",
        "only the current key signs"
    );
    assert_eq!(me(new_access).await, 200);
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        ["2026-06", "2026-01"],
        "both published, current first"
    );
    assert!(independent_verify(&old_access, &jwks).is_some());
    // An unknown kid is refused, and so is a retired key's token without kid
    // (that is checked against the current key only).
    let parts: Vec<&str> = old_access.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for h in [
        r#"{"alg":"EdDSA","typ":"JWT","kid":"2025-12"}"#,
        r#"{"alg":"EdDSA","typ":"JWT"}"#,
    ] {
        let forged = format!("{}.{}.{}", b64.encode(h), parts[1], parts[2]);
        assert_eq!(me(forged).await, 401, "{h}");
    }
}

/// The RS256, ES256 and EdDSA vectors of the real Simple JWT, with their keys.
#[tokio::test]
async fn simple_jwt_asymmetric_vectors() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path()).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut checked = 0;
    for keyset in doc["keysets"].as_array().unwrap() {
        let alg_name = keyset["algorithm"].as_str().unwrap();
        if alg_name.starts_with("HS") {
            continue;
        }
        let alg: JwtAlgorithm = serde_json::from_value(json!(alg_name)).unwrap();
        let key = tessera::tokens::SigningKey::from_private_pem(
            alg,
            keyset["signing_key"].as_str().unwrap().as_bytes(),
            Some(keyset["verifying_key"].as_str().unwrap().as_bytes()),
            None,
        )
        .unwrap();
        let settings = tessera::config::Settings::load_from(None, Default::default()).unwrap();
        let svc = tessera::tokens::TokenService::new(key, &settings.jwt);
        for group in ["positive", "edge", "negative"] {
            for v in doc[group].as_array().unwrap() {
                if v["keyset"] != keyset["id"] {
                    continue;
                }
                let expect = match v["observed"]["verified_as"].as_str().unwrap() {
                    "AccessToken" => tessera::tokens::Expect::Access,
                    "RefreshToken" => tessera::tokens::Expect::Refresh,
                    _ => tessera::tokens::Expect::Untyped,
                };
                let got = svc
                    .verify(v["token"].as_str().unwrap(), expect, now)
                    .map_err(|e| e.to_string());
                let want = if v["expect"]["valid"].as_bool().unwrap() {
                    None
                } else {
                    Some(
                        v["expect"]["simplejwt_error"]
                            .as_str()
                            .unwrap_or("Token is invalid")
                            .to_owned(),
                    )
                };
                assert_eq!(got.err(), want, "{}", v["name"]);
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} asymmetric vectors");
}

#[tokio::test]
async fn simple_jwt_asymmetric_vectors_over_http() {
    // The same vectors through a running server configured with the keyset:
    // untyped ones through verify/ (Simple JWT's exact answer), access ones
    // through the stateless whoami (a protected route) and forward auth.
    // Refresh ones need their user in the database: the service-level test
    // above covers them.
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors_path()).unwrap()).unwrap();
    let mut checked = 0;
    for keyset in doc["keysets"].as_array().unwrap() {
        let alg = keyset["algorithm"].as_str().unwrap();
        if alg.starts_with("HS") {
            continue;
        }
        let app = spawn_app_with(&[
            ("TESSERA__JWT__ALGORITHM", alg),
            (
                "TESSERA__JWT__SIGNING_KEY",
                keyset["signing_key"].as_str().unwrap(),
            ),
            (
                "TESSERA__JWT__VERIFYING_KEY",
                keyset["verifying_key"].as_str().unwrap(),
            ),
        ])
        .await;
        for group in ["positive", "edge", "negative"] {
            for v in doc[group].as_array().unwrap() {
                if v["keyset"] != keyset["id"] {
                    continue;
                }
                let name = v["name"].as_str().unwrap();
                let token = v["token"].as_str().unwrap();
                let valid = v["expect"]["valid"].as_bool().unwrap();
                let error = v["expect"]["simplejwt_error"].as_str();
                match v["observed"]["verified_as"].as_str().unwrap() {
                    "UntypedToken" => {
                        let a = app
                            .post_json("/api/token/verify/", json!({ "token": token }))
                            .await;
                        if valid {
                            assert_eq!((a.status.as_u16(), &a.json), (200, &json!({})), "{name}");
                        } else {
                            a.assert_401(
                                json!({"detail": error.unwrap(), "code": "token_not_valid"}),
                            );
                        }
                    }
                    "AccessToken" => {
                        let a = app
                            .get("/api/v1/whoami-stateless/", Some(&bearer(token)))
                            .await;
                        let f = app.get("/api/v1/auth/forward/", Some(&bearer(token))).await;
                        if valid {
                            assert_eq!(a.status, 200, "{name}: {}", a.text);
                            assert_eq!(a.json["user_id"], v["claims"]["user_id"], "{name}");
                            assert_eq!(f.status, 200, "{name}");
                            assert_eq!(f.header("x-auth-user-id"), Some("42"), "{name}");
                        } else {
                            assert_eq!(a.status, 401, "{name}: {}", a.text);
                            assert_eq!(a.json["code"], "token_not_valid", "{name}");
                            assert_eq!(a.json["messages"][0]["message"], error.unwrap(), "{name}");
                            assert_eq!((f.status.as_u16(), f.text.as_str()), (401, ""), "{name}");
                        }
                    }
                    _ => continue,
                }
                checked += 1;
            }
        }
    }
    // Every asymmetric vector but the six checked as refresh tokens.
    assert_eq!(checked, 40, "asymmetric vectors checked over HTTP");
}

#[test]
fn unusable_keys_stop_the_process_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let ed = generate(JwtAlgorithm::EdDSA, dir.path(), false).unwrap();
    let ed_private = ed.private.display().to_string();
    // Key files must be private to their owner; a checkout makes them 0644.
    let private_copy = |from: &str, name: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let to = dir.path().join(name);
        std::fs::copy(from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
        to.display().to_string()
    };
    let weak = &private_copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/rsa1024-private.pem"),
        "weak.pem",
        0o600,
    );
    let weak_public = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/rsa1024-public.pem"
    ))
    .unwrap();
    let rs = generate(JwtAlgorithm::RS256, dir.path(), false).unwrap();
    let rs_private = rs.private.display().to_string();
    let exposed = &private_copy(&ed_private, "exposed.pem", 0o644);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![
                ("TESSERA__JWT__ALGORITHM", "RS256"),
                ("TESSERA__JWT__SIGNING_KEY_FILE", weak),
            ],
            "at least 2048 bits",
        ),
        (
            vec![
                ("TESSERA__JWT__ALGORITHM", "RS256"),
                ("TESSERA__JWT__SIGNING_KEY_FILE", &ed_private),
            ],
            "not a usable RS256 key",
        ),
        (
            vec![
                ("TESSERA__JWT__ALGORITHM", "ES256"),
                ("TESSERA__JWT__SIGNING_KEY_FILE", &ed_private),
            ],
            "not a usable ES256 key",
        ),
        (
            vec![("TESSERA__JWT__ALGORITHM", "EdDSA")],
            "is required for EdDSA",
        ),
        (
            vec![
                ("TESSERA__JWT__ALGORITHM", "RS256"),
                ("TESSERA__JWT__SIGNING_KEY_FILE", &rs_private),
                ("TESSERA__JWT__VERIFYING_KEY", &weak_public),
            ],
            "at least 2048 bits",
        ),
        (
            vec![
                ("TESSERA__JWT__ALGORITHM", "EdDSA"),
                ("TESSERA__JWT__SIGNING_KEY_FILE", "/nonexistent.pem"),
            ],
            "cannot read the key file",
        ),
        (
            vec![
                ("TESSERA__JWT__ALGORITHM", "EdDSA"),
                ("TESSERA__JWT__SIGNING_KEY_FILE", exposed),
            ],
            "can be read or written by other users (mode 0644)",
        ),
        (
            vec![(
                "TESSERA__JWT__SIGNING_KEY",
                "super-secret-jwt-token-with-at-least-32-characters-long",
            )],
            "published example key",
        ),
        (
            vec![("TESSERA__JWT__SIGNING_KEY", "short-key")],
            "at least 32 bytes",
        ),
    ];
    for (env, message) in cases {
        let out = tessera(dir.path(), &env).arg("serve").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(message), "{env:?}: {stderr}");
        assert!(
            !stderr.contains("PRIVATE KEY"),
            "no key material in the message"
        );
    }
}

#[test]
fn keys_generate_writes_usable_files_and_prints_their_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(dir.path(), &[])
        .args(["keys", "generate", "--algorithm", "ES256", "--out", "keys"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    // Lines a shell can run as they are.
    assert!(
        printed
            .lines()
            .all(|l| l.starts_with("export TESSERA__JWT__")),
        "{printed}"
    );
    let settings: Vec<(&str, &str)> = printed
        .lines()
        .filter_map(|l| l.trim_start_matches("export ").split_once('='))
        .collect();
    assert_eq!(settings[0], ("TESSERA__JWT__ALGORITHM", "ES256"));
    let private = std::path::Path::new(settings[1].1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(private).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        std::fs::read_to_string(private)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    // The printed settings start a server that publishes the key.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = Server::start(dir.path(), &settings).await;
        let jwks: Value = reqwest::get(server.url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks["keys"][0]["alg"], "ES256");
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        server.stop();
    });
    // Generating again into the same folder refuses to overwrite, and says
    // how; --force replaces the pair.
    let key = std::fs::read_to_string(private).unwrap();
    let again = tessera(dir.path(), &[])
        .args(["keys", "generate", "--algorithm", "ES256", "--out", "keys"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("already exists") && said.contains("--force"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(private).unwrap(), key, "untouched");
    let forced = tessera(dir.path(), &[])
        .args([
            "keys",
            "generate",
            "--algorithm",
            "ES256",
            "--out",
            "keys",
            "--force",
        ])
        .output()
        .unwrap();
    assert!(forced.status.success());
    assert_ne!(std::fs::read_to_string(private).unwrap(), key, "replaced");
    // The public half given as the signing key is named for what it is,
    // not sent to chmod.
    let public = settings[2].1;
    let o = tessera(
        dir.path(),
        &[
            ("TESSERA__JWT__ALGORITHM", "ES256"),
            ("TESSERA__JWT__SIGNING_KEY_FILE", public),
        ],
    )
    .arg("serve")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("this is a public key; signing needs the private one"),
        "{said}"
    );
    assert!(!said.contains("chmod"), "{said}");
}

#[tokio::test]
async fn rotating_an_hmac_secret_keeps_old_tokens_valid() {
    let old_secret = "old-shared-secret-0123456789abcdef-0123456789";
    let before = spawn_app_with(&[("TESSERA__JWT__SIGNING_KEY", old_secret)]).await;
    before.register("alice").await;
    let (_, old_access) = before.login("alice").await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!("[[jwt.previous_keys]]\nkid = \"2026-01\"\nverifying_key = \"{old_secret}\"\n"),
    )
    .unwrap();
    let url = fresh_database_url(&dir).await;
    let mut env = base_env(&url);
    env.insert(
        "TESSERA__JWT__SIGNING_KEY".into(),
        "new-shared-secret-0123456789abcdef-0123456789".into(),
    );
    let settings = tessera::config::Settings::load_from(Some(&config), env).unwrap();
    let now = chrono::Utc::now().timestamp();
    let (keys, _) = tessera::tokens::KeyRing::from_settings(&settings).unwrap();
    let svc = tessera::tokens::TokenService::with_keys(keys, &settings.jwt);
    assert!(
        svc.verify(&old_access, tessera::tokens::Expect::Access, now)
            .is_ok(),
        "the retired secret still verifies"
    );
    let fresh = svc.access(&tessera::tokens::Subject::new(1), now).token;
    assert!(
        svc.verify(&fresh, tessera::tokens::Expect::Access, now)
            .is_ok()
    );
    assert!(
        before
            .service
            .verify_token(&fresh, tessera::tokens::Expect::Access, now)
            .is_err(),
        "only the new secret signs"
    );
    let stranger = sign_hs256(
        "a-third-secret-nobody-configured-0123456789",
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims(&old_access),
    );
    assert!(
        svc.verify(&stranger, tessera::tokens::Expect::Access, now)
            .is_err()
    );
}

#[test]
fn a_pem_key_is_never_taken_for_an_hmac_secret() {
    // A retired asymmetric key listed without its algorithm would otherwise
    // turn its published public key into an HMAC signing secret, wherever
    // the key block starts in the file.
    let dir = tempfile::tempdir().unwrap();
    let ed = generate(JwtAlgorithm::EdDSA, dir.path(), false).unwrap();
    let rsa = generate(JwtAlgorithm::RS256, dir.path(), false).unwrap();
    let ed_pem = std::fs::read_to_string(ed.public.unwrap()).unwrap();
    let rsa_pem = std::fs::read_to_string(rsa.public.unwrap()).unwrap();
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com";
    let variants = [
        ed_pem.clone(),
        rsa_pem.clone(),
        format!("# retired 2026-01\n{rsa_pem}"),
        format!("\u{feff}{rsa_pem}"),
        format!("\n\n{ed_pem}"),
        ssh.to_owned(),
        format!(
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 {}",
            "x".repeat(40)
        ),
        format!(
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI {}",
            "y".repeat(40)
        ),
    ];
    for (i, material) in variants.iter().enumerate() {
        let file = dir.path().join(format!("old-{i}.pub"));
        std::fs::write(&file, material).unwrap();
        let config = dir.path().join("tessera.toml");
        std::fs::write(
            &config,
            format!(
                "[[jwt.previous_keys]]\nkid = \"old\"\nverifying_key_file = \"{}\"\n",
                file.display()
            ),
        )
        .unwrap();
        let env = base_env("sqlite::memory:");
        let settings = tessera::config::Settings::load_from(Some(&config), env).unwrap();
        let err = tessera::tokens::KeyRing::from_settings(&settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PEM or SSH key, not a shared secret"),
            "{i}: {err}"
        );
    }
}

#[tokio::test]
async fn a_retry_within_the_grace_gets_the_same_pair_with_every_algorithm() {
    // The pair is re-signed from the family row: the same bytes where the
    // signature is deterministic (HMAC, RSA PKCS#1, EdDSA), the same claims
    // under a fresh signature elsewhere (RSA-PSS and ECDSA are randomized).
    for alg in JwtAlgorithm::ALL {
        let dir = tempfile::tempdir().unwrap();
        let rotate = [("TESSERA__JWT__ROTATE_REFRESH_TOKENS", "true")];
        let app = if alg.is_hmac() {
            let secret = "grace-replay-secret-0123456789abcdef-0123456789abcdef-0123456789";
            let mut env = vec![
                ("TESSERA__JWT__ALGORITHM", alg.as_str()),
                ("TESSERA__JWT__SIGNING_KEY", secret),
            ];
            env.extend_from_slice(&rotate);
            spawn_app_with(&env).await
        } else {
            app_with_algorithm(alg, dir.path(), &rotate).await
        };
        app.register("rita").await;
        let (r1, _) = app.login("rita").await;
        let first = app.refresh(&r1).await;
        let again = app.refresh(&r1).await;
        assert_eq!(
            (first.status.as_u16(), again.status.as_u16()),
            (200, 200),
            "{alg:?}"
        );
        for field in ["refresh", "access"] {
            let (a, b) = (
                first.json[field].as_str().unwrap(),
                again.json[field].as_str().unwrap(),
            );
            let deterministic = !matches!(
                alg,
                JwtAlgorithm::PS256
                    | JwtAlgorithm::PS384
                    | JwtAlgorithm::PS512
                    | JwtAlgorithm::ES256
                    | JwtAlgorithm::ES384
            );
            if deterministic {
                assert_eq!(a, b, "{alg:?} {field}: byte for byte");
            } else {
                assert_eq!(claims(a), claims(b), "{alg:?} {field}: the same claims");
                assert_eq!(header(a), header(b), "{alg:?} {field}");
            }
        }
        // And the replayed refresh token is the family's current one.
        assert_eq!(
            app.refresh(again.json["refresh"].as_str().unwrap())
                .await
                .status,
            200
        );
    }
}
