//! The DynamoDB event log and views: one table, `pk` (hash) and `sk` (range), both strings.
//!
//! Table and key design (`#` separates key parts: no repository name, tag or digest contains it, and
//! it sorts below every character they may contain, so a range of `sk` lists rows in the same order
//! as the embedded adapter's NUL-joined keys):
//! ```text
//! pk                  sk                          attributes
//! ──────────────────  ──────────────────────────  ─────────────────────────────────────────────
//! stream#<stream>     head                        version (N), last_at (N): version, time of last commit
//! stream#<stream>     v#<020 version>             event (S): RecordedEvent JSON; log_bucket (S),
//!                                                 log_position (S): keys of the `log` index
//! log                 epoch                       day (N): the `log` index's first day
//! log                 seq#<020 sequence>          event (S): an event numbered before the upgrade
//! repo#<repo>         tag#<lowercase tag>#<tag>   v (S): digest (case-insensitive tag order)
//! repo#<repo>         manifest#<digest>           v (S): ManifestRecord JSON
//! repo#<repo>         mtag#<digest>#<tag>         -
//! repo#<repo>         ref#<subject>#<digest>      v (S): ReferrerRecord JSON
//! repo#<repo>         blob#<digest>               v (N): size
//! repo#<repo>         acc#<subject>#<digest>      v (S): AccessoryRecord JSON
//! repo#<repo>         accof#<digest>#<subject>    -
//! repo#<repo>         verdict#<digest>#<subject>  v (S): VerdictRecord JSON
//! repo#<repo>         uses#<blob>#<manifest>      -  (content fact, never deleted)
//! repo#<repo>         childof#<child>#<index>     -  (content fact, never deleted)
//! catalog             <repo>                      -
//! ```
//!
//! An append is ONE `TransactWriteItems`: each stream's head (conditional on the expected version
//! and on not having committed later than this append's time), the event items, and the merged
//! view writes of every event (`ops_for`). A failed head condition is a `LogError::Conflict`.
//! Appends to different streams touch different items: there is no counter (docs/log-scale-out.md).
//! Readers of everything page through the global secondary index `log` (`log_bucket` =
//! `log#<yyyymmdd>#<shard>`, `log_position`), sixteen partitions a day; see `log.rs`.
//!
//! `read_stream` is one consistent `Query` of `v#<after + 1> ..= v#<max>` in the stream's partition
//! (a page per MB). An append to `h` streams of `e` events and `w` merged view writes is `h + e + w`
//! actions, checked by `check_limits` before sending (`MAX_TRANSACT_ITEMS`, `MAX_TRANSACT_BYTES`),
//! as each item is against `MAX_ITEM_BYTES`. `head` sorts before every `v#` key, so a range of `v#`
//! keys never meets it.
//!
//! A manifest with more layers or children than fit in the transaction beside the rest (DynamoDB
//! takes 100 actions) has its content-fact rows (`ViewKey::is_content_fact`: "manifest M uses blob
//! B", true whenever M exists) written before the transaction, in batches; if the append then
//! fails, the rows stay, name a manifest that does not exist, and readers (which look the manifest
//! up) ignore them. Only such an append can make `dump` differ from a rebuild, by those rows.
//!
//! Reads use strongly consistent `GetItem`/`Query`. `dump` and `clear` scan the whole table (they
//! serve rebuilds and tests, not requests).

mod checkpoints;
mod keys;
mod log;
mod views;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, CreateGlobalSecondaryIndexAction,
    Delete, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, Put, ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use crate::domain::projection::{ViewKey, ViewOp, ViewValue};
use crate::domain::RepoName;

/// DynamoDB rejects a `TransactWriteItems` of more than 100 actions.
pub const MAX_TRANSACT_ITEMS: usize = 100;
/// DynamoDB rejects a transaction whose items total more than 4 MiB.
pub const MAX_TRANSACT_BYTES: usize = 4 * 1024 * 1024;
/// DynamoDB rejects an item larger than 400 KiB (names and values).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// A `Query`/`Scan` page is at most 1 MB anyway; asking for more rows than this gains nothing.
const MAX_PAGE_ROWS: i32 = 1_000;
/// How long `create_table_if_missing` waits for the table to become ACTIVE (seconds, polled each one).
const TABLE_ACTIVE_WAIT_SECS: u32 = 120;

