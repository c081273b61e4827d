//! Tag retention, as Harbor's retention policies define it (goharbor/harbor `src/pkg/retention`,
//! docs/lifecycle.md, "Retention policies"): a project's policy holds at most 15 rules, combined by
//! the only algorithm Harbor has, `or`. Each enabled rule whose repository selectors all select a
//! repository keeps, among the artifacts its tag selectors all select, those its template names
//! (the K most recently pushed, those pulled within N days...). What no rule keeps is deleted, even
//! an artifact no tag selector matched, unless an immutable tag holds it.
//!
//! Candidates are subjects only: accessories and the children of an index follow their subject.
//!
//! Beyond Harbor, where it is arbitrary:
//! - ties are broken deterministically, so that a dry run and the run after it agree: the latest*
//!   templates order by time, latest first, then by digest ascending;
//! - a rule without a tag or a repository selector is refused when the policy is saved (Harbor
//!   silently ignores it at run time).

use std::cmp::Reverse;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::immutability::SelectorSpec;
use super::schedule::{CronSchedule, ScheduleError};
use super::selector::{Selector, SelectorError, Target, DOUBLESTAR};
use crate::domain::Digest;

/// Harbor's limit of rules per policy.
pub const MAX_RULES: usize = 15;
/// Harbor's only algorithm name.
pub const ALGORITHM: &str = "or";
/// Harbor's only rule action.
pub const ACTION: &str = "retain";

/// Harbor's limit on a count parameter (K, N): below `i16::MAX`.
const MAX_COUNT: u32 = 32_766;
/// Harbor's limit on a days parameter.
const MAX_DAYS: u32 = 20_190_904;

/// What a rule keeps, by Harbor's template id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Template {
    #[serde(rename = "latestPushedK")]
    LatestPushedK,
    #[serde(rename = "latestPulledN")]
    LatestPulledN,
    #[serde(rename = "nDaysSinceLastPush")]
    NDaysSinceLastPush,
    #[serde(rename = "nDaysSinceLastPull")]
    NDaysSinceLastPull,
    #[serde(rename = "always")]
    Always,
}

impl Template {
    /// Every template, in the order of Harbor's `/retentions/metadatas`.
    pub const ALL: [Template; 5] = [
        Template::LatestPushedK,
        Template::LatestPulledN,
        Template::NDaysSinceLastPush,
        Template::NDaysSinceLastPull,
        Template::Always,
    ];

    /// The template with Harbor's id `name`.
    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Harbor's id.
    pub fn name(self) -> &'static str {
        match self {
            Template::LatestPushedK => "latestPushedK",
            Template::LatestPulledN => "latestPulledN",
            Template::NDaysSinceLastPush => "nDaysSinceLastPush",
            Template::NDaysSinceLastPull => "nDaysSinceLastPull",
            Template::Always => "always",
        }
    }

    /// Harbor's display text (`#` stands for the parameter).
    pub fn display_text(self) -> &'static str {
        match self {
            Template::LatestPushedK => "the most recently pushed # artifacts",
            Template::LatestPulledN => "the most recently pulled # artifacts",
            Template::NDaysSinceLastPush => "pushed within the last # days",
            Template::NDaysSinceLastPull => "pulled within the last # days",
            Template::Always => "always",
        }
    }

    /// The parameter's unit in Harbor's metadata; None when the template takes no parameter.
    pub fn unit(self) -> Option<&'static str> {
        match self {
            Template::LatestPushedK | Template::LatestPulledN => Some("COUNT"),
            Template::NDaysSinceLastPush | Template::NDaysSinceLastPull => Some("DAYS"),
            Template::Always => None,
        }
    }

    /// The largest parameter Harbor accepts.
    fn max_param(self) -> Option<u32> {
        match self {
            Template::LatestPushedK | Template::LatestPulledN => Some(MAX_COUNT),
            Template::NDaysSinceLastPush | Template::NDaysSinceLastPull => Some(MAX_DAYS),
            Template::Always => None,
        }
    }
}

