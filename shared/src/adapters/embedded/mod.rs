//! The embedded event log and views: one redb file.
//!
//! Why redb: a pure-Rust, single-file ACID store (copy-on-write B-trees, checksummed pages), so an
//! append and its inline view updates commit in one transaction that is fsynced before the client
//! hears 201 (`Durability::Immediate`), and a crash at any point leaves the last committed state.
//! Readers run on MVCC snapshots without blocking the single writer, which suits a registry's
//! read-mostly load; no C toolchain or server is needed.
//!
//! Tables (keys join their parts with NUL, which no repository name, tag or digest contains, so a
//! prefix scan lists one repository's rows in lexical order):
//! ```text
//! events          sequence (u64)            → RecordedEvent JSON
//! streams         stream id                 → version (u64)
//! stream_events   (stream id, version)      → sequence (u64): a stream's events, in version order
//! tags            repo␀lowercase tag␀tag    → digest (ordered case-insensitively, as the spec asks)
//! manifests       repo␀digest               → ManifestRecord JSON
//! manifest_tags   repo␀digest␀tag           → ()
//! referrers       repo␀subject␀digest       → ReferrerRecord JSON
//! blob_links      repo␀digest               → size (u64)
//! repositories    repo                      → ()
//! accessories     repo␀subject␀digest       → AccessoryRecord JSON
//! accessory_of    repo␀digest␀subject       → ()
//! verdicts        repo␀signature␀subject    → VerdictRecord JSON
//! blob_users      repo␀blob␀manifest        → (): content facts, never deleted
//! index_children  repo␀child␀index          → (): content facts, never deleted
//! ```
//! A store opened for the first time by a version with the fact tables fills them from the log.

mod checkpoints;
mod handle;
mod keys;
mod log;
mod views;

use std::path::Path;
use std::sync::Arc;

use redb::{TableDefinition, WriteTransaction};

use crate::domain::projection::{ViewKey, ViewOp, ViewValue};

use handle::{fail, Db, Failure};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const STREAMS: TableDefinition<&str, u64> = TableDefinition::new("streams");
/// Written with `EVENTS` in the append's transaction, so it indexes every event of the log.
const STREAM_EVENTS: TableDefinition<(&str, u64), u64> = TableDefinition::new("stream_events");
const TAGS: TableDefinition<&str, &str> = TableDefinition::new("tags");
const MANIFESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("manifests");
const MANIFEST_TAGS: TableDefinition<&str, ()> = TableDefinition::new("manifest_tags");
const REFERRERS: TableDefinition<&str, &[u8]> = TableDefinition::new("referrers");
const BLOB_LINKS: TableDefinition<&str, u64> = TableDefinition::new("blob_links");
const REPOSITORIES: TableDefinition<&str, ()> = TableDefinition::new("repositories");
const ACCESSORIES: TableDefinition<&str, &[u8]> = TableDefinition::new("accessories");
const ACCESSORY_OF: TableDefinition<&str, ()> = TableDefinition::new("accessory_of");
const VERDICTS: TableDefinition<&str, &[u8]> = TableDefinition::new("verdicts");
const BLOB_USERS: TableDefinition<&str, ()> = TableDefinition::new("blob_users");
const INDEX_CHILDREN: TableDefinition<&str, ()> = TableDefinition::new("index_children");

/// Separates key parts.
const SEP: char = '\u{0}';
/// The character after `SEP`: the exclusive end of a prefix scan.
const SEP_END: char = '\u{1}';

/// The redb-backed event log and views (`EventLog` + `Views`).
pub struct RedbStore {
    db: Arc<Db>,
}

#[derive(Debug, thiserror::Error)]
#[error("embedded store: {0}")]
pub struct StoreError(String);

/// The page cache an embedded store keeps unless told otherwise: enough for the hot views of a
/// large registry, small beside redb's own default (1 GiB).
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

