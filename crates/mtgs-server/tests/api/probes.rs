//! `/health`, `/readiness` and `/v1/environments/{env}/health`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, jira_create_task, salesforce_create_task, spawn_app};

#[tokio::test]
async fn liveness_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readiness_answers_200_when_the_database_answers() {
    let app = spawn_app().await;
    let (status, body) = app.get("/readiness").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"status": "ready"}));
}

#[tokio::test]
async fn environment_health_counts_the_live_critical_conflict_of_the_seed() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    app.register("prod", "salesforce", json!([salesforce_create_task()])).await;

    let (status, body) = app.get("/v1/environments/prod/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["environment"], "prod");
    assert_eq!(body["tools"], 2);
    assert!(body["conflicts"]["critical"].as_u64() >= Some(1), "{body}");
    assert_eq!(
        body["conflicts"]["total"].as_u64(),
        ["critical", "high", "medium", "low"].iter().map(|s| body["conflicts"][s].as_u64()).sum::<Option<u64>>()
    );
    assert!(body["score"].as_u64() < Some(100), "{body}");
}

#[tokio::test]
async fn environment_health_of_an_empty_registration_is_100() {
    let app = spawn_app().await;
    app.register("dev", "jira", json!([jira_create_task()])).await;
    let (status, body) = app.get("/v1/environments/dev/health").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["score"], 100);
    assert_eq!(body["conflicts"]["total"], 0);
}

#[tokio::test]
async fn environment_health_of_an_unknown_environment_is_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/environments/nowhere/health").await;
    assert_error(status, &body, 404, "environment_not_found");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_callers_own_is_kept() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let first = client.get(format!("{}/health", app.address)).send().await.expect("sent");
    let second = client.get(format!("{}/v1/nowhere", app.address)).send().await.expect("sent");
    let id = |response: &reqwest::Response| {
        response.headers().get("x-request-id").and_then(|value| value.to_str().ok()).map(str::to_owned)
    };
    let (first, second) = (id(&first).expect("an id"), id(&second).expect("an id on errors too"));
    assert_ne!(first, second);
    assert_eq!(first.len(), 36, "a UUID: {first}");
    let echoed = client
        .get(format!("{}/health", app.address))
        .header("x-request-id", "trace-from-the-gateway-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(id(&echoed).as_deref(), Some("trace-from-the-gateway-42"));
}
