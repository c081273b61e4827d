//! Rebuilding the views from the log: drop every view, replay every event through the projection,
//! and compare with what the views held.

use crate::domain::projection::ops_for;
use crate::domain::LogPosition;

use super::{AppError, Registry};

/// Events read per page during a replay.
const REPLAY_PAGE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: u64,
    /// Rows present before but not after the rebuild, and after but not before.
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
}

impl RebuildReport {
    pub fn identical(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

impl Registry {
    /// Replays the whole log into empty views. Run it while nothing else writes.
    pub async fn rebuild_views(&self) -> Result<RebuildReport, AppError> {
        let before = self.views.dump().await?;
        self.views.clear().await?;
        let mut after = LogPosition::start();
        let mut events = 0;
        loop {
            let page = self.log.read_all(&after, REPLAY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.position.clone();
            events += page.len() as u64;
            let ops = page.iter().flat_map(ops_for).collect();
            self.views.apply(ops).await?;
        }
        let after = self.views.dump().await?;
        Ok(RebuildReport {
            events,
            missing: before
                .iter()
                .filter(|r| after.binary_search(r).is_err())
                .cloned()
                .collect(),
            unexpected: after
                .iter()
                .filter(|r| before.binary_search(r).is_err())
                .cloned()
                .collect(),
        })
    }
}
