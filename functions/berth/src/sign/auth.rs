//! Who the client is to a registry: credentials from the flags (or `BERTH_USERNAME` /
//! `BERTH_PASSWORD`), else from docker's `config.json`; and the `WWW-Authenticate` challenges of
//! RFC 7235 that distribution's "Token Authentication Specification" sends.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use base64ct::Encoding as _;
use serde::Deserialize;

/// A username and password (or token) for a registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// `Basic <base64(user:password)>`.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64ct::Base64::encode_string(pair.as_bytes()))
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

/// The credentials for `registry` (`host[:port]`): the flags' when given, else docker's
/// `config.json` entry for that host (its `auth` field; credential helpers are not run).
pub fn credentials(
    username: Option<&str>,
    password: Option<&str>,
    registry: &str,
) -> anyhow::Result<Option<Credentials>> {
    match (username, password) {
        (Some(username), password) => Ok(Some(Credentials {
            username: username.to_string(),
            password: password.unwrap_or_default().to_string(),
        })),
        (None, Some(_)) => anyhow::bail!("--password (BERTH_PASSWORD) needs --username (BERTH_USERNAME)"),
        (None, None) => match docker_config_path() {
            Some(path) if path.is_file() => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                from_docker_config(&text, registry).with_context(|| format!("in {}", path.display()))
            }
            _ => Ok(None),
        },
    }
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json")),
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The entry of `auths` whose key names `registry` (keys may carry a scheme and a path, as
/// `https://index.docker.io/v1/` does).
fn from_docker_config(text: &str, registry: &str) -> anyhow::Result<Option<Credentials>> {
    let config: DockerConfig = serde_json::from_str(text).context("not a docker config.json")?;
    let normalise = |key: &str| {
        let host = key.trim_start_matches("https://").trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or(host);
        match host {
            "docker.io" | "registry-1.docker.io" => "index.docker.io".to_string(),
            _ => host.to_string(),
        }
    };
    let Some(entry) = (config.auths.iter())
        .find(|(key, _)| normalise(key) == registry)
        .map(|(_, entry)| entry)
    else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64ct::Base64::decode_vec(auth.trim())
            .map_err(|_| anyhow::anyhow!("the auth of {registry} is not base64"))?;
        let pair = String::from_utf8(decoded).context("the auth is not UTF-8")?;
        let (username, password) = pair
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("the auth of {registry} is not user:password"))?;
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }));
    }
    Ok(match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Some(Credentials {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => None,
    })
}

/// A parsed `WWW-Authenticate` challenge: its scheme (lowercase) and parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses the first challenge of a `WWW-Authenticate` value:
/// `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, mut rest) = match value.split_once(' ') {
        Some((scheme, rest)) => (scheme, rest),
        None => (value, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => read_quoted(quoted)?,
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_string(), &after[end..])
            }
        };
        params.insert(key, value);
        rest = remaining;
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// A quoted-string's content (backslash escapes honoured) and what follows its closing quote.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => return Some((value, &text[i + 1..])),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_into_realm_service_and_scope() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:5000/service/token",service="berth",scope="repository:library/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "http://127.0.0.1:5000/service/token");
        assert_eq!(c.params["service"], "berth");
        assert_eq!(c.params["scope"], "repository:library/app:pull,push");
    }

    #[test]
    fn basic_challenges_and_odd_spacing_parse() {
        let c = parse_challenge(r#"Basic realm="Registry \"x\"""#).unwrap();
        assert_eq!(c.scheme, "basic");
        assert_eq!(c.params["realm"], r#"Registry "x""#);
        let c = parse_challenge("Bearer  realm=a , service=b").unwrap();
        assert_eq!(
            (c.params["realm"].as_str(), c.params["service"].as_str()),
            ("a", "b")
        );
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
        assert!(parse_challenge("").is_none());
    }

    #[test]
    fn docker_config_entries_match_by_host() {
        let config = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
            "127.0.0.1:5000":{"auth":"YWRtaW46cHc6d2l0aDpjb2xvbnM="},
            "http://other:5000":{"username":"u","password":"p"}}}"#;
        let get = |host: &str| {
            from_docker_config(config, host)
                .unwrap()
                .map(|c| (c.username, c.password))
        };
        assert_eq!(get("index.docker.io"), Some(("hub".into(), "secret".into())));
        assert_eq!(
            get("127.0.0.1:5000"),
            Some(("admin".into(), "pw:with:colons".into()))
        );
        assert_eq!(get("other:5000"), Some(("u".into(), "p".into())));
        assert_eq!(get("nowhere:1"), None);
    }

    #[test]
    fn a_password_without_a_username_is_refused() {
        assert!(credentials(None, Some("pw"), "h").is_err());
        let c = credentials(Some("u"), None, "h").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", ""));
    }
}
