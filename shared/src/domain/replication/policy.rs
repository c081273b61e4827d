//! A replication policy (Harbor's `ReplicationPolicy`): which artifacts go from where to where,
//! under which names, on which trigger; and the pure part of a run, [`Policy::plan`]: given the
//! source's artifacts, the copies to make, each a subject with its accessories after it.
//!
//! Harbor's semantics, kept: one side is this registry (`src_registry` empty: push-based;
//! `dest_registry` empty: pull-based); the `name` filter matches a repository's full name and the
//! `tag` filter its tags (doublestar patterns, `matches` or `excludes`; an untagged artifact is
//! judged by the empty tag); `resource` is `image` or `artifact`; the destination name is
//! `dest_namespace` with `dest_namespace_replace_count` leading components of the source's path
//! replaced (-1: all but the last). Beyond Harbor: the `signed` and `verified` filters.

use serde::{Deserialize, Serialize};

use crate::domain::lifecycle::schedule::{CronSchedule, ScheduleError};
use crate::domain::lifecycle::selector::{Selector, SelectorError, Target, DOUBLESTAR};
use crate::domain::name::valid_namespace;
use crate::domain::Digest;

/// The longest policy name kept.
pub const MAX_NAME_CHARS: usize = 256;

/// A filter as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum FilterSpec {
    /// Repositories whose full name the pattern matches (or, `excludes`, does not).
    Name { pattern: String, excludes: bool },
    /// Artifacts with a tag the pattern matches (or, `excludes`, does not); only those tags go.
    Tag { pattern: String, excludes: bool },
    /// `image` (images and indexes of images) or `artifact` (everything).
    Resource { resource: String },
    /// Only artifacts that have a signature (cosign or Notation).
    Signed,
    /// Only artifacts whose signature verifies against the source project's trusted keys.
    Verified,
}

/// A trigger as recorded (Harbor's `manual`, `scheduled` with a cron, `event_based`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TriggerSpec {
    Manual,
    Scheduled { cron: String },
    EventBased,
}

/// A replication policy as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    pub id: u64,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The registry endpoint artifacts are pulled from; `None`: this registry (push-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_registry: Option<u64>,
    /// The registry endpoint artifacts are pushed to; `None`: this registry (pull-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_registry: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub destination_namespace: String,
    /// Leading path components of the source's name that the namespace replaces (-1: all but the
    /// last, Harbor's legacy flattening).
    #[serde(default)]
    pub destination_namespace_replace_count: i8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterSpec>,
    pub trigger: TriggerSpec,
    /// Deletions at the source are replicated (Harbor's `deletion`).
    #[serde(default)]
    pub deletion: bool,
    /// A tag that exists at the destination is moved (Harbor's `override`).
    #[serde(default)]
    pub override_existing: bool,
    pub enabled: bool,
    /// KB/s per task; 0 or -1: no limit.
    #[serde(default)]
    pub speed_kb: i32,
    #[serde(default)]
    pub copy_by_chunk: bool,
    /// A run is skipped while another of the policy is under way.
    #[serde(default)]
    pub single_active_replication: bool,
}

/// Why a policy cannot be kept as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Filter(#[from] SelectorError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

fn invalid(message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid(message.into())
}

/// Which way a policy copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From this registry to the endpoint.
    Push { destination: u64 },
    /// From the endpoint to this registry.
    Pull { source: u64 },
}

/// What `resource` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Image,
    Artifact,
}

/// A policy, checked and its filters compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    spec: PolicySpec,
    direction: Direction,
    names: Option<Selector>,
    tags: Option<Selector>,
    resource: Resource,
    signed: bool,
    verified: bool,
    schedule: Option<CronSchedule>,
}

/// An artifact of the source, as a run found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its repository's full name at the source.
    pub repository: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    /// An image, or an index of images (what `resource: image` keeps).
    pub image: bool,
    /// It has a signature accessory.
    pub signed: bool,
    /// A signature of it verifies against its project's trusted keys.
    pub verified: bool,
    /// Its accessories and referrers, and theirs, each after what it refers to.
    pub accessories: Vec<Digest>,
}

/// One copy a run makes: a subject, then its accessories in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    pub source_repository: String,
    pub destination_repository: String,
    pub digest: Digest,
    /// The tags that go with it (those the tag filter keeps); none: copied by digest.
    pub tags: Vec<String>,
    pub accessories: Vec<Digest>,
}