const PK: &str = "pk";
const SK: &str = "sk";
/// The value of a view row.
const VALUE: &str = "v";
const HEAD: &str = "head";
/// The partition of the log's epoch item, and of events numbered before the upgrade (read only).
const LOG_PK: &str = "log";
/// The global secondary index over every event item, by day and shard, then position.
const LOG_INDEX: &str = "log";
const LOG_BUCKET: &str = "log_bucket";
const LOG_POSITION: &str = "log_position";
const CATALOG_PK: &str = "catalog";

/// The DynamoDB-backed event log and views (`EventLog` + `Views`).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Whether this store recorded the log index's first day already (`log.rs`).
    epoch_noted: Arc<tokio::sync::OnceCell<()>>,
    /// Repositories whose catalog row this store knows exists (`log.rs`).
    catalogued: Arc<Mutex<HashSet<RepoName>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("dynamodb: {0}")]
    Backend(String),
    #[error("dynamodb table {table} is not ACTIVE after {TABLE_ACTIVE_WAIT_SECS} s")]
    NotActive { table: String },
}

/// Renders an SDK error with its whole source chain.
fn fail<E: std::error::Error>(e: E) -> String {
    DisplayErrorContext(e).to_string()
}

impl DynamoStore {
    /// A store on `table`, configured from `config`; its requests are counted in the metrics
    /// ([`crate::adapters::aws_calls`]).
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> DynamoStore {
        let config = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(crate::adapters::aws_calls::AwsCallCounter)
            .build();
        DynamoStore::with_client(Client::from_conf(config), table)
    }

    /// A store on `client` (tests give it interceptors that count or fault its calls).
    pub fn with_client(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            epoch_noted: Arc::default(),
            catalogued: Arc::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, streams with new images) unless it exists, and waits
    /// until it is ACTIVE. For local stacks and tests; production tables come from infrastructure code.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let described = self.client.describe_table().table_name(&self.table).send().await;
        let exists = match described {
            Ok(out) => {
                let indexes = out
                    .table()
                    .map(|t| t.global_secondary_indexes())
                    .unwrap_or_default();
                if !indexes.iter().any(|i| i.index_name() == Some(LOG_INDEX)) {
                    self.add_log_index().await?;
                }
                true
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                false
            }
            Err(e) => return Err(StoreError::Backend(fail(e))),
        };
        if !exists {
            let key = |name: &str, kind: KeyType| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
            };
            let attr = |name: &str| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
            };
            let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Backend(e.to_string());
            let created = self
                .client
                .create_table()
                .table_name(&self.table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attr(PK).map_err(build)?)
                .attribute_definitions(attr(SK).map_err(build)?)
                .key_schema(key(PK, KeyType::Hash).map_err(build)?)
                .key_schema(key(SK, KeyType::Range).map_err(build)?)
                .attribute_definitions(string_attribute(LOG_BUCKET).map_err(build)?)
                .attribute_definitions(string_attribute(LOG_POSITION).map_err(build)?)
                .global_secondary_indexes(log_index().map_err(build)?)
                .stream_specification(
                    StreamSpecification::builder()
                        .stream_enabled(true)
                        .stream_view_type(StreamViewType::NewImage)
                        .build()
                        .map_err(build)?,
                )
                .send()
                .await;
            match created {
                Ok(_) => {}
                // Someone else created it meanwhile.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_in_use_exception()) => {}
                Err(e) => return Err(StoreError::Backend(fail(e))),
            }
        }
        for _ in 0..TABLE_ACTIVE_WAIT_SECS {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| StoreError::Backend(fail(e)))?;
            let table = described.table();
            let indexes_active = (table
                .map(|t| t.global_secondary_indexes())
                .unwrap_or_default()
                .iter())
            .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if table.and_then(|t| t.table_status()) == Some(&TableStatus::Active) && indexes_active {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Err(StoreError::NotActive {
            table: self.table.clone(),
        })
    }

    /// Adds the `log` index to a table created before it existed (local stacks; deployed tables
    /// get it from template.yaml or infra/).
    async fn add_log_index(&self) -> Result<(), StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Backend(e.to_string());
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(LOG_INDEX)
            .set_key_schema(Some(log_index().map_err(build)?.key_schema))
            .projection(log_index_projection())
            .build()
            .map_err(build)?;
        (self.client.update_table())
            .table_name(&self.table)
            .attribute_definitions(string_attribute(LOG_BUCKET).map_err(build)?)
            .attribute_definitions(string_attribute(LOG_POSITION).map_err(build)?)
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| StoreError::Backend(fail(e)))
    }

    /// Deletes the table (tests clean up with it).
    pub async fn delete_table(&self) -> Result<(), StoreError> {
        self.client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await
            .map(drop)
            .map_err(|e| StoreError::Backend(fail(e)))
    }

    /// A consistent `GetItem` of (`pk`, `sk`).
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, String> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(fail)?;
        Ok(out.item)
    }
}

