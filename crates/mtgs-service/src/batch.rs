//! Checking and registering a batch of tools: one detection path for both, so a check
//! predicts exactly what a registration would record.

use std::collections::HashMap;
use std::sync::Arc;

use mtgs_core::{ConflictStatus, Finding, ServerName, StageId, ToolDef, ToolKey, ToolName, ToolStatus, Verdict};
use mtgs_detect::{Detector, Diagnostic, PreparedTool, StageTimings};
use mtgs_store::FindingScope;

use crate::registry::Service;
use crate::{BatchOutcome, ConflictView, Result, ServiceError, ToolBatch, ToolOutcome};

/// Findings for each tool of a batch, in order. Each tool is compared with the registry
/// (leaving out the registered versions of the batch's own tools, which it replaces) and
/// with the batch's earlier tools.
fn detect_batch(detector: &Detector, earlier: impl FnOnce() -> Detector, prepared: &Prepared) -> Detected {
    let replaced: Vec<ToolKey> = prepared.tools.iter().map(|tool| tool.key.clone()).collect();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut timings = StageTimings::default();
    let mut note = |found: Vec<Diagnostic>| {
        for diagnostic in found {
            if !diagnostics.contains(&diagnostic) {
                diagnostics.push(diagnostic);
            }
        }
    };
    // The batch's earlier tools, in a detector of their own; a batch of one (a CI gate's
    // usual) has none to build.
    let mut earlier = (prepared.tools.len() > 1).then(earlier);
    let last = prepared.tools.len().saturating_sub(1);
    let findings = prepared
        .tools
        .iter()
        .enumerate()
        .map(|(position, tool)| {
            let registry = detector.check_prepared(tool, &replaced);
            timings.absorb(&registry.timings);
            note(registry.diagnostics);
            let mut findings = registry.findings;
            if let Some(earlier) = earlier.as_mut() {
                let batch = earlier.check_prepared(tool, &[]);
                if position < last {
                    earlier.insert_prepared(tool.clone());
                }
                timings.absorb(&batch.timings);
                note(batch.diagnostics);
                findings.extend(batch.findings);
            }
            findings
        })
        .collect();
    if let Some(failure) = &prepared.failure {
        // One cause instead of one "no embedding" per tool.
        diagnostics.retain(|diagnostic| diagnostic.stage != StageId::Semantic);
        diagnostics.push(Diagnostic {
            stage: StageId::Semantic,
            message: format!("stage 3 did not run ({failure}); stages 1 and 2 did"),
        });
    }
    Detected { findings, diagnostics, timings }
}

/// The batch's tools prepared for detection, and why stage 3's model failed, if it did.
struct Prepared {
    tools: Vec<PreparedTool>,
    failure: Option<String>,
}

/// Findings per tool of the batch, and what the stages could not do.
struct Detected {
    findings: Vec<Vec<Finding>>,
    diagnostics: Vec<Diagnostic>,
    timings: StageTimings,
}

/// The batch's tools prepared for detection (embedded when stage 3 is on).
async fn prepare_batch(service: &Service, batch: &ToolBatch) -> Result<Prepared> {
    let tools = batch.tools.iter().map(|tool| (batch.server.clone(), tool.def.clone())).collect();
    let (tools, failure) = service.prepare_reporting(tools).await?;
    Ok(Prepared { tools, failure })
}

type TrackedKey = (ToolKey, ToolKey, StageId);

fn tracked_key(finding: &Finding) -> TrackedKey {
    let (low, high) = finding.pair_key();
    (low.clone(), high.clone(), finding.stage)
}

/// A tool's outcome besides its conflicts: the status it was registered with, the
/// approval request that speaks for it, and whether its conflicts were accepted.
#[derive(Debug, Clone, Copy, Default)]
struct Disposition {
    status: Option<ToolStatus>,
    approval: Option<i64>,
    accepted: bool,
}

fn outcome(
    batch: &ToolBatch,
    views: Vec<Vec<ConflictView>>,
    dispositions: Vec<Disposition>,
    diagnostics: Vec<Diagnostic>,
    timings: StageTimings,
) -> BatchOutcome {
    // An accepted tool's conflicts were decided on by a reviewer (or it is active as it
    // is): they do not block it again.
    let verdict = Verdict::of(
        views
            .iter()
            .zip(&dispositions)
            .filter(|(_, disposition)| !disposition.accepted)
            .flat_map(|(views, _)| views.iter().map(|view| (view.finding.severity, view.status))),
    );
    let tools = batch
        .tools
        .iter()
        .zip(views)
        .zip(dispositions)
        .map(|((tool, conflicts), disposition)| ToolOutcome {
            name: tool.def.name.clone(),
            status: disposition.status,
            lints: tool.lints.clone(),
            conflicts,
            approval: disposition.approval,
            accepted: disposition.accepted,
        })
        .collect();
    BatchOutcome { verdict, tools, diagnostics, timings }
}

