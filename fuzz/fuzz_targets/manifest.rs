//! Manifest and index JSON with media-type detection: `ManifestInfo::parse` (the first line is the
//! client's `Content-Type`, the rest the body), also under every media type Berth knows, then what
//! is read from a parsed manifest (`effective_artifact_type`, `Content::classify`, annotations,
//! accessory tags).
#![no_main]

use berth::domain::manifest::{is_filesystem_layer, Content, ManifestInfo, MediaType};
use libfuzzer_sys::fuzz_target;

const KNOWN: [&str; 5] = [
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (String::from_utf8_lossy(&data[..at]).into_owned(), &data[at + 1..]),
        None => (String::new(), data),
    };
    if let Some(media_type) = MediaType::parse(&content_type) {
        assert_eq!(MediaType::parse(media_type.as_str()), Some(media_type));
        let _ = media_type.is_index();
    }
    let _ = is_filesystem_layer(&content_type);
    let _ = ManifestInfo::annotations_of(body);
    for ct in std::iter::once(content_type.as_str()).chain(KNOWN) {
        let Ok(info) = ManifestInfo::parse(ct, body) else {
            continue;
        };
        let _ = info.effective_artifact_type();
        let _ = info.content.runnable();
        let _ = Content::classify(info.media_type, &[]);
    }
});
