//! A whole request through the router (`oci::router`: `/v2/`, the token service and the management
//! API on embedded storage, made once per process): method, path and query, headers and body
//! decoded from the input's text form (`berth_fuzz::decode_request`). Every answer must be one the
//! router means: no 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(request) = berth_fuzz::decode_request(data) else {
        return;
    };
    let what = format!("{} {}", request.method(), request.uri());
    let (status, answer) = berth_fuzz::serve(request);
    assert!(
        !status.is_server_error(),
        "{status} for {what}: {}",
        String::from_utf8_lossy(&answer)
    );
});
