//! `GET /health` (liveness: no database), `GET /readiness` (the database answers) and
//! `GET /v1/environments/{env}/health` (the environment's health score).

use axum::Json;
use axum::extract::State;
use mtgs_api::{ApiError, ErrorCode, Health, Liveness, Readiness};
use mtgs_service::Service;

use super::environment_from_path;
use crate::error::ErrorResponse;
use crate::extract::{Acting, PathParam};

pub async fn liveness() -> Json<Liveness> {
    Json(Liveness { status: "ok".to_owned() })
}

/// 200 when the database answers, 503 `database_unavailable` otherwise, whatever the cause.
pub async fn readiness(State(service): State<Service>) -> Result<Json<Readiness>, ErrorResponse> {
    match service.readiness().await {
        Ok(()) => Ok(Json(Readiness { status: "ready".to_owned() })),
        Err(error) => Err(ApiError::new(ErrorCode::DatabaseUnavailable, error.to_string()).into()),
    }
}

pub async fn environment_health(
    Acting(service): Acting,
    PathParam(environment): PathParam,
) -> Result<Json<Health>, ErrorResponse> {
    let environment = environment_from_path(&environment)?;
    let report = service.health(&environment).await?;
    Ok(Json(Health::from(&report)))
}
