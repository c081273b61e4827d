//! Shared helpers live in the e2e test binary; this crate has no library code.
