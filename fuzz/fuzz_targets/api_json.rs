//! The management API's JSON bodies: every request type read as the handlers read it
//! (`api::fuzzing::bodies`, `password`), then the body sent as the administrator to one of the
//! API's writing operations (the first byte picks it), so the handlers' own checks run: project
//! names, metadata, quotas, members and roles, robot permissions and durations, users and
//! passwords, content-trust settings.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;

const OPERATIONS: [(&str, &str); 15] = [
    ("POST", "/api/v2.0/projects"),
    ("PUT", "/api/v2.0/projects/library"),
    ("PUT", "/api/v2.0/projects/library/metadatas"),
    ("PUT", "/api/v2.0/projects/library/metadatas/public"),
    ("POST", "/api/v2.0/projects/library/members"),
    ("PUT", "/api/v2.0/projects/library/members/1"),
    ("PUT", "/api/v2.0/projects/library/members/2"),
    ("POST", "/api/v2.0/robots"),
    ("PUT", "/api/v2.0/robots/1"),
    ("PATCH", "/api/v2.0/robots/1"),
    ("POST", "/api/v2.0/users"),
    // User 2 (alice), never the administrator: changing its password would lock the run out.
    ("PUT", "/api/v2.0/users/2/password"),
    ("PUT", "/api/v2.0/users/2/sysadmin"),
    ("PUT", "/api/v2.0/quotas/1"),
    ("PUT", "/api/v2.0/projects/library/content-trust"),
];

fuzz_target!(|data: &[u8]| {
    let Some((pick, body)) = data.split_first() else {
        return;
    };
    let _ = berth::api::fuzzing::bodies(body);
    let _ = berth::api::fuzzing::password(&String::from_utf8_lossy(body));
    let (method, path) = OPERATIONS[usize::from(*pick) % OPERATIONS.len()];
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost:5000")
        .header("authorization", berth_fuzz::basic(berth_fuzz::ADMIN))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()));
    let Ok(request) = request else {
        return;
    };
    let (status, answer) = berth_fuzz::serve(request);
    assert!(
        !status.is_server_error(),
        "{status} {path}: {}",
        String::from_utf8_lossy(&answer)
    );
});
