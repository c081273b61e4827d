//! Audit logs from the event log.

use axum::http::{Method, StatusCode};

use super::*;

#[tokio::test]
async fn audit_logs_record_who_did_what_newest_first_without_credentials() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    given.add_member("team", "bob", 2).await;
    push_empty_index(&given.registry, "alice", "team/app").await;
    let robot = robot_request("team", &[("repository", "pull")]);
    assert_eq!(
        given
            .call(Method::POST, "/robots", Some(ALICE), Some(robot))
            .await
            .status,
        StatusCode::CREATED
    );

    let created = given
        .get(
            "/audit-logs?q=operation=create,resource_type=project,username=alice",
            Some(ADMIN),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(created.header("x-total-count"), "1");
    let entry = &created.body[0];
    assert_eq!(entry["resource"], "team");
    assert_eq!(entry["event_type"], "ProjectCreated");
    assert!(entry["op_time"].is_string() && entry["id"].is_u64());

    let all = given.get("/audit-logs?page_size=100", Some(ADMIN)).await;
    let text = all.body.to_string();
    assert!(
        !text.to_lowercase().contains("hash") && !text.contains("argon2"),
        "{text}"
    );
    let ids: Vec<u64> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let types: Vec<&str> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource_type"].as_str().unwrap())
        .collect();
    for t in ["user", "project", "member", "artifact", "tag", "robot"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }

    let alices = given.get("/audit-logs?page_size=100", Some(ALICE)).await;
    let alice_types: Vec<&str> = alices
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource_type"].as_str().unwrap())
        .collect();
    assert!(
        alice_types.contains(&"artifact") && !alice_types.contains(&"user"),
        "{alice_types:?}"
    );
    assert_eq!(
        given
            .get("/audit-logs", Some(CAROL))
            .await
            .header("x-total-count"),
        "0"
    );
    let ranged = given
        .get(
            "/audit-logs?q=op_time=[2000-01-01T00:00:00Z~2001-01-01T00:00:00Z]",
            Some(ADMIN),
        )
        .await;
    assert_eq!(ranged.header("x-total-count"), "0");
    given
        .get("/audit-logs", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    given
        .get("/audit-logs?q=colour=blue", Some(ADMIN))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
}
