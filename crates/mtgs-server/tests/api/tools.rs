//! `POST /v1/tools/check`, `POST /v1/tools`, `GET /v1/tools`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    assert_error, has_seed_conflict, jira_create_task, salesforce_create_task, spawn_app, weather_forecast,
};

#[tokio::test]
async fn check_passes_a_tool_in_an_empty_environment() {
    let app = spawn_app().await;
    let (status, body) = app.check("prod", "weather", json!([weather_forecast()])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "pass");
    assert_eq!(body["conflicts"], json!([]));
    assert!(body["lints"].is_array());
}

#[tokio::test]
async fn check_blocks_salesforce_create_task_when_jira_registered_it() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;

    let (status, body) = app.check("prod", "salesforce", json!([salesforce_create_task()])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verdict"], "block");
    assert!(has_seed_conflict(&body["conflicts"]), "{body}");
    let conflict = &body["conflicts"][0];
    assert_eq!(conflict["environment"], "prod");
    assert_eq!(conflict["status"], "open");
    assert!(conflict["score"].is_number() && conflict["evidence"].is_object(), "{body}");
}

#[tokio::test]
async fn check_writes_nothing() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    app.check("prod", "salesforce", json!([salesforce_create_task()])).await;
    app.check("staging", "salesforce", json!([salesforce_create_task()])).await;

    let (_, body) = app.get("/v1/tools").await;
    let tools = body["tools"].as_array().expect("a list");
    assert_eq!(tools.len(), 1, "{body}");
    assert_eq!(tools[0]["server"], "jira");
    let (status, body) = app.get("/v1/environments/prod/conflicts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["conflicts"], json!([]));
    let (status, body) = app.get("/v1/environments/staging/conflicts").await;
    assert_error(status, &body, 404, "environment_not_found");
}

#[tokio::test]
async fn check_reports_lints_naming_their_tool() {
    let app = spawn_app().await;
    let (status, body) = app.check("prod", "misc", json!([{"name": "ping", "inputSchema": {"type": "object"}}])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lint = body["lints"]
        .as_array()
        .and_then(|lints| lints.iter().find(|lint| lint["code"] == "description_missing"))
        .unwrap_or_else(|| panic!("no description_missing lint in {body}"));
    assert_eq!(lint["tool"], "ping");
    assert_eq!(lint["level"], "warning");
    assert_eq!(lint["field"], "description");
}

#[tokio::test]
async fn register_returns_201_with_each_tool_active_when_nothing_collides() {
    let app = spawn_app().await;
    let body = app.register("prod", "jira", json!([jira_create_task(), weather_forecast()])).await;
    assert_eq!(body["verdict"], "pass");
    let tools = body["tools"].as_array().expect("a list");
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["name"], "create_task");
    for tool in tools {
        assert_eq!(tool["status"], "active", "{body}");
        assert_eq!(tool["conflicts"], json!([]));
        assert!(tool["lints"].is_array());
    }
}

#[tokio::test]
async fn register_holds_a_colliding_tool_for_approval_and_tracks_the_conflict() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let body = app.register("prod", "salesforce", json!([salesforce_create_task()])).await;
    assert_eq!(body["verdict"], "block");
    let tool = &body["tools"][0];
    assert_eq!(tool["status"], "pending_approval", "{body}");
    assert!(has_seed_conflict(&tool["conflicts"]), "{body}");
    assert!(tool["conflicts"][0]["id"].is_i64(), "a registered conflict is tracked: {body}");
}

#[tokio::test]
async fn list_tools_filters_by_environment_server_and_status() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    app.register("prod", "salesforce", json!([salesforce_create_task()])).await;
    app.register("dev", "weather", json!([weather_forecast()])).await;

    let names = |body: &serde_json::Value| -> Vec<String> {
        body["tools"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|tool| format!("{}/{}/{}", tool["environment"], tool["server"], tool["name"]).replace('"', ""))
            .collect()
    };
    let (status, body) = app.get("/v1/tools").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&body).len(), 3);
    let (_, body) = app.get("/v1/tools?environment=prod").await;
    assert_eq!(names(&body), ["prod/jira/create_task", "prod/salesforce/create_task"]);
    let (_, body) = app.get("/v1/tools?environment=prod&server=jira").await;
    assert_eq!(names(&body), ["prod/jira/create_task"]);
    let (_, body) = app.get("/v1/tools?environment=prod&status=pending_approval").await;
    assert_eq!(names(&body), ["prod/salesforce/create_task"]);

    let tool = &body["tools"][0];
    assert_eq!(tool["definition"], salesforce_create_task(), "the definition round-trips");
    assert!(tool["definition_hash"].as_str().is_some_and(|hash| hash.len() == 64));
    assert!(tool["id"].is_i64() && tool["created_at"].is_i64() && tool["updated_at"].is_i64());

    // One page at a time: the pages, in order, are the list.
    let (_, whole) = app.get("/v1/tools").await;
    assert!(whole.get("next_offset").is_none(), "one page holds them all: {whole}");
    let (_, first) = app.get("/v1/tools?limit=2").await;
    assert_eq!(first["next_offset"], 2, "{first}");
    let (_, rest) = app.get("/v1/tools?limit=2&offset=2").await;
    assert!(rest.get("next_offset").is_none(), "{rest}");
    assert_eq!([names(&first), names(&rest)].concat(), names(&whole));
    for (query, field) in [("limit=0", "limit"), ("limit=1001", "limit"), ("offset=x", "offset")] {
        let (status, body) = app.get(&format!("/v1/tools?{query}")).await;
        let error = assert_error(status, &body, 422, "invalid_field");
        assert_eq!(error["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn list_tools_of_an_unknown_environment_is_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/tools?environment=nowhere").await;
    assert_error(status, &body, 404, "environment_not_found");
}

#[tokio::test]
async fn list_tools_refuses_an_unknown_status_naming_the_parameter() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/tools?status=enabled").await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "status");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("pending_approval")), "{body}");
}

#[tokio::test]
async fn list_tools_refuses_an_unknown_query_parameter() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/tools?env=prod").await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "env");
}