impl RedbStore {
    /// Opens (creating if needed) the store in `path` with the default page cache.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens the store with a page cache of at most `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<RedbStore, StoreError> {
        let init = || -> Result<Db, Failure> {
            let db = Db::open(path, cache_bytes)?;
            db.run(|db| {
                let txn = db.begin_write().map_err(fail)?;
                let facts_missing = !has_table(&txn, BLOB_USERS)?;
                create_tables(&txn)?;
                if facts_missing {
                    log::project_content_facts(&txn)?;
                }
                log::index_streams_if_missing(&txn)?;
                txn.commit().map_err(fail)
            })?;
            Ok(db)
        };
        let db = init().map_err(|e| StoreError(e.to_string()))?;
        Ok(RedbStore { db: Arc::new(db) })
    }
}

fn create_tables(txn: &WriteTransaction) -> Result<(), Failure> {
    txn.open_table(EVENTS).map_err(fail)?;
    txn.open_table(STREAMS).map_err(fail)?;
    txn.open_table(STREAM_EVENTS).map_err(fail)?;
    txn.open_table(TAGS).map_err(fail)?;
    txn.open_table(MANIFESTS).map_err(fail)?;
    txn.open_table(MANIFEST_TAGS).map_err(fail)?;
    txn.open_table(REFERRERS).map_err(fail)?;
    txn.open_table(BLOB_LINKS).map_err(fail)?;
    txn.open_table(REPOSITORIES).map_err(fail)?;
    txn.open_table(ACCESSORIES).map_err(fail)?;
    txn.open_table(ACCESSORY_OF).map_err(fail)?;
    txn.open_table(VERDICTS).map_err(fail)?;
    txn.open_table(BLOB_USERS).map_err(fail)?;
    txn.open_table(INDEX_CHILDREN).map_err(fail)?;
    Ok(())
}

fn has_table(txn: &WriteTransaction, table: TableDefinition<&str, ()>) -> Result<bool, Failure> {
    use redb::TableHandle as _;
    Ok(txn.list_tables().map_err(fail)?.any(|t| t.name() == table.name()))
}

/// A tag's key: the lowercased tag first, so a scan lists tags in the spec's case-insensitive
/// order (ties broken by the tag's bytes).
fn tag_key(repo: &str, tag: &str) -> String {
    key(&[repo, &tag.to_ascii_lowercase(), tag])
}

fn key(parts: &[&str]) -> String {
    parts.join(&SEP.to_string())
}

/// The half-open key range of every row under `prefix` parts.
fn prefix_range(parts: &[&str]) -> (String, String) {
    let base = key(parts);
    (format!("{base}{SEP}"), format!("{base}{SEP_END}"))
}

/// Stores `value` as JSON under `k`, or removes `k` when there is none.
fn put_json<T: serde::Serialize>(
    table: &mut redb::Table<'_, &str, &[u8]>,
    k: &str,
    value: Option<&T>,
) -> Result<(), redb::StorageError> {
    match value {
        Some(value) => {
            let json = serde_json::to_vec(value).map_err(|e| redb::StorageError::Io(e.into()))?;
            table.insert(k, json.as_slice()).map(drop)
        }
        None => table.remove(k).map(drop),
    }
}

