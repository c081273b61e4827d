//! `Views` on DynamoDB: consistent point reads and `Query` ranges over one repository's partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::accessory::{AccessoryRecord, VerdictRecord};
use crate::domain::projection::{ManifestRecord, ReferrerRecord, ViewOp};
use crate::domain::{Digest, RepoName, Tag};
use crate::ports::{ViewError, Views};

use super::{
    delete_write, fail, get_n, get_s, repo_pk, s, tag_sk, view_writes, DynamoStore, Item, Write, CATALOG_PK,
    MAX_PAGE_ROWS, MAX_TRANSACT_BYTES, MAX_TRANSACT_ITEMS, PK, SK, VALUE,
};

type ViewResult<T> = Result<T, ViewError>;

fn backend(e: impl Into<String>) -> ViewError {
    ViewError::Backend(e.into())
}

/// A key condition on `sk` within one partition.
enum Range {
    /// Every row of the partition.
    All,
    /// `sk` > the bound.
    After(String),
    BeginsWith(String),
    /// Inclusive bounds.
    Between(String, String),
}

/// The character after `#`: the exclusive end of a `kind#` prefix.
const SEP_END: char = '$';
/// Sorts below every character of a tag or repository name (`-` is the lowest): appended to a key,
/// it gives a lower bound for every key strictly greater.
const JUST_AFTER: char = '!';

impl DynamoStore {
    /// Rows of `pk` in `range`, in `sk` order, at most `limit`.
    async fn query(&self, pk: String, range: Range, limit: usize) -> Result<Vec<Item>, String> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let (condition, bounds) = match range {
            Range::All => ("pk = :pk", vec![]),
            Range::After(a) => ("pk = :pk AND sk > :a", vec![(":a", a)]),
            Range::BeginsWith(p) => ("pk = :pk AND begins_with(sk, :a)", vec![(":a", p)]),
            Range::Between(a, b) => ("pk = :pk AND sk BETWEEN :a AND :b", vec![(":a", a), (":b", b)]),
        };
        let mut values = Item::from([(":pk".to_string(), s(pk))]);
        values.extend(bounds.into_iter().map(|(k, v)| (k.to_string(), s(v))));
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression(condition)
                .set_expression_attribute_values(Some(values.clone()))
                .limit((limit - out.len()).min(MAX_PAGE_ROWS as usize) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(fail)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if out.len() < limit && !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }

    /// Every view row (not the log's), scanned consistently.
    async fn scan_views(&self) -> Result<Vec<Item>, String> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(pk, :repo) OR pk = :catalog")
                .expression_attribute_values(":repo", s("repo#"))
                .expression_attribute_values(":catalog", s(CATALOG_PK))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(fail)?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }

    /// The last key part of every row of `repo` whose sort key starts with `prefix`, parsed: the
    /// listings whose rows are keys only (tags of a manifest, users of a blob, ...).
    async fn last_parts<T: std::str::FromStr>(&self, repo: &RepoName, prefix: String) -> ViewResult<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        let items = self
            .query(repo_pk(repo.as_str()), Range::BeginsWith(prefix), usize::MAX)
            .await
            .map_err(backend)?;
        items.iter().map(|i| parse(last_part(i)?)).collect()
    }

    /// Sends `writes` in transactions within the service limits, in order. Each transaction is
    /// atomic; the whole is not (views are rebuilt by replaying, which is idempotent).
    pub(super) async fn write_batches(&self, writes: Vec<Write>) -> Result<(), String> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for write in writes {
            if batch.len() == MAX_TRANSACT_ITEMS || bytes + write.bytes > MAX_TRANSACT_BYTES {
                self.transact(std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
            bytes += write.bytes;
            batch.push(write.item);
        }
        if !batch.is_empty() {
            self.transact(batch).await?;
        }
        Ok(())
    }

    async fn transact(&self, items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>) -> Result<(), String> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await
            .map(drop)
            .map_err(fail)
    }
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, ViewError>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| backend(format!("{text:?}: {e}")))
}