/// Checks already answered while the environment stands as it does: a CI gate checks the
/// same definitions on every run of a pipeline, and most runs change none of them.
///
/// An answer is a function of the batch's definitions, the environment's live tools
/// (its generation) and their statuses and tracked conflicts (its revision), so it is
/// kept under both and served only while neither moved. Answers that stages could not
/// fully give (a diagnostic: stage 3's model failed, say) are not kept.
#[derive(Debug, Default)]
pub(crate) struct CheckMemo {
    entries: std::sync::Mutex<CheckEntries>,
}

#[derive(Debug, Default)]
struct CheckEntries {
    /// The (revision, generation) the answers were given at; `None` before the
    /// environment exists.
    at: Option<(i64, i64)>,
    answers: HashMap<CheckKey, Arc<Checked>>,
    /// Definitions held in the keys, all answers together.
    definitions: usize,
}

/// A batch as detection sees it: its server and its tools' definitions, in order. Keys
/// are told apart by the whole definitions; they hash by names and descriptions only
/// (hashing the schemas, or the definitions' SHA-256, cost a twentieth of a check).
#[derive(Debug, Clone, PartialEq)]
struct CheckKey {
    server: ServerName,
    definitions: Vec<ToolDef>,
}

impl Eq for CheckKey {}

impl std::hash::Hash for CheckKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.server.hash(state);
        for def in &self.definitions {
            def.name.hash(state);
            def.description.hash(state);
        }
    }
}

/// A check's answer apart from the lints (read from each request's own JSON).
#[derive(Debug)]
struct Checked {
    views: Vec<Vec<ConflictView>>,
    dispositions: Vec<Disposition>,
}

impl CheckMemo {
    /// Definitions kept at once, all answers together; more and all are forgotten (the
    /// keys come from requests). A definition is at most ~270 KiB (schema and description
    /// at their limits), so the memo stays under ~280 MiB whatever callers send, and a
    /// few MiB for real manifests.
    const CAPACITY: usize = 1024;
    /// Larger batches (a bulk import, not a gate) are not kept.
    const LARGEST_BATCH: usize = 64;

    fn entries(&self) -> std::sync::MutexGuard<'_, CheckEntries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, at: Option<(i64, i64)>, key: &CheckKey) -> Option<Arc<Checked>> {
        let entries = self.entries();
        if entries.at != at {
            return None;
        }
        entries.answers.get(key).cloned()
    }

    /// Keeps an answer given at `at`, unless the memo already holds answers from a later
    /// state (this one was overtaken while it was being computed).
    fn put(&self, at: Option<(i64, i64)>, key: CheckKey, checked: Checked) {
        let size = key.definitions.len();
        if size > Self::LARGEST_BATCH {
            return;
        }
        let mut entries = self.entries();
        if at < entries.at {
            return;
        }
        if at != entries.at || entries.definitions + size > Self::CAPACITY {
            entries.answers.clear();
            entries.definitions = 0;
            entries.at = at;
        }
        // Two callers may answer the same batch at once: it is held (and counted) once.
        if entries.answers.insert(key, Arc::new(checked)).is_none() {
            entries.definitions += size;
        }
    }
}