/// Applies projection ops inside a write transaction.
fn apply_ops(txn: &WriteTransaction, ops: &[ViewOp]) -> Result<(), Failure> {
    let mut tags = txn.open_table(TAGS).map_err(fail)?;
    let mut manifests = txn.open_table(MANIFESTS).map_err(fail)?;
    let mut manifest_tags = txn.open_table(MANIFEST_TAGS).map_err(fail)?;
    let mut referrers = txn.open_table(REFERRERS).map_err(fail)?;
    let mut blob_links = txn.open_table(BLOB_LINKS).map_err(fail)?;
    let mut repositories = txn.open_table(REPOSITORIES).map_err(fail)?;
    let mut accessories = txn.open_table(ACCESSORIES).map_err(fail)?;
    let mut accessory_of = txn.open_table(ACCESSORY_OF).map_err(fail)?;
    let mut verdicts = txn.open_table(VERDICTS).map_err(fail)?;
    let mut blob_users = txn.open_table(BLOB_USERS).map_err(fail)?;
    let mut index_children = txn.open_table(INDEX_CHILDREN).map_err(fail)?;
    for op in ops {
        let (view_key, value) = match op {
            ViewOp::Put(k, v) => (k, Some(v)),
            ViewOp::Delete(k) => (k, None),
        };
        match (view_key, value) {
            (ViewKey::Tag { repo, tag }, v) => {
                let k = tag_key(repo.as_str(), tag.as_str());
                match v {
                    Some(ViewValue::Digest(d)) => tags.insert(k.as_str(), d.to_string().as_str()).map(drop),
                    _ => tags.remove(k.as_str()).map(drop),
                }
            }
            (ViewKey::Manifest { repo, digest }, v) => {
                let k = key(&[repo.as_str(), &digest.to_string()]);
                let value = match v {
                    Some(ViewValue::Manifest(x)) => Some(x.as_ref()),
                    _ => None,
                };
                put_json(&mut manifests, &k, value)
            }
            (ViewKey::ManifestTag { repo, digest, tag }, v) => {
                let k = key(&[repo.as_str(), &digest.to_string(), tag.as_str()]);
                match v {
                    Some(_) => manifest_tags.insert(k.as_str(), ()).map(drop),
                    None => manifest_tags.remove(k.as_str()).map(drop),
                }
            }
            (
                ViewKey::Referrer {
                    repo,
                    subject,
                    digest,
                },
                v,
            ) => {
                let k = key(&[repo.as_str(), &subject.to_string(), &digest.to_string()]);
                let value = match v {
                    Some(ViewValue::Referrer(x)) => Some(x.as_ref()),
                    _ => None,
                };
                put_json(&mut referrers, &k, value)
            }
            (ViewKey::BlobLink { repo, digest }, v) => {
                let k = key(&[repo.as_str(), &digest.to_string()]);
                match v {
                    Some(ViewValue::Size(size)) => blob_links.insert(k.as_str(), *size).map(drop),
                    _ => blob_links.remove(k.as_str()).map(drop),
                }
            }
            (ViewKey::Repository { repo }, v) => match v {
                Some(_) => repositories.insert(repo.as_str(), ()).map(drop),
                None => repositories.remove(repo.as_str()).map(drop),
            },
            (
                ViewKey::Accessory {
                    repo,
                    subject,
                    digest,
                },
                v,
            ) => {
                let k = key(&[repo.as_str(), &subject.to_string(), &digest.to_string()]);
                let value = match v {
                    Some(ViewValue::Accessory(x)) => Some(x.as_ref()),
                    _ => None,
                };
                put_json(&mut accessories, &k, value)
            }
            (
                ViewKey::AccessoryOf {
                    repo,
                    digest,
                    subject,
                },
                v,
            ) => {
                let k = key(&[repo.as_str(), &digest.to_string(), &subject.to_string()]);
                match v {
                    Some(_) => accessory_of.insert(k.as_str(), ()).map(drop),
                    None => accessory_of.remove(k.as_str()).map(drop),
                }
            }
            (
                ViewKey::Verdict {
                    repo,
                    digest,
                    subject,
                },
                v,
            ) => {
                let k = key(&[repo.as_str(), &digest.to_string(), &subject.to_string()]);
                let value = match v {
                    Some(ViewValue::Verdict(x)) => Some(x.as_ref()),
                    _ => None,
                };
                put_json(&mut verdicts, &k, value)
            }
            (ViewKey::BlobUser { repo, blob, manifest }, v) => {
                let k = key(&[repo.as_str(), &blob.to_string(), &manifest.to_string()]);
                match v {
                    Some(_) => blob_users.insert(k.as_str(), ()).map(drop),
                    None => blob_users.remove(k.as_str()).map(drop),
                }
            }
            (ViewKey::IndexChild { repo, child, index }, v) => {
                let k = key(&[repo.as_str(), &child.to_string(), &index.to_string()]);
                match v {
                    Some(_) => index_children.insert(k.as_str(), ()).map(drop),
                    None => index_children.remove(k.as_str()).map(drop),
                }
            }
        }
        .map_err(fail)?;
    }
    Ok(())
}
