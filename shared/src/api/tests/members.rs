//! Project members and who may manage them.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn project_admins_manage_members_and_developers_may_only_look() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let bob = given.add_member("team", "bob", 2).await;

    let members = given.get("/projects/team/members", Some(BOB)).await;
    assert_eq!(members.status, StatusCode::OK);
    assert_eq!(members.header("x-total-count"), "2");
    let entry = &members.body.as_array().unwrap()[1];
    assert_eq!(entry["entity_name"], "bob");
    assert_eq!(entry["entity_type"], "u");
    assert_eq!(entry["role_name"], "developer");

    let by_developer = json!({"role_id": 3, "member_user": {"username": "carol"}});
    given
        .call(
            Method::POST,
            "/projects/team/members",
            Some(BOB),
            Some(by_developer),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given
        .call(Method::PUT, &bob, Some(BOB), Some(json!({"role_id": 1})))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given
        .call(
            Method::PUT,
            "/projects/team",
            Some(BOB),
            Some(json!({"metadata": {"public": "true"}})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given
        .get("/projects/team/members", Some(CAROL))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");

    let changed = given
        .call(Method::PUT, &bob, Some(ALICE), Some(json!({"role_id": 3})))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let member = given.get(&bob, Some(ALICE)).await;
    assert_eq!(
        (member.body["role_id"].clone(), member.body["role_name"].clone()),
        (json!(3), json!("guest"))
    );
    given
        .call(Method::PUT, &bob, Some(ALICE), Some(json!({"role_id": 9})))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    assert_eq!(
        given.call(Method::DELETE, &bob, Some(ALICE), None).await.status,
        StatusCode::OK
    );
    given
        .get("/projects/team", Some(BOB))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    given
        .get(&bob, Some(ALICE))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}
