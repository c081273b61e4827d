//! Lifecycle rules (issue 14, docs/lifecycle.md): which tags are immutable, what garbage
//! collection keeps and may reclaim, and (next) which artifacts retention keeps. Pure: rules in,
//! verdicts out.

pub mod gc;
pub mod immutability;
pub mod selector;