/// A tag selector of a retention rule: Harbor's doublestar selector (`matches` | `excludes`) and
/// whether it selects untagged artifacts (Harbor's `extras: "{\"untagged\":true}"`).
///
/// Where Harbor's document has no `extras`, the API layer takes Harbor's default: untagged
/// artifacts are selected by `matches` and not by `excludes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagSelectorSpec {
    pub kind: String,
    pub decoration: String,
    pub pattern: String,
    pub untagged: bool,
}

/// A rule as events record it (Harbor's `action` is always `retain`, so it is not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRuleSpec {
    pub id: u64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    pub template: Template,
    /// K, N or days; None only for `always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<u32>,
    pub tag_selectors: Vec<TagSelectorSpec>,
    /// Harbor's `scope_selectors.repository`.
    pub repository_selectors: Vec<SelectorSpec>,
}

/// A project's retention policy as events record it (algorithm "or", the only one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    pub id: u64,
    pub rules: Vec<RetentionRuleSpec>,
    /// Harbor's `trigger.settings.cron` (six fields, seconds first, UTC): when the policy runs by
    /// itself; `None`: only when triggered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("a retention policy has at most {MAX_RULES} rules")]
    TooMany,
    /// Two rules equal in everything but their ids (indexes from 0, as Harbor's message has them).
    #[error("rule {later} is conflict with rule {earlier}")]
    Conflict { later: usize, earlier: usize },
    #[error("template {} needs its parameter", .template.name())]
    MissingParam { template: Template },
    #[error("template {}'s parameter is at most {max}", .template.name())]
    ParamTooLarge { template: Template, max: u32 },
    #[error("template {} takes no parameter", .template.name())]
    UnexpectedParam { template: Template },
    #[error("a retention rule needs at least one tag selector")]
    NoTagSelector,
    #[error("a retention rule needs at least one repository selector (scope_selectors.repository)")]
    NoRepositorySelector,
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

/// A compiled policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    id: u64,
    rules: Vec<Rule>,
    schedule: Option<CronSchedule>,
}

/// One rule, its template and selectors checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    id: u64,
    priority: i64,
    disabled: bool,
    keep: Keep,
    tag_selectors: Vec<TagSelector>,
    repository_selectors: Vec<Selector>,
}

/// A template with its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    LatestPushed(u32),
    LatestPulled(u32),
    PushedWithinDays(u32),
    PulledWithinDays(u32),
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TagSelector {
    selector: Selector,
    untagged: bool,
}

/// One artifact retention judges: a subject (accessories and index children are never candidates:
/// they follow their subject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: Digest,
    /// Empty: untagged.
    pub tags: Vec<String>,
    /// The later of the manifest's push and its tags' last moves.
    pub pushed: DateTime<Utc>,
    /// None: never pulled.
    pub pulled: Option<DateTime<Utc>>,
    /// An immutable tag rule holds one of its tags: never deleted.
    pub immutable: bool,
}

/// What retention does with a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Kept by these rules (their ids, in rule order).
    Retained { rules: Vec<u64> },
    /// No rule keeps it, but an immutable tag holds it (Harbor's `IMMUTABLE`).
    Immutable,
    /// No rule keeps it: retention deletes it (Harbor's `DEL`).
    Deleted,
}

/// The outcome for one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub digest: Digest,
    pub outcome: Outcome,
}

impl Verdict {
    /// Whether the candidate stays (kept by a rule or held by an immutable tag).
    pub fn retained(&self) -> bool {
        !matches!(self.outcome, Outcome::Deleted)
    }
}

impl PolicySpec {
    /// The policy, its rules checked and compiled: Harbor's limit, each rule, then conflicts.
    pub fn compile(&self) -> Result<Policy, PolicyError> {
        if self.rules.len() > MAX_RULES {
            return Err(PolicyError::TooMany);
        }
        let rules = (self.rules.iter())
            .map(RetentionRuleSpec::compile)
            .collect::<Result<Vec<_>, _>>()?;
        check_conflicts(&self.rules)?;
        let schedule = (self.schedule.as_deref()).map(CronSchedule::parse).transpose()?;
        Ok(Policy {
            id: self.id,
            rules,
            schedule,
        })
    }
}

