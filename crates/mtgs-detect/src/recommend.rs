//! Fixes for a conflict between two registered tools: proposed by rules over the two
//! definitions and the pair's evidence, then verified by running the pipeline with each
//! fix applied to the registry. Nothing here guesses whether a fix works; [`verify`]
//! measures it.
//!
//! The caller proposes ([`propose`]), prepares each patched definition as it prepares any
//! tool (embedding it when stage 3 is on), verifies each ([`verify`], which applies the
//! fix to the detector, checks both sides of the pair, and restores it) and keeps what
//! holds ([`select`]): a rename whose new name collides with another tool is dropped and
//! the side's next candidate name stands; a fix that does not lower the pair's severity
//! is kept, marked as not resolving, after those that do.

use std::collections::{BTreeSet, HashMap};

use mtgs_core::{
    ConflictKind, Finding, FixKind, NewConflict, Recommendation, RoutingShift, ServerName, Severity, StageId, ToolDef,
    ToolKey, ToolName, Verification,
};
use serde_json::{Value, json};

use crate::pipeline::Detector;
use crate::prepared::PreparedTool;
use crate::text::{self, NameStyle};

/// Words of server names that do not name a vendor or product (`github-mcp-server`).
const NOT_VENDOR: &[&str] = &["mcp", "server", "servers", "api", "tool", "tools", "official", "app", "service"];

/// A fix before verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub kind: FixKind,
    pub target: ToolKey,
    /// The neighbour the fix separates the target from.
    pub neighbour: ToolKey,
    pub summary: String,
    /// `None` for [`FixKind::MergeOrDeprecate`]: the target is retired.
    pub patched: Option<ToolDef>,
    /// Renames of one side are alternatives, best first: the first that does not
    /// collide stands.
    pub rank: usize,
}

/// Fixes for the conflict between registered tools `a` and `b`, for either side. Empty
/// when either is not registered.
pub fn propose(detector: &Detector, a: &ToolKey, b: &ToolKey) -> Vec<Proposal> {
    let tools = detector.tools();
    let (Some(tool_a), Some(tool_b)) =
        (tools.find(a).and_then(|idx| tools.get(idx)), tools.find(b).and_then(|idx| tools.get(idx)))
    else {
        return Vec::new();
    };
    let pair = pair_findings(detector, a, b);
    let mut proposals = Vec::new();
    // Within one server a vendor says nothing: only the schema and retirement apply.
    let one_server = a.server == b.server;
    for (target, neighbour) in [(tool_a, tool_b), (tool_b, tool_a)] {
        if !one_server {
            proposals.extend(renames(target, neighbour));
            proposals.extend(description_rewrite(target, neighbour));
        }
        proposals.extend(scope_narrowing(target, neighbour, &pair));
        proposals.extend(retirement(target, neighbour, &pair));
    }
    proposals
}

/// Runs stages 1-4 with each proposal applied to the registry, from both sides of the
/// pair (as an analysis would), putting the registry back as it was after each: a
/// proposal comes with its patched definition prepared as the registry's tools are
/// (`None` for a retirement). Proposals whose target or neighbour is not registered are
/// left out. The registry as it stands is checked once per tool, however many
/// proposals name it.
pub fn verify(
    detector: &mut Detector,
    proposals: Vec<(Proposal, Option<PreparedTool>)>,
) -> Vec<(Proposal, Verification)> {
    let mut registered: HashMap<ToolKey, Vec<Finding>> = HashMap::new();
    let mut verified = Vec::with_capacity(proposals.len());
    for (proposal, patched) in proposals {
        for key in [&proposal.target, &proposal.neighbour] {
            if !registered.contains_key(key)
                && let Some(idx) = detector.tools().find(key)
            {
                registered.insert(key.clone(), detector.check_registered(idx).findings);
            }
        }
        let (Some(before), Some(neighbour_before)) =
            (registered.get(&proposal.target), registered.get(&proposal.neighbour))
        else {
            continue;
        };
        let Some(severity_before) = worst(before, &proposal.neighbour).max(worst(neighbour_before, &proposal.target))
        else {
            continue;
        };
        if let Some(verification) = verify_one(detector, &proposal, patched, before, severity_before) {
            verified.push((proposal, verification));
        }
    }
    verified
}

