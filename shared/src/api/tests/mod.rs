//! The management API through its router, on the embedded store: given a bootstrapped registry
//! (user `admin`, public project `library`), when a client calls, then it answers as Harbor would.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64ct::Encoding as _;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::app::{Registry, RequestContext};
use crate::domain::access::Principal;
use crate::oci::AuthConfig;

mod audit;
mod content_trust;
mod contract;
mod gc;
mod health;
mod immutability;
mod members;
mod projects;
mod quotas;
mod registries;
mod replication_executions;
mod replication_policies;
mod retention;
mod robots;
mod schemathesis;
mod users;

pub(super) const ADMIN: (&str, &str) = ("admin", "Admin12345");
pub(super) const ALICE: (&str, &str) = ("alice", "Alice12345");
pub(super) const BOB: (&str, &str) = ("bob", "Bob1234567");
pub(super) const CAROL: (&str, &str) = ("carol", "Carol12345");

pub(super) struct Given {
    app: Router,
    pub registry: Registry,
    _dir: tempfile::TempDir,
}

pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The path below `/api/v2.0` of the `Location` header.
    pub(super) fn location(&self) -> String {
        self.header("location")
            .strip_prefix("/api/v2.0")
            .unwrap()
            .to_string()
    }

    pub(super) fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_error_shape(&self.body);
        assert_eq!(self.body["errors"][0]["code"], code, "{}", self.body);
    }
}

pub(super) fn assert_error_shape(body: &Value) {
    let errors = body["errors"].as_array().expect("an errors array");
    assert_eq!(errors.len(), 1, "{body}");
    let error = errors[0].as_object().unwrap();
    assert_eq!(error.len(), 2, "only code and message: {body}");
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
}

pub(super) async fn given() -> Given {
    let dir = tempfile::tempdir().unwrap();
    let registry = crate::adapters::local::open(dir.path()).unwrap();
    registry.bootstrap(Some(ADMIN.1)).await.unwrap();
    let app = crate::api::router(registry.clone(), Arc::new(AuthConfig::default()), true);
    let given = Given {
        app,
        registry,
        _dir: dir,
    };
    for user in [ALICE, BOB, CAROL] {
        let answer = given
            .call(
                Method::POST,
                "/users",
                Some(ADMIN),
                Some(json!({"username": user.0, "password": user.1})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    given
}

impl Given {
    pub(super) async fn call(
        &self,
        method: Method,
        uri: &str,
        who: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some((user, secret)) = who {
            let basic = base64ct::Base64::encode_string(format!("{user}:{secret}").as_bytes());
            request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(super) async fn get(&self, uri: &str, who: Option<(&str, &str)>) -> Answer {
        self.call(Method::GET, uri, who, None).await
    }

    /// `who` creates `name` (private unless `public`) and gets its path below `/api/v2.0`.
    pub(super) async fn project(&self, who: (&str, &str), name: &str, public: bool) -> String {
        let body = json!({"project_name": name, "metadata": {"public": public.to_string()}});
        let answer = self.call(Method::POST, "/projects", Some(who), Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.location()
    }

    /// `alice` adds `bob` to `project` with `role_id` and gets the member's path.
    pub(super) async fn add_member(&self, project: &str, username: &str, role_id: u32) -> String {
        let body = json!({"role_id": role_id, "member_user": {"username": username}});
        let answer = self
            .call(
                Method::POST,
                &format!("/projects/{project}/members"),
                Some(ALICE),
                Some(body),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.location()
    }
}

pub(super) fn robot_request(project: &str, actions: &[(&str, &str)]) -> Value {
    let access: Vec<Value> = actions
        .iter()
        .map(|(r, a)| json!({"resource": r, "action": a}))
        .collect();
    json!({
        "name": "ci", "description": "builds", "duration": -1, "level": "project", "disable": false,
        "permissions": [{"kind": "project", "namespace": project, "access": access}]
    })
}

/// An empty OCI index references nothing, so it is pushed without blobs.
pub(super) async fn push_empty_index(registry: &Registry, who: &str, repo: &str) {
    let ctx = RequestContext::as_principal(Principal::User(who.parse().unwrap()));
    let body =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []});
    registry
        .push_manifest(
            &ctx,
            &repo.parse().unwrap(),
            "v1".parse().unwrap(),
            "application/vnd.oci.image.index.v1+json",
            body.to_string().into(),
        )
        .await
        .unwrap();
}
