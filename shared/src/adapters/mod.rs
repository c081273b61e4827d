//! Adapters per backend. `embedded` (redb) implements the event log and views, `fs` the blob store;
//! `local` wires them into a registry for the single-process default.

pub mod dynamodb;
pub mod embedded;
pub mod fs;
pub mod local;
pub mod s3;
