//! Tokens issued by the real Simple JWT (tests/fixtures) must get the
//! outcome Simple JWT gave them, both through the token service and over HTTP.

use serde_json::{Value, json};

use crate::helpers::*;

fn load() -> Value {
    let path = vectors_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the vectors at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The HMAC vectors of one keyset: (vector, verified_as).
fn hs256_vectors(doc: &Value, keyset: &str) -> Vec<(Value, String)> {
    let mut out = Vec::new();
    for group in ["positive", "edge", "negative"] {
        for v in doc[group].as_array().unwrap() {
            if v["keyset"] != keyset {
                continue;
            }
            let verified_as = v["observed"]["verified_as"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    // The exp-numeric-string vector records its observation as text.
                    let o: Value = serde_json::from_str(v["observed"].as_str().unwrap()).unwrap();
                    o["verified_as"].as_str().unwrap().to_owned()
                });
            out.push((v.clone(), verified_as));
        }
    }
    out
}

/// What we answer: Simple JWT's error message, or "Token is invalid" where
/// Simple JWT crashed (exp as a numeric string).
fn expected_error(v: &Value) -> Option<String> {
    if v["expect"]["valid"].as_bool().unwrap() {
        return None;
    }
    Some(
        v["expect"]["simplejwt_error"]
            .as_str()
            .unwrap_or("Token is invalid")
            .to_owned(),
    )
}

#[tokio::test]
async fn simple_jwt_vectors_get_simple_jwt_outcomes_over_http() {
    let doc = load();
    let user_id = doc["user"]["id"].as_i64().unwrap();
    let mut checked = 0;
    for keyset in ["hs256", "hs256-django-ref"] {
        let key = doc["keysets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == keyset)
            .unwrap()["signing_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let app = spawn_app_with(&[("TESSERA__JWT__SIGNING_KEY", &key)]).await;
        let hash = app
            .service
            .password_hasher()
            .hash(PASSWORD.into())
            .await
            .unwrap();
        app.insert_user(
            Some(user_id),
            doc["user"]["username"].as_str().unwrap(),
            "",
            &hash,
        )
        .await;
        for (v, verified_as) in hs256_vectors(&doc, keyset) {
            let name = v["name"].as_str().unwrap();
            let token = v["token"].as_str().unwrap();
            let error = expected_error(&v);
            let answer = match verified_as.as_str() {
                "AccessToken" => app.me(token).await,
                "RefreshToken" => app.refresh(token).await,
                _ => {
                    app.post_json("/api/token/verify/", json!({ "token": token }))
                        .await
                }
            };
            match (&error, verified_as.as_str()) {
                (None, _) if name.ends_with("missing-user_id") => {
                    // The token is valid; the user lookup then fails.
                    answer.assert_401(json!({"detail": "Token contained no recognizable user identification", "code": "token_not_valid"}));
                }
                (None, _) => assert_eq!(answer.status, 200, "{name}: {}", answer.text),
                (Some(msg), "AccessToken") => answer.assert_401(json!({
                    "detail": "Given token not valid for any token type",
                    "code": "token_not_valid",
                    "messages": [{"token_class": "AccessToken", "token_type": "access", "message": msg}],
                })),
                (Some(msg), _) => answer.assert_401(json!({"detail": msg, "code": "token_not_valid"})),
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} HS256 vectors found");
}

#[test]
fn simple_jwt_vectors_through_the_token_service() {
    use tessera::tokens::{Expect, SigningKey, TokenService};
    let doc = load();
    let now = chrono::Utc::now().timestamp();
    for keyset in ["hs256", "hs256-django-ref"] {
        let key = doc["keysets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == keyset)
            .unwrap()["signing_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let settings = tessera::config::Settings::load_from(None, Default::default()).unwrap();
        let svc = TokenService::new(
            SigningKey::hmac(tessera::config::JwtAlgorithm::HS256, key.as_bytes()),
            &settings.jwt,
        );
        for (v, verified_as) in hs256_vectors(&doc, keyset) {
            let expect = match verified_as.as_str() {
                "AccessToken" => Expect::Access,
                "RefreshToken" => Expect::Refresh,
                _ => Expect::Untyped,
            };
            let got = svc
                .verify(v["token"].as_str().unwrap(), expect, now)
                .map_err(|e| e.to_string());
            assert_eq!(
                got.as_ref().err().cloned(),
                expected_error(&v),
                "{}",
                v["name"]
            );
            if let (Ok(claims), Some(payload)) = (&got, v["claims"].as_object()) {
                assert_eq!(claims.jti, payload["jti"].as_str().unwrap());
            }
        }
    }
}

#[tokio::test]
async fn our_tokens_have_the_shape_of_simple_jwt_vectors() {
    // Issued by Tessera's own token service with the vector's key, issue
    // time, id and lifetime: the very bytes the real Simple JWT signed.
    let doc = load();
    let v = doc["positive"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "hs256/access")
        .unwrap();
    let key = doc["keysets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "hs256")
        .unwrap()["signing_key"]
        .as_str()
        .unwrap();
    let c = &v["claims"];
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    let lifetime = format!("{}s", exp - iat);
    let mut env = base_env("sqlite::memory:");
    env.insert("TESSERA__JWT__ACCESS_TOKEN_LIFETIME".into(), lifetime);
    env.insert("TESSERA__JWT__SIGNING_KEY".into(), key.into());
    let settings = tessera::config::Settings::load_from(None, env).unwrap();
    let service = tessera::tokens::TokenService::new(
        tessera::tokens::SigningKey::hmac(tessera::config::JwtAlgorithm::HS256, key.as_bytes()),
        &settings.jwt,
    );
    let user_id: i64 = c["user_id"].as_str().unwrap().parse().unwrap();
    let pair = service.reissued_pair(
        &tessera::tokens::Subject::new(user_id),
        iat,
        "unused".into(),
        c["jti"].as_str().unwrap().into(),
        "unused",
    );
    assert_eq!(pair.access.token, v["token"].as_str().unwrap());
}
