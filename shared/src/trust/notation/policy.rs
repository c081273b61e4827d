//! Notation trust policy documents, version 1.0 (Notary Project specification
//! `specs/trust-store-trust-policy.md`, "Trust Policy"), validated as notation-go validates them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

use super::dn::{self, Dn};
use crate::trust::{TrustError, TrustResult};

/// The only trust policy document version.
pub const POLICY_VERSION: &str = "1.0";
/// The registry scope and trusted identity that match everything.
pub const WILDCARD: &str = "*";
/// Prefix of a trusted identity naming a certificate subject.
pub const X509_SUBJECT_PREFIX: &str = "x509.subject";

/// A validated trust policy document: `{"version":"1.0","trustPolicies":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustPolicy {
    version: String,
    #[serde(rename = "trustPolicies")]
    statements: Vec<TrustPolicyStatement>,
}

/// One trust policy statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyStatement {
    /// Unique in the document.
    pub name: String,
    /// `host[:port]/repository` values, or the single value `*`.
    pub registry_scopes: Vec<String>,
    pub signature_verification: SignatureVerification,
    /// `<type>:<name>` of trust stores, type `ca`, `signingAuthority` or `tsa`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_stores: Vec<String>,
    /// `*`, or `x509.subject: <DN>` values (the DN names C, ST and O at least).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_identities: Vec<String>,
}

/// `signatureVerification`: a preset level, optionally with per-check overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureVerification {
    pub level: Level,
    #[serde(default, rename = "override", skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<Check, Action>,
}

/// A verification level preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    Strict,
    Permissive,
    Audit,
    Skip,
}

/// A validation a level enforces, logs or skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    Integrity,
    Authenticity,
    AuthenticTimestamp,
    Expiry,
    Revocation,
}

/// What a failed check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// The signature is rejected.
    Enforce,
    /// The signature passes with a warning.
    Log,
    /// The check is not made.
    Skip,
}

impl SignatureVerification {
    /// The action for `check`: the level's preset (spec table "Signature Verification details"),
    /// unless overridden.
    pub fn action(&self, check: Check) -> Action {
        if let Some(action) = self.overrides.get(&check) {
            return *action;
        }
        use Action::*;
        match (self.level, check) {
            (Level::Skip, _) => Skip,
            (_, Check::Integrity) | (Level::Strict, _) => Enforce,
            (Level::Permissive, Check::Authenticity) => Enforce,
            (Level::Permissive | Level::Audit, _) => Log,
        }
    }
}

