//! Adapters per backend. `embedded` (redb) and `dynamodb` implement the event log and views, `fs`
//! and `s3` the blob store; `local` and `aws` wire them into a registry.

pub mod audit;
pub mod aws;
pub mod aws_calls;
pub mod dynamodb;
pub mod embedded;
pub mod fs;
pub mod local;
pub mod projection;
pub mod s3;
pub mod secret_box;
