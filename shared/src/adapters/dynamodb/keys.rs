//! `KeyStore` on DynamoDB: one item per token signing key in the store's table (see the table
//! design in the parent module), outside the views (`dump` and `clear` leave it alone):
//! ```text
//! pk          sk                 attributes
//! token-key   <020 index>        pem (S): PKCS#8 PEM of the key (index from 0, oldest first)
//! ```
//! `add(expected, …)` checks that the store holds `expected` keys, then puts index `expected` on
//! condition `attribute_not_exists(pk)`: of two instances adding at once, one wins and the other
//! reloads. Only the api function needs this
//! partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;

use super::{fail, get_s, s, DynamoStore, PK, SK};
use crate::ports::{KeyStore, KeyStoreError};

const KEY_PK: &str = "token-key";
const PEM: &str = "pem";

fn backend(e: impl Into<String>) -> KeyStoreError {
    KeyStoreError::Backend(e.into())
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn load(&self) -> Result<Vec<String>, KeyStoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let page = (self.client.query())
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(KEY_PK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend(fail(e)))?;
            for item in page.items() {
                keys.push(get_s(item, PEM).map_err(backend)?.to_string());
            }
            match page.last_evaluated_key() {
                Some(last) if !last.is_empty() => start = Some(last.clone()),
                _ => break,
            }
        }
        Ok(keys)
    }

    async fn add(&self, expected: usize, pem: String) -> Result<bool, KeyStoreError> {
        // Keys are only ever appended, so "holds exactly `expected`" is "indexes below it exist"
        // (read here) and "index `expected` does not" (the put's condition).
        if self.load().await?.len() != expected {
            return Ok(false);
        }
        let put = (self.client.put_item())
            .table_name(&self.table)
            .item(PK, s(KEY_PK))
            .item(SK, s(format!("{expected:020}")))
            .item(PEM, s(pem))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(backend(fail(e))),
        }
    }
}