impl TrustPolicy {
    /// Reads and validates a trust policy document.
    pub fn from_json(json: &str) -> TrustResult<Self> {
        let policy: Self = serde_json::from_str(json).map_err(|e| TrustError::Policy(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// A validated document from statements.
    pub fn new(statements: Vec<TrustPolicyStatement>) -> TrustResult<Self> {
        let policy = Self {
            version: POLICY_VERSION.to_owned(),
            statements,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// The document as JSON (what [`TrustPolicy::from_json`] reads back).
    pub fn to_json(&self) -> String {
        // Plain structs of strings, lists and string-keyed maps always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn statements(&self) -> &[TrustPolicyStatement] {
        &self.statements
    }

    /// The statement that applies to `repository` (a repository path such as `library/app`): the
    /// one with a scope `host[:port]/<repository>` — the host part is ignored, because one registry
    /// is reached under several names (the first such statement wins if hosts differ) — else the
    /// `*` statement, else none.
    pub fn statement_for(&self, repository: &str) -> Option<&TrustPolicyStatement> {
        let scoped = self.statements.iter().find(|statement| {
            statement
                .registry_scopes
                .iter()
                .any(|scope| scope.split_once('/').is_some_and(|(_, path)| path == repository))
        });
        scoped.or_else(|| {
            self.statements
                .iter()
                .find(|statement| statement.registry_scopes.iter().any(|scope| scope == WILDCARD))
        })
    }

    fn validate(&self) -> TrustResult<()> {
        if self.version != POLICY_VERSION {
            return Err(policy_error(format!(
                "version is {:?}, only {POLICY_VERSION:?} is supported",
                self.version
            )));
        }
        if self.statements.is_empty() {
            return Err(policy_error("the document has no trust policy statement"));
        }
        let mut names = BTreeMap::new();
        let mut scopes = BTreeMap::new();
        for statement in &self.statements {
            if names.insert(statement.name.as_str(), ()).is_some() {
                return Err(policy_error(format!(
                    "several statements are named {:?}",
                    statement.name
                )));
            }
            statement.validate()?;
            for scope in &statement.registry_scopes {
                if let Some(other) = scopes.insert(scope.as_str(), statement.name.as_str()) {
                    return Err(policy_error(format!(
                        "registry scope {scope:?} is in statements {other:?} and {:?}; a scope belongs to one statement",
                        statement.name
                    )));
                }
            }
        }
        Ok(())
    }
}

impl TrustPolicyStatement {
    fn validate(&self) -> TrustResult<()> {
        let name = &self.name;
        if name.is_empty() {
            return Err(policy_error("a statement has no name"));
        }
        self.validate_scopes()?;
        let verification = &self.signature_verification;
        if verification.level == Level::Skip {
            if !verification.overrides.is_empty() {
                return Err(policy_error(format!(
                    "statement {name:?}: level skip cannot be overridden"
                )));
            }
            if !self.trust_stores.is_empty() || !self.trusted_identities.is_empty() {
                return Err(policy_error(format!(
                    "statement {name:?} skips verification, so it takes no trust stores or trusted identities"
                )));
            }
            return Ok(());
        }
        for (check, action) in &verification.overrides {
            if *check == Check::Integrity {
                return Err(policy_error(format!(
                    "statement {name:?}: integrity cannot be overridden"
                )));
            }
            if *action == Action::Skip && *check != Check::Revocation {
                return Err(policy_error(format!(
                    "statement {name:?}: only revocation may be skipped"
                )));
            }
        }
        if self.trust_stores.is_empty() || self.trusted_identities.is_empty() {
            return Err(policy_error(format!(
                "statement {name:?} needs trust stores and trusted identities"
            )));
        }
        for store in &self.trust_stores {
            validate_store_name(store).map_err(|e| policy_error(format!("statement {name:?}: {e}")))?;
        }
        self.validate_identities()
    }

    fn validate_scopes(&self) -> TrustResult<()> {
        let name = &self.name;
        if self.registry_scopes.is_empty() {
            return Err(policy_error(format!("statement {name:?} has no registry scope")));
        }
        if self.registry_scopes.len() > 1 && self.registry_scopes.iter().any(|s| s == WILDCARD) {
            return Err(policy_error(format!(
                "statement {name:?}: the scope \"*\" must stand alone"
            )));
        }
        for scope in self.registry_scopes.iter().filter(|s| *s != WILDCARD) {
            if !is_valid_scope(scope) {
                return Err(policy_error(format!(
                    "statement {name:?}: registry scope {scope:?} is not host[:port]/repository"
                )));
            }
        }
        Ok(())
    }

    fn validate_identities(&self) -> TrustResult<()> {
        let name = &self.name;
        let identities = &self.trusted_identities;
        if identities.len() > 1 && identities.iter().any(|i| i == WILDCARD) {
            return Err(policy_error(format!(
                "statement {name:?}: the identity \"*\" must stand alone"
            )));
        }
        let mut dns: Vec<Dn> = Vec::new();
        for identity in identities.iter().filter(|i| *i != WILDCARD) {
            let dn =
                parse_identity(identity).map_err(|e| policy_error(format!("statement {name:?}: {e}")))?;
            if dns
                .iter()
                .any(|other| dn::is_subset(other, &dn) || dn::is_subset(&dn, other))
            {
                return Err(policy_error(format!(
                    "statement {name:?} has overlapping trusted identities"
                )));
            }
            dns.push(dn);
        }
        Ok(())
    }

    /// Parsed `x509.subject` identities, or `None` for `*`.
    pub(super) fn subject_identities(&self) -> Option<Vec<Dn>> {
        if self.trusted_identities.iter().any(|i| i == WILDCARD) {
            return None;
        }
        Some(
            self.trusted_identities
                .iter()
                .filter_map(|i| parse_identity(i).ok())
                .collect(),
        )
    }
}

/// `x509.subject: C=US, ST=WA, O=Acme` → its DN, which must name C, ST and O.
fn parse_identity(identity: &str) -> Result<Dn, String> {
    let Some((prefix, value)) = identity.split_once(':') else {
        return Err(format!(
            "trusted identity {identity:?} is not \"x509.subject: <DN>\""
        ));
    };
    if prefix.trim() != X509_SUBJECT_PREFIX {
        return Err(format!(
            "trusted identity {identity:?}: only {X509_SUBJECT_PREFIX} identities are supported"
        ));
    }
    let dn = dn::parse(value.trim())?;
    for mandatory in ["C", "ST", "O"] {
        if !dn.contains_key(mandatory) {
            return Err(format!("trusted identity {identity:?} must name C, ST and O"));
        }
    }
    Ok(dn)
}

/// `<type>:<name>`, type `ca`, `signingAuthority` or `tsa`, name `[A-Za-z0-9_.-]+`.
pub(super) fn validate_store_name(store: &str) -> Result<(), String> {
    let Some((kind, name)) = store.split_once(':') else {
        return Err(format!("trust store {store:?} is not <type>:<name>"));
    };
    if !matches!(kind, "ca" | "signingAuthority" | "tsa") {
        return Err(format!(
            "trust store {store:?} has type {kind:?}, not ca, signingAuthority or tsa"
        ));
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(format!(
            "trust store {store:?} has a name outside [A-Za-z0-9_.-]+"
        ));
    }
    Ok(())
}

/// `host[:port]/path` with a distribution-style host and repository path, no tag, digest or `*`.
fn is_valid_scope(scope: &str) -> bool {
    let Some((host, path)) = scope.split_once('/') else {
        return false;
    };
    let (hostname, port_ok) = match host.split_once(':') {
        Some((hostname, port)) => (
            hostname,
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        ),
        None => (host, true),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    hostname.split('.').all(label_ok) && port_ok && path.split('/').all(component_ok)
}

fn policy_error(message: impl Into<String>) -> TrustError {
    TrustError::Policy(message.into())
}
