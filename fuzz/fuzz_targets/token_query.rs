//! The token service's query: pairs decoded as the handler does (`serde_urlencoded`), every
//! `scope` through `auth::parse_scopes` / `Scope::parse` (a parsed scope prints back to one that
//! parses the same), then the whole `GET /service/token?<input>` through the router, anonymous or
//! (first byte odd) as the administrator.
#![no_main]

use axum::body::Body;
use axum::http::Request;
use berth::auth::{parse_scopes, Scope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((who, rest)) = data.split_first() else {
        return;
    };
    let query = String::from_utf8_lossy(rest);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&query).unwrap_or_default();
    let scopes = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str());
    if let Ok(scopes) = parse_scopes(scopes) {
        for scope in scopes {
            let again = Scope::parse(&scope.to_string());
            assert_eq!(again.ok().as_ref(), Some(&scope), "{scope}");
            let _ = scope.asks("pull");
        }
    }
    let _ = Scope::parse(&query);
    let mut request = Request::builder()
        .method("GET")
        .uri(format!("/service/token?{query}"));
    request = request.header("host", "localhost:5000");
    if who & 1 == 1 {
        request = request.header("authorization", berth_fuzz::basic(berth_fuzz::ADMIN));
    }
    let Ok(request) = request.body(Body::empty()) else {
        return;
    };
    let (status, _) = berth_fuzz::serve(request);
    assert!(!status.is_server_error(), "{status} for {query:?}");
});
