//! Replication as Harbor's users drive it (issue 15, seed 003): a signed image in one registry is
//! replicated to another through Harbor's routes (a registry endpoint, a push-based policy, an
//! execution), its signature travels with it, and the destination, which enforces cosign
//! signatures, serves it; `berth verify` passes there with the signer's key.

use serde_json::{json, Value};

use crate::content_trust::{accessories, assert_served, berth_ok, image_layout, key_pair};
use crate::harness::*;

/// A registry endpoint for the Berth `destination`, signed in to as its admin.
fn berth_endpoint(destination: &Registry) -> Value {
    json!({"name": "dr", "type": "harbor", "url": format!("http://{}", destination.host()),
        "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD}})
}

/// Adds `endpoint` to `source` (it must answer: `healthy`) and `policy` pushing to it; the
/// policy's id.
fn replicate_to(source: &Registry, endpoint: Value, mut policy: Value) -> u64 {
    let (status, body) = api_admin(source, "POST", "/registries", endpoint);
    assert_eq!(status, 201, "{body}");
    let (_, registries) = api_admin(source, "GET", "/registries", Value::Null);
    assert_eq!(registries[0]["status"], "healthy", "{registries}");
    policy["dest_registry"] = json!({"id": registries[0]["id"]});
    let (status, body) = api_admin(source, "POST", "/replication/policies", policy);
    assert_eq!(status, 201, "{body}");
    let (_, policies) = api_admin(source, "GET", "/replication/policies", Value::Null);
    policies[0]["id"].as_u64().unwrap()
}

/// Waits until the execution at `path` (below /api/v2.0) has ended; its body.
fn ended(reg: &Registry, path: &str) -> Value {
    for _ in 0..600 {
        let (status, execution) = api_admin(reg, "GET", path, Value::Null);
        assert_eq!(status, 200, "{execution}");
        if execution["status"] != "InProgress" {
            return execution;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{path} did not end");
}

#[test]
fn a_signed_image_replicates_with_its_signature_to_a_berth_that_enforces_signatures() {
    if skip_unless_berth("replication runs in berth serve; the replicator function is to come") {
        return;
    }
    let source = Registry::start();
    let destination = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&source, "signed", true, Value::Null);
    create_project(
        &destination,
        "signed",
        true,
        json!({"enable_content_trust_cosign": "true"}),
    );

    let image = image_layout(work.path(), "v1");
    let layout = format!("oci:{}:v1", work.path().display());
    skopeo_push(
        &layout,
        &format!("docker://{}/signed/app:v1", source.host()),
        &["--preserve-digests"],
    );
    key_pair(work.path(), "cosign");
    let signed = format!("{}/signed/app:v1", source.host());
    berth_ok(&["sign", "--key", "cosign.key", &signed], work.path());
    // An unsigned image in the same project: the policy's `signed` filter leaves it behind.
    skopeo_push(
        &layout,
        &format!("docker://{}/signed/unsigned:v1", source.host()),
        &["--preserve-digests"],
    );

    let policy = json!({"name": "signed-to-dr", "enabled": true, "override": true, "trigger": {"type": "manual"},
        "filters": [{"type": "name", "value": "signed/**"}, {"type": "signed", "value": true}]});
    let policy_id = replicate_to(&source, berth_endpoint(&destination), policy);

    let (status, body) = api_admin(
        &source,
        "POST",
        "/replication/executions",
        json!({"policy_id": policy_id}),
    );
    assert_eq!(status, 201, "{body}");
    let (_, executions) = api_admin(
        &source,
        "GET",
        &format!("/replication/executions?policy_id={policy_id}"),
        Value::Null,
    );
    let id = executions[0]["id"].as_u64().unwrap();
    let execution = ended(&source, &format!("/replication/executions/{id}"));
    assert_eq!(execution["status"], "Succeed", "{execution}");
    assert_eq!(execution["total"], 1, "only the signed image: {execution}");
    let (_, tasks) = api_admin(
        &source,
        "GET",
        &format!("/replication/executions/{id}/tasks"),
        Value::Null,
    );
    assert_eq!(tasks[0]["src_resource"], "signed/app:v1", "{tasks}");

    // The destination has the image under its digest, with its signature as an accessory, and
    // serves it although it refuses unsigned images; the signature verifies there.
    assert_eq!(
        destination.resolve("signed/app", "v1"),
        Some(image.manifest.digest.clone())
    );
    let listed = accessories(&destination, "signed", "app", "v1");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["type"], "signature.cosign");
    assert_served(&destination, "signed/app", "v1");
    let replicated = format!("{}/signed/app:v1", destination.host());
    berth_ok(&["verify", "--key", "cosign.pub", &replicated], work.path());
    assert_eq!(destination.resolve("signed/unsigned", "v1"), None);
}

#[test]
fn signatures_replicate_to_a_registry_without_the_referrers_api_through_its_fallback_tags() {
    if skip_unless_berth("replication runs in berth serve; the replicator function is to come") {
        return;
    }
    let source = Registry::start();
    let destination = Registry::start_distribution();
    let work = tempfile::tempdir().unwrap();
    create_project(&source, "team", true, Value::Null);
    let image = image_layout(work.path(), "v1");
    skopeo_push(
        &format!("oci:{}:v1", work.path().display()),
        &format!("docker://{}/team/app:v1", source.host()),
        &["--preserve-digests"],
    );
    key_pair(work.path(), "cosign");
    let signed = format!("{}/team/app:v1", source.host());
    // Two signatures: cosign's tag scheme, and an OCI 1.1 referrer.
    berth_ok(&["sign", "--key", "cosign.key", &signed], work.path());
    berth_ok(
        &["sign", "--referrer", "--key", "cosign.key", &signed],
        work.path(),
    );

    let endpoint = json!({"name": "distribution", "type": "docker-registry",
        "url": format!("http://{}", destination.host())});
    let policy = json!({"name": "to-distribution", "enabled": true, "override": true,
        "dest_namespace": "mirror", "dest_namespace_replace_count": 1,
        "filters": [{"type": "name", "value": "team/**"}]});
    let policy_id = replicate_to(&source, endpoint, policy);
    let (status, body) = api_admin(
        &source,
        "POST",
        "/replication/executions",
        json!({"policy_id": policy_id}),
    );
    assert_eq!(status, 201, "{body}");
    let (_, executions) = api_admin(&source, "GET", "/replication/executions", Value::Null);
    let id = executions[0]["id"].as_u64().unwrap();
    let execution = ended(&source, &format!("/replication/executions/{id}"));
    assert_eq!(execution["status"], "Succeed", "{execution}");

    // distribution has the image under the flattened name, the cosign tag, and the referrer
    // listed in the `sha256-<hex>` index it cannot serve through a referrers API.
    let digest = image.manifest.digest.clone();
    assert_eq!(destination.resolve("mirror/app", "v1"), Some(digest.clone()));
    let hex_tag = digest.replace(':', "-");
    assert!(destination
        .resolve("mirror/app", &format!("{hex_tag}.sig"))
        .is_some());
    let index = destination.get_manifest("mirror/app", &hex_tag);
    assert_eq!(index.status().as_u16(), 200, "the referrers tag schema's index");
    let index: Value = index.json().unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    // And `berth verify` finds and verifies both signatures there.
    let replicated = format!("{}/mirror/app:v1", destination.host());
    let out = berth_ok(&["verify", "--key", "cosign.pub", &replicated], work.path());
    assert_eq!(out.matches("\"critical\"").count(), 2, "both signatures: {out}");
}

/// The number of accessories of `project/repo:reference`, `None` while the registry has no such
/// artifact.
fn accessory_count(reg: &Registry, project: &str, repo: &str, reference: &str) -> Option<usize> {
    let resp = reg.get(&format!(
        "/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{reference}/accessories"
    ));
    (resp.status().as_u16() == 200).then(|| resp.json::<Vec<Value>>().map_or(0, |v| v.len()))
}

/// Polls until `check` holds (at most 30 s); whether it did.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn an_image_signed_after_its_push_replicates_with_its_signature_on_the_signature_event() {
    if skip_unless_berth("replication runs in berth serve") {
        return;
    }
    if deployment() != Deployment::Embedded {
        eprintln!("SKIPPED: event-based replication runs in berth serve's subscriptions (embedded storage); on AWS the replicator function is to come");
        return;
    }
    let source = Registry::start();
    let destination = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&source, "signed", true, Value::Null);
    create_project(
        &destination,
        "signed",
        true,
        json!({"enable_content_trust_cosign": "true"}),
    );
    let policy = json!({"name": "signed-as-signed", "enabled": true, "override": true, "trigger": {"type": "event_based"},
        "filters": [{"type": "name", "value": "signed/**"}, {"type": "signed", "value": true}]});
    replicate_to(&source, berth_endpoint(&destination), policy);

    // Pushed unsigned: the `signed` filter holds it back (Harbor's event fires on the push only,
    // and the image never follows once signed).
    let image = image_layout(work.path(), "v1");
    skopeo_push(
        &format!("oci:{}:v1", work.path().display()),
        &format!("docker://{}/signed/app:v1", source.host()),
        &["--preserve-digests"],
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(destination.resolve("signed/app", "v1"), None, "not signed yet");

    // Signed a moment later: the signature's event replicates the image with it.
    key_pair(work.path(), "cosign");
    let signed = format!("{}/signed/app:v1", source.host());
    berth_ok(&["sign", "--key", "cosign.key", &signed], work.path());
    assert!(
        eventually(|| destination.resolve("signed/app", "v1").is_some()),
        "the signed image never reached the destination\n{}",
        source.server_log()
    );
    assert_eq!(
        destination.resolve("signed/app", "v1"),
        Some(image.manifest.digest.clone())
    );
    assert!(eventually(|| accessory_count(
        &destination,
        "signed",
        "app",
        "v1"
    ) == Some(1)));
    assert_served(&destination, "signed/app", "v1");
    let (_, executions) = api_admin(
        &source,
        "GET",
        "/replication/executions?trigger=EVENT_BASED",
        Value::Null,
    );
    assert!(
        (executions.as_array().unwrap().iter()).any(|e| e["status"] == "Succeed"),
        "{executions}"
    );

    // A second signature, added later, follows too.
    key_pair(work.path(), "second");
    berth_ok(&["sign", "--key", "second.key", &signed], work.path());
    let replicated = format!("{}/signed/app:v1", destination.host());
    assert!(eventually(|| {
        let out = crate::content_trust::berth(&["verify", "--key", "second.pub", &replicated], work.path());
        out.status.success()
    }));
}

#[test]
fn a_signature_deleted_at_the_source_is_deleted_at_the_destination_and_so_is_the_image() {
    if skip_unless_berth("replication runs in berth serve") {
        return;
    }
    if deployment() != Deployment::Embedded {
        eprintln!("SKIPPED: event-based replication runs in berth serve's subscriptions (embedded storage)");
        return;
    }
    let source = Registry::start();
    let destination = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&source, "team", true, Value::Null);
    let policy = json!({"name": "mirror", "enabled": true, "override": true, "deletion": true, "trigger": {"type": "event_based"},
        "filters": [{"type": "name", "value": "team/**"}]});
    replicate_to(&source, berth_endpoint(&destination), policy);

    let image = image_layout(work.path(), "v1");
    skopeo_push(
        &format!("oci:{}:v1", work.path().display()),
        &format!("docker://{}/team/app:v1", source.host()),
        &["--preserve-digests"],
    );
    key_pair(work.path(), "cosign");
    berth_ok(
        &[
            "sign",
            "--key",
            "cosign.key",
            &format!("{}/team/app:v1", source.host()),
        ],
        work.path(),
    );
    assert!(eventually(
        || accessory_count(&destination, "team", "app", "v1") == Some(1)
    ));

    // The signature deleted at the source (Harbor's accessory deletion): gone there too.
    let signature = accessories(&source, "team", "app", "v1")[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = source.delete(&format!(
        "/api/v2.0/projects/team/repositories/app/artifacts/{signature}"
    ));
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        eventually(|| accessory_count(&destination, "team", "app", "v1") == Some(0)),
        "the signature stayed at the destination\n{}",
        source.server_log()
    );
    assert_eq!(
        destination.resolve("team/app", "v1"),
        Some(image.manifest.digest.clone())
    );

    // The image deleted by digest: gone there too.
    let resp = source.delete(&format!("/v2/team/app/manifests/{}", image.manifest.digest));
    assert_eq!(resp.status().as_u16(), 202);
    assert!(eventually(|| destination.resolve("team/app", "v1").is_none()));
    // Recorded as Harbor's deletion tasks.
    let deletion_tasks = || {
        let (_, executions) = api_admin(&source, "GET", "/replication/executions", Value::Null);
        let ids: Vec<u64> = (executions.as_array().unwrap().iter())
            .filter_map(|e| e["id"].as_u64())
            .collect();
        ids.iter()
            .map(|id| {
                api_admin(
                    &source,
                    "GET",
                    &format!("/replication/executions/{id}/tasks"),
                    Value::Null,
                )
                .1
            })
            .flat_map(|tasks| tasks.as_array().cloned().unwrap_or_default())
            .filter(|t| t["operation"] == "deletion" && t["status"] == "Succeed")
            .count()
    };
    assert!(
        eventually(|| deletion_tasks() >= 2),
        "the signature's and the image's deletions"
    );
}
