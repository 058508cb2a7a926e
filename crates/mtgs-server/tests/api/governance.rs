//! Authentication, the endpoint × role matrix, and the approval workflow over HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use mtgs_core::{Principal, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_error, client_with, jira_create_task, salesforce_create_task, spawn_app, spawn_app_with,
    weather_forecast,
};

/// A new API key with `role`, made by the local operator.
async fn key(app: &TestApp, role: Role, name: &str) -> String {
    let (_, key) = app.service.create_api_key(Some(name), role).await.expect("a key");
    key.expose().to_owned()
}

async fn send(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = client_with(token).request(method, format!("{}{path}", app.address));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("a body");
    // The CEF and JSON-lines exports are not one JSON value.
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Registers a tool named `create_task` on a new server as `token`'s principal: it
/// collides with Jira's, so a pending approval request opens. Returns its id.
async fn pending_approval(app: &TestApp, token: &str, server: &str) -> i64 {
    let body = json!({"environment": "prod", "server": server, "tools": [salesforce_create_task()]});
    let (status, body) = send(app, Some(token), Method::POST, "/v1/tools", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tools"][0]["status"], "pending_approval", "{body}");
    body["tools"][0]["approval"].as_i64().unwrap_or_else(|| panic!("no approval id in {body}"))
}

/// One route of the matrix: what to send and what success looks like.
struct Route {
    method: Method,
    /// `{conflict}`, `{run}`, `{simulation}`, `{approval}` (an existing request),
    /// `{fresh_approval}` (a new pending request per cell) and `{fresh_key}` (a new key
    /// per cell) are filled in.
    path: &'static str,
    body: Option<Value>,
    success: u16,
    /// Roles that may call it; `None`: every role.
    roles: &'static [Role],
}

const ALL: &[Role] = &[Role::Viewer, Role::CiAgent, Role::Developer, Role::Reviewer, Role::Admin];
const WRITERS: &[Role] = &[Role::CiAgent, Role::Developer, Role::Reviewer, Role::Admin];
const DEVELOPERS: &[Role] = &[Role::Developer, Role::Reviewer, Role::Admin];
const REVIEWERS: &[Role] = &[Role::Reviewer, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];
/// What rmcp's Streamable HTTP service answers a request that is not an initialize and
/// carries no session.
const MCP_WITHOUT_SESSION: u16 = 406;

fn routes() -> Vec<Route> {
    let weather = json!({"environment": "prod", "server": "weather", "tools": [weather_forecast()]});
    let route = |method: Method, path: &'static str, body: Option<Value>, success: u16, roles: &'static [Role]| Route {
        method,
        path,
        body,
        success,
        roles,
    };
    vec![
        route(Method::GET, "/v1/me", None, 200, ALL),
        route(Method::POST, "/v1/tools/check", Some(weather.clone()), 200, WRITERS),
        route(Method::POST, "/v1/tools", Some(weather.clone()), 201, WRITERS),
        route(Method::GET, "/v1/tools", None, 200, ALL),
        route(Method::POST, "/v1/webhooks/ci-check", Some(weather), 200, WRITERS),
        route(Method::GET, "/v1/environments/prod/conflicts", None, 200, ALL),
        route(Method::GET, "/v1/conflicts/{conflict}", None, 200, ALL),
        route(Method::GET, "/v1/conflicts/{conflict}/recommendations", None, 200, ALL),
        route(Method::PATCH, "/v1/conflicts/{conflict}", Some(json!({"status": "acknowledged"})), 200, DEVELOPERS),
        route(Method::POST, "/v1/environments/prod/analysis-runs", None, 202, DEVELOPERS),
        route(Method::GET, "/v1/analysis-runs/{run}", None, 200, ALL),
        route(Method::GET, "/v1/audit-logs", None, 200, REVIEWERS),
        route(Method::GET, "/v1/audit-logs/export?format=cef", None, 200, REVIEWERS),
        route(Method::GET, "/v1/audit-logs/verify", None, 200, REVIEWERS),
        route(Method::POST, "/v1/simulations", Some(json!({"environment": "prod"})), 202, WRITERS),
        route(Method::GET, "/v1/simulations/{simulation}", None, 200, ALL),
        route(Method::GET, "/v1/environments/prod/health", None, 200, ALL),
        route(Method::GET, "/v1/approvals", None, 200, ALL),
        route(Method::GET, "/v1/approvals/{approval}", None, 200, ALL),
        route(Method::POST, "/v1/approvals/{fresh_approval}/approve", Some(json!({"comment": "ok"})), 200, REVIEWERS),
        route(Method::POST, "/v1/approvals/{fresh_approval}/reject", Some(json!({"comment": "no"})), 200, REVIEWERS),
        route(Method::POST, "/v1/api-keys", Some(json!({"role": "viewer"})), 201, ADMINS),
        route(Method::GET, "/v1/api-keys", None, 200, ADMINS),
        route(Method::DELETE, "/v1/api-keys/{fresh_key}", None, 200, ADMINS),
        route(
            Method::POST,
            "/v1/servers",
            Some(
                json!({"environment": "prod", "name": "remote", "connection": {"transport": "http", "url": "http://127.0.0.1:9/mcp"}}),
            ),
            201,
            ADMINS,
        ),
        route(
            Method::POST,
            "/v1/servers/import",
            Some(
                json!({"environment": "prod", "config": {"mcpServers": {"other": {"url": "http://127.0.0.1:9/mcp"}}}}),
            ),
            201,
            ADMINS,
        ),
        route(Method::GET, "/v1/servers", None, 200, ALL),
        route(Method::GET, "/v1/servers/{server}", None, 200, ALL),
        // Nothing listens on port 9: the sync runs, fails, and says so (200, status failed).
        route(Method::POST, "/v1/servers/{server}/sync", None, 200, DEVELOPERS),
        // An MCP ping outside a session: rmcp answers it (status below), after authentication.
        route(
            Method::POST,
            "/mcp",
            Some(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})),
            MCP_WITHOUT_SESSION,
            ALL,
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_answers_every_role_as_the_matrix_says() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    // Requests are opened by a developer, so reviewers and admins are not their requesters.
    let developer_key = key(&app, Role::Developer, "requester").await;
    let approval = pending_approval(&app, &developer_key, "salesforce").await;
    let (_, conflicts) = app.get("/v1/environments/prod/conflicts").await;
    let conflict = conflicts["conflicts"][0]["id"].as_i64().expect("a conflict");
    let (_, run) = app.post("/v1/environments/prod/analysis-runs", &json!({})).await;
    let (_, simulation) = app.post("/v1/simulations", &json!({"environment": "prod"})).await;
    let (status, server) = app
        .post("/v1/servers", &json!({"environment": "prod", "name": "unreachable", "connection": {"transport": "http", "url": "http://127.0.0.1:9/mcp"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{server}");

    let mut tokens: Vec<(String, Option<String>, Option<Role>)> = vec![("unauthenticated".into(), None, None)];
    for role in ALL {
        tokens.push((role.to_string(), Some(key(&app, *role, &format!("matrix {role}")).await), Some(*role)));
    }
    let mut cells = 0;
    let mut fresh = 0;
    let mut failures = Vec::new();
    for route in routes() {
        for (who, token, role) in &tokens {
            let mut path = route
                .path
                .replace("{conflict}", &conflict.to_string())
                .replace("{run}", &run["id"].to_string())
                .replace("{simulation}", &simulation["id"].to_string())
                .replace("{approval}", &approval.to_string())
                .replace("{server}", &server["id"].to_string());
            if path.contains("{fresh_approval}") {
                fresh += 1;
                let id = pending_approval(&app, &developer_key, &format!("crm{fresh}")).await;
                path = path.replace("{fresh_approval}", &id.to_string());
            }
            if path.contains("{fresh_key}") {
                let (record, _) = app.service.create_api_key(Some("doomed"), Role::Viewer).await.expect("a key");
                path = path.replace("{fresh_key}", &record.id.to_string());
            }
            let expected = match role {
                None => 401,
                Some(role) if route.roles.contains(role) => route.success,
                Some(_) => 403,
            };
            let (status, body) = send(&app, token.as_deref(), route.method.clone(), &path, route.body.as_ref()).await;
            cells += 1;
            if status.as_u16() != expected {
                failures.push(format!("{} {path} as {who}: expected {expected}, got {status}: {body}", route.method));
            } else if expected == 401 || expected == 403 {
                let code = if expected == 401 { "unauthenticated" } else { "forbidden" };
                if body["error"]["code"] != code {
                    failures.push(format!("{} {path} as {who}: expected code {code}: {body}", route.method));
                }
            }
        }
    }
    // The open probes answer everyone, tokens or not.
    for path in ["/health", "/readiness"] {
        for (who, token, _) in &tokens {
            let (status, body) = send(&app, token.as_deref(), Method::GET, path, None).await;
            cells += 1;
            if status != StatusCode::OK {
                failures.push(format!("GET {path} as {who}: expected 200, got {status}: {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cells} cells wrong:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(cells, routes().len() * tokens.len() + 2 * tokens.len());
}

#[tokio::test]
async fn a_missing_or_bad_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    for token in [None, Some("not-a-key"), Some("mtgs_0123456789abcdef0123456789abcdef0123456789abcdef")] {
        let response = client_with(token).get(format!("{}/v1/tools", app.address)).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"mtgs\"");
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.expect("JSON");
        assert_error(StatusCode::UNAUTHORIZED, &body, 401, "unauthenticated");
    }
    // A revoked key stops working at once.
    let (record, secret) = app.service.create_api_key(Some("short-lived"), Role::Viewer).await.expect("a key");
    let (status, _) = send(&app, Some(secret.expose()), Method::GET, "/v1/tools", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.delete(&format!("/v1/api-keys/{}", record.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["revoked_at"].is_i64(), "{body}");
    let (status, body) = send(&app, Some(secret.expose()), Method::GET, "/v1/tools", None).await;
    assert_error(status, &body, 401, "unauthenticated");
}

#[tokio::test]
async fn a_key_is_shown_once_stored_as_a_hash_and_its_life_is_audited() {
    let app = spawn_app().await;
    let (status, created) = app.post("/v1/api-keys", &json!({"role": "ci-agent", "name": "github actions"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().expect("the key");
    assert!(key.starts_with(created["prefix"].as_str().expect("a prefix")), "{created}");
    assert_eq!(created["role"], "ci-agent");
    let (_, list) = app.get("/v1/api-keys").await;
    assert!(!list.to_string().contains(key), "a listing must not show keys: {list}");
    let (status, me) = send(&app, Some(key), Method::GET, "/v1/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["actor"], format!("key:{}", created["prefix"].as_str().unwrap_or_default()));
    assert_eq!(me["role"], "ci-agent");
    assert_eq!(me["name"], "github actions");

    let (status, body) = app.post("/v1/api-keys", &json!({"role": "root"})).await;
    let error = assert_error(status, &body, 422, "invalid_field");
    assert_eq!(error["field"], "role");
    let (status, body) = app.post("/v1/api-keys", &json!({"role": "viewer", "name": ""})).await;
    assert_eq!(assert_error(status, &body, 422, "invalid_field")["field"], "name");

    let (_, entries) = app.get("/v1/audit-logs?event=API_KEY_CREATED").await;
    let entry = entries["entries"].as_array().and_then(|entries| entries.last()).expect("an entry").clone();
    assert_eq!(entry["after"]["role"], "ci-agent");
    assert!(!entry.to_string().contains(key), "the audit log must not hold keys: {entry}");
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request_and_another_reviewer_can() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let alice = key(&app, Role::Reviewer, "alice").await;
    let bob = key(&app, Role::Reviewer, "bob").await;
    let id = pending_approval(&app, &alice, "salesforce").await;

    let (status, approval) = send(&app, Some(&alice), Method::GET, &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{approval}");
    assert_eq!(approval["status"], "pending");
    assert_eq!(approval["tool"], json!({"server": "salesforce", "name": "create_task"}));
    assert_eq!(approval["reason"]["conflicts"][0]["severity"], "critical", "{approval}");

    let approve = format!("/v1/approvals/{id}/approve");
    let (status, body) = send(&app, Some(&alice), Method::POST, &approve, Some(&json!({}))).await;
    let error = assert_error(status, &body, 403, "self_approval");
    assert!(error["message"].as_str().is_some_and(|message| message.contains("another reviewer")), "{error}");

    // The CI gate still blocks the pending tool.
    let gate = json!({"environment": "prod", "server": "salesforce", "tools": [salesforce_create_task()]});
    let (status, _) = app.post("/v1/webhooks/ci-check", &gate).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, decided) =
        send(&app, Some(&bob), Method::POST, &approve, Some(&json!({"comment": "distinct servers"}))).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["comment"], "distinct servers");
    let bob_actor = decided["decided_by"].as_str().expect("a decider").to_owned();
    assert!(bob_actor.starts_with("key:mtgs_"), "{decided}");

    let (_, tools) = app.get("/v1/tools?server=salesforce").await;
    assert_eq!(tools["tools"][0]["status"], "active", "{tools}");
    // Approved as it is: the gate passes, and registering it again keeps it active.
    let (status, body) = app.post("/v1/webhooks/ci-check", &gate).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = app.register("prod", "salesforce", json!([salesforce_create_task()])).await;
    assert_eq!(again["tools"][0]["status"], "active", "{again}");
    assert_eq!(again["verdict"], "pass", "{again}");

    // Decided once: a second decision is refused.
    let (status, body) =
        send(&app, Some(&bob), Method::POST, &format!("/v1/approvals/{id}/reject"), Some(&json!({"comment": "late"})))
            .await;
    assert_error(status, &body, 409, "approval_not_pending");

    let (_, log) = app.get("/v1/audit-logs?event=APPROVAL_APPROVED").await;
    let entry = &log["entries"][0];
    assert_eq!(entry["actor"], bob_actor, "{log}");
    assert_eq!(entry["before"]["tool_status"], "pending_approval");
    assert_eq!(entry["after"]["tool_status"], "active");
    let (_, requested) = app.get("/v1/audit-logs?event=APPROVAL_REQUESTED").await;
    assert!(requested["entries"][0]["actor"].as_str().is_some_and(|actor| actor != bob_actor), "{requested}");
}

#[tokio::test]
async fn a_rejection_needs_a_comment_and_blocks_the_tool() {
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let developer = key(&app, Role::Developer, "dev").await;
    let id = pending_approval(&app, &developer, "salesforce").await;
    let reject = format!("/v1/approvals/{id}/reject");
    let (status, body) = app.post(&reject, &json!({})).await;
    assert_eq!(assert_error(status, &body, 422, "invalid_field")["field"], "comment");
    let (status, body) = app.post(&reject, &json!({"comment": 7})).await;
    assert_eq!(assert_error(status, &body, 422, "invalid_field")["field"], "comment");
    let (status, body) = app.post(&reject, &json!({"comment": "rename it to create_sf_task", "extra": 1})).await;
    assert_eq!(assert_error(status, &body, 422, "invalid_field")["field"], "extra");

    let (status, decided) = app.post(&reject, &json!({"comment": "rename it to create_sf_task"})).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "rejected");
    let (_, tools) = app.get("/v1/tools?server=salesforce").await;
    assert_eq!(tools["tools"][0]["status"], "blocked", "{tools}");
    // The same definition again stays blocked: the decision stands until it changes.
    let again = send(
        &app,
        Some(&developer),
        Method::POST,
        "/v1/tools",
        Some(&json!({"environment": "prod", "server": "salesforce", "tools": [salesforce_create_task()]})),
    )
    .await;
    assert_eq!(again.1["tools"][0]["status"], "blocked", "{}", again.1);

    let (_, pending) = app.get("/v1/approvals?status=pending").await;
    assert_eq!(pending["approvals"], json!([]));
    let (status, body) = app.get("/v1/approvals?status=maybe").await;
    assert_eq!(assert_error(status, &body, 422, "invalid_field")["field"], "status");
    let (status, body) = app.get("/v1/approvals/999").await;
    assert_error(status, &body, 404, "approval_not_found");
}

#[tokio::test]
async fn an_undecided_request_expires_after_the_ttl_and_the_tool_stays_blocked() {
    let now = Arc::new(AtomicI64::new(1_700_000_000_000));
    let clock = now.clone();
    let ttl = std::time::Duration::from_secs(3_600);
    let app = spawn_app_with(
        mtgs_server::AuthSettings { jwt: None, rate_limit: None },
        ttl,
        Some(Arc::new(move || clock.load(Ordering::SeqCst))),
    )
    .await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    let developer = key(&app, Role::Developer, "dev").await;
    let id = pending_approval(&app, &developer, "salesforce").await;
    let (_, approval) = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(approval["expires_at"], 1_700_000_000_000_i64 + 3_600_000, "{approval}");

    now.fetch_add(3_600_000 - 1, Ordering::SeqCst);
    let (_, approval) = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(approval["status"], "pending", "one millisecond before the end: {approval}");

    now.fetch_add(1, Ordering::SeqCst);
    let (_, approval) = app.get(&format!("/v1/approvals/{id}")).await;
    assert_eq!(approval["status"], "expired", "{approval}");
    assert_eq!(approval["decided_by"], "system");
    let (_, tools) = app.get("/v1/tools?server=salesforce").await;
    assert_eq!(tools["tools"][0]["status"], "blocked", "{tools}");
    let (status, body) = app.post(&format!("/v1/approvals/{id}/approve"), &json!({})).await;
    assert_error(status, &body, 409, "approval_not_pending");
    let (_, log) = app.get("/v1/audit-logs?event=APPROVAL_EXPIRED").await;
    assert_eq!(log["entries"][0]["actor"], "system", "{log}");
    assert_eq!(log["entries"][0]["after"]["tool_status"], "blocked");

    // A changed definition asks again.
    let mut changed = salesforce_create_task();
    changed["description"] = json!("Create a Salesforce task (an activity) on a contact.");
    let body = json!({"environment": "prod", "server": "salesforce", "tools": [changed]});
    let (_, registered) = send(&app, Some(&developer), Method::POST, "/v1/tools", Some(&body)).await;
    assert_eq!(registered["tools"][0]["status"], "pending_approval", "{registered}");
    assert_ne!(registered["tools"][0]["approval"], json!(id));
}

#[tokio::test]
async fn the_service_refuses_what_the_role_does_not_allow_whatever_the_surface() {
    // The HTTP layer is not the only guard: a service acting for a weaker role refuses too.
    let app = spawn_app().await;
    app.register("prod", "jira", json!([jira_create_task()])).await;
    app.register("prod", "jira-cloud", json!([jira_create_task()])).await;
    let as_role = |role: Role| app.service.acting_as(Principal { role, ..Principal::local("someone") });
    let error = as_role(Role::Viewer).create_api_key(None, Role::Admin).await.expect_err("refused");
    assert!(error.to_string().contains("may not manage API keys"), "{error}");
    let error = as_role(Role::Developer).approve(1, None).await.expect_err("refused");
    assert!(error.to_string().contains("takes role reviewer or admin"), "{error}");
    let error = as_role(Role::CiAgent).audit_log(&Default::default()).await.expect_err("refused");
    assert!(error.to_string().contains("may not read the audit log"), "{error}");

    // Developers acknowledge; suppressing takes a reviewer, at the service and over HTTP.
    let developer = as_role(Role::Developer);
    let conflict = developer
        .conflicts(&mtgs_core::EnvironmentName::parse("prod").expect("a name"), &Default::default())
        .await
        .expect("listed")[0]
        .id;
    developer.set_conflict_status(conflict, mtgs_core::ConflictStatus::Acknowledged).await.expect("acknowledged");
    let error =
        developer.set_conflict_status(conflict, mtgs_core::ConflictStatus::Suppressed).await.expect_err("refused");
    assert!(error.to_string().contains("suppress"), "{error}");
    let token = key(&app, Role::Developer, "dev").await;
    let path = format!("/v1/conflicts/{conflict}");
    let (status, body) = send(&app, Some(&token), Method::PATCH, &path, Some(&json!({"status": "suppressed"}))).await;
    assert_error(status, &body, 403, "forbidden");
    let reviewer = key(&app, Role::Reviewer, "rev").await;
    let (status, body) =
        send(&app, Some(&reviewer), Method::PATCH, &path, Some(&json!({"status": "suppressed"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