impl PolicySpec {
    /// Checks the spec and compiles its filters and schedule.
    pub fn compile(&self) -> Result<Policy, PolicyError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(invalid("empty name"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(format!("the max length of name is {MAX_NAME_CHARS}")));
        }
        let direction = match (self.source_registry, self.destination_registry) {
            (None, Some(destination)) => Direction::Push { destination },
            (Some(source), None) => Direction::Pull { source },
            _ => return Err(invalid(
                "either src_registry or dest_registry should be empty and the other one shouldn't be empty",
            )),
        };
        if !self.destination_namespace.is_empty() && !valid_namespace(&self.destination_namespace) {
            return Err(invalid(format!(
                "invalid destination namespace: {}",
                self.destination_namespace
            )));
        }
        if self.destination_namespace_replace_count < -1 {
            return Err(invalid(
                "dest_namespace_replace_count is -1 (all but the last component), 0 or more",
            ));
        }
        if self.speed_kb < -1 {
            return Err(invalid("speed is a number of KB/s; -1 or 0: no limit"));
        }
        let schedule = match &self.trigger {
            TriggerSpec::Scheduled { cron } => {
                let schedule = CronSchedule::parse(cron)?;
                if schedule.as_str().split(' ').nth(1) == Some("*") {
                    return Err(invalid(
                        "* is not allowed for the Minutes field of the cron setting of replication policy",
                    ));
                }
                Some(schedule)
            }
            TriggerSpec::Manual | TriggerSpec::EventBased => None,
        };
        let mut policy = Policy {
            spec: self.clone(),
            direction,
            names: None,
            tags: None,
            resource: Resource::Artifact,
            signed: false,
            verified: false,
            schedule,
        };
        let mut seen = std::collections::BTreeSet::new();
        for filter in &self.filters {
            let kind = match filter {
                FilterSpec::Name { .. } => "name",
                FilterSpec::Tag { .. } => "tag",
                FilterSpec::Resource { .. } => "resource",
                FilterSpec::Signed => "signed",
                FilterSpec::Verified => "verified",
            };
            if !seen.insert(kind) {
                return Err(invalid(format!("only one {kind} filter is allowed")));
            }
            let selector = |target, pattern: &str, excludes: bool| {
                let decoration = if excludes { "excludes" } else { "matches" };
                Selector::new(target, DOUBLESTAR, decoration, pattern)
            };
            match filter {
                FilterSpec::Name { pattern, excludes } => {
                    policy.names = Some(selector(Target::Name, pattern, *excludes)?);
                }
                FilterSpec::Tag { pattern, excludes } => {
                    policy.tags = Some(selector(Target::Tag, pattern, *excludes)?);
                }
                FilterSpec::Resource { resource } => {
                    policy.resource = match resource.as_str() {
                        "image" => Resource::Image,
                        "artifact" => Resource::Artifact,
                        other => {
                            return Err(invalid(format!(
                                "resource {other:?} is not one of \"image\", \"artifact\""
                            )))
                        }
                    };
                }
                FilterSpec::Signed => policy.signed = true,
                FilterSpec::Verified => policy.verified = true,
            }
        }
        Ok(policy)
    }
}