pub(crate) async fn check(service: &Service, batch: ToolBatch) -> Result<BatchOutcome> {
    let environment = service.environment_row(&batch.environment).await?;
    // A gate may check against an environment nobody has registered into yet (it is
    // empty): what the check builds for it is its own, not kept in the service's map.
    let state = match &environment {
        Some(_) => service.environment_state(&batch.environment),
        None => Arc::default(),
    };
    let at = environment.as_ref().map(|row| (row.revision, row.generation));
    let key = CheckKey {
        server: batch.server.clone(),
        definitions: batch.tools.iter().map(|tool| tool.def.clone()).collect(),
    };
    if let Some(checked) = state.checks.get(at, &key) {
        // No stage ran for this answer: no timings to report.
        let Checked { views, dispositions } = &*checked;
        return Ok(outcome(&batch, views.clone(), dispositions.clone(), Vec::new(), StageTimings::default()));
    }
    let prepared = prepare_batch(service, &batch).await?;
    let guard = service.current_detector_for_reading(&state, environment.as_ref()).await?;
    let Some(cached) = guard.as_ref() else {
        return Err(ServiceError::Internal("detector missing after refresh".into()));
    };
    let Detected { findings: found, diagnostics, timings } =
        detect_batch(&cached.detector, || service.new_detector(prepared.tools.len()), &prepared);
    drop(guard);

    // The batch's tools as registered on their server (status, definition hash).
    let registered = match &environment {
        Some(row) => {
            let read = || async { Ok(Arc::new(service.store().definition_hashes(row.id, &batch.server).await?)) };
            state.registered.get_or_read(&batch.server, row.revision, read).await?
        }
        None => Arc::default(),
    };
    // Pairs already tracked keep their id, and their triage status moves as a
    // registration would move it (a suppressed conflict stays suppressed). Only a
    // registered tool with findings has any to look up (most gate runs have none).
    let keys: Vec<ToolKey> = batch
        .tools
        .iter()
        .zip(&found)
        .filter(|(tool, findings)| !findings.is_empty() && registered.contains_key(&tool.def.name))
        .map(|(tool, _)| ToolKey { server: batch.server.clone(), name: tool.def.name.clone() })
        .collect();
    let tracked: HashMap<TrackedKey, mtgs_core::Conflict> = match &environment {
        Some(row) if !keys.is_empty() => service
            .store()
            .conflicts_involving(row.id, &keys)
            .await?
            .into_iter()
            .map(|conflict| (tracked_key(&conflict.finding), conflict))
            .collect(),
        _ => HashMap::new(),
    };
    let dispositions: Vec<Disposition> = batch
        .tools
        .iter()
        .map(|tool| Disposition {
            // A tool registered and active with this very definition was accepted as it is.
            accepted: registered
                .get(&tool.def.name)
                .is_some_and(|(status, hash)| *status == ToolStatus::Active && *hash == tool.def.canonical_hash()),
            ..Disposition::default()
        })
        .collect();
    let views: Vec<Vec<ConflictView>> = found
        .into_iter()
        .map(|findings| {
            findings
                .into_iter()
                .map(|finding| match tracked.get(&tracked_key(&finding)) {
                    Some(conflict) => ConflictView {
                        id: Some(conflict.id),
                        status: conflict.status.on_redetected(conflict.finding.severity, finding.severity),
                        finding,
                    },
                    None => ConflictView { id: None, status: ConflictStatus::Open, finding },
                })
                .collect()
        })
        .collect();
    if diagnostics.is_empty() {
        state.checks.put(at, key, Checked { views: views.clone(), dispositions: dispositions.clone() });
    }
    Ok(outcome(&batch, views, dispositions, diagnostics, timings))
}

pub(crate) async fn register(service: &Service, batch: ToolBatch) -> Result<BatchOutcome> {
    register_with_drift(service, batch, &HashMap::new()).await
}

