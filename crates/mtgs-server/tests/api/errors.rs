//! The error shapes: every refusal is JSON with a stable code, and names the field.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, jira_create_task, spawn_app};

fn batch(tools: Value) -> Value {
    json!({"environment": "prod", "server": "jira", "tools": tools})
}

#[tokio::test]
async fn malformed_json_is_400_invalid_json_with_the_parser_message() {
    let app = spawn_app().await;
    let (status, body) = app.post_raw("/v1/tools/check", r#"{"environment": "prod", "#).await;
    let error = assert_error(status, &body, 400, "invalid_json");
    assert_eq!(error["type"], "invalid_request");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("line 1")), "{body}");
}

#[tokio::test]
async fn an_empty_body_is_400_invalid_json() {
    let app = spawn_app().await;
    let (status, body) = app.post_raw("/v1/tools", "").await;
    assert_error(status, &body, 400, "invalid_json");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422() {
    let app = spawn_app().await;
    let (status, body) = app.post("/v1/tools/check", &json!([jira_create_task()])).await;
    assert_error(status, &body, 422, "invalid_field");
}

#[tokio::test]
async fn a_missing_environment_is_422_naming_the_field() {
    let app = spawn_app().await;
    let (status, body) = app.post("/v1/tools/check", &json!({"server": "jira", "tools": [jira_create_task()]})).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "environment");
    assert_eq!(error["message"], "environment: is required");
}

#[tokio::test]
async fn an_invalid_environment_name_is_422_naming_the_field() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/v1/tools", &json!({"environment": "pro d", "server": "jira", "tools": [jira_create_task()]})).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "environment");
}

#[tokio::test]
async fn tools_that_are_not_an_array_are_422() {
    let app = spawn_app().await;
    let (status, body) = app.post("/v1/tools/check", &batch(jira_create_task())).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools");
}

#[tokio::test]
async fn an_unknown_body_field_is_422_naming_it() {
    let app = spawn_app().await;
    let mut body = batch(json!([jira_create_task()]));
    body["dry_run"] = json!(true);
    let (status, body) = app.post("/v1/tools", &body).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "dry_run");
}

#[tokio::test]
async fn a_tool_without_a_name_is_422_naming_its_index() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/v1/tools/check", &batch(json!([jira_create_task(), {"inputSchema": {"type": "object"}}]))).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools[1].name");
    assert_eq!(error["message"], "tools[1].name: is required");
}

#[tokio::test]
async fn an_invalid_tool_name_is_422() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/v1/tools", &batch(json!([{"name": "create task", "inputSchema": {"type": "object"}}]))).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools[0].name");
}

#[tokio::test]
async fn an_invalid_input_schema_is_422_naming_the_schema_field() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/v1/tools/check", &batch(json!([{"name": "a", "inputSchema": {"type": "objekt"}}]))).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools[0].inputSchema.type");
}

#[tokio::test]
async fn an_oversized_description_is_422_naming_the_description() {
    let app = spawn_app().await;
    let tool = json!({"name": "a", "description": "x".repeat(16_385), "inputSchema": {"type": "object"}});
    let (status, body) = app.post("/v1/tools/check", &batch(json!([tool]))).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools[0].description");
    assert_eq!(error["message"], "tools[0].description: is 16385 characters long; the limit is 16384");
}

#[tokio::test]
async fn a_body_over_16_mib_is_413_payload_too_large() {
    let app = spawn_app().await;
    let huge =
        format!(r#"{{"environment": "prod", "server": "jira", "tools": [], "pad": "{}"}}"#, "x".repeat(17 << 20));
    let (status, body) = app.post_raw("/v1/tools", huge).await;
    assert_error(status, &body, 413, "payload_too_large");
}

#[tokio::test]
async fn a_rejected_registration_writes_nothing() {
    let app = spawn_app().await;
    let (status, body) =
        app.post("/v1/tools", &batch(json!([jira_create_task(), {"name": "b", "inputSchema": "object"}]))).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools[1].inputSchema");

    let (status, body) = app.get("/v1/tools").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["tools"], json!([]), "nothing registered");
    let (status, body) = app.get("/v1/tools?environment=prod").await;
    assert_error(status, &body, 404, "environment_not_found");
}

#[tokio::test]
async fn unknown_routes_are_404_route_not_found_in_json() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/nothing-here").await;
    assert_error(status, &body, 404, "route_not_found");
}

#[tokio::test]
async fn a_wrong_method_is_405_in_json() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/tools/check").await;
    assert_error(status, &body, 405, "method_not_allowed");
}
