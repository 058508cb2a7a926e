//! Extractors that turn every malformed request into an API error with a code and a
//! field, instead of axum's plain-text rejections.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use mtgs_api::{ApiError, ErrorCode, MAX_BODY_BYTES};
use mtgs_core::json_type;
use serde_json::{Map, Value};

use crate::error::ErrorResponse;

/// A JSON object body. Not JSON → 400 `invalid_json`; larger than the limit → 413
/// `payload_too_large`; JSON but not an object → 422 `invalid_field`. The content type is
/// not checked, so `curl -d` works.
#[derive(Debug)]
pub struct JsonObject(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ErrorResponse;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("cannot read the request body: {}", rejection.body_text()),
                )
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => Ok(JsonObject(object)),
            Ok(other) => Err(ApiError::invalid_field(
                "",
                format!("the request body must be a JSON object, found {}", json_type(&other)),
            )
            .into()),
            Err(error) => {
                Err(ApiError::new(ErrorCode::InvalidJson, format!("the request body is not valid JSON: {error}"))
                    .into())
            }
        }
    }
}

impl From<Map<String, Value>> for JsonObject {
    fn from(object: Map<String, Value>) -> Self {
        JsonObject(object)
    }
}

impl JsonObject {
    /// Takes a field out of the body; a missing (or `null`) one is 422 naming it.
    pub fn take(&mut self, field: &str) -> Result<Value, ApiError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Err(ApiError::invalid_field(field, "is required")),
            Some(value) => Ok(value),
        }
    }

    /// Takes an optional field out of the body (`null` counts as absent).
    pub fn take_optional(&mut self, field: &str) -> Option<Value> {
        self.0.remove(field).filter(|value| !value.is_null())
    }

    /// Takes a string field out of the body.
    pub fn take_string(&mut self, field: &str) -> Result<String, ApiError> {
        match self.take(field)? {
            Value::String(text) => Ok(text),
            other => Err(ApiError::invalid_field(field, format!("expected a string, found {}", json_type(&other)))),
        }
    }

    /// Refuses fields nobody took: a misspelt optional field should not pass unnoticed.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(field) => Err(ApiError::invalid_field(field.as_str(), "is not a known field of this request")),
        }
    }
}

/// The query string as named parameters, each given at most once.
#[derive(Debug)]
pub struct QueryParams(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) =
            Query::<Vec<(String, String)>>::from_request_parts(parts, state).await.map_err(|rejection| {
                ApiError::invalid_field("", format!("invalid query string: {}", rejection.body_text()))
            })?;
        let mut params = BTreeMap::new();
        for (name, value) in pairs {
            if params.contains_key(&name) {
                return Err(ApiError::invalid_field(name, "is given more than once").into());
            }
            params.insert(name, value);
        }
        Ok(QueryParams(params))
    }
}

impl From<BTreeMap<String, String>> for QueryParams {
    fn from(params: BTreeMap<String, String>) -> Self {
        QueryParams(params)
    }
}

impl QueryParams {
    /// Takes a parameter; an empty value (`?server=`) counts as absent.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|value| !value.is_empty())
    }

    /// Takes a parameter and parses it with `parse`, whose error is the reason.
    pub fn take_parsed<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ApiError> {
        self.take(name).map(|raw| parse(&raw).map_err(|reason| ApiError::invalid_field(name, reason))).transpose()
    }

    /// Refuses parameters nobody took: `?env=prod` must not silently list everything.
    pub fn finish(self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::invalid_field(
                name.as_str(),
                if known.is_empty() {
                    "is not a known query parameter; this route takes none".to_owned()
                } else {
                    format!("is not a known query parameter; known are {}", known.join(", "))
                },
            )),
        }
    }
}

/// One path parameter as text; the handler parses it and names it in errors.
#[derive(Debug)]
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid_field("", format!("invalid path: {}", rejection.body_text())))?;
        Ok(PathParam(value))
    }
}

/// The service acting for the request's principal (set by the authentication layer), so
/// the service enforces the role again and the audit log names the actor.
#[derive(Debug)]
pub struct Acting(pub mtgs_service::Service);

impl FromRequestParts<mtgs_service::Service> for Acting {
    type Rejection = ErrorResponse;

    async fn from_request_parts(parts: &mut Parts, service: &mtgs_service::Service) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<mtgs_core::Principal>() {
            Some(principal) => Ok(Acting(service.acting_as(principal.clone()))),
            None => Err(ApiError::new(ErrorCode::Unauthenticated, "authentication required").into()),
        }
    }
}
