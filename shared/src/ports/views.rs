//! The read views (inline projections of the log) that the distribution API reads.

use async_trait::async_trait;

use crate::domain::accessory::{AccessoryRecord, VerdictRecord};
use crate::domain::projection::{ManifestRecord, ReferrerRecord, ViewOp};
use crate::domain::{Digest, RepoName, Tag};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    #[error("views backend failed: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Views: Send + Sync {
    async fn tag(&self, repo: &RepoName, tag: &Tag) -> Result<Option<Digest>, ViewError>;
    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, ViewError>;
    /// The size of the blob if it is linked to the repository.
    async fn blob_link(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>, ViewError>;
    /// Tags in the spec's lexical order (case-insensitive: by the lowercased tag, ties broken by
    /// the tag's bytes), starting after `after`, at most `limit`.
    async fn tags(&self, repo: &RepoName, after: Option<&str>, limit: usize) -> Result<Vec<Tag>, ViewError>;
    /// Tags that point to `digest`.
    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<Tag>, ViewError>;
    /// Referrers of `subject` in digest order.
    async fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<ReferrerRecord>, ViewError>;
    /// Every manifest of the repository, in digest order (for listings and re-verification).
    async fn manifests(&self, repo: &RepoName) -> Result<Vec<ManifestRecord>, ViewError>;
    /// The manifests that use `blob` (as config or layer), in digest order. May name manifests
    /// deleted since (the rows are content facts, never deleted): look each one up.
    async fn manifests_using(&self, repo: &RepoName, blob: &Digest) -> Result<Vec<Digest>, ViewError>;
    /// The indexes that hold `child`, in digest order; like [`Views::manifests_using`], they may be
    /// gone since.
    async fn indexes_holding(&self, repo: &RepoName, child: &Digest) -> Result<Vec<Digest>, ViewError>;
    /// The accessories linked to `subject`, in digest order.
    async fn accessories(&self, repo: &RepoName, subject: &Digest)
        -> Result<Vec<AccessoryRecord>, ViewError>;
    /// The subjects `accessory` is linked to (empty if it is not an accessory).
    async fn subjects_of(&self, repo: &RepoName, accessory: &Digest) -> Result<Vec<Digest>, ViewError>;
    /// The latest verdict on `signature` as a signature of `subject`.
    async fn verdict(
        &self,
        repo: &RepoName,
        signature: &Digest,
        subject: &Digest,
    ) -> Result<Option<VerdictRecord>, ViewError>;
    async fn repository_exists(&self, repo: &RepoName) -> Result<bool, ViewError>;
    /// Repositories in lexical order, starting after `after`, at most `limit`.
    async fn repositories(&self, after: Option<&str>, limit: usize) -> Result<Vec<RepoName>, ViewError>;

    /// What the repository stores, for quotas: every linked blob and every manifest, as
    /// `(digest, size)` in digest order (a digest both a blob and a manifest appears once per kind).
    async fn stored(&self, repo: &RepoName) -> Result<Vec<(Digest, u64)>, ViewError>;

    /// Applies projection ops outside an append (used by rebuilds).
    async fn apply(&self, ops: Vec<ViewOp>) -> Result<(), ViewError>;
    /// Drops every row of every view.
    async fn clear(&self) -> Result<(), ViewError>;
    /// Every row of every view as `view key value` lines, ordered: two dumps are equal iff the views are.
    async fn dump(&self) -> Result<Vec<String>, ViewError>;
}
