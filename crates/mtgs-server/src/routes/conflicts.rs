//! `GET /v1/environments/{env}/conflicts`, `GET` and `PATCH /v1/conflicts/{id}`.

use axum::Json;
use mtgs_api::{ApiError, ConflictList, RecommendationList};
use mtgs_core::{ConflictStatus, Severity, StageId};
use mtgs_service::ConflictFilter;

use super::{Page, environment_from_path, id_from_path};
use crate::convert;
use crate::error::ErrorResponse;
use mtgs_core::json_type;

use crate::extract::{Acting, JsonObject, PathParam, QueryParams};

/// `?severity=&stage=&status=&tool=SERVER/NAME&limit=&offset=`, all optional; one page
/// at a time (a registry's conflicts can run to hundreds of thousands).
pub async fn list(
    Acting(service): Acting,
    PathParam(environment): PathParam,
    mut query: QueryParams,
) -> Result<Json<ConflictList>, ErrorResponse> {
    let environment = environment_from_path(&environment)?;
    let severity = query.take_parsed("severity", str::parse::<Severity>)?;
    let stage = query.take_parsed("stage", str::parse::<StageId>)?;
    let status = query.take_parsed("status", str::parse::<ConflictStatus>)?;
    let tool = query
        .take("tool")
        .map(|raw| convert::parse_tool_key(&raw).map_err(|error| error.within("tool")))
        .transpose()?;
    let page = Page::from_query(&mut query, "conflicts")?;
    let filter = ConflictFilter { severity, stage, status, tool, limit: Some(page.fetch()), offset: page.offset };
    query.finish(&["severity", "stage", "status", "tool", "limit", "offset"])?;
    let conflicts = service.conflicts(&environment, &filter).await?;
    let (shown, next_offset) = page.cut(&conflicts);
    Ok(Json(ConflictList { conflicts: shown.iter().map(mtgs_api::Conflict::from).collect(), next_offset }))
}

pub async fn show(
    Acting(service): Acting,
    PathParam(id): PathParam,
) -> Result<Json<mtgs_api::Conflict>, ErrorResponse> {
    let id = id_from_path(&id, "a conflict")?;
    let conflict = service.conflict(id).await?;
    Ok(Json(mtgs_api::Conflict::from(&conflict)))
}

/// `{"status": "acknowledged"}`: triage.
pub async fn set_status(
    Acting(service): Acting,
    PathParam(id): PathParam,
    mut body: JsonObject,
) -> Result<Json<mtgs_api::Conflict>, ErrorResponse> {
    let id = id_from_path(&id, "a conflict")?;
    let status = match body.take("status")? {
        serde_json::Value::String(raw) => {
            raw.parse::<ConflictStatus>().map_err(|reason| ApiError::invalid_field("status", reason))?
        }
        other => {
            return Err(
                ApiError::invalid_field("status", format!("expected a string, found {}", json_type(&other))).into()
            );
        }
    };
    body.finish()?;
    let conflict = service.set_conflict_status(id, status).await?;
    Ok(Json(mtgs_api::Conflict::from(&conflict)))
}

/// Verified fixes for one conflict, resolving ones first (see `mtgs_detect::recommend`).
pub async fn recommendations(
    Acting(service): Acting,
    PathParam(id): PathParam,
) -> Result<Json<RecommendationList>, ErrorResponse> {
    let id = id_from_path(&id, "a conflict")?;
    let recommendations = service.recommendations(id).await?;
    Ok(Json(RecommendationList { conflict: id, recommendations }))
}