type Item = HashMap<String, AttributeValue>;

fn string_attribute(name: &str) -> Result<AttributeDefinition, aws_sdk_dynamodb::error::BuildError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
}

/// The event items' time index (`log.rs`): by `log_bucket` (day and shard), then `log_position`,
/// carrying the event.
fn log_index() -> Result<GlobalSecondaryIndex, aws_sdk_dynamodb::error::BuildError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    GlobalSecondaryIndex::builder()
        .index_name(LOG_INDEX)
        .key_schema(key(LOG_BUCKET, KeyType::Hash)?)
        .key_schema(key(LOG_POSITION, KeyType::Range)?)
        .projection(log_index_projection())
        .build()
}

fn log_index_projection() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::Include)
        .non_key_attributes("event")
        .build()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        other => Err(format!("attribute {name} is not a string: {other:?}")),
    }
}

fn get_n(item: &Item, name: &str) -> Result<u64, String> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|e| format!("attribute {name} = {v}: {e}")),
        other => Err(format!("attribute {name} is not a number: {other:?}")),
    }
}

fn stream_pk(stream: &str) -> String {
    format!("stream#{stream}")
}

fn repo_pk(repo: &str) -> String {
    format!("repo#{repo}")
}

/// A tag's sort key: the lowercased tag first, for the spec's case-insensitive order.
fn tag_sk(tag: &str) -> String {
    format!("tag#{}#{tag}", tag.to_ascii_lowercase())
}

/// Where a view row lives: (pk, sk).
fn view_item_key(key: &ViewKey) -> (String, String) {
    match key {
        ViewKey::Tag { repo, tag } => (repo_pk(repo.as_str()), tag_sk(tag.as_str())),
        ViewKey::Manifest { repo, digest } => (repo_pk(repo.as_str()), format!("manifest#{digest}")),
        ViewKey::ManifestTag { repo, digest, tag } => {
            (repo_pk(repo.as_str()), format!("mtag#{digest}#{tag}"))
        }
        ViewKey::Referrer {
            repo,
            subject,
            digest,
        } => (repo_pk(repo.as_str()), format!("ref#{subject}#{digest}")),
        ViewKey::BlobLink { repo, digest } => (repo_pk(repo.as_str()), format!("blob#{digest}")),
        ViewKey::Repository { repo } => (CATALOG_PK.to_string(), repo.as_str().to_string()),
        ViewKey::Accessory {
            repo,
            subject,
            digest,
        } => (repo_pk(repo.as_str()), format!("acc#{subject}#{digest}")),
        ViewKey::AccessoryOf {
            repo,
            digest,
            subject,
        } => (repo_pk(repo.as_str()), format!("accof#{digest}#{subject}")),
        ViewKey::Verdict {
            repo,
            digest,
            subject,
        } => (repo_pk(repo.as_str()), format!("verdict#{digest}#{subject}")),
        ViewKey::BlobUser { repo, blob, manifest } => {
            (repo_pk(repo.as_str()), format!("uses#{blob}#{manifest}"))
        }
        ViewKey::IndexChild { repo, child, index } => {
            (repo_pk(repo.as_str()), format!("childof#{child}#{index}"))
        }
    }
}

fn view_value(value: &ViewValue) -> Result<Option<AttributeValue>, String> {
    Ok(match value {
        ViewValue::Digest(d) => Some(s(d.to_string())),
        ViewValue::Manifest(m) => Some(s(serde_json::to_string(m).map_err(|e| e.to_string())?)),
        ViewValue::Referrer(r) => Some(s(serde_json::to_string(r).map_err(|e| e.to_string())?)),
        ViewValue::Accessory(a) => Some(s(serde_json::to_string(a).map_err(|e| e.to_string())?)),
        ViewValue::Verdict(v) => Some(s(serde_json::to_string(v).map_err(|e| e.to_string())?)),
        ViewValue::Size(size) => Some(n(*size)),
        ViewValue::Unit => None,
    })
}

/// One write of a transaction, with its approximate size for the service limits.
struct Write {
    item: TransactWriteItem,
    bytes: usize,
}

/// The billed size of an attribute value as DynamoDB counts it (close enough for the limit checks).
fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(v) => v.len(),
        AttributeValue::N(v) => v.len() / 2 + 2,
        _ => 8,
    }
}

fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

