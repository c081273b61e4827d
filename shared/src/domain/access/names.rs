//! Validated names of projects, users and robot accounts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Robot account names start with this (Harbor's default prefix), then `<project>+<name>`.
pub const ROBOT_PREFIX: &str = "robot$";
/// Longest project name (Harbor's limit).
const MAX_PROJECT_NAME_LEN: usize = 255;
/// Longest username.
const MAX_USERNAME_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameRuleError {
    #[error("project name {0:?} must be 1-255 characters of [a-z0-9] runs joined by '.', '_' or '-'")]
    Project(String),
    #[error("username {0:?} must be 1-255 printable characters without spaces, ':', '$', '+' or '/'")]
    User(String),
    #[error("robot name {0:?} must be 1-255 characters of [a-z0-9] runs joined by '.', '_' or '-'")]
    Robot(String),
}

/// The first component of a repository name: `[a-z0-9]+([._-][a-z0-9]+)*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectName(String);

/// A local user's login name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

/// A robot account's full name: `robot$<project>+<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RobotName(String);

fn slug(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > max {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut previous_separator = true;
    for &c in b {
        if alnum(c) {
            previous_separator = false;
        } else if matches!(c, b'.' | b'_' | b'-') && !previous_separator {
            previous_separator = true;
        } else {
            return false;
        }
    }
    !previous_separator
}

impl ProjectName {
    pub fn parse(s: &str) -> Result<ProjectName, NameRuleError> {
        if slug(s, MAX_PROJECT_NAME_LEN) {
            Ok(ProjectName(s.to_string()))
        } else {
            Err(NameRuleError::Project(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Username {
    pub fn parse(s: &str) -> Result<Username, NameRuleError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_USERNAME_LEN
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, ':' | '$' | '+' | '/' | '\\' | '"'));
        if ok {
            Ok(Username(s.to_string()))
        } else {
            Err(NameRuleError::User(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RobotName {
    /// The full name of robot `name` in `project`.
    pub fn new(project: &ProjectName, name: &str) -> Result<RobotName, NameRuleError> {
        if slug(name, MAX_USERNAME_LEN) {
            Ok(RobotName(format!("{ROBOT_PREFIX}{project}+{name}")))
        } else {
            Err(NameRuleError::Robot(name.to_string()))
        }
    }

    /// Parses a full name `robot$<project>+<name>`.
    pub fn parse(s: &str) -> Result<RobotName, NameRuleError> {
        let bad = || NameRuleError::Robot(s.to_string());
        let rest = s.strip_prefix(ROBOT_PREFIX).ok_or_else(bad)?;
        let (project, name) = rest.split_once('+').ok_or_else(bad)?;
        let project = ProjectName::parse(project).map_err(|_| bad())?;
        RobotName::new(&project, name).map_err(|_| bad())
    }

    pub fn project(&self) -> ProjectName {
        let rest = &self.0[ROBOT_PREFIX.len()..];
        let project = rest.split_once('+').map_or(rest, |(p, _)| p);
        ProjectName(project.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $t {
            type Err = NameRuleError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $t::parse(s)
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $t::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(ProjectName);
string_newtype!(Username);
string_newtype!(RobotName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_the_repository_component_grammar() {
        for ok in ["library", "a", "team-1", "a.b_c", "x9"] {
            assert!(ProjectName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Library", "-a", "a-", "a--b", "a/b", "a b", &"a".repeat(256)] {
            assert!(ProjectName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames_refuse_separators_used_by_credentials_and_robots() {
        assert!(Username::parse("alice.o'brien@example.com").is_ok());
        for bad in ["", "a b", "a:b", "robot$x", "a+b", "a/b"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn robot_names_carry_their_project() {
        let p = ProjectName::parse("team").unwrap();
        let robot = RobotName::new(&p, "ci").unwrap();
        assert_eq!(robot.as_str(), "robot$team+ci");
        assert_eq!(RobotName::parse("robot$team+ci").unwrap(), robot);
        assert_eq!(robot.project(), p);
        for bad in [
            "robot$team",
            "team+ci",
            "robot$+ci",
            "robot$team+",
            "robot$Team+ci",
        ] {
            assert!(RobotName::parse(bad).is_err(), "{bad}");
        }
    }
}
