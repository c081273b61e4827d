//! The management API (`/api/v2.0/`, Harbor's shapes) as a test sets a registry up: projects, users,
//! members and robots, created by the system admin with Basic credentials.

use serde_json::{json, Value};

use super::{bare, Registry, ADMIN_PASSWORD};

/// Harbor's role ids.
pub const ROLE_DEVELOPER: u32 = 2;
pub const ROLE_GUEST: u32 = 3;

/// One management API call with `creds` (Basic) or none: (status, JSON body or `null`).
pub fn api_call(
    reg: &Registry,
    creds: Option<(&str, &str)>,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let mut request = bare().request(method.parse().unwrap(), reg.url(&format!("/api/v2.0{path}")));
    if let Some((user, secret)) = creds {
        request = request.basic_auth(user, Some(secret));
    }
    if !body.is_null() {
        request = request.json(&body);
    }
    let resp = request.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// A management API call as the system admin.
pub fn api_admin(reg: &Registry, method: &str, path: &str, body: Value) -> (u16, Value) {
    api_call(reg, Some(("admin", ADMIN_PASSWORD)), method, path, body)
}

/// Creates a project with Harbor's metadata (`public` set from `public`).
pub fn create_project(reg: &Registry, name: &str, public: bool, metadata: Value) {
    let mut metadata = if metadata.is_null() { json!({}) } else { metadata };
    metadata["public"] = json!(public.to_string());
    let (status, body) = api_admin(
        reg,
        "POST",
        "/projects",
        json!({"project_name": name, "metadata": metadata}),
    );
    assert_eq!(status, 201, "create project {name}: {body}");
}

/// Creates a user and returns its id.
pub fn create_user(reg: &Registry, username: &str, password: &str) -> u64 {
    let (status, body) = api_admin(
        reg,
        "POST",
        "/users",
        json!({"username": username, "password": password}),
    );
    assert_eq!(status, 201, "create user {username}: {body}");
    let (status, users) = api_admin(
        reg,
        "GET",
        &format!("/users?username={username}&page_size=100"),
        Value::Null,
    );
    assert_eq!(status, 200, "{users}");
    (users.as_array().unwrap().iter())
        .find(|u| u["username"] == username)
        .and_then(|u| u["user_id"].as_u64())
        .unwrap_or_else(|| panic!("user {username} not listed: {users}"))
}

/// Adds `username` to `project` with Harbor's `role_id`.
pub fn add_member(reg: &Registry, project: &str, username: &str, role_id: u32) {
    let (status, body) = api_admin(
        reg,
        "POST",
        &format!("/projects/{project}/members"),
        json!({"role_id": role_id, "member_user": {"username": username}}),
    );
    assert_eq!(status, 201, "add {username} to {project}: {body}");
}

/// Creates the robot `robot$<project>+<name>` with repository `actions`: (id, full name, secret).
pub fn create_robot(reg: &Registry, project: &str, name: &str, actions: &[&str]) -> (u64, String, String) {
    let access: Vec<Value> = (actions.iter())
        .map(|a| json!({"resource": "repository", "action": a}))
        .collect();
    let (status, body) = api_admin(
        reg,
        "POST",
        "/robots",
        json!({"name": name, "duration": -1, "level": "project", "disable": false,
               "permissions": [{"kind": "project", "namespace": project, "access": access}]}),
    );
    assert_eq!(status, 201, "create robot {name}: {body}");
    (
        body["id"].as_u64().unwrap(),
        body["name"].as_str().unwrap().to_string(),
        body["secret"].as_str().unwrap().to_string(),
    )
}
