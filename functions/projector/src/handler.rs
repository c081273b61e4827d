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
    match projector.project(&batch.events).await {
        Ok(projected) => tracing::info!(
            records = event.records.len(),
            published = projected.published,
            skipped = projected.skipped,
            checkpoint = projected.checkpoint,
            "batch projected"
        ),
        Err(failure) => {
            tracing::warn!(
                published = failure.published,
                "{failure}; asking for a retry from event {}",
                failure.sequence
            );
            // Without a position to name, fail the whole batch: it is retried, and what was
            // projected already is skipped by the checkpoint.
            let position = batch.position_of(failure.sequence).ok_or(failure.clone())?;
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
    use berth::domain::RecordedEvent;
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
            match event.sequence == self.failing {
                true => Err(ProjectionError::Sink("the bucket is away".into())),
                false => Ok(()),
            }
        }
    }

    #[derive(Default)]
    struct Checkpoint(Mutex<Option<u64>>);

    #[async_trait]
    impl Checkpoints for Checkpoint {
        async fn get(&self, _: &str) -> Result<Option<u64>, ProjectionError> {
            Ok(*self.0.lock().unwrap())
        }

        async fn advance(&self, _: &str, sequence: u64) -> Result<bool, ProjectionError> {
            let mut current = self.0.lock().unwrap();
            let moved = current.is_none_or(|c| c < sequence);
            if moved {
                *current = Some(sequence);
            }
            Ok(moved)
        }
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
                let counter =
                    json!({"pk": {"S": "log"}, "sk": {"S": "head"}, "n": {"N": sequence.to_string()}});
                let item = json!({
                    "pk": {"S": "log"},
                    "sk": {"S": format!("seq#{sequence:020}")},
                    "event": {"S": serde_json::to_string(&event).unwrap()}
                });
                [
                    record("MODIFY", format!("{sequence}50"), counter),
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
        assert_eq!(*checkpoints.0.lock().unwrap(), Some(3));
        let again = handle(&projector, stream_event()).await.unwrap();
        assert!(again.batch_item_failures.is_empty());
        assert_eq!(*checkpoints.0.lock().unwrap(), Some(3));
    }

    #[tokio::test]
    async fn a_failed_event_is_reported_by_the_sequence_number_of_its_record() {
        let checkpoints = Arc::new(Checkpoint::default());
        let projector = Projector::new("audit", Arc::new(Sink { failing: 2 }), checkpoints.clone());
        let response = handle(&projector, stream_event()).await.unwrap();
        assert_eq!(identifiers(&response), [Some("200".to_string())]);
        assert_eq!(*checkpoints.0.lock().unwrap(), Some(1));
    }
}
