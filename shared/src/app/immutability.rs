//! Tag immutability where tags change (docs/lifecycle.md): every decision that moves a tag to
//! another digest or deletes one (a push by tag, a tag or artifact deletion, over /v2 or the API)
//! is checked against its project's immutable tag rules before it is appended. Accessories stay
//! free: their scheme tags are never held, and linking or unlinking them moves no user tag.
//!
//! The rules come from the access directory, at most a second stale (`DIRECTORY_FRESHNESS`): a
//! change decided in the second after a rule was added may still pass.

use crate::domain::access::ProjectName;
use crate::domain::lifecycle::immutability;
use crate::domain::Event;

use super::{AppError, Registry};

impl Registry {
    /// Refuses `events` when one of them moves or deletes a tag an immutable rule holds.
    pub(super) async fn check_immutable(&self, events: &[Event]) -> Result<(), AppError> {
        let mut directory = None;
        for event in events {
            let (repository, tag, current, new) = match event {
                Event::TagMoved {
                    repository,
                    tag,
                    digest,
                    previous,
                } => (repository, tag, previous.as_ref(), Some(digest)),
                Event::TagDeleted {
                    repository,
                    tag,
                    digest,
                } => (repository, tag, Some(digest), None),
                _ => continue,
            };
            let directory = match &directory {
                Some(directory) => directory,
                None => directory.insert(self.directory().await?),
            };
            let Some(project) =
                (ProjectName::parse(repository.project()).ok()).and_then(|p| directory.project(&p))
            else {
                continue;
            };
            let rules = &project.immutable_rules;
            match new {
                Some(new) => immutability::check_move(rules, repository, tag, current, new)?,
                None => immutability::check_delete(rules, repository, tag)?,
            }
        }
        Ok(())
    }
}
