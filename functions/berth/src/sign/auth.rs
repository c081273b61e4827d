//! Who `berth sign` and `berth verify` are to a registry: credentials from the flags (or
//! `BERTH_USERNAME` / `BERTH_PASSWORD`), else from docker's `config.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use base64ct::Encoding as _;
use berth::registry_client::Credentials;
use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use super::*;

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
