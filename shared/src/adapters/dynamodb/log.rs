//! `EventLog` on DynamoDB: the version check, the sequence numbers, the events (in the log and in
//! their stream) and the inline projection in one `TransactWriteItems`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use crate::domain::projection::{ops_for, ViewOp};
use crate::domain::{RecordedEvent, StreamId};
use crate::ports::event_log::check_appends;
use crate::ports::{EventLog, LogError, StreamAppend, Version};

use super::{
    check_limits, check_write, fail, get_n, get_s, n, put_write, s, stream_pk, view_writes, DynamoStore,
    Item, Write, HEAD, LOG_PK, MAX_PAGE_ROWS, MAX_TRANSACT_ITEMS, PK, SK,
};

/// How often an append retries after losing the race for the log counter to another stream (or a
/// `TransactionConflict`) before it gives up.
const MAX_APPEND_ATTEMPTS: u32 = 100;
/// The longest pause between two attempts, in milliseconds (the pause is random below it).
const MAX_BACKOFF_MS: u128 = 50;
const VERSION: &str = "version";
const COUNTER: &str = "n";
const EVENT: &str = "event";
/// The sort key of the last possible event: `seq#` and 20 digits hold any u64.
const LAST_EVENT_SK: &str = "seq#99999999999999999999";
/// The sort key of the last possible event of a stream: `v#` and 20 digits hold any u64.
const LAST_STREAM_EVENT_SK: &str = "v#99999999999999999999";

/// A log item's sort key (under `log`).
fn event_sk(sequence: u64) -> String {
    format!("seq#{sequence:020}")
}

/// A stream item's sort key (under `stream#<stream>`, beside the head).
fn stream_event_sk(version: Version) -> String {
    format!("v#{version:020}")
}

/// What one attempt of an append came to.
enum Attempt {
    Done(Vec<RecordedEvent>),
    /// The head condition of `appends[.0]` failed.
    Conflict(usize),
    /// Only the counter's condition failed, or DynamoDB saw a concurrent transaction: try again.
    Retry,
}

fn backend(e: impl Into<String>) -> LogError {
    LogError::Backend(e.into())
}

impl DynamoStore {
    async fn last_sequence(&self) -> Result<u64, String> {
        match self.get(LOG_PK, HEAD).await? {
            Some(item) => get_n(&item, COUNTER),
            None => Ok(0),
        }
    }

    async fn try_append(&self, appends: &[StreamAppend]) -> Result<Attempt, String> {
        let last = self.last_sequence().await?;
        let mut recorded: Vec<RecordedEvent> = Vec::new();
        for append in appends {
            let first = last + recorded.len() as u64;
            recorded.extend(
                append
                    .events
                    .iter()
                    .zip(1u64..)
                    .map(|(envelope, i)| RecordedEvent {
                        sequence: first + i,
                        stream: append.stream.clone(),
                        version: append.expected + i,
                        envelope: envelope.clone(),
                    }),
            );
        }
        let new_last = last + recorded.len() as u64;

        let key = |pk: String, sk: &str| Item::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))]);
        // The heads first (a put for a stream that grows, a check for one that is only read), in
        // the order given, and the counter after them: cancellation reasons come in this order.
        let mut writes: Vec<Write> = Vec::new();
        for append in appends {
            let condition = if append.expected == 0 {
                ("attribute_not_exists(pk)", Item::new())
            } else {
                (
                    "version = :expected",
                    Item::from([(":expected".to_string(), n(append.expected))]),
                )
            };
            let head = key(stream_pk(append.stream.as_str()), HEAD);
            if append.events.is_empty() {
                writes.push(check_write(&self.table, head, condition)?);
            } else {
                let mut head = head;
                head.insert(
                    VERSION.to_string(),
                    n(append.expected + append.events.len() as u64),
                );
                writes.push(put_write(&self.table, head, Some(condition))?);
            }
        }
        let mut counter = key(LOG_PK.to_string(), HEAD);
        counter.insert(COUNTER.to_string(), n(new_last));
        let counter_condition = if last == 0 {
            ("attribute_not_exists(pk)", Item::new())
        } else {
            ("n = :last", Item::from([(":last".to_string(), n(last))]))
        };
        writes.push(put_write(&self.table, counter, Some(counter_condition))?);
        for event in &recorded {
            let json = serde_json::to_string(event).map_err(|e| e.to_string())?;
            let mut in_log = key(LOG_PK.to_string(), &event_sk(event.sequence));
            in_log.insert(EVENT.to_string(), s(json.clone()));
            writes.push(put_write(&self.table, in_log, None)?);
            let mut in_stream = key(stream_pk(event.stream.as_str()), &stream_event_sk(event.version));
            in_stream.insert(EVENT.to_string(), s(json));
            writes.push(put_write(&self.table, in_stream, None)?);
        }
        let ops: Vec<_> = recorded.iter().flat_map(ops_for).collect();
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
            Ok(_) => Ok(Attempt::Done(recorded)),
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
                    } else if codes.get(appends.len()) == Some(&"ConditionalCheckFailed")
                        || codes.contains(&"TransactionConflict")
                    {
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
        for _ in 0..MAX_APPEND_ATTEMPTS {
            match self.try_append(&appends).await.map_err(backend)? {
                Attempt::Done(recorded) => return Ok(recorded),
                Attempt::Conflict(i) => {
                    let StreamAppend { stream, expected, .. } = &appends[i];
                    let actual = self.stream_version(stream).await?;
                    // Versions only grow, so a failed check means `actual` differs; if it does not,
                    // the failure raced with something odd: try again.
                    if actual != *expected {
                        return Err(LogError::Conflict {
                            stream: stream.clone(),
                            expected: *expected,
                            actual,
                        });
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
             lost to concurrent appends",
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

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(vec![]);
        };
        self.query_events(LOG_PK.to_string(), event_sk(first), LAST_EVENT_SK, limit)
            .await
            .map_err(backend)
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