/// Harbor's conflict check: no two rules alike but for their ids.
fn check_conflicts(rules: &[RetentionRuleSpec]) -> Result<(), PolicyError> {
    let anonymous = |rule: &RetentionRuleSpec| RetentionRuleSpec {
        id: 0,
        ..rule.clone()
    };
    let seen: Vec<_> = rules.iter().map(anonymous).collect();
    for (later, rule) in seen.iter().enumerate() {
        if let Some(earlier) = seen[..later].iter().position(|r| r == rule) {
            return Err(PolicyError::Conflict { later, earlier });
        }
    }
    Ok(())
}

impl RetentionRuleSpec {
    fn compile(&self) -> Result<Rule, PolicyError> {
        if self.tag_selectors.is_empty() {
            return Err(PolicyError::NoTagSelector);
        }
        if self.repository_selectors.is_empty() {
            return Err(PolicyError::NoRepositorySelector);
        }
        let tag_selectors = (self.tag_selectors.iter())
            .map(|s| {
                Ok(TagSelector {
                    selector: Selector::new(Target::Tag, &s.kind, &s.decoration, &s.pattern)?,
                    untagged: s.untagged,
                })
            })
            .collect::<Result<Vec<_>, SelectorError>>()?;
        let repository_selectors = (self.repository_selectors.iter())
            .map(|s| s.compile(Target::Repository))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            id: self.id,
            priority: self.priority,
            disabled: self.disabled,
            keep: Keep::new(self.template, self.param)?,
            tag_selectors,
            repository_selectors,
        })
    }
}

impl Keep {
    fn new(template: Template, param: Option<u32>) -> Result<Keep, PolicyError> {
        let param = match (template.max_param(), param) {
            (None, None) => return Ok(Keep::Always),
            (None, Some(_)) => return Err(PolicyError::UnexpectedParam { template }),
            (Some(_), None) => return Err(PolicyError::MissingParam { template }),
            (Some(max), Some(param)) if param > max => {
                return Err(PolicyError::ParamTooLarge { template, max })
            }
            (Some(_), Some(param)) => param,
        };
        Ok(match template {
            Template::LatestPushedK => Keep::LatestPushed(param),
            Template::LatestPulledN => Keep::LatestPulled(param),
            Template::NDaysSinceLastPush => Keep::PushedWithinDays(param),
            Template::NDaysSinceLastPull => Keep::PulledWithinDays(param),
            Template::Always => Keep::Always,
        })
    }

    fn template(self) -> (Template, Option<u32>) {
        match self {
            Keep::LatestPushed(k) => (Template::LatestPushedK, Some(k)),
            Keep::LatestPulled(n) => (Template::LatestPulledN, Some(n)),
            Keep::PushedWithinDays(n) => (Template::NDaysSinceLastPush, Some(n)),
            Keep::PulledWithinDays(n) => (Template::NDaysSinceLastPull, Some(n)),
            Keep::Always => (Template::Always, None),
        }
    }

    /// The indexes, within `candidates`, of those in `selected` this template keeps.
    fn apply(self, candidates: &[Candidate], mut selected: Vec<usize>, now: DateTime<Utc>) -> Vec<usize> {
        let cutoff = |days: u32| {
            TimeDelta::try_days(i64::from(days))
                .and_then(|window| now.checked_sub_signed(window))
                .unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        match self {
            Keep::LatestPushed(k) => {
                selected.sort_by_key(|&i| (Reverse(candidates[i].pushed), &candidates[i].digest));
                selected.truncate(k as usize);
            }
            Keep::LatestPulled(n) => {
                // Never pulled (None) sorts after every pull.
                selected.sort_by_key(|&i| (Reverse(candidates[i].pulled), &candidates[i].digest));
                selected.truncate(n as usize);
            }
            Keep::PushedWithinDays(days) => {
                let since = cutoff(days);
                selected.retain(|&i| candidates[i].pushed >= since);
            }
            Keep::PulledWithinDays(days) => {
                let since = cutoff(days);
                selected.retain(|&i| candidates[i].pulled.is_some_and(|pulled| pulled >= since));
            }
            Keep::Always => {}
        }
        selected
    }
}

impl TagSelector {
    /// `matches`: some tag matches; `excludes`: some tag does not; untagged: as the rule says.
    fn selects(&self, candidate: &Candidate) -> bool {
        match candidate.tags.is_empty() {
            true => self.untagged,
            false => candidate.tags.iter().any(|tag| self.selector.selects(tag)),
        }
    }

