//! `GET /v1/audit-logs`, `GET /v1/audit-logs/export` (JSON lines or ArcSight CEF) and
//! `GET /v1/audit-logs/verify`.

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mtgs_api::ApiError;
use mtgs_core::{AuditEvent, audit_cef, audit_json};
use mtgs_service::AuditFilter;
use serde_json::{Value, json};

use crate::error::ErrorResponse;
use crate::extract::{Acting, QueryParams};

const FILTER_PARAMETERS: [&str; 3] = ["from", "to", "event"];

/// `?from=&to=` (milliseconds since the epoch) and `?event=`.
fn filter(query: &mut QueryParams) -> Result<AuditFilter, ApiError> {
    let millis = |raw: &str| {
        raw.parse::<i64>().map_err(|_| format!("expected milliseconds since the Unix epoch, found '{raw}'"))
    };
    Ok(AuditFilter {
        from: query.take_parsed("from", millis)?,
        to: query.take_parsed("to", millis)?,
        event: query.take_parsed("event", str::parse::<AuditEvent>)?,
        ..AuditFilter::default()
    })
}

/// 200 `{entries: [{seq, at, actor, event, environment, subject, before, after, prev_hash, hash}]}`.
pub async fn list(Acting(service): Acting, mut query: QueryParams) -> Result<Json<Value>, ErrorResponse> {
    let filter = filter(&mut query)?;
    query.finish(&FILTER_PARAMETERS)?;
    let entries = service.audit_log(&filter).await?;
    Ok(Json(json!({"entries": entries.iter().map(audit_json).collect::<Vec<_>>()})))
}

/// Entries read per page while exporting.
const EXPORT_PAGE: u32 = 1_000;

/// One entry per line: `application/x-ndjson` for `format=json` (the default), CEF lines as
/// `text/plain` for `format=cef`. Streamed page by page, so a long log is never held whole:
/// the first page is read before answering (a refusal is still a proper error), the rest
/// as the client reads.
pub async fn export(Acting(service): Acting, mut query: QueryParams) -> Result<Response, ErrorResponse> {
    let cef = match query.take("format").as_deref() {
        None | Some("json") => false,
        Some("cef") => true,
        Some(other) => {
            return Err(ApiError::invalid_field("format", format!("expected json or cef, found '{other}'")).into());
        }
    };
    let filter = AuditFilter { limit: Some(EXPORT_PAGE), ..filter(&mut query)? };
    let mut known = FILTER_PARAMETERS.to_vec();
    known.push("format");
    query.finish(&known)?;
    let first = service.audit_log(&filter).await?;
    let render = move |entries: &[mtgs_core::AuditEntry]| {
        let mut text = String::new();
        for entry in entries {
            if cef {
                text.push_str(&audit_cef(entry, env!("CARGO_PKG_VERSION")));
            } else {
                text.push_str(&audit_json(entry).to_string());
            }
            text.push('\n');
        }
        text
    };
    // Each step sends one page and reads the next; a failed read ends the body with an
    // error, so the client sees a broken transfer rather than a short, clean export.
    let pages = futures_util::stream::unfold(Some(Ok(first)), move |page| {
        let (service, filter) = (service.clone(), filter.clone());
        async move {
            let page = match page? {
                Ok(page) if page.is_empty() => return None,
                Ok(page) => page,
                Err(error) => return Some((Err(std::io::Error::other(error)), None)),
            };
            let next = if page.len() < EXPORT_PAGE as usize {
                Ok(Vec::new())
            } else {
                let after = page.last().map(|entry| entry.seq);
                service.audit_log(&AuditFilter { after, ..filter }).await.map_err(|error| {
                    tracing::error!(%error, "the audit export stopped");
                    error.to_string()
                })
            };
            Some((Ok(render(&page)), Some(next)))
        }
    });
    let content_type = if cef { "text/plain; charset=utf-8" } else { "application/x-ndjson" };
    Ok(([(header::CONTENT_TYPE, content_type)], axum::body::Body::from_stream(pages)).into_response())
}

/// 200 `{entries, head, intact, broken: {seq, reason}?}`.
pub async fn verify(Acting(service): Acting, query: QueryParams) -> Result<Json<Value>, ErrorResponse> {
    query.finish(&[])?;
    let report = service.verify_audit_log().await?;
    Ok(Json(json!({
        "entries": report.entries,
        "head": report.head,
        "intact": report.broken.is_none(),
        "broken": report.broken.map(|broken| json!({"seq": broken.seq, "reason": broken.reason})),
    })))
}
