//! The one error a caller can cause: input that names the field it is wrong in and why.

use std::fmt;

/// Input from outside the process that was refused. `field` is a path in the caller's
/// terms (`tools[2].inputSchema.properties`), empty for the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputError {
    pub field: String,
    pub reason: String,
}

impl InputError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// Re-roots the field path under `prefix`: `name` within `tools[3]` is `tools[3].name`.
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = join_field(prefix, &self.field);
        self
    }
}

/// Joins two field-path segments, omitting the dot where either side is empty or the
/// right side is an index (`tools` + `[3]` = `tools[3]`).
pub(crate) fn join_field(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (_, true) => prefix.to_owned(),
        _ if field.starts_with('[') => format!("{prefix}{field}"),
        _ => format!("{prefix}.{field}"),
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}