    fn spec(&self) -> TagSelectorSpec {
        TagSelectorSpec {
            kind: DOUBLESTAR.to_string(),
            decoration: Target::Tag
                .decoration_name(self.selector.decoration())
                .to_string(),
            pattern: self.selector.pattern().to_string(),
            untagged: self.untagged,
        }
    }
}

impl Rule {
    fn applies_to(&self, repository: &str) -> bool {
        !self.disabled && self.repository_selectors.iter().all(|s| s.selects(repository))
    }

    /// The indexes of the candidates this rule keeps, in no particular order.
    fn retain(&self, candidates: &[Candidate], now: DateTime<Utc>) -> Vec<usize> {
        let selected = (0..candidates.len())
            .filter(|&i| self.tag_selectors.iter().all(|s| s.selects(&candidates[i])))
            .collect();
        self.keep.apply(candidates, selected, now)
    }

    fn spec(&self) -> RetentionRuleSpec {
        let (template, param) = self.keep.template();
        RetentionRuleSpec {
            id: self.id,
            priority: self.priority,
            disabled: self.disabled,
            template,
            param,
            tag_selectors: self.tag_selectors.iter().map(TagSelector::spec).collect(),
            repository_selectors: self.repository_selectors.iter().map(SelectorSpec::of).collect(),
        }
    }
}

impl Policy {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The policy as events record it.
    pub fn spec(&self) -> PolicySpec {
        PolicySpec {
            id: self.id,
            rules: self.rules.iter().map(Rule::spec).collect(),
            schedule: self.schedule.as_ref().map(|s| s.as_str().to_string()),
        }
    }

    /// When the policy runs by itself, if it does.
    pub fn schedule(&self) -> Option<&CronSchedule> {
        self.schedule.as_ref()
    }

    /// Whether any enabled rule's repository selectors all select `repository` (its name within its
    /// project, e.g. "app" or "team/app").
    pub fn applies_to(&self, repository: &str) -> bool {
        self.rules.iter().any(|rule| rule.applies_to(repository))
    }

