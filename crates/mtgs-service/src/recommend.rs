//! Verified recommendations for a tracked conflict: proposed and verified by the
//! detection core (`mtgs_detect::recommend`) against the environment's current detector,
//! with each patched definition prepared (embedded, given probes) as any tool is.

use mtgs_core::{Permission, Recommendation, ServerName, ToolDef};
use mtgs_detect::recommend::{propose, select, verify};

use crate::registry::Service;
use crate::{Result, ServiceError};

impl Service {
    /// Fixes for conflict `id` (`NotFound` if there is none), each verified by stages
    /// 1-4 with the fix applied: resolving fixes first, renames that would collide left
    /// out. Empty when either tool is no longer live.
    pub async fn recommendations(&self, id: i64) -> Result<Vec<Recommendation>> {
        self.authorize(Permission::Read)?;
        let conflict = self.conflict(id).await?;
        let row = self.existing_environment(&conflict.environment).await?;
        let state = self.environment_state(&row.name);
        let guard = self.current_detector_for_reading(&state, Some(&row)).await?;
        let (a, b) = (conflict.finding.tool_a.clone(), conflict.finding.tool_b.clone());
        let (guard, proposals) = tokio::task::spawn_blocking(move || {
            let proposals = guard.as_ref().map(|cached| propose(&cached.detector, &a, &b)).unwrap_or_default();
            (guard, proposals)
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("proposing fixes failed: {error}")))?;

        let patched: Vec<(ServerName, ToolDef)> = proposals
            .iter()
            .filter_map(|proposal| proposal.patched.clone().map(|def| (proposal.target.server.clone(), def)))
            .collect();
        let mut prepared = self.prepare(patched).await?.into_iter();
        let paired: Vec<_> = proposals
            .into_iter()
            .map(|proposal| {
                let tool = proposal.patched.as_ref().and_then(|_| prepared.next());
                (proposal, tool)
            })
            .collect();
        // Verifying applies each fix to the detector and puts it back: the write lock,
        // taken again (the registry may have moved on while the fixes were embedded).
        drop(guard);
        let row = self.existing_environment(&conflict.environment).await?;
        let mut guard = self.current_detector(&state, Some(&row)).await?;
        tokio::task::spawn_blocking(move || {
            let Some(cached) = guard.as_mut() else { return Vec::new() };
            let verified = verify(&mut cached.detector, paired);
            select(verified)
        })
        .await
        .map_err(|error| ServiceError::Internal(format!("verifying fixes failed: {error}")))
    }
}