/// A `Put` of `item` with an optional condition (`expression`, its values).
fn put_write(table: &str, item: Item, condition: Option<(&str, Item)>) -> Result<Write, String> {
    let bytes = item_bytes(&item);
    if bytes > MAX_ITEM_BYTES {
        return Err(format!(
            "an item of {bytes} bytes exceeds DynamoDB's item limit (MAX_ITEM_BYTES = {MAX_ITEM_BYTES})"
        ));
    }
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expression, values)) = condition {
        put = put
            .condition_expression(expression)
            .set_expression_attribute_values((!values.is_empty()).then_some(values));
    }
    let put = put.build().map_err(|e| e.to_string())?;
    Ok(Write {
        item: TransactWriteItem::builder().put(put).build(),
        bytes,
    })
}

/// A condition on an item the transaction does not write (the head of a stream only read).
fn check_write(table: &str, key: Item, condition: (&str, Item)) -> Result<Write, String> {
    let bytes = item_bytes(&key);
    let (expression, values) = condition;
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(expression)
        .set_expression_attribute_values((!values.is_empty()).then_some(values))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Write {
        item: TransactWriteItem::builder().condition_check(check).build(),
        bytes,
    })
}

fn delete_write(table: &str, pk: String, sk: String) -> Result<Write, String> {
    let bytes = PK.len() + pk.len() + SK.len() + sk.len();
    let delete = Delete::builder()
        .table_name(table)
        .key(PK, s(pk))
        .key(SK, s(sk))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Write {
        item: TransactWriteItem::builder().delete(delete).build(),
        bytes,
    })
}

/// The writes of `ops`, one per item: DynamoDB rejects two actions on one item in a transaction, so
/// ops on the same key merge, the last one winning (a put then a delete is a delete, and so on).
fn view_writes(table: &str, ops: &[ViewOp]) -> Result<Vec<Write>, String> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut last: HashMap<(String, String), Option<Option<AttributeValue>>> = HashMap::new();
    for op in ops {
        let (key, value) = match op {
            ViewOp::Put(k, v) => (k, Some(view_value(v)?)),
            ViewOp::Delete(k) => (k, None),
        };
        let item_key = view_item_key(key);
        if last.insert(item_key.clone(), value).is_none() {
            order.push(item_key);
        }
    }
    let mut writes = Vec::with_capacity(order.len());
    for (pk, sk) in order {
        let value = last.remove(&(pk.clone(), sk.clone())).flatten();
        writes.push(match value {
            Some(v) => {
                let mut item = Item::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))]);
                if let Some(v) = v {
                    item.insert(VALUE.to_string(), v);
                }
                put_write(table, item, None)?
            }
            None => delete_write(table, pk, sk)?,
        });
    }
    Ok(writes)
}

/// Checks a transaction against the service limits before sending it.
fn check_limits(writes: &[Write]) -> Result<(), String> {
    if writes.len() > MAX_TRANSACT_ITEMS {
        return Err(format!(
            "the append needs {} item writes in one transaction, over DynamoDB's limit \
             (MAX_TRANSACT_ITEMS = {MAX_TRANSACT_ITEMS}): append fewer events at once",
            writes.len()
        ));
    }
    let bytes: usize = writes.iter().map(|w| w.bytes).sum();
    if bytes > MAX_TRANSACT_BYTES {
        return Err(format!(
            "the append writes {bytes} bytes in one transaction, over DynamoDB's limit \
             (MAX_TRANSACT_BYTES = {MAX_TRANSACT_BYTES}): append fewer events at once"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RepoName;

    fn repo() -> RepoName {
        "merge/test".parse().unwrap_or_else(|_| unreachable!())
    }

    fn kinds(writes: &[Write]) -> Vec<&'static str> {
        writes
            .iter()
            .map(|w| if w.item.put().is_some() { "put" } else { "delete" })
            .collect()
    }

    #[test]
    fn ops_on_one_item_merge_into_the_last_one() {
        let blob = |size| {
            let digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
            ViewOp::Put(
                ViewKey::BlobLink {
                    repo: repo(),
                    digest: digest.parse().unwrap_or_else(|_| unreachable!()),
                },
                ViewValue::Size(size),
            )
        };
        let catalog = ViewKey::Repository { repo: repo() };
        let ops = vec![
            ViewOp::Put(catalog.clone(), ViewValue::Unit),
            blob(1),
            ViewOp::Delete(catalog.clone()),
            blob(2),
        ];
        let writes = view_writes("t", &ops).unwrap_or_default();
        assert_eq!(kinds(&writes), ["delete", "put"]);
        let size = writes[1].item.put().and_then(|p| p.item().get(VALUE)).cloned();
        assert_eq!(size, Some(n(2)));
    }
}
