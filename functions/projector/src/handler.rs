//! One invocation: a batch of stream records in, the projection of its log events, and a partial
//! batch failure naming the record to retry from when an event could not be projected (the event
//! source mapping needs `FunctionResponseTypes: [ReportBatchItemFailures]`).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use berth::app::Projector;

use crate::records::Batch;

pub async fn handle(
    projector: &Projector,
    event: Event,
) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
    let batch = Batch::from_records(&event.records);
    let mut response = DynamoDbEventResponse::default();
    match projector.deliver(&batch.events).await {
        Ok(projected) => tracing::info!(
            records = event.records.len(),
            published = projected.published,
            checkpoint = projected.checkpoint.as_ref().map(|p| p.to_string()),
            "batch delivered"
        ),
        Err(failure) => {
            tracing::warn!(
                published = failure.published,
                "{failure}; asking for a retry from event {}",
                failure.position
            );
            // Without a position to name, fail the whole batch: it is retried (the sink is
            // idempotent, so what was delivered already is delivered again harmlessly).
            let position = batch.position_of(&failure.position).ok_or(failure.clone())?;
            let mut item = DynamoDbBatchItemFailure::default();
            item.item_identifier = Some(position.to_string());
            response.batch_item_failures.push(item);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
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

    #[derive(Default)]
    struct Checkpoint(Mutex<Option<LogPosition>>);

    #[async_trait]
    impl Checkpoints for Checkpoint {
        async fn get(&self, _: &str) -> Result<Option<LogPosition>, ProjectionError> {
            Ok(self.0.lock().unwrap().clone())
        }

        async fn advance(&self, _: &str, position: &LogPosition) -> Result<bool, ProjectionError> {
            let mut current = self.0.lock().unwrap();
            let moved = current.as_ref().is_none_or(|c| c < position);
            if moved {
                *current = Some(position.clone());
            }
            Ok(moved)
        }
    }

    fn at(sequence: u64) -> Option<LogPosition> {
        Some(LogPosition::sequence(sequence))
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
        let checkpoints = Arc::new(Checkpoint::default());
        let projector = Projector::new("audit", Arc::new(Sink { failing: 0 }), checkpoints.clone());
        let response = handle(&projector, stream_event()).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(*checkpoints.0.lock().unwrap(), at(3));
        let again = handle(&projector, stream_event()).await.unwrap();
        assert!(again.batch_item_failures.is_empty());
        assert_eq!(*checkpoints.0.lock().unwrap(), at(3));
    }

    #[tokio::test]
    async fn a_failed_event_is_reported_by_the_sequence_number_of_its_record() {
        let checkpoints = Arc::new(Checkpoint::default());
        let projector = Projector::new("audit", Arc::new(Sink { failing: 2 }), checkpoints.clone());
        let response = handle(&projector, stream_event()).await.unwrap();
        assert_eq!(identifiers(&response), [Some("200".to_string())]);
        assert_eq!(*checkpoints.0.lock().unwrap(), at(1));
    }
}
