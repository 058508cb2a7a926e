//! `GET /v1/environments/{env}/conflicts`, `GET` and `PATCH /v1/conflicts/{id}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, has_seed_conflict, jira_create_task, salesforce_create_task, spawn_app};

/// Registers the seed's two tools in `prod` and returns the id of their exact-name conflict.
async fn seed(app: &TestApp) -> i64 {
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let body = app.register("prod", "salesforce", json!([salesforce_create_task()])).await;
    body["tools"][0]["conflicts"]
        .as_array()
        .and_then(|conflicts| conflicts.iter().find(|conflict| conflict["kind"] == "exact_name"))
        .and_then(|conflict| conflict["id"].as_i64())
        .unwrap_or_else(|| panic!("no tracked exact_name conflict in {body}"))
}

fn ids(body: &Value) -> Vec<i64> {
    body["conflicts"].as_array().expect("a list").iter().filter_map(|conflict| conflict["id"].as_i64()).collect()
}

#[tokio::test]
async fn conflicts_of_an_environment_list_the_seed_collision() {
    let app = spawn_app().await;
    let id = seed(&app).await;
    let (status, body) = app.get("/v1/environments/prod/conflicts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(has_seed_conflict(&body["conflicts"]), "{body}");
    assert!(ids(&body).contains(&id));
    let conflict = &body["conflicts"][0];
    assert!(conflict["first_seen_at"].is_i64() && conflict["last_seen_at"].is_i64(), "{body}");
}

#[tokio::test]
async fn conflicts_filter_by_severity_stage_status_and_tool() {
    let app = spawn_app().await;
    let id = seed(&app).await;
    for query in [
        "severity=critical",
        "stage=lexical",
        "status=open",
        "tool=jira/create_task",
        "tool=salesforce/create_task&severity=critical&stage=lexical&status=open",
    ] {
        let (status, body) = app.get(&format!("/v1/environments/prod/conflicts?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert!(ids(&body).contains(&id), "{query}: {body}");
    }
    for query in ["severity=low", "stage=behavioural", "status=suppressed", "tool=jira/close_task"] {
        let (status, body) = app.get(&format!("/v1/environments/prod/conflicts?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert!(!ids(&body).contains(&id), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_bad_enum_query_parameter_is_422_naming_it() {
    let app = spawn_app().await;
    seed(&app).await;
    for (query, field) in [("severity=urgent", "severity"), ("stage=magic", "stage"), ("status=closed", "status")] {
        let (status, body) = app.get(&format!("/v1/environments/prod/conflicts?{query}")).await;
        let error = assert_error(status, &body, 422, "invalid_field");
        assert_eq!(error["field"], field, "{body}");
    }
    let (status, body) = app.get("/v1/environments/prod/conflicts?tool=create_task").await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "tool");
}

#[tokio::test]
async fn conflicts_come_a_page_at_a_time_and_the_pages_add_up_to_the_list() {
    let app = spawn_app().await;
    // Five servers publishing the same tool: ten pairs, each with at least one conflict.
    for server in ["jira", "linear", "asana", "trello", "clickup"] {
        app.register("prod", server, json!([jira_create_task()])).await;
    }
    let (_, whole) = app.get("/v1/environments/prod/conflicts?limit=1000").await;
    let all = ids(&whole);
    assert!(all.len() >= 10, "{whole}");
    assert!(whole.get("next_offset").is_none(), "one page holds them all: {whole}");

    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let (status, body) = app.get(&format!("/v1/environments/prod/conflicts?limit=3&offset={offset}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(ids(&body).len() <= 3, "{body}");
        paged.extend(ids(&body));
        match body["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(next, offset + 3, "{body}");
                offset = next;
            }
            None => break,
        }
    }
    assert_eq!(paged, all, "the pages, in order, are the list");

    for (query, field) in
        [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset")]
    {
        let (status, body) = app.get(&format!("/v1/environments/prod/conflicts?{query}")).await;
        let error = assert_error(status, &body, 422, "invalid_field");
        assert_eq!(error["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn conflicts_of_an_unknown_environment_are_404() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/environments/nowhere/conflicts").await;
    let error = assert_error(status, &body, 404, "environment_not_found");
    assert_eq!(error["type"], "not_found");
}

#[tokio::test]
async fn a_conflict_is_shown_by_id() {
    let app = spawn_app().await;
    let id = seed(&app).await;
    let (status, body) = app.get(&format!("/v1/conflicts/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id);
    assert!(has_seed_conflict(&json!([body])));
}

#[tokio::test]
async fn a_conflict_has_verified_recommendations_with_patched_definitions() {
    let app = spawn_app().await;
    let id = seed(&app).await;
    let (status, body) = app.get(&format!("/v1/conflicts/{id}/recommendations")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["conflict"], id);
    let fixes = body["recommendations"].as_array().expect("a list");
    assert!(fixes.iter().any(|fix| fix["verification"]["resolves"] == true), "{body}");
    for fix in fixes {
        assert!(
            ["rename", "description_rewrite", "scope_narrowing", "merge_or_deprecate"]
                .contains(&fix["kind"].as_str().unwrap_or_default())
        );
        assert!(fix["target"]["server"].is_string() && fix["target"]["name"].is_string(), "{fix}");
        assert!(fix["patched_tool"].is_null() || fix["patched_tool"]["inputSchema"].is_object(), "{fix}");
        let verification = &fix["verification"];
        assert_eq!(verification["severity_before"], "critical", "{fix}");
        assert!(verification["new_conflicts"].is_array(), "{fix}");
    }
    // Resolving fixes come first.
    let resolves: Vec<bool> = fixes.iter().map(|fix| fix["verification"]["resolves"] == true).collect();
    assert!(resolves.windows(2).all(|pair| pair[0] >= pair[1]), "{resolves:?}");

    let (status, body) = app.get("/v1/conflicts/999/recommendations").await;
    assert_error(status, &body, 404, "conflict_not_found");
    let (status, body) = app.get("/v1/conflicts/x/recommendations").await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "id");
}

#[tokio::test]
async fn an_unknown_conflict_is_404_and_a_non_numeric_id_is_422() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/conflicts/999").await;
    assert_error(status, &body, 404, "conflict_not_found");
    let (status, body) = app.get("/v1/conflicts/abc").await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "id");
    let (status, body) = app.patch("/v1/conflicts/999", &json!({"status": "resolved"})).await;
    assert_error(status, &body, 404, "conflict_not_found");
}

#[tokio::test]
async fn suppressing_the_seed_conflict_lets_the_ci_check_pass() {
    let app = spawn_app().await;
    let id = seed(&app).await;
    let (status, body) = app.patch(&format!("/v1/conflicts/{id}"), &json!({"status": "suppressed"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "suppressed");
    let (_, body) = app.get(&format!("/v1/conflicts/{id}")).await;
    assert_eq!(body["status"], "suppressed");

    let (status, body) = app
        .post(
            "/v1/webhooks/ci-check",
            &json!({"environment": "prod", "server": "salesforce", "tools": [salesforce_create_task()]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a suppressed conflict does not block: {body}");
}

#[tokio::test]
async fn patching_an_unknown_or_missing_status_is_422_naming_status() {
    let app = spawn_app().await;
    let id = seed(&app).await;
    let (status, body) = app.patch(&format!("/v1/conflicts/{id}"), &json!({"status": "closed"})).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "status");
    let (status, body) = app.patch(&format!("/v1/conflicts/{id}"), &json!({})).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "status");
    let (_, body) = app.get(&format!("/v1/conflicts/{id}")).await;
    assert_eq!(body["status"], "open", "a refused patch changed nothing");
}
