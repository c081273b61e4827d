//! Project roles and the repository actions they allow (Harbor "User Permissions By Role").

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// What a principal does to a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Read manifests, blobs, tags and referrers.
    Pull,
    /// Upload blobs, push manifests, move tags.
    Push,
    /// Delete manifests, tags and blobs (and so signatures).
    Delete,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

    /// The name in token scopes (`repository:<name>:pull,push,delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    /// Parses a scope action; `*` is every action.
    pub fn parse_scope(s: &str) -> Vec<Action> {
        match s {
            "pull" => vec![Action::Pull],
            "push" => vec![Action::Push],
            "delete" => vec![Action::Delete],
            "*" => Action::ALL.to_vec(),
            _ => vec![],
        }
    }
}

/// A member's role in a project. Numbers are Harbor's `role_id`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
}

impl Role {
    pub fn id(self) -> u32 {
        match self {
            Role::ProjectAdmin => 1,
            Role::Developer => 2,
            Role::Guest => 3,
            Role::Maintainer => 4,
        }
    }

    pub fn from_id(id: u32) -> Option<Role> {
        [Role::ProjectAdmin, Role::Developer, Role::Guest, Role::Maintainer]
            .into_iter()
            .find(|r| r.id() == id)
    }

    /// Harbor's `role_name`.
    pub fn name(self) -> &'static str {
        match self {
            Role::ProjectAdmin => "projectAdmin",
            Role::Maintainer => "maintainer",
            Role::Developer => "developer",
            Role::Guest => "guest",
        }
    }

    /// Guests pull; developers push but cannot delete; maintainers and admins delete.
    pub fn actions(self) -> BTreeSet<Action> {
        match self {
            Role::Guest => [Action::Pull].into(),
            Role::Developer => [Action::Pull, Action::Push].into(),
            Role::Maintainer | Role::ProjectAdmin => Action::ALL.into(),
        }
    }

    /// Only project admins manage members, robots and the project's settings.
    pub fn manages_project(self) -> bool {
        self == Role::ProjectAdmin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_are_harbors() {
        for role in [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest] {
            assert_eq!(Role::from_id(role.id()), Some(role));
        }
        assert_eq!(Role::from_id(5), None);
        assert_eq!(Role::Maintainer.id(), 4);
    }

    #[test]
    fn only_maintainers_and_admins_delete() {
        assert!(!Role::Developer.actions().contains(&Action::Delete));
        assert!(Role::Maintainer.actions().contains(&Action::Delete));
        assert!(!Role::Guest.actions().contains(&Action::Push));
        assert!(!Role::Maintainer.manages_project());
    }
}
