//! Lifecycle as clients see it (issue 14, docs/lifecycle.md): a project's immutable tag rules,
//! set through Harbor's API, refuse skopeo's push that would move a held tag and every deletion of
//! it (over /v2 and the API) with Harbor's 412 and message, while pushing the same image again and
//! signing it again with `berth sign` (cosign's format) keep working; and garbage collection,
//! started through Harbor's route, frees a deleted image's bytes while a signed image and its
//! signature stay whole; and a retention policy run through Harbor's routes keeps the newest image
//! and deletes the older ones together with their signatures.

use serde_json::{json, Value};

use crate::content_trust::{accessories, berth_ok, image_layout, key_pair};
use crate::harness::*;

const HELD: &str = "Failed to process request due to 'locked/app:v1' configured as immutable.";

/// Harbor's body for a rule selecting `tags` in every repository.
fn rule(tags: &str, disabled: bool) -> Value {
    json!({
        "action": "immutable", "template": "immutable_template", "disabled": disabled, "priority": 0,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
        "scope_selectors": {"repository": [
            {"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}
        ]},
    })
}

/// Asserts Harbor's refusal: 412, `PRECONDITION`, the message naming the held tag.
fn assert_held(status: u16, body: &str, what: &str) {
    assert_eq!(status, 412, "{what}: {body}");
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(body["errors"][0]["code"], "PRECONDITION", "{what}: {body}");
    assert_eq!(body["errors"][0]["message"], HELD, "{what}: {body}");
}

#[test]
fn an_immutable_tag_is_refused_a_move_and_deletion_yet_pushed_again_and_re_signed() {
    if skip_unless_berth("immutable tag rules are Harbor's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "locked", true, Value::Null);
    let (status, body) = api_admin(
        &reg,
        "POST",
        "/projects/locked/immutabletagrules",
        rule("v*", false),
    );
    assert_eq!(status, 201, "{body}");
    let (status, rules) = api_admin(&reg, "GET", "/projects/locked/immutabletagrules", Value::Null);
    assert_eq!(status, 200, "{rules}");
    let id = rules[0]["id"].as_u64().unwrap();

    // Two different images (their files differ by the layout's tag).
    let first = image_layout(&work.path().join("first"), "v1");
    let second = image_layout(&work.path().join("second"), "v2");
    assert_ne!(first.manifest.digest, second.manifest.digest);
    let source = |dir: &str| {
        let tag = if dir == "first" { "v1" } else { "v2" };
        format!("oci:{}:{tag}", work.path().join(dir).display())
    };
    let dest = format!("docker://{}/locked/app:v1", reg.host());
    skopeo_push(&source("first"), &dest, &["--preserve-digests"]);
    let digest = reg.resolve("locked/app", "v1").unwrap();
    assert_eq!(digest, first.manifest.digest);

    // Pushing the same image to the tag again is allowed; another image is refused.
    skopeo_push(&source("first"), &dest, &["--preserve-digests"]);
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &source("second"),
        &dest,
    ]);
    assert!(!out.status.success(), "a held tag must not move");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configured as immutable"), "{stderr}");
    assert_eq!(reg.resolve("locked/app", "v1").as_deref(), Some(digest.as_str()));
    // Over plain /v2, the refusal is Harbor's body.
    let manifest = std::fs::read(blob_path(&work.path().join("second"), &second.manifest.digest)).unwrap();
    let resp = reg.put_manifest("locked/app", "v1", &second.manifest.media_type, &manifest);
    let status = resp.status().as_u16();
    assert_held(status, &resp.text().unwrap_or_default(), "PUT moving v1");

    // Signing, then signing again (cosign adds to the signature manifest under its scheme tag).
    key_pair(work.path(), "cosign");
    let image_ref = format!("{}/locked/app:v1", reg.host());
    berth_ok(&["sign", "--key", "cosign.key", &image_ref], work.path());
    berth_ok(&["sign", "--key", "cosign.key", &image_ref], work.path());
    let signatures = accessories(&reg, "locked", "app", "v1");
    assert!(!signatures.is_empty(), "signed twice, yet no signature");
    assert!(
        signatures.iter().all(|s| s["type"] == "signature.cosign"),
        "{signatures:?}"
    );

    // Deleting the tag or the artifact, over /v2 or the API: refused, and nothing is gone.
    let resp = reg.delete("/v2/locked/app/manifests/v1");
    let status = resp.status().as_u16();
    assert_held(status, &resp.text().unwrap_or_default(), "DELETE /v2 tag");
    let resp = reg.delete(&format!("/v2/locked/app/manifests/{digest}"));
    let status = resp.status().as_u16();
    assert_held(status, &resp.text().unwrap_or_default(), "DELETE /v2 digest");
    let artifact = format!("/api/v2.0/projects/locked/repositories/app/artifacts/{digest}");
    let resp = reg.delete(&format!("{artifact}/tags/v1"));
    let status = resp.status().as_u16();
    assert_held(status, &resp.text().unwrap_or_default(), "DELETE API tag");
    let resp = reg.delete(&artifact);
    let status = resp.status().as_u16();
    assert_held(status, &resp.text().unwrap_or_default(), "DELETE API artifact");
    assert_eq!(reg.resolve("locked/app", "v1").as_deref(), Some(digest.as_str()));
    let tags: Vec<Value> = reg.get(&format!("{artifact}/tags")).json().unwrap();
    assert_eq!(tags.len(), 1, "{tags:?}");
    assert_eq!(
        (&tags[0]["name"], &tags[0]["immutable"]),
        (&json!("v1"), &json!(true))
    );

    // The signature itself stays free: deleted through the accessories API.
    let signature = signatures[0]["digest"].as_str().unwrap();
    let resp = reg.delete(&format!(
        "/api/v2.0/projects/locked/repositories/app/artifacts/{signature}"
    ));
    assert_eq!(resp.status().as_u16(), 200, "{}", resp.text().unwrap_or_default());

    // Disabled, the rule holds nothing: the tag moves.
    let (status, body) = api_admin(
        &reg,
        "PUT",
        &format!("/projects/locked/immutabletagrules/{id}"),
        rule("v*", true),
    );
    assert_eq!(status, 200, "{body}");
    skopeo_push(&source("second"), &dest, &["--preserve-digests"]);
    assert_eq!(
        reg.resolve("locked/app", "v1").as_deref(),
        Some(second.manifest.digest.as_str())
    );
}

