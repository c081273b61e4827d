//! Projects: creation, listing and pagination, visibility, deletion.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn creating_a_project_answers_201_with_its_location_and_makes_the_creator_its_admin() {
    let given = given().await;
    let location = given.project(ALICE, "team", false).await;
    assert!(location.starts_with("/projects/"), "{location}");

    let project = given.get(&location, Some(ALICE)).await;
    assert_eq!(project.status, StatusCode::OK);
    assert_eq!(project.body["name"], "team");
    assert_eq!(project.body["metadata"]["public"], "false");
    assert_eq!(project.body["owner_name"], "alice");
    assert_eq!(project.body["current_user_role_id"], 1);
    assert_eq!(project.body["repo_count"], 0);
    let by_name = given.get("/projects/team", Some(ALICE)).await;
    assert_eq!(by_name.body["project_id"], project.body["project_id"]);

    let again = given
        .call(
            Method::POST,
            "/projects",
            Some(BOB),
            Some(json!({"project_name": "team"})),
        )
        .await;
    again.assert_error(StatusCode::CONFLICT, "CONFLICT");
    let invalid = given
        .call(
            Method::POST,
            "/projects",
            Some(BOB),
            Some(json!({"project_name": "Bad Name"})),
        )
        .await;
    invalid.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let anonymous = given
        .call(
            Method::POST,
            "/projects",
            None,
            Some(json!({"project_name": "x"})),
        )
        .await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let limited = given
        .call(
            Method::POST,
            "/projects",
            Some(BOB),
            Some(json!({"project_name": "big", "storage_limit": 10})),
        )
        .await;
    limited.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn project_lists_are_paginated_with_a_total_and_links() {
    let given = given().await;
    for i in 1..=12 {
        given.project(ADMIN, &format!("p{i:02}"), true).await;
    }
    let page = given.get("/projects?page=2&page_size=5", Some(ADMIN)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.as_array().unwrap().len(), 5);
    assert_eq!(page.header("x-total-count"), "13");
    assert_eq!(
        page.header("link"),
        "</api/v2.0/projects?page=3&page_size=5>; rel=\"next\", </api/v2.0/projects?page=1&page_size=5>; rel=\"prev\""
    );
    let last = given.get("/projects?page=3&page_size=5", Some(ADMIN)).await;
    assert_eq!(last.body.as_array().unwrap().len(), 3);
    assert!(!last.header("link").contains("next"));

    let filtered = given.get("/projects?name=p1", None).await;
    assert_eq!(filtered.header("x-total-count"), "3");
    given
        .get("/projects?page_size=101", None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    given
        .get("/projects?page=zero", None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
}

#[tokio::test]
async fn a_private_project_is_indistinguishable_from_an_absent_one_to_outsiders() {
    let given = given().await;
    let location = given.project(ALICE, "secret", false).await;

    for who in [None, Some(BOB)] {
        let hidden = given.get("/projects/secret", who).await;
        let absent = given.get("/projects/nothing", who).await;
        hidden.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        absent.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        given
            .get(&location, who)
            .await
            .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        let listed = given.get("/projects", who).await;
        let names: Vec<&str> = listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["library"]);
        let head = given
            .call(Method::HEAD, "/projects?project_name=secret", who, None)
            .await;
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        let members = given.get("/projects/secret/members", who).await;
        assert_ne!(members.status, StatusCode::OK);
    }
    let head = given
        .call(Method::HEAD, "/projects?project_name=secret", Some(ALICE), None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        given.get("/projects/secret", Some(ADMIN)).await.status,
        StatusCode::OK
    );
    let summary = given.get("/projects/secret/summary", Some(ALICE)).await;
    assert_eq!(summary.body["project_admin_count"], 1);
    assert_eq!(summary.body["quota"]["hard"]["storage"], -1);
}

#[tokio::test]
async fn a_project_with_repositories_cannot_be_deleted() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    push_empty_index(&given.registry, "alice", "team/app").await;
    assert_eq!(
        given.get("/projects/team", Some(ALICE)).await.body["repo_count"],
        1
    );
    given
        .call(Method::DELETE, "/projects/team", Some(ALICE), None)
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION");
    given.project(ALICE, "empty", false).await;
    assert_eq!(
        given
            .call(Method::DELETE, "/projects/empty", Some(ALICE), None)
            .await
            .status,
        StatusCode::OK
    );
    given
        .get("/projects/empty", Some(ALICE))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

/// Terraform's `harbor_project` sends Harbor's scanning metadata with every create and update, and
/// reads the project back expecting what it sent: kept as sent, merged on update, checked against
/// Harbor's values.
#[tokio::test]
async fn harbors_other_project_metadata_is_kept_as_sent_and_returned() {
    let given = given().await;
    let sent = json!({
        "public": "false",
        "auto_scan": "true",
        "severity": "high",
        "prevent_vul": "false",
        "reuse_sys_cve_allowlist": "true",
    });
    let created = given
        .call(
            Method::POST,
            "/projects",
            Some(ALICE),
            Some(json!({"project_name": "tf", "metadata": sent, "cve_allowlist": {"items": []}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let project = given.get("/projects/tf", Some(ALICE)).await;
    let metadata = &project.body["metadata"];
    for (key, value) in sent.as_object().unwrap() {
        assert_eq!(&metadata[key], value, "{key} in {metadata}");
    }
    assert_eq!(metadata["enable_content_trust_cosign"], "false");

    // An update sets what it names and keeps the rest; JSON booleans and numbers are taken as Harbor's strings.
    let updated = given
        .call(
            Method::PUT,
            "/projects/tf",
            Some(ALICE),
            Some(json!({"metadata": {"severity": "critical", "auto_scan": false, "proxy_speed_kb": 7}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let metadata = given.get("/projects/tf/metadatas", Some(ALICE)).await.body;
    assert_eq!(metadata["severity"], "critical");
    assert_eq!(metadata["auto_scan"], "false");
    assert_eq!(metadata["proxy_speed_kb"], "7");
    // retention_id is the project's retention policy's (none here), never what was sent.
    assert!(metadata.get("retention_id").is_none(), "{metadata}");
    assert_eq!(metadata["reuse_sys_cve_allowlist"], "true", "kept: {metadata}");
    let one = given.get("/projects/tf/metadatas/severity", Some(ALICE)).await;
    assert_eq!(one.body, json!({"severity": "critical"}));

    // Values Harbor refuses, and keys Harbor does not have, change nothing.
    for bad in [
        json!({"severity": "urgent"}),
        json!({"auto_scan": "yes"}),
        json!({"proxy_speed_kb": "fast"}),
        json!({"color": "blue"}),
        json!({"severity": 3}),
    ] {
        let answer = given
            .call(
                Method::PUT,
                "/projects/tf",
                Some(ALICE),
                Some(json!({"metadata": bad})),
            )
            .await;
        answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    assert_eq!(
        given.get("/projects/tf/metadatas", Some(ALICE)).await.body,
        metadata,
        "nothing changed"
    );
    // Only the project's admins set metadata.
    let outsider = given
        .call(
            Method::PUT,
            "/projects/tf/metadatas/auto_scan",
            Some(BOB),
            Some(json!({"auto_scan": "true"})),
        )
        .await;
    assert!(
        outsider.status == StatusCode::NOT_FOUND || outsider.status == StatusCode::FORBIDDEN,
        "{}",
        outsider.status
    );
}
