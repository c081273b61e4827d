//! `Views` on redb: point reads and prefix scans on MVCC snapshots.

use std::ops::Bound;

use async_trait::async_trait;
use redb::{ReadTransaction, ReadableTable, TableDefinition, TableHandle};

use crate::domain::accessory::{AccessoryRecord, VerdictRecord};
use crate::domain::projection::{ManifestRecord, ReferrerRecord, ViewOp};
use crate::domain::{Digest, RepoName, Tag};
use crate::ports::{ViewError, Views};

use super::{
    apply_ops, create_tables, fail, key, prefix_range, tag_key, Failure, RedbStore, ACCESSORIES,
    ACCESSORY_OF, BLOB_LINKS, BLOB_USERS, INDEX_CHILDREN, MANIFESTS, MANIFEST_TAGS, REFERRERS, REPOSITORIES,
    SEP, TAGS, VERDICTS,
};

type ViewResult<T> = Result<T, ViewError>;

impl From<Failure> for ViewError {
    fn from(e: Failure) -> Self {
        ViewError::Backend(e.to_string())
    }
}

impl RedbStore {
    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, Failure>) -> ViewResult<T> {
        let read = |db: &redb::Database| f(&db.begin_read().map_err(fail)?);
        Ok(self.db.run(read)?)
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), Failure>) -> ViewResult<()> {
        let write = |db: &redb::Database| {
            let txn = db.begin_write().map_err(fail)?;
            f(&txn)?;
            txn.commit().map_err(fail)
        };
        Ok(self.db.run(write)?)
    }
}

/// Keys of `table` strictly between `start` and `end`, at most `limit`, as owned strings.
fn scan_keys<V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<&str, V>,
    start: &str,
    end: &str,
    limit: usize,
) -> Result<Vec<String>, Failure> {
    let t = txn.open_table(table).map_err(fail)?;
    let range = t
        .range::<&str>((Bound::Excluded(start), Bound::Excluded(end)))
        .map_err(fail)?;
    let mut out = Vec::new();
    for row in range.take(limit) {
        out.push(row.map_err(fail)?.0.value().to_string());
    }
    Ok(out)
}

/// The JSON values of every row under `prefix` parts, in key order.
fn scan_json<T: serde::de::DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
    prefix: &[&str],
) -> Result<Vec<T>, Failure> {
    let t = txn.open_table(table).map_err(fail)?;
    let (start, end) = prefix_range(prefix);
    let mut out = Vec::new();
    for row in t.range::<&str>(start.as_str()..end.as_str()).map_err(fail)? {
        out.push(serde_json::from_slice(row.map_err(fail)?.1.value()).map_err(fail)?);
    }
    Ok(out)
}

/// A row that does not parse as what the view stores.
fn invalid(e: impl std::fmt::Display) -> Failure {
    Failure::Other(format!("invalid row: {e}"))
}

/// The last part of a NUL-joined key.
fn last_part(k: &str) -> &str {
    k.rsplit(SEP).next().unwrap_or(k)
}

fn parse_all<T: std::str::FromStr>(keys: Vec<String>) -> Result<Vec<T>, Failure>
where
    T::Err: std::fmt::Display,
{
    keys.iter()
        .map(|k| last_part(k).parse::<T>().map_err(invalid))
        .collect()
}

#[async_trait]
impl Views for RedbStore {
    async fn tag(&self, repo: &RepoName, tag: &Tag) -> ViewResult<Option<Digest>> {
        self.read(|txn| {
            let t = txn.open_table(TAGS).map_err(fail)?;
            let value = t
                .get(tag_key(repo.as_str(), tag.as_str()).as_str())
                .map_err(fail)?;
            value.map(|v| v.value().parse().map_err(invalid)).transpose()
        })
    }

    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> ViewResult<Option<ManifestRecord>> {
        self.read(|txn| {
            let t = txn.open_table(MANIFESTS).map_err(fail)?;
            let value = t
                .get(key(&[repo.as_str(), &digest.to_string()]).as_str())
                .map_err(fail)?;
            value
                .map(|v| serde_json::from_slice(v.value()).map_err(fail))
                .transpose()
        })
    }

