//! Who may do what: roles, the permission matrix, principals, API keys and approval
//! requests. The service enforces the matrix on every use case, so the REST API, the
//! CLI and the MCP surface apply one rule.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conflict::named_enum;
use crate::names::{EnvironmentName, ToolKey};
use crate::{Secret, sha256_hex};

named_enum! {
    /// A principal's role. `viewer` < `developer` < `reviewer` < `admin`; `ci-agent` is a
    /// pipeline's role: it may check, register, simulate and call the CI gate, nothing else
    /// that writes.
    pub enum Role {
        Viewer = "viewer",
        #[serde(rename = "ci-agent")]
        CiAgent = "ci-agent",
        Developer = "developer",
        Reviewer = "reviewer",
        Admin = "admin",
    }
}

named_enum! {
    /// What a use case needs. Each route and each service method names exactly one.
    pub enum Permission {
        /// Read the registry: tools, conflicts, health, analysis runs, simulations, approvals.
        Read = "read",
        /// Run the pipeline on definitions without recording anything.
        Check = "check",
        /// Register tools.
        Register = "register",
        /// Call the CI gate (`/v1/webhooks/ci-check`).
        CiGate = "ci_gate",
        /// Start an impact simulation.
        Simulate = "simulate",
        /// Start an all-pairs analysis of an environment.
        RunAnalysis = "run_analysis",
        /// Mark a conflict `acknowledged`.
        AcknowledgeConflict = "acknowledge_conflict",
        /// Suppress, resolve or reopen a conflict.
        TriageConflict = "triage_conflict",
        /// Approve or reject an approval request.
        DecideApproval = "decide_approval",
        /// Read, export and verify the audit log.
        ReadAudit = "read_audit",
        /// Create, list and revoke API keys.
        ManageKeys = "manage_keys",
        /// Sync registered live MCP servers.
        Sync = "sync",
        /// Add or change how mtgs reaches a live MCP server (a stdio server is a command
        /// mtgs runs on its host).
        ManageServers = "manage_servers",
    }
}

impl Permission {
    /// What the permission lets one do, for error messages ("may not register tools").
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read the registry",
            Permission::Check => "check tools",
            Permission::Register => "register tools",
            Permission::CiGate => "call the CI gate",
            Permission::Simulate => "run impact simulations",
            Permission::RunAnalysis => "start analysis runs",
            Permission::AcknowledgeConflict => "acknowledge conflicts",
            Permission::TriageConflict => "suppress, resolve or reopen conflicts",
            Permission::DecideApproval => "approve or reject approval requests",
            Permission::ReadAudit => "read the audit log",
            Permission::ManageKeys => "manage API keys",
            Permission::Sync => "sync MCP servers",
            Permission::ManageServers => "add or change MCP server connections",
        }
    }

    /// The roles that hold this permission, weakest first.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.iter().copied().filter(|role| role.allows(self)).collect()
    }
}

impl Role {
    /// The permission matrix.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Reviewer => !matches!(permission, ManageKeys | ManageServers),
            Role::Developer => matches!(
                permission,
                Read | Check | Register | CiGate | Simulate | RunAnalysis | AcknowledgeConflict | Sync
            ),
            Role::CiAgent => matches!(permission, Read | Check | Register | CiGate | Simulate),
            Role::Viewer => permission == Read,
        }
    }

    /// The strongest of `roles` (admin, reviewer, developer, ci-agent, viewer), for
    /// identity providers that send a list.
    pub fn strongest(roles: impl IntoIterator<Item = Role>) -> Option<Role> {
        roles.into_iter().max()
    }
}

named_enum! {
    /// How a principal proved who it is.
    pub enum AuthMethod {
        /// The CLI on the data directory: the local operator, with full rights.
        Local = "local",
        ApiKey = "api_key",
        Jwt = "jwt",
        /// mtgs itself (the job runner expiring approvals).
        System = "system",
    }
}

/// Who is acting. `actor` is the stable identity the audit log records and the
/// self-approval rule compares: `local:<user>`, `key:<prefix>`, `jwt:<subject>`, `system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub actor: String,
    pub role: Role,
    pub method: AuthMethod,
    /// A display name (the API key's name, the token's `name` or `email` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The actor of what mtgs does by itself.
pub const SYSTEM_ACTOR: &str = "system";

impl Principal {
    /// The local operator of the data directory (`local:<user>`), an admin.
    pub fn local(user: &str) -> Self {
        Self { actor: format!("local:{user}"), role: Role::Admin, method: AuthMethod::Local, name: None }
    }

    /// mtgs itself, for changes no caller asked for (an approval expiring).
    pub fn system() -> Self {
        Self { actor: SYSTEM_ACTOR.to_owned(), role: Role::Admin, method: AuthMethod::System, name: None }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }
}