    /// The verdicts for one repository's candidates, in the candidates' order; None when no enabled
    /// rule applies to the repository (it is left alone).
    ///
    /// Each applicable rule starts from all the candidates; a candidate is kept when any of them
    /// keeps it (`or`). Candidates are distinct artifacts.
    pub fn plan(
        &self,
        repository: &str,
        candidates: &[Candidate],
        now: DateTime<Utc>,
    ) -> Option<Vec<Verdict>> {
        let mut applicable = self
            .rules
            .iter()
            .filter(|rule| rule.applies_to(repository))
            .peekable();
        applicable.peek()?;
        let mut keeping: Vec<Vec<u64>> = vec![Vec::new(); candidates.len()];
        for rule in applicable {
            for i in rule.retain(candidates, now) {
                keeping[i].push(rule.id);
            }
        }
        let verdicts = candidates.iter().zip(keeping).map(|(candidate, rules)| Verdict {
            digest: candidate.digest.clone(),
            outcome: match (rules.is_empty(), candidate.immutable) {
                (false, _) => Outcome::Retained { rules },
                (true, true) => Outcome::Immutable,
                (true, false) => Outcome::Deleted,
            },
        });
        Some(verdicts.collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    fn days_ago(days: i64) -> DateTime<Utc> {
        now() - TimeDelta::days(days)
    }

    /// Candidate `n`, tagged `tags`, pushed `pushed` days ago, never pulled.
    fn candidate(n: u8, tags: &[&str], pushed: i64) -> Candidate {
        Candidate {
            digest: digest(n),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed: days_ago(pushed),
            pulled: None,
            immutable: false,
        }
    }

    fn pulled(mut candidate: Candidate, days: i64) -> Candidate {
        candidate.pulled = Some(days_ago(days));
        candidate
    }

    fn tags(decoration: &str, pattern: &str, untagged: bool) -> TagSelectorSpec {
        TagSelectorSpec {
            kind: DOUBLESTAR.into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            untagged,
        }
    }

    fn repositories(decoration: &str, pattern: &str) -> SelectorSpec {
        SelectorSpec {
            kind: DOUBLESTAR.into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
        }
    }

    /// A rule on every repository, for tags matching `pattern` (untagged not selected).
    fn rule(id: u64, template: Template, param: Option<u32>, pattern: &str) -> RetentionRuleSpec {
        RetentionRuleSpec {
            id,
            priority: 0,
            disabled: false,
            template,
            param,
            tag_selectors: vec![tags("matches", pattern, false)],
            repository_selectors: vec![repositories("repoMatches", "**")],
        }
    }

    fn policy(rules: Vec<RetentionRuleSpec>) -> Policy {
        PolicySpec {
            id: 1,
            rules,
            schedule: None,
        }
        .compile()
        .unwrap()
    }

    fn outcomes(policy: &Policy, candidates: &[Candidate]) -> Vec<Outcome> {
        (policy.plan("app", candidates, now()).unwrap().into_iter())
            .map(|v| v.outcome)
            .collect()
    }

    fn kept(rules: &[u64]) -> Outcome {
        Outcome::Retained {
            rules: rules.to_vec(),
        }
    }

    #[test]
    fn templates_carry_harbors_ids_texts_and_units_in_its_order() {
        let names: Vec<_> = Template::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "latestPushedK",
                "latestPulledN",
                "nDaysSinceLastPush",
                "nDaysSinceLastPull",
                "always"
            ]
        );
        for template in Template::ALL {
            assert_eq!(Template::parse(template.name()), Some(template));
            let json = serde_json::to_value(template).unwrap();
            assert_eq!(json, serde_json::json!(template.name()));
        }
        assert_eq!(Template::parse("latestActiveK"), None);
        assert_eq!(
            Template::LatestPulledN.display_text(),
            "the most recently pulled # artifacts"
        );
        assert_eq!(Template::LatestPushedK.unit(), Some("COUNT"));
        assert_eq!(Template::NDaysSinceLastPull.unit(), Some("DAYS"));
        assert_eq!(Template::Always.unit(), None);
    }

    #[test]
    fn latest_pushed_k_keeps_the_k_newest_and_deletes_the_rest_including_unmatched_ones() {
        let policy = policy(vec![rule(7, Template::LatestPushedK, Some(2), "v*")]);
        let candidates = [
            candidate(1, &["v1"], 30),
            candidate(2, &["v2"], 20),
            candidate(3, &["v3"], 10),
            candidate(4, &["dev"], 1),
            candidate(5, &[], 0),
        ];
        assert_eq!(
            outcomes(&policy, &candidates),
            [
                Outcome::Deleted,
                kept(&[7]),
                kept(&[7]),
                Outcome::Deleted,
                Outcome::Deleted
            ]
        );
        let none = self::policy(vec![rule(7, Template::LatestPushedK, Some(0), "**")]);
        assert!(outcomes(&none, &candidates)
            .iter()
            .all(|o| *o == Outcome::Deleted));
    }

