//! Conflicts: what the detection stages find about a pair of tools, and how a finding
//! becomes a tracked conflict with a triage status.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{EnvironmentName, ToolKey};

/// Declares a closed set of snake_case names with `as_str`, `FromStr`, `Display` and
/// `ALL`, so the database, the wire and the CLI share one spelling.
macro_rules! named_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "'{raw}' is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

named_enum! {
    /// How likely, and how costly, a wrong choice between the two tools is.
    /// Ordered: `Low < Medium < High < Critical`.
    pub enum Severity {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

impl Severity {
    /// CRITICAL and HIGH conflicts block activation until a reviewer approves.
    pub fn blocks(self) -> bool {
        self >= Severity::High
    }
}

named_enum! {
    /// The detection stages, cheapest first.
    pub enum StageId {
        Lexical = "lexical",
        Schema = "schema",
        Semantic = "semantic",
        Behavioural = "behavioural",
    }
}

named_enum! {
    /// What kind of evidence a conflict rests on. Each stage reports its strongest kind
    /// for a pair and lists the rest in the evidence.
    pub enum ConflictKind {
        /// Two servers publish the same name.
        ExactName = "exact_name",
        /// Equal after folding case, separators and camelCase (`createTask` = `create_task`).
        NormalizedName = "normalized_name",
        /// Equal once look-alike characters are mapped to their prototype (`create_tаsk`).
        ConfusableName = "confusable_name",
        /// Within a small edit distance (`get_issue` / `get_issues`).
        NearName = "near_name",
        /// Names and descriptions share most of their informative words.
        TokenOverlap = "token_overlap",
        /// A shared parameter has different JSON types.
        ParameterType = "parameter_type",
        /// A shared parameter is required by one tool and optional in the other.
        ParameterRequired = "parameter_required",
        /// A shared parameter allows different enumerated values.
        ParameterEnum = "parameter_enum",
        /// Embeddings of the two definitions are close.
        SemanticSimilarity = "semantic_similarity",
        /// Simulated routing sends one tool's requests to the other.
        RoutingConfusion = "routing_confusion",
    }
}

named_enum! {
    /// Triage state of a tracked conflict.
    pub enum ConflictStatus {
        Open = "open",
        Acknowledged = "acknowledged",
        Resolved = "resolved",
        Suppressed = "suppressed",
    }
}

impl ConflictStatus {
    /// Whether a conflict in this state still counts against activation and health.
    /// Suppressed is an accepted risk; resolved is fixed.
    pub fn is_live(self) -> bool {
        matches!(self, ConflictStatus::Open | ConflictStatus::Acknowledged)
    }

    /// The status of a tracked conflict that detection finds again. A resolved conflict
    /// that comes back is open again; a suppressed one stays suppressed unless its
    /// severity rose, since what was accepted was the risk as it stood.
    pub fn on_redetected(self, previous: Severity, now: Severity) -> ConflictStatus {
        match self {
            ConflictStatus::Resolved => ConflictStatus::Open,
            ConflictStatus::Suppressed if now > previous => ConflictStatus::Open,
            unchanged => unchanged,
        }
    }

    /// The status of a tracked conflict that detection no longer finds (a tool changed
    /// or left): live conflicts are resolved; suppressed and resolved ones stay.
    pub fn on_gone(self) -> ConflictStatus {
        if self.is_live() { ConflictStatus::Resolved } else { self }
    }
}

named_enum! {
    /// Outcome of a check: `block` when a live CRITICAL or HIGH conflict involves a checked tool.
    pub enum Verdict {
        Pass = "pass",
        Block = "block",
    }
}

/// What one stage found about one pair of tools. `tool_a` is the tool being checked,
/// `tool_b` the one already registered. `evidence` is a JSON object whose keys depend
/// on `kind` (documented in ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub tool_a: ToolKey,
    pub tool_b: ToolKey,
    pub stage: StageId,
    pub kind: ConflictKind,
    pub severity: Severity,
    /// Strength of the evidence in `[0, 1]`; comparable within a kind.
    pub score: f64,
    pub evidence: Value,
}

impl Finding {
    /// The pair in a canonical order, so `(a, b)` and `(b, a)` are one conflict.
    pub fn pair_key(&self) -> (&ToolKey, &ToolKey) {
        if self.tool_a <= self.tool_b { (&self.tool_a, &self.tool_b) } else { (&self.tool_b, &self.tool_a) }
    }

    pub fn involves(&self, key: &ToolKey) -> bool {
        &self.tool_a == key || &self.tool_b == key
    }
}

/// A finding the registry tracks: one per environment, pair and stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub id: i64,
    pub environment: EnvironmentName,
    pub finding: Finding,
    pub status: ConflictStatus,
    /// Milliseconds since the Unix epoch.
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub updated_at: i64,
}

impl Verdict {
    /// `block` when any finding with a blocking severity is live.
    pub fn of(severities: impl IntoIterator<Item = (Severity, ConflictStatus)>) -> Verdict {
        if severities.into_iter().any(|(severity, status)| severity.blocks() && status.is_live()) {
            Verdict::Block
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_from_low_to_critical() {
        assert!(
            Severity::Low < Severity::Medium
                && Severity::Medium < Severity::High
                && Severity::High < Severity::Critical
        );
        assert!(Severity::High.blocks() && !Severity::Medium.blocks());
    }

    #[test]
    fn names_parse_back() {
        for kind in ConflictKind::ALL {
            assert_eq!(kind.as_str().parse::<ConflictKind>(), Ok(*kind));
        }
        assert_eq!("bogus".parse::<Severity>(), Err("'bogus' is not one of low, medium, high, critical".to_owned()));
    }

    #[test]
    fn redetection_reopens_resolved_and_escalated_suppressed_conflicts() {
        use ConflictStatus::*;
        assert_eq!(Resolved.on_redetected(Severity::High, Severity::High), Open);
        assert_eq!(Suppressed.on_redetected(Severity::High, Severity::High), Suppressed);
        assert_eq!(Suppressed.on_redetected(Severity::Medium, Severity::Critical), Open);
        assert_eq!(Acknowledged.on_redetected(Severity::Low, Severity::High), Acknowledged);
        assert_eq!(Open.on_gone(), Resolved);
        assert_eq!(Suppressed.on_gone(), Suppressed);
    }

    #[test]
    fn suppressed_conflicts_do_not_block() {
        assert_eq!(Verdict::of([(Severity::Critical, ConflictStatus::Suppressed)]), Verdict::Pass);
        assert_eq!(Verdict::of([(Severity::High, ConflictStatus::Acknowledged)]), Verdict::Block);
        assert_eq!(Verdict::of([(Severity::Medium, ConflictStatus::Open)]), Verdict::Pass);
    }
}
