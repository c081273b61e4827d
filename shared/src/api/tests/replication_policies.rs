//! Harbor's replication policies: system admins keep them with Harbor's body; the endpoint a
//! policy names cannot be deleted under it.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::registry_client::testing::berth_on_loopback;

/// A registry endpoint for the Berth at `address`; its path.
async fn endpoint(given: &Given, address: &str) -> String {
    let body = json!({"name": "dr", "type": "harbor", "url": format!("http://{address}"),
        "credential": {"type": "basic", "access_key": "admin", "access_secret": "Admin12345"}});
    let answer = given
        .call(Method::POST, "/registries", Some(ADMIN), Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    answer.location()
}

fn push_policy(registry: u64) -> Value {
    json!({
        "name": "to-dr", "description": "signed images of library",
        "dest_registry": {"id": registry}, "dest_namespace": "mirror", "dest_namespace_replace_count": 1,
        "filters": [
            {"type": "name", "value": "library/**"},
            {"type": "tag", "value": "v*", "decoration": "matches"},
            {"type": "resource", "value": "image"},
            {"type": "signed", "value": true}
        ],
        "trigger": {"type": "scheduled", "trigger_settings": {"cron": "0 30 2 * * *"}},
        "deletion": true, "override": true, "enabled": true, "speed": -1, "copy_by_chunk": true
    })
}

#[tokio::test]
async fn a_policy_is_kept_with_harbors_body_and_read_back_as_harbor_answers() {
    let given = given().await;
    let (remote, _remote_dir) = berth_on_loopback().await;
    let registry_path = endpoint(&given, &remote).await;
    let registry: u64 = registry_path.rsplit('/').next().unwrap().parse().unwrap();

    given
        .call(
            Method::POST,
            "/replication/policies",
            Some(ALICE),
            Some(push_policy(registry)),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let created = given
        .call(
            Method::POST,
            "/replication/policies",
            Some(ADMIN),
            Some(push_policy(registry)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let path = created.location();
    assert!(path.starts_with("/replication/policies/"), "{path}");

    let policy = given.get(&path, Some(ADMIN)).await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.body);
    let body = &policy.body;
    assert_eq!(body["name"], "to-dr");
    assert_eq!(body["src_registry"]["id"], 0, "the local side: {body}");
    assert_eq!(body["dest_registry"]["id"], registry);
    assert_eq!(body["dest_registry"]["credential"]["access_secret"], "*****");
    assert_eq!(
        (
            body["dest_namespace"].as_str(),
            body["dest_namespace_replace_count"].as_i64()
        ),
        (Some("mirror"), Some(1))
    );
    assert_eq!(
        body["trigger"],
        json!({"type": "scheduled", "trigger_settings": {"cron": "0 30 2 * * *"}})
    );
    assert_eq!(
        body["filters"],
        json!([
            {"type": "name", "value": "library/**", "decoration": "matches"},
            {"type": "tag", "value": "v*", "decoration": "matches"},
            {"type": "resource", "value": "image"},
            {"type": "signed", "value": true}
        ])
    );
    assert_eq!(
        (body["deletion"].as_bool(), body["replicate_deletion"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (body["override"].as_bool(), body["enabled"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(
        (body["speed"].as_i64(), body["copy_by_chunk"].as_bool()),
        (Some(0), Some(true))
    );

    let listed = given.get("/replication/policies?q=name%3D~dr", Some(ADMIN)).await;
    assert_eq!(listed.header("x-total-count"), "1");
    assert_eq!(
        given
            .get("/replication/policies?name=nothing", Some(ADMIN))
            .await
            .body,
        json!([])
    );

    // PUT replaces the policy with the body; a pull-based one names its source.
    let pull = json!({"name": "from-dr", "src_registry": {"id": registry}, "dest_registry": null,
        "trigger": {"type": "event_based"}, "enabled": false});
    let replaced = given.call(Method::PUT, &path, Some(ADMIN), Some(pull)).await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    let policy = given.get(&path, Some(ADMIN)).await.body;
    assert_eq!(
        (
            policy["src_registry"]["id"].as_u64(),
            policy["dest_registry"]["id"].as_u64()
        ),
        (Some(registry), Some(0))
    );
    assert_eq!(
        policy["dest_namespace_replace_count"], -1,
        "Harbor's legacy default when left out"
    );
    assert_eq!(policy["trigger"]["type"], "event_based");
    assert_eq!(policy["filters"], json!([]));

    // The endpoint cannot go while a policy names it.
    given
        .call(Method::DELETE, &registry_path, Some(ADMIN), None)
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    let deleted = given.call(Method::DELETE, &path, Some(ADMIN), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    given
        .get(&path, Some(ADMIN))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let gone = given
        .call(Method::DELETE, &registry_path, Some(ADMIN), None)
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
}

#[tokio::test]
async fn malformed_policies_are_refused_with_harbors_statuses() {
    let given = given().await;
    let (remote, _remote_dir) = berth_on_loopback().await;
    let registry: u64 = endpoint(&given, &remote)
        .await
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let refused = |change: fn(&mut Value), status: StatusCode| {
        let mut body = push_policy(registry);
        change(&mut body);
        let given = &given;
        async move {
            let answer = given
                .call(Method::POST, "/replication/policies", Some(ADMIN), Some(body))
                .await;
            assert_eq!(answer.status, status, "{}", answer.body);
            assert_error_shape(&answer.body);
        }
    };
    refused(|b| b["dest_registry"] = json!(null), StatusCode::BAD_REQUEST).await;
    refused(
        |b| b["src_registry"] = b["dest_registry"].clone(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["dest_registry"] = json!({"id": 9_999}),
        StatusCode::NOT_FOUND,
    )
    .await;
    refused(
        |b| b["trigger"]["trigger_settings"]["cron"] = json!("0 * * * * *"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["trigger"] = json!({"type": "scheduled"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["trigger"] = json!({"type": "weekly"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["filters"] = json!([{"type": "label", "value": ["a"]}]),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["filters"] = json!([{"type": "tag", "value": "["}]),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["filters"] = json!([{"type": "signed", "value": false}]),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| b["dest_namespace"] = json!("Not/Valid"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    refused(
        |b| {
            b["trigger"] = json!({"type": "event_based"});
            b["single_active_replication"] = json!(true);
        },
        StatusCode::BAD_REQUEST,
    )
    .await;
    let first = given
        .call(
            Method::POST,
            "/replication/policies",
            Some(ADMIN),
            Some(push_policy(registry)),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    refused(|b| b["name"] = json!("TO-DR"), StatusCode::CONFLICT).await;
}
