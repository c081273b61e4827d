//! A registry endpoint replication copies from or to (Harbor's `Registry`): its kind, where it is,
//! how to trust its certificate, and the credential to sign in with, whose secret is sealed before
//! it is recorded (the log is kept for ever and exported: `ports::SecretBox`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest registry name Harbor accepts.
pub const MAX_NAME_CHARS: usize = 64;
/// The longest description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;

/// What a registry endpoint is, which decides how its artifacts are listed (Harbor's adapter
/// types; Berth serves these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RegistryKind {
    /// Berth or Harbor: projects and repositories listed through `/api/v2.0`, copied over `/v2`.
    #[serde(rename = "harbor")]
    Harbor,
    /// Any registry of the OCI distribution API: `/v2/_catalog` and tag lists.
    #[serde(rename = "docker-registry")]
    DockerRegistry,
}

impl RegistryKind {
    pub const ALL: [RegistryKind; 2] = [RegistryKind::Harbor, RegistryKind::DockerRegistry];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Harbor => "harbor",
            RegistryKind::DockerRegistry => "docker-registry",
        }
    }

    pub fn parse(name: &str) -> Result<RegistryKind, RegistryError> {
        (RegistryKind::ALL.into_iter())
            .find(|k| k.as_str() == name)
            .ok_or_else(|| RegistryError::Kind(name.to_string()))
    }
}

impl fmt::Display for RegistryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A credential as recorded: the access key in the clear, the secret sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedCredential {
    /// The user name (Harbor's `access_key`; its credential type is always `basic` here).
    pub access_key: String,
    /// The password or token, sealed by the registry's secret box (never the secret itself).
    pub sealed_secret: String,
}

/// A registry endpoint as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySpec {
    pub id: u64,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub kind: RegistryKind,
    /// `http(s)://host[:port]`, as [`normalize_url`] leaves it.
    pub url: String,
    /// Whether its TLS certificate goes unchecked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// PEM certificates its TLS certificate is checked against instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<SealedCredential>,
}

impl RegistrySpec {
    /// Checks what a spec alone can tell: its name and description.
    pub fn check(&self) -> Result<(), RegistryError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(RegistryError::Name("name cannot be empty".into()));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(RegistryError::Name(format!(
                "the max length of name is {MAX_NAME_CHARS}"
            )));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(RegistryError::Name(format!(
                "the max length of description is {MAX_DESCRIPTION_CHARS}"
            )));
        }
        normalize_url(&self.url).map(|_| ())
    }
}

/// Why a registry endpoint cannot be kept as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Name(String),
    #[error("registry type {0:?} is not supported: \"harbor\" (Berth or Harbor) or \"docker-registry\" (any OCI registry)")]
    Kind(String),
    #[error("{0}")]
    Url(String),
}

/// `url` as Harbor keeps it: a scheme (`http://` when none is given, as Harbor does), the host and
/// port, no trailing slash. A path, query, user info or fragment is refused: registries serve the
/// distribution API at `/v2/` of their host.
pub fn normalize_url(url: &str) -> Result<String, RegistryError> {
    let bad = |why: &str| RegistryError::Url(format!("invalid URL {url:?}: {why}"));
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    let (scheme, rest) = match trimmed.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_string(), trimmed),
    };
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    if host.contains(['/', '?', '#', '@']) || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("only a scheme, a host and a port are allowed"));
    }
    let (name, port) = if host.starts_with('[') {
        let end = host
            .find(']')
            .ok_or_else(|| bad("an IPv6 address lacks its closing bracket"))?;
        match &host[end + 1..] {
            "" => (&host[..=end], None),
            rest => match rest.strip_prefix(':') {
                Some(port) => (&host[..=end], Some(port)),
                None => return Err(bad("only a port may follow an IPv6 address")),
            },
        }
    } else {
        match host.split_once(':') {
            Some((_, port)) if port.contains(':') => return Err(bad("an IPv6 host must be in brackets")),
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
    }
    let bracketed = name.len() > 2 && name.starts_with('[') && name.ends_with(']');
    let valid_name = bracketed
        || (!name.is_empty())
            && (name.chars()).all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
    if !valid_name {
        return Err(bad("the host is not a host name or address"));
    }
    Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_scheme_host_and_port_only() {
        let ok = |u: &str| normalize_url(u).unwrap();
        assert_eq!(ok("https://Registry.Example/"), "https://registry.example");
        assert_eq!(ok("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(ok("HTTP://[::1]:5000"), "http://[::1]:5000");
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://x/v2",
            "https://u:p@x",
            "https://x:0",
            "https://x:99999",
            "https://x y",
            "https://::1",
            "https://x?y",
        ] {
            assert!(normalize_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_have_harbors_names() {
        assert_eq!(RegistryKind::parse("harbor").unwrap(), RegistryKind::Harbor);
        assert_eq!(
            RegistryKind::parse("docker-registry").unwrap(),
            RegistryKind::DockerRegistry
        );
        assert!(RegistryKind::parse("aws-ecr")
            .unwrap_err()
            .to_string()
            .contains("aws-ecr"));
        assert_eq!(
            serde_json::to_string(&RegistryKind::DockerRegistry).unwrap(),
            "\"docker-registry\""
        );
    }

    #[test]
    fn names_are_needed_and_bounded() {
        let spec = |name: &str| RegistrySpec {
            id: 1,
            name: name.into(),
            description: String::new(),
            kind: RegistryKind::Harbor,
            url: "https://x".into(),
            insecure: false,
            ca_certificate: None,
            credential: None,
        };
        assert!(spec("b").check().is_ok());
        assert!(spec(" ").check().is_err());
        assert!(spec(&"n".repeat(65)).check().is_err());
    }
}
