//! `POST /v1/environments/{env}/analysis-runs` (queues a job) and `GET /v1/analysis-runs/{id}`.

use axum::Json;
use axum::http::{StatusCode, header};
use mtgs_api::AnalysisRun;

use super::{environment_from_path, id_from_path};
use crate::error::ErrorResponse;
use crate::extract::{Acting, PathParam};

/// 202 with the queued run and its `Location`; the job runner does the work.
pub async fn start(
    Acting(service): Acting,
    PathParam(environment): PathParam,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], Json<AnalysisRun>), ErrorResponse> {
    let environment = environment_from_path(&environment)?;
    let job = service.start_analysis(&environment).await?;
    let location = format!("/v1/analysis-runs/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(AnalysisRun::from(&job))))
}

pub async fn show(Acting(service): Acting, PathParam(id): PathParam) -> Result<Json<AnalysisRun>, ErrorResponse> {
    let id = id_from_path(&id, "an analysis run")?;
    let job = service.job_of_kind(id, mtgs_core::JobKind::Analysis).await?;
    Ok(Json(AnalysisRun::from(&job)))
}
