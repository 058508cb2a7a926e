//! The real `mtgs` binary, in local mode on a temp data directory and in remote mode
//! against a server spawned in this process on port 0. Exit codes are asserted; output is
//! snapshotted with temp paths and ports filtered out.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use mtgs_server::{Application, ServerSettings};
use mtgs_service::ServiceSettings;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A temp directory holding the fixtures and, in local mode, the database.
struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Self {
        let workspace = Workspace { dir: tempfile::tempdir().expect("a temp dir") };
        workspace.write("jira.json", &jira_create_task());
        workspace.write("salesforce.json", &json!({"tools": [salesforce_create_task()]}));
        workspace.write("weather.json", &json!([weather_forecast()]));
        workspace
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, value.to_string()).expect("fixture written");
        path
    }

    /// `mtgs` in local mode on this workspace's data directory, with a clean environment.
    fn mtgs(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mtgs"));
        for name in ["MTGS_URL", "MTGS_TOKEN", "MTGS_DATABASE_URL", "MTGS_BIND", "MTGS_LOG"] {
            command.env_remove(name);
        }
        command.env("NO_COLOR", "1").env("MTGS_DATA_DIR", self.path("data")).current_dir(self.dir.path());
        command
    }

    /// `mtgs` against a server, with its admin key.
    fn mtgs_at(&self, server: &Server) -> Command {
        self.mtgs_url(&server.url, Some(&server.admin_key))
    }

    /// `mtgs` against the server at `url`, with `token` if any.
    fn mtgs_url(&self, url: &str, token: Option<&str>) -> Command {
        let mut command = self.mtgs();
        command.env("MTGS_URL", url);
        if let Some(token) = token {
            command.env("MTGS_TOKEN", token);
        }
        command
    }

    /// Replaces what changes from run to run: the temp directory and ports.
    fn filter(&self, text: &str) -> String {
        let text = text.replace(&self.dir.path().display().to_string(), "[TEMP]");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find("127.0.0.1:") {
            let (before, after) = rest.split_at(at + "127.0.0.1:".len());
            out.push_str(before);
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            out.push_str("[PORT]");
            rest = &after[digits..];
        }
        out.push_str(rest);
        out
    }
}

/// Runs a command and returns (exit code, stdout, stderr).
fn run(command: &mut Command) -> (i32, String, String) {
    let output = command.output().expect("mtgs runs");
    let code = output.status.code().expect("an exit code, not a signal");
    (code, String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A server on 127.0.0.1 with its own database, running on its own runtime until dropped.
struct Server {
    url: String,
    /// An admin's API key, created through the service before the first request.
    admin_key: String,
    _runtime: tokio::runtime::Runtime,
    _data_dir: Option<TempDir>,
}

fn spawn_server() -> Server {
    let data_dir = tempfile::tempdir().expect("a temp dir");
    let mut server = spawn_server_on(data_dir.path());
    server._data_dir = Some(data_dir);
    server
}

/// A server on the database in `data_dir` (shared with local-mode commands).
fn spawn_server_on(data_dir: &std::path::Path) -> Server {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let settings = ServerSettings {
        bind: "127.0.0.1:0".to_owned(),
        service: ServiceSettings {
            database_url: format!("sqlite://{}", data_dir.join("mtgs.db").display()),
            job_poll_interval: Duration::from_millis(20),
            job_lease: Duration::from_secs(30),
            semantic: None,
            behavioural: Some(mtgs_service::BehaviouralSettings::local()),
            approval_ttl: mtgs_service::DEFAULT_APPROVAL_TTL,
            tool_source: None,
            sync_interval: None,
        },
        auth: mtgs_server::AuthSettings { jwt: None, rate_limit: None },
    };
    let app = runtime.block_on(Application::build(&settings)).expect("the server builds");
    let url = format!("http://127.0.0.1:{}", app.port());
    let operator = app.service().acting_as(mtgs_core::Principal::local("tests"));
    let (_, admin_key) =
        runtime.block_on(operator.create_api_key(Some("tests"), mtgs_core::Role::Admin)).expect("an admin key");
    runtime.spawn(app.run_until_stopped(std::future::pending()));
    Server { url, admin_key: admin_key.expose().to_owned(), _runtime: runtime, _data_dir: None }
}

fn jira_create_task() -> Value {
    json!({
        "name": "create_task",
        "description": "Create a new Jira issue of type Task in the given project.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "project": {"type": "string", "description": "Project key, e.g. OPS"},
                "summary": {"type": "string", "description": "One-line summary of the task"}
            },
            "required": ["project", "summary"]
        }
    })
}

fn salesforce_create_task() -> Value {
    json!({
        "name": "create_task",
        "description": "Create a Salesforce task activity linked to a contact or opportunity record.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "subject": {"type": "string", "description": "Subject line of the task"},
                "what_id": {"type": "string", "description": "Id of the related record"}
            },
            "required": ["subject"]
        }
    })
}

fn weather_forecast() -> Value {
    json!({
        "name": "get_weather_forecast",
        "description": "Return the hourly weather forecast for a city over the next three days.",
        "inputSchema": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. Lisbon"}},
            "required": ["city"]
        }
    })
}

fn file(workspace: &Workspace, name: &str) -> String {
    workspace.path(name).display().to_string()
}

