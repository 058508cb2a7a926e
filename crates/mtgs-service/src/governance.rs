//! API keys and the approval workflow: a tool with a live CRITICAL or HIGH conflict waits
//! in `pending_approval` until a reviewer (not its requester) approves it; rejected and
//! expired requests leave it `blocked`. Every decision lands with its audit entry.

use mtgs_core::{
    API_KEY_RANDOM_BYTES, ApiKey, Approval, ApprovalStatus, AuditEvent, EnvironmentName, InputError, NewApiKey,
    NewAuditEntry, Permission, Principal, Role, SYSTEM_ACTOR, Secret, ToolRecord, ToolStatus, api_key_hash, is_api_key,
};
use mtgs_store::{ApprovalDecision, ApprovalFilter, EnvironmentRow, NewApproval, NewKeyRow, StoreTx};
use serde_json::{Value, json};

use crate::audit::entry;
use crate::registry::Service;
use crate::{ConflictView, Resource, Result, ServiceError};

/// Longest API key name.
pub const MAX_KEY_NAME_CHARS: usize = 100;
/// Longest decision comment.
pub const MAX_COMMENT_CHARS: usize = 2_000;
/// A key's last use is written at most this often (ms), so reads stay reads.
const KEY_USE_RESOLUTION_MS: i64 = 60_000;
/// How long a key read from the store answers for it without reading again. A key
/// revoked through this service stops working at once; one revoked elsewhere (the local
/// CLI on the same data directory, another instance) within this time.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// How many keys the cache holds before starting over.
const MAX_CACHED_KEYS: usize = 10_000;

