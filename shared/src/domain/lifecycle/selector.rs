//! Harbor's selectors, as its immutability and retention rules carry them: `kind: "doublestar"`, a
//! pattern, and a decoration that says whether a candidate must match it or must not
//! (`matches`/`excludes` for tags, `repoMatches`/`repoExcludes` for repositories).
//!
//! Patterns are doublestar globs, matched by `globset` with separators kept literal: `*` and `?`
//! stay within one `/`-separated segment, `**` crosses segments, `{a,b}` is either, `[...]` a class.
//! So `**` selects every repository, `team/*` the repositories one level below `team`, and `v1.*`
//! the tags `v1.0`, `v1.2-rc1`.

use globset::{GlobBuilder, GlobMatcher};

/// The only kind Harbor defines.
pub const DOUBLESTAR: &str = "doublestar";

/// Whether a selector keeps what matches or what does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoration {
    Matches,
    Excludes,
}

/// What a selector is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A tag (`matches`, `excludes`).
    Tag,
    /// A repository's name within its project (`repoMatches`, `repoExcludes`).
    Repository,
    /// A repository's full name, its project included (replication's `name` filter: `matches`,
    /// `excludes`).
    Name,
}

impl Target {
    fn decoration(self, text: &str) -> Option<Decoration> {
        match (self, text) {
            (Target::Tag | Target::Name, "matches") | (Target::Repository, "repoMatches") => {
                Some(Decoration::Matches)
            }
            (Target::Tag | Target::Name, "excludes") | (Target::Repository, "repoExcludes") => {
                Some(Decoration::Excludes)
            }
            _ => None,
        }
    }

    /// The decoration's name in Harbor's documents.
    pub fn decoration_name(self, decoration: Decoration) -> &'static str {
        match (self, decoration) {
            (Target::Tag | Target::Name, Decoration::Matches) => "matches",
            (Target::Tag | Target::Name, Decoration::Excludes) => "excludes",
            (Target::Repository, Decoration::Matches) => "repoMatches",
            (Target::Repository, Decoration::Excludes) => "repoExcludes",
        }
    }
}

/// Why a selector cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("selector kind {0:?} is not supported: only \"doublestar\"")]
    Kind(String),
    #[error("decoration {decoration:?} is not one of {expected}")]
    Decoration {
        decoration: String,
        expected: &'static str,
    },
    #[error("pattern {pattern:?} is not a valid doublestar pattern: {reason}")]
    Pattern { pattern: String, reason: String },
}

/// One selector, compiled.
#[derive(Debug, Clone)]
pub struct Selector {
    target: Target,
    decoration: Decoration,
    pattern: String,
    matcher: GlobMatcher,
}

impl PartialEq for Selector {
    fn eq(&self, other: &Selector) -> bool {
        (self.target, self.decoration, &self.pattern) == (other.target, other.decoration, &other.pattern)
    }
}

impl Eq for Selector {}

impl Selector {
    /// A selector from Harbor's fields.
    pub fn new(
        target: Target,
        kind: &str,
        decoration: &str,
        pattern: &str,
    ) -> Result<Selector, SelectorError> {
        if kind != DOUBLESTAR {
            return Err(SelectorError::Kind(kind.to_string()));
        }
        let decoration = target
            .decoration(decoration)
            .ok_or_else(|| SelectorError::Decoration {
                decoration: decoration.to_string(),
                expected: match target {
                    Target::Tag | Target::Name => "\"matches\", \"excludes\"",
                    Target::Repository => "\"repoMatches\", \"repoExcludes\"",
                },
            })?;
        // Harbor requires a pattern; an empty one would select only the empty name, which no tag
        // or repository has.
        if pattern.is_empty() {
            return Err(SelectorError::Pattern {
                pattern: String::new(),
                reason: "it is empty".to_string(),
            });
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| SelectorError::Pattern {
                pattern: pattern.to_string(),
                reason: e.kind().to_string(),
            })?;
        Ok(Selector {
            target,
            decoration,
            pattern: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn target(&self) -> Target {
        self.target
    }

    pub fn decoration(&self) -> Decoration {
        self.decoration
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether `candidate` (a tag, or a repository's name within its project) is selected.
    pub fn selects(&self, candidate: &str) -> bool {
        let matched = self.matcher.is_match(candidate);
        match self.decoration {
            Decoration::Matches => matched,
            Decoration::Excludes => !matched,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tag(decoration: &str, pattern: &str) -> Selector {
        Selector::new(Target::Tag, DOUBLESTAR, decoration, pattern).unwrap()
    }

    fn repository(decoration: &str, pattern: &str) -> Selector {
        Selector::new(Target::Repository, DOUBLESTAR, decoration, pattern).unwrap()
    }

    #[test]
    fn doublestar_crosses_segments_and_a_single_star_does_not() {
        let all = repository("repoMatches", "**");
        assert!(all.selects("app") && all.selects("team/app") && all.selects("a/b/c"));
        let one_level = repository("repoMatches", "team/*");
        assert!(one_level.selects("team/app"));
        assert!(!one_level.selects("team/app/sub"));
        assert!(!one_level.selects("other/app"));
        let deep = repository("repoMatches", "team/**");
        assert!(deep.selects("team/app/sub"));
    }

    #[test]
    fn tag_patterns_take_wildcards_alternatives_and_classes() {
        let release = tag("matches", "v1.*");
        assert!(release.selects("v1.0") && release.selects("v1.2-rc1"));
        assert!(!release.selects("v2.0") && !release.selects("v1"));
        let either = tag("matches", "{latest,stable}");
        assert!(either.selects("latest") && either.selects("stable") && !either.selects("dev"));
        let digit = tag("matches", "v[0-9]");
        assert!(digit.selects("v7") && !digit.selects("vx"));
        let exact = tag("matches", "prod");
        assert!(exact.selects("prod") && !exact.selects("prod2"));
    }

    #[test]
    fn excludes_selects_what_does_not_match() {
        let not_dev = tag("excludes", "dev-*");
        assert!(not_dev.selects("v1") && !not_dev.selects("dev-42"));
        let not_tmp = repository("repoExcludes", "tmp/**");
        assert!(not_tmp.selects("app") && !not_tmp.selects("tmp/x"));
    }

    #[test]
    fn bad_kinds_decorations_and_patterns_are_refused_with_the_reason() {
        assert_eq!(
            Selector::new(Target::Tag, "regex", "matches", "x").unwrap_err(),
            SelectorError::Kind("regex".into())
        );
        assert!(matches!(
            Selector::new(Target::Tag, DOUBLESTAR, "repoMatches", "x"),
            Err(SelectorError::Decoration { .. })
        ));
        assert!(matches!(
            Selector::new(Target::Repository, DOUBLESTAR, "matches", "x"),
            Err(SelectorError::Decoration { .. })
        ));
        assert!(matches!(
            Selector::new(Target::Tag, DOUBLESTAR, "matches", "v[1"),
            Err(SelectorError::Pattern { .. })
        ));
        assert!(matches!(
            Selector::new(Target::Repository, DOUBLESTAR, "repoMatches", ""),
            Err(SelectorError::Pattern { .. })
        ));
    }
}
