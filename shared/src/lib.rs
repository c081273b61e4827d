//! Berth's library: the pure domain, the ports it needs, the use cases that drive them, the adapters
//! per backend, and the OCI distribution router that every host (local server, Lambda) serves.
//!
//! Dependencies point inward: `oci` and `adapters` → `app` → `ports` → `domain`; `domain` does no I/O.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod api;
pub mod app;
pub mod auth;
pub mod domain;
pub mod events_out;
pub mod metrics;
pub mod oci;
pub mod ports;
pub mod registry_client;
pub mod telemetry;
pub mod trust;
