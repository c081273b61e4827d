//! What the schemathesis run (scripts/schemathesis.sh, docs/schemathesis.md) found, pinned: each
//! request here is one it sent, and each answer the one the fixed server and document agree on.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;
use crate::domain::digest::{Algorithm, Digest};

/// The OpenAPI document's component `pointer` (below `/components/schemas`).
fn documented(pointer: &str) -> Value {
    let document: Value = serde_json::from_str(crate::api::openapi::DOCUMENT).unwrap();
    document["components"]["schemas"]
        .pointer(pointer)
        .cloned()
        .unwrap_or_else(|| panic!("{pointer} is not documented"))
}

#[tokio::test]
async fn ids_and_pages_outside_the_documented_int64_ranges_are_bad_requests() {
    let given = given().await;
    for uri in [
        "/users/0",
        "/users/-9223372036854775807",
        "/users/9223372036854775808",
        "/robots/0",
        "/quotas/-1",
        "/quotas?reference_id=-49",
        "/quotas?reference_id=9223372036854775808",
        "/projects?page=9223372036854775808",
        "/users?page=9223372036854775808",
        "/audit-logs?page=9223372036854775808",
    ] {
        given
            .get(uri, Some(ADMIN))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    // The largest documented values are fine: nothing there.
    given
        .get("/users/9223372036854775807", Some(ADMIN))
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let last = given.get("/projects?page=9223372036854775807", Some(ADMIN)).await;
    assert_eq!((last.status, last.body.clone()), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn a_request_body_must_be_a_json_object() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let before = given.get("/projects/team/content-trust", Some(ALICE)).await.body;
    for (method, uri) in [
        (Method::PUT, "/projects/team"),
        (Method::PUT, "/projects/team/metadatas"),
        (Method::POST, "/projects/team/metadatas"),
        (Method::PUT, "/projects/team/content-trust"),
    ] {
        for body in [None, Some(json!([null, null])), Some(json!("public"))] {
            given
                .call(method.clone(), uri, Some(ALICE), body.clone())
                .await
                .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
        }
    }
    // An empty PUT no longer resets the configuration to its defaults.
    let after = given.get("/projects/team/content-trust", Some(ALICE)).await.body;
    assert_eq!(after, before);

    // Nested objects too: serde reads an array as a struct's fields in order.
    given
        .call(
            Method::POST,
            "/projects/team/members",
            Some(ALICE),
            Some(json!({"role_id": 2, "member_user": ["bob", null]})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    given.add_member("team", "bob", 2).await;
}

#[tokio::test]
async fn putting_one_metadata_entry_sets_exactly_the_entry_the_path_names() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let uri = "/projects/team/metadatas/public";
    for body in [
        json!({}),
        json!({"enable_content_trust": "true"}),
        json!({"public": "true", "enable_content_trust": "true"}),
    ] {
        given
            .call(Method::PUT, uri, Some(ALICE), Some(body))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    let set = given
        .call(Method::PUT, uri, Some(ALICE), Some(json!({"public": "true"})))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(given.get(uri, Some(ALICE)).await.body, json!({"public": "true"}));
}

#[tokio::test]
async fn artifact_paths_no_repository_or_artifact_can_have_are_not_found() {
    let given = given().await;
    for uri in [
        "/projects/library/repositories/Bad%21Name/artifacts",
        "/projects/%29x/repositories/app/artifacts/latest",
        "/projects/library/repositories/app/artifacts/bad%21tag",
        "/projects/library/repositories/app/artifacts/sha256:0/accessories",
    ] {
        given
            .get(uri, Some(ADMIN))
            .await
            .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    given
        .call(
            Method::DELETE,
            "/projects/library/repositories/app/artifacts/bad%21tag",
            Some(ADMIN),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn a_project_robot_has_one_permission_and_a_duration_of_at_most_ten_million_days() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let mut two = robot_request("team", &[("repository", "pull")]);
    let permission = two["permissions"][0].clone();
    two["permissions"] = json!([permission.clone(), permission]);
    given
        .call(Method::POST, "/robots", Some(ALICE), Some(two))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    for duration in [0, -2, 10_000_001] {
        let mut request = robot_request("team", &[("repository", "pull")]);
        request["duration"] = json!(duration);
        given
            .call(Method::POST, "/robots", Some(ALICE), Some(request))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    }
    let mut longest = robot_request("team", &[("repository", "pull")]);
    longest["duration"] = json!(10_000_000);
    let created = given
        .call(Method::POST, "/robots", Some(ALICE), Some(longest))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let robot = given.get(&created.location(), Some(ALICE)).await;
    assert_eq!(robot.body["duration"], 10_000_000, "{}", robot.body);
}

#[tokio::test]
async fn harbors_unkept_user_fields_are_still_strings() {
    let given = given().await;
    given
        .call(
            Method::POST,
            "/users",
            Some(ADMIN),
            Some(json!({"username": "dave", "password": "Dave123456", "email": 5})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST");
    let created = given
        .call(
            Method::POST,
            "/users",
            Some(ADMIN),
            Some(
                json!({"username": "dave", "password": "Dave123456", "email": "dave@example.com",
                        "realname": "Dave", "comment": null}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}

#[tokio::test]
async fn every_audit_entry_has_a_documented_resource_type_and_operation() {
    let given = given().await;
    given.project(ALICE, "team", false).await;
    let ctx = RequestContext::as_principal(Principal::User("alice".parse().unwrap()));
    let repo = "team/app".parse().unwrap();
    let index = "application/vnd.oci.image.index.v1+json";
    let subject = json!({"schemaVersion": 2, "mediaType": index, "manifests": []}).to_string();
    let pushed = given
        .registry
        .push_manifest(&ctx, &repo, "v1".parse().unwrap(), index, subject.clone().into())
        .await
        .unwrap();
    assert_eq!(
        pushed.digest,
        Digest::compute(Algorithm::Sha256, subject.as_bytes())
    );
    // A signature by cosign's tag scheme links an accessory: the "accessory" the document lacked.
    let signature =
        json!({"schemaVersion": 2, "mediaType": index, "manifests": [], "annotations": {"sig": "1"}});
    let tag = format!("{}.sig", pushed.digest.tag_form());
    given
        .registry
        .push_manifest(
            &ctx,
            &repo,
            tag.parse().unwrap(),
            index,
            signature.to_string().into(),
        )
        .await
        .unwrap();

    // An immutable tag rule: the "immutable_tag_rule" entries.
    let rule = json!({
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    });
    let added = given
        .call(
            Method::POST,
            "/projects/team/immutabletagrules",
            Some(ALICE),
            Some(rule),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);

    let entries = given.get("/audit-logs?page_size=100", Some(ADMIN)).await.body;
    let entries = entries.as_array().unwrap();
    let resource_types = documented("/AuditLog/properties/resource_type/enum");
    let operations = documented("/AuditLog/properties/operation/enum");
    for entry in entries {
        let documented_type = resource_types
            .as_array()
            .unwrap()
            .contains(&entry["resource_type"]);
        assert!(documented_type, "{entry}");
        let documented_operation = operations.as_array().unwrap().contains(&entry["operation"]);
        assert!(documented_operation, "{entry}");
    }
    for resource_type in ["accessory", "immutable_tag_rule"] {
        assert!(
            entries.iter().any(|e| e["resource_type"] == resource_type),
            "{resource_type}: {entries:?}"
        );
    }
}

/// The run's configuration (tests/schemathesis/schemathesis.toml): every `[[operations]]` entry
/// names its operations with exactly one include key (schemathesis takes several as alternatives,
/// so `include-path` with `include-method` applied an exception to every operation on that path
/// and to every one with that method), and an `include-name` names an operation of the document.
#[test]
fn each_schemathesis_exception_names_one_documented_operation() {
    let config = include_str!("../../../../tests/schemathesis/schemathesis.toml");
    let document: Value = serde_json::from_str(crate::api::openapi::DOCUMENT).unwrap();
    // Each entry: the lines from one `[[operations]]` header to the next table header.
    let mut entries: Vec<Vec<&str>> = Vec::new();
    for line in config.lines().map(str::trim) {
        if line == "[[operations]]" {
            entries.push(Vec::new());
        } else if line.starts_with('[') {
            assert!(entries.is_empty(), "{line} after the [[operations]] entries");
        } else if let Some(entry) = entries.last_mut() {
            entry.push(line);
        }
    }
    assert!(entries.len() >= 5, "{entries:?}");
    for entry in entries {
        let includes: Vec<&&str> = (entry.iter())
            .filter(|line| line.starts_with("include-"))
            .collect();
        assert_eq!(includes.len(), 1, "{entry:?}");
        let Some(name) = includes[0].strip_prefix("include-name = ") else {
            continue;
        };
        let (method, path) = name.trim_matches('"').split_once(' ').unwrap();
        let operation = &document["paths"][path][method.to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not documented");
    }
}

/// Every error code the API can answer with is one the document's `Errors` schema lists (a 413 or
/// a 415 body broke the schema before PAYLOAD_TOO_LARGE and UNSUPPORTED_MEDIA_TYPE were listed).
#[test]
fn every_error_code_is_documented() {
    let codes = documented("/Errors/properties/errors/items/properties/code/enum");
    let codes = codes.as_array().unwrap();
    let mut answered: Vec<&str> = (400..=599)
        .filter_map(|status| StatusCode::from_u16(status).ok())
        .map(|status| crate::api::ApiError::new(status, "").code)
        .collect();
    answered.push(crate::api::ApiError::from(crate::app::AppError::InsufficientStorage).code);
    for code in answered {
        assert!(codes.contains(&json!(code)), "{code} is not documented");
    }
}
