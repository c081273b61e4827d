//! Tag retention: Harbor's `/retentions` routes, a policy checked when saved, and runs (dry and
//! real) that keep what the rules retain, delete the rest with its signatures, and hold artifacts
//! with an immutable tag.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::*;
use crate::domain::{Digest, Reference};

fn rule(template: &str, param: Option<u64>, tags: &str) -> Value {
    let params = match param {
        Some(n) => json!({ template: n }),
        None => json!({}),
    };
    json!({
        "disabled": false, "action": "retain", "template": template, "params": params,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags, "extras": "{\"untagged\":true}"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    })
}

fn policy(project_id: u64, rules: Vec<Value>) -> Value {
    json!({
        "algorithm": "or", "rules": rules,
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
        "scope": {"level": "project", "ref": project_id},
    })
}

/// `alice` creates the private project `team`; its id.
async fn team(given: &Given) -> u64 {
    let path = given.project(ALICE, "team", false).await;
    path.rsplit('/').next().unwrap().parse().unwrap()
}

/// An empty OCI index told apart by `n`, pushed by alice under `reference`.
async fn push_index(registry: &Registry, repo: &str, reference: &str, n: u32) -> Digest {
    let ctx = RequestContext::as_principal(Principal::User("alice".parse().unwrap()));
    let body = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [],
        "annotations": {"n": n.to_string()},
    });
    registry
        .push_manifest(
            &ctx,
            &repo.parse().unwrap(),
            reference.parse().unwrap(),
            "application/vnd.oci.image.index.v1+json",
            body.to_string().into(),
        )
        .await
        .unwrap()
        .digest
}

async fn exists(registry: &Registry, repo: &str, digest: &Digest) -> bool {
    registry
        .resolve_manifest(&repo.parse().unwrap(), &Reference::Digest(digest.clone()))
        .await
        .is_ok()
}

