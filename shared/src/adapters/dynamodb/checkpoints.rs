//! `Checkpoints` on DynamoDB: one item per projection in the store's table (see the table design in
//! the parent module), outside the views (`dump` and `clear` leave it alone):
//! ```text
//! pk           sk       attributes
//! checkpoint   <name>   position (S): the last event the projection finished (a `LogPosition`)
//! ```
//! `advance` is one `UpdateItem` conditional on `attribute_not_exists(position) OR position <
//! :position` (strings compare bytewise, as positions order), so of two concurrent writers the
//! checkpoint keeps the later position and never moves backwards. Checkpoints written before
//! positions were strings hold `seq` (N), read as that sequence's position.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::{fail, get_n, get_s, n, s, DynamoStore, PK, SK};
use crate::domain::LogPosition;
use crate::ports::{Checkpoints, ProjectionError};

const CHECKPOINT_PK: &str = "checkpoint";
const POSITION: &str = "position";
const LEGACY_SEQ: &str = "seq";

fn backend(e: impl Into<String>) -> ProjectionError {
    ProjectionError::Checkpoint(e.into())
}

#[async_trait]
impl Checkpoints for DynamoStore {
    async fn get(&self, name: &str) -> Result<Option<LogPosition>, ProjectionError> {
        let item = DynamoStore::get(self, CHECKPOINT_PK, name)
            .await
            .map_err(backend)?;
        let Some(item) = item else { return Ok(None) };
        if item.contains_key(POSITION) {
            let text = get_s(&item, POSITION).map_err(backend)?;
            let position = LogPosition::parse(text)
                .ok_or_else(|| backend(format!("checkpoint {name} holds {text:?}, not a log position")))?;
            return Ok(Some(position));
        }
        let sequence = get_n(&item, LEGACY_SEQ).map_err(backend)?;
        Ok(Some(LogPosition::sequence(sequence)))
    }

    async fn advance(&self, name: &str, position: &LogPosition) -> Result<bool, ProjectionError> {
        // A legacy checkpoint holds `seq` only: compare with it as a number (every timed position
        // is after every sequence).
        let as_sequence = position.as_sequence().unwrap_or(u64::MAX);
        let updated = (self.client.update_item())
            .table_name(&self.table)
            .key(PK, s(CHECKPOINT_PK))
            .key(SK, s(name))
            .update_expression("SET #position = :position")
            .condition_expression(
                "(attribute_not_exists(#position) AND (attribute_not_exists(#seq) OR #seq < :seq)) \
                 OR #position < :position",
            )
            .expression_attribute_names("#position", POSITION)
            .expression_attribute_names("#seq", LEGACY_SEQ)
            .expression_attribute_values(":position", s(position.as_str()))
            .expression_attribute_values(":seq", n(as_sequence))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend(fail(e))),
        }
    }
}