/// [`verify`] for one proposal, given the target's findings and the pair's severity as
/// registered.
fn verify_one(
    detector: &mut Detector,
    proposal: &Proposal,
    patched: Option<PreparedTool>,
    before: &[Finding],
    severity_before: Severity,
) -> Option<Verification> {
    let original = detector.take(&proposal.target)?;
    let patched_key = patched.as_ref().map(|tool| tool.key.clone());
    // A patched name some other tool already has: that tool steps aside for the check
    // (it comes back below) and is reported as the collision it is.
    let displaced = patched_key.as_ref().filter(|key| **key != proposal.target).and_then(|key| detector.take(key));
    let after = match patched {
        Some(tool) => {
            let idx = detector.insert_prepared(tool);
            detector.check_registered(idx).findings
        }
        None => Vec::new(),
    };
    let severity_after = patched_key.as_ref().and_then(|key| {
        let from_neighbour = detector
            .tools()
            .find(&proposal.neighbour)
            .map(|idx| detector.check_registered(idx).findings)
            .unwrap_or_default();
        worst(&after, &proposal.neighbour).max(worst(&from_neighbour, key))
    });
    if let Some(key) = &patched_key {
        detector.remove(key);
    }
    if let Some(tool) = displaced {
        detector.insert_prepared(tool);
    }
    detector.insert_prepared(original);

    let earlier: HashMap<(&ToolKey, StageId), Severity> =
        before.iter().map(|finding| ((&finding.tool_b, finding.stage), finding.severity)).collect();
    let mut new_conflicts: Vec<NewConflict> = after
        .iter()
        .filter(|finding| finding.tool_b != proposal.neighbour && finding.severity >= Severity::Medium)
        .filter(|finding| earlier.get(&(&finding.tool_b, finding.stage)).is_none_or(|was| *was < finding.severity))
        .map(|finding| NewConflict {
            tool: finding.tool_b.clone(),
            stage: finding.stage,
            kind: finding.kind,
            severity: finding.severity,
        })
        .collect();
    // A displaced tool (it is back): the same key is the worst collision there is.
    if let Some(key) = patched_key.as_ref().filter(|key| **key != proposal.target)
        && detector.tools().find(key).is_some()
    {
        new_conflicts.push(NewConflict {
            tool: key.clone(),
            stage: StageId::Lexical,
            kind: ConflictKind::ExactName,
            severity: Severity::Critical,
        });
    }
    new_conflicts.sort_by(|x, y| y.severity.cmp(&x.severity).then_with(|| x.tool.cmp(&y.tool)));
    let confusion = |findings: &[Finding]| {
        findings
            .iter()
            .find(|finding| finding.tool_b == proposal.neighbour && finding.stage == StageId::Behavioural)
            .map(|finding| finding.score)
    };
    let routing =
        confusion(before).map(|confusion_before| RoutingShift { confusion_before, confusion_after: confusion(&after) });
    Some(Verification {
        severity_before,
        severity_after,
        resolves: severity_after.is_none_or(|after| after < severity_before),
        new_conflicts,
        routing,
    })
}

/// The most severe of `findings` (one tool's) with `other`.
fn worst(findings: &[Finding], other: &ToolKey) -> Option<Severity> {
    findings.iter().filter(|finding| &finding.tool_b == other).map(|finding| finding.severity).max()
}

