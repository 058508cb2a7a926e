//! `POST /v1/api-keys` `{role, name?}`, `GET /v1/api-keys`, `DELETE /v1/api-keys/{id}`,
//! and `GET /v1/me`.

use axum::Json;
use axum::http::StatusCode;
use mtgs_api::{ApiError, ApiKey, ApiKeyList, CreatedApiKey, Me};
use mtgs_core::{Role, json_type};
use serde_json::Value;

use super::id_from_path;
use crate::error::ErrorResponse;
use crate::extract::{Acting, JsonObject, PathParam};

/// Creates a key; the response holds the key itself, shown this once.
pub async fn create(
    Acting(service): Acting,
    mut body: JsonObject,
) -> Result<(StatusCode, Json<CreatedApiKey>), ErrorResponse> {
    let role = match body.take("role")? {
        Value::String(raw) => raw.parse::<Role>().map_err(|reason| ApiError::invalid_field("role", reason))?,
        other => {
            return Err(
                ApiError::invalid_field("role", format!("expected a string, found {}", json_type(&other))).into()
            );
        }
    };
    let name = match body.take_optional("name") {
        None => None,
        Some(Value::String(name)) => Some(name),
        Some(other) => {
            return Err(
                ApiError::invalid_field("name", format!("expected a string, found {}", json_type(&other))).into()
            );
        }
    };
    body.finish()?;
    let (key, secret) = service.create_api_key(name.as_deref(), role).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiKey { key: secret.expose().to_owned(), record: ApiKey::from(&key) })))
}

pub async fn list(Acting(service): Acting) -> Result<Json<ApiKeyList>, ErrorResponse> {
    let keys = service.api_keys().await?;
    Ok(Json(ApiKeyList { keys: keys.iter().map(ApiKey::from).collect() }))
}

/// Revokes a key; the key's record comes back with `revoked_at`.
pub async fn revoke(Acting(service): Acting, PathParam(id): PathParam) -> Result<Json<ApiKey>, ErrorResponse> {
    let id = id_from_path(&id, "an API key")?;
    Ok(Json(ApiKey::from(&service.revoke_api_key(id).await?)))
}

/// Who the server takes the caller for, and what its role allows.
pub async fn me(Acting(service): Acting) -> Result<Json<Me>, ErrorResponse> {
    let principal = service
        .principal()
        .ok_or_else(|| ApiError::new(mtgs_api::ErrorCode::Unauthenticated, "authentication required"))?;
    Ok(Json(Me::from(principal)))
}
