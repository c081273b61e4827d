//! Quotas atomic with the push (issue 13; docs/log-scale-out.md, "Quotas atomic with the push"):
//! pushers racing into a project at its limit never take it over, on either log adapter.

use std::sync::Arc;

use berth::app::{AppError, Registry, RequestContext};
use berth::domain::access::{AccessCommand, ProjectName};
use berth::domain::{Algorithm, Digest, RepoName};
use berth::ports::ByteStream;
use bytes::Bytes;
use tokio::sync::Barrier;

const PUSHERS: usize = 16;
const BLOB_BYTES: usize = 1_000;
/// Room for half of the pushers' blobs.
const LIMIT: u64 = (PUSHERS / 2 * BLOB_BYTES) as u64;

/// Sixteen clients each upload a different 1,000-byte blob into a project whose quota holds eight,
/// all at once (into one repository and into their own, by halves): exactly eight are linked, the
/// others are refused with the quota's message, and the project stores exactly its limit.
pub async fn concurrent_pushers_at_the_limit_never_exceed_it(registry: Registry) {
    let ctx = RequestContext::anonymous();
    let project: ProjectName = "tight".parse().unwrap();
    registry
        .change_access(
            &ctx,
            AccessCommand::CreateProject {
                name: project.clone(),
                public: false,
                quota: Some(LIMIT),
                owner: None,
                metadata: Default::default(),
            },
        )
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(PUSHERS));
    let tasks: Vec<_> = (0..PUSHERS)
        .map(|i| {
            let (registry, barrier) = (registry.clone(), barrier.clone());
            let repo: RepoName = match i % 2 {
                0 => "tight/shared".parse().unwrap(),
                _ => format!("tight/own{i}").parse().unwrap(),
            };
            tokio::spawn(async move {
                let mut bytes = vec![b'x'; BLOB_BYTES];
                bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let digest = Digest::compute(Algorithm::Sha256, &bytes);
                let id = registry.start_upload(&repo).await.unwrap();
                let body: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from(bytes))]));
                barrier.wait().await;
                let ctx = RequestContext::anonymous();
                registry
                    .finish_upload(&ctx, &repo, &id, &digest, Some((None, body)))
                    .await
            })
        })
        .collect();
    let (mut linked, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(size) => {
                assert_eq!(size, BLOB_BYTES as u64);
                linked += 1;
            }
            Err(AppError::Denied(message)) => {
                assert!(message.contains("quota exceeded"), "{message}");
                refused += 1;
            }
            Err(other) => panic!("a pusher failed otherwise: {other}"),
        }
    }
    let usage = registry.project_usage(&project).await.unwrap();
    assert_eq!(
        (linked, refused, usage),
        (PUSHERS / 2, PUSHERS / 2, LIMIT),
        "exactly the blobs that fit are linked, and the project stores its limit"
    );
}
