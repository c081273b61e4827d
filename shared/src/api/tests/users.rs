//! Users: the password rule, the current user, password changes.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn users_follow_the_password_rule_and_change_their_own_passwords() {
    let given = given().await;
    for weak in ["short1A", "alllowercase1", "ALLUPPERCASE1", "NoDigitsHere"] {
        given
            .call(
                Method::POST,
                "/users",
                Some(ADMIN),
                Some(json!({"username": "dave", "password": weak})),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    let by_user = json!({"username": "dave", "password": "Dave12345"});
    given
        .call(Method::POST, "/users", Some(ALICE), Some(by_user.clone()))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let created = given
        .call(Method::POST, "/users", Some(ADMIN), Some(by_user.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    given
        .call(Method::POST, "/users", Some(ADMIN), Some(by_user))
        .await
        .assert_error(StatusCode::CONFLICT, "CONFLICT");

    let me = given.get("/users/current", Some(ALICE)).await;
    assert_eq!(me.body["username"], "alice");
    assert_eq!(me.body["sysadmin_flag"], false);
    assert!(
        !me.body.to_string().to_lowercase().contains("hash"),
        "{}",
        me.body
    );
    given
        .get("/users/current", None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    given
        .get("/users/current", Some(("alice", "Wrong12345")))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    given
        .get("/users", Some(ALICE))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let users = given.get("/users", Some(ADMIN)).await;
    assert_eq!(users.header("x-total-count"), "5");
    assert!(!users.body.to_string().to_lowercase().contains("hash"));

    let alice = format!("/users/{}/password", me.body["user_id"]);
    let wrong_old = json!({"old_password": "Nope12345", "new_password": "Alice67890"});
    given
        .call(Method::PUT, &alice, Some(ALICE), Some(wrong_old))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let weak_new = json!({"old_password": ALICE.1, "new_password": "weak"});
    given
        .call(Method::PUT, &alice, Some(ALICE), Some(weak_new))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let by_bob = json!({"new_password": "Alice67890"});
    given
        .call(Method::PUT, &alice, Some(BOB), Some(by_bob))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let change = json!({"old_password": ALICE.1, "new_password": "Alice67890"});
    assert_eq!(
        given
            .call(Method::PUT, &alice, Some(ALICE), Some(change))
            .await
            .status,
        StatusCode::OK
    );
    assert!(given
        .registry
        .authenticate("alice", "Alice67890")
        .await
        .unwrap()
        .is_some());
    assert!(given
        .registry
        .authenticate("alice", ALICE.1)
        .await
        .unwrap()
        .is_none());
    let reset = json!({"new_password": "Alice13579"});
    assert_eq!(
        given
            .call(Method::PUT, &alice, Some(ADMIN), Some(reset))
            .await
            .status,
        StatusCode::OK
    );

    let sysadmin = format!("/users/{}/sysadmin", me.body["user_id"]);
    let granted = given
        .call(
            Method::PUT,
            &sysadmin,
            Some(ADMIN),
            Some(json!({"sysadmin_flag": true})),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK);
    let alice_now = given
        .get(&format!("/users/{}", me.body["user_id"]), Some(ADMIN))
        .await;
    assert_eq!(alice_now.body["sysadmin_flag"], true);
}
