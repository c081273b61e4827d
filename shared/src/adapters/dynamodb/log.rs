//! `EventLog` on DynamoDB: the version checks, the events (in their stream's partition, indexed by
//! time for readers of everything) and the inline projection in one `TransactWriteItems`, with no
//! item that every append touches (docs/log-scale-out.md, "No global counter").
//!
//! Each event item carries `log_bucket = log#<yyyymmdd>#<shard>` (the commit day and the first hex
//! digit of its stream's hash: 16 shards a day, so no index partition takes more than a sixteenth of
//! a day's appends) and `log_position` (its [`LogPosition`]), the keys of the `log` index that
//! `read_all` merges. A stream's head keeps the time of its last commit (`last_at`) and an append
//! commits only at that time or later, so a stream's positions grow with its versions even when
//! two writers' clocks disagree.
//!
//! Tables written before (events numbered by the `log/head` counter, each copied under
//! `log / seq#<sequence>`) need no migration: those events keep their sequence positions, which
//! sort before every timed one, and `read_all` reads that partition first; nothing writes it any more.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;

use crate::domain::position::stream_hash;
use crate::domain::projection::{ops_for, ViewKey, ViewOp};
use crate::domain::RepoName;
use crate::domain::{LogPosition, RecordedEvent, StreamId};
use crate::ports::event_log::check_appends;
use crate::ports::{EventLog, LogError, StreamAppend, Version};

use super::{
    check_limits, check_write, fail, get_n, get_s, n, put_write, s, stream_pk, view_writes, DynamoStore,
    Item, Write, HEAD, LOG_BUCKET, LOG_INDEX, LOG_PK, LOG_POSITION, MAX_PAGE_ROWS, MAX_TRANSACT_ITEMS, PK,
    SK,
};

/// How often an append retries after a `TransactionConflict` (another transaction on one of its
/// items at the same moment) or a stream head ahead of this host's clock, before it gives up.
const MAX_APPEND_ATTEMPTS: u32 = 100;
/// The longest pause between two attempts, in milliseconds (the pause is random below it).
const MAX_BACKOFF_MS: u128 = 50;
const VERSION: &str = "version";
/// The head's time of the stream's last commit (milliseconds since the Unix epoch).
const AT: &str = "last_at";
const EVENT: &str = "event";
/// Under `log`: the first day the log's index holds (`day`, N as yyyymmdd), where `read_all` from
/// the start begins.
const EPOCH_SK: &str = "epoch";
const DAY: &str = "day";
/// Repositories a store remembers as catalogued before it starts over (memory: ~100 bytes each).
const MAX_CATALOGUED: usize = 100_000;
/// Shards of a day in the `log` index (the first hex digit of a stream's hash).
const SHARDS: u64 = 16;
/// Days `read_all` looks beyond today, for hosts whose clocks run ahead.
const DAYS_AHEAD: i64 = 1;
/// The sort key of the last possible event of the legacy `log` partition.
const LAST_LEGACY_SK: &str = "seq#99999999999999999999";
/// The sort key of the last possible event of a stream: `v#` and 20 digits hold any u64.
const LAST_STREAM_EVENT_SK: &str = "v#99999999999999999999";

/// A stream item's sort key (under `stream#<stream>`, beside the head).
fn stream_event_sk(version: Version) -> String {
    format!("v#{version:020}")
}

/// A legacy log item's sort key (under `log`).
fn legacy_event_sk(sequence: u64) -> String {
    format!("seq#{sequence:020}")
}

/// The day of `millis` as yyyymmdd.
fn day_of(millis: u64) -> u32 {
    let time = DateTime::<Utc>::from_timestamp_millis(millis as i64).unwrap_or_default();
    time.format("%Y%m%d").to_string().parse().unwrap_or(0)
}

/// The `log` index partition of `stream`'s events on `day`.
fn log_bucket(day: u32, stream: &StreamId) -> String {
    format!("log#{day}#{:x}", stream_hash(stream) >> 60)
}

fn now_millis() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

/// What one attempt of an append came to.
enum Attempt {
    Done(Vec<RecordedEvent>),
    /// The head condition of `appends[.0]` failed.
    Conflict(usize),
    /// DynamoDB saw a concurrent transaction on one of the items: try again.
    Retry,
}

fn backend(e: impl Into<String>) -> LogError {
    LogError::Backend(e.into())
}

