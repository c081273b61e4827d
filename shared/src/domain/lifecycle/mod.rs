//! Lifecycle rules (issue 14, docs/lifecycle.md): which tags are immutable, and (next) which
//! artifacts retention keeps and what garbage collection may reclaim. Pure: rules in, verdicts out.

pub mod immutability;
pub mod selector;
