//! Tag immutability, as Harbor's immutable tag rules define it: a project's rules (at most 15) each
//! select repositories and tags; a tag any enabled rule selects may be created, and pushed again to
//! the digest it holds, but never moved to another digest nor deleted, and the artifact it tags may
//! not be deleted either.
//!
//! Beyond Harbor (goharbor/harbor#17332): signatures and other accessories stay free. The cosign
//! scheme tags an accessory is stored under (`sha256-<hex>.sig|.att|.sbom`) are never immutable
//! user tags, whatever the patterns say, so re-signing an immutable image works.
//!
//! Repository selectors see the repository's name within its project (`app`, `team/app` in
//! project `library`), as Harbor's do.

use serde::{Deserialize, Serialize};

use super::selector::{Selector, SelectorError, Target, DOUBLESTAR};
use crate::domain::accessory::SchemeTag;
use crate::domain::{Digest, RepoName, Tag};

/// Harbor's limit of rules per project.
pub const MAX_RULES_PER_PROJECT: usize = 15;

/// One rule, its selectors compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableRule {
    pub id: u64,
    pub priority: i64,
    pub disabled: bool,
    tag_selectors: Vec<Selector>,
    scope_selectors: Vec<Selector>,
}

/// Why a rule or a rule set is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a rule needs at least one tag selector")]
    NoTagSelector,
    #[error("a rule needs at least one repository selector (scope_selectors.repository)")]
    NoRepositorySelector,
    #[error("a {expected:?} selector was given where a {given:?} one belongs")]
    WrongTarget { expected: Target, given: Target },
    #[error("a project has at most {MAX_RULES_PER_PROJECT} immutable tag rules")]
    TooMany,
    #[error(transparent)]
    Selector(#[from] SelectorError),
}

/// One selector as events and Harbor's API carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectorSpec {
    pub kind: String,
    pub decoration: String,
    pub pattern: String,
}

/// A rule as events record it: Harbor's fields, selectors uncompiled (`repository_selectors` is
/// Harbor's `scope_selectors.repository`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    pub id: u64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    pub tag_selectors: Vec<SelectorSpec>,
    pub repository_selectors: Vec<SelectorSpec>,
}

impl SelectorSpec {
    pub(super) fn compile(&self, target: Target) -> Result<Selector, SelectorError> {
        Selector::new(target, &self.kind, &self.decoration, &self.pattern)
    }

    pub(super) fn of(selector: &Selector) -> SelectorSpec {
        SelectorSpec {
            kind: DOUBLESTAR.to_string(),
            decoration: selector
                .target()
                .decoration_name(selector.decoration())
                .to_string(),
            pattern: selector.pattern().to_string(),
        }
    }
}

impl RuleSpec {
    /// The rule, its selectors checked and compiled.
    pub fn compile(&self) -> Result<ImmutableRule, RuleError> {
        let compile = |specs: &[SelectorSpec], target| {
            (specs.iter())
                .map(|s| s.compile(target))
                .collect::<Result<Vec<_>, _>>()
        };
        ImmutableRule::new(
            self.id,
            self.priority,
            self.disabled,
            compile(&self.tag_selectors, Target::Tag)?,
            compile(&self.repository_selectors, Target::Repository)?,
        )
    }
}

impl ImmutableRule {
    pub fn new(
        id: u64,
        priority: i64,
        disabled: bool,
        tag_selectors: Vec<Selector>,
        scope_selectors: Vec<Selector>,
    ) -> Result<ImmutableRule, RuleError> {
        if tag_selectors.is_empty() {
            return Err(RuleError::NoTagSelector);
        }
        if scope_selectors.is_empty() {
            return Err(RuleError::NoRepositorySelector);
        }
        for (selectors, expected) in [
            (&tag_selectors, Target::Tag),
            (&scope_selectors, Target::Repository),
        ] {
            if let Some(wrong) = selectors.iter().find(|s| s.target() != expected) {
                return Err(RuleError::WrongTarget {
                    expected,
                    given: wrong.target(),
                });
            }
        }
        Ok(ImmutableRule {
            id,
            priority,
            disabled,
            tag_selectors,
            scope_selectors,
        })
    }

    pub fn tag_selectors(&self) -> &[Selector] {
        &self.tag_selectors
    }

    pub fn scope_selectors(&self) -> &[Selector] {
        &self.scope_selectors
    }

