//! Robot accounts: the secret shown once, refresh, permissions.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_robot_secret_is_shown_once_authenticates_and_is_invalidated_by_a_refresh() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    given.add_member("team", "bob", 2).await;
    let request = robot_request("team", &[("repository", "pull"), ("repository", "push")]);
    given
        .call(Method::POST, "/robots", Some(BOB), Some(request.clone()))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let unknown = robot_request("team", &[("repository", "fly")]);
    given
        .call(Method::POST, "/robots", Some(ALICE), Some(unknown))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");

    let created = given
        .call(Method::POST, "/robots", Some(ALICE), Some(request))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "robot$team+ci");
    assert_eq!(created.body["expires_at"], -1);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    let location = created.location();
    assert_eq!(location, format!("/robots/{}", created.body["id"]));

    let robot = given.get(&location, Some(ALICE)).await;
    assert_eq!(robot.status, StatusCode::OK);
    assert!(robot.body.get("secret").is_none(), "{}", robot.body);
    assert_eq!(robot.body["permissions"][0]["namespace"], "team");
    assert_eq!(
        robot.body["permissions"][0]["access"].as_array().unwrap().len(),
        2
    );
    let project_id = given.get("/projects/team", Some(ALICE)).await.body["project_id"].clone();
    let listed = given
        .get(
            &format!("/robots?q=Level=project,ProjectID={project_id}"),
            Some(ALICE),
        )
        .await;
    assert_eq!(listed.header("x-total-count"), "1");
    assert_eq!(
        given
            .get("/projects/team/robots", Some(ADMIN))
            .await
            .header("x-total-count"),
        "1"
    );
    assert_eq!(given.get("/robots", Some(BOB)).await.header("x-total-count"), "0");

    let robot_principal = given
        .registry
        .authenticate("robot$team+ci", &secret)
        .await
        .unwrap();
    assert!(matches!(robot_principal, Some(Principal::Robot(_))));

    let refreshed = given
        .call(Method::PATCH, &location, Some(ALICE), Some(json!({})))
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let new_secret = refreshed.body["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert!(given
        .registry
        .authenticate("robot$team+ci", &secret)
        .await
        .unwrap()
        .is_none());
    assert!(given
        .registry
        .authenticate("robot$team+ci", new_secret)
        .await
        .unwrap()
        .is_some());

    let disabled = given
        .call(
            Method::PUT,
            &location,
            Some(ALICE),
            Some(json!({"disable": true})),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert!(given
        .registry
        .authenticate("robot$team+ci", new_secret)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        given
            .call(Method::DELETE, &location, Some(ALICE), None)
            .await
            .status,
        StatusCode::OK
    );
    given
        .get(&location, Some(ALICE))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}
