//! `GET /v1/approvals`, `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/approve` and
//! `/reject` with `{comment}`.

use axum::Json;
use mtgs_api::{ApiError, Approval, ApprovalList};
use mtgs_core::{ApprovalStatus, json_type};
use mtgs_service::ApprovalFilter;
use serde_json::Value;

use super::{environment_from_path, id_from_path};
use crate::error::ErrorResponse;
use crate::extract::{Acting, JsonObject, PathParam, QueryParams};

/// `?status=&environment=`, both optional.
pub async fn list(Acting(service): Acting, mut query: QueryParams) -> Result<Json<ApprovalList>, ErrorResponse> {
    let filter = ApprovalFilter {
        status: query.take_parsed("status", str::parse::<ApprovalStatus>)?,
        environment: query.take("environment").map(|raw| environment_from_path(&raw)).transpose()?,
    };
    query.finish(&["status", "environment"])?;
    let approvals = service.approvals(&filter).await?;
    Ok(Json(ApprovalList { approvals: approvals.iter().map(Approval::from).collect() }))
}

pub async fn show(Acting(service): Acting, PathParam(id): PathParam) -> Result<Json<Approval>, ErrorResponse> {
    let id = id_from_path(&id, "an approval")?;
    Ok(Json(Approval::from(&service.approval(id).await?)))
}

/// `{comment?}`: a note for the record.
pub async fn approve(
    Acting(service): Acting,
    PathParam(id): PathParam,
    body: JsonObject,
) -> Result<Json<Approval>, ErrorResponse> {
    let id = id_from_path(&id, "an approval")?;
    let comment = comment(body, false)?;
    Ok(Json(Approval::from(&service.approve(id, comment.as_deref()).await?)))
}

/// `{comment}`: why, required.
pub async fn reject(
    Acting(service): Acting,
    PathParam(id): PathParam,
    body: JsonObject,
) -> Result<Json<Approval>, ErrorResponse> {
    let id = id_from_path(&id, "an approval")?;
    let comment = comment(body, true)?.unwrap_or_default();
    Ok(Json(Approval::from(&service.reject(id, &comment).await?)))
}

fn comment(mut body: JsonObject, required: bool) -> Result<Option<String>, ApiError> {
    let comment = match body.take_optional("comment") {
        None if required => return Err(ApiError::invalid_field("comment", "is required to reject: say why")),
        None => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => {
            return Err(ApiError::invalid_field("comment", format!("expected a string, found {}", json_type(&other))));
        }
    };
    body.finish()?;
    Ok(comment)
}