    /// The rule as events record it.
    pub fn spec(&self) -> RuleSpec {
        RuleSpec {
            id: self.id,
            priority: self.priority,
            disabled: self.disabled,
            tag_selectors: self.tag_selectors.iter().map(SelectorSpec::of).collect(),
            repository_selectors: self.scope_selectors.iter().map(SelectorSpec::of).collect(),
        }
    }

    /// Whether the rule, enabled, selects `tag` in the repository named `in_project` (its name
    /// within the project).
    pub fn selects(&self, in_project: &str, tag: &Tag) -> bool {
        !self.disabled
            && self.scope_selectors.iter().all(|s| s.selects(in_project))
            && self.tag_selectors.iter().all(|s| s.selects(tag.as_str()))
    }
}

impl Serialize for ImmutableRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.spec().serialize(serializer)
    }
}

/// Checks that a project may hold `rules` (Harbor's limit).
pub fn check_rule_set(rules: &[ImmutableRule]) -> Result<(), RuleError> {
    match rules.len() > MAX_RULES_PER_PROJECT {
        true => Err(RuleError::TooMany),
        false => Ok(()),
    }
}

/// A tag change refused by an immutable rule; the message is Harbor's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Failed to process request due to '{repository}:{tag}' configured as immutable.")]
pub struct Immutable {
    pub repository: RepoName,
    pub tag: Tag,
    /// The rule that holds the tag.
    pub rule: u64,
}

/// The repository's name within its project.
fn in_project(repository: &RepoName) -> &str {
    let project = repository.project();
    let name = repository.as_str();
    name.strip_prefix(project)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(name)
}

/// The enabled rule that makes `tag` of `repository` immutable, if any (the first by priority,
/// then id). Accessory scheme tags never are.
pub fn holding_rule<'a>(
    rules: &'a [ImmutableRule],
    repository: &RepoName,
    tag: &Tag,
) -> Option<&'a ImmutableRule> {
    if SchemeTag::parse(tag).is_some() {
        return None;
    }
    let name = in_project(repository);
    rules
        .iter()
        .filter(|rule| rule.selects(name, tag))
        .min_by_key(|rule| (rule.priority, rule.id))
}

/// A push of `tag` to `new`: creating the tag, or pushing it again to the digest it holds, is always
/// allowed; moving it elsewhere is refused when a rule holds it.
pub fn check_move(
    rules: &[ImmutableRule],
    repository: &RepoName,
    tag: &Tag,
    current: Option<&Digest>,
    new: &Digest,
) -> Result<(), Immutable> {
    match current {
        Some(current) if current != new => refuse_if_held(rules, repository, tag),
        _ => Ok(()),
    }
}

/// Deleting `tag` (or an artifact it tags) is refused when a rule holds it.
pub fn check_delete(rules: &[ImmutableRule], repository: &RepoName, tag: &Tag) -> Result<(), Immutable> {
    refuse_if_held(rules, repository, tag)
}

