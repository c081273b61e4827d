//! DynamoDB Streams records of the Berth table → the log's events, in stream order.
//!
//! Only INSERTs of event items are events: `pk = "stream#<stream>"`, `sk = "v#<20-digit version>"`,
//! attribute `event` (S) = the `RecordedEvent` JSON (the table design is in
//! `berth::adapters::dynamodb`). Every other change of the table (stream heads, views, checkpoints,
//! the log's epoch, items of the legacy `log` partition) is skipped. An event item that does not
//! decode is skipped with a warning: retrying cannot repair it, and failing the batch on it would
//! stop the stream for good. DynamoDB Streams keeps the order of each item key's changes, and a
//! stream's events are items of one partition key written in version order: each stream's events
//! arrive in order; different streams' may arrive in parallel batches (see `Projector::deliver`).

use aws_lambda_events::event::dynamodb::EventRecord;
use berth::domain::{LogPosition, RecordedEvent};
use serde_json::Value;

const INSERT: &str = "INSERT";
const STREAM_PREFIX: &str = "stream#";
const VERSION_PREFIX: &str = "v#";

/// The events of a batch, each with the stream position of its record (the `SequenceNumber` that a
/// batch item failure names).
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<RecordedEvent>,
    positions: Vec<Option<String>>,
}

impl Batch {
    pub fn from_records(records: &[EventRecord]) -> Batch {
        let mut batch = Batch::default();
        for record in records {
            match decode(record) {
                Ok(Some(event)) => {
                    batch.events.push(event);
                    batch.positions.push(record.change.sequence_number.clone());
                }
                Ok(None) => {}
                Err(why) => tracing::warn!(
                    event_id = record.event_id,
                    sequence_number = record.change.sequence_number.as_deref().unwrap_or("-"),
                    "skipping a malformed log record: {why}"
                ),
            }
        }
        batch
    }

    /// The change stream's sequence number of the record that carried the event at `position`.
    pub fn position_of(&self, position: &LogPosition) -> Option<&str> {
        let index = self.events.iter().position(|e| e.position == *position)?;
        self.positions.get(index)?.as_deref()
    }
}

/// The string attribute `name` of an item as the stream delivers it (`{"name": {"S": "…"}}`).
fn string_attribute(item: &Value, name: &str) -> Option<String> {
    item.get(name)?.get("S")?.as_str().map(str::to_string)
}

/// The record's event; `None` when the record is no log event, `Err` when it is one but malformed.
fn decode(record: &EventRecord) -> Result<Option<RecordedEvent>, String> {
    if record.event_name != INSERT {
        return Ok(None);
    }
    let image = serde_json::to_value(&record.change.new_image).map_err(|e| e.to_string())?;
    let (Some(pk), Some(sk)) = (string_attribute(&image, "pk"), string_attribute(&image, "sk")) else {
        return Ok(None);
    };
    let (Some(stream), Some(digits)) = (pk.strip_prefix(STREAM_PREFIX), sk.strip_prefix(VERSION_PREFIX))
    else {
        return Ok(None);
    };
    let item = format!("{pk} / {sk}");
    let version: u64 =
        (digits.parse()).map_err(|_| format!("event item {item}: no version in the sort key"))?;
    let json = string_attribute(&image, "event").ok_or_else(|| {
        format!("event item {item} has no string attribute `event` (is the stream's view type NEW_IMAGE?)")
    })?;
    let event: RecordedEvent = serde_json::from_str(&json)
        .map_err(|e| format!("event item {item}: `event` is no RecordedEvent: {e}"))?;
    if event.stream.as_str() != stream || event.version != version {
        return Err(format!(
            "event item {item} holds event {} of {}",
            event.version, event.stream
        ));
    }
    Ok(Some(event))
}

