//! How a command fails: an error with its cause chain and the documented exit code.

use std::fmt;
use std::process::ExitCode;

use mtgs_api::{ApiError, ErrorType};

/// The exit codes, documented in `--help` and CLI.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; a verdict of pass.
    Success = 0,
    /// A verdict of block.
    Blocked = 1,
    /// Usage or input error, including names that do not exist.
    Input = 2,
    /// The server or database is unreachable, or failed; or the rate limit was hit.
    Unavailable = 3,
    /// Not authenticated (no or bad `MTGS_TOKEN`), or the role does not allow the command.
    Denied = 4,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failed command. Printed once, as `error: <message>: <cause>: <cause>`.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub error: anyhow::Error,
}

impl Failure {
    /// The caller's fault: exit 2.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Failure { exit: Exit::Input, error: error.into() }
    }

    /// The server's or the database's fault: exit 3.
    pub fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Failure { exit: Exit::Unavailable, error: error.into() }
    }

    /// By the error's type in the API's table: the caller's fault or the server's.
    pub fn from_api(error: ApiError) -> Self {
        let exit = match error.code.error_type() {
            ErrorType::InvalidRequest | ErrorType::NotFound | ErrorType::Conflict => Exit::Input,
            ErrorType::Authentication | ErrorType::Permission => Exit::Denied,
            ErrorType::Internal | ErrorType::RateLimit => Exit::Unavailable,
        };
        Failure { exit, error: error.into() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

#[cfg(test)]
mod tests {
    use mtgs_api::ErrorCode;

    #[test]
    fn every_error_code_is_documented_in_cli_md() {
        let reference = include_str!("../CLI.md");
        for code in ErrorCode::ALL {
            let row = format!("| `{}` | {} | `{}` |", code.name(), code.http_status(), code.error_type().as_str());
            assert!(reference.contains(&row), "CLI.md lacks the row {row}");
        }
    }
}