/// A registration in which the tools named in `drift` are active tools whose definition
/// changed on their live server (the previous definition beside each): they need approval
/// again whatever their conflicts.
pub(crate) async fn register_with_drift(
    service: &Service,
    batch: ToolBatch,
    drift: &HashMap<ToolName, mtgs_core::ToolDef>,
) -> Result<BatchOutcome> {
    // Embedding is the slow part: done before taking the environment's write lock.
    let prepared = prepare_batch(service, &batch).await?;
    let state = service.environment_state(&batch.environment);
    let _writes = state.writes.lock().await;
    let now = service.now();
    let environment = service.environment_row(&batch.environment).await?;
    let mut guard = service.current_detector(&state, environment.as_ref()).await?;
    let Some(cached) = guard.as_mut() else {
        return Err(ServiceError::Internal("detector missing after refresh".into()));
    };
    let Detected { findings: found, diagnostics, timings } =
        detect_batch(&cached.detector, || service.new_detector(prepared.tools.len()), &prepared);

    let written = async {
        let mut tx = service.store().begin().await?;
        let row = tx.ensure_environment(&batch.environment, now).await?;
        let mut records: Vec<mtgs_core::ToolRecord> = Vec::with_capacity(batch.tools.len());
        for tool in &batch.tools {
            records.push(tx.upsert_tool(row.id, &batch.server, &tool.def, ToolStatus::PendingApproval, now).await?);
        }
        let keys: Vec<ToolKey> = records
            .iter()
            .map(|record| ToolKey { server: record.server.clone(), name: record.def.name.clone() })
            .collect();
        // The batch's tools as they were (hashing the whole registry per batch would make
        // bulk registration quadratic).
        let previous_hashes: HashMap<ToolKey, String> = keys
            .iter()
            .filter_map(|key| {
                let idx = cached.detector.tools().find(key)?;
                Some((key.clone(), cached.detector.tools().get(idx)?.def.canonical_hash()))
            })
            .collect();
        let all: Vec<Finding> = found.iter().flatten().cloned().collect();
        let sync = tx.record_findings(row.id, &FindingScope::Tools(keys), &all, now).await?;

        // Tracked conflicts come back in the order of the findings: split them per tool.
        let tracked_conflicts = sync.conflicts;
        let mut tracked = tracked_conflicts.iter().cloned();
        let mut views = Vec::with_capacity(found.len());
        let mut dispositions = Vec::with_capacity(found.len());
        let mut approval_entries: Vec<mtgs_core::NewAuditEntry> = Vec::new();
        for (findings, record) in found.iter().zip(&records) {
            let tool_views: Vec<ConflictView> = findings
                .iter()
                .map(|finding| {
                    let conflict = tracked.next();
                    ConflictView {
                        id: conflict.as_ref().map(|c| c.id),
                        status: conflict.as_ref().map_or(ConflictStatus::Open, |c| c.status),
                        finding: finding.clone(),
                    }
                })
                .collect();
            let settled = crate::governance::settle(
                service,
                &mut tx,
                &row,
                record,
                &tool_views,
                drift.get(&record.def.name),
                now,
                &mut approval_entries,
            )
            .await?;
            tx.set_tool_status(record.id, settled.status, now).await?;
            dispositions.push(Disposition {
                status: Some(settled.status),
                approval: settled.approval,
                accepted: settled.status == ToolStatus::Active,
            });
            views.push(tool_views);
        }
        // The audit entries land in the same transaction as the change.
        let mut entries: Vec<mtgs_core::NewAuditEntry> = Vec::new();
        for (record, disposition) in records.iter_mut().zip(&dispositions) {
            let key = ToolKey { server: record.server.clone(), name: record.def.name.clone() };
            record.status = disposition.status.unwrap_or(record.status);
            entries.extend(crate::audit::tool_entry(
                service.actor(),
                record,
                previous_hashes.get(&key).map(String::as_str),
                now,
            ));
        }
        entries.extend(
            tracked_conflicts
                .iter()
                .filter_map(|conflict| crate::audit::detected_entry(service.actor(), conflict, now)),
        );
        entries.extend(approval_entries);
        tx.append_audit(&entries).await?;
        let generation = tx.bump_generation(row.id).await?;
        tx.commit().await?;
        Ok::<_, ServiceError>((views, dispositions, generation))
    }
    .await;

    match written {
        Ok((views, dispositions, generation)) => {
            if generation == cached.generation + 1 {
                for tool in prepared.tools {
                    cached.detector.insert_prepared(tool);
                }
                cached.generation = generation;
            } else {
                // Another writer (another instance) moved the environment on: rebuild on next use.
                *guard = None;
            }
            Ok(outcome(&batch, views, dispositions, diagnostics, timings))
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(server: &str, tools: usize) -> CheckKey {
        let defs: Vec<serde_json::Value> = (0..tools)
            .map(|n| serde_json::json!({"name": format!("tool_{n}"), "inputSchema": {"type": "object"}}))
            .collect();
        CheckKey {
            server: ServerName::parse(server).unwrap_or_else(|_| unreachable!()),
            definitions: mtgs_core::parse_tool_list(&serde_json::Value::Array(defs))
                .unwrap_or_default()
                .into_iter()
                .map(|tool| tool.def)
                .collect(),
        }
    }

    fn answer() -> Checked {
        Checked { views: Vec::new(), dispositions: Vec::new() }
    }

    #[test]
    fn the_memo_holds_answers_of_one_state_within_its_budget() {
        let memo = CheckMemo::default();
        let (now, later) = (Some((5, 2)), Some((6, 2)));
        memo.put(now, key("a", 3), answer());
        assert!(memo.get(now, &key("a", 3)).is_some());
        assert!(memo.get(later, &key("a", 3)).is_none(), "served at a state it was not given at");
        assert!(memo.get(now, &key("b", 3)).is_none());

        // A later state's answer replaces the older ones; an older one arriving late is dropped.
        memo.put(later, key("b", 1), answer());
        memo.put(now, key("c", 1), answer());
        assert!(memo.get(now, &key("a", 3)).is_none());
        assert!(memo.get(now, &key("c", 1)).is_none());
        assert!(memo.get(later, &key("b", 1)).is_some());

        // Large batches are not kept; the budget counts definitions.
        memo.put(later, key("big", CheckMemo::LARGEST_BATCH + 1), answer());
        assert!(memo.get(later, &key("big", CheckMemo::LARGEST_BATCH + 1)).is_none());
        for server in 0..CheckMemo::CAPACITY / CheckMemo::LARGEST_BATCH {
            memo.put(later, key(&format!("s{server}"), CheckMemo::LARGEST_BATCH), answer());
        }
        assert!(memo.get(later, &key("b", 1)).is_none(), "over budget, the memo starts afresh");
        assert_eq!(memo.entries().definitions, CheckMemo::LARGEST_BATCH);
    }
}