named_enum! {
    /// Where an approval request is in its life.
    pub enum ApprovalStatus {
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        /// Nobody decided before `expires_at`; the tool stays blocked.
        Expired = "expired",
        /// The tool was registered again with another definition, or no longer needs
        /// approval: a newer request (or none) speaks for it.
        Superseded = "superseded",
    }
}

/// A request to let a tool with a CRITICAL or HIGH conflict become active.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: i64,
    pub environment: EnvironmentName,
    pub tool: ToolKey,
    /// The definition the decision is about ([`crate::ToolDef::canonical_hash`]); a new
    /// definition needs a new decision.
    pub definition_hash: String,
    pub status: ApprovalStatus,
    /// Why approval is needed: the blocking conflicts as they were when requested.
    pub reason: Value,
    /// For a definition that changed after approval: `{"before": …, "after": …}`.
    pub diff: Value,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
}

/// An API key as stored: the key itself is shown once at creation and kept only as its
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: i64,
    /// The key's first characters (`mtgs_3f9a1c2b`), to tell keys apart in lists and logs.
    pub prefix: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

impl ApiKey {
    /// The actor a request made with this key is recorded as.
    pub fn actor(&self) -> String {
        format!("key:{}", self.prefix)
    }

    pub fn principal(&self) -> Principal {
        Principal { actor: self.actor(), role: self.role, method: AuthMethod::ApiKey, name: Some(self.name.clone()) }
    }
}

/// What every API key starts with, so a bearer token is told from a JWT at a glance (and
/// secret scanners can find leaked keys).
pub const API_KEY_PREFIX: &str = "mtgs_";
/// Random bytes in a key: 192 bits.
pub const API_KEY_RANDOM_BYTES: usize = 24;
const PREFIX_HEX_CHARS: usize = 8;

/// A new key's text, visible prefix and stored hash, from random bytes the caller drew.
#[derive(Debug)]
pub struct NewApiKey {
    pub key: Secret,
    pub prefix: String,
    pub hash: String,
}

impl NewApiKey {
    pub fn from_random(bytes: &[u8; API_KEY_RANDOM_BYTES]) -> Self {
        let key = format!("{API_KEY_PREFIX}{}", hex::encode(bytes));
        let prefix = key[..API_KEY_PREFIX.len() + PREFIX_HEX_CHARS].to_owned();
        let hash = api_key_hash(&key);
        Self { key: Secret::new(key), prefix, hash }
    }
}

/// Whether a bearer token has an API key's shape (else it is taken for a JWT).
pub fn is_api_key(token: &str) -> bool {
    token
        .strip_prefix(API_KEY_PREFIX)
        .is_some_and(|rest| rest.len() == API_KEY_RANDOM_BYTES * 2 && rest.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// The stored form of a key.
pub fn api_key_hash(key: &str) -> String {
    sha256_hex(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_admin_holds_everything() {
        assert!(Role::Viewer < Role::CiAgent && Role::CiAgent < Role::Developer);
        assert!(Role::Developer < Role::Reviewer && Role::Reviewer < Role::Admin);
        for permission in Permission::ALL {
            assert!(Role::Admin.allows(*permission), "{permission}");
        }
        // Each stronger role of the ladder holds what the weaker one does.
        let ladder = [Role::Viewer, Role::Developer, Role::Reviewer, Role::Admin];
        for pair in ladder.windows(2) {
            for permission in Permission::ALL {
                assert!(!pair[0].allows(*permission) || pair[1].allows(*permission), "{pair:?} {permission}");
            }
        }
    }

    #[test]
    fn ci_agent_checks_and_registers_but_decides_nothing() {
        for allowed in [Permission::Check, Permission::Register, Permission::CiGate, Permission::Read] {
            assert!(Role::CiAgent.allows(allowed), "{allowed}");
        }
        for refused in [Permission::DecideApproval, Permission::ManageKeys, Permission::TriageConflict] {
            assert!(!Role::CiAgent.allows(refused), "{refused}");
        }
        assert_eq!(Permission::DecideApproval.roles(), vec![Role::Reviewer, Role::Admin]);
    }

    #[test]
    fn role_names_agree_between_serde_and_text() {
        for role in Role::ALL {
            assert_eq!(serde_json::to_value(role).expect("serialises"), Value::String(role.as_str().to_owned()));
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
    }

    #[test]
    fn api_keys_have_a_prefix_and_are_stored_hashed() {
        let key = NewApiKey::from_random(&[0xab; API_KEY_RANDOM_BYTES]);
        assert_eq!(key.prefix, "mtgs_abababab");
        assert!(is_api_key(key.key.expose()));
        assert_eq!(key.hash, api_key_hash(key.key.expose()));
        assert!(!key.hash.contains("abab"));
        assert!(!is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        assert!(!is_api_key("mtgs_short"));
    }
}
