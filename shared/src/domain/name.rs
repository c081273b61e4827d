//! Repository names and tags (distribution-spec v1.1.1 "Pulling manifests": the `<name>` and
//! `<reference>` grammars).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::digest::{Digest, DigestParseError};

/// Longest repository name Berth accepts (the spec asks clients to stay within 255 characters
/// including the registry host; distribution enforces 255 on the name).
pub const MAX_REPO_NAME_LEN: usize = 255;
/// Longest tag the spec's grammar allows (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

/// A repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name must not be empty")]
    Empty,
    #[error("repository name is longer than {MAX_REPO_NAME_LEN} characters")]
    TooLong,
    #[error("repository name component {0:?} must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*")]
    BadComponent(String),
    #[error(
        "repository name {0:?} names a project only: repositories live in projects, name one as \
         <project>/<repository> (e.g. library/{0})"
    )]
    ProjectOnly(String),
    #[error("tag must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    BadTag,
    #[error("invalid digest: {0}")]
    BadDigest(#[from] DigestParseError),
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Whether `namespace` is a path of repository name components (`a/b-c`): a prefix a repository
/// name may have, such as replication's destination namespace.
pub fn valid_namespace(namespace: &str) -> bool {
    !namespace.is_empty() && namespace.len() <= MAX_REPO_NAME_LEN && namespace.split('/').all(valid_component)
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_component(component: &str) -> bool {
    let b = component.as_bytes();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < b.len() && is_alnum(b[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if b.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a name a client sends: the spec's grammar, and (as in Harbor) at least two components,
    /// `<project>/<repository>`, since every repository lives in a project.
    pub fn in_project(s: &str) -> Result<RepoName, NameError> {
        let name: RepoName = s.parse()?;
        if !name.0.contains('/') {
            return Err(NameError::ProjectOnly(name.0));
        }
        Ok(name)
    }

    /// The first path component: the project the repository belongs to.
    pub fn project(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_REPO_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(bad) = s.split('/').find(|c| !valid_component(c)) {
            return Err(NameError::BadComponent(bad.to_string()));
        }
        Ok(RepoName(s.to_string()))
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let first_ok = b.first().is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let rest_ok = b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_TAG_LEN {
            return Err(NameError::BadTag);
        }
        Ok(Tag(s.to_string()))
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t.as_str()),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

macro_rules! string_newtype_serde {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
string_newtype_serde!(RepoName);
string_newtype_serde!(Tag);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec_grammar() {
        let valid = ["a", "library/alpine", "a.b_c__d---e/f0", "x/y/z", "0"];
        for name in valid {
            assert!(name.parse::<RepoName>().is_ok(), "{name} should be valid");
        }
        let long = "a".repeat(256);
        let invalid = [
            "",
            "A",
            "library/Alpine",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a/",
            "/a",
            "a//b",
            "..",
            "a/../b",
            "a b",
            "a:b",
            long.as_str(),
            "a.-b",
            "_a",
        ];
        for name in invalid {
            assert!(name.parse::<RepoName>().is_err(), "{name:?} should be invalid");
        }
    }

    #[test]
    fn a_client_names_a_repository_inside_a_project() {
        for name in ["library/alpine", "team/app/api", "a/b"] {
            assert!(RepoName::in_project(name).is_ok(), "{name} should be valid");
        }
        assert_eq!(
            RepoName::in_project("alpine"),
            Err(NameError::ProjectOnly("alpine".to_string()))
        );
        for name in ["", "A/b", "a/../b", "a//b", "/a"] {
            assert!(RepoName::in_project(name).is_err(), "{name:?} should be invalid");
        }
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        let max = "a".repeat(128);
        for tag in ["latest", "_x", "v1.2.3-rc_1", "A", max.as_str()] {
            assert!(tag.parse::<Tag>().is_ok(), "{tag} should be valid");
        }
        let long = "a".repeat(129);
        for tag in ["", "-bad", ".bad", "a/b", "a:b", "a+b", long.as_str()] {
            assert!(tag.parse::<Tag>().is_err(), "{tag:?} should be invalid");
        }
    }

    #[test]
    fn a_reference_with_a_colon_is_a_digest() {
        assert!(matches!("latest".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:abc".parse::<Reference>(),
            Err(NameError::BadDigest(_))
        ));
    }
}
