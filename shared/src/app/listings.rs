//! Listings: tags, referrers and the catalog (distribution-spec "Content discovery").

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
        if !self.views.repository_exists(repo).await? {
            return Err(AppError::NameUnknown(repo.clone()));
        }
        let tags = self.views.tags(repo, last, limit.saturating_add(1)).await?;
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
        Ok(Page::from_overfetch(matching, limit))
    }

    pub async fn catalog(&self, last: Option<&str>, limit: usize) -> Result<Page<RepoName>, AppError> {
        let repos = self.views.repositories(last, limit.saturating_add(1)).await?;
        Ok(Page::from_overfetch(repos, limit))
    }
}
