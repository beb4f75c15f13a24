//! Operational endpoints: liveness and readiness.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::error::{ApiError, Errors, error_set};
use crate::db;
use crate::service::AuthService;

#[derive(Tags)]
enum Tag {
    /// Health checks for load balancers and orchestrators.
    Operations,
}

#[derive(Object)]
pub struct Status {
    /// `ok`.
    pub status: String,
}

error_set!(
    /// Errors of the readiness check.
    ReadyErrors: 503
);

pub struct OpsApi;

#[OpenApi]
impl OpsApi {
    /// Liveness: the process answers
    #[oai(
        path = "/healthz",
        method = "get",
        tag = "Tag::Operations",
        operation_id = "healthz"
    )]
    async fn healthz(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
        })
    }

    /// Readiness: the database answers
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "Tag::Operations",
        operation_id = "readyz"
    )]
    async fn readyz(
        &self,
        service: poem::web::Data<&AuthService>,
    ) -> Result<Json<Status>, Errors<ReadyErrors>> {
        db::ping(&service.db).await.map_err(|e| {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::Unavailable
        })?;
        if service.health.mark_up() {
            tracing::info!("database reachable again");
        }
        Ok(Json(Status {
            status: "ok".into(),
        }))
    }
}
