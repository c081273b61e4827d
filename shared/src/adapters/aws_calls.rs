//! Counts the requests the S3 and DynamoDB clients send, for `berth_aws_requests_total` and
//! `berth_dynamodb_write_items_total` ([`crate::metrics`]): an SDK interceptor installed where the
//! clients are built ([`crate::adapters::s3::S3BlobStore::new`],
//! [`crate::adapters::dynamodb::DynamoStore::new`]).
//!
//! Before serialization it reads the operation's input to count the items a DynamoDB write touches
//! (per kind) and keeps the count in the request's config bag; before each transmission it counts
//! the request under the service and operation the SDK names (`DynamoDB`/`TransactWriteItems`,
//! `S3`/`PutObject`), and the items. A retry is transmitted, and billed, again, so it counts
//! again. A presigned URL (a blob GET's redirect) runs the same interceptors without sending
//! anything: it is not counted here, the client's GET goes to S3 directly.

use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, Input,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// The query parameter every SigV4-presigned URL carries, and no sent request does.
const PRESIGNED_MARK: &str = "X-Amz-Signature=";

/// Counts every request an SDK client sends into the process's metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsCallCounter;

/// The items one DynamoDB write request touches, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Touched {
    put: u64,
    update: u64,
    delete: u64,
    condition_check: u64,
}

impl Storable for Touched {
    type Storer = StoreReplace<Self>;
}

impl Touched {
    /// The items `input` writes, if it is a DynamoDB write.
    fn of(input: &Input) -> Option<Touched> {
        let mut touched = Touched::default();
        if let Some(t) = input.downcast_ref::<TransactWriteItemsInput>() {
            for action in t.transact_items() {
                touched.put += u64::from(action.put().is_some());
                touched.update += u64::from(action.update().is_some());
                touched.delete += u64::from(action.delete().is_some());
                touched.condition_check += u64::from(action.condition_check().is_some());
            }
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            for request in batch
                .request_items()
                .into_iter()
                .flat_map(|m| m.values())
                .flatten()
            {
                touched.put += u64::from(request.put_request().is_some());
                touched.delete += u64::from(request.delete_request().is_some());
            }
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            touched.put = 1;
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            touched.update = 1;
        } else if input.downcast_ref::<DeleteItemInput>().is_some() {
            touched.delete = 1;
        } else {
            return None;
        }
        Some(touched)
    }

    fn count(&self, operation: &str) {
        for (kind, items) in [
            ("put", self.put),
            ("update", self.update),
            ("delete", self.delete),
            ("condition_check", self.condition_check),
        ] {
            crate::metrics::dynamodb_write_items(operation, kind, items);
        }
    }
}

impl Intercept for AwsCallCounter {
    fn name(&self) -> &'static str {
        "AwsCallCounter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(touched) = Touched::of(context.input()) {
            cfg.interceptor_state().store_put(touched);
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.request().uri().contains(PRESIGNED_MARK) {
            return Ok(());
        }
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        crate::metrics::aws_request(metadata.service(), metadata.name());
        if let Some(touched) = cfg.load::<Touched>() {
            touched.count(metadata.name());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};

    #[test]
    fn a_transaction_counts_its_items_per_kind() {
        let pk = || AttributeValue::S("k".into());
        let put = Put::builder().table_name("t").item("pk", pk()).build().unwrap();
        let update = Update::builder()
            .table_name("t")
            .key("pk", pk())
            .update_expression("SET a = :a")
            .build()
            .unwrap();
        let delete = Delete::builder().table_name("t").key("pk", pk()).build().unwrap();
        let check = ConditionCheck::builder()
            .table_name("t")
            .key("pk", pk())
            .condition_expression("attribute_exists(pk)")
            .build()
            .unwrap();
        let input = TransactWriteItemsInput::builder()
            .transact_items(TransactWriteItem::builder().put(put.clone()).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .build()
            .unwrap();
        let touched = Touched::of(&Input::erase(input)).unwrap();
        assert_eq!(
            touched,
            Touched {
                put: 2,
                update: 1,
                delete: 1,
                condition_check: 1
            }
        );
    }

    #[test]
    fn a_single_write_is_one_item_and_a_read_is_none() {
        let put = PutItemInput::builder().table_name("t").build().unwrap();
        assert_eq!(Touched::of(&Input::erase(put)).map(|t| t.put), Some(1));
        let get = aws_sdk_dynamodb::operation::get_item::GetItemInput::builder()
            .table_name("t")
            .build()
            .unwrap();
        assert_eq!(Touched::of(&Input::erase(get)), None);
    }
}