    #[test]
    fn untagged_candidates_are_selected_only_with_untagged_true() {
        let candidates = [candidate(1, &[], 1), candidate(2, &["v1"], 2)];
        let without = policy(vec![rule(1, Template::Always, None, "**")]);
        assert_eq!(outcomes(&without, &candidates), [Outcome::Deleted, kept(&[1])]);
        let mut with = rule(1, Template::Always, None, "**");
        with.tag_selectors[0].untagged = true;
        assert_eq!(
            outcomes(&policy(vec![with]), &candidates),
            [kept(&[1]), kept(&[1])]
        );
        let mut excluding = rule(1, Template::Always, None, "dev-*");
        excluding.tag_selectors[0] = tags("excludes", "dev-*", true);
        assert_eq!(
            outcomes(&policy(vec![excluding]), &candidates),
            [kept(&[1]), kept(&[1])]
        );
    }

    #[test]
    fn excludes_selects_a_candidate_when_any_of_its_tags_does_not_match() {
        let mut not_dev = rule(3, Template::Always, None, "dev-*");
        not_dev.tag_selectors[0] = tags("excludes", "dev-*", false);
        let policy = policy(vec![not_dev]);
        let candidates = [
            candidate(1, &["dev-1", "v1"], 1),
            candidate(2, &["dev-2", "dev-3"], 1),
            candidate(3, &["v3"], 1),
        ];
        assert_eq!(
            outcomes(&policy, &candidates),
            [kept(&[3]), Outcome::Deleted, kept(&[3])]
        );
    }

    #[test]
    fn every_tag_selector_of_a_rule_must_select_a_candidate() {
        let mut both = rule(1, Template::Always, None, "v*");
        both.tag_selectors.push(tags("excludes", "*-rc*", false));
        let candidates = [candidate(1, &["v1"], 1), candidate(2, &["v2-rc1"], 1)];
        assert_eq!(
            outcomes(&policy(vec![both]), &candidates),
            [kept(&[1]), Outcome::Deleted]
        );
    }

    #[test]
    fn a_candidate_kept_by_any_rule_is_retained_and_names_every_rule_that_keeps_it() {
        let policy = policy(vec![
            rule(10, Template::LatestPushedK, Some(1), "**"),
            rule(20, Template::NDaysSinceLastPush, Some(7), "release-*"),
        ]);
        let candidates = [
            candidate(1, &["release-1"], 3),
            candidate(2, &["latest"], 1),
            candidate(3, &["release-0"], 8),
            candidate(4, &["release-2"], 0),
        ];
        assert_eq!(
            outcomes(&policy, &candidates),
            [kept(&[20]), Outcome::Deleted, Outcome::Deleted, kept(&[10, 20])]
        );
    }

    #[test]
    fn n_days_since_last_push_is_inclusive_of_the_cutoff() {
        let policy = policy(vec![rule(1, Template::NDaysSinceLastPush, Some(7), "**")]);
        let mut late = candidate(2, &["b"], 7);
        late.pushed -= TimeDelta::seconds(1);
        let candidates = [candidate(1, &["a"], 7), late];
        assert_eq!(outcomes(&policy, &candidates), [kept(&[1]), Outcome::Deleted]);
    }

    #[test]
    fn n_days_since_last_pull_keeps_recent_pulls_and_never_the_never_pulled() {
        let policy = policy(vec![rule(1, Template::NDaysSinceLastPull, Some(MAX_DAYS), "**")]);
        let candidates = [pulled(candidate(1, &["a"], 400), 300), candidate(2, &["b"], 0)];
        assert_eq!(outcomes(&policy, &candidates), [kept(&[1]), Outcome::Deleted]);
        let week = self::policy(vec![rule(1, Template::NDaysSinceLastPull, Some(7), "**")]);
        let candidates = [
            pulled(candidate(1, &["a"], 9), 8),
            pulled(candidate(2, &["b"], 9), 7),
        ];
        assert_eq!(outcomes(&week, &candidates), [Outcome::Deleted, kept(&[1])]);
    }