    async fn blob_link(&self, repo: &RepoName, digest: &Digest) -> ViewResult<Option<u64>> {
        self.read(|txn| {
            let t = txn.open_table(BLOB_LINKS).map_err(fail)?;
            let value = t
                .get(key(&[repo.as_str(), &digest.to_string()]).as_str())
                .map_err(fail)?;
            Ok(value.map(|v| v.value()))
        })
    }

    async fn tags(&self, repo: &RepoName, after: Option<&str>, limit: usize) -> ViewResult<Vec<Tag>> {
        self.read(|txn| {
            let (start, end) = prefix_range(&[repo.as_str()]);
            let start = after.map_or(start, |a| tag_key(repo.as_str(), a));
            parse_all(scan_keys(txn, TAGS, &start, &end, limit)?)
        })
    }

    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> ViewResult<Vec<Tag>> {
        self.read(|txn| {
            let (start, end) = prefix_range(&[repo.as_str(), &digest.to_string()]);
            parse_all(scan_keys(txn, MANIFEST_TAGS, &start, &end, usize::MAX)?)
        })
    }

    async fn referrers(&self, repo: &RepoName, subject: &Digest) -> ViewResult<Vec<ReferrerRecord>> {
        self.read(|txn| scan_json(txn, REFERRERS, &[repo.as_str(), &subject.to_string()]))
    }

    async fn manifests(&self, repo: &RepoName) -> ViewResult<Vec<ManifestRecord>> {
        self.read(|txn| scan_json(txn, MANIFESTS, &[repo.as_str()]))
    }

    async fn manifests_using(&self, repo: &RepoName, blob: &Digest) -> ViewResult<Vec<Digest>> {
        self.read(|txn| {
            let (start, end) = prefix_range(&[repo.as_str(), &blob.to_string()]);
            parse_all(scan_keys(txn, BLOB_USERS, &start, &end, usize::MAX)?)
        })
    }

    async fn indexes_holding(&self, repo: &RepoName, child: &Digest) -> ViewResult<Vec<Digest>> {
        self.read(|txn| {
            let (start, end) = prefix_range(&[repo.as_str(), &child.to_string()]);
            parse_all(scan_keys(txn, INDEX_CHILDREN, &start, &end, usize::MAX)?)
        })
    }

    async fn accessories(&self, repo: &RepoName, subject: &Digest) -> ViewResult<Vec<AccessoryRecord>> {
        self.read(|txn| scan_json(txn, ACCESSORIES, &[repo.as_str(), &subject.to_string()]))
    }

    async fn subjects_of(&self, repo: &RepoName, accessory: &Digest) -> ViewResult<Vec<Digest>> {
        self.read(|txn| {
            let (start, end) = prefix_range(&[repo.as_str(), &accessory.to_string()]);
            parse_all(scan_keys(txn, ACCESSORY_OF, &start, &end, usize::MAX)?)
        })
    }

    async fn verdict(
        &self,
        repo: &RepoName,
        signature: &Digest,
        subject: &Digest,
    ) -> ViewResult<Option<VerdictRecord>> {
        self.read(|txn| {
            let t = txn.open_table(VERDICTS).map_err(fail)?;
            let value = t
                .get(key(&[repo.as_str(), &signature.to_string(), &subject.to_string()]).as_str())
                .map_err(fail)?;
            value
                .map(|v| serde_json::from_slice(v.value()).map_err(fail))
                .transpose()
        })
    }

    async fn stored(&self, repo: &RepoName) -> ViewResult<Vec<(Digest, u64)>> {
        self.read(|txn| {
            let (start, end) = prefix_range(&[repo.as_str()]);
            let mut out = Vec::new();
            let links = txn.open_table(BLOB_LINKS).map_err(fail)?;
            for row in links.range::<&str>(start.as_str()..end.as_str()).map_err(fail)? {
                let row = row.map_err(fail)?;
                out.push((last_part(row.0.value()).parse().map_err(invalid)?, row.1.value()));
            }
            let manifests = txn.open_table(MANIFESTS).map_err(fail)?;
            for row in manifests
                .range::<&str>(start.as_str()..end.as_str())
                .map_err(fail)?
            {
                let record: ManifestRecord =
                    serde_json::from_slice(row.map_err(fail)?.1.value()).map_err(fail)?;
                out.push((record.digest, record.size));
            }
            Ok(out)
        })
    }