fn refuse_if_held(rules: &[ImmutableRule], repository: &RepoName, tag: &Tag) -> Result<(), Immutable> {
    match holding_rule(rules, repository, tag) {
        Some(rule) => Err(Immutable {
            repository: repository.clone(),
            tag: tag.clone(),
            rule: rule.id,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn rule(id: u64, repositories: &str, tags: &str) -> ImmutableRule {
        ImmutableRule::new(
            id,
            0,
            false,
            vec![Selector::new(Target::Tag, DOUBLESTAR, "matches", tags).unwrap()],
            vec![Selector::new(Target::Repository, DOUBLESTAR, "repoMatches", repositories).unwrap()],
        )
        .unwrap()
    }

    fn repo(name: &str) -> RepoName {
        name.parse().unwrap()
    }

    fn tag(name: &str) -> Tag {
        name.parse().unwrap()
    }

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    #[test]
    fn a_held_tag_may_be_created_and_pushed_again_to_its_digest_but_not_moved() {
        let rules = [rule(1, "**", "v*")];
        let (r, t) = (repo("library/app"), tag("v1"));
        assert_eq!(check_move(&rules, &r, &t, None, &digest(1)), Ok(()));
        assert_eq!(check_move(&rules, &r, &t, Some(&digest(1)), &digest(1)), Ok(()));
        let refused = check_move(&rules, &r, &t, Some(&digest(1)), &digest(2)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "Failed to process request due to 'library/app:v1' configured as immutable."
        );
        assert_eq!(
            check_move(&rules, &r, &tag("latest"), Some(&digest(1)), &digest(2)),
            Ok(())
        );
    }

    #[test]
    fn deleting_a_held_tag_is_refused_and_an_unheld_one_allowed() {
        let rules = [rule(1, "app", "prod")];
        assert!(check_delete(&rules, &repo("library/app"), &tag("prod")).is_err());
        assert!(check_delete(&rules, &repo("library/app"), &tag("dev")).is_ok());
        assert!(check_delete(&rules, &repo("library/other"), &tag("prod")).is_ok());
    }

    #[test]
    fn repository_selectors_see_the_name_within_the_project() {
        let rules = [rule(1, "team/*", "**")];
        assert!(holding_rule(&rules, &repo("proj/team/app"), &tag("x")).is_some());
        assert!(holding_rule(&rules, &repo("proj/app"), &tag("x")).is_none());
        assert!(holding_rule(&rules, &repo("proj/team/app/sub"), &tag("x")).is_none());
    }

    #[test]
    fn accessory_scheme_tags_are_never_immutable_so_re_signing_works() {
        let rules = [rule(1, "**", "**")];
        let r = repo("library/app");
        let sig = tag(&format!("sha256-{}.sig", "ab".repeat(32)));
        assert!(holding_rule(&rules, &r, &sig).is_none());
        assert_eq!(check_move(&rules, &r, &sig, Some(&digest(1)), &digest(2)), Ok(()));
        assert!(check_delete(&rules, &r, &sig).is_ok());
        // A tag that only looks like one is a user tag.
        assert!(holding_rule(&rules, &r, &tag("sha256-abc.sig")).is_some());
    }

    #[test]
    fn disabled_rules_hold_nothing_and_the_first_by_priority_is_named() {
        let mut off = rule(1, "**", "**");
        off.disabled = true;
        assert!(holding_rule(&[off.clone()], &repo("library/app"), &tag("v1")).is_none());
        let mut late = rule(2, "**", "v*");
        late.priority = 5;
        let early = rule(3, "**", "v1");
        let rules = [off, late, early];
        let held = holding_rule(&rules, &repo("library/app"), &tag("v1")).unwrap();
        assert_eq!(held.id, 3);
    }

    #[test]
    fn a_rule_survives_its_spec_and_bad_selectors_are_refused() {
        let mut held = rule(7, "team/**", "v{1,2}.*");
        held.priority = 3;
        let spec = held.spec();
        assert_eq!(spec.repository_selectors[0].decoration, "repoMatches");
        assert_eq!(spec.compile().unwrap(), held);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(serde_json::from_value::<RuleSpec>(json).unwrap(), spec);
        let mut bad = spec.clone();
        bad.tag_selectors[0].decoration = "repoMatches".into();
        assert!(matches!(bad.compile(), Err(RuleError::Selector(_))));
        let mut bad = spec;
        bad.repository_selectors[0].pattern = "[".into();
        assert!(matches!(bad.compile(), Err(RuleError::Selector(_))));
    }

    #[test]
    fn rules_need_both_selectors_of_the_right_kind_and_a_project_at_most_fifteen() {
        let t = || Selector::new(Target::Tag, DOUBLESTAR, "matches", "**").unwrap();
        let r = || Selector::new(Target::Repository, DOUBLESTAR, "repoMatches", "**").unwrap();
        assert_eq!(
            ImmutableRule::new(1, 0, false, vec![], vec![r()]),
            Err(RuleError::NoTagSelector)
        );
        assert_eq!(
            ImmutableRule::new(1, 0, false, vec![t()], vec![]),
            Err(RuleError::NoRepositorySelector)
        );
        assert!(matches!(
            ImmutableRule::new(1, 0, false, vec![r()], vec![r()]),
            Err(RuleError::WrongTarget { .. })
        ));
        let fifteen: Vec<_> = (0..15).map(|i| rule(i, "**", "**")).collect();
        assert_eq!(check_rule_set(&fifteen), Ok(()));
        let sixteen: Vec<_> = (0..16).map(|i| rule(i, "**", "**")).collect();
        assert_eq!(check_rule_set(&sixteen), Err(RuleError::TooMany));
    }
}
