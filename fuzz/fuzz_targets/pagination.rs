//! `n`, `last` and `page` parameters: the OCI listings' (`oci::http::query`, `page_size`,
//! `next_link`) and the management API's (`page`, `page_size`, `q` filters, through
//! `api::fuzzing::query`), then the query on a listing through the router (the first byte picks
//! it: catalog, tags, referrers, projects, robots, audit logs, users), as the administrator.
#![no_main]

use axum::body::Body;
use axum::http::{Request, Uri};
use berth::app::Page;
use berth::oci::http;
use libfuzzer_sys::fuzz_target;

const LISTINGS: [&str; 7] = [
    "/v2/_catalog",
    "/v2/library/app/tags/list",
    "/v2/library/app/referrers/REFERRED",
    "/api/v2.0/projects",
    "/api/v2.0/robots",
    "/api/v2.0/audit-logs",
    "/api/v2.0/projects/library/repositories/app/artifacts",
];

fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else {
        return;
    };
    let query = String::from_utf8_lossy(rest);
    let _ = berth::api::fuzzing::query(&query, usize::from(*pick));
    let listing = LISTINGS[usize::from(*pick) % LISTINGS.len()]
        .replace("REFERRED", &berth_fuzz::sha256(berth_fuzz::manifest().as_bytes()));
    let Ok(uri) = format!("{listing}?{query}").parse::<Uri>() else {
        return;
    };
    let q = http::query(&uri);
    if let Ok(n) = http::page_size(&q) {
        let page = Page {
            items: vec![(); n.unwrap_or(0).min(3)],
            more: true,
        };
        let last = q.get("last").cloned().unwrap_or_default();
        let params = [("n", n.unwrap_or_default().to_string()), ("last", last)];
        let _ = http::next_link(&page, &listing, &params);
    }
    let request = Request::builder()
        .method("GET")
        .uri(uri)
        .header("host", "localhost:5000")
        .header("authorization", berth_fuzz::basic(berth_fuzz::ADMIN))
        .body(Body::empty());
    let Ok(request) = request else {
        return;
    };
    let (status, answer) = berth_fuzz::serve(request);
    assert!(
        !status.is_server_error(),
        "{status} {listing}?{query}: {}",
        String::from_utf8_lossy(&answer)
    );
});
