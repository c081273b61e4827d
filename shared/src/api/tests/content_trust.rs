//! A project's content-trust configuration: read, edited and sent back; what a change re-verified.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_configuration_read_can_be_edited_and_sent_back() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let mut config = given.get("/projects/team/content-trust", Some(ALICE)).await.body;
    let read_revision = config["revision"].as_u64().expect("a revision");
    assert!(
        config.get("reverification").is_none(),
        "only a change reports one: {config}"
    );

    config["cosign"]["required"] = json!(true);
    let put = given
        .call(
            Method::PUT,
            "/projects/team/content-trust",
            Some(ALICE),
            Some(config),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["cosign"]["required"], true);
    let revision = put.body["revision"].as_u64().unwrap();
    assert!(revision > read_revision, "{}", put.body);
    // Nothing to verify: no signatures yet.
    assert_eq!(
        put.body["reverification"],
        json!({"verified": 0, "complete": true})
    );

    // The answer itself goes back: `revision` and `reverification` are read only, and the same
    // configuration is no change (its revision, and so every verdict, stays).
    let again = given
        .call(
            Method::PUT,
            "/projects/team/content-trust",
            Some(ALICE),
            Some(put.body),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["revision"], revision, "{}", again.body);

    let unknown = given
        .call(
            Method::PUT,
            "/projects/team/content-trust",
            Some(ALICE),
            Some(json!({"cosign": {"required": true, "keys": []}})),
        )
        .await;
    unknown.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(unknown.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("keys"));
}

#[test]
fn the_reverification_budget_is_whole_seconds_up_to_fifteen_minutes() {
    use crate::app::parse_reverify_budget;
    use std::time::Duration;
    assert_eq!(parse_reverify_budget("0"), Ok(Duration::ZERO));
    assert_eq!(parse_reverify_budget(" 10 "), Ok(Duration::from_secs(10)));
    assert_eq!(parse_reverify_budget("900"), Ok(Duration::from_secs(900)));
    for bad in ["901", "-1", "1.5", "", "ten"] {
        let err = parse_reverify_budget(bad).unwrap_err();
        assert!(err.contains("BERTH_REVERIFY_BUDGET_SECS"), "{bad:?}: {err}");
    }
}
