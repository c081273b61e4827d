//! Liveness and health, open to anyone.

use axum::http::StatusCode;

use super::*;

#[tokio::test]
async fn ping_answers_pong_to_anyone() {
    let given = given().await;
    let pong = given.get("/ping", None).await;
    assert_eq!(pong.status, StatusCode::OK);
    assert_eq!(pong.body, Value::String("Pong".into()));
    assert!(pong.header("content-type").starts_with("text/plain"));
}

#[tokio::test]
async fn health_reports_each_component_healthy_to_anyone() {
    let given = given().await;
    let health = given.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    assert_eq!(health.body["status"], "healthy", "{}", health.body);
    let components: Vec<(&str, &str)> = (health.body["components"].as_array().unwrap().iter())
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        components,
        [("core", "healthy"), ("log", "healthy"), ("blobs", "healthy")]
    );
}
