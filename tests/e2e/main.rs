//! End-to-end tests: the real `berth` binary (or, with `BERTH_E2E_TARGET=distribution`, Debian's
//! `docker-registry` to check the tests themselves) driven by real clients — skopeo, docker and
//! raw HTTP. Every test starts its own server on an ephemeral 127.0.0.1 port and temp data dir.
//!
//! Build the server first: `cargo build -p berth`, then `cargo nextest run -p berth-e2e`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod access;
mod aws;
mod bad_inputs;
mod bad_uploads;
mod concurrency;
mod content_trust;
mod content_trust_rules;
mod crash;
mod disk_full;
mod docker;
mod faults;
mod lifecycle;
mod limits;
mod listings;
mod mount;
mod projector;
mod protocol;
mod rebuild;
mod referrers;
mod refusals;
mod replication;
mod security;
mod serverless;
mod skopeo;
mod spec;
