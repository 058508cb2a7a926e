//! Fixture-driven tests of stages 1 and 2: a registry, a candidate, and the rendered
//! findings, through one `check` helper.

use mtgs_core::{ServerName, ToolDef};
use mtgs_detect::Detector;
use serde_json::{Value, json};

fn tool(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({"name": name, "description": description,
           "inputSchema": {"type": "object", "properties": properties, "required": required}})
}

fn simple(name: &str, description: &str) -> Value {
    tool(name, description, json!({}), &[])
}

fn detector(registry: &[(&str, Value)]) -> Detector {
    let mut detector = Detector::with_default_stages();
    for (server, definition) in registry {
        let parsed = ToolDef::parse(definition).expect("fixture tools are valid");
        detector.insert(ServerName::parse(server).expect("valid server"), parsed.def);
    }
    detector
}

/// Checks `candidate` (published by `server`) against `registry`; one line per finding.
fn check(registry: &[(&str, Value)], server: &str, candidate: Value) -> String {
    let detector = detector(registry);
    let parsed = ToolDef::parse(&candidate).expect("fixture tools are valid");
    let result = detector.check(ServerName::parse(server).expect("valid server"), parsed.def, &[]);
    render(&result.findings)
}

fn render(findings: &[mtgs_core::Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {}/{} {} ~ {} score={} {}",
                f.severity, f.stage, f.kind, f.tool_a, f.tool_b, f.score, f.evidence
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const JIRA_TASK: &str = "Create a new task in a Jira project with a summary and an assignee";
const SALESFORCE_TASK: &str = "Create a Salesforce task linked to an account, contact or opportunity";

#[test]
fn the_same_name_on_two_servers_is_critical() {
    let found =
        check(&[("jira", simple("create_task", JIRA_TASK))], "salesforce", simple("create_task", SALESFORCE_TASK));
    insta::assert_snapshot!(found, @r#"critical lexical/exact_name salesforce/create_task ~ jira/create_task score=1 {"name":"create_task","description_similarity":0.198}"#);
}

#[test]
fn names_equal_after_folding_case_and_separators_are_critical() {
    let found =
        check(&[("jira", simple("create_task", JIRA_TASK))], "asana", simple("createTask", "Create a task in Asana"));
    insta::assert_snapshot!(found, @r#"critical lexical/normalized_name asana/createTask ~ jira/create_task score=1 {"normalized":"create_task","names":["createTask","create_task"],"description_similarity":0.356}"#);
}

#[test]
fn a_cyrillic_look_alike_name_is_critical() {
    let found = check(&[("jira", simple("create_task", JIRA_TASK))], "evil", simple("create_t\u{0430}sk", JIRA_TASK));
    insta::assert_snapshot!(found, @r#"critical lexical/confusable_name evil/create_tаsk ~ jira/create_task score=1 {"skeleton":"createtask","names":["create_tаsk","create_task"],"differing_characters":["'а' (U+0430) ~ 'a' (U+0061)"],"mixed_script":[true,false]}"#);
}

#[test]
fn an_inflected_name_across_servers_is_high() {
    let found = check(
        &[("github", simple("get_issue", "Get details of a specific issue in a GitHub repository"))],
        "gitlab",
        simple("get_issues", "Get issues of a GitLab project"),
    );
    insta::assert_snapshot!(found, @r#"high lexical/near_name gitlab/get_issues ~ github/get_issue score=0.889 {"distance":1,"edit":"inflection","words":["issues","issue"],"schema_separates":false,"description_similarity":0.308}"#);
}

#[test]
fn an_inflected_name_the_schema_separates_is_medium() {
    let registry = [(
        "github",
        tool(
            "get_issue",
            "Get one issue by its number",
            json!({"issue_number": {"type": "integer"}}),
            &["issue_number"],
        ),
    )];
    let candidate = tool("get_issues", "List the issues of a project", json!({"state": {"type": "string"}}), &[]);
    let found = check(&registry, "gitlab", candidate);
    insta::assert_snapshot!(found, @r#"medium lexical/near_name gitlab/get_issues ~ github/get_issue score=0.889 {"distance":1,"edit":"inflection","words":["issues","issue"],"schema_separates":true,"description_similarity":0.436}"#);
}

#[test]
fn a_different_action_one_letter_away_is_low() {
    let found = check(
        &[("fs", simple("get_file", "Read the contents of a file"))],
        "other",
        simple("set_file", "Overwrite a file with new contents"),
    );
    insta::assert_snapshot!(found, @r#"low lexical/near_name other/set_file ~ fs/get_file score=0.857 {"distance":1,"edit":"different_action","words":["set","get"],"schema_separates":false,"description_similarity":0.324}"#);
}

#[test]
fn create_and_close_are_not_near_names() {
    let found = check(
        &[("github", simple("create_issue", "Create a new issue in a GitHub repository"))],
        "github2",
        simple("close_issue", "Close an open issue"),
    );
    insta::assert_snapshot!(found, @"");
}

#[test]
fn a_vendor_qualified_name_is_high_when_descriptions_agree() {
    let found = check(
        &[("tavily", simple("web_search", "Search the web for current information on any topic"))],
        "brave-search",
        simple("brave_web_search", "Performs a web search using the Brave Search API for general queries and news"),
    );
    insta::assert_snapshot!(found, @r#"high lexical/token_overlap brave-search/brave_web_search ~ tavily/web_search score=0.374 {"relation":"qualified","name_overlap":0.667,"description_similarity":0.216,"shared_terms":["search","web"]}"#);
}

#[test]
fn reordered_name_words_are_high() {
    let found = check(&[("a", simple("web_search", "Search the web"))], "b", simple("search_web", "Web search"));
    insta::assert_snapshot!(found, @r#"high lexical/token_overlap b/search_web ~ a/web_search score=1 {"relation":"reordered","name_overlap":1.0,"description_similarity":1.0,"shared_terms":["search","web"]}"#);
}

#[test]
fn a_typosquat_copies_the_description() {
    let description = "Search issues across all repositories with a query string";
    let found =
        check(&[("github", simple("search_issues", description))], "evil", simple("serach_issues", description));
    insta::assert_snapshot!(found, @r#"high lexical/near_name evil/serach_issues ~ github/search_issues score=0.833 {"distance":2,"edit":"typosquat","words":["serach","search"],"schema_separates":false,"description_similarity":0.84,"relation":"shared_words","name_overlap":0.333,"shared_terms":["across","issu","queri","repositori","search","string"]}"#);
}

#[test]
fn same_server_pairs_are_capped_at_medium() {
    let found = check(
        &[("github", simple("get_issue", "Get an issue of a repository"))],
        "github",
        simple("get_issues", "Get issues of a repository"),
    );
    insta::assert_snapshot!(found, @r#"medium lexical/near_name github/get_issues ~ github/get_issue score=0.889 {"distance":1,"edit":"inflection","words":["issues","issue"],"schema_separates":false,"description_similarity":1.0,"same_server":true}"#);
}

#[test]
fn unrelated_tools_raise_nothing() {
    let found = check(
        &[("slack", simple("send_message", "Send a message to a Slack channel"))],
        "fs",
        simple("read_file", "Read the contents of a file from disk"),
    );
    assert_eq!(found, "");
}

#[test]
fn shared_parameters_with_different_types_are_a_schema_finding() {
    let registry = [(
        "jira",
        tool(
            "create_task",
            JIRA_TASK,
            json!({"project": {"type": "string"}, "priority": {"enum": ["low", "high"]}}),
            &["project"],
        ),
    )];
    let candidate = tool(
        "create_task",
        SALESFORCE_TASK,
        json!({"project": {"type": "integer"}, "priority": {"enum": ["Normal", "High"]}}),
        &[],
    );
    let found = check(&registry, "salesforce", candidate);
    insta::assert_snapshot!(found, @r#"
    critical lexical/exact_name salesforce/create_task ~ jira/create_task score=1 {"name":"create_task","description_similarity":0.198}
    medium schema/parameter_type salesforce/create_task ~ jira/create_task score=1 {"shared_parameters":2,"mismatches":[{"parameter":"priority","kind":"parameter_enum","a":["\"High\"","\"Normal\""],"b":["\"high\"","\"low\""],"disjoint":true},{"parameter":"project","kind":"parameter_type","a":["integer"],"b":["string"]},{"parameter":"project","kind":"parameter_required","a":false,"b":true}]}
    "#);
}

#[test]
fn a_removed_tool_no_longer_conflicts() {
    let mut detector = detector(&[("jira", simple("create_task", JIRA_TASK))]);
    let key = mtgs_core::ToolKey {
        server: ServerName::parse("jira").expect("valid"),
        name: mtgs_core::ToolName::parse("create_task").expect("valid"),
    };
    assert!(detector.remove(&key));
    let parsed = ToolDef::parse(&simple("create_task", SALESFORCE_TASK)).expect("valid");
    let result = detector.check(ServerName::parse("salesforce").expect("valid"), parsed.def, &[]);
    assert!(result.findings.is_empty());
}

#[test]
fn checking_a_new_version_of_a_tool_skips_its_old_self() {
    let detector = detector(&[("jira", simple("create_task", JIRA_TASK))]);
    let parsed = ToolDef::parse(&simple("create_task", "Create a Jira task (v2)")).expect("valid");
    let result = detector.check(ServerName::parse("jira").expect("valid"), parsed.def, &[]);
    assert!(result.findings.is_empty());
}

#[test]
fn analyze_reports_each_pair_once_in_canonical_order() {
    let detector = detector(&[
        ("jira", simple("create_task", JIRA_TASK)),
        ("salesforce", simple("create_task", SALESFORCE_TASK)),
        ("asana", simple("createTask", "Create a task in Asana")),
        ("slack", simple("send_message", "Send a message to a Slack channel")),
    ]);
    let findings = detector.analyze(2, &|_, _| {});
    let lines: Vec<String> =
        findings.iter().map(|f| format!("{} {} {} ~ {}", f.severity, f.kind, f.tool_a, f.tool_b)).collect();
    insta::assert_snapshot!(lines.join("\n"), @r"
    critical normalized_name asana/createTask ~ jira/create_task
    critical normalized_name asana/createTask ~ salesforce/create_task
    critical exact_name jira/create_task ~ salesforce/create_task
    ");
}

#[test]
fn analysis_writes_the_evidence_a_check_of_either_side_writes() {
    // An analysis leaves evidence out while it examines and writes it for the reports it
    // keeps; each must read as the check of one of the pair's tools would have it.
    let detector = detector(&[
        ("jira", simple("create_task", JIRA_TASK)),
        ("salesforce", simple("create_task", SALESFORCE_TASK)),
        ("asana", simple("createTask", "Create a task in Asana")),
        ("github", simple("get_issue", "Get an issue from a GitHub repository by its number")),
        ("gitlab", simple("get_issues", "List the issues of a GitLab project")),
        ("linear", simple("issue_get", "Get an issue from a Linear team by its number")),
        ("calendar", simple("create-event", "Create an event in a Google calendar with a title and time")),
        ("calendar2", simple("delete-event", "Delete an event from a Google calendar given its id and time")),
        ("brave", simple("brave_web_search", "Search the web with Brave for pages matching a query")),
        ("search", simple("web_search", "Search the web for pages matching a query")),
    ]);
    let findings = detector.analyze(2, &|_, _| {});
    let kinds: std::collections::BTreeSet<String> = findings.iter().map(|f| f.kind.to_string()).collect();
    assert!(kinds.len() >= 4, "the fixture should reach several lexical kinds: {kinds:?}");
    for finding in &findings {
        assert!(finding.evidence.is_object(), "{finding:?}");
        let seen_from = |from: &mtgs_core::ToolKey, to: &mtgs_core::ToolKey| {
            let idx = detector.tools().find(from).expect("registered");
            detector.check_registered(idx).findings.into_iter().find(|f| &f.tool_b == to && f.stage == finding.stage)
        };
        let sides = [seen_from(&finding.tool_a, &finding.tool_b), seen_from(&finding.tool_b, &finding.tool_a)];
        assert!(
            sides.iter().flatten().any(|f| f.kind == finding.kind && f.evidence == finding.evidence),
            "{finding:?} / {sides:?}"
        );
    }
}

#[test]
fn names_that_differ_in_their_action_are_low_however_alike_their_descriptions() {
    let found = check(
        &[(
            "calendar",
            simple("create-event", "Create an event in a Google calendar with a title, start and end time"),
        )],
        "calendar2",
        simple("delete-event", "Delete an event from a Google calendar given its id, start and end time"),
    );
    assert!(found.starts_with("low lexical/token_overlap"), "{found}");
    assert!(found.contains(r#""relation":"different_action""#), "{found}");
}

#[test]
fn synonym_actions_are_not_a_different_action() {
    let found = check(
        &[("slack", simple("post_message", "Post a message to a channel"))],
        "teams",
        simple("send_message", "Send a message to a channel"),
    );
    assert!(!found.contains("different_action"), "{found}");
}

#[test]
fn a_negated_word_is_a_different_action() {
    let found = check(
        &[("git", simple("git_diff_staged", "Show the changes staged for commit"))],
        "git2",
        simple("git_diff_unstaged", "Show the changes in the working tree not yet staged"),
    );
    assert!(found.contains(r#""edit":"different_action""#), "{found}");
}

#[test]
fn look_alike_words_within_one_server_are_not_a_typosquat() {
    let description = "Push a value onto the end of a Redis list";
    let found = check(&[("redis", simple("rpush", description))], "redis", simple("lpush", description));
    assert!(!found.contains("typosquat"), "{found}");
}

#[test]
fn two_names_that_differ_only_by_their_vendors_are_qualified() {
    let found = check(
        &[("tavily", simple("tavily_search", "Search the web for current information on any topic"))],
        "firecrawl",
        simple("firecrawl_search", "Search the web and optionally scrape the results"),
    );
    assert!(found.starts_with("medium lexical/token_overlap"), "{found}");
    assert!(found.contains(r#""relation":"qualified""#), "{found}");
}

#[test]
fn vendor_qualified_names_are_found_however_many_tools_share_more_words() {
    // Seventy tools say more of what the candidate says than `teda_create_doc` does, so
    // the word-overlap search, which keeps the 64 with the most shared weight, ranks it
    // out; its name is still `create doc` under another vendor's prefix.
    let filler = "Create a doc or append markdown text to a doc";
    let servers: Vec<String> = (0..70).map(|i| format!("notes{i}")).collect();
    let mut registry: Vec<(&str, Value)> =
        servers.iter().map(|server| (server.as_str(), simple("append_doc", filler))).collect();
    registry.push(("teda", simple("teda_create_doc", "Look up the weather forecast for a city")));
    let found =
        check(&registry, "cuzapo", simple("cuzapoCreateDoc", "Create a doc: append markdown text to a new doc"));
    let line = found.lines().find(|line| line.contains("teda/teda_create_doc"));
    assert!(line.is_some_and(|line| line.starts_with("high lexical/token_overlap")), "{found}");
    assert!(line.is_some_and(|line| line.contains(r#""relation":"qualified""#)), "{found}");
}

#[test]
fn a_servers_house_vocabulary_does_not_make_its_tools_alike() {
    // Every tool of this server talks about GitHub repositories and tokens; within the
    // server that says nothing about which tool does what.
    const HOUSE: &str = "in a GitHub repository, given the repository owner and name; \
                         needs a personal access token with the repo scope";
    let house = |name: &str, job: &str| ("github", simple(name, &format!("{job} {HOUSE}")));
    let mut registry = vec![
        house("create_issue", "Create a new issue"),
        house("fork_repository", "Fork"),
        house("list_commits", "List commits"),
        house("get_file_contents", "Get file contents"),
        house("push_files", "Push files"),
    ];
    // Other servers' tools, so that the house words are rare in the registry as a whole.
    const TOPICS: [&str; 6] = ["weather forecast", "recipe", "flight", "invoice", "playlist", "parcel"];
    for (i, topic) in TOPICS.iter().cycle().take(30).enumerate() {
        registry.push(("other", simple(&format!("lookup_{i}"), &format!("Look up a {topic} by its number {i}"))));
    }
    let candidate = simple("create_pull_request", &format!("Open a pull request {HOUSE}"));
    let found = check(&registry, "github", candidate);
    let issue = found.lines().find(|line| line.contains("github/create_issue")).unwrap_or_default();
    // Without the house rule the shared boilerplate links this pair (similarity 0.63).
    assert!(issue.is_empty(), "{found}");
}
