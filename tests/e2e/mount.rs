//! Cross-repository mount (distribution-spec "Mounting a blob from another repository") for a client
//! that authenticates with bearer tokens, as containerd, crane, oras-go and the conformance suite
//! do: the mount request is challenged for the target *and* the source, the client fetches one token
//! for both, and the mount succeeds only where the token carries pull on the source.

use serde_json::{json, Value};

use crate::harness::*;

const ALICE: (&str, &str) = ("alice", "Alice-Pass-1");

/// A registry where `alice` develops in `team` and `other`, may not read `secret`, and `open` is
/// public; each project (and `signed`, which requires cosign signatures) holds an unsigned image
/// `<project>/src:v1`. Returns the registry and each source repository's layer digest.
fn world() -> (Registry, Vec<(&'static str, String)>) {
    let reg = Registry::start();
    create_user(&reg, ALICE.0, ALICE.1);
    let mut layers = vec![];
    for (project, public, member) in [
        ("team", false, true),
        ("other", false, true),
        ("open", true, false),
        ("secret", false, false),
        ("signed", true, true),
    ] {
        let metadata = if project == "signed" {
            json!({"enable_content_trust_cosign": "true"})
        } else {
            Value::Null
        };
        create_project(&reg, project, public, metadata);
        if member {
            add_member(&reg, project, ALICE.0, ROLE_DEVELOPER);
        }
        let repo = format!("{project}/src");
        let (config, layer) = reg.push_small_blobs(&repo);
        let manifest = image_manifest(&config, std::slice::from_ref(&layer), None, None);
        reg.push_manifest(&repo, "v1", OCI_MANIFEST, &manifest);
        layers.push((project, layer.digest));
    }
    (reg, layers)
}

fn alice() -> Who {
    Who {
        name: "alice",
        creds: Some((ALICE.0.to_string(), ALICE.1.to_string())),
    }
}

/// The mount request, sent as a bearer-token client sends it: without a token first, then with the
/// token the challenge leads to. (status, the challenge's `scope`).
fn mount(reg: &Registry, to: &str, from: &str, digest: &str) -> (u16, String) {
    let path = format!("/v2/{to}/blobs/uploads/?mount={digest}&from={from}");
    let first = bare().post(reg.url(&path)).send().unwrap();
    assert_eq!(
        first.status().as_u16(),
        401,
        "a bearer client is challenged first"
    );
    let params = challenge(&first).expect("a Bearer challenge");
    let token = token(&alice(), &params).unwrap();
    let resp = bare().post(reg.url(&path)).bearer_auth(token).send().unwrap();
    (resp.status().as_u16(), params["scope"].clone())
}

#[test]
fn a_bearer_token_client_mounts_what_it_may_read_and_uploads_the_rest() {
    if skip_unless_berth("the challenge is Berth's") {
        return;
    }
    let (reg, layers) = world();
    for (project, digest) in &layers {
        let from = format!("{project}/src");
        let (status, scope) = mount(&reg, "team/dst", &from, digest);
        assert_eq!(
            scope,
            format!("repository:team/dst:pull,push repository:{from}:pull"),
            "the challenge names the target and the source"
        );
        // Mounted: the same project, another project, a public one. Not mounted (a new upload
        // session instead): a private project alice cannot read, and an unsigned artifact's layer
        // out of a project that requires signatures.
        let expected = match *project {
            "team" | "other" | "open" => 201,
            "secret" | "signed" => 202,
            other => unreachable!("{other}"),
        };
        assert_eq!(status, expected, "mount from {from}");
        let linked = reg
            .http
            .head(reg.url(&format!("/v2/team/dst/blobs/{digest}")))
            .send()
            .unwrap();
        let want = if expected == 201 { 200 } else { 404 };
        assert_eq!(linked.status().as_u16(), want, "{from}'s layer in team/dst");
    }
}

#[test]
fn a_token_without_the_source_scope_gets_an_upload_session() {
    if skip_unless_berth("the token service is Berth's") {
        return;
    }
    let (reg, layers) = world();
    let digest = &layers.iter().find(|(p, _)| *p == "other").unwrap().1;
    // A token for the target only, as a client that did not follow the mount's challenge holds.
    let mut params = std::collections::BTreeMap::new();
    params.insert("realm".to_string(), reg.url("/service/token"));
    params.insert("service".to_string(), "berth".to_string());
    params.insert("scope".to_string(), "repository:team/dst:pull,push".to_string());
    let token = token(&alice(), &params).unwrap();
    let path = format!("/v2/team/dst/blobs/uploads/?mount={digest}&from=other/src");
    let resp = bare().post(reg.url(&path)).bearer_auth(&token).send().unwrap();
    assert_eq!(
        resp.status().as_u16(),
        202,
        "the spec's fallback: an upload session"
    );
    assert!(resp.headers().get("location").is_some());
    let linked = reg
        .http
        .head(reg.url(&format!("/v2/team/dst/blobs/{digest}")))
        .send()
        .unwrap();
    assert_eq!(linked.status().as_u16(), 404);
}