    #[test]
    fn latest_pulled_n_keeps_the_n_last_pulled_then_never_pulled_ones_when_fewer_than_n() {
        let candidates = [
            candidate(1, &["a"], 0),
            pulled(candidate(2, &["b"], 5), 4),
            pulled(candidate(3, &["c"], 5), 1),
        ];
        let two = policy(vec![rule(1, Template::LatestPulledN, Some(2), "**")]);
        assert_eq!(
            outcomes(&two, &candidates),
            [Outcome::Deleted, kept(&[1]), kept(&[1])]
        );
        let three = policy(vec![rule(1, Template::LatestPulledN, Some(3), "**")]);
        assert_eq!(
            outcomes(&three, &candidates),
            [kept(&[1]), kept(&[1]), kept(&[1])]
        );
    }

    #[test]
    fn disabled_rules_and_unselected_repositories_leave_the_repository_alone() {
        let candidates = [candidate(1, &["v1"], 1)];
        let mut off = rule(1, Template::Always, None, "**");
        off.disabled = true;
        let mut team = rule(2, Template::LatestPushedK, Some(1), "**");
        team.repository_selectors = vec![
            repositories("repoMatches", "team/**"),
            repositories("repoExcludes", "team/tmp-*"),
        ];
        let policy = policy(vec![off, team]);
        assert!(!policy.applies_to("app"));
        assert_eq!(policy.plan("app", &candidates, now()), None);
        assert!(!policy.applies_to("team/tmp-1"));
        assert_eq!(policy.plan("team/tmp-1", &candidates, now()), None);
        assert!(policy.applies_to("team/app"));
        let verdicts = policy.plan("team/app", &candidates, now()).unwrap();
        assert_eq!(verdicts[0].outcome, kept(&[2]));
    }

    #[test]
    fn immutable_candidates_no_rule_keeps_are_immutable_not_deleted() {
        let policy = policy(vec![rule(1, Template::LatestPushedK, Some(1), "**")]);
        let mut held = candidate(1, &["prod"], 9);
        held.immutable = true;
        let mut held_and_kept = candidate(2, &["v2"], 0);
        held_and_kept.immutable = true;
        let candidates = [held, held_and_kept, candidate(3, &["v1"], 5)];
        let verdicts = policy.plan("app", &candidates, now()).unwrap();
        let outcomes: Vec<_> = verdicts.iter().map(|v| v.outcome.clone()).collect();
        assert_eq!(outcomes, [Outcome::Immutable, kept(&[1]), Outcome::Deleted]);
        let retained: Vec<_> = verdicts.iter().map(Verdict::retained).collect();
        assert_eq!(retained, [true, true, false]);
        assert_eq!(verdicts[2].digest, digest(3));
    }

    #[test]
    fn ties_go_to_the_latest_then_to_the_smallest_digest_whatever_the_candidates_order() {
        let pushed = policy(vec![rule(1, Template::LatestPushedK, Some(2), "**")]);
        let candidates = [
            candidate(3, &["c"], 1),
            candidate(1, &["a"], 1),
            candidate(2, &["b"], 1),
        ];
        assert_eq!(
            outcomes(&pushed, &candidates),
            [Outcome::Deleted, kept(&[1]), kept(&[1])]
        );
        let pulls = policy(vec![rule(1, Template::LatestPulledN, Some(1), "**")]);
        let candidates = [candidate(9, &["c"], 1), candidate(8, &["a"], 1)];
        assert_eq!(outcomes(&pulls, &candidates), [Outcome::Deleted, kept(&[1])]);
    }

    #[test]
    fn a_policy_holds_at_most_fifteen_rules() {
        let rules = |n: u32| {
            (0..n)
                .map(|i| rule(u64::from(i), Template::LatestPushedK, Some(i), "**"))
                .collect()
        };
        assert!(PolicySpec {
            id: 1,
            rules: rules(15),
            schedule: None
        }
        .compile()
        .is_ok());
        let sixteen = PolicySpec {
            id: 1,
            rules: rules(16),
            schedule: None,
        }
        .compile();
        assert_eq!(sixteen, Err(PolicyError::TooMany));
        assert_eq!(
            PolicyError::TooMany.to_string(),
            "a retention policy has at most 15 rules"
        );
    }

