//! Recommendations: each fix kind proposed from a conflict and verified by the pipeline
//! with the fix applied (stages 1-2 here; the API, CLI and MCP tests go through the service).

use mtgs_core::{ConflictKind, FixKind, Recommendation, ServerName, Severity, StageId, ToolDef, ToolKey, Verification};
use mtgs_detect::recommend::{Proposal, propose, select, verify};
use mtgs_detect::{Detector, PreparedTool};
use serde_json::{Value, json};

fn def(value: Value) -> ToolDef {
    ToolDef::parse(&value).expect("valid").def
}

fn server(name: &str) -> ServerName {
    ServerName::parse(name).expect("server")
}

fn key(server_name: &str, name: &str) -> ToolKey {
    ToolKey { server: server(server_name), name: def(json!({"name": name, "inputSchema": {"type": "object"}})).name }
}

fn tool(name: &str, description: &str, properties: Value) -> ToolDef {
    def(json!({"name": name, "description": description,
               "inputSchema": {"type": "object", "properties": properties}}))
}

fn registry(tools: &[(&str, ToolDef)]) -> Detector {
    let mut detector = Detector::with_default_stages();
    for (server_name, tool) in tools {
        detector.insert(server(server_name), tool.clone());
    }
    detector
}

/// Proposes, verifies (stages 1-2: nothing to embed) and selects.
fn recommend(detector: &mut Detector, a: &ToolKey, b: &ToolKey) -> Vec<Recommendation> {
    let proposals = propose(detector, a, b)
        .into_iter()
        .map(|proposal| {
            let patched = proposal.patched.clone().map(|def| PreparedTool::new(proposal.target.server.clone(), def));
            (proposal, patched)
        })
        .collect();
    select(verify(detector, proposals))
}

/// One proposal verified on its own (both its tools registered).
fn verify_alone(detector: &mut Detector, proposal: &Proposal, patched: PreparedTool) -> Verification {
    let (_, verification) =
        verify(detector, vec![(proposal.clone(), Some(patched))]).pop().expect("both tools registered");
    verification
}

fn jira_task() -> ToolDef {
    tool("create_task", "Create a Jira issue of type Task in a project.", json!({"summary": {"type": "string"}}))
}

fn salesforce_task() -> ToolDef {
    tool("create_task", "Create a task.", json!({"subject": {"type": "string"}}))
}

#[test]
fn a_vendor_qualified_rename_resolves_an_exact_name_conflict() {
    let mut detector = registry(&[("jira", jira_task()), ("salesforce", salesforce_task())]);
    let found = recommend(&mut detector, &key("jira", "create_task"), &key("salesforce", "create_task"));
    let rename = found
        .iter()
        .find(|fix| fix.kind == FixKind::Rename && fix.target == key("salesforce", "create_task"))
        .expect("a rename of Salesforce's tool");
    let patched = rename.patched_tool.as_ref().expect("the renamed definition");
    assert_eq!(patched.name.as_str(), "salesforce_create_task");
    assert_eq!(patched.description, salesforce_task().description, "only the name changes");
    assert_eq!(rename.verification.severity_before, Severity::Critical);
    // The names still share their whole core (`create_task`), which stays HIGH by the
    // lexical rules; the rename lowers the conflict from CRITICAL, and says how far.
    assert_eq!(rename.verification.severity_after, Some(Severity::High), "{:?}", rename.verification);
    assert!(rename.verification.resolves);
    assert!(rename.verification.new_conflicts.is_empty());
    // One rename per side stands: the other candidate name is an alternative, not a second fix.
    let renames_of_salesforce =
        found.iter().filter(|fix| fix.kind == FixKind::Rename && fix.target == rename.target).count();
    assert_eq!(renames_of_salesforce, 1);
    assert!(found.first().is_some_and(|best| best.verification.resolves), "resolving fixes come first");
}

