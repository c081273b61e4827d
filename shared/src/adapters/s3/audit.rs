//! `S3AuditSink`: the audit archive (layout in `adapters::audit`) in an S3 bucket, usually the blob
//! store's, under `audit/`:
//!
//! ```text
//! <bucket>/
//!   audit/<yyyy>/<mm>/<dd>/<log position>.json    the event's CloudEvent (structured JSON)
//! ```
//! Each document is written with `If-None-Match: *`: a redelivered event finds its document there
//! (412) and leaves it, so the archive holds one copy of every event whatever the delivery count.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream as SdkByteStream;
use aws_sdk_s3::Client;

use super::error::{sdk, S3Error};
use super::S3BlobStore;
use crate::adapters::audit::{archive_body, archive_key, AUDIT_PREFIX};
use crate::domain::RecordedEvent;
use crate::ports::{EventSink, ProjectionError};

/// The media type of a structured-mode CloudEvent (CloudEvents JSON format, section 3).
const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

pub struct S3AuditSink {
    client: Client,
    bucket: String,
}

impl S3AuditSink {
    /// The archive in the blob store's bucket, through its client.
    pub fn beside(store: &S3BlobStore) -> S3AuditSink {
        S3AuditSink {
            client: store.client.clone(),
            bucket: store.bucket.clone(),
        }
    }

    /// The archive in `bucket`, with a complete S3 client configuration.
    pub fn from_config(config: aws_sdk_s3::Config, bucket: impl Into<String>) -> S3AuditSink {
        S3AuditSink {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of `event`'s document.
    pub fn key(event: &RecordedEvent) -> String {
        format!("{AUDIT_PREFIX}/{}", archive_key(event))
    }
}

#[async_trait]
impl EventSink for S3AuditSink {
    async fn publish(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let put = (self.client.put_object())
            .bucket(&self.bucket)
            .key(S3AuditSink::key(event))
            .content_type(CLOUDEVENTS_JSON)
            .if_none_match("*")
            .body(SdkByteStream::from(archive_body(event)?))
            .send()
            .await;
        match put.map_err(sdk("PutObject")) {
            // Published before: the same key holds the same bytes.
            Ok(_) | Err(S3Error::Exists(_)) => Ok(()),
            Err(e) => Err(ProjectionError::Sink(e.to_string())),
        }
    }
}
