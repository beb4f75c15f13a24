//! The reference project's protected views, for side-by-side comparison:
//! one resolves the user in the database, one trusts the token alone.

use poem_openapi::payload::Json;
use poem_openapi::types::Any;
use poem_openapi::{Object, OpenApi, Tags};

use super::auth::{Auth, JwtClaims, JwtOrToken};
use super::error::{Errors, error_set};

#[derive(Tags)]
enum Tag {
    /// Who is calling: with a database lookup, or from the token alone.
    Whoami,
}

#[derive(Object)]
pub struct WhoAmI {
    pub id: i64,
    pub username: String,
}

#[derive(Object)]
pub struct WhoAmIStateless {
    /// The user id claim exactly as the token carries it.
    pub user_id: Any<serde_json::Value>,
}

error_set!(
    /// Errors of an authenticated read.
    AuthErrors: 401, 503
);

#[derive(Default)]
pub struct WhoamiApi;

#[OpenApi]
impl WhoamiApi {
    /// The caller, looked up in the database
    ///
    /// One query: the user of the Bearer JWT or `Token` key.
    #[oai(
        path = "/api/v1/whoami/",
        method = "get",
        tag = "Tag::Whoami",
        operation_id = "whoami"
    )]
    async fn whoami(&self, auth: Auth<JwtOrToken>) -> Result<Json<WhoAmI>, Errors<AuthErrors>> {
        Ok(Json(WhoAmI {
            id: auth.user.id,
            username: auth.user.username,
        }))
    }

    /// The caller's id from the access token alone (no database query)
    ///
    /// The token's `user_id` claim as it is: valid until the token expires,
    /// even for a user deleted meanwhile. (A sliding token, with
    /// `jwt.auth_token_classes` naming it, costs a blacklist lookup.)
    #[oai(
        path = "/api/v1/whoami-stateless/",
        method = "get",
        tag = "Tag::Whoami",
        operation_id = "whoami_stateless"
    )]
    async fn whoami_stateless(
        &self,
        auth: JwtClaims,
    ) -> Result<Json<WhoAmIStateless>, Errors<AuthErrors>> {
        Ok(Json(WhoAmIStateless {
            user_id: Any(auth.user_id),
        }))
    }
}
