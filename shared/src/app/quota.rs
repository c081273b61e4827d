//! Per-project storage quotas (Harbor "Configure Project Quotas"): a project's usage is the size of
//! every blob linked to one of its repositories and of every manifest, each digest counted once
//! per project (a layer shared by two repositories of one project counts once). Signatures and
//! other accessories are artifacts like any other: they count.

use std::collections::BTreeMap;

use crate::domain::access::ProjectName;
use crate::domain::{Digest, Event, RepoName};

use super::{AppError, Registry};

/// Repositories read per catalog page while adding up a project's usage.
const CATALOG_PAGE: usize = 1_000;

impl Registry {
    /// Bytes the project stores now.
    pub async fn project_usage(&self, project: &ProjectName) -> Result<u64, AppError> {
        Ok(self.project_objects(project).await?.values().sum())
    }

    async fn project_objects(&self, project: &ProjectName) -> Result<BTreeMap<Digest, u64>, AppError> {
        let prefix = format!("{project}/");
        let mut objects = BTreeMap::new();
        // The catalog is in lexical order: start just before the project's prefix.
        let mut after: Option<String> = Some(project.to_string());
        'pages: loop {
            let repos = self.views.repositories(after.as_deref(), CATALOG_PAGE).await?;
            let full = repos.len() == CATALOG_PAGE;
            for repo in &repos {
                let name = repo.as_str();
                if name > prefix.as_str() && !name.starts_with(&prefix) {
                    break 'pages;
                }
                if name.starts_with(&prefix) || name == project.as_str() {
                    for (digest, size) in self.views.stored(repo).await? {
                        objects.insert(digest, size);
                    }
                }
            }
            after = repos.last().map(ToString::to_string);
            if !full || after.is_none() {
                break;
            }
        }
        // A repository named exactly like its project ("library") is its own project's too.
        if let Ok(repo) = project.as_str().parse::<RepoName>() {
            if self.views.repository_exists(&repo).await? {
                for (digest, size) in self.views.stored(&repo).await? {
                    objects.insert(digest, size);
                }
            }
        }
        Ok(objects)
    }

    /// Refuses adding `digest` of `size` bytes to `repo` if that would take its project over its
    /// quota (a digest the project already stores adds nothing). An early answer, before content is
    /// stored; the decision that links the content checks again atomically ([`Registry::quota_use`]).
    pub(super) async fn check_quota(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), AppError> {
        self.quota_use(repo, digest, size).await.map(drop)
    }

    /// What adding `digest` of `size` bytes to `repo` does to its project's quota: nothing (`None`)
    /// when the project has no quota or stores the digest already; the `QuotaUsed` event to append
    /// with the write when it fits; `Denied` when it does not. The event goes to the project's
    /// quota stream, which `decide_and_append` then guards: of two concurrent additions to one
    /// project one conflicts, reloads, and is decided against the usage the other left, so together
    /// they never take the project over its limit (docs/log-scale-out.md, "Quotas atomic with the
    /// push").
    pub(super) async fn quota_use(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<Event>, AppError> {
        let Some(project) = crate::oci::auth::project_of(repo.as_str()) else {
            return Ok(None);
        };
        let directory = self.directory().await?;
        let Some(limit) = directory.project(&project).and_then(|p| p.quota) else {
            return Ok(None);
        };
        let objects = self.project_objects(&project).await?;
        if objects.contains_key(digest) {
            return Ok(None);
        }
        let usage: u64 = objects.values().sum();
        if usage.saturating_add(size) > limit {
            return Err(AppError::Denied(format!(
                "quota exceeded: project {project} may store {limit} bytes and stores {usage}; \
                 {digest} needs {size} more"
            )));
        }
        Ok(Some(Event::QuotaUsed {
            project,
            repository: repo.clone(),
            digest: digest.clone(),
            size,
        }))
    }
}