/// The bytes of `digest` and of the config and layers it names, as the registry serves them.
fn manifest_and_blobs(reg: &Registry, repo: &str, reference: &str) -> Vec<(String, u64)> {
    let resp = reg.get_manifest(repo, reference);
    assert_eq!(resp.status().as_u16(), 200, "{repo}:{reference}");
    let bytes = resp.bytes().unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let mut all = vec![(sha256(&bytes), bytes.len() as u64)];
    for descriptor in std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap()) {
        all.push((
            descriptor["digest"].as_str().unwrap().to_string(),
            descriptor["size"].as_u64().unwrap(),
        ));
    }
    all
}

/// Every file under `dir`, recursively, with its size.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push((path.clone(), entry.metadata().unwrap().len()));
        }
    }
    files
}

#[test]
fn garbage_collection_frees_a_deleted_images_bytes_and_keeps_a_signed_images() {
    if skip_unless_berth("garbage collection is Berth's") {
        return;
    }
    let reg = Registry::start_with_env(vec![("BERTH_GC_GRACE_SECS".into(), "0".into())]);
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "gc", true, Value::Null);
    let deleted = image_layout(&work.path().join("deleted"), "deleted");
    let signed = image_layout(&work.path().join("signed"), "signed");
    for (name, tag) in [("deleted", "v1"), ("signed", "v2")] {
        let source = format!("oci:{}:{name}", work.path().join(name).display());
        skopeo_push(
            &source,
            &format!("docker://{}/gc/app:{tag}", reg.host()),
            &["--preserve-digests"],
        );
    }
    key_pair(work.path(), "cosign");
    berth_ok(
        &[
            "sign",
            "--key",
            "cosign.key",
            &format!("{}/gc/app:v2", reg.host()),
        ],
        work.path(),
    );
    let resp = reg.delete(&format!("/v2/gc/app/manifests/{}", deleted.manifest.digest));
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().unwrap_or_default());

    let trigger =
        json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": false, "dry_run": false}});
    let (status, body) = api_admin(&reg, "POST", "/system/gc/schedule", trigger);
    if deployment() == Deployment::Lambda {
        // A Lambda function is frozen once it answered: it refuses, and says what to run instead.
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("berth gc --storage aws"), "{body}");
        return;
    }
    assert_eq!(status, 201, "{body}");
    let (_, history) = api_admin(&reg, "GET", "/system/gc", Value::Null);
    let id = history[0]["id"].as_u64().unwrap();
    let mut run = Value::Null;
    for _ in 0..240 {
        run = api_admin(&reg, "GET", &format!("/system/gc/{id}"), Value::Null).1;
        if run["job_status"] != "Running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(run["job_status"], "Success", "{run}");

    // The deleted image is gone to the last layer; the signed one and its signature pull whole.
    for layer in &deleted.layers {
        assert_eq!(reg.blob_status("gc/app", &layer.digest), 404, "{}", layer.digest);
    }
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/gc/app:v2", reg.host()),
        &format!("dir:{}", work.path().join("pulled").display()),
    ]);
    let signatures = accessories(&reg, "gc", "app", "v2");
    assert_eq!(signatures.len(), 1, "{signatures:?}");
    let signature_tag = format!("{}.sig", signed.manifest.digest.replace(':', "-"));
    let mut kept = manifest_and_blobs(&reg, "gc/app", "v2");
    kept.extend(manifest_and_blobs(&reg, "gc/app", &signature_tag));
    kept.sort();
    kept.dedup();
    if deployment() == Deployment::Embedded {
        // On disk: exactly the bytes of what is still referenced.
        let on_disk = files_under(&reg.data_dir().join("blobs"));
        let (kept_bytes, disk_bytes): (u64, u64) = (
            kept.iter().map(|(_, n)| n).sum(),
            on_disk.iter().map(|(_, n)| n).sum(),
        );
        assert_eq!(
            (on_disk.len(), disk_bytes),
            (kept.len(), kept_bytes),
            "on disk {on_disk:?}, referenced {kept:?}"
        );
    }
}