/// Verified proposals kept and ordered: for each side, the first rename that collides
/// with no other tool (later candidates dropped, colliding ones too); then fixes that
/// resolve before those that do not, fewer new conflicts first, lower severity after
/// first, and the lighter fix first (a description before a rename before a retirement).
pub fn select(verified: Vec<(Proposal, Verification)>) -> Vec<Recommendation> {
    let mut renamed: BTreeSet<ToolKey> = BTreeSet::new();
    let mut kept: Vec<(Proposal, Verification)> = Vec::new();
    let mut ordered = verified;
    ordered.sort_by_key(|(proposal, _)| proposal.rank);
    for (proposal, verification) in ordered {
        if proposal.kind == FixKind::Rename {
            if renamed.contains(&proposal.target) || collides(&verification) {
                continue;
            }
            renamed.insert(proposal.target.clone());
        }
        kept.push((proposal, verification));
    }
    let weight = |kind: FixKind| match kind {
        FixKind::DescriptionRewrite => 0,
        FixKind::ScopeNarrowing => 1,
        FixKind::Rename => 2,
        FixKind::MergeOrDeprecate => 3,
    };
    kept.sort_by(|(p, v), (q, w)| {
        w.resolves
            .cmp(&v.resolves)
            .then(v.new_conflicts.len().cmp(&w.new_conflicts.len()))
            .then(v.severity_after.cmp(&w.severity_after))
            .then(weight(p.kind).cmp(&weight(q.kind)))
            .then(p.target.cmp(&q.target))
    });
    kept.into_iter()
        .map(|(proposal, verification)| Recommendation {
            kind: proposal.kind,
            target: proposal.target,
            summary: proposal.summary,
            patched_tool: proposal.patched,
            verification,
        })
        .collect()
}

/// Whether a renamed tool would itself be confused with another tool: a name that is the
/// same, the same once folded or a look-alike, or any new conflict at HIGH or above (the
/// same words reordered, a near name).
fn collides(verification: &Verification) -> bool {
    verification.new_conflicts.iter().any(|conflict| {
        matches!(conflict.kind, ConflictKind::ExactName | ConflictKind::NormalizedName | ConflictKind::ConfusableName)
            || conflict.severity >= Severity::High
    })
}

/// The pair's findings, each stage's as the pipeline reports them for `a`.
fn pair_findings(detector: &Detector, a: &ToolKey, b: &ToolKey) -> Vec<Finding> {
    let Some(idx) = detector.tools().find(a) else { return Vec::new() };
    detector.check_registered(idx).findings.into_iter().filter(|finding| &finding.tool_b == b).collect()
}

/// The words of a server's name that name its vendor (`brave-search` → `brave`,
/// `search`; `github-mcp-server` → `github`), or all of them when none is left.
fn vendor_words(server: &ServerName) -> Vec<String> {
    let words = text::name_words(server.as_str());
    let vendor: Vec<String> = words.iter().filter(|word| !NOT_VENDOR.contains(&word.as_str())).cloned().collect();
    if vendor.is_empty() { words } else { vendor }
}

