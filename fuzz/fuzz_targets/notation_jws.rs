//! Notation JWS envelopes (`application/jose+json`): `trust::notation::verify` of the input as a
//! signature envelope (parse, signature with the leaf of x5c/x5chain, chain, payload, trust stores,
//! identities, validity, expiry); policies, stores and targets in `berth_fuzz::notation`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::notation::verify_everywhere(data, "application/jose+json"));
