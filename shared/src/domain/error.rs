//! Refusals of the domain's decisions. Each maps to one OCI error code at the HTTP edge.

use super::digest::Digest;
use super::name::Tag;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("manifest references blobs the repository does not have: {}", join(.0))]
    ManifestBlobUnknown(Vec<Digest>),
    #[error("index references manifests the repository does not have: {}", join(.0))]
    ManifestChildUnknown(Vec<Digest>),
    #[error("manifest {0} is not in the repository")]
    ManifestUnknown(Digest),
    #[error("tag {0} is not in the repository")]
    TagUnknown(Tag),
    #[error("blob {0} is not in the repository")]
    BlobUnknown(Digest),
}

fn join(digests: &[Digest]) -> String {
    digests
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
