//! The API as a whole: the OpenAPI document and the one error shape.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::*;

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_nothing_else() {
    let document: Value = serde_json::from_str(crate::api::openapi::DOCUMENT).unwrap();
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    let routes = crate::api::routes();
    for route in &routes {
        let method = route.method.as_str().to_lowercase();
        assert!(
            paths.get(route.path).and_then(|p| p.get(&method)).is_some(),
            "{method} {} is not documented",
            route.path
        );
    }
    let operations = ["get", "put", "post", "delete", "patch", "head"];
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| operations.contains(&k.as_str()))
        {
            let served = routes
                .iter()
                .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method));
            assert!(served, "{method} {path} is documented but not served");
        }
    }
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"#/components/").skip(1) {
        let pointer = reference.split('"').next().unwrap();
        assert!(
            document["components"].pointer(&format!("/{pointer}")).is_some(),
            "dangling $ref {pointer}"
        );
    }

    let given = given().await;
    let yaml = given.get("/openapi.yaml", None).await;
    assert_eq!(yaml.status, StatusCode::OK);
    assert_eq!(yaml.header("content-type"), "application/yaml");
    assert_eq!(yaml.body, document);
    assert_eq!(
        given.get("/openapi.json", None).await.header("content-type"),
        "application/json"
    );
}

#[tokio::test]
async fn every_error_has_harbors_one_shape() {
    let given = given().await;
    let answers = [
        given.get("/no/such/thing", None).await,
        given.call(Method::PATCH, "/users", Some(ADMIN), None).await,
        given
            .call(
                Method::POST,
                "/projects",
                Some(ALICE),
                Some(json!("not an object")),
            )
            .await,
        given.get("/projects", Some(("alice", "Wrong12345"))).await,
        given.get("/users/abc", Some(ADMIN)).await,
        given.get("/robots/1", None).await,
        given.call(Method::DELETE, "/users/1", Some(ADMIN), None).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses, [404, 405, 400, 401, 400, 401, 403]);
    for answer in &answers {
        assert_eq!(answer.header("content-type"), "application/json");
        assert_error_shape(&answer.body);
    }
    let codes: Vec<&str> = answers
        .iter()
        .map(|a| a.body["errors"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "NOT_FOUND",
            "METHOD_NOT_ALLOWED",
            "BAD_REQUEST",
            "UNAUTHORIZED",
            "BAD_REQUEST",
            "UNAUTHORIZED",
            "FORBIDDEN"
        ]
    );
}

#[tokio::test]
async fn the_router_answers_under_api_v2_0_when_nested() {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::adapters::local::open(dir.path()).unwrap();
    registry.bootstrap(Some(ADMIN.1)).await.unwrap();
    let api = crate::api::router(
        registry,
        std::sync::Arc::new(crate::oci::AuthConfig::default()),
        true,
    );
    let app = axum::Router::new().nest(crate::api::API_BASE, api);
    let get = |uri: &str| {
        let request = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        tower::ServiceExt::oneshot(app.clone(), request)
    };
    let projects = get("/api/v2.0/projects").await.unwrap();
    assert_eq!(projects.status(), StatusCode::OK);
    assert_eq!(projects.headers()["x-total-count"], "1");
    let missing = get("/api/v2.0/nothing/here").await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["content-type"], "application/json");
}
