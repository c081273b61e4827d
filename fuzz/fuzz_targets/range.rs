//! `Range` (blob GET) and `Content-Range` (upload chunk) headers: `oci::http::byte_range` and
//! `chunk_range` against a size, with or without `Content-Length`. Input: 8 bytes of size, 8 of
//! `Content-Length` (used when the first byte of the rest is odd), then the header value.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use berth::oci::http;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let length = u64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let with_length = data[16] & 1 == 1;
    // Sizes near 0 and near the top are where the arithmetic can go wrong; keep both reachable.
    let size = if data[16] & 2 == 2 { size % 4096 } else { size };
    let Ok(value) = HeaderValue::from_bytes(&data[17..]) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::RANGE, value.clone());
    if let Ok(Some(range)) = http::byte_range(&headers, size) {
        assert!(range.start <= range.end, "{range:?}");
        assert!(range.end < size, "{range:?} of {size}");
    }
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_RANGE, value);
    if with_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Ok(Some(range)) = http::chunk_range(&headers, size) {
        assert!(range.start <= range.end);
        if with_length {
            assert_eq!(range.end - range.start, length.wrapping_sub(1));
        }
    }
    let _ = http::upload_range(size);
    let _ = http::content_length(&headers);
});