impl DynamoStore {
    /// Records the day before `millis`'s as the index's first unless an earlier one is recorded,
    /// once per store (concurrent first appends wait for one write): later appends are later, up to
    /// clock differences of less than a day.
    async fn note_epoch(&self, millis: u64) -> Result<(), String> {
        let once = self.epoch_noted.clone();
        once.get_or_try_init(|| self.write_epoch(millis)).await.map(drop)
    }

    async fn write_epoch(&self, millis: u64) -> Result<(), String> {
        let updated = (self.client.update_item())
            .table_name(&self.table)
            .key(PK, s(LOG_PK))
            .key(SK, s(EPOCH_SK))
            .update_expression("SET #day = :day")
            .condition_expression("attribute_not_exists(#day) OR #day > :day")
            .expression_attribute_names("#day", DAY)
            .expression_attribute_values(":day", n(u64::from(day_of(millis).saturating_sub(1))))
            .send()
            .await;
        match updated {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(fail(e)),
        }
        Ok(())
    }

    /// The first day of the `log` index, if anything was ever appended to it.
    async fn epoch(&self) -> Result<Option<u32>, String> {
        match self.get(LOG_PK, EPOCH_SK).await? {
            Some(item) => Ok(Some(get_n(&item, DAY)? as u32)),
            None => Ok(None),
        }
    }

