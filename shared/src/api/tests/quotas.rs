//! Quotas, system admins only.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn system_admins_read_and_set_quotas() {
    let given = given().await;
    let location = given.project(ALICE, "team", false).await;
    let id = location.trim_start_matches("/projects/");
    given
        .get("/quotas", Some(ALICE))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let quotas = given.get("/quotas", Some(ADMIN)).await;
    assert_eq!(quotas.header("x-total-count"), "2");
    let team = &quotas.body.as_array().unwrap()[1];
    assert_eq!(team["ref"]["name"], "team");
    assert_eq!(team["ref"]["owner_name"], "alice");
    assert_eq!(team["hard"]["storage"], -1);
    assert_eq!(team["used"]["storage"], 0);

    let set = given
        .call(
            Method::PUT,
            &format!("/quotas/{id}"),
            Some(ADMIN),
            Some(json!({"hard": {"storage": 1000}})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        given.get(&format!("/quotas/{id}"), Some(ADMIN)).await.body["hard"]["storage"],
        1000
    );
    let summary = given.get("/projects/team/summary", Some(ALICE)).await;
    assert_eq!(summary.body["quota"]["hard"]["storage"], 1000);
    given
        .call(
            Method::PUT,
            &format!("/quotas/{id}"),
            Some(ADMIN),
            Some(json!({"hard": {"storage": -5}})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    given
        .get("/quotas/999", Some(ADMIN))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}
