//! Whether the registry can serve (Harbor's `/health`): each component it depends on answers one
//! cheap read within a time limit. `core` is the process answering; `log` the event log and its
//! views (redb, or DynamoDB); `blobs` the blob store (the data directory, or S3).

use std::future::Future;
use std::time::Duration;

use super::Registry;
use crate::domain::{Algorithm, Digest, StreamId};

/// How long a component may take to answer before it counts as unhealthy.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// One component's state: healthy unless `error` says why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentHealth {
    pub name: &'static str,
    pub error: Option<String>,
}

impl ComponentHealth {
    pub fn healthy(&self) -> bool {
        self.error.is_none()
    }
}

async fn probe<T, E: std::fmt::Display>(
    name: &'static str,
    read: impl Future<Output = Result<T, E>>,
) -> ComponentHealth {
    let error = match tokio::time::timeout(HEALTH_TIMEOUT, read).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("no answer within {} s", HEALTH_TIMEOUT.as_secs())),
    };
    ComponentHealth { name, error }
}

impl Registry {
    /// Every component's health, probed at once.
    pub async fn health(&self) -> Vec<ComponentHealth> {
        // A digest no blob has: the store answers "absent" when it is reachable.
        let nothing = Digest::compute(Algorithm::Sha256, b"berth health probe");
        let access = StreamId::access();
        let (log, blobs) = tokio::join!(
            probe("log", self.log.stream_version(&access)),
            probe("blobs", self.blobs.stat(&nothing)),
        );
        vec![
            ComponentHealth {
                name: "core",
                error: None,
            },
            log,
            blobs,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_component_that_fails_its_read_is_unhealthy_with_the_reason() {
        let down = probe("log", async { Err::<(), _>("connection refused") }).await;
        assert!(!down.healthy());
        assert_eq!(down.error.as_deref(), Some("connection refused"));
        let up = probe("log", async { Ok::<_, String>(7) }).await;
        assert!(up.healthy());
    }
}
