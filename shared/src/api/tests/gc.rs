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
async fn recurring_schedules_are_kept_read_back_and_removed_and_a_second_real_run_conflicts() {
    let given = given().await;
    let schedule =
        |body: serde_json::Value| given.call(Method::PUT, "/system/gc/schedule", Some(ADMIN), Some(body));
    // Harbor's types: Daily stands for its cron unless one is given; Custom needs one.
    let daily =
        json!({"schedule": {"type": "Daily"}, "parameters": {"delete_untagged": true, "dry_run": false}});
    let set = schedule(daily).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let read = given.get("/system/gc/schedule", Some(ADMIN)).await;
    assert_eq!(read.body["schedule"]["type"], "Daily", "{}", read.body);
    assert_eq!(read.body["schedule"]["cron"], "0 0 0 * * *");
    assert!(
        read.body["schedule"]["next_scheduled_time"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00.000Z"),
        "{}",
        read.body
    );
    assert_eq!(
        read.body["parameters"],
        json!({"delete_untagged": true, "dry_run": false})
    );
    for bad in [
        json!({"schedule": {"type": "Custom"}}),
        json!({"schedule": {"type": "Custom", "cron": "0 0 * * *"}}),
        json!({"schedule": {"type": "Weekly", "cron": "30 0 0 * * 0"}}),
        json!({"schedule": {"type": "Yearly"}}),
    ] {
        schedule(bad.clone())
            .await
            .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    assert_eq!(
        given.get("/system/gc/schedule", Some(ADMIN)).await.body,
        read.body,
        "unchanged"
    );
    given
        .call(
            Method::POST,
            "/system/gc/schedule",
            Some(ALICE),
            Some(json!({"schedule": {"type": "Hourly"}})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
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
        given.get("/system/gc/schedule", Some(ADMIN)).await.body,
        json!({"schedule": {"type": "None"}})
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

    // Harbor's stop: system admins only, 404 for no such run; the run ends at its next safe
    // point, Stopped, and says so in its log.
    let path = format!("/system/gc/{}", run.id);
    given
        .call(Method::PUT, &path, Some(ALICE), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    given
        .call(Method::PUT, "/system/gc/4242", Some(ADMIN), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let stop = given.call(Method::PUT, &path, Some(ADMIN), None).await;
    assert_eq!(stop.status, StatusCode::OK, "{}", stop.body);
    let logged = given.get(&format!("{path}/log"), Some(ADMIN)).await;
    let logged = logged.body.as_str().unwrap();
    assert!(logged.contains("stop requested by admin"), "{logged}");
    assert_eq!(
        given.get(&path, Some(ADMIN)).await.body["job_status"],
        "Running",
        "until it sees it"
    );
    given.registry.finish_gc(run).await.unwrap();
    assert_eq!(given.get(&path, Some(ADMIN)).await.body["job_status"], "Stopped");
    let again = given.call(Method::PUT, &path, Some(ADMIN), None).await;
    assert_eq!(again.status, StatusCode::OK, "a finished run is left as it is");
}
