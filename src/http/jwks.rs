//! The public keys, as a JWK set, so other services verify tokens on their
//! own. HMAC secrets are never published: with an HMAC algorithm the set is
//! empty.

use poem_openapi::payload::Json;
use poem_openapi::types::Any;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};

use crate::app::App;

#[derive(Tags)]
enum Tag {
    /// Keys for verifying tokens elsewhere.
    Keys,
}

/// RFC 7517 JWK set: each key with `kid`, `alg`, `use: sig`.
#[derive(Object)]
pub struct JwkSet {
    pub keys: Vec<Any<serde_json::Value>>,
}

#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The current key first, then retired keys that still verify.
    #[oai(status = 200)]
    Ok(Json<JwkSet>, #[oai(header = "Cache-Control")] String),
}

#[derive(Default)]
pub struct JwksApi;

#[OpenApi]
impl JwksApi {
    /// The JSON Web Key Set
    ///
    /// The public keys that verify tokens, for services that check them on
    /// their own. Empty with an HMAC algorithm: a shared secret is never
    /// published.
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        tag = "Tag::Keys",
        operation_id = "jwks"
    )]
    async fn jwks(&self, app: poem::web::Data<&App>) -> JwksResponse {
        let keys = app
            .public_jwks()
            .into_iter()
            .map(|jwk| Any(serde_json::to_value(jwk).unwrap_or_default()))
            .collect();
        let max_age = app.settings().jwt.jwks_max_age.as_secs();
        JwksResponse::Ok(Json(JwkSet { keys }), format!("public, max-age={max_age}"))
    }
}