/// The last `#`-separated part of an item's sort key.
fn last_part(item: &Item) -> Result<&str, ViewError> {
    let sk = get_s(item, SK).map_err(backend)?;
    Ok(sk.rsplit('#').next().unwrap_or(sk))
}

fn json<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, ViewError> {
    serde_json::from_str(get_s(item, VALUE).map_err(backend)?).map_err(|e| backend(e.to_string()))
}

/// A view row as a dump line: `view key value`, the key's parts joined with `|`.
fn dump_line(item: &Item) -> Result<String, String> {
    let (pk, sk) = (get_s(item, PK)?, get_s(item, SK)?);
    let value = match item.get(VALUE) {
        Some(AttributeValue::S(v)) => v.clone(),
        Some(AttributeValue::N(v)) => v.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    if pk == CATALOG_PK {
        return Ok(format!("repositories {sk} {value}"));
    }
    let repo = pk.strip_prefix("repo#").unwrap_or(pk);
    let (kind, rest) = sk.split_once('#').unwrap_or((sk, ""));
    let view = match kind {
        "tag" => "tags",
        "manifest" => "manifests",
        "mtag" => "manifest_tags",
        "ref" => "referrers",
        "blob" => "blob_links",
        "acc" => "accessories",
        "accof" => "accessory_of",
        "verdict" => "verdicts",
        "uses" => "blob_users",
        "childof" => "index_children",
        other => other,
    };
    Ok(format!("{view} {repo}|{} {value}", rest.replace('#', "|")))
}

#[async_trait]
impl Views for DynamoStore {
    async fn tag(&self, repo: &RepoName, tag: &Tag) -> ViewResult<Option<Digest>> {
        let item = self
            .get(&repo_pk(repo.as_str()), &tag_sk(tag.as_str()))
            .await
            .map_err(backend)?;
        item.map(|i| parse(get_s(&i, VALUE).map_err(backend)?))
            .transpose()
    }

    async fn manifest(&self, repo: &RepoName, digest: &Digest) -> ViewResult<Option<ManifestRecord>> {
        let item = self
            .get(&repo_pk(repo.as_str()), &format!("manifest#{digest}"))
            .await
            .map_err(backend)?;
        item.map(|i| json(&i)).transpose()
    }

    async fn blob_link(&self, repo: &RepoName, digest: &Digest) -> ViewResult<Option<u64>> {
        let item = self
            .get(&repo_pk(repo.as_str()), &format!("blob#{digest}"))
            .await
            .map_err(backend)?;
        item.map(|i| get_n(&i, VALUE).map_err(backend)).transpose()
    }

    async fn tags(&self, repo: &RepoName, after: Option<&str>, limit: usize) -> ViewResult<Vec<Tag>> {
        let low = after.map_or_else(|| "tag#".to_string(), |a| format!("{}{JUST_AFTER}", tag_sk(a)));
        let range = Range::Between(low, format!("tag{SEP_END}"));
        let items = self
            .query(repo_pk(repo.as_str()), range, limit)
            .await
            .map_err(backend)?;
        items.iter().map(|i| parse(last_part(i)?)).collect()
    }

    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> ViewResult<Vec<Tag>> {
        self.last_parts(repo, format!("mtag#{digest}#")).await
    }

    async fn referrers(&self, repo: &RepoName, subject: &Digest) -> ViewResult<Vec<ReferrerRecord>> {
        let range = Range::BeginsWith(format!("ref#{subject}#"));
        let items = self
            .query(repo_pk(repo.as_str()), range, usize::MAX)
            .await
            .map_err(backend)?;
        items.iter().map(json).collect()
    }

    async fn manifests(&self, repo: &RepoName) -> ViewResult<Vec<ManifestRecord>> {
        let range = Range::BeginsWith("manifest#".to_string());
        let items = self
            .query(repo_pk(repo.as_str()), range, usize::MAX)
            .await
            .map_err(backend)?;
        items.iter().map(json).collect()
    }

    async fn manifests_using(&self, repo: &RepoName, blob: &Digest) -> ViewResult<Vec<Digest>> {
        self.last_parts(repo, format!("uses#{blob}#")).await
    }

    async fn indexes_holding(&self, repo: &RepoName, child: &Digest) -> ViewResult<Vec<Digest>> {
        self.last_parts(repo, format!("childof#{child}#")).await
    }

    async fn accessories(&self, repo: &RepoName, subject: &Digest) -> ViewResult<Vec<AccessoryRecord>> {
        let range = Range::BeginsWith(format!("acc#{subject}#"));
        let items = self
            .query(repo_pk(repo.as_str()), range, usize::MAX)
            .await
            .map_err(backend)?;
        items.iter().map(json).collect()
    }

    async fn subjects_of(&self, repo: &RepoName, accessory: &Digest) -> ViewResult<Vec<Digest>> {
        self.last_parts(repo, format!("accof#{accessory}#")).await
    }

    async fn verdict(
        &self,
        repo: &RepoName,
        signature: &Digest,
        subject: &Digest,
    ) -> ViewResult<Option<VerdictRecord>> {
        let item = self
            .get(&repo_pk(repo.as_str()), &format!("verdict#{signature}#{subject}"))
            .await
            .map_err(backend)?;
        item.map(|i| json(&i)).transpose()
    }

    async fn stored(&self, repo: &RepoName) -> ViewResult<Vec<(Digest, u64)>> {
        let pk = repo_pk(repo.as_str());
        let blobs = (self
            .query(pk.clone(), Range::BeginsWith("blob#".into()), usize::MAX)
            .await)
            .map_err(backend)?;
        let mut out = Vec::with_capacity(blobs.len());
        for item in &blobs {
            out.push((parse(last_part(item)?)?, get_n(item, VALUE).map_err(backend)?));
        }
        let manifests = (self
            .query(pk, Range::BeginsWith("manifest#".into()), usize::MAX)
            .await)
            .map_err(backend)?;
        for item in &manifests {
            let record: ManifestRecord = json(item)?;
            out.push((record.digest, record.size));
        }
        Ok(out)
    }

    async fn repository_exists(&self, repo: &RepoName) -> ViewResult<bool> {
        let item = self.get(CATALOG_PK, repo.as_str()).await.map_err(backend)?;
        Ok(item.is_some())
    }

    async fn repositories(&self, after: Option<&str>, limit: usize) -> ViewResult<Vec<RepoName>> {
        let range = after
            .filter(|a| !a.is_empty())
            .map_or(Range::All, |a| Range::After(a.to_string()));
        let items = self
            .query(CATALOG_PK.to_string(), range, limit)
            .await
            .map_err(backend)?;
        items
            .iter()
            .map(|i| parse(get_s(i, SK).map_err(backend)?))
            .collect()
    }

    async fn apply(&self, ops: Vec<ViewOp>) -> ViewResult<()> {
        let writes = view_writes(&self.table, &ops).map_err(backend)?;
        self.write_batches(writes).await.map_err(backend)
    }

    async fn clear(&self) -> ViewResult<()> {
        // Catalog rows go too: appends of this store must write them again.
        self.catalogued.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let items = self.scan_views().await.map_err(backend)?;
        let mut writes = Vec::with_capacity(items.len());
        for item in &items {
            let (pk, sk) = (
                get_s(item, PK).map_err(backend)?,
                get_s(item, SK).map_err(backend)?,
            );
            writes.push(delete_write(&self.table, pk.to_string(), sk.to_string()).map_err(backend)?);
        }
        self.write_batches(writes).await.map_err(backend)
    }

    async fn dump(&self) -> ViewResult<Vec<String>> {
        let items = self.scan_views().await.map_err(backend)?;
        let mut rows = items
            .iter()
            .map(dump_line)
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        rows.sort();
        Ok(rows)
    }
}
