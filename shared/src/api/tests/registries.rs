//! Harbor's registry endpoints: system admins add, check, change and delete the registries
//! replication copies to and from; a credential is checked before it is kept, kept sealed, and
//! never answered.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::registry_client::testing::berth_on_loopback;

/// The admin's credential of the Berth served by [`berth_on_loopback`].
const REMOTE_PASSWORD: &str = "Admin12345";

fn endpoint(name: &str, url: &str, password: &str) -> Value {
    json!({
        "name": name, "type": "harbor", "url": url, "insecure": false, "description": "the DR site",
        "credential": {"type": "basic", "access_key": "admin", "access_secret": password}
    })
}

#[tokio::test]
async fn an_endpoint_is_kept_once_it_answers_with_its_credential_and_its_secret_never_shows() {
    let given = given().await;
    let (remote, _remote_dir) = berth_on_loopback().await;
    let url = format!("http://{remote}");

    given
        .call(
            Method::POST,
            "/registries",
            Some(ALICE),
            Some(endpoint("dr", &url, REMOTE_PASSWORD)),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");

    // A wrong password is said now, not at the first replication, and nothing is kept.
    let refused = given
        .call(
            Method::POST,
            "/registries",
            Some(ADMIN),
            Some(endpoint("dr", &url, "wrong")),
        )
        .await;
    refused.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let message = refused.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("the registry is unhealthy"), "{message}");
    assert_eq!(given.get("/registries", Some(ADMIN)).await.body, json!([]));

    let added = given
        .call(
            Method::POST,
            "/registries",
            Some(ADMIN),
            Some(endpoint("dr", &url, REMOTE_PASSWORD)),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let path = added.location();
    let shown = given.get(&path, Some(ADMIN)).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["name"], "dr");
    assert_eq!(shown.body["type"], "harbor");
    assert_eq!(shown.body["url"], url);
    assert_eq!(shown.body["status"], "healthy");
    assert_eq!(
        shown.body["credential"],
        json!({"type": "basic", "access_key": "admin", "access_secret": "*****"})
    );
    let listed = given.get("/registries?q=name%3D~d", Some(ADMIN)).await;
    assert_eq!(listed.header("x-total-count"), "1");
    assert_eq!(listed.body[0]["id"], shown.body["id"]);

    // The log holds the secret sealed, never in the clear.
    let events = given
        .registry
        .log()
        .read_stream(&crate::domain::StreamId::access(), 0, 10_000)
        .await
        .unwrap();
    let logged = serde_json::to_string(&events).unwrap();
    assert!(logged.contains("aes256gcm:"), "the secret is sealed");
    assert!(
        !logged.contains(REMOTE_PASSWORD),
        "the secret is never in the clear"
    );

    // Names are unique; types, credential types and URLs are checked.
    let again = endpoint("DR", &url, REMOTE_PASSWORD);
    given
        .call(Method::POST, "/registries", Some(ADMIN), Some(again))
        .await
        .assert_error(StatusCode::CONFLICT, "CONFLICT");
    let mut ecr = endpoint("ecr", &url, REMOTE_PASSWORD);
    ecr["type"] = json!("aws-ecr");
    given
        .call(Method::POST, "/registries", Some(ADMIN), Some(ecr))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let mut oauth = endpoint("oauth", &url, REMOTE_PASSWORD);
    oauth["credential"]["type"] = json!("oauth");
    given
        .call(Method::POST, "/registries", Some(ADMIN), Some(oauth))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let pathful = endpoint("path", &format!("{url}/v2"), REMOTE_PASSWORD);
    given
        .call(Method::POST, "/registries", Some(ADMIN), Some(pathful))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let nowhere = endpoint("nowhere", "http://127.0.0.1:1", REMOTE_PASSWORD);
    let unreachable = given
        .call(Method::POST, "/registries", Some(ADMIN), Some(nowhere))
        .await;
    unreachable.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    assert!(
        unreachable.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{}",
        unreachable.body
    );
}

#[tokio::test]
async fn a_change_keeps_the_secret_unless_the_endpoint_moves_and_a_ping_checks_any_credential() {
    let given = given().await;
    let (remote, _remote_dir) = berth_on_loopback().await;
    let (elsewhere, _elsewhere_dir) = berth_on_loopback().await;
    let url = format!("http://{remote}");
    let added = given
        .call(
            Method::POST,
            "/registries",
            Some(ADMIN),
            Some(endpoint("dr", &url, REMOTE_PASSWORD)),
        )
        .await;
    let path = added.location();
    let id = path.rsplit('/').next().unwrap().parse::<u64>().unwrap();

    // The recorded secret still signs in after a change that does not touch it.
    let renamed = given
        .call(
            Method::PUT,
            &path,
            Some(ADMIN),
            Some(json!({"name": "dr-1", "description": "moved"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let shown = given.get(&path, Some(ADMIN)).await;
    assert_eq!(
        (shown.body["name"].as_str(), shown.body["status"].as_str()),
        (Some("dr-1"), Some("healthy"))
    );

    // Moved elsewhere without its secret: the secret is not sent there, so the endpoint no longer
    // signs in and the change is refused; with the secret, it is made.
    let moved = json!({"url": format!("http://{elsewhere}")});
    given
        .call(Method::PUT, &path, Some(ADMIN), Some(moved))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let moved = json!({"url": format!("http://{elsewhere}"), "access_secret": REMOTE_PASSWORD});
    let answer = given.call(Method::PUT, &path, Some(ADMIN), Some(moved)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        given.get(&path, Some(ADMIN)).await.body["url"],
        format!("http://{elsewhere}")
    );

    // Pings: by id with its own credential, or another one; as described, without any.
    let ping = |body: Value| given.call(Method::POST, "/registries/ping", Some(ADMIN), Some(body));
    assert_eq!(ping(json!({"id": id})).await.status, StatusCode::OK);
    ping(json!({"id": id, "access_secret": "wrong"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let anonymous = ping(json!({"type": "docker-registry", "url": url})).await;
    assert_eq!(anonymous.status, StatusCode::OK, "{}", anonymous.body);
    ping(json!({"type": "docker-registry"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    ping(json!({"id": 9_999}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");

    let info = given.get(&format!("{path}/info"), Some(ADMIN)).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.body["type"], "harbor");
    assert!(info.body["supported_triggers"]
        .as_array()
        .unwrap()
        .contains(&json!("event_based")));
    let adapters = given.get("/replication/adapters", Some(ADMIN)).await;
    assert_eq!(adapters.body, json!(["harbor", "docker-registry"]));

    let deleted = given.call(Method::DELETE, &path, Some(ADMIN), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    given
        .get(&path, Some(ADMIN))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}