/// `Brave Search`, for prose.
fn display(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the name acts on: its words that are not actions, vendor words or function words
/// (`create_salesforce_task` → `task`).
fn objects(tool: &PreparedTool) -> Vec<String> {
    let vendor = vendor_words(&tool.key.server);
    tool.words
        .iter()
        .filter(|word| !text::is_action_word(word) && !text::is_stop_word(word) && !vendor.contains(word))
        .cloned()
        .collect()
}

/// Vendor-qualified names for `target`, best first: the vendor's words the name lacks
/// before it, then after it, in the name's own style. None when the name already holds
/// every vendor word.
fn renames(target: &PreparedTool, neighbour: &PreparedTool) -> Vec<Proposal> {
    let vendor = vendor_words(&target.key.server);
    let missing: Vec<String> = vendor.iter().filter(|word| !target.words.contains(word)).cloned().collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let style = NameStyle::of(target.def.name.as_str());
    let candidates =
        [[missing.clone(), target.words.clone()].concat(), [target.words.clone(), missing.clone()].concat()];
    candidates
        .iter()
        .enumerate()
        .filter_map(|(rank, words)| {
            let name = ToolName::parse(&style.render(words)).ok()?;
            let mut def = target.def.clone();
            def.name = name.clone();
            Some(Proposal {
                kind: FixKind::Rename,
                target: target.key.clone(),
                neighbour: neighbour.key.clone(),
                summary: format!("rename {} to {name}", target.key),
                patched: Some(def),
                rank,
            })
        })
        .collect()
}

/// The target's description, opened with its vendor when it does not name it, and
/// closed with what the tool is for and what it is not for, naming the neighbour.
fn description_rewrite(target: &PreparedTool, neighbour: &PreparedTool) -> Option<Proposal> {
    let vendor = display(&vendor_words(&target.key.server));
    let neighbour_vendor = display(&vendor_words(&neighbour.key.server));
    let original = target.def.description.as_deref().unwrap_or_default().trim();
    let subject = match objects(target).join(" ") {
        words if words.is_empty() => "this job".to_owned(),
        words => words,
    };
    let opening = if original.to_lowercase().contains(&vendor.to_lowercase()) || vendor == neighbour_vendor {
        original.to_owned()
    } else if original.is_empty() {
        format!("{vendor}: {}.", text::name_words(target.def.name.as_str()).join(" "))
    } else {
        format!("{vendor}: {original}")
    };
    let separator = if opening.ends_with(['.', '!', '?']) { " " } else { ". " };
    let neighbour_name = format!("{} ({})", neighbour.def.name, neighbour.key.server);
    // Two vendors: the vendor is what separates them. One vendor (two servers for one
    // product): what the neighbour does, in its own first sentence.
    let boundary = if vendor == neighbour_vendor {
        let other_job = match neighbour.def.description.as_deref().map(crate::probes::first_sentence) {
            Some(sentence) if !sentence.is_empty() => lower_first(&sentence),
            _ => format!("work with {}", objects(neighbour).join(" ")),
        };
        format!("Use it only for {subject}; to {other_job}, use {neighbour_name} instead.")
    } else {
        let other_subject = match objects(neighbour).join(" ") {
            words if words.is_empty() => subject.clone(),
            words => words,
        };
        format!(
            "Use it only for {subject} in {vendor}; for {other_subject} in {neighbour_vendor}, use {neighbour_name} instead."
        )
    };
    let description = format!("{opening}{separator}{boundary}");
    let mut def = target.def.clone();
    def.description = Some(description);
    Some(Proposal {
        kind: FixKind::DescriptionRewrite,
        target: target.key.clone(),
        neighbour: neighbour.key.clone(),
        summary: format!("rewrite {}'s description: what it is for, and {} for the rest", target.key, neighbour.key),
        patched: Some(def),
        rank: 0,
    })
}

fn lower_first(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match (chars.next(), chars.clone().next()) {
        // Keep acronyms (`API`, `PR`) as they are.
        (Some(first), Some(second)) if second.is_uppercase() => format!("{first}{}", chars.as_str()),
        (Some(first), _) => first.to_lowercase().chain(chars).collect(),
        (None, _) => String::new(),
    }
}

/// Phrases that introduce a closed list of values in a parameter description.
const LIST_CUES: &[&str] =
    &["one of", "either", "allowed values", "possible values", "valid values", "must be", "options"];

/// Tighter parameters for `target`: enums its descriptions list, formats its names imply,
/// and the parameters the schema stage found shared with the neighbour renamed with the
/// vendor, so arguments meant for one tool no longer fit the other.
fn scope_narrowing(target: &PreparedTool, neighbour: &PreparedTool, pair: &[Finding]) -> Option<Proposal> {
    let mut schema = target.def.input_schema.clone();
    let properties = schema.get_mut("properties").and_then(Value::as_object_mut)?;
    let mut changes: Vec<String> = Vec::new();
    for (name, property) in properties.iter_mut() {
        let Some(fields) = property.as_object_mut() else { continue };
        if fields.get("type").and_then(Value::as_str) != Some("string")
            || fields.contains_key("enum")
            || fields.contains_key("const")
        {
            continue;
        }
        if let Some(values) = fields.get("description").and_then(Value::as_str).and_then(listed_values) {
            changes.push(format!("{name}: enum {}", values.join(", ")));
            fields.insert("enum".into(), json!(values));
        } else if !fields.contains_key("format")
            && let Some(format) = implied_format(name)
        {
            changes.push(format!("{name}: format {format}"));
            fields.insert("format".into(), json!(format));
        }
    }
    let shared: BTreeSet<String> = pair
        .iter()
        .filter(|finding| finding.stage == StageId::Schema)
        .flat_map(|finding| finding.evidence["mismatches"].as_array().cloned().unwrap_or_default())
        .filter_map(|mismatch| mismatch["parameter"].as_str().map(str::to_owned))
        .collect();
    let vendor = vendor_words(&target.key.server);
    let mut renamed: Vec<(String, String)> = Vec::new();
    for parameter in shared {
        let words = text::name_words(&parameter);
        if vendor.iter().all(|word| words.contains(word)) {
            continue;
        }
        let qualified = NameStyle::of(&parameter).render(&[vendor.clone(), words].concat());
        if properties.contains_key(&qualified) {
            continue;
        }
        if let Some(value) = properties.remove(&parameter) {
            properties.insert(qualified.clone(), value);
            changes.push(format!("{parameter} → {qualified} (shared with {} with another meaning)", neighbour.key));
            renamed.push((parameter, qualified));
        }
    }
    if changes.is_empty() {
        return None;
    }
    if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
        for entry in required.iter_mut() {
            if let Some((_, qualified)) = renamed.iter().find(|(old, _)| entry.as_str() == Some(old.as_str())) {
                *entry = Value::String(qualified.clone());
            }
        }
    }
    let mut def = target.def.clone();
    def.input_schema = schema;
    Some(Proposal {
        kind: FixKind::ScopeNarrowing,
        target: target.key.clone(),
        neighbour: neighbour.key.clone(),
        summary: format!("narrow {}'s parameters: {}", target.key, changes.join("; ")),
        patched: Some(def),
        rank: 0,
    })
}

