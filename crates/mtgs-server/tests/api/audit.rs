//! `GET /v1/audit-logs`, `/v1/audit-logs/export` and `/v1/audit-logs/verify`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, jira_create_task, salesforce_create_task, spawn_app};

#[tokio::test]
async fn registrations_and_triage_are_audited_and_exported_as_json_lines_and_cef() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let registered = app.register("prod", "salesforce", json!([salesforce_create_task()])).await;
    let id = registered["tools"][0]["conflicts"][0]["id"].as_i64().expect("a conflict");
    let (status, _) = app.patch(&format!("/v1/conflicts/{id}"), &json!({"status": "acknowledged"})).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app.get("/v1/audit-logs").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events: Vec<&str> =
        body["entries"].as_array().expect("entries").iter().filter_map(|e| e["event"].as_str()).collect();
    // The test's admin key, both tools, the collision, the approval it needs, the triage.
    assert_eq!(
        events,
        [
            "API_KEY_CREATED",
            "TOOL_REGISTERED",
            "TOOL_REGISTERED",
            "CONFLICT_DETECTED",
            "APPROVAL_REQUESTED",
            "CONFLICT_STATUS_CHANGED"
        ]
    );

    let (status, body) = app.get("/v1/audit-logs?event=CONFLICT_STATUS_CHANGED").await;
    assert_eq!(status, StatusCode::OK);
    let entries = body["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["after"], json!({"status": "acknowledged"}));
    assert_eq!(entries[0]["environment"], "prod");

    let client = app.client.clone();
    let response = client.get(format!("{}/v1/audit-logs/export", app.address)).send().await.expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.expect("text");
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);

    let response = client
        .get(format!("{}/v1/audit-logs/export?format=cef&event=TOOL_REGISTERED", app.address))
        .send()
        .await
        .expect("sent");
    let text = response.text().await.expect("text");
    let records: Vec<mtgs_core::CefRecord> =
        text.lines().map(|line| mtgs_core::parse_cef(line).expect("CEF")).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].header[3], "TOOL_REGISTERED");
    assert!(records[1].extensions.contains(&("cs2".to_owned(), "salesforce/create_task".to_owned())));

    let (status, body) = app.get("/v1/audit-logs/verify").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["intact"].as_bool(), body["entries"].as_u64()), (Some(true), Some(6)), "{body}");
}

#[tokio::test]
async fn bad_audit_queries_name_the_parameter() {
    let app = spawn_app().await;
    for (path, field) in [
        ("/v1/audit-logs?from=yesterday", "from"),
        ("/v1/audit-logs?event=TOOL_EATEN", "event"),
        ("/v1/audit-logs?evnt=TOOL_REGISTERED", "evnt"),
        ("/v1/audit-logs/export?format=xml", "format"),
    ] {
        let (status, body) = app.get(path).await;
        let error = assert_error(status, &body, 422, "invalid_field");
        assert_eq!(error["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_long_log_is_exported_whole_across_pages() {
    let app = spawn_app().await;
    // 2,500 entries besides the test's own key: more than two export pages of 1,000.
    for index in 0..2_500 {
        app.service.create_api_key(Some(&format!("key {index}")), mtgs_core::Role::Viewer).await.expect("a key");
    }
    for format in ["json", "cef"] {
        let response =
            app.client.get(format!("{}/v1/audit-logs/export?format={format}", app.address)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.expect("the whole body");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2_501, "{format}");
        if format == "json" {
            let entries: Vec<Value> = lines.iter().map(|line| serde_json::from_str(line).expect("JSON")).collect();
            for (index, pair) in entries.windows(2).enumerate() {
                assert_eq!(pair[0]["seq"], index as i64 + 1);
                assert_eq!(pair[1]["prev_hash"], pair[0]["hash"], "the chain runs across pages");
            }
        } else {
            let last = mtgs_core::parse_cef(lines[2_500]).expect("CEF");
            assert!(last.extensions.contains(&("externalId".to_owned(), "2501".to_owned())), "{last:?}");
        }
    }
}
