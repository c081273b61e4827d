//! Findings of an independent security probe, each as a client would notice it: robots pulling
//! public projects, challenges on every 401, the realm not taken from a forged `Host`, reserved and
//! look-alike usernames, tokens revoked by a password change or a secret refresh, repositories
//! named by a project alone, and scopes for names `/v2/` would refuse.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// The token service's answer for `scope` as `who`.
fn token_for(reg: &Registry, who: &Who, scope: &str) -> String {
    let mut params = BTreeMap::new();
    params.insert("realm".to_string(), reg.url("/service/token"));
    params.insert("service".to_string(), "berth".to_string());
    params.insert("scope".to_string(), scope.to_string());
    token(who, &params).unwrap()
}

/// The `access` claim of a token (its payload is not secret, only signed).
fn access_of(token: &str) -> Value {
    use base64ct::Encoding as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64ct::Base64UrlUnpadded::decode_vec(payload).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["access"].clone()
}

/// GET of a manifest with a bearer token: (status, `WWW-Authenticate`).
fn get_with_token(reg: &Registry, path: &str, token: &str) -> (u16, String) {
    let resp = bare()
        .get(reg.url(path))
        .header("accept", accept_all())
        .bearer_auth(token)
        .send()
        .unwrap();
    let challenge = (resp.headers().get("www-authenticate"))
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), challenge)
}

fn who(user: &str, secret: &str) -> Who {
    Who {
        name: "someone",
        creds: Some((user.to_string(), secret.to_string())),
    }
}

#[test]
fn a_robot_of_one_project_pulls_from_a_public_project() {
    if skip_unless_berth("robot accounts are Berth's") {
        return;
    }
    let reg = Registry::start();
    create_project(&reg, "team", false, Value::Null);
    reg.push_small_image("library/base", "v1");
    reg.push_small_image("team/app", "v1");
    create_project(&reg, "secret", false, Value::Null);
    reg.push_small_image("secret/app", "v1");
    let (_, name, secret) = create_robot(&reg, "team", "ci", &["pull"]);
    let robot = who(&name, &secret);
    let (status, body) = call(&reg, &robot, "GET", "/v2/library/base/manifests/v1", None);
    assert_eq!(
        status, 200,
        "anyone signed in pulls from a public project: {body}"
    );
    let (status, _) = call(&reg, &robot, "GET", "/v2/team/app/manifests/v1", None);
    assert_eq!(status, 200, "its own project");
    let (status, body) = call(&reg, &robot, "GET", "/v2/secret/app/manifests/v1", None);
    assert_eq!(status, 403, "another private project stays closed: {body}");
    let (status, body) = call(
        &reg,
        &robot,
        "PUT",
        "/v2/library/base/manifests/v2",
        Some((OCI_MANIFEST, b"{}".to_vec())),
    );
    assert_eq!(status, 403, "pull only, in a public project: {body}");
}