fn check_text(field: &str, value: &str, max: usize) -> Result<(), InputError> {
    if value.trim().is_empty() {
        return Err(InputError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(InputError::new(field, format!("is longer than {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(InputError::new(field, "must not contain control characters"));
    }
    Ok(())
}

impl Service {
    /// Creates an API key with `role`. The key is returned once and stored only as its
    /// SHA-256. Admins only (the local operator is one).
    pub async fn create_api_key(&self, name: Option<&str>, role: Role) -> Result<(ApiKey, Secret)> {
        let actor = self.authorize(Permission::ManageKeys)?.actor.clone();
        let name = match name {
            Some(name) => {
                check_text("name", name, MAX_KEY_NAME_CHARS)?;
                name.trim().to_owned()
            }
            None => format!("{role} key"),
        };
        let mut random = [0u8; API_KEY_RANDOM_BYTES];
        getrandom::fill(&mut random)
            .map_err(|error| ServiceError::Internal(format!("no randomness for a key: {error}")))?;
        let new = NewApiKey::from_random(&random);
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let key = tx
            .insert_api_key(&NewKeyRow {
                prefix: &new.prefix,
                hash: &new.hash,
                name: &name,
                role,
                created_by: &actor,
                created_at: now,
            })
            .await?;
        let created = entry(
            &actor,
            now,
            AuditEvent::ApiKeyCreated,
            None,
            format!("api key {}", key.prefix),
            Value::Null,
            json!({"id": key.id, "name": key.name, "role": key.role}),
        );
        tx.append_audit(&[created]).await?;
        tx.commit().await?;
        Ok((key, new.key))
    }

    /// Every API key (never the keys themselves), revoked ones included.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        self.authorize(Permission::ManageKeys)?;
        Ok(self.store().api_keys().await?)
    }

    /// Revokes a key: requests made with it fail from now on. Revoking a revoked key
    /// changes nothing.
    pub async fn revoke_api_key(&self, id: i64) -> Result<ApiKey> {
        let actor = self.authorize(Permission::ManageKeys)?.actor.clone();
        let not_found = || ServiceError::NotFound { what: Resource::ApiKey, name: id.to_string() };
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let before = tx.api_key(id).await?.ok_or_else(not_found)?;
        let after = tx.revoke_api_key(id, &actor, now).await?.ok_or_else(not_found)?;
        if before.revoked_at.is_none() {
            let revoked = entry(
                &actor,
                now,
                AuditEvent::ApiKeyRevoked,
                None,
                format!("api key {}", after.prefix),
                json!({"revoked": false}),
                json!({"revoked": true, "name": after.name, "role": after.role}),
            );
            tx.append_audit(&[revoked]).await?;
        }
        tx.commit().await?;
        self.inner.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|_, (key, _)| key.id != id);
        Ok(after)
    }

    /// The principal an API key stands for. Unknown, malformed and revoked keys are
    /// `Unauthenticated` with the same message, so a caller learns nothing from it.
    pub async fn authenticate_key(&self, token: &str) -> Result<Principal> {
        let refused = || ServiceError::Unauthenticated("the API key is not valid (unknown or revoked)".to_owned());
        if !is_api_key(token) {
            return Err(refused());
        }
        let key = self.api_key(&api_key_hash(token)).await?.ok_or_else(refused)?;
        if key.revoked_at.is_some() {
            return Err(refused());
        }
        let now = self.now();
        let due = {
            let mut uses = self.inner.key_uses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let last = uses.get(&key.id).copied().or(key.last_used_at).unwrap_or(i64::MIN);
            let due = now.saturating_sub(last) >= KEY_USE_RESOLUTION_MS;
            if due {
                uses.insert(key.id, now);
            }
            due
        };
        if due && let Err(error) = self.store().touch_api_key(key.id, now).await {
            tracing::warn!(%error, key = %key.prefix, "could not record the key's last use");
        }
        Ok(key.principal())
    }

    /// The key with this hash: from the cache while fresh, else from the store.
    async fn api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        let keys = || self.inner.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((key, read)) = keys().get(hash)
            && read.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Some(key.clone()));
        }
        let Some(key) = self.store().api_key_by_hash(hash).await? else {
            return Ok(None);
        };
        let mut cached = keys();
        if cached.len() >= MAX_CACHED_KEYS {
            cached.clear();
        }
        cached.insert(hash.to_owned(), (key.clone(), std::time::Instant::now()));
        Ok(Some(key))
    }

    /// Records USER_LOGIN for a principal that signed in through an identity provider
    /// (its first request with a new token).
    pub async fn record_login(&self, principal: &Principal, detail: Value) -> Result<()> {
        let login = entry(
            &principal.actor,
            self.now(),
            AuditEvent::UserLogin,
            None,
            principal.actor.clone(),
            Value::Null,
            json!({"method": principal.method, "role": principal.role, "detail": detail}),
        );
        Ok(self.store().append_audit(&[login]).await?)
    }

    /// Approval requests matching `filter`, oldest first (expiring overdue ones first).
    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>> {
        self.authorize(Permission::Read)?;
        if let Some(environment) = &filter.environment {
            self.existing_environment(environment).await?;
        }
        self.expire_approvals_internal().await?;
        Ok(self.store().approvals(filter).await?)
    }

    pub async fn approval(&self, id: i64) -> Result<Approval> {
        self.authorize(Permission::Read)?;
        self.expire_approvals_internal().await?;
        self.store()
            .approval(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound { what: Resource::Approval, name: id.to_string() })
    }

    /// Approves a pending request: its tool becomes `active`.
    pub async fn approve(&self, id: i64, comment: Option<&str>) -> Result<Approval> {
        self.decide(id, ApprovalStatus::Approved, comment).await
    }

    /// Rejects a pending request: its tool becomes `blocked`. A comment is required.
    pub async fn reject(&self, id: i64, comment: &str) -> Result<Approval> {
        self.decide(id, ApprovalStatus::Rejected, Some(comment)).await
    }

    async fn decide(&self, id: i64, decision: ApprovalStatus, comment: Option<&str>) -> Result<Approval> {
        let actor = self.authorize(Permission::DecideApproval)?.actor.clone();
        if let Some(comment) = comment {
            check_text("comment", comment, MAX_COMMENT_CHARS)?;
        } else if decision == ApprovalStatus::Rejected {
            return Err(InputError::new("comment", "is required to reject: say why").into());
        }
        self.expire_approvals_internal().await?;
        let not_found = || ServiceError::NotFound { what: Resource::Approval, name: id.to_string() };
        let now = self.now();
        let mut tx = self.store().begin().await?;
        let approval = tx.approval(id).await?.ok_or_else(not_found)?;
        if approval.status != ApprovalStatus::Pending {
            return Err(ServiceError::NotPending { id, status: approval.status });
        }
        if approval.requested_by == actor {
            return Err(ServiceError::SelfApproval { id, actor });
        }
        let tool_id = tx.approval_tool_id(id).await?.ok_or_else(not_found)?;
        let (tool_status, event) = match decision {
            ApprovalStatus::Approved => (ToolStatus::Active, AuditEvent::ApprovalApproved),
            _ => (ToolStatus::Blocked, AuditEvent::ApprovalRejected),
        };
        let comment = comment.map(str::trim);
        let decided = ApprovalDecision { status: decision, decided_by: &actor, decided_at: now, comment };
        if !tx.decide_approval(id, &decided).await? {
            return Err(ServiceError::NotPending { id, status: approval.status });
        }
        tx.set_tool_status(tool_id, tool_status, now).await?;
        let row = tx.ensure_environment(&approval.environment, now).await?;
        tx.bump_generation(row.id).await?;
        let decided_entry = entry(
            &actor,
            now,
            event,
            Some(&approval.environment),
            format!("approval {id}"),
            json!({"status": ApprovalStatus::Pending, "tool": approval.tool.to_string(), "tool_status": ToolStatus::PendingApproval}),
            json!({"status": decision, "tool": approval.tool.to_string(), "tool_status": tool_status, "comment": comment}),
        );
        tx.append_audit(&[decided_entry]).await?;
        let decided = tx.approval(id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(decided)
    }

    /// Expires pending requests whose time ran out: each becomes `expired` and its tool
    /// `blocked`, recorded as done by `system`. Returns how many expired. The job runner
    /// calls this on every turn; reads and decisions call it first.
    pub async fn expire_approvals(&self) -> Result<u64> {
        self.authorize(Permission::Read)?;
        self.expire_approvals_internal().await
    }

    async fn expire_approvals_internal(&self) -> Result<u64> {
        let now = self.now();
        if !self.store().has_due_approvals(now).await? {
            return Ok(0);
        }
        let mut tx = self.store().begin().await?;
        let due = tx.due_approvals(now).await?;
        let mut entries = Vec::with_capacity(due.len());
        let mut environments: Vec<EnvironmentName> = Vec::new();
        for (approval, tool_id) in &due {
            let expired = ApprovalDecision {
                status: ApprovalStatus::Expired,
                decided_by: SYSTEM_ACTOR,
                decided_at: now,
                comment: None,
            };
            if !tx.decide_approval(approval.id, &expired).await? {
                continue;
            }
            tx.set_tool_status(*tool_id, ToolStatus::Blocked, now).await?;
            if !environments.contains(&approval.environment) {
                environments.push(approval.environment.clone());
            }
            entries.push(entry(
                SYSTEM_ACTOR,
                now,
                AuditEvent::ApprovalExpired,
                Some(&approval.environment),
                format!("approval {}", approval.id),
                json!({"status": ApprovalStatus::Pending, "tool": approval.tool.to_string(), "tool_status": ToolStatus::PendingApproval}),
                json!({"status": ApprovalStatus::Expired, "tool": approval.tool.to_string(), "tool_status": ToolStatus::Blocked, "expires_at": approval.expires_at}),
            ));
        }
        for environment in &environments {
            let row = tx.ensure_environment(environment, now).await?;
            tx.bump_generation(row.id).await?;
        }
        tx.append_audit(&entries).await?;
        tx.commit().await?;
        Ok(entries.len() as u64)
    }

    fn approval_ttl_ms(&self) -> i64 {
        i64::try_from(self.inner.settings.approval_ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// What the approval workflow decides for one registered tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    pub status: ToolStatus,
    /// The request that speaks for the tool, if any.
    pub approval: Option<i64>,
}

/// Settles a tool just written by a registration, inside its transaction. Without a
/// blocking conflict it is `active` (a pending request for it is superseded). With one,
/// the newest request for the same definition decides: approved → `active`, pending →
/// `pending_approval`, rejected or expired → `blocked`; with none (or one about another
/// definition), a new request opens and the tool waits in `pending_approval`.
///
/// `drifted_from` is the previous definition of an active tool that changed on its live
/// server: such a tool needs approval again even without a conflict, and its request
/// carries the diff.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settle(
    service: &Service,
    tx: &mut StoreTx,
    environment: &EnvironmentRow,
    record: &ToolRecord,
    views: &[ConflictView],
    drifted_from: Option<&mtgs_core::ToolDef>,
    now: i64,
    entries: &mut Vec<NewAuditEntry>,
) -> Result<Settled> {
    let actor = service.actor().to_owned();
    let blocking: Vec<&ConflictView> =
        views.iter().filter(|view| view.finding.severity.blocks() && view.status.is_live()).collect();
    let latest = tx.latest_approval(record.id).await?;
    let needs_approval = !blocking.is_empty() || drifted_from.is_some();
    if let Some(pending) = latest.as_ref().filter(|approval| approval.status == ApprovalStatus::Pending) {
        let same = pending.definition_hash == record.definition_hash;
        if !needs_approval || !same {
            let why = if needs_approval { "the definition changed" } else { "no longer needs approval" };
            let superseded = ApprovalDecision {
                status: ApprovalStatus::Superseded,
                decided_by: &actor,
                decided_at: now,
                comment: Some(why),
            };
            tx.decide_approval(pending.id, &superseded).await?;
            entries.push(entry(
                &actor,
                now,
                AuditEvent::ToolUpdated,
                Some(&environment.name),
                format!("{}/{}", record.server, record.def.name),
                json!({"approval": pending.id, "approval_status": ApprovalStatus::Pending}),
                json!({"approval": pending.id, "approval_status": ApprovalStatus::Superseded, "why": why}),
            ));
        }
    }
    if !needs_approval {
        return Ok(Settled { status: ToolStatus::Active, approval: None });
    }
    if let Some(latest) = latest.as_ref().filter(|approval| approval.definition_hash == record.definition_hash) {
        let status = match latest.status {
            ApprovalStatus::Approved => Some(ToolStatus::Active),
            ApprovalStatus::Pending => Some(ToolStatus::PendingApproval),
            ApprovalStatus::Rejected | ApprovalStatus::Expired => Some(ToolStatus::Blocked),
            ApprovalStatus::Superseded => None,
        };
        if let Some(status) = status {
            return Ok(Settled { status, approval: Some(latest.id) });
        }
    }
    let diff = drifted_from.map(|before| crate::sync::definition_diff(before, &record.def));
    let reason = json!({
        "drift": drifted_from.is_some(),
        "conflicts": blocking.iter().map(|view| json!({
            "id": view.id,
            "severity": view.finding.severity,
            "stage": view.finding.stage,
            "kind": view.finding.kind,
            "tool_a": view.finding.tool_a.to_string(),
            "tool_b": view.finding.tool_b.to_string(),
        })).collect::<Vec<_>>(),
    });
    let approval = tx
        .insert_approval(&NewApproval {
            environment_id: environment.id,
            tool_id: record.id,
            definition_hash: &record.definition_hash,
            reason: &reason,
            diff: diff.as_ref(),
            requested_by: &actor,
            requested_at: now,
            expires_at: now.saturating_add(service.approval_ttl_ms()),
        })
        .await?;
    entries.push(entry(
        &actor,
        now,
        AuditEvent::ApprovalRequested,
        Some(&environment.name),
        format!("approval {}", approval.id),
        Value::Null,
        json!({"status": ApprovalStatus::Pending, "tool": approval.tool.to_string(), "definition_hash": approval.definition_hash, "expires_at": approval.expires_at, "reason": reason, "diff": diff}),
    ));
    Ok(Settled { status: ToolStatus::PendingApproval, approval: Some(approval.id) })
}