/// Starts an execution of `path`'s policy and waits for it to end; the execution as listed.
async fn run(given: &Given, path: &str, dry_run: bool) -> Value {
    let started = given
        .call(
            Method::POST,
            &format!("{path}/executions"),
            Some(ALICE),
            Some(json!({ "dry_run": dry_run })),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let execution = started.location();
    assert!(
        execution.starts_with(&format!("{path}/executions/")),
        "{execution}"
    );
    let id: u64 = execution.rsplit('/').next().unwrap().parse().unwrap();
    for _ in 0..200 {
        let listed = given.get(&format!("{path}/executions"), Some(ALICE)).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        let found = (listed.body.as_array().unwrap().iter())
            .find(|e| e["id"] == id)
            .cloned()
            .unwrap();
        if found["status"] != "Running" {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("execution {execution} did not end");
}

#[tokio::test]
async fn a_policy_is_created_read_changed_and_deleted_with_harbors_shapes() {
    let given = given().await;
    let project_id = team(&given).await;

    let metadata = given.get("/retentions/metadatas", Some(BOB)).await;
    assert_eq!(metadata.status, StatusCode::OK, "{}", metadata.body);
    let templates: Vec<&str> = (metadata.body["templates"].as_array().unwrap().iter())
        .map(|t| t["rule_template"].as_str().unwrap())
        .collect();
    assert_eq!(
        templates,
        [
            "latestPushedK",
            "latestPulledN",
            "nDaysSinceLastPush",
            "nDaysSinceLastPull",
            "always"
        ]
    );
    assert_eq!(metadata.body["templates"][0]["params"][0]["unit"], "COUNT");
    assert_eq!(
        metadata.body["tag_selectors"][0]["decorations"],
        json!(["matches", "excludes"])
    );

    let body = policy(project_id, vec![rule("latestPushedK", Some(3), "**")]);
    let created = given
        .call(Method::POST, "/retentions", Some(ALICE), Some(body.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = created.location();
    let id: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(path, format!("/retentions/{id}"));
    let project = given.get("/projects/team", Some(ALICE)).await;
    assert_eq!(
        project.body["metadata"]["retention_id"],
        id.to_string(),
        "{}",
        project.body
    );

    let read = given.get(&path, Some(ALICE)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["id"], id);
    assert_eq!(read.body["algorithm"], "or");
    assert_eq!(read.body["scope"], json!({"level": "project", "ref": project_id}));
    let first = &read.body["rules"][0];
    assert_eq!(first["template"], "latestPushedK");
    assert_eq!(first["action"], "retain");
    assert_eq!(first["params"], json!({"latestPushedK": 3}));
    assert_eq!(first["tag_selectors"][0]["pattern"], "**");
    assert_eq!(first["tag_selectors"][0]["extras"], "{\"untagged\":true}");
    assert_eq!(
        first["scope_selectors"]["repository"][0]["decoration"],
        "repoMatches"
    );

    // One policy per project, as Harbor.
    given
        .call(Method::POST, "/retentions", Some(ALICE), Some(body))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    // Not a member: the policy is not there; a guest sees the project but not its retention; a
    // developer may run it.
    given
        .get(&path, Some(BOB))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    given.add_member("team", "bob", 3).await;
    given
        .get(&path, Some(BOB))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given.add_member("team", "carol", 2).await;
    assert_eq!(given.get(&path, Some(CAROL)).await.status, StatusCode::OK);

    let two = policy(
        project_id,
        vec![
            rule("latestPushedK", Some(1), "**"),
            rule("nDaysSinceLastPull", Some(7), "v*"),
        ],
    );
    let mut two = two;
    two["trigger"]["settings"]["cron"] = json!("0 0 3 * * *");
    let put = given.call(Method::PUT, &path, Some(CAROL), Some(two)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let read = given.get(&path, Some(ALICE)).await;
    assert_eq!(read.body["rules"].as_array().unwrap().len(), 2, "{}", read.body);
    let settings = &read.body["trigger"]["settings"];
    assert_eq!(settings["cron"], "0 0 3 * * *", "{}", read.body);
    assert!(
        settings["next_scheduled_time"]
            .as_str()
            .unwrap()
            .ends_with("T03:00:00.000Z"),
        "{settings}"
    );
    assert_eq!(read.body["rules"][1]["params"], json!({"nDaysSinceLastPull": 7}));

    let deleted = given.call(Method::DELETE, &path, Some(ALICE), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    given
        .get(&path, Some(ALICE))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let project = given.get("/projects/team", Some(ALICE)).await;
    assert!(
        project.body["metadata"].get("retention_id").is_none(),
        "{}",
        project.body
    );
}

#[tokio::test]
async fn a_policy_with_a_mistake_is_refused_when_saved_and_nothing_is_kept() {
    let given = given().await;
    let project_id = team(&given).await;
    let refused = |rules: Vec<Value>| policy(project_id, rules);
    let too_many: Vec<Value> = (0..16).map(|i| rule("latestPushedK", Some(i), "**")).collect();
    let mut cron = refused(vec![rule("always", None, "**")]);
    cron["trigger"]["settings"]["cron"] = json!("0 0 * * *");
    let mut elsewhere = refused(vec![rule("always", None, "**")]);
    elsewhere["scope"]["ref"] = json!(999);
    let cases = [
        (
            refused(vec![rule("latestPushedX", Some(1), "**")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            refused(vec![rule("latestPushedK", None, "**")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            refused(vec![rule("always", Some(1), "**")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            refused(vec![rule("latestPushedK", Some(1), "v[1")]),
            StatusCode::BAD_REQUEST,
        ),
        (refused(too_many), StatusCode::BAD_REQUEST),
        (
            refused(vec![rule("always", None, "**"), rule("always", None, "**")]),
            StatusCode::CONFLICT,
        ),
        (cron, StatusCode::BAD_REQUEST),
        (elsewhere, StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        let answer = given
            .call(Method::POST, "/retentions", Some(ALICE), Some(body.clone()))
            .await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert_error_shape(&answer.body);
    }
    let project = given.get("/projects/team", Some(ALICE)).await;
    assert!(
        project.body["metadata"].get("retention_id").is_none(),
        "{}",
        project.body
    );
    // The project's metadata never names a policy it does not have, whatever is sent.
    let answer = given
        .call(
            Method::PUT,
            "/projects/team",
            Some(ALICE),
            Some(json!({"metadata": {"retention_id": "7"}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let project = given.get("/projects/team", Some(ALICE)).await;
    assert!(
        project.body["metadata"].get("retention_id").is_none(),
        "{}",
        project.body
    );
}

#[tokio::test]
async fn a_run_keeps_the_newest_deletes_the_rest_with_its_signatures_and_holds_immutable_tags() {
    let given = given().await;
    let registry = &given.registry;
    let project_id = team(&given).await;
    let mut images = Vec::new();
    for n in 1..=4 {
        images.push(push_index(registry, "team/app", &format!("v{n}"), n).await);
    }
    // v1 and v2 are signed (cosign's scheme tag); v1's tag is immutable.
    let mut signatures = Vec::new();
    for (i, image) in images.iter().take(2).enumerate() {
        let tag = format!("{}.sig", image.tag_form());
        signatures.push(push_index(registry, "team/app", &tag, 100 + i as u32).await);
    }
    let held = json!({
        "action": "immutable", "template": "immutable_template",
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v1"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    });
    let answer = given
        .call(
            Method::POST,
            "/projects/team/immutabletagrules",
            Some(ALICE),
            Some(held),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    // A repository the policy does not select is left alone.
    let other = push_index(registry, "team/keep/all", "old", 9).await;
    let mut body = policy(project_id, vec![rule("latestPushedK", Some(2), "**")]);
    body["rules"][0]["scope_selectors"]["repository"][0]["pattern"] = json!("app");
    let created = given
        .call(Method::POST, "/retentions", Some(ALICE), Some(body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = created.location();

    // Dry: what a run would delete, and nothing deleted.
    let dry = run(&given, &path, true).await;
    assert_eq!(dry["status"], "Success", "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["trigger"], "MANUAL");
    let execution = format!("{path}/executions/{}", dry["id"]);
    let tasks = given.get(&format!("{execution}/tasks"), Some(ALICE)).await;
    assert_eq!(tasks.status, StatusCode::OK, "{}", tasks.body);
    assert_eq!(tasks.header("x-total-count"), "1");
    let task = &tasks.body[0];
    assert_eq!(task["repository"], "team/app");
    assert_eq!(
        (task["total"].as_u64(), task["retained"].as_u64()),
        (Some(4), Some(3)),
        "{task}"
    );
    assert_eq!(task["status"], "Success");
    let log = given
        .get(&format!("{execution}/tasks/{}", task["id"]), Some(ALICE))
        .await;
    assert_eq!(log.status, StatusCode::OK);
    let text = log.body.as_str().unwrap();
    assert!(
        text.contains("Dry Run: true") && text.contains("| Retention |"),
        "{text}"
    );
    let verdict = |digest: &Digest| {
        (text.lines()).find(|l| l.contains(&digest.to_string())).map(|l| {
            l.trim_end_matches('|')
                .rsplit('|')
                .next()
                .unwrap()
                .trim()
                .to_string()
        })
    };
    assert_eq!(verdict(&images[0]).as_deref(), Some("IMMUTABLE"), "{text}");
    assert_eq!(verdict(&images[1]).as_deref(), Some("DEL"), "{text}");
    assert_eq!(verdict(&images[3]).as_deref(), Some("RETAIN"), "{text}");
    assert_eq!(
        verdict(&signatures[0]),
        None,
        "accessories are never candidates: {text}"
    );
    assert!(exists(registry, "team/app", &images[1]).await);

    // Real: the same verdicts, carried out; the signature goes with its subject.
    let real = run(&given, &path, false).await;
    assert_eq!(real["status"], "Success", "{real}");
    assert!(
        real.get("dry_run").is_none() || real["dry_run"] == false,
        "{real}"
    );
    assert!(!exists(registry, "team/app", &images[1]).await, "v2 is deleted");
    assert!(
        !exists(registry, "team/app", &signatures[1]).await,
        "with its signature"
    );
    assert!(
        exists(registry, "team/app", &images[0]).await,
        "v1 is held by its immutable tag"
    );
    assert!(
        exists(registry, "team/app", &signatures[0]).await,
        "and keeps its signature"
    );
    assert!(exists(registry, "team/app", &images[2]).await && exists(registry, "team/app", &images[3]).await);
    assert!(exists(registry, "team/keep/all", &other).await);

    let listed = given.get(&format!("{path}/executions"), Some(ALICE)).await;
    assert_eq!(listed.header("x-total-count"), "2");
    assert_eq!(listed.body[0]["id"], real["id"], "newest first");
    // Stopping: only `stop`, and an ended execution stays as it ended.
    let execution = format!("{path}/executions/{}", real["id"]);
    given
        .call(
            Method::PATCH,
            &execution,
            Some(ALICE),
            Some(json!({"action": "pause"})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let stop = given
        .call(
            Method::PATCH,
            &execution,
            Some(ALICE),
            Some(json!({"action": "stop"})),
        )
        .await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.body);
    given
        .call(
            Method::PATCH,
            &format!("{path}/executions/999"),
            Some(ALICE),
            Some(json!({"action": "stop"})),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let listed = given.get(&format!("{path}/executions"), Some(ALICE)).await;
    assert_eq!(listed.body[0]["status"], "Success");
}
