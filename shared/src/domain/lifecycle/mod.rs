//! Lifecycle rules (issue 14, docs/lifecycle.md): which tags are immutable, which artifacts
//! retention keeps, and what garbage collection keeps and may reclaim. Pure: rules in, verdicts
//! out.

pub mod gc;
pub mod immutability;
pub mod retention;
pub mod schedule;
pub mod selector;