    async fn repository_exists(&self, repo: &RepoName) -> ViewResult<bool> {
        self.read(|txn| {
            let t = txn.open_table(REPOSITORIES).map_err(fail)?;
            Ok(t.get(repo.as_str()).map_err(fail)?.is_some())
        })
    }

    async fn repositories(&self, after: Option<&str>, limit: usize) -> ViewResult<Vec<RepoName>> {
        self.read(|txn| {
            let t = txn.open_table(REPOSITORIES).map_err(fail)?;
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            let mut out = Vec::new();
            for row in t
                .range::<&str>((start, Bound::Unbounded))
                .map_err(fail)?
                .take(limit)
            {
                out.push(row.map_err(fail)?.0.value().parse().map_err(invalid)?);
            }
            Ok(out)
        })
    }

    async fn apply(&self, ops: Vec<ViewOp>) -> ViewResult<()> {
        self.write(|txn| apply_ops(txn, &ops))
    }

    async fn clear(&self) -> ViewResult<()> {
        self.write(|txn| {
            txn.delete_table(TAGS).map_err(fail)?;
            txn.delete_table(MANIFESTS).map_err(fail)?;
            txn.delete_table(MANIFEST_TAGS).map_err(fail)?;
            txn.delete_table(REFERRERS).map_err(fail)?;
            txn.delete_table(BLOB_LINKS).map_err(fail)?;
            txn.delete_table(REPOSITORIES).map_err(fail)?;
            txn.delete_table(ACCESSORIES).map_err(fail)?;
            txn.delete_table(ACCESSORY_OF).map_err(fail)?;
            txn.delete_table(VERDICTS).map_err(fail)?;
            txn.delete_table(BLOB_USERS).map_err(fail)?;
            txn.delete_table(INDEX_CHILDREN).map_err(fail)?;
            create_tables(txn)
        })
    }

    async fn dump(&self) -> ViewResult<Vec<String>> {
        self.read(|txn| {
            let mut rows = Vec::new();
            dump_table(txn, TAGS, |v| v.to_string(), &mut rows)?;
            dump_table(
                txn,
                MANIFESTS,
                |v| String::from_utf8_lossy(v).into_owned(),
                &mut rows,
            )?;
            dump_table(txn, MANIFEST_TAGS, |_| String::new(), &mut rows)?;
            dump_table(
                txn,
                REFERRERS,
                |v| String::from_utf8_lossy(v).into_owned(),
                &mut rows,
            )?;
            dump_table(txn, BLOB_LINKS, |v| v.to_string(), &mut rows)?;
            dump_table(txn, REPOSITORIES, |_| String::new(), &mut rows)?;
            let json = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
            dump_table(txn, ACCESSORIES, json, &mut rows)?;
            dump_table(txn, ACCESSORY_OF, |_| String::new(), &mut rows)?;
            dump_table(txn, VERDICTS, json, &mut rows)?;
            dump_table(txn, BLOB_USERS, |_| String::new(), &mut rows)?;
            dump_table(txn, INDEX_CHILDREN, |_| String::new(), &mut rows)?;
            rows.sort();
            Ok(rows)
        })
    }
}

fn dump_table<V: redb::Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<&str, V>,
    show: impl for<'a> Fn(V::SelfType<'a>) -> String,
    rows: &mut Vec<String>,
) -> Result<(), Failure> {
    let t = txn.open_table(table).map_err(fail)?;
    for row in t.iter().map_err(fail)? {
        let (k, v) = row.map_err(fail)?;
        rows.push(format!(
            "{} {} {}",
            table.name(),
            k.value().replace(SEP, "|"),
            show(v.value())
        ));
    }
    Ok(())
}
