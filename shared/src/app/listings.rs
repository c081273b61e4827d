//! Listings: tags, referrers and the catalog (distribution-spec "Content discovery").

use crate::domain::manifest::ManifestInfo;
use crate::domain::projection::ReferrerRecord;
use crate::domain::{Digest, RepoName, Tag};

use super::{AppError, Registry};

/// One page of a listing, and whether another follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    fn from_overfetch(mut items: Vec<T>, limit: usize) -> Page<T> {
        // `n=0` asks for nothing and must not link to a next page (the spec forbids a Link then).
        let more = limit > 0 && items.len() > limit;
        items.truncate(limit);
        Page { items, more }
    }
}

impl Registry {
    pub async fn tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Page<Tag>, AppError> {
        let tags = self.views.tags(repo, last, limit.saturating_add(1)).await?;
        // A repository with tags exists: only an empty page needs the second read (one request
        // per listing on DynamoDB, not two).
        if tags.is_empty() && !self.views.repository_exists(repo).await? {
            return Err(AppError::NameUnknown(repo.clone()));
        }
        Ok(Page::from_overfetch(tags, limit))
    }

    /// Referrers of `subject`, optionally of one artifact type, in digest order after `last`.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Page<ReferrerRecord>, AppError> {
        let all = self.views.referrers(repo, subject).await?;
        let matching: Vec<ReferrerRecord> = (all.into_iter())
            .filter(|r| artifact_type.is_none_or(|t| r.artifact_type.as_deref() == Some(t)))
            .filter(|r| last.is_none_or(|l| r.digest.to_string().as_str() > l))
            .take(limit.saturating_add(1))
            .collect();
        let mut page = Page::from_overfetch(matching, limit);
        for referrer in page.items.iter_mut().filter(|r| r.annotations_omitted) {
            let content = self.read_whole_blob(&referrer.digest).await?;
            referrer.annotations = ManifestInfo::annotations_of(&content)
                .map_err(|e| AppError::Backend(format!("stored manifest {}: {e}", referrer.digest)))?;
            referrer.annotations_omitted = false;
        }
        Ok(page)
    }

    pub async fn catalog(&self, last: Option<&str>, limit: usize) -> Result<Page<RepoName>, AppError> {
        let repos = self.views.repositories(last, limit.saturating_add(1)).await?;
        Ok(Page::from_overfetch(repos, limit))
    }
}