#[test]
fn a_rename_that_would_collide_with_another_tool_is_not_suggested() {
    // Someone already publishes `salesforce_create_task`: renaming Salesforce's
    // `create_task` to it trades one exact-name conflict for another.
    let taken = tool(
        "salesforce_create_task",
        "Create a Salesforce task from a CRM record.",
        json!({"record_id": {"type": "string"}}),
    );
    let mut detector =
        registry(&[("jira", jira_task()), ("salesforce", salesforce_task()), ("crm-bridge", taken.clone())]);
    let found = recommend(&mut detector, &key("jira", "create_task"), &key("salesforce", "create_task"));
    let names: Vec<&str> = found
        .iter()
        .filter(|fix| fix.kind == FixKind::Rename)
        .filter_map(|fix| fix.patched_tool.as_ref())
        .map(|def| def.name.as_str())
        .collect();
    assert!(!names.contains(&"salesforce_create_task"), "{names:?}");
    // Every rename still offered collides with nobody by name.
    for fix in found.iter().filter(|fix| fix.kind == FixKind::Rename) {
        assert!(
            fix.verification.new_conflicts.iter().all(|conflict| !matches!(
                conflict.kind,
                ConflictKind::ExactName | ConflictKind::NormalizedName | ConflictKind::ConfusableName
            ) && conflict.severity < Severity::High),
            "{fix:?}"
        );
    }
    // The verification is what catches it: verified alone, the taken name collides.
    let proposals = propose(&detector, &key("jira", "create_task"), &key("salesforce", "create_task"));
    let taken_name = proposals
        .iter()
        .find(|proposal| proposal.patched.as_ref().is_some_and(|def| def.name.as_str() == "salesforce_create_task"))
        .expect("proposed before verification");
    let patched = PreparedTool::new(server("salesforce"), taken_name.patched.clone().expect("a definition"));
    let verification = verify_alone(&mut detector, taken_name, patched);
    assert!(
        verification.new_conflicts.iter().any(|conflict| conflict.kind == ConflictKind::ExactName
            && conflict.tool == key("crm-bridge", "salesforce_create_task")),
        "{verification:?}"
    );
}

#[test]
fn a_description_rewrite_names_the_neighbour_keeps_the_text_and_is_verified() {
    let github = tool(
        "search_repositories",
        "Search GitHub repositories by keyword, language and stars.",
        json!({"query": {"type": "string"}}),
    );
    let gitlab = tool(
        "search_projects",
        "Search repositories by keyword, language and stars.",
        json!({"query": {"type": "string"}}),
    );
    let mut detector = registry(&[("github", github), ("gitlab", gitlab.clone())]);
    let proposals = propose(&detector, &key("github", "search_repositories"), &key("gitlab", "search_projects"));
    let rewrite = proposals
        .iter()
        .find(|proposal| {
            proposal.kind == FixKind::DescriptionRewrite && proposal.target == key("gitlab", "search_projects")
        })
        .expect("a rewrite of GitLab's description");
    let text = rewrite.patched.as_ref().and_then(|def| def.description.clone()).expect("a description");
    assert!(text.starts_with("Gitlab: Search repositories by keyword"), "{text}");
    assert!(text.contains("search_repositories (github)"), "names the neighbour: {text}");
    assert!(text.contains("instead"), "{text}");
    let patched = PreparedTool::new(server("gitlab"), rewrite.patched.clone().expect("definition"));
    let verification = verify_alone(&mut detector, rewrite, patched);
    assert!(verification.severity_before >= Severity::Medium, "{verification:?}");
    assert_eq!(verification.resolves, verification.severity_after < Some(verification.severity_before));
}

