//! Event-based replication (issue 15, docs/replication.md): the `replication` subscription of the
//! log. A tag moved, or an accessory linked (a signature, an SBOM, a referrer: it replicates its
//! root subject, with every accessory), in a repository an enabled event-based push policy
//! selects, replicates that artifact at once (`Registry::replicate_on_event`). So an image pushed
//! unsigned and signed a minute later reaches a `signed`-filtered destination with its signature,
//! and a signature added to an image replicated long ago follows it.
//!
//! With a policy's `deletion` on, what is deleted here is deleted there: a signature or other
//! accessory unlinked (by its digest), an artifact deleted by digest, a tag deleted alone.
//!
//! Delivery is at least once and copies are idempotent (HEAD before every blob, manifests PUT by
//! digest); a copy that fails is a failed task of its execution, not a failed delivery, so one
//! unreachable destination does not hold the subscription back. Events older than a policy are
//! left alone, so a replay of the log copies nothing its policies were not there for.

use async_trait::async_trait;

use crate::domain::access::Principal;
use crate::domain::accessory::SchemeTag;
use crate::domain::{Event, RecordedEvent};
use crate::ports::{EventSink, ProjectionError};

use super::{Registry, RequestContext};

/// The subscription's name (its checkpoint).
pub const REPLICATION_SUBSCRIPTION: &str = "replication";

/// The handler of the `replication` subscription.
pub struct ReplicationTriggers {
    registry: Registry,
}

impl ReplicationTriggers {
    pub fn new(registry: Registry) -> ReplicationTriggers {
        ReplicationTriggers { registry }
    }
}

#[async_trait]
impl EventSink for ReplicationTriggers {
    async fn publish(&self, recorded: &RecordedEvent) -> Result<(), ProjectionError> {
        let failed = |e: super::AppError| ProjectionError::Sink(format!("event-based replication: {e}"));
        let ctx = RequestContext::as_principal(Principal::system());
        let at = recorded.envelope.time;
        let deleted = match &recorded.envelope.event {
            // Deleted here: deleted there too, under policies with `deletion` on. A signature
            // unlinked goes by its digest; a manifest deleted by digest (its tags and accessories
            // go with it there as here); a tag deleted alone, by its name.
            Event::AccessoryUnlinked {
                repository, digest, ..
            } => Some((repository, digest, None)),
            Event::ManifestDeleted {
                repository,
                digest,
                subject: None,
                ..
            } => Some((repository, digest, None)),
            Event::TagDeleted {
                repository,
                tag,
                digest,
            } if SchemeTag::parse(tag).is_none() => Some((repository, digest, Some(tag.to_string()))),
            _ => None,
        };
        if let Some((repository, digest, tag)) = deleted {
            let ran = self
                .registry
                .replicate_deletion(&ctx, repository, digest, tag.as_deref(), at)
                .await
                .map_err(failed)?;
            for execution in ran {
                tracing::info!(policy = execution.policy, execution = execution.id, status = %execution.status, %repository, %digest, "replicated a deletion");
            }
            return Ok(());
        }
        let (repository, digest) = match &recorded.envelope.event {
            Event::TagMoved {
                repository,
                tag,
                digest,
                ..
            } if SchemeTag::parse(tag).is_none() => (repository, digest.clone()),
            Event::AccessoryLinked {
                repository, subject, ..
            } => {
                let root = self.registry.root_subject(repository, subject).await;
                (repository, root.map_err(failed)?)
            }
            _ => return Ok(()),
        };
        let ctx = RequestContext::as_principal(Principal::system());
        let at = recorded.envelope.time;
        let ran = (self
            .registry
            .replicate_on_event(&ctx, repository, &digest, at)
            .await)
            .map_err(failed)?;
        for execution in ran {
            tracing::info!(
                policy = execution.policy,
                execution = execution.id,
                status = %execution.status,
                repository = %repository,
                digest = %digest,
                "event-based replication ran"
            );
        }
        Ok(())
    }
}
