//! One invocation: a batch of stream records in, the log events among them delivered to every
//! subscription (`berth::app::Subscriptions`), and a partial batch failure naming the record to
//! retry from when a subscription could not handle an event (the event source mapping needs
//! `FunctionResponseTypes: [ReportBatchItemFailures]`). A subscription still replaying the log spends
//! the invocation's time, up to `replay_deadline`, on its replay.

use std::time::Instant;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use berth::app::Subscriptions;

use crate::records::Batch;

pub async fn handle(
    subscriptions: &Subscriptions,
    event: Event,
    replay_deadline: Instant,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    let batch = Batch::from_records(&event.records);
    let mut response = DynamoDbEventResponse::default();
    let delivered = subscriptions.deliver(&batch.events, replay_deadline).await;
    tracing::info!(
        records = event.records.len(),
        events = batch.events.len(),
        subscriptions = delivered.outcomes.len(),
        "batch delivered"
    );
    if let Some(failure) = delivered.failure {
        tracing::warn!(
            published = failure.published,
            "{failure}; asking for a retry from event {}",
            failure.position
        );
        // Without a position to name, fail the whole batch: it is retried (handlers are
        // idempotent, so what was delivered already is delivered again harmlessly).
        let position = batch.position_of(&failure.position).ok_or(failure.clone())?;
        let mut item = DynamoDbBatchItemFailure::default();
        item.item_identifier = Some(position.to_string());
        response.batch_item_failures.push(item);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use async_trait::async_trait;
    use berth::adapters::embedded::RedbStore;
    use berth::app::Projector;
    use berth::domain::{LogPosition, RecordedEvent};
    use berth::ports::{Checkpoints, EventSink, ProjectionError};
    use serde_json::json;

    use super::*;

    /// Publishes everything but the event `failing`.
    struct Sink {
        failing: u64,
    }

    #[async_trait]
    impl EventSink for Sink {
        async fn publish(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
            match event.position.as_sequence() == Some(self.failing) {
                true => Err(ProjectionError::Sink("the bucket is away".into())),
                false => Ok(()),
            }
        }
    }

    /// Subscriptions named after `failing` (each fails on that event), live from the start, over
    /// an embedded store (the log and the checkpoints).
    async fn subscriptions(failing: &[u64]) -> (Subscriptions, Arc<RedbStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("berth.redb")).unwrap());
        let mut subscriptions = Subscriptions::new(store.clone());
        for failing in failing {
            let name = format!("fails-at-{failing}");
            store.advance(&name, &LogPosition::sequence(0)).await.unwrap();
            let sink = Arc::new(Sink { failing: *failing });
            subscriptions = subscriptions.with(Projector::new(name, sink, store.clone()));
        }
        (subscriptions, store, dir)
    }

    async fn checkpoint(store: &RedbStore, name: &str) -> Option<LogPosition> {
        store.get(name).await.unwrap()
    }

    fn at(sequence: u64) -> Option<LogPosition> {
        Some(LogPosition::sequence(sequence))
    }

    fn later() -> Instant {
        Instant::now() + std::time::Duration::from_secs(30)
    }

    /// Stream records of the log events 1..=3 at positions "100", "200", "300", with a change that
    /// is no event before each.
    fn stream_event() -> Event {
        let records: Vec<_> = (1..=3u64)
            .flat_map(|sequence| {
                let event = crate::records::sample_event(sequence);
                let record = |name: &str, position: String, image: serde_json::Value| {
                    json!({
                        "eventID": position, "eventName": name, "awsRegion": "us-east-1",
                        "dynamodb": {"NewImage": image, "SequenceNumber": position, "SizeBytes": 1}
                    })
                };
                let head = json!({
                    "pk": {"S": "stream#repository/library/app"},
                    "sk": {"S": "head"},
                    "version": {"N": sequence.to_string()}
                });
                let item = json!({
                    "pk": {"S": "stream#repository/library/app"},
                    "sk": {"S": format!("v#{sequence:020}")},
                    "event": {"S": serde_json::to_string(&event).unwrap()}
                });
                [
                    record("MODIFY", format!("{sequence}50"), head),
                    record("INSERT", format!("{sequence}00"), item),
                ]
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn identifiers(response: &DynamoDbEventResponse) -> Vec<Option<String>> {
        (response.batch_item_failures.iter())
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_batch_that_projects_reports_no_failure_and_a_redelivery_changes_nothing() {
        let (subscriptions, store, _dir) = subscriptions(&[0]).await;
        let response = handle(&subscriptions, stream_event(), later()).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(checkpoint(&store, "fails-at-0").await, at(3));
        let again = handle(&subscriptions, stream_event(), later()).await.unwrap();
        assert!(again.batch_item_failures.is_empty());
        assert_eq!(checkpoint(&store, "fails-at-0").await, at(3));
    }

    #[tokio::test]
    async fn a_failed_event_is_reported_by_the_sequence_number_of_its_record() {
        let (subscriptions, store, _dir) = subscriptions(&[2]).await;
        let response = handle(&subscriptions, stream_event(), later()).await.unwrap();
        assert_eq!(identifiers(&response), [Some("200".to_string())]);
        assert_eq!(checkpoint(&store, "fails-at-2").await, at(1));
    }

    #[tokio::test]
    async fn of_two_failing_subscriptions_the_earlier_record_is_retried_and_the_other_goes_on() {
        let (subscriptions, store, _dir) = subscriptions(&[3, 2]).await;
        let response = handle(&subscriptions, stream_event(), later()).await.unwrap();
        assert_eq!(identifiers(&response), [Some("200".to_string())]);
        assert_eq!(checkpoint(&store, "fails-at-3").await, at(2));
    }
}