/// Registers the seed's Jira tool in `prod`.
fn register_jira(workspace: &Workspace, command: &mut Command) {
    let (code, stdout, stderr) = run(command.args([
        "tools",
        "register",
        "--env",
        "prod",
        "--server",
        "jira",
        "--file",
        &file(workspace, "jira.json"),
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
}

fn parse_json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {stdout}"))
}

fn has_seed_conflict(conflicts: &Value) -> bool {
    conflicts.as_array().is_some_and(|conflicts| {
        conflicts.iter().any(|conflict| {
            conflict["kind"] == "exact_name"
                && conflict["severity"] == "critical"
                && conflict["tool_a"] == json!({"server": "salesforce", "name": "create_task"})
                && conflict["tool_b"] == json!({"server": "jira", "name": "create_task"})
        })
    })
}

// ---------------------------------------------------------------- local mode

#[test]
fn check_passes_with_exit_0_in_an_empty_environment() {
    let workspace = Workspace::new();
    let (code, stdout, stderr) =
        run(workspace.mtgs().args(["tools", "check", "--env", "prod", "--file", &file(&workspace, "weather.json")]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    insta::assert_snapshot!("check_pass_stdout", stdout);
    assert_eq!(stderr, "");
}

#[test]
fn the_seed_example_blocks_with_exit_1_and_shows_the_conflict() {
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs());

    // The server name defaults to the file's stem: salesforce.json → salesforce.
    let (code, stdout, stderr) =
        run(workspace.mtgs().args(["tools", "check", "--env", "prod", "--file", &file(&workspace, "salesforce.json")]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    insta::assert_snapshot!("check_block_stdout", stdout);

    let (code, stdout, _) = run(workspace.mtgs().args([
        "tools",
        "check",
        "--env",
        "prod",
        "--file",
        &file(&workspace, "salesforce.json"),
        "--format",
        "json",
    ]));
    assert_eq!(code, 1);
    let body = parse_json(&stdout);
    assert_eq!(body["verdict"], "block");
    assert!(has_seed_conflict(&body["conflicts"]), "{body}");
}

#[test]
fn check_reads_the_tools_from_stdin_as_server_local() {
    let workspace = Workspace::new();
    let (code, stdout, stderr) = run(workspace
        .mtgs()
        .args(["tools", "check", "--env", "prod", "--file", "-", "--format", "json"])
        .write_stdin(json!([weather_forecast()]).to_string()));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(parse_json(&stdout)["verdict"], "pass");
}

#[test]
fn an_invalid_file_exits_2_naming_the_field() {
    let workspace = Workspace::new();
    let bad = workspace.write("bad.json", &json!([weather_forecast(), {"inputSchema": {"type": "object"}}]));
    let (code, stdout, stderr) =
        run(workspace.mtgs().args(["tools", "check", "--env", "prod", "--file", &bad.display().to_string()]));
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    insta::assert_snapshot!("invalid_file_stderr", workspace.filter(&stderr));
    assert!(!workspace.path("data").exists(), "a refused file touches no database");
}

#[test]
fn a_file_that_is_not_json_or_is_missing_exits_2() {
    let workspace = Workspace::new();
    std::fs::write(workspace.path("broken.json"), "{\"name\": ").expect("written");
    let (code, _, stderr) =
        run(workspace.mtgs().args(["tools", "register", "--env", "prod", "--server", "x", "--file", "broken.json"]));
    assert_eq!(code, 2);
    insta::assert_snapshot!("not_json_stderr", stderr);

    let (code, _, stderr) = run(workspace.mtgs().args(["tools", "check", "--env", "prod", "--file", "missing.json"]));
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: cannot read missing.json: "), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let workspace = Workspace::new();
    let (code, _, stderr) = run(workspace.mtgs().args(["conflicts", "list", "--env", "prod", "--severity", "urgent"]));
    assert_eq!(code, 2);
    insta::assert_snapshot!("bad_severity_stderr", stderr);
    let (code, _, _) = run(workspace.mtgs().args(["tools", "check", "--env", "pro d", "--file", "jira.json"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(workspace.mtgs().args(["frobnicate"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(workspace.mtgs().args(["--url", "ftp://example", "health", "--env", "prod"]));
    assert_eq!(code, 2);
}

#[test]
fn help_documents_the_exit_codes() {
    let workspace = Workspace::new();
    let (code, stdout, _) = run(workspace.mtgs().arg("--help"));
    assert_eq!(code, 0);
    assert!(stdout.contains("Exit codes:") && stdout.contains("3  the server or the database"), "{stdout}");
}

#[test]
fn conflicts_list_of_an_unknown_environment_exits_2() {
    let workspace = Workspace::new();
    let (code, stdout, stderr) = run(workspace.mtgs().args(["conflicts", "list", "--env", "nowhere"]));
    assert_eq!(code, 2, "{stdout}");
    insta::assert_snapshot!("unknown_environment_stderr", stderr);
}

#[test]
fn registration_listing_and_triage_work_locally() {
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs());
    let (code, stdout, _) = run(workspace.mtgs().args([
        "tools",
        "register",
        "--env",
        "prod",
        "--server",
        "salesforce",
        "--file",
        &file(&workspace, "salesforce.json"),
        "--format",
        "json",
    ]));
    assert_eq!(code, 1, "a tool held for approval is a block verdict: {stdout}");
    let body = parse_json(&stdout);
    assert_eq!(body["tools"][0]["status"], "pending_approval");
    let id = body["tools"][0]["conflicts"][0]["id"].as_i64().expect("a tracked conflict");

    let (code, stdout, _) = run(workspace.mtgs().args(["tools", "list", "--env", "prod", "--format", "json"]));
    assert_eq!(code, 0);
    assert_eq!(parse_json(&stdout)["tools"].as_array().map(Vec::len), Some(2));
    let (code, stdout, _) =
        run(workspace.mtgs().args(["tools", "list", "--env", "prod", "--status", "pending_approval"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("salesforce") && !stdout.contains("jira"), "{stdout}");

    let (code, stdout, _) =
        run(workspace.mtgs().args(["conflicts", "list", "--env", "prod", "--severity", "critical"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("exact_name") && stdout.contains("jira/create_task"), "{stdout}");

    let (code, stdout, _) = run(workspace.mtgs().args(["conflicts", "show", &id.to_string()]));
    assert_eq!(code, 0);
    assert!(stdout.contains("evidence:"), "{stdout}");

    let (code, stdout, _) =
        run(workspace.mtgs().args(["conflicts", "set-status", &id.to_string(), "suppressed", "--format", "json"]));
    assert_eq!(code, 0);
    assert_eq!(parse_json(&stdout)["status"], "suppressed");

    // A suppressed conflict no longer blocks.
    let (code, stdout, _) =
        run(workspace.mtgs().args(["tools", "check", "--env", "prod", "--file", &file(&workspace, "salesforce.json")]));
    assert_eq!(code, 0, "{stdout}");

    let (code, _, stderr) = run(workspace.mtgs().args(["conflicts", "show", "999"]));
    assert_eq!(code, 2);
    assert_eq!(stderr, "error: conflict '999' does not exist\n");
}

/// `conflicts fix` lists verified fixes; `--apply` registers the chosen patched
/// definition, which is held for approval like any change with a blocking conflict.
#[test]
fn conflicts_fix_lists_verified_fixes_and_applies_one_through_registration() {
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs());
    let salesforce = file(&workspace, "salesforce.json");
    let (_, stdout, _) = run(workspace
        .mtgs()
        .args(["tools", "register", "--env", "prod", "--server", "salesforce"])
        .args(["--file", &salesforce, "--format", "json"]));
    let id = parse_json(&stdout)["tools"][0]["conflicts"][0]["id"].as_i64().expect("a tracked conflict");

    let (code, stdout, stderr) = run(workspace.mtgs().args(["conflicts", "fix", &id.to_string(), "--format", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let body = parse_json(&stdout);
    assert_eq!(body["conflict"], id);
    let fixes = body["recommendations"].as_array().expect("a list");
    assert!(!fixes.is_empty(), "{body}");
    for fix in fixes {
        let verification = &fix["verification"];
        assert_eq!(verification["severity_before"], "critical", "{fix}");
        assert!(verification["resolves"].is_boolean() && verification["new_conflicts"].is_array(), "{fix}");
    }
    let kinds: Vec<&str> = fixes.iter().filter_map(|fix| fix["kind"].as_str()).collect();
    assert!(kinds.contains(&"rename") && kinds.contains(&"description_rewrite"), "{kinds:?}");
    let rename = fixes
        .iter()
        .position(|fix| fix["kind"] == "rename" && fix["target"]["server"] == "salesforce")
        .expect("a rename of Salesforce's tool");
    assert_eq!(fixes[rename]["patched_tool"]["name"], "salesforce_create_task", "{}", fixes[rename]);

    let (code, stdout, _) = run(workspace.mtgs().args(["conflicts", "fix", &id.to_string()]));
    assert_eq!(code, 0);
    assert!(stdout.contains("salesforce_create_task") && stdout.contains("critical →"), "{stdout}");

    // Applying registers the renamed tool: still HIGH against Jira's (same core name), so
    // it waits for approval, exit 1.
    let pick = (rename + 1).to_string();
    let (code, stdout, stderr) = run(workspace
        .mtgs()
        .args(["conflicts", "fix", &id.to_string(), "--apply"])
        .args(["--pick", &pick, "--format", "json"]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let registered = parse_json(&stdout);
    assert_eq!(registered["tools"][0]["name"], "salesforce_create_task", "{registered}");
    assert_eq!(registered["tools"][0]["status"], "pending_approval", "{registered}");

    let (code, _, stderr) =
        run(workspace.mtgs().args(["conflicts", "fix", &id.to_string(), "--apply", "--pick", "99"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("--pick 99"), "{stderr}");
}

/// Every change lands in the hash-chained audit log; the database refuses edits, and an
/// edit made anyway (triggers dropped by hand) is found by `mtgs audit verify`.
#[test]
fn the_audit_log_records_changes_exports_json_and_cef_and_verify_finds_a_tampered_row() {
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs());
    let salesforce = file(&workspace, "salesforce.json");
    let (code, stdout, _) = run(workspace.mtgs().args([
        "tools",
        "register",
        "--env",
        "prod",
        "--server",
        "salesforce",
        "--file",
        &salesforce,
        "--format",
        "json",
    ]));
    assert_eq!(code, 1, "{stdout}");
    let id = parse_json(&stdout)["tools"][0]["conflicts"][0]["id"].as_i64().expect("a conflict");
    let (code, _, _) = run(workspace.mtgs().args(["conflicts", "set-status", &id.to_string(), "suppressed"]));
    assert_eq!(code, 0);
    let (code, _, _) = run(workspace.mtgs().args(["analyze", "--env", "prod"]));
    assert_eq!(code, 0);

    let (code, stdout, _) = run(workspace.mtgs().args(["audit", "export", "--format", "json"]));
    assert_eq!(code, 0);
    let entries: Vec<Value> = stdout.lines().map(parse_json).collect();
    let events: Vec<&str> = entries.iter().filter_map(|entry| entry["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "TOOL_REGISTERED",
            "TOOL_REGISTERED",
            "CONFLICT_DETECTED",
            "APPROVAL_REQUESTED",
            "CONFLICT_STATUS_CHANGED",
            "ANALYSIS_RUN_STARTED",
            "ANALYSIS_RUN_COMPLETED"
        ],
        "{stdout}"
    );
    assert_eq!(entries[4]["before"], json!({"status": "open"}));
    assert_eq!(entries[4]["after"], json!({"status": "suppressed"}));
    assert!(entries.iter().all(|entry| entry["actor"].as_str().is_some_and(|actor| actor.starts_with("local:"))));
    assert_eq!(entries[1]["subject"], "salesforce/create_task");
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }

    let (code, stdout, _) =
        run(workspace.mtgs().args(["audit", "export", "--format", "cef", "--event", "CONFLICT_STATUS_CHANGED"]));
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let cef = mtgs_core::parse_cef(lines[0]).expect("a CEF line");
    assert_eq!(
        cef.header[..5],
        ["MTGS", "MCPToolGovernance", env!("CARGO_PKG_VERSION"), "CONFLICT_STATUS_CHANGED", "Conflict status changed"]
    );
    assert!(cef.extensions.contains(&("cs2".to_owned(), format!("conflict {id}"))), "{cef:?}");

    let (code, stdout, _) = run(workspace.mtgs().args(["audit", "verify"]));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("intact: 7 entries"), "{stdout}");

    // The database refuses edits; an intruder who drops the triggers is caught anyway.
    let database = workspace.path("data").join("mtgs.db");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display())).await.expect("opens");
        let refused = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2").execute(&pool).await;
        assert!(refused.is_err_and(|error| error.to_string().contains("append-only")));
        assert!(sqlx::query("DELETE FROM audit_log WHERE seq = 1").execute(&pool).await.is_err());
        sqlx::query("DROP TRIGGER audit_log_refuses_update").execute(&pool).await.expect("dropped");
        sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4").execute(&pool).await.expect("edited");
        pool.close().await;
    });
    let (code, stdout, _) = run(workspace.mtgs().args(["audit", "verify"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("broken at entry 4") && stdout.contains("edited"), "{stdout}");
}

#[test]
fn audit_verify_and_export_work_over_http() {
    let server = spawn_server();
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs_at(&server));
    let (code, stdout, stderr) = run(workspace.mtgs_at(&server).args(["audit", "verify"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The server's admin key, then the registration.
    assert!(stdout.contains("intact: 2 entries"), "{stdout}");
    let (code, stdout, _) = run(workspace.mtgs_at(&server).args(["audit", "export", "--format", "cef"]));
    assert_eq!(code, 0);
    let records: Vec<mtgs_core::CefRecord> =
        stdout.lines().map(|line| mtgs_core::parse_cef(line).expect("a CEF line")).collect();
    assert_eq!(
        records.iter().map(|record| record.header[3].as_str()).collect::<Vec<_>>(),
        ["API_KEY_CREATED", "TOOL_REGISTERED"]
    );
    assert!(
        records[1].extensions.contains(&("suser".to_owned(), format!("key:{}", &server.admin_key[..13]))),
        "{records:?}"
    );
    let (code, stdout, _) = run(workspace.mtgs_at(&server).args(["audit", "export", "--event", "TOOL_REGISTERED"]));
    assert_eq!(code, 0);
    assert_eq!(parse_json(stdout.trim())["subject"], "jira/create_task");
    assert!(!workspace.path("data").exists(), "remote mode opens no local database");
}

#[test]
fn analyze_and_health_work_locally() {
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs());
    let (code, stdout, stderr) = run(workspace.mtgs().args(["analyze", "--env", "prod", "--format", "json"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let run_body = parse_json(&stdout);
    assert_eq!(run_body["status"], "succeeded");
    assert_eq!(run_body["environment"], "prod");

    let (code, stdout, _) = run(workspace.mtgs().args(["health", "--env", "prod"]));
    assert_eq!(code, 0);
    insta::assert_snapshot!("health_stdout", stdout);

    let (code, _, _) = run(workspace.mtgs().args(["analyze", "--env", "nowhere"]));
    assert_eq!(code, 2);
}

#[test]
fn a_database_that_cannot_be_opened_exits_3() {
    let workspace = Workspace::new();
    // The data directory is a file: nothing can be created inside it.
    std::fs::write(workspace.path("data"), "").expect("written");
    let (code, _, stderr) = run(workspace.mtgs().args(["health", "--env", "prod"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.starts_with("error: cannot create the data directory"), "{stderr}");
}

// ---------------------------------------------------------------- remote mode

#[test]
fn the_seed_example_blocks_over_http_with_exit_1() {
    let server = spawn_server();
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs_at(&server));

    let (code, stdout, stderr) = run(workspace.mtgs_at(&server).args([
        "tools",
        "check",
        "--env",
        "prod",
        "--file",
        &file(&workspace, "salesforce.json"),
    ]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    insta::assert_snapshot!("check_block_stdout", stdout);
    assert!(!workspace.path("data").exists(), "remote mode opens no local database");
}

#[test]
fn local_and_remote_json_output_agree() {
    let server = spawn_server();
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs_at(&server));
    register_jira(&workspace, &mut workspace.mtgs());
    let check = ["tools", "check", "--env", "prod", "--format", "json", "--file"];
    let salesforce = file(&workspace, "salesforce.json");
    let (_, remote, _) = run(workspace.mtgs_at(&server).args(check).arg(&salesforce));
    let (_, local, _) = run(workspace.mtgs().args(check).arg(&salesforce));
    assert_eq!(parse_json(&remote), parse_json(&local));
}

#[test]
fn an_unknown_environment_over_http_exits_2() {
    let server = spawn_server();
    let workspace = Workspace::new();
    let (code, _, stderr) = run(workspace.mtgs_at(&server).args(["conflicts", "list", "--env", "nowhere"]));
    assert_eq!(code, 2);
    insta::assert_snapshot!("unknown_environment_stderr", stderr);
}

#[test]
fn analyze_over_http_polls_the_run_until_it_finishes() {
    let server = spawn_server();
    let workspace = Workspace::new();
    register_jira(&workspace, &mut workspace.mtgs_at(&server));
    let (code, stdout, stderr) = run(workspace.mtgs_at(&server).args(["analyze", "--env", "prod", "--format", "json"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let run_body = parse_json(&stdout);
    assert_eq!(run_body["status"], "succeeded", "{run_body}");
    assert_eq!(run_body["progress"]["done"], run_body["progress"]["total"]);
}

#[test]
fn an_unreachable_url_exits_3() {
    // A port that was free a moment ago; nothing listens on it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    let workspace = Workspace::new();
    let url = format!("http://127.0.0.1:{port}");
    let (code, stdout, stderr) = run(workspace.mtgs_url(&url, None).args(["health", "--env", "prod"]));
    assert_eq!(code, 3, "{stdout}");
    let first_line = workspace.filter(&stderr);
    assert!(first_line.starts_with("error: cannot reach the mtgs server at http://127.0.0.1:[PORT]: "), "{stderr}");
}

#[cfg(unix)]
#[test]
fn serve_prints_its_address_answers_and_stops_gracefully_on_sigterm() {
    let workspace = Workspace::new();
    let (code, key, stderr) = run(workspace.mtgs().args(["keys", "create", "--role", "viewer"]));
    assert_eq!(code, 0, "{stderr}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mtgs"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(workspace.path("data"))
        .env_remove("MTGS_URL")
        .env_remove("MTGS_DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mtgs serve starts");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("a line");
    let url = line.trim().strip_prefix("mtgs listening on ").map(str::to_owned);
    let (code, stdout, stderr) = match &url {
        Some(url) => run(workspace.mtgs_url(url, Some(key.trim())).args(["health", "--env", "nowhere"])),
        None => (-1, line.clone(), String::new()),
    };
    let terminated = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().expect("mtgs serve stops");
    assert_eq!(workspace.filter(&line), "mtgs listening on http://127.0.0.1:[PORT]\n");
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(terminated.is_ok_and(|status| status.success()), "kill -TERM failed");
    assert_eq!(status.code(), Some(0), "SIGTERM is a graceful shutdown");
    assert!(workspace.path("data").join("mtgs.db").exists());
}

/// A two-server corpus: one labelled conflict it finds (the seed example), one labelled
/// conflict it cannot find by name, one labelled non-conflict it rightly leaves alone.
fn eval_fixture(workspace: &Workspace) {
    std::fs::create_dir_all(workspace.path("corpus")).expect("corpus dir");
    workspace.write("corpus/jira.json", &json!({"tools": [jira_create_task(), weather_forecast()]}));
    let mut crm_note = weather_forecast();
    crm_note["name"] = json!("log_activity");
    crm_note["description"] = json!("Record a note against a Salesforce account");
    workspace.write("corpus/salesforce.json", &json!({"tools": [salesforce_create_task(), crm_note]}));
    let key = |server: &str, name: &str| json!({"server": server, "name": name});
    workspace.write(
        "labels.json",
        &json!({"version": 1, "pairs": [
            {"id": "p1", "a": key("jira", "create_task"), "b": key("salesforce", "create_task"), "conflict": true, "reason": "same job"},
            {"id": "p2", "a": key("jira", "create_task"), "b": key("salesforce", "log_activity"), "conflict": true, "reason": "hidden"},
            {"id": "p3", "a": key("jira", "get_weather_forecast"), "b": key("salesforce", "create_task"), "conflict": false, "reason": "unrelated"},
        ], "probes": []}),
    );
}

#[test]
fn eval_scores_the_pipeline_on_a_labelled_corpus() {
    let workspace = Workspace::new();
    eval_fixture(&workspace);
    let (code, stdout, stderr) = run(workspace.mtgs().args([
        "eval",
        "--corpus",
        "corpus",
        "--labels",
        "labels.json",
        "--half",
        "all",
        "--format",
        "json",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let report = &parse_json(&stdout)["report"];
    let overall = &report["overall"];
    assert_eq!(
        (overall["true_positives"].as_u64(), overall["false_positives"].as_u64(), overall["false_negatives"].as_u64()),
        (Some(1), Some(0), Some(1))
    );
    assert_eq!(report["false_negatives"][0]["id"], "p2");
}

#[test]
fn eval_exits_1_below_its_floors_and_2_on_labels_naming_unknown_tools() {
    let workspace = Workspace::new();
    eval_fixture(&workspace);
    workspace.write(
        "floors.json",
        &json!({"half": "all", "seed": 1, "min_severity": "medium", "precision": 1.0, "recall": 0.9, "f1": 0.0}),
    );
    let (code, _, stderr) = run(workspace.mtgs().args([
        "eval",
        "--corpus",
        "corpus",
        "--labels",
        "labels.json",
        "--floors",
        "floors.json",
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("recall 0.500 < floor 0.900"), "{stderr}");

    let mut labels: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace.path("labels.json")).expect("read")).expect("json");
    labels["pairs"][0]["b"]["name"] = json!("nope");
    workspace.write("labels.json", &labels);
    let (code, _, stderr) = run(workspace.mtgs().args(["eval", "--corpus", "corpus", "--labels", "labels.json"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("'p1' names salesforce/nope, which the corpus does not hold"), "{stderr}");
}

/// Stage 3 with the real all-MiniLM-L6-v2 files (`MTGS_EMBED_MODEL_DIR`, which
/// `scripts/test` sets): two tools whose names share no word but do the same job.
#[test]
fn tools_that_share_no_word_but_do_the_same_job_are_a_semantic_conflict() {
    let Some(model) = std::env::var_os("MTGS_EMBED_MODEL_DIR") else {
        panic!("set MTGS_EMBED_MODEL_DIR=$(scripts/fetch-model) to run the stage 3 tests");
    };
    let workspace = Workspace::new();
    let reader = json!([{"name": "read_file",
        "description": "Read the complete contents of a file from the file system.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]);
    let opener = json!([{"name": "document_text",
        "description": "Open a file on disk and return its full text content.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]);
    let local = |command: &mut Command| {
        command.env("MTGS_EMBEDDER", "local").env("MTGS_EMBED_MODEL_DIR", &model);
    };
    let mut register = workspace.mtgs();
    local(&mut register);
    let path = workspace.write("filesystem.json", &reader).display().to_string();
    let (code, stdout, stderr) =
        run(register.args(["tools", "register", "--env", "prod", "--server", "filesystem", "--file", &path]));
    assert_eq!(code, 0, "{stdout}{stderr}");

    let path = workspace.write("disk.json", &opener).display().to_string();
    let mut check = workspace.mtgs();
    local(&mut check);
    let (code, stdout, stderr) =
        run(check.args(["tools", "check", "--env", "prod", "--file", &path, "--format", "json"]));
    assert_eq!(code, 0, "MEDIUM does not block: {stdout}{stderr}");
    let body = parse_json(&stdout);
    let semantic: Vec<&Value> =
        body["conflicts"].as_array().into_iter().flatten().filter(|c| c["stage"] == "semantic").collect();
    assert_eq!(semantic.len(), 1, "{body}");
    assert_eq!(semantic[0]["severity"], "medium", "{body}");
    assert_eq!(semantic[0]["evidence"]["mutual_nearest"], true, "{body}");
    assert!(semantic[0]["evidence"]["similarity"].as_f64().is_some_and(|s| s > 0.55), "{body}");

    // With stage 3 off, nothing links the two.
    let (code, stdout, _) = run(workspace
        .mtgs()
        .env("MTGS_EMBEDDER", "off")
        .args(["tools", "check", "--env", "prod", "--file", &path, "--format", "json"]));
    assert_eq!(code, 0);
    assert_eq!(parse_json(&stdout)["conflicts"], json!([]), "{stdout}");
}

/// The seed's promise, end to end with the real model: with a generic `create_task`
/// registered, simulating a terse Salesforce task tool shows which Salesforce requests
/// still go to Jira, and the verdict blocks (exit 1).
#[test]
fn simulate_shows_which_salesforce_requests_still_go_to_jira_and_blocks() {
    let Some(model) = std::env::var_os("MTGS_EMBED_MODEL_DIR") else {
        panic!("set MTGS_EMBED_MODEL_DIR=$(scripts/fetch-model) to run the routing tests");
    };
    let workspace = Workspace::new();
    let jira = workspace.write(
        "tracker.json",
        &json!([{"name": "create_task", "description": "Create a new task with a title, description and priority.",
                 "inputSchema": {"type": "object", "required": ["title"], "properties": {
                     "title": {"type": "string", "description": "Task title"},
                     "priority": {"type": "string", "enum": ["highest", "high", "medium", "low"]}}}}]),
    );
    let salesforce = workspace.write(
        "crm.json",
        &json!([{"name": "create_sf_task", "description": "Creates a task.",
                 "inputSchema": {"type": "object", "required": ["subject"], "properties": {
                     "subject": {"type": "string"},
                     "priority": {"type": "string", "enum": ["High", "Normal", "Low"]},
                     "who_id": {"type": "string", "description": "Lead or contact id"}}}}]),
    );
    let probes = workspace.write(
        "probes.json",
        &json!([{"query": "Create a Salesforce task to call back the Acme lead tomorrow",
                 "expected": {"server": "salesforce", "name": "create_sf_task"}}]),
    );
    let mtgs = || {
        let mut command = workspace.mtgs();
        command.env("MTGS_EMBEDDER", "local").env("MTGS_EMBED_MODEL_DIR", &model);
        command
    };
    let (code, stdout, stderr) =
        run(mtgs().args(["tools", "register", "--env", "prod", "--server", "jira", "--file"]).arg(&jira));
    assert_eq!(code, 0, "{stdout}{stderr}");

    let simulate = |format: &str| {
        run(mtgs()
            .args(["simulate", "--env", "prod", "--server", "salesforce", "--format", format, "--file"])
            .arg(&salesforce)
            .arg("--probes")
            .arg(&probes))
    };
    let (code, stdout, stderr) = simulate("json");
    assert_eq!(code, 1, "the verdict blocks: {stdout}{stderr}");
    let report = parse_json(&stdout);
    assert_eq!(report["verdict"], "block", "{report:#}");
    let jira_key = json!({"server": "jira", "name": "create_task"});
    let still_to_jira: Vec<&Value> = report["candidate_probes"]
        .as_array()
        .expect("the candidate's probes")
        .iter()
        .filter(|probe| probe["routed_after"] == jira_key)
        .collect();
    assert!(!still_to_jira.is_empty(), "{report:#}");
    assert_eq!(report["pairs"][0]["existing"], jira_key, "{report:#}");
    // Supplied probes: routed before and after, with top-1 accuracy.
    let supplied = &report["probes"][0];
    assert_eq!(supplied["expected"], json!({"server": "salesforce", "name": "create_sf_task"}));
    assert_eq!(supplied["routed_before"], jira_key, "nothing else could take it before");
    assert_eq!(supplied["routed_after"], supplied["expected"], "{report:#}");
    assert_eq!(report["accuracy"], 1.0);

    let (code, stdout, _) = simulate("table");
    assert_eq!(code, 1);
    assert!(stdout.contains("verdict: block"), "{stdout}");
    assert!(stdout.contains("not an LLM"), "{stdout}");
    for probe in still_to_jira {
        assert!(stdout.contains(probe["query"].as_str().expect("text")), "{stdout}");
    }

    // Without --file the probes are routed against the environment as it is.
    let (code, stdout, stderr) =
        run(mtgs().args(["simulate", "--env", "prod", "--format", "json", "--probes"]).arg(&probes));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = parse_json(&stdout);
    assert_eq!(report["probes"][0]["routed_after"], jira_key);
    assert_eq!(report["accuracy"], 0.0);

    // Bad probes exit 2 naming the field.
    let bad = workspace.write("bad.json", &json!([{"query": "x", "expected": {"server": "s"}}]));
    let (code, _, stderr) = run(mtgs().args(["simulate", "--env", "prod", "--probes"]).arg(&bad));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("probes[0].expected.name"), "{stderr}");
}

/// A local stand-in for an OpenAI-compatible embeddings API: every text gets the same
/// vector, and each request's `Authorization` header is recorded.
fn spawn_embeddings_stub() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>, tokio::runtime::Runtime) {
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a port");
    let url = format!("http://{}/v1", listener.local_addr().expect("an address"));
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let recorded = recorded.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                recorded.lock().expect("lock").push(auth.to_owned());
                let inputs = body["input"].as_array().cloned().unwrap_or_default();
                let data: Vec<Value> = (0..inputs.len())
                    .map(|index| json!({"object": "embedding", "index": index, "embedding": [0.5, 0.5, 0.5, 0.5]}))
                    .collect();
                axum::Json(json!({"object": "list", "data": data, "model": body["model"],
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    (url, seen, runtime)
}

#[test]
fn a_remote_embeddings_provider_runs_stage_3_and_its_outage_leaves_stages_1_and_2() {
    let (url, seen, _runtime) = spawn_embeddings_stub();
    let workspace = Workspace::new();
    let remote = |command: &mut Command, url: &str| {
        command
            .env("MTGS_EMBEDDER", "openai")
            .env("MTGS_EMBED_URL", url)
            .env("MTGS_EMBED_MODEL", "stub-embed")
            .env("MTGS_EMBED_DIMENSIONS", "4")
            .env("MTGS_EMBED_API_KEY", "sk-test-secret");
    };
    let first = json!([{"name": "alpha_widget", "description": "Alpha.", "inputSchema": {"type": "object"}}]);
    let second = json!([{"name": "beta_gadget", "description": "Beta.", "inputSchema": {"type": "object"}}]);
    let mut register = workspace.mtgs();
    remote(&mut register, &url);
    let path = workspace.write("one.json", &first).display().to_string();
    let (code, stdout, stderr) =
        run(register.args(["tools", "register", "--env", "prod", "--server", "one", "--file", &path]));
    assert_eq!(code, 0, "{stdout}{stderr}");

    // Identical vectors: similarity 1.0 across servers is HIGH, which blocks.
    let path = workspace.write("two.json", &second).display().to_string();
    let mut check = workspace.mtgs();
    remote(&mut check, &url);
    let (code, stdout, stderr) =
        run(check.args(["tools", "check", "--env", "prod", "--file", &path, "--format", "json"]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let body = parse_json(&stdout);
    assert_eq!(body["conflicts"][0]["stage"], "semantic", "{body}");
    assert_eq!(body["conflicts"][0]["severity"], "high", "{body}");
    assert!(!stdout.contains("sk-test-secret") && !stderr.contains("sk-test-secret"));
    let headers = seen.lock().expect("lock").clone();
    assert!(!headers.is_empty() && headers.iter().all(|h| h == "Bearer sk-test-secret"), "{headers:?}");

    // A provider that cannot be reached: the check still answers from stages 1 and 2.
    let mut check = workspace.mtgs();
    remote(&mut check, "http://127.0.0.1:9/v1");
    let (code, stdout, stderr) =
        run(check.args(["tools", "check", "--env", "prod", "--file", &path, "--format", "json"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let body = parse_json(&stdout);
    assert_eq!(body["conflicts"], json!([]), "{stdout}");
    // The pass says what it did not check.
    assert_eq!(body["warnings"].as_array().map(Vec::len), Some(1), "{stdout}");
    assert_eq!(body["warnings"][0]["stage"], "semantic");
    let message = body["warnings"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("stage 3 did not run (") && !message.contains("sk-test-secret"), "{message}");
}

#[test]
fn the_first_admin_key_is_made_locally_and_approvals_are_decided_by_someone_else() {
    let workspace = Workspace::new();
    // A fresh install: the operator makes the first key, printed once.
    let (code, stdout, stderr) = run(workspace.mtgs().args(["keys", "create", "--role", "admin", "--format", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let created = parse_json(&stdout);
    let admin = created["key"].as_str().expect("the key").to_owned();
    assert_eq!(created["role"], "admin");
    let (code, stdout, stderr) = run(workspace.mtgs().args(["keys", "create", "--role", "reviewer", "--name", "rita"]));
    assert_eq!(code, 0, "{stderr}");
    let reviewer = stdout.trim().to_owned();
    assert!(reviewer.starts_with("mtgs_") && !stdout.contains(' '), "the key alone on stdout: {stdout}");
    assert!(stderr.contains("not shown again"), "{stderr}");

    // The operator registers a colliding tool locally: a pending request opens.
    register_jira(&workspace, &mut workspace.mtgs());
    let salesforce = workspace.path("salesforce.json");
    let (code, _, _) = run(workspace
        .mtgs()
        .args(["tools", "register", "--env", "prod", "--server", "salesforce", "--file"])
        .arg(&salesforce));
    assert_eq!(code, 1);
    let (code, stdout, _) =
        run(workspace.mtgs().args(["approvals", "list", "--status", "pending", "--format", "json"]));
    assert_eq!(code, 0);
    let approvals = parse_json(&stdout);
    let id = approvals["approvals"][0]["id"].as_i64().expect("a pending request");
    let requester = approvals["approvals"][0]["requested_by"].as_str().expect("a requester").to_owned();
    assert!(requester.starts_with("local:"), "{requester}");
    // Not by the requester, even the operator.
    let (code, _, stderr) = run(workspace.mtgs().args(["approvals", "approve", &id.to_string()]));
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("cannot decide it"), "{stderr}");

    // The reviewer's key works against a server on the same database.
    let server = spawn_server_on(&workspace.path("data"));
    let remote = |token: &str| {
        let mut command = workspace.mtgs();
        command.env("MTGS_URL", &server.url).env("MTGS_TOKEN", token);
        command
    };
    let (code, stdout, stderr) = run(remote(&reviewer).args(["whoami"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(rita): role reviewer via api_key"), "{stdout}");
    let (code, stdout, stderr) = run(remote(&reviewer).args(["keys", "list"]));
    assert_eq!(code, 4, "a reviewer manages no keys: {stdout}{stderr}");
    let (code, stdout, stderr) =
        run(remote(&reviewer).args(["approvals", "approve", &id.to_string(), "--comment", "different vendors"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("approval {id}: approved")), "{stdout}");
    let (code, stdout, _) = run(remote(&admin).args(["tools", "list", "--server", "salesforce", "--format", "json"]));
    assert_eq!(code, 0);
    assert_eq!(parse_json(&stdout)["tools"][0]["status"], "active", "{stdout}");
    let (code, stdout, _) = run(remote(&admin).args(["approvals", "show", &id.to_string()]));
    assert_eq!(code, 0);
    assert!(stdout.contains("comment: different vendors") && stdout.contains("exact_name"), "{stdout}");

    // Without a token, or with a revoked one, the server refuses: exit 4.
    let (code, _, stderr) = run(workspace.mtgs_at(&server).env_remove("MTGS_TOKEN").args(["health", "--env", "prod"]));
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("mtgs keys create"), "{stderr}");
    let (code, stdout, _) = run(remote(&admin).args(["keys", "list", "--format", "json"]));
    assert_eq!(code, 0);
    let rita = parse_json(&stdout)["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["name"] == "rita")
        .expect("rita's key")["id"]
        .clone();
    let (code, stdout, _) = run(remote(&admin).args(["keys", "revoke", &rita.to_string()]));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("revoked"), "{stdout}");
    let (code, _, _) = run(remote(&reviewer).args(["whoami"]));
    assert_eq!(code, 4);
}

#[test]
fn bench_gen_writes_a_deterministic_registry_and_bench_run_measures_it() {
    let workspace = Workspace::new();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/corpus");
    let generate = |out: &str| {
        let (code, _, stderr) = run(workspace
            .mtgs()
            .args(["bench", "gen", "--tools", "400", "--seed", "11", "--planted", "0.1", "--out", out, "--corpus"])
            .arg(&corpus));
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("wrote 400 tools"), "{stderr}");
    };
    generate("a");
    generate("b");
    let listing = |dir: &str| {
        let mut files: Vec<(String, String)> = std::fs::read_dir(workspace.path(dir))
            .expect("written")
            .map(|entry| {
                let path = entry.expect("entry").path();
                (
                    path.file_name().expect("name").to_string_lossy().into_owned(),
                    std::fs::read_to_string(&path).expect("readable"),
                )
            })
            .collect();
        files.sort();
        files
    };
    assert_eq!(listing("a"), listing("b"), "one seed, one registry");
    let planted = parse_json(&std::fs::read_to_string(workspace.path("a/planted.json")).expect("planted.json"));
    assert!(planted["planted"].as_array().is_some_and(|pairs| !pairs.is_empty()));
    // Every generated file is a valid tools/list answer.
    let (code, _, stderr) = run(workspace.mtgs().args(["tools", "check", "--env", "x", "--file"]).arg(
        std::fs::read_dir(workspace.path("a"))
            .expect("dir")
            .map(|entry| entry.expect("entry").path())
            .find(|path| !path.ends_with("planted.json"))
            .expect("a server file"),
    ));
    assert!(code == 0 || code == 1, "{stderr}");

    let (code, stdout, stderr) = run(workspace
        .mtgs()
        .args(["--embedder", "off", "bench", "run", "--tools", "300", "--checks", "10", "--format", "json", "--corpus"])
        .arg(&corpus));
    assert_eq!(code, 0, "{stderr}");
    let runs = parse_json(&stdout);
    let row = &runs["runs"][0];
    assert_eq!(row["tools"], 300);
    assert_eq!(row["checks"], 10);
    for field in ["register_tools_per_s", "analyze_s", "check_p50_ms", "check_p99_ms"] {
        assert!(row[field].as_f64().is_some_and(|value| value > 0.0), "{field}: {row}");
    }
}