/// Harbor's retention rule: the newest `k` pushed artifacts of every repository.
fn latest_pushed(k: u64) -> Value {
    json!({
        "disabled": false, "action": "retain", "template": "latestPushedK", "params": {"latestPushedK": k},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**", "extras": "{\"untagged\":true}"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    })
}

/// Runs retention policy `id` through Harbor's route and waits for the execution to end; the
/// execution and its (only) task's log.
fn run_retention(reg: &Registry, id: u64, dry_run: bool) -> (Value, String) {
    let path = format!("/retentions/{id}/executions");
    let (status, body) = api_admin(reg, "POST", &path, json!({ "dry_run": dry_run }));
    assert_eq!(status, 201, "{body}");
    let mut execution = Value::Null;
    for _ in 0..240 {
        execution = api_admin(reg, "GET", &path, Value::Null).1[0].clone();
        if execution["status"] != "Running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(execution["status"], "Success", "{execution}");
    let tasks = format!("{path}/{}/tasks", execution["id"]);
    let (_, listed) = api_admin(reg, "GET", &tasks, Value::Null);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let log = reg
        .get(&format!("/api/v2.0{tasks}/{}", listed[0]["id"]))
        .text()
        .unwrap();
    (execution, log)
}

#[test]
fn retention_keeps_the_newest_image_and_deletes_the_older_ones_with_their_signatures() {
    if skip_unless_berth("tag retention is Harbor's") {
        return;
    }
    let reg = Registry::start();
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "pruned", true, Value::Null);
    let (_, project) = api_admin(&reg, "GET", "/projects/pruned", Value::Null);
    let mut images = Vec::new();
    for tag in ["v1", "v2", "v3"] {
        let layout = image_layout(&work.path().join(tag), tag);
        let source = format!("oci:{}:{tag}", work.path().join(tag).display());
        let dest = format!("docker://{}/pruned/app:{tag}", reg.host());
        skopeo_push(&source, &dest, &["--preserve-digests"]);
        images.push(layout.manifest.digest);
    }
    key_pair(work.path(), "cosign");
    for tag in ["v1", "v3"] {
        let image_ref = format!("{}/pruned/app:{tag}", reg.host());
        berth_ok(&["sign", "--key", "cosign.key", &image_ref], work.path());
    }
    let old_signature = accessories(&reg, "pruned", "app", "v1")[0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let policy = json!({
        "algorithm": "or", "rules": [latest_pushed(1)],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
        "scope": {"level": "project", "ref": project["project_id"]},
    });
    let (status, body) = api_admin(&reg, "POST", "/retentions", policy);
    assert_eq!(status, 201, "{body}");
    let (_, project) = api_admin(&reg, "GET", "/projects/pruned", Value::Null);
    let id: u64 = project["metadata"]["retention_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // A dry run says what goes and deletes nothing.
    let (execution, log) = run_retention(&reg, id, true);
    assert_eq!(execution["dry_run"], true);
    for (digest, verdict) in images.iter().zip(["DEL", "DEL", "RETAIN"]) {
        let line = log.lines().find(|l| l.contains(digest.as_str()));
        let last_cell = line.map(|l| {
            l.trim_end()
                .trim_end_matches('|')
                .rsplit('|')
                .next()
                .unwrap_or("")
                .trim()
        });
        assert_eq!(last_cell, Some(verdict), "{digest}: {log}");
    }
    assert!(
        !log.contains(&old_signature),
        "signatures are not judged on their own: {log}"
    );
    assert_eq!(reg.manifest_status("pruned/app", &images[0]), 200);

    // The real run: v1 and v2 go, v1's signature with it; v3 and its signature pull whole.
    run_retention(&reg, id, false);
    assert_eq!(reg.manifest_status("pruned/app", &images[0]), 404);
    assert_eq!(reg.manifest_status("pruned/app", &images[1]), 404);
    assert_eq!(reg.manifest_status("pruned/app", &old_signature), 404);
    assert_eq!(
        reg.all_tags("pruned/app")
            .iter()
            .filter(|t| t.starts_with('v'))
            .count(),
        1
    );
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/pruned/app:v3", reg.host()),
        &format!("dir:{}", work.path().join("pulled").display()),
    ]);
    let signatures = accessories(&reg, "pruned", "app", "v3");
    assert_eq!(signatures.len(), 1, "{signatures:?}");
}

#[test]
fn scheduled_retention_and_garbage_collection_run_by_themselves_on_the_server() {
    if skip_unless_berth("tag retention is Harbor's") {
        return;
    }
    if deployment() == Deployment::Lambda {
        // The janitor function runs schedules there (`app::retention` tests the same call).
        return;
    }
    let reg = Registry::start_with_env(vec![("BERTH_SCHEDULE_POLL_SECS".into(), "2".into())]);
    let work = tempfile::tempdir().unwrap();
    create_project(&reg, "timed", true, Value::Null);
    let (_, project) = api_admin(&reg, "GET", "/projects/timed", Value::Null);
    for tag in ["v1", "v2"] {
        image_layout(&work.path().join(tag), tag);
        let source = format!("oci:{}:{tag}", work.path().join(tag).display());
        skopeo_push(
            &source,
            &format!("docker://{}/timed/app:{tag}", reg.host()),
            &["--preserve-digests"],
        );
    }
    let policy = json!({
        "algorithm": "or", "rules": [latest_pushed(1)],
        "trigger": {"kind": "Schedule", "settings": {"cron": "0 * * * * *"}},
        "scope": {"level": "project", "ref": project["project_id"]},
    });
    let (status, body) = api_admin(&reg, "POST", "/retentions", policy);
    assert_eq!(status, 201, "{body}");
    let (_, project) = api_admin(&reg, "GET", "/projects/timed", Value::Null);
    let id = project["metadata"]["retention_id"].as_str().unwrap().to_string();
    let (_, read) = api_admin(&reg, "GET", &format!("/retentions/{id}"), Value::Null);
    assert!(
        read["trigger"]["settings"]["next_scheduled_time"].is_string(),
        "{read}"
    );

    // Every minute on the minute: within about a minute and the poll, it has run by itself.
    let mut execution = Value::Null;
    for _ in 0..100 {
        let (_, listed) = api_admin(&reg, "GET", &format!("/retentions/{id}/executions"), Value::Null);
        execution = listed[0].clone();
        if execution["status"] == "Success" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(
        (&execution["trigger"], &execution["status"]),
        (&json!("Schedule"), &json!("Success")),
        "{execution}"
    );
    assert_eq!(reg.all_tags("timed/app"), vec!["v2".to_string()]);
}
