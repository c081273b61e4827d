//! Harbor's garbage collection routes: system admins start runs and read their history.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::app::GcOptions;

fn manual(dry_run: bool) -> serde_json::Value {
    json!({"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": false, "dry_run": dry_run, "workers": 1}})
}

#[tokio::test]
async fn a_manual_run_is_started_listed_and_logged_for_system_admins_only() {
    let given = given().await;
    given
        .call(
            Method::POST,
            "/system/gc/schedule",
            Some(ALICE),
            Some(manual(true)),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given
        .get("/system/gc", Some(ALICE))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");

    let started = given
        .call(
            Method::POST,
            "/system/gc/schedule",
            Some(ADMIN),
            Some(manual(true)),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let path = started.location();
    assert!(path.starts_with("/system/gc/"), "{path}");
    // A dry run has no fence to wait out: it ends at once.
    let mut run = given.get(&path, Some(ADMIN)).await;
    for _ in 0..100 {
        if run.body["job_status"] != "Running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        run = given.get(&path, Some(ADMIN)).await;
    }
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    assert_eq!(run.body["job_status"], "Success", "{}", run.body);
    assert_eq!(run.body["job_name"], "GARBAGE_COLLECTION");
    let parameters: serde_json::Value =
        serde_json::from_str(run.body["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(parameters, json!({"delete_untagged": false, "dry_run": true}));

    let history = given.get("/system/gc", Some(ADMIN)).await;
    assert_eq!(history.header("x-total-count"), "1");
    assert_eq!(history.body[0]["id"], run.body["id"]);
    let log = given.get(&format!("{path}/log"), Some(ADMIN)).await;
    assert_eq!(log.status, StatusCode::OK);
    let text = log.body.as_str().unwrap();
    assert!(
        text.contains("dry_run=true") && text.contains("Success: 0 manifests deleted"),
        "{text}"
    );
    given
        .get("/system/gc/999", Some(ADMIN))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn recurring_schedules_are_refused_and_a_second_real_run_conflicts() {
    let given = given().await;
    let hourly = json!({"schedule": {"type": "Hourly", "cron": "0 0 * * * *"}});
    given
        .call(Method::POST, "/system/gc/schedule", Some(ADMIN), Some(hourly))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let none = given
        .call(
            Method::POST,
            "/system/gc/schedule",
            Some(ADMIN),
            Some(json!({"schedule": {"type": "None"}})),
        )
        .await;
    assert_eq!(none.status, StatusCode::CREATED);
    assert_eq!(
        given.get("/system/gc/schedule", Some(ADMIN)).await.body["schedule"]["type"],
        "None"
    );

    // A real run started (its fence up, still waiting): another is refused.
    let run = given.registry.start_gc(GcOptions::default()).await.unwrap();
    let conflict = given
        .call(
            Method::POST,
            "/system/gc/schedule",
            Some(ADMIN),
            Some(manual(false)),
        )
        .await;
    conflict.assert_error(StatusCode::CONFLICT, "CONFLICT");
    let listed = given.get(&format!("/system/gc/{}", run.id), Some(ADMIN)).await;
    assert_eq!(listed.body["job_status"], "Running", "{}", listed.body);
}
