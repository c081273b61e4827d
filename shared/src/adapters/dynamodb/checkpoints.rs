//! `Checkpoints` on DynamoDB: one item per projection in the store's table (see the table design in
//! the parent module), outside the views (`dump` and `clear` leave it alone):
//! ```text
//! pk           sk       attributes
//! checkpoint   <name>   seq (N): the last event the projection finished
//! ```
//! `advance` is one `UpdateItem` conditional on `attribute_not_exists(seq) OR seq < :seq`, so of two
//! concurrent writers the checkpoint keeps the higher sequence and never moves backwards.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::{fail, get_n, n, s, DynamoStore, PK, SK};
use crate::ports::{Checkpoints, ProjectionError};

const CHECKPOINT_PK: &str = "checkpoint";
const SEQ: &str = "seq";

fn backend(e: impl Into<String>) -> ProjectionError {
    ProjectionError::Checkpoint(e.into())
}

#[async_trait]
impl Checkpoints for DynamoStore {
    async fn get(&self, name: &str) -> Result<Option<u64>, ProjectionError> {
        let item = DynamoStore::get(self, CHECKPOINT_PK, name)
            .await
            .map_err(backend)?;
        item.map(|item| get_n(&item, SEQ)).transpose().map_err(backend)
    }

    async fn advance(&self, name: &str, sequence: u64) -> Result<bool, ProjectionError> {
        let updated = (self.client.update_item())
            .table_name(&self.table)
            .key(PK, s(CHECKPOINT_PK))
            .key(SK, s(name))
            .update_expression("SET #seq = :seq")
            .condition_expression("attribute_not_exists(#seq) OR #seq < :seq")
            .expression_attribute_names("#seq", SEQ)
            .expression_attribute_values(":seq", n(sequence))
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
