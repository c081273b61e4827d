//! Digests: `Digest::from_str` (and `oci::http::digest`, which answers the client), its
//! round trip through `Display`, `tag_form`, and hashing: `compute` agrees with the incremental
//! hasher fed in pieces.
#![no_main]

use berth::domain::{Algorithm, Digest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text, "a digest prints as it was read");
        assert_eq!(digest.to_string().parse::<Digest>().ok(), Some(digest.clone()));
        let _ = digest.tag_form();
        let _ = digest.hex();
    }
    assert_eq!(
        text.parse::<Digest>().is_ok(),
        berth::oci::http::digest(&text).is_ok()
    );
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let whole = Digest::compute(algorithm, data);
        let mut hasher = algorithm.hasher();
        let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
        hasher.update(&data[..cut]);
        hasher.update(&data[cut..]);
        assert_eq!(hasher.finish(), whole);
        assert_eq!(whole.to_string().parse::<Digest>().ok(), Some(whole));
    }
});
