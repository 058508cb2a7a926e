//! `POST /v1/environments/{env}/analysis-runs` and `GET /v1/analysis-runs/{id}`: the job
//! is queued by the route and run by the server's job runner.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, has_seed_conflict, jira_create_task, salesforce_create_task, spawn_app};

/// Polls the run until it has finished. The bound only stops a broken runner from
/// hanging the suite; it is not a timing assertion.
async fn wait_until_finished(app: &TestApp, id: i64) -> Value {
    for _ in 0..600 {
        let (status, body) = app.get(&format!("/v1/analysis-runs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "succeeded" || body["status"] == "failed" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("analysis run {id} did not finish");
}

#[tokio::test]
async fn an_analysis_run_is_accepted_with_202_and_the_job_runner_finishes_it() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    app.register("prod", "salesforce", json!([salesforce_create_task()])).await;

    let response = app
        .client
        .post(format!("{}/v1/environments/prod/analysis-runs", app.address))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let run: Value = response.json().await.expect("a JSON body");
    let id = run["id"].as_i64().expect("an id");
    assert_eq!(location, Some(format!("/v1/analysis-runs/{id}")));
    assert_eq!(run["environment"], "prod");
    assert_eq!(run["kind"], "analysis");
    assert!(run["created_at"].is_i64());

    let run = wait_until_finished(&app, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["error"], Value::Null);
    assert_eq!(run["progress"]["done"], run["progress"]["total"], "{run}");
    assert!(run["finished_at"].is_i64() && run["started_at"].is_i64(), "{run}");

    let (_, body) = app.get("/v1/environments/prod/conflicts").await;
    assert!(has_seed_conflict(&body["conflicts"]), "analysis keeps the seed conflict: {body}");
}

#[tokio::test]
async fn an_analysis_of_an_unknown_environment_is_404() {
    let app = spawn_app().await;
    let (status, body) = app.post("/v1/environments/nowhere/analysis-runs", &json!({})).await;
    assert_error(status, &body, 404, "environment_not_found");
}

#[tokio::test]
async fn an_unknown_analysis_run_is_404_job_not_found() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/analysis-runs/424242").await;
    assert_error(status, &body, 404, "job_not_found");
}
