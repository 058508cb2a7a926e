//! Validated names: tools (per the MCP specification), servers and environments.
//! Each is parsed once at the edge; the rest of the code never re-checks.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::lint::Lint;
use crate::tool::limits;

/// A tool name as an MCP server publishes it.
///
/// The MCP specification (2025-11-25) says names SHOULD be 1–128 characters of
/// `[A-Za-z0-9_.-]`. Real servers stray from that, and a registry that refused them could
/// not see the attack it exists to catch (`create_tаsk` with a Cyrillic `а`), so:
/// - refused: empty, longer than [`limits::MAX_NAME_CHARS`], or holding whitespace,
///   control or invisible characters, or punctuation other than `_ - . / :`;
/// - accepted with a `name_charset` warning: letters and digits outside ASCII, `/` and `:`;
/// - accepted with a `name_length` warning: longer than 64 characters, which several
///   clients and LLM APIs truncate or refuse.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ToolName(String);

/// Punctuation a tool name may hold besides letters and digits.
const NAME_PUNCTUATION: &[char] = &['_', '-', '.', '/', ':'];
/// Names longer than this draw a `name_length` warning (OpenAI and several hosts cap at 64).
const NAME_PORTABLE_CHARS: usize = 64;

impl ToolName {
    pub fn parse(raw: &str) -> Result<Self, InputError> {
        let length = raw.chars().count();
        if length == 0 {
            return Err(InputError::new("", "must not be empty"));
        }
        if length > limits::MAX_NAME_CHARS {
            return Err(InputError::new(
                "",
                format!("is {length} characters long; the limit is {}", limits::MAX_NAME_CHARS),
            ));
        }
        for (position, c) in raw.chars().enumerate() {
            if !(c.is_alphanumeric() || NAME_PUNCTUATION.contains(&c)) {
                let what = if c.is_whitespace() {
                    "whitespace"
                } else if c.is_control() {
                    "a control character"
                } else {
                    "a character tool names may not hold"
                };
                return Err(InputError::new(
                    "",
                    format!(
                        "holds {what} {} at position {position}; allowed are letters, digits and _ - . / :",
                        describe_char(c)
                    ),
                ));
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// Style findings for a valid name (see the type's documentation).
    pub fn lints(&self) -> Vec<Lint> {
        let mut lints = Vec::new();
        let outside: Vec<String> = self
            .0
            .chars()
            .filter(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map(describe_char)
            .collect();
        if !outside.is_empty() {
            lints.push(Lint::warning(
                "name_charset",
                "name",
                format!(
                    "holds {} outside the MCP specification's [A-Za-z0-9_.-]; some clients refuse such names",
                    outside.join(", ")
                ),
            ));
        }
        let length = self.0.chars().count();
        if length > NAME_PORTABLE_CHARS {
            lints.push(Lint::warning(
                "name_length",
                "name",
                format!("is {length} characters long; several clients refuse names over {NAME_PORTABLE_CHARS}"),
            ));
        }
        lints
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `'а' (U+0430)`: a character as a reader can find it again.
fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() || !c.is_alphanumeric() && !c.is_ascii_graphic() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}' (U+{:04X})", c as u32)
    }
}

/// Parses an ASCII identifier: starts with a letter, digit (or one of `first_extra`), then
/// letters, digits and `rest_extra`, at most `max` characters.
fn parse_identifier(raw: &str, max: usize, first_extra: &[char], rest_extra: &[char]) -> Result<String, InputError> {
    let length = raw.chars().count();
    if length == 0 {
        return Err(InputError::new("", "must not be empty"));
    }
    if length > max {
        return Err(InputError::new("", format!("is {length} characters long; the limit is {max}")));
    }
    let mut chars = raw.chars();
    let first = chars.next().unwrap_or_default();
    if !(first.is_ascii_alphanumeric() || first_extra.contains(&first)) {
        return Err(InputError::new(
            "",
            format!("must start with an ASCII letter or digit, not {}", describe_char(first)),
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || rest_extra.contains(c))) {
        let allowed: String = rest_extra.iter().map(|c| format!(" {c}")).collect();
        return Err(InputError::new(
            "",
            format!("holds {}; allowed are ASCII letters, digits and{allowed}", describe_char(bad)),
        ));
    }
    Ok(raw.to_owned())
}

/// A deployment environment (`dev`, `staging`, `prod`), created on first use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        parse_identifier(raw, Self::MAX_CHARS, &[], &['-', '_', '.']).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name a registry gives an MCP server (`github`, `@acme/jira`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ServerName(String);

impl ServerName {
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        parse_identifier(raw, Self::MAX_CHARS, &['@'], &['-', '_', '.', '@', '/', ':']).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! impl_name_traits {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(|error| serde::de::Error::custom(error.reason))
            }
        }
    )*};
}
impl_name_traits!(ToolName, EnvironmentName, ServerName);

/// A tool's identity within an environment: the server that publishes it and its name.
/// Two servers may publish the same name; that is the conflict mtgs exists to report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ToolKey {
    pub server: ServerName,
    pub name: ToolName,
}

impl fmt::Display for ToolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.server, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_real_servers_publish_are_accepted() {
        for name in ["create_issue", "browser_navigate", "get-file-contents", "admin.tools.list", "user/update", "A1"] {
            assert!(ToolName::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn tool_name_refusals_say_why() {
        let refused = |raw: &str| ToolName::parse(raw).expect_err(raw).reason;
        insta::assert_snapshot!(refused(""), @"must not be empty");
        insta::assert_snapshot!(refused("create task"), @"holds whitespace U+0020 at position 6; allowed are letters, digits and _ - . / :");
        insta::assert_snapshot!(refused("create_task\u{200b}"), @"holds a character tool names may not hold U+200B at position 11; allowed are letters, digits and _ - . / :");
        insta::assert_snapshot!(refused("a,b"), @"holds a character tool names may not hold ',' (U+002C) at position 1; allowed are letters, digits and _ - . / :");
        insta::assert_snapshot!(refused(&"x".repeat(129)), @"is 129 characters long; the limit is 128");
    }

    #[test]
    fn confusable_tool_names_are_accepted_with_a_warning() {
        let name = ToolName::parse("create_t\u{0430}sk").expect("Cyrillic letters are letters");
        let lints = name.lints();
        assert_eq!(lints.len(), 1);
        insta::assert_snapshot!(lints[0].message, @"holds 'а' (U+0430) outside the MCP specification's [A-Za-z0-9_.-]; some clients refuse such names");
    }

    #[test]
    fn environment_and_server_names_are_identifiers() {
        assert!(EnvironmentName::parse("prod").is_ok());
        assert!(EnvironmentName::parse("-prod").is_err());
        assert!(EnvironmentName::parse("pro d").is_err());
        assert!(ServerName::parse("@acme/jira").is_ok());
        assert!(ServerName::parse("").is_err());
    }
}
