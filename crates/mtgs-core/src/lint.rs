//! Style findings about one tool on its own: reported, never a reason to refuse the tool.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LintLevel {
    Info,
    Warning,
}

/// One style finding. `code` is stable (documented in the README), `field` is the path in
/// the tool definition it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lint {
    pub code: String,
    pub level: LintLevel,
    pub field: String,
    pub message: String,
}

impl Lint {
    pub fn warning(code: &str, field: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), level: LintLevel::Warning, field: field.to_owned(), message: message.into() }
    }

    pub fn info(code: &str, field: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_owned(), level: LintLevel::Info, field: field.to_owned(), message: message.into() }
    }
}
