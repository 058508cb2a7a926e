//! `POST /v1/webhooks/ci-check`: the check, with the verdict in the status code.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, has_seed_conflict, jira_create_task, salesforce_create_task, spawn_app, weather_forecast,
};

#[tokio::test]
async fn ci_check_returns_409_when_a_name_collides_across_servers() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let (status, body) = app
        .post(
            "/v1/webhooks/ci-check",
            &json!({"environment": "prod", "server": "salesforce", "tools": [salesforce_create_task()]}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["verdict"], "block");
    assert!(has_seed_conflict(&body["conflicts"]), "{body}");
}

#[tokio::test]
async fn ci_check_returns_200_for_an_unrelated_tool() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let (status, body) = app
        .post(
            "/v1/webhooks/ci-check",
            &json!({"environment": "prod", "server": "weather", "tools": [weather_forecast()]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "pass");
}

#[tokio::test]
async fn ci_check_writes_nothing() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    app.post(
        "/v1/webhooks/ci-check",
        &json!({"environment": "prod", "server": "salesforce", "tools": [salesforce_create_task()]}),
    )
    .await;
    let (_, body) = app.get("/v1/tools?environment=prod").await;
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(1), "{body}");
}

#[tokio::test]
async fn ci_check_refuses_invalid_tools_like_check() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/v1/webhooks/ci-check", &json!({"environment": "prod", "server": "x", "tools": [{"name": "a"}]}))
        .await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tools[0].inputSchema");
}