impl Policy {
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    pub fn id(&self) -> u64 {
        self.spec.id
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The endpoint the policy copies from or to.
    pub fn remote(&self) -> u64 {
        match self.direction {
            Direction::Push { destination } => destination,
            Direction::Pull { source } => source,
        }
    }

    /// Its schedule, for a scheduled policy.
    pub fn schedule(&self) -> Option<&CronSchedule> {
        self.schedule.as_ref()
    }

    /// Whether the `name` filter keeps repository `repository` (its full name).
    pub fn selects_repository(&self, repository: &str) -> bool {
        self.names.as_ref().is_none_or(|s| s.selects(repository))
    }

    /// The tags of `candidate` that go with it, if the policy copies it at all: `Some(vec![])`
    /// copies it by digest (untagged, or a tag filter that keeps the empty tag).
    pub fn selects(&self, candidate: &Candidate) -> Option<Vec<String>> {
        if !self.selects_repository(&candidate.repository)
            || (self.resource == Resource::Image && !candidate.image)
            || (self.signed && !candidate.signed)
            || (self.verified && !candidate.verified)
        {
            return None;
        }
        let Some(tags) = &self.tags else {
            return Some(candidate.tags.clone());
        };
        if candidate.tags.is_empty() {
            return tags.selects("").then(Vec::new);
        }
        let kept: Vec<String> = (candidate.tags.iter())
            .filter(|t| tags.selects(t))
            .cloned()
            .collect();
        (!kept.is_empty()).then_some(kept)
    }

    /// Where repository `repository` goes (Harbor's `replaceNamespace`).
    pub fn destination_of(&self, repository: &str) -> Result<String, PolicyError> {
        let namespace = &self.spec.destination_namespace;
        if namespace.is_empty() {
            return Ok(repository.to_string());
        }
        let components: Vec<&str> = repository.split('/').collect();
        let last = components.len() - 1;
        let prefix = match self.spec.destination_namespace_replace_count {
            count if count < 0 => namespace.clone(),
            count if count as usize > last => {
                return Err(invalid(format!(
                    "the source repository {repository:?} contains only {last} path components excepting the last one, but the destination namespace flattening level is {count}"
                )))
            }
            count => {
                let kept = components[count as usize..last].join("/");
                if kept.is_empty() {
                    namespace.clone()
                } else {
                    format!("{namespace}/{kept}")
                }
            }
        };
        Ok(format!("{prefix}/{}", components[last]))
    }

    /// The copies to make of `candidates`, in their order, each subject before its accessories;
    /// a candidate whose destination cannot be named is returned apart, with why.
    pub fn plan(&self, candidates: &[Candidate]) -> (Vec<CopyPlan>, Vec<(Candidate, PolicyError)>) {
        let mut copies = Vec::new();
        let mut refused = Vec::new();
        for candidate in candidates {
            let Some(tags) = self.selects(candidate) else {
                continue;
            };
            match self.destination_of(&candidate.repository) {
                Ok(destination_repository) => copies.push(CopyPlan {
                    source_repository: candidate.repository.clone(),
                    destination_repository,
                    digest: candidate.digest.clone(),
                    tags,
                    accessories: candidate.accessories.clone(),
                }),
                Err(e) => refused.push((candidate.clone(), e)),
            }
        }
        (copies, refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PolicySpec {
        PolicySpec {
            id: 1,
            name: "to-dr".into(),
            description: String::new(),
            source_registry: None,
            destination_registry: Some(2),
            destination_namespace: String::new(),
            destination_namespace_replace_count: 0,
            filters: vec![],
            trigger: TriggerSpec::Manual,
            deletion: false,
            override_existing: true,
            enabled: true,
            speed_kb: 0,
            copy_by_chunk: false,
            single_active_replication: false,
        }
    }

    fn digest(text: &str) -> Digest {
        Digest::compute(crate::domain::Algorithm::Sha256, text.as_bytes())
    }

    fn candidate(repository: &str, tags: &[&str]) -> Candidate {
        Candidate {
            repository: repository.into(),
            digest: digest(&format!("{repository}{tags:?}")),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            image: true,
            signed: false,
            verified: false,
            accessories: vec![],
        }
    }

    fn with(filters: Vec<FilterSpec>) -> Policy {
        PolicySpec { filters, ..spec() }.compile().unwrap()
    }

    #[test]
    fn one_side_is_this_registry() {
        assert_eq!(
            spec().compile().unwrap().direction(),
            Direction::Push { destination: 2 }
        );
        let pull = PolicySpec {
            source_registry: Some(3),
            destination_registry: None,
            ..spec()
        };
        assert_eq!(pull.compile().unwrap().direction(), Direction::Pull { source: 3 });
        for (source, destination) in [(None, None), (Some(3), Some(2))] {
            let both = PolicySpec {
                source_registry: source,
                destination_registry: destination,
                ..spec()
            };
            assert!(both.compile().is_err());
        }
    }

    #[test]
    fn names_and_tags_match_or_exclude_and_only_kept_tags_go() {
        let policy = with(vec![
            FilterSpec::Name {
                pattern: "library/**".into(),
                excludes: false,
            },
            FilterSpec::Tag {
                pattern: "v1.*".into(),
                excludes: false,
            },
        ]);
        assert_eq!(
            policy.selects(&candidate("library/app", &["v1.0", "latest", "v1.1"])),
            Some(vec!["v1.0".to_string(), "v1.1".to_string()])
        );
        assert_eq!(policy.selects(&candidate("library/app", &["latest"])), None);
        assert_eq!(policy.selects(&candidate("team/app", &["v1.0"])), None);
        // Untagged: judged by the empty tag.
        assert_eq!(policy.selects(&candidate("library/app", &[])), None);
        let everything = with(vec![FilterSpec::Tag {
            pattern: "**".into(),
            excludes: false,
        }]);
        assert_eq!(everything.selects(&candidate("library/app", &[])), Some(vec![]));
        let not_dev = with(vec![FilterSpec::Tag {
            pattern: "dev-*".into(),
            excludes: true,
        }]);
        assert_eq!(
            not_dev.selects(&candidate("a/b", &["dev-1", "1.0"])),
            Some(vec!["1.0".to_string()])
        );
    }

    #[test]
    fn signed_verified_and_resource_filters_keep_only_what_they_say() {
        let mut unsigned = candidate("library/app", &["1"]);
        let signed_only = with(vec![FilterSpec::Signed]);
        assert_eq!(signed_only.selects(&unsigned), None);
        unsigned.signed = true;
        assert!(signed_only.selects(&unsigned).is_some());
        let verified_only = with(vec![FilterSpec::Verified]);
        assert_eq!(verified_only.selects(&unsigned), None);
        unsigned.verified = true;
        assert!(verified_only.selects(&unsigned).is_some());
        let images = with(vec![FilterSpec::Resource {
            resource: "image".into(),
        }]);
        let mut chart = candidate("library/chart", &["1"]);
        chart.image = false;
        assert_eq!(images.selects(&chart), None);
        assert!(with(vec![]).selects(&chart).is_some());
    }

    #[test]
    fn destinations_follow_harbors_namespace_replacement() {
        let to = |namespace: &str, count: i8| {
            PolicySpec {
                destination_namespace: namespace.into(),
                destination_namespace_replace_count: count,
                ..spec()
            }
            .compile()
            .unwrap()
        };
        let repo = "a/b/c/image";
        assert_eq!(to("", 3).destination_of(repo).unwrap(), repo);
        assert_eq!(to("n", -1).destination_of(repo).unwrap(), "n/image");
        assert_eq!(to("n", 0).destination_of(repo).unwrap(), "n/a/b/c/image");
        assert_eq!(to("n", 1).destination_of(repo).unwrap(), "n/b/c/image");
        assert_eq!(to("n", 2).destination_of(repo).unwrap(), "n/c/image");
        assert_eq!(to("n", 3).destination_of(repo).unwrap(), "n/image");
        assert!(to("n", 4).destination_of(repo).is_err());
        let (copies, refused) =
            to("n", 2).plan(&[candidate("a/b/c/image", &["1"]), candidate("x/y", &["1"])]);
        assert_eq!(copies.len(), 1);
        assert_eq!(copies[0].destination_repository, "n/c/image");
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0.repository, "x/y");
    }

    #[test]
    fn malformed_policies_are_refused_with_why() {
        let refused = |spec: PolicySpec| spec.compile().unwrap_err().to_string();
        assert!(refused(PolicySpec {
            name: " ".into(),
            ..spec()
        })
        .contains("empty name"));
        assert!(refused(PolicySpec {
            destination_namespace: "Bad/NS".into(),
            ..spec()
        })
        .contains("namespace"));
        assert!(refused(PolicySpec {
            trigger: TriggerSpec::Scheduled {
                cron: "0 * * * * *".into()
            },
            ..spec()
        })
        .contains("Minutes"));
        assert!(PolicySpec {
            trigger: TriggerSpec::Scheduled {
                cron: "0 0 2 * * *".into()
            },
            ..spec()
        }
        .compile()
        .is_ok());
        assert!(refused(PolicySpec {
            filters: vec![FilterSpec::Signed, FilterSpec::Signed],
            ..spec()
        })
        .contains("only one"));
        assert!(refused(PolicySpec {
            filters: vec![FilterSpec::Resource {
                resource: "chart".into()
            }],
            ..spec()
        })
        .contains("chart"));
        assert!(PolicySpec {
            filters: vec![FilterSpec::Tag {
                pattern: "[".into(),
                excludes: false
            }],
            ..spec()
        }
        .compile()
        .is_err());
    }
}
