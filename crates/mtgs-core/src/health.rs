//! The health score of an environment: one number a dashboard can trend.

use serde::{Deserialize, Serialize};

use crate::conflict::Severity;
use crate::names::EnvironmentName;

/// Counts of live conflicts per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl SeverityCounts {
    pub fn add(&mut self, severity: Severity) {
        match severity {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low
    }

    /// Σ weight(severity) over live conflicts; weights 10 / 4 / 1 / 0.25.
    pub fn penalty(&self) -> f64 {
        10.0 * self.critical as f64 + 4.0 * self.high as f64 + self.medium as f64 + 0.25 * self.low as f64
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub environment: EnvironmentName,
    /// 0–100; see [`HealthReport::score_for`].
    pub score: u8,
    /// Live tools (active, pending approval, deprecated).
    pub tools: u64,
    pub pending_approval: u64,
    /// Live (open or acknowledged) conflicts.
    pub conflicts: SeverityCounts,
}

impl HealthReport {
    /// `score = round(100 · N / (N + P))`, where N is the number of live tools and P the
    /// severity-weighted count of live conflicts (critical 10, high 4, medium 1, low 0.25).
    ///
    /// 100 means no live conflict. The score falls with each conflict and falls less in a
    /// larger registry, since one conflict among 500 tools hurts agents less than one
    /// among 5. One critical conflict among 10 tools gives 50; among 100 tools, 91.
    /// It never goes below 0, and an empty environment scores 100.
    pub fn score_for(tools: u64, conflicts: &SeverityCounts) -> u8 {
        let penalty = conflicts.penalty();
        if penalty == 0.0 {
            return 100;
        }
        let tools = tools.max(1) as f64;
        (100.0 * tools / (tools + penalty)).round().clamp(0.0, 100.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_follows_the_documented_examples() {
        let one_critical = SeverityCounts { critical: 1, ..SeverityCounts::default() };
        assert_eq!(HealthReport::score_for(10, &one_critical), 50);
        assert_eq!(HealthReport::score_for(100, &one_critical), 91);
        assert_eq!(HealthReport::score_for(0, &SeverityCounts::default()), 100);
        assert_eq!(HealthReport::score_for(3, &SeverityCounts { high: 1000, ..SeverityCounts::default() }), 0);
    }
}
