//! Fixes for a conflict, each with the pipeline's verdict on the patched registry: a
//! recommendation says not only what to change but what the change would do.

use serde::{Deserialize, Serialize};

use crate::{ConflictKind, Severity, StageId, ToolDef, ToolKey};

/// The kinds of fix mtgs proposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// A vendor- or server-qualified name (`create_task` → `salesforce_create_task`).
    Rename,
    /// A description that says what the tool is for and what it is not for, naming the
    /// neighbour, with the original text kept.
    DescriptionRewrite,
    /// Tighter parameters: enums a description lists, formats a name implies, a shared
    /// parameter renamed so arguments fit only the intended tool.
    ScopeNarrowing,
    /// The two tools do the same job: retire one in favour of the other.
    MergeOrDeprecate,
}

impl FixKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FixKind::Rename => "rename",
            FixKind::DescriptionRewrite => "description_rewrite",
            FixKind::ScopeNarrowing => "scope_narrowing",
            FixKind::MergeOrDeprecate => "merge_or_deprecate",
        }
    }
}

impl std::fmt::Display for FixKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fix for one conflict, verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub kind: FixKind,
    /// The tool the fix changes (or retires).
    pub target: ToolKey,
    /// What changes, in a sentence.
    pub summary: String,
    /// The target's definition with the fix applied; absent for `merge_or_deprecate`,
    /// whose fix is to stop publishing the target.
    pub patched_tool: Option<ToolDef>,
    pub verification: Verification,
}

/// What stages 1-4 say with the fix applied to the environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// The pair's most severe finding as registered.
    pub severity_before: Severity,
    /// The pair's most severe finding with the fix; absent when none is left.
    pub severity_after: Option<Severity>,
    /// Whether the fix lowers the pair's severity.
    pub resolves: bool,
    /// Conflicts at MEDIUM or above that the fix would create or make more severe with
    /// other tools.
    pub new_conflicts: Vec<NewConflict>,
    /// Stage 4's confusion rate of the pair before and after, when stage 4 examined it.
    pub routing: Option<RoutingShift>,
}

/// A conflict a fix would create (or worsen) with a tool other than the neighbour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewConflict {
    pub tool: ToolKey,
    pub stage: StageId,
    pub kind: ConflictKind,
    pub severity: Severity,
}

/// A pair's stage-4 confusion rate (the larger share of either tool's probe requests
/// routed to the other) before and after a fix; `None` after: stage 4 no longer flagged
/// the pair for examination.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RoutingShift {
    pub confusion_before: f64,
    pub confusion_after: Option<f64>,
}