    /// Appends at `millis` (or fails on the first head that is ahead of it).
    async fn try_append(&self, appends: &[StreamAppend], millis: u64) -> Result<Attempt, String> {
        let day = day_of(millis);
        let mut recorded: Vec<RecordedEvent> = Vec::new();
        for append in appends {
            recorded.extend(
                append
                    .events
                    .iter()
                    .zip(1u64..)
                    .map(|(envelope, i)| RecordedEvent {
                        position: LogPosition::timed(millis, &append.stream, append.expected + i),
                        stream: append.stream.clone(),
                        version: append.expected + i,
                        envelope: envelope.clone(),
                    }),
            );
        }

        let key = |pk: String, sk: &str| Item::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))]);
        // The heads first, in the order given: cancellation reasons come in this order.
        let mut writes: Vec<Write> = Vec::new();
        for append in appends {
            let head = key(stream_pk(append.stream.as_str()), HEAD);
            if append.events.is_empty() {
                let condition = match append.expected {
                    0 => ("attribute_not_exists(pk)", Item::new()),
                    v => (
                        "version = :expected",
                        Item::from([(":expected".to_string(), n(v))]),
                    ),
                };
                writes.push(check_write(&self.table, head, condition)?);
                continue;
            }
            let condition = match append.expected {
                0 => ("attribute_not_exists(pk)", Item::new()),
                v => (
                    "version = :expected AND (attribute_not_exists(last_at) OR last_at <= :at)",
                    Item::from([(":expected".to_string(), n(v)), (":at".to_string(), n(millis))]),
                ),
            };
            let mut head = head;
            head.insert(
                VERSION.to_string(),
                n(append.expected + append.events.len() as u64),
            );
            head.insert(AT.to_string(), n(millis));
            writes.push(put_write(&self.table, head, Some(condition))?);
        }
        for event in &recorded {
            let json = serde_json::to_string(event).map_err(|e| e.to_string())?;
            let mut item = key(stream_pk(event.stream.as_str()), &stream_event_sk(event.version));
            item.insert(EVENT.to_string(), s(json));
            item.insert(LOG_BUCKET.to_string(), s(log_bucket(day, &event.stream)));
            item.insert(LOG_POSITION.to_string(), s(event.position.as_str()));
            writes.push(put_write(&self.table, item, None)?);
        }
        let (ops, catalogued) = self.skip_catalogued(recorded.iter().flat_map(ops_for).collect());
        let views = view_writes(&self.table, &ops)?;
        if writes.len() + views.len() > MAX_TRANSACT_ITEMS {
            // A manifest with many layers: its content facts go first, outside the transaction.
            let (facts, rest): (Vec<_>, Vec<_>) =
                (ops.into_iter()).partition(|op| matches!(op, ViewOp::Put(k, _) if k.is_content_fact()));
            self.write_batches(view_writes(&self.table, &facts)?).await?;
            writes.extend(view_writes(&self.table, &rest)?);
        } else {
            writes.extend(views);
        }
        check_limits(&writes)?;

        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes.into_iter().map(|w| w.item).collect()))
            // Makes the SDK's own retries of this call idempotent.
            .client_request_token(uuid::Uuid::new_v4().to_string())
            .send()
            .await;
        match sent {
            Ok(_) => {
                self.note_catalogued(catalogued);
                Ok(Attempt::Done(recorded))
            }
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let codes: Vec<&str> = cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    let heads = &codes[..appends.len().min(codes.len())];
                    if let Some(i) = heads.iter().position(|c| *c == "ConditionalCheckFailed") {
                        Ok(Attempt::Conflict(i))
                    } else if codes.contains(&"TransactionConflict") {
                        Ok(Attempt::Retry)
                    } else {
                        Err(format!(
                            "transaction cancelled ({}): {}",
                            codes.join(", "),
                            fail(e)
                        ))
                    }
                }
                _ => Err(fail(e)),
            },
        }
    }

    /// `ops` without the puts of catalog rows this store knows exist, and the repositories whose
    /// rows it puts. Every event of a repository puts its catalog row (an idempotent put that nothing
    /// deletes: `ops_for`); written each time, the single `catalog` partition would take a write
    /// per event of every repository. Skipped when known, a repository's row is written about once
    /// per process (the first append of each), and the views stay what a replay writes.
    fn skip_catalogued(&self, ops: Vec<ViewOp>) -> (Vec<ViewOp>, Vec<RepoName>) {
        let known = self.catalogued.lock().unwrap_or_else(|e| e.into_inner());
        let mut written = Vec::new();
        let ops = (ops.into_iter())
            .filter(|op| match op {
                ViewOp::Put(ViewKey::Repository { repo }, _) if known.contains(repo) => false,
                ViewOp::Put(ViewKey::Repository { repo }, _) => {
                    written.push(repo.clone());
                    true
                }
                _ => true,
            })
            .collect();
        (ops, written)
    }

    fn note_catalogued(&self, repos: Vec<RepoName>) {
        let mut known = self.catalogued.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() + repos.len() > MAX_CATALOGUED {
            known.clear();
        }
        known.extend(repos);
    }

    /// A stream's head: its version and the time of its last commit.
    async fn head(&self, stream: &StreamId) -> Result<(Version, u64), String> {
        match self.get(&stream_pk(stream.as_str()), HEAD).await? {
            Some(item) => Ok((get_n(&item, VERSION)?, get_n(&item, AT).unwrap_or(0))),
            None => Ok((0, 0)),
        }
    }

    /// Up to `limit` events of the `log` index partition `bucket` after `after`, in position order
    /// (an eventually consistent `Query`: global indexes have no other kind).
    async fn query_bucket(
        &self,
        bucket: String,
        after: &LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, String> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let mut query = (self.client.query())
                .table_name(&self.table)
                .index_name(LOG_INDEX)
                .expression_attribute_names("#bucket", LOG_BUCKET)
                .expression_attribute_values(":bucket", s(bucket.as_str()))
                .limit((limit - out.len()).min(MAX_PAGE_ROWS as usize) as i32)
                .set_exclusive_start_key(start.take());
            query = if after.is_start() {
                query.key_condition_expression("#bucket = :bucket")
            } else {
                (query.key_condition_expression("#bucket = :bucket AND #position > :after"))
                    .expression_attribute_names("#position", LOG_POSITION)
                    .expression_attribute_values(":after", s(after.as_str()))
            };
            let page = query.send().await.map_err(fail)?;
            for item in page.items() {
                out.push(serde_json::from_str(get_s(item, EVENT)?).map_err(|e| e.to_string())?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Up to `limit` events of the `log` index after `after`: day by day from the day of `after`
    /// (or the index's first), the 16 shards of a day queried at once and merged.
    async fn read_index(&self, after: &LogPosition, limit: usize) -> Result<Vec<RecordedEvent>, String> {
        let first = match after.millis() {
            Some(millis) => day_of(millis),
            None => match self.epoch().await? {
                Some(day) => day,
                None => return Ok(vec![]),
            },
        };
        let last = day_of((Utc::now() + chrono::Duration::days(DAYS_AHEAD)).timestamp_millis() as u64);
        let mut out = Vec::new();
        let mut day = chrono::NaiveDate::parse_from_str(&first.to_string(), "%Y%m%d")
            .map_err(|e| format!("log epoch {first}: {e}"))?;
        while out.len() < limit {
            let yyyymmdd: u32 = day.format("%Y%m%d").to_string().parse().unwrap_or(u32::MAX);
            if yyyymmdd > last {
                break;
            }
            let want = limit - out.len();
            let shards =
                (0..SHARDS).map(|shard| self.query_bucket(format!("log#{yyyymmdd}#{shard:x}"), after, want));
            let mut events: Vec<RecordedEvent> = try_join_all(shards).await?.into_iter().flatten().collect();
            events.sort_by(|a, b| a.position.cmp(&b.position));
            events.truncate(want);
            out.extend(events);
            day = day.succ_opt().ok_or("the log's days ran past the calendar")?;
        }
        Ok(out)
    }

    /// Up to `limit` events stored under `pk` with a sort key in `first..=last`, in key order: a
    /// strongly consistent `Query`, paged.
    async fn query_events(
        &self,
        pk: String,
        first: String,
        last: &str,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, String> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
                .expression_attribute_values(":pk", s(pk.as_str()))
                .expression_attribute_values(":first", s(first.as_str()))
                .expression_attribute_values(":last", s(last))
                .limit((limit - out.len()).min(MAX_PAGE_ROWS as usize) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(fail)?;
            for item in page.items() {
                let json = get_s(item, EVENT)?;
                out.push(serde_json::from_str(json).map_err(|e| e.to_string())?);
            }
            match page.last_evaluated_key {
                Some(key) if out.len() < limit && !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn append_atomic(&self, appends: Vec<StreamAppend>) -> Result<Vec<RecordedEvent>, LogError> {
        check_appends(&appends)?;
        if appends.iter().all(|a| a.events.is_empty()) {
            return Ok(vec![]);
        }
        // The commit time: this host's clock, or later where a stream's head says it committed later.
        let mut floor = 0;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let millis = now_millis().max(floor);
            self.note_epoch(millis).await.map_err(backend)?;
            match self.try_append(&appends, millis).await.map_err(backend)? {
                Attempt::Done(recorded) => return Ok(recorded),
                Attempt::Conflict(i) => {
                    let StreamAppend { stream, expected, .. } = &appends[i];
                    let (actual, at) = self.head(stream).await.map_err(backend)?;
                    if actual != *expected {
                        return Err(LogError::Conflict {
                            stream: stream.clone(),
                            expected: *expected,
                            actual,
                        });
                    }
                    // The version is right, so the stream's last commit is ahead of this clock:
                    // commit at its time (no pause needed).
                    if at > millis {
                        floor = at;
                        continue;
                    }
                }
                Attempt::Retry => {}
            }
            let pause = uuid::Uuid::new_v4().as_u128() % MAX_BACKOFF_MS;
            tokio::time::sleep(Duration::from_millis(pause as u64)).await;
        }
        let streams: Vec<&str> = appends.iter().map(|a| a.stream.as_str()).collect();
        Err(backend(format!(
            "append to {} gave up after {MAX_APPEND_ATTEMPTS} attempts (MAX_APPEND_ATTEMPTS) \
             lost to concurrent transactions",
            streams.join(", ")
        )))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Version, LogError> {
        let head = self
            .get(&stream_pk(stream.as_str()), HEAD)
            .await
            .map_err(backend)?;
        head.map_or(Ok(0), |item| get_n(&item, VERSION)).map_err(backend)
    }

    async fn read_all(&self, after: &LogPosition, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // Events numbered before the upgrade first (their positions sort before every timed one).
        let legacy_after = match after.as_sequence() {
            Some(sequence) => Some(sequence),
            None if after.is_start() => Some(0),
            None => None,
        };
        if let Some(sequence) = legacy_after.and_then(|s| s.checked_add(1)) {
            out = (self.query_events(
                LOG_PK.to_string(),
                legacy_event_sk(sequence),
                LAST_LEGACY_SK,
                limit,
            ))
            .await
            .map_err(backend)?;
        }
        if out.len() < limit {
            let after = out.last().map_or(after, |e| &e.position).clone();
            out.extend(
                self.read_index(&after, limit - out.len())
                    .await
                    .map_err(backend)?,
            );
        }
        Ok(out)
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        after: Version,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(vec![]);
        };
        self.query_events(
            stream_pk(stream.as_str()),
            stream_event_sk(first),
            LAST_STREAM_EVENT_SK,
            limit,
        )
        .await
        .map_err(backend)
    }
}