#[test]
fn scope_narrowing_adds_listed_enums_and_implied_formats_and_renames_a_clashing_parameter() {
    let tickets = tool(
        "list_tickets",
        "List support tickets.",
        json!({
            "status": {"type": "string", "description": "Ticket status, one of 'open', 'pending' or 'closed'."},
            "requester_email": {"type": "string"},
            "limit": {"type": "integer"}
        }),
    );
    let issues = tool(
        "list_tickets",
        "List tickets in a help desk.",
        json!({"status": {"type": "integer"}, "limit": {"type": "integer"}}),
    );
    let mut detector = registry(&[("zendesk", tickets), ("freshdesk", issues)]);
    let proposals = propose(&detector, &key("zendesk", "list_tickets"), &key("freshdesk", "list_tickets"));
    let narrowing = proposals
        .iter()
        .find(|proposal| proposal.kind == FixKind::ScopeNarrowing && proposal.target == key("zendesk", "list_tickets"))
        .expect("narrowing of Zendesk's schema");
    let schema = &narrowing.patched.as_ref().expect("definition").input_schema;
    let properties = &schema["properties"];
    assert_eq!(properties["zendesk_status"]["enum"], json!(["open", "pending", "closed"]), "{schema}");
    assert!(properties.get("status").is_none(), "the clashing parameter is renamed: {schema}");
    assert_eq!(properties["requester_email"]["format"], "email");
    assert_eq!(properties["limit"], json!({"type": "integer"}), "untouched");

    let patched = PreparedTool::new(server("zendesk"), narrowing.patched.clone().expect("definition"));
    let verification = verify_alone(&mut detector, narrowing, patched.clone());
    let schema_after = detector
        .check_prepared(&patched, std::slice::from_ref(&narrowing.target))
        .findings
        .into_iter()
        .filter(|finding| finding.stage == StageId::Schema && finding.tool_b == narrowing.neighbour)
        .count();
    assert_eq!(schema_after, 0, "no shared parameter disagrees any more");
    // The exact name still conflicts: narrowing alone does not resolve it, and says so.
    assert_eq!(verification.severity_after, Some(Severity::Critical));
    assert!(!verification.resolves);
}

#[test]
fn true_duplicates_are_offered_a_retirement_that_leaves_no_conflict() {
    let fetch =
        tool("fetch_url", "Fetch a web page and return its content as markdown.", json!({"url": {"type": "string"}}));
    let mut detector = registry(&[("fetch", fetch.clone()), ("web-tools", fetch)]);
    let found = recommend(&mut detector, &key("fetch", "fetch_url"), &key("web-tools", "fetch_url"));
    let retire = found.iter().find(|fix| fix.kind == FixKind::MergeOrDeprecate).expect("a retirement");
    assert!(retire.patched_tool.is_none());
    assert_eq!(retire.verification.severity_before, Severity::Critical);
    assert_eq!(retire.verification.severity_after, None);
    assert!(retire.verification.resolves);
    assert!(retire.summary.contains("stop publishing"), "{}", retire.summary);
}

#[test]
fn tools_that_are_not_both_registered_get_no_proposals() {
    let detector = registry(&[("jira", jira_task())]);
    assert!(propose(&detector, &key("jira", "create_task"), &key("salesforce", "create_task")).is_empty());
}

#[test]
fn verifying_puts_the_registry_back_as_it_was() {
    let mut detector = registry(&[("jira", jira_task()), ("salesforce", salesforce_task())]);
    let (a, b) = (key("jira", "create_task"), key("salesforce", "create_task"));
    let before = detector.check(server("asana"), salesforce_task(), &[]);
    let found = recommend(&mut detector, &a, &b);
    assert!(!found.is_empty());
    assert_eq!(detector.len(), 2);
    assert!(detector.tools().find(&a).is_some() && detector.tools().find(&b).is_some());
    assert_eq!(detector.check(server("asana"), salesforce_task(), &[]).findings, before.findings);
}

#[test]
fn two_tools_of_one_server_get_no_vendor_rename_or_rewrite() {
    let mut detector = registry(&[
        ("attio", tool("create_company", "Create a company record.", json!({"name": {"type": "string"}}))),
        (
            "attio",
            tool("create_record", "Create a record: a company, person or deal.", json!({"name": {"type": "integer"}})),
        ),
    ]);
    let found = recommend(&mut detector, &key("attio", "create_company"), &key("attio", "create_record"));
    assert!(found.iter().all(|fix| !matches!(fix.kind, FixKind::Rename | FixKind::DescriptionRewrite)), "{found:?}");
}
