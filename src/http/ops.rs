//! Operational endpoints: liveness and readiness.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi, Tags};

use super::error::{ApiError, Errors, error_set};
use crate::app::App;

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

#[derive(Default)]
pub struct OpsApi;

#[derive(poem_openapi::ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(poem_openapi::payload::PlainText<String>),
}

#[OpenApi]
impl OpsApi {
    /// Liveness: the process answers
    ///
    /// 200 while the process serves requests, whatever the database does.
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

    /// Prometheus metrics
    ///
    /// Requests by route and status, latency histograms, logins, tokens
    /// issued, refreshed and blacklisted, verification failures by reason,
    /// password-hash queue depth. Expose it to your monitoring only.
    #[oai(
        path = "/metrics",
        method = "get",
        tag = "Tag::Operations",
        operation_id = "metrics"
    )]
    async fn metrics(&self, app: poem::web::Data<&App>) -> MetricsResponse {
        MetricsResponse::Ok(poem_openapi::payload::PlainText(app.render_metrics()))
    }

    /// Readiness: the database answers
    ///
    /// 200 when the database answers, 503 while it does not: take the
    /// instance out of a load balancer's rotation meanwhile.
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "Tag::Operations",
        operation_id = "readyz"
    )]
    async fn readyz(
        &self,
        app: poem::web::Data<&App>,
    ) -> Result<Json<Status>, Errors<ReadyErrors>> {
        app.database_ready().await.map_err(|e| {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::Unavailable
        })?;
        Ok(Json(Status {
            status: "ok".into(),
        }))
    }
}

/// `GET /`: a browser is sent to Swagger UI; any other client gets a small
/// JSON index of where things are.
pub fn index(req: &poem::Request) -> poem::Response {
    use poem::IntoResponse;
    let browser = req
        .header(poem::http::header::ACCEPT)
        .is_some_and(|a| a.contains("text/html"));
    if browser {
        return poem::web::Redirect::see_other("/docs").into_response();
    }
    poem::web::Json(serde_json::json!({
        "name": "Tessera",
        "version": env!("CARGO_PKG_VERSION"),
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/healthz",
    }))
    .into_response()
}
