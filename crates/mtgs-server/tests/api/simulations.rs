//! `POST /v1/simulations` and `GET /v1/simulations/{id}`: an impact simulation is queued by
//! the route, run by the server's job runner, and its report read back.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

/// Polls the simulation until it has finished. The bound only stops a broken runner from
/// hanging the suite; it is not a timing assertion.
async fn finished(app: &TestApp, id: i64) -> Value {
    for _ in 0..600 {
        let (status, body) = app.get(&format!("/v1/simulations/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "succeeded" || body["status"] == "failed" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("simulation {id} did not finish");
}

fn generic_create_task() -> Value {
    json!({"name": "create_task", "description": "Create a new task with a title, description and priority.",
           "inputSchema": {"type": "object", "required": ["title"], "properties": {
               "title": {"type": "string", "description": "Task title"},
               "priority": {"type": "string", "enum": ["highest", "high", "medium", "low"]}}}})
}

fn terse_salesforce_task() -> Value {
    json!({"name": "create_sf_task", "description": "Creates a task.",
           "inputSchema": {"type": "object", "required": ["subject"], "properties": {
               "subject": {"type": "string"},
               "priority": {"type": "string", "enum": ["High", "Normal", "Low"]},
               "who_id": {"type": "string", "description": "Lead or contact id"}}}})
}

#[tokio::test]
async fn a_simulation_is_accepted_with_202_and_reports_the_routing_shift() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([generic_create_task()])).await;
    let request = json!({
        "environment": "prod",
        "server": "salesforce",
        "tools": [terse_salesforce_task()],
        "probes": [{"query": "Create a Salesforce task to call back the Acme lead",
                    "expected": {"server": "salesforce", "name": "create_sf_task"}},
                   {"query": "what is on my plate today"}],
        "trials": 3
    });
    let response =
        app.client.post(format!("{}/v1/simulations", app.address)).json(&request).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let queued: Value = response.json().await.expect("json");
    let id = queued["id"].as_i64().expect("an id");
    assert_eq!(location, Some(format!("/v1/simulations/{id}")));

    let simulation = finished(&app, id).await;
    assert_eq!(simulation["status"], "succeeded", "{simulation}");
    let report = &simulation["report"];
    assert_eq!(report["verdict"], "block", "{report:#}");
    assert_eq!(report["pairs"][0]["existing"], json!({"server": "jira", "name": "create_task"}));
    let to_jira = report["candidate_probes"]
        .as_array()
        .expect("candidate probes")
        .iter()
        .filter(|probe| probe["routed_after"] == json!({"server": "jira", "name": "create_task"}))
        .count();
    assert!(to_jira >= 2, "{report:#}");
    let probes = report["probes"].as_array().expect("probes");
    assert_eq!(probes.len(), 2);
    assert_eq!(probes[0]["routed_after"], json!({"server": "salesforce", "name": "create_sf_task"}));
    assert_eq!(probes[1]["expected"], Value::Null);
    assert_eq!((report["labelled_probes"].as_u64(), report["accuracy"].as_f64()), (Some(1), Some(1.0)));
    assert!(report["router_is"].as_str().expect("text").contains("not an LLM"));

    // Simulations and analysis runs are different resources.
    let (status, body) = app.get(&format!("/v1/analysis-runs/{id}")).await;
    assert_error(status, &body, 404, "job_not_found");
}

#[tokio::test]
async fn without_tools_the_probes_are_routed_against_the_environment_as_it_is() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([generic_create_task()])).await;
    let (status, queued) = app
        .post(
            "/v1/simulations",
            &json!({"environment": "prod", "probes": [
            {"query": "create a task to fix the login bug", "expected": {"server": "jira", "name": "create_task"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let simulation = finished(&app, queued["id"].as_i64().expect("id")).await;
    let report = &simulation["report"];
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["accuracy"], 1.0);
    assert_eq!(report["probes"][0]["routed_before"], report["probes"][0]["routed_after"]);
    assert_eq!(report["candidate_probes"], json!([]));
}

#[tokio::test]
async fn a_bad_simulation_request_names_the_field() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([generic_create_task()])).await;
    let cases = [
        (json!({"server": "s"}), 422, "environment"),
        (json!({"environment": "prod", "tools": [terse_salesforce_task()]}), 422, "server"),
        (json!({"environment": "prod", "server": "s", "tools": [{"name": ""}]}), 422, "tools[0].name"),
        (json!({"environment": "prod", "probes": [{"query": ""}]}), 422, "probes[0].query"),
        (
            json!({"environment": "prod", "probes": [{"query": "x", "expected": {"server": "s"}}]}),
            422,
            "probes[0].expected.name",
        ),
        (json!({"environment": "prod", "trials": 0}), 422, "trials"),
        (json!({"environment": "prod", "trials": "three"}), 422, "trials"),
        (json!({"environment": "prod", "trails": 3}), 422, "trails"),
    ];
    for (body, status_code, field) in cases {
        let (status, error) = app.post("/v1/simulations", &body).await;
        let detail = assert_error(status, &error, status_code, "invalid_field");
        assert_eq!(detail["field"], field, "{body}: {error}");
    }
    let (status, body) = app.post("/v1/simulations", &json!({"environment": "nowhere"})).await;
    assert_error(status, &body, 404, "environment_not_found");
    let (status, body) = app.get("/v1/simulations/999").await;
    assert_error(status, &body, 404, "job_not_found");
    let (status, body) = app.get("/v1/simulations/abc").await;
    assert_error(status, &body, 422, "invalid_field");
}