/// Values a description lists as the only ones (`one of 'open', 'closed'`): at least two
/// distinct quoted or backticked words after a cue such as "one of".
fn listed_values(description: &str) -> Option<Vec<String>> {
    let lower = description.to_lowercase();
    let cue = LIST_CUES.iter().filter_map(|cue| lower.find(cue)).min()?;
    let tail = &description[cue..];
    let mut values: Vec<String> = Vec::new();
    let mut rest = tail;
    while let Some(start) = rest.find(['\'', '"', '`']) {
        let quote = rest[start..].chars().next()?;
        let after = &rest[start + quote.len_utf8()..];
        let Some(end) = after.find(quote) else { break };
        let value = &after[..end];
        let plain = !value.is_empty() && value.len() <= 40 && !value.contains(char::is_whitespace);
        if plain && !values.iter().any(|known| known == value) {
            values.push(value.to_owned());
        }
        rest = &after[end + quote.len_utf8()..];
    }
    (values.len() >= 2).then_some(values)
}

/// The JSON Schema format a string parameter's name implies.
fn implied_format(name: &str) -> Option<&'static str> {
    let words = text::name_words(name);
    let last = words.last()?.as_str();
    match last {
        "email" => Some("email"),
        "url" | "uri" | "href" | "link" => Some("uri"),
        "uuid" | "guid" => Some("uuid"),
        "date" | "day" => Some("date"),
        "datetime" | "timestamp" => Some("date-time"),
        "at" if words.len() > 1 => Some("date-time"),
        _ => None,
    }
}

/// Retiring the target in favour of the neighbour, when the two are the same tool: the
/// same name (or the same once folded) over descriptions that say the same, or meanings
/// nearly identical, with the same parameters.
fn retirement(target: &PreparedTool, neighbour: &PreparedTool, pair: &[Finding]) -> Option<Proposal> {
    let same_parameters = target.params.keys().eq(neighbour.params.keys());
    let duplicate = pair.iter().any(|finding| match finding.kind {
        ConflictKind::ExactName | ConflictKind::NormalizedName => {
            finding.evidence["description_similarity"].as_f64().is_some_and(|similarity| similarity >= 0.8)
        }
        ConflictKind::SemanticSimilarity => finding.score >= 0.95,
        _ => false,
    });
    (duplicate && same_parameters).then(|| Proposal {
        kind: FixKind::MergeOrDeprecate,
        target: target.key.clone(),
        neighbour: neighbour.key.clone(),
        summary: format!(
            "{} and {} do the same job with the same parameters: stop publishing {} and send its callers to {}",
            target.key, neighbour.key, target.key, neighbour.key
        ),
        patched: None,
        rank: 0,
    })
}
