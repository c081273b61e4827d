//! One OCI operation per file.

pub mod base;
pub mod blob_delete;
pub mod blob_get;
pub mod catalog;
pub mod manifest_delete;
pub mod manifest_get;
pub mod manifest_put;
pub mod referrers;
pub mod tags_list;
pub mod upload_cancel;
pub mod upload_finish;
pub mod upload_patch;
pub mod upload_start;
pub mod upload_status;
