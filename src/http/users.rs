//! Djoser's user endpoints: registration and the current user.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use secrecy::SecretString;

use super::auth::JwtUser;
use super::body::FormBody;
use super::error::{ApiError, Errors, FieldErrors, error_set};
use crate::service::{AuthService, Registration};
use crate::{users, validation};

#[derive(Tags)]
enum Tag {
    /// Djoser's user management at `/api/v1/auth/users/`.
    Users,
}

/// A new account. Other fields (`is_staff`...) are ignored.
// Documents the body for OpenAPI; FormBody reads it field by field.
#[allow(dead_code)]
#[derive(Object)]
pub struct UserCreate {
    /// Optional.
    pub email: Option<String>,
    pub username: String,
    #[oai(write_only)]
    pub password: String,
}

/// The created account, in Djoser's field order.
// Documents the body for OpenAPI; FormBody reads it field by field.
#[allow(dead_code)]
#[derive(Object)]
pub struct UserCreated {
    pub email: String,
    pub username: String,
    pub id: i64,
}

/// The current user, as Djoser's `UserSerializer`.
#[derive(Object)]
pub struct UserOut {
    pub email: String,
    pub id: i64,
    pub username: String,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// Created.
    #[oai(status = 201)]
    Created(Json<UserCreated>),
}

error_set!(
    /// Errors of registration.
    RegisterErrors: 400, 413, 415, 503
);
error_set!(
    /// Errors of reading the current user.
    MeErrors: 401, 503
);

pub struct UsersApi;

#[OpenApi]
impl UsersApi {
    /// Register a user
    ///
    /// Username: letters, digits and `@.+-_`, at most 150 characters, unique
    /// (case-sensitive). Email: optional. Password: at least 8 characters,
    /// not entirely numeric.
    #[oai(
        path = "/api/v1/auth/users/",
        method = "post",
        tag = "Tag::Users",
        operation_id = "users_create"
    )]
    async fn create(
        &self,
        service: poem::web::Data<&AuthService>,
        body: FormBody<UserCreate>,
    ) -> Result<RegisterResponse, Errors<RegisterErrors>> {
        let mut errors = FieldErrors::default();
        let email = body.optional("email", &mut errors).unwrap_or_default();
        for m in validation::email(&email) {
            errors.add("email", m);
        }
        let username = body.required("username", &mut errors);
        if let Some(name) = &username {
            for m in validation::username(name) {
                errors.add("username", m);
            }
            // A field-level check, as DRF's UniqueValidator, so a taken name is
            // reported before password rules; the insert's unique index still
            // settles a race between two registrations.
            if !errors.has("username")
                && users::find_by_username(&service.db, name)
                    .await
                    .map_err(ApiError::from)?
                    .is_some()
            {
                errors.add("username", validation::USERNAME_TAKEN);
            }
        }
        let password = body.required("password", &mut errors);
        let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
            return Err(ApiError::Validation(errors).into());
        };
        // Djoser's validate(): only once every field is valid on its own.
        for m in validation::password(&password) {
            errors.add("password", m);
        }
        errors.into_result()?;
        let user = service
            .register(Registration {
                username,
                email,
                password: SecretString::from(password),
                is_staff: false,
                is_superuser: false,
            })
            .await?;
        Ok(RegisterResponse::Created(Json(UserCreated {
            email: user.email,
            username: user.username,
            id: user.id,
        })))
    }

    /// The current user
    #[oai(
        path = "/api/v1/auth/users/me/",
        method = "get",
        tag = "Tag::Users",
        operation_id = "users_me"
    )]
    async fn me(&self, auth: JwtUser) -> Result<Json<UserOut>, Errors<MeErrors>> {
        let user = auth.user;
        Ok(Json(UserOut {
            email: user.email,
            id: user.id,
            username: user.username,
        }))
    }
}