    #[test]
    fn rules_alike_but_for_their_ids_conflict_with_harbors_indexes() {
        let spec = PolicySpec {
            id: 1,
            rules: vec![
                rule(1, Template::Always, None, "a"),
                rule(2, Template::Always, None, "b"),
                rule(3, Template::Always, None, "b"),
            ],
            schedule: None,
        };
        let refused = spec.compile().unwrap_err();
        assert_eq!(refused, PolicyError::Conflict { later: 2, earlier: 1 });
        assert_eq!(refused.to_string(), "rule 2 is conflict with rule 1");
        let mut distinct = spec;
        distinct.rules[2].priority = 1;
        assert!(distinct.compile().is_ok());
    }

    #[test]
    fn parameters_are_required_bounded_and_refused_for_always() {
        let compile = |template, param| {
            PolicySpec {
                id: 1,
                rules: vec![rule(1, template, param, "**")],
                schedule: None,
            }
            .compile()
        };
        let missing = compile(Template::LatestPushedK, None).unwrap_err();
        assert_eq!(
            missing,
            PolicyError::MissingParam {
                template: Template::LatestPushedK
            }
        );
        assert_eq!(missing.to_string(), "template latestPushedK needs its parameter");
        assert!(compile(Template::LatestPulledN, Some(32_766)).is_ok());
        assert_eq!(
            compile(Template::LatestPulledN, Some(32_767)),
            Err(PolicyError::ParamTooLarge {
                template: Template::LatestPulledN,
                max: 32_766
            })
        );
        assert!(compile(Template::NDaysSinceLastPush, Some(20_190_904)).is_ok());
        assert_eq!(
            compile(Template::NDaysSinceLastPull, Some(20_190_905)),
            Err(PolicyError::ParamTooLarge {
                template: Template::NDaysSinceLastPull,
                max: 20_190_904
            })
        );
        assert_eq!(
            compile(Template::Always, Some(1)),
            Err(PolicyError::UnexpectedParam {
                template: Template::Always
            })
        );
    }

    #[test]
    fn rules_need_a_tag_and_a_repository_selector_and_valid_patterns() {
        let compile = |rule: RetentionRuleSpec| {
            PolicySpec {
                id: 1,
                rules: vec![rule],
                schedule: None,
            }
            .compile()
        };
        let mut no_tags = rule(1, Template::Always, None, "**");
        no_tags.tag_selectors.clear();
        assert_eq!(compile(no_tags), Err(PolicyError::NoTagSelector));
        let mut no_repositories = rule(1, Template::Always, None, "**");
        no_repositories.repository_selectors.clear();
        assert_eq!(compile(no_repositories), Err(PolicyError::NoRepositorySelector));
        let mut wrong_target = rule(1, Template::Always, None, "**");
        wrong_target.tag_selectors[0].decoration = "repoMatches".into();
        assert!(matches!(compile(wrong_target), Err(PolicyError::Selector(_))));
        let bad_pattern = rule(1, Template::Always, None, "v[1");
        assert!(matches!(compile(bad_pattern), Err(PolicyError::Selector(_))));
    }

    #[test]
    fn a_policy_survives_its_spec_and_json() {
        let mut pulls = rule(4, Template::LatestPulledN, Some(3), "v{1,2}.*");
        pulls.priority = 2;
        pulls.disabled = true;
        pulls.tag_selectors.push(tags("excludes", "*-rc*", true));
        pulls.repository_selectors = vec![repositories("repoExcludes", "tmp/**")];
        let spec = PolicySpec {
            id: 9,
            rules: vec![pulls, rule(5, Template::Always, None, "**")],
            schedule: None,
        };
        let policy = spec.compile().unwrap();
        assert_eq!(policy.id(), 9);
        assert_eq!(policy.spec(), spec);
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["rules"][0]["template"], "latestPulledN");
        assert_eq!(json["rules"][0]["tagSelectors"][1]["untagged"], true);
        assert!(json["rules"][1].get("param").is_none());
        assert_eq!(serde_json::from_value::<PolicySpec>(json).unwrap(), spec);
    }
}