#[test]
fn every_401_tells_the_client_where_to_get_a_token() {
    if skip_unless_berth("the challenge is Berth's") {
        return;
    }
    let reg = Registry::start();
    reg.push_small_image("library/app", "v1");
    for bad in ["not.a.token", "eyJhbGciOiJub25lIn0.e30."] {
        let (status, challenge) = get_with_token(&reg, "/v2/library/app/manifests/v1", bad);
        assert_eq!(status, 401);
        assert!(challenge.starts_with("Bearer realm=\""), "{challenge:?}");
        assert!(challenge.contains("service=\"berth\""), "{challenge:?}");
        assert!(
            challenge.contains("scope=\"repository:library/app:pull\""),
            "{challenge:?}"
        );
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge:?}");
    }
    // Wrong Basic credentials on /v2/ get the same way in, without a token error.
    let resp = bare()
        .get(reg.url("/v2/library/app/manifests/v1"))
        .basic_auth("admin", Some("wrong-password"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
}

/// One raw HTTP/1.1 request with `host` as its `Host` header; the response head.
fn raw_get(reg: &Registry, path: &str, host: &str) -> String {
    let mut stream = TcpStream::connect(reg.host()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.split("\r\n\r\n").next().unwrap_or_default().to_string()
}

#[test]
fn a_forged_host_header_never_reaches_the_challenge() {
    if skip_unless_berth("the challenge is Berth's") {
        return;
    }
    let reg = Registry::start();
    if reg.deployment == Deployment::Lambda {
        eprintln!("SKIPPED on the Lambda emulator: it answers requests it cannot route itself");
        return;
    }
    let head = raw_get(&reg, "/v2/", "evil\",error=\"injected");
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let challenge = (head.lines())
        .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .unwrap_or_else(|| panic!("no challenge in {head}"));
    assert!(!challenge.contains("injected"), "{challenge}");
    assert!(
        challenge.contains("realm=\"http://localhost/service/token\""),
        "{challenge}"
    );
    // A well-formed host is used as sent (clients reach the registry under several names).
    let head = raw_get(&reg, "/v2/", "registry.example:5000");
    assert!(
        head.contains("realm=\"http://registry.example:5000/service/token\""),
        "{head}"
    );
}

#[test]
fn reserved_and_look_alike_usernames_are_refused() {
    if skip_unless_berth("users are Berth's") {
        return;
    }
    let reg = Registry::start();
    for (name, status) in [
        ("anonymous", 400),
        ("system", 400),
        ("System", 400),
        ("Admin", 409),
        ("ADMIN", 409),
    ] {
        let (got, body) = api_admin(
            &reg,
            "POST",
            "/users",
            json!({"username": name, "password": "Look-alike-1"}),
        );
        assert_eq!(got, status, "{name}: {body}");
        assert!(body["errors"][0]["message"].is_string(), "{name}: {body}");
    }
    // A name of its own keeps the case it was created with.
    let id = create_user(&reg, "Carol", "Carol-Pass-1");
    let (_, user) = api_admin(&reg, "GET", &format!("/users/{id}"), Value::Null);
    assert_eq!(user["username"], "Carol");
    let (status, _) = api_admin(
        &reg,
        "POST",
        "/users",
        json!({"username": "carol", "password": "Look-alike-1"}),
    );
    assert_eq!(status, 409);
}

#[test]
fn a_password_change_or_a_secret_refresh_revokes_earlier_tokens() {
    if skip_unless_berth("tokens are Berth's") {
        return;
    }
    let reg = Registry::start();
    create_project(&reg, "team", false, Value::Null);
    reg.push_small_image("team/app", "v1");
    let alice_id = create_user(&reg, "alice", "Alice-Pass-1");
    add_member(&reg, "team", "alice", ROLE_GUEST);
    let scope = "repository:team/app:pull";
    let path = "/v2/team/app/manifests/v1";

    let before = token_for(&reg, &who("alice", "Alice-Pass-1"), scope);
    assert_eq!(get_with_token(&reg, path, &before).0, 200);
    let (status, body) = api_admin(
        &reg,
        "PUT",
        &format!("/users/{alice_id}/password"),
        json!({"new_password": "Alice-Pass-2"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, challenge) = get_with_token(&reg, path, &before);
    assert_eq!(status, 401, "a token issued before the change is refused");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let after = token_for(&reg, &who("alice", "Alice-Pass-2"), scope);
    assert_eq!(get_with_token(&reg, path, &after).0, 200);

    let (robot_id, name, secret) = create_robot(&reg, "team", "ci", &["pull"]);
    let before = token_for(&reg, &who(&name, &secret), scope);
    assert_eq!(get_with_token(&reg, path, &before).0, 200);
    let (status, refreshed) = api_admin(&reg, "PATCH", &format!("/robots/{robot_id}"), json!({}));
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(get_with_token(&reg, path, &before).0, 401);
    let new_secret = refreshed["secret"].as_str().unwrap();
    let after = token_for(&reg, &who(&name, new_secret), scope);
    assert_eq!(get_with_token(&reg, path, &after).0, 200);
}

#[test]
fn a_repository_named_by_a_project_alone_is_refused() {
    if skip_unless_berth("projects are Berth's") {
        return;
    }
    let reg = Registry::start();
    for (method, path) in [
        ("GET", "/v2/library/manifests/v1"),
        ("PUT", "/v2/library/manifests/v1"),
        ("POST", "/v2/library/blobs/uploads/"),
        ("GET", "/v2/library/tags/list"),
    ] {
        let resp = reg
            .http
            .request(method.parse().unwrap(), reg.url(path))
            .header("content-type", OCI_MANIFEST)
            .body("{}")
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().unwrap();
        assert_eq!(status, 400, "{method} {path}: {body}");
        assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("<project>/<repository>"), "{message}");
    }
}

#[test]
fn the_token_service_grants_nothing_for_names_v2_would_refuse() {
    if skip_unless_berth("the token service is Berth's") {
        return;
    }
    let reg = Registry::start();
    let admin = who("admin", ADMIN_PASSWORD);
    for scope in [
        "repository:library/../secret/app:pull",
        "repository:library:pull,push",
        "repository:library//app:pull",
        "repository:Library/App:pull",
    ] {
        let token = token_for(&reg, &admin, scope);
        assert_eq!(access_of(&token), json!([]), "{scope}");
    }
    let token = token_for(&reg, &admin, "repository:library/app:pull");
    assert_eq!(access_of(&token)[0]["name"], "library/app");
}