/// The `sequence`-th event of the log (version `sequence` of the stream `repository/library/app`),
/// for the tests of this crate.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn sample_event(sequence: u64) -> RecordedEvent {
    let repository: berth::domain::RepoName = "library/app".parse().unwrap();
    RecordedEvent {
        position: LogPosition::sequence(sequence),
        stream: berth::domain::StreamId::repository(&repository),
        version: sequence,
        envelope: berth::domain::EventEnvelope {
            id: format!("0190-{sequence}"),
            time: "2024-05-01T12:34:56.789Z".parse().unwrap(),
            principal: "anonymous".into(),
            event: berth::domain::Event::TagDeleted {
                repository,
                tag: "v1".parse().unwrap(),
                digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                    .parse()
                    .unwrap(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_lambda_events::event::dynamodb::Event;
    use serde_json::json;

    fn event_json(sequence: u64) -> String {
        serde_json::to_string(&sample_event(sequence)).unwrap()
    }

    /// A record as Lambda delivers it: `position` is the stream's SequenceNumber.
    fn record(name: &str, position: &str, image: Value) -> Value {
        json!({
            "eventID": format!("id-{position}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/berth/stream/2024-05-01T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1714566896.0,
                "Keys": {"pk": image["pk"].clone(), "sk": image["sk"].clone()},
                "NewImage": image,
                "SequenceNumber": position,
                "SizeBytes": 512,
                "StreamViewType": "NEW_IMAGE"
            }
        })
    }

    /// The event item of version `version` of the sample events' stream, holding `event`.
    fn event_item(version: &str, event: &str) -> Value {
        json!({"pk": {"S": "stream#repository/library/app"}, "sk": {"S": format!("v#{version}")}, "event": {"S": event}})
    }

    fn at(sequence: u64) -> LogPosition {
        LogPosition::sequence(sequence)
    }

    fn batch(records: Vec<Value>) -> Batch {
        let event: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
        Batch::from_records(&event.records)
    }

    fn sequences(batch: &Batch) -> Vec<u64> {
        batch
            .events
            .iter()
            .map(|e| e.position.as_sequence().unwrap())
            .collect()
    }

    #[test]
    fn inserted_event_items_decode_into_their_events_with_their_change_stream_positions() {
        let b = batch(vec![
            record(
                "INSERT",
                "100",
                event_item("00000000000000000001", &event_json(1)),
            ),
            record(
                "INSERT",
                "200",
                event_item("00000000000000000002", &event_json(2)),
            ),
        ]);
        assert_eq!(sequences(&b), [1, 2]);
        assert_eq!(b.events[1].envelope.id, "0190-2");
        assert_eq!(
            (
                b.position_of(&at(1)),
                b.position_of(&at(2)),
                b.position_of(&at(3))
            ),
            (Some("100"), Some("200"), None)
        );
    }

    #[test]
    fn changes_that_are_no_event_insert_are_skipped() {
        // The counter and log items of tables written before the upgrade, too.
        let counter = json!({"pk": {"S": "log"}, "sk": {"S": "head"}, "n": {"N": "2"}});
        let legacy = json!({"pk": {"S": "log"}, "sk": {"S": "seq#00000000000000000009"}, "event": {"S": event_json(9)}});
        let head =
            json!({"pk": {"S": "stream#repository/library/app"}, "sk": {"S": "head"}, "version": {"N": "2"}});
        let tag = json!({"pk": {"S": "repo#library/app"}, "sk": {"S": "tag#v1#v1"}, "v": {"S": "sha256:00"}});
        let checkpoint = json!({"pk": {"S": "checkpoint"}, "sk": {"S": "audit"}, "seq": {"N": "1"}});
        let b = batch(vec![
            record("MODIFY", "1", counter),
            record("INSERT", "2", head),
            record("INSERT", "3", tag),
            record("INSERT", "4", checkpoint),
            record("INSERT", "4.5", legacy),
            record("MODIFY", "5", event_item("00000000000000000001", &event_json(1))),
            record("REMOVE", "6", event_item("00000000000000000001", &event_json(1))),
            record("INSERT", "7", event_item("00000000000000000003", &event_json(3))),
        ]);
        assert_eq!(sequences(&b), [3]);
        assert_eq!(b.position_of(&at(3)), Some("7"));
    }

    #[test]
    fn malformed_event_items_are_skipped_and_the_rest_kept() {
        let b = batch(vec![
            record("INSERT", "1", event_item("00000000000000000001", "{not json")),
            record("INSERT", "2", event_item("00000000000000000002", &event_json(9))),
            record("INSERT", "3", event_item("twenty", &event_json(3))),
            record(
                "INSERT",
                "4",
                json!({"pk": {"S": "stream#repository/library/app"}, "sk": {"S": "v#00000000000000000004"}}),
            ),
            record(
                "INSERT",
                "5",
                json!({"pk": {"S": "stream#repository/library/app"}, "sk": {"S": "v#00000000000000000005"}, "event": {"N": "5"}}),
            ),
            record("INSERT", "6", event_item("00000000000000000006", &event_json(6))),
        ]);
        assert_eq!(sequences(&b), [6]);
    }

    #[test]
    fn a_record_without_a_new_image_is_skipped() {
        let mut r = record("INSERT", "1", event_item("00000000000000000001", &event_json(1)));
        r["dynamodb"].as_object_mut().unwrap().remove("NewImage");
        assert_eq!(sequences(&batch(vec![r])), Vec::<u64>::new());
    }
}
