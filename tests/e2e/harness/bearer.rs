//! The Docker token flow as clients make it: a request goes out without credentials first (or
//! after a `/v2/` ping), follows the 401 challenge to the token service with the principal's Basic
//! credentials (if any), and is sent again with the bearer token, as docker and skopeo do.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use super::{accept_all, Registry};

/// A principal of the matrix and its credentials (`None`: anonymous).
pub struct Who {
    pub name: &'static str,
    pub creds: Option<(String, String)>,
}

/// A client without the harness's admin credentials.
pub fn bare() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `key="value"` pairs of a `Www-Authenticate: Bearer …` challenge.
pub fn challenge(resp: &Response) -> Option<BTreeMap<String, String>> {
    let value = resp.headers().get("www-authenticate")?.to_str().ok()?;
    let rest = value.strip_prefix("Bearer ")?;
    let mut params = BTreeMap::new();
    for part in rest.split("\",") {
        let (k, v) = part.split_once('=')?;
        params.insert(k.trim().to_string(), v.trim_matches('"').to_string());
    }
    Some(params)
}

/// Asks the token service for what `params` (a challenge) names.
pub fn token(who: &Who, params: &BTreeMap<String, String>) -> Result<String, (u16, String)> {
    let mut query = vec![("service", params["service"].clone())];
    if let Some(scope) = params.get("scope") {
        query.push(("scope", scope.clone()));
    }
    let mut request = bare().get(&params["realm"]).query(&query);
    if let Some((user, secret)) = &who.creds {
        request = request.basic_auth(user, Some(secret));
    }
    let resp = request.send().unwrap();
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_str(&resp.text().unwrap()).unwrap_or(Value::Null);
    if status != 200 {
        return Err((status, body.to_string()));
    }
    assert_eq!(body["token"], body["access_token"], "{body}");
    assert!(body["expires_in"].as_i64().unwrap() > 0, "{body}");
    assert!(body["issued_at"].is_string(), "{body}");
    Ok(body["token"].as_str().unwrap().to_string())
}

/// The scope a client asks for before it sends `method` to `path` (as docker does).
pub fn scope_for(method: &str, path: &str) -> String {
    if path.starts_with("/v2/_catalog") {
        return "registry:catalog:*".to_string();
    }
    let rest = path.trim_start_matches("/v2/");
    let repo = ["/manifests/", "/blobs/", "/tags/", "/referrers/"]
        .iter()
        .find_map(|marker| rest.rsplit_once(marker).map(|(repo, _)| repo))
        .unwrap_or(rest);
    let actions = match method {
        "GET" | "HEAD" => "pull",
        "DELETE" => "delete",
        _ => "pull,push",
    };
    format!("repository:{repo}:{actions}")
}

/// One request as `who`, as docker and skopeo make it: a caller with credentials pings `/v2/`,
/// gets a token for the operation's scope and sends it (asking again if challenged for another
/// scope); an anonymous caller tries without, and follows a challenge. (status, body).
pub fn call(
    reg: &Registry,
    who: &Who,
    method: &str,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String) {
    let send = |bearer: Option<&str>| {
        let mut request = bare().request(method.parse().unwrap(), reg.url(path));
        if let Some((content_type, bytes)) = &body {
            request = request.header("content-type", *content_type).body(bytes.clone());
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.header("accept", accept_all()).send().unwrap()
    };
    let first = if who.creds.is_some() {
        let ping = bare().get(reg.url("/v2/")).send().unwrap();
        assert_eq!(ping.status().as_u16(), 401, "the /v2/ ping challenges");
        let mut params = challenge(&ping).expect("a Bearer challenge");
        params.insert("scope".into(), scope_for(method, path));
        let token = match token(who, &params) {
            Ok(token) => token,
            Err(refused) => return refused,
        };
        send(Some(&token))
    } else {
        send(None)
    };
    if first.status().as_u16() != 401 {
        let status = first.status().as_u16();
        return (status, first.text().unwrap());
    }
    let params = challenge(&first).expect("a 401 carries a Bearer challenge");
    let token = match token(who, &params) {
        Ok(token) => token,
        Err(refused) => return refused,
    };
    let resp = send(Some(&token));
    let status = resp.status().as_u16();
    (status, resp.text().unwrap())
}
