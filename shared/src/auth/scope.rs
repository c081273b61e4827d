//! The `scope` query parameter of a token request (distribution "Token Scope and Access
//! Documentation", "Resource Scope Grammar"):
//!
//! ```text
//! scope        := resourcetype ":" resourcename ":" action [ ',' action ]*
//! resourcetype := resourcetypevalue [ '(' resourcetypevalue ')' ]
//! resourcetypevalue := /[a-z0-9]+/
//! action       := /[a-z]*/          (Berth also takes "*", as in `registry:catalog:*`)
//! ```
//!
//! A resource name may carry a `host:port` prefix, so a scope is split at its FIRST colon (the
//! type never has one) and its LAST colon (actions never have one). Only the syntax is checked
//! here; whether the name is a valid repository and which actions are granted is the
//! authorizer's decision.

use std::fmt;
use std::str::FromStr;

use super::{AuthError, AuthResult};

/// Longest scope accepted: a 255-character repository name with a registry host, a type and every
/// action fit in it several times over; anything longer is noise or abuse.
pub const MAX_SCOPE_LEN: usize = 1024;
/// How much of a refused scope an error echoes back.
const ECHO_LEN: usize = 64;

/// One requested resource and the actions asked on it, e.g. `repository:library/alpine:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    /// `repository`, `registry`, or a type with a class such as `repository(plugin)`.
    pub resource_type: String,
    /// The resource: a repository name (maybe with a `host:port` prefix), or `catalog`.
    pub name: String,
    /// The actions asked, in request order, without duplicates (`pull`, `push`, `delete`, `*`).
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses one scope; see the module doc for the grammar.
    pub fn parse(s: &str) -> AuthResult<Self> {
        let invalid = |reason| AuthError::InvalidScope {
            scope: echo(s),
            reason,
        };
        if s.len() > MAX_SCOPE_LEN {
            return Err(invalid("longer than 1024 bytes"));
        }
        let (resource_type, rest) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected type:name:actions"))?;
        let (name, actions) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected type:name:actions"))?;
        if !is_resource_type(resource_type) {
            return Err(invalid(
                "resource type must match [a-z0-9]+ or [a-z0-9]+([a-z0-9]+)",
            ));
        }
        if name.is_empty() {
            return Err(invalid("resource name is empty"));
        }
        if !name.chars().all(is_name_char) {
            return Err(invalid("resource name has a character outside [A-Za-z0-9._/:-]"));
        }
        let mut parsed: Vec<String> = Vec::new();
        for action in actions.split(',') {
            if action.is_empty() {
                return Err(invalid("empty action"));
            }
            if action != "*" && !action.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(invalid("action must match [a-z]+ or be *"));
            }
            if !parsed.iter().any(|a| a == action) {
                parsed.push(action.to_owned());
            }
        }
        Ok(Self {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            actions: parsed,
        })
    }

    /// Whether this scope asks for `action`.
    pub fn asks(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }
}

impl FromStr for Scope {
    type Err = AuthError;

    fn from_str(s: &str) -> AuthResult<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type,
            self.name,
            self.actions.join(",")
        )
    }
}

/// Parses every `scope` parameter of a token request. A parameter may itself hold several scopes
/// separated by spaces (RFC 6749 §3.3 style); empty parameters are skipped.
pub fn parse_scopes<'a>(params: impl IntoIterator<Item = &'a str>) -> AuthResult<Vec<Scope>> {
    params
        .into_iter()
        .flat_map(str::split_ascii_whitespace)
        .map(Scope::parse)
        .collect()
}

/// `[a-z0-9]+` optionally followed by `([a-z0-9]+)`.
fn is_resource_type(s: &str) -> bool {
    let value = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match s.split_once('(') {
        None => value(s),
        Some((base, class)) => value(base) && class.strip_suffix(')').is_some_and(value),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | ':' | '-')
}

fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO_LEN) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(t: &str, name: &str, actions: &[&str]) -> Scope {
        Scope {
            resource_type: t.into(),
            name: name.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn valid_scopes_parse_into_type_name_and_actions() {
        let cases: &[(&str, Scope)] = &[
            ("repository:alpine:pull", scope("repository", "alpine", &["pull"])),
            (
                "repository:library/alpine:pull,push",
                scope("repository", "library/alpine", &["pull", "push"]),
            ),
            (
                "repository:a/b/c-d_e.f:pull,push,delete",
                scope("repository", "a/b/c-d_e.f", &["pull", "push", "delete"]),
            ),
            ("registry:catalog:*", scope("registry", "catalog", &["*"])),
            (
                "repository:localhost:5000/team/app:push",
                scope("repository", "localhost:5000/team/app", &["push"]),
            ),
            (
                "repository(plugin):vieux/sshfs:pull",
                scope("repository(plugin)", "vieux/sshfs", &["pull"]),
            ),
            (
                "repository:app:pull,pull,push,pull",
                scope("repository", "app", &["pull", "push"]),
            ),
            ("repository:app:*", scope("repository", "app", &["*"])),
            (
                "repository:app:frobnicate",
                scope("repository", "app", &["frobnicate"]),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&Scope::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn invalid_scopes_are_refused_with_a_reason() {
        let long = format!("repository:{}:pull", "a".repeat(MAX_SCOPE_LEN));
        let cases: &[(&str, &str)] = &[
            ("", "expected type:name:actions"),
            ("repository", "expected type:name:actions"),
            ("repository:alpine", "expected type:name:actions"),
            (":alpine:pull", "resource type must match"),
            ("Repository:alpine:pull", "resource type must match"),
            ("repo sitory:alpine:pull", "resource type must match"),
            ("repository(:alpine:pull", "resource type must match"),
            ("repository():alpine:pull", "resource type must match"),
            ("repository(plugin:alpine:pull", "resource type must match"),
            ("repository(a)(b):alpine:pull", "resource type must match"),
            ("repository::pull", "resource name is empty"),
            ("repository:al pine:pull", "resource name has a character"),
            ("repository:alpine?x=1:pull", "resource name has a character"),
            ("repository:alpine:", "empty action"),
            ("repository:alpine:pull,", "empty action"),
            ("repository:alpine:,pull", "empty action"),
            ("repository:alpine:pull,,push", "empty action"),
            ("repository:alpine:Pull", "action must match"),
            ("repository:alpine:pull push", "action must match"),
            ("repository:alpine:**", "action must match"),
            ("repository:alpine:pull;push", "action must match"),
            (long.as_str(), "longer than 1024 bytes"),
        ];
        for (input, want) in cases {
            match Scope::parse(input) {
                Err(AuthError::InvalidScope { reason, .. }) => {
                    assert!(
                        reason.starts_with(want),
                        "{input:?}: got {reason:?}, want {want:?}"
                    );
                }
                other => panic!("{input:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn a_refused_long_scope_is_echoed_only_in_part() {
        let long = format!("repository:{}:pull", "a".repeat(MAX_SCOPE_LEN));
        let Err(AuthError::InvalidScope { scope, .. }) = Scope::parse(&long) else {
            panic!("long scope parsed");
        };
        assert!(scope.chars().count() <= ECHO_LEN + 1);
    }

    #[test]
    fn a_scope_displays_as_it_parses() {
        for s in ["repository:library/alpine:pull,push", "registry:catalog:*"] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn several_scope_parameters_and_space_separated_scopes_all_parse() {
        let got = parse_scopes([
            "repository:a:pull",
            "repository:b:pull,push registry:catalog:*",
            "",
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                scope("repository", "a", &["pull"]),
                scope("repository", "b", &["pull", "push"]),
                scope("registry", "catalog", &["*"]),
            ]
        );
        assert!(parse_scopes(["repository:a:pull", "bogus"]).is_err());
        assert_eq!(parse_scopes([]).unwrap(), vec![]);
    }

    #[test]
    fn asks_reports_requested_actions() {
        let s = Scope::parse("repository:a:pull,push").unwrap();
        assert!(s.asks("pull") && s.asks("push") && !s.asks("delete"));
    }
}
