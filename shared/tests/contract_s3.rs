#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `BlobStore` contract suite (`contract/blob_store.rs`) against `S3BlobStore`, and the
//! `EventSink` suite (`contract/event_sink.rs`) against `S3AuditSink`, on two S3 implementations: moto
//! (server mode) and s3s-fs (which checks SigV4). Each test uses a fresh bucket.
//!
//! The servers come from `scripts/local-stack.sh up`; its `env` output names them:
//! `BERTH_TEST_S3_MOTO_ENDPOINT`, `BERTH_TEST_S3_S3SFS_ENDPOINT` (+ `BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID`,
//! `BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY`). A test fails when its endpoint is not set, unless
//! `BERTH_SKIP_AWS_TESTS=1`.

#[path = "contract/blob_store.rs"]
mod blob_store;
#[path = "contract/event_sink.rs"]
mod event_sink;
#[allow(dead_code)]
#[path = "contract/support.rs"]
mod support;

use std::sync::Arc;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use berth::adapters::s3::S3BlobStore;
use berth::ports::BlobStore;

/// One S3 server to test against.
pub struct Target {
    endpoint: String,
    access_key: String,
    secret_key: String,
}

impl Target {
    /// The server named by `endpoint_var`, or `None` (after printing why) when the tests are skipped.
    pub fn from_env(endpoint_var: &str, key_vars: Option<(&str, &str)>) -> Option<Target> {
        if std::env::var("BERTH_SKIP_AWS_TESTS").as_deref() == Ok("1") {
            println!("skipped: BERTH_SKIP_AWS_TESTS=1");
            return None;
        }
        let need = |var: &str| {
            std::env::var(var).unwrap_or_else(|_| {
                panic!(
                    "{var} is not set: run `scripts/local-stack.sh up` and \
                     `eval \"$(scripts/local-stack.sh env)\"` (or set BERTH_SKIP_AWS_TESTS=1)"
                )
            })
        };
        let endpoint = need(endpoint_var);
        let (access_key, secret_key) = match key_vars {
            Some((key, secret)) => (need(key), need(secret)),
            // moto accepts any credentials.
            None => ("testing".to_string(), "testing".to_string()),
        };
        Some(Target {
            endpoint,
            access_key,
            secret_key,
        })
    }

    /// A store on `bucket`; every call builds a new client (a "restarted process").
    pub fn store(&self, bucket: &str) -> Arc<S3BlobStore> {
        Arc::new(S3BlobStore::from_config(self.config(), bucket))
    }

    pub fn config(&self) -> aws_sdk_s3::Config {
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                &self.access_key,
                &self.secret_key,
                None,
                None,
                "contract-test",
            ))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build()
    }

    /// A store on a new, empty bucket.
    pub async fn fresh(&self) -> (String, Arc<S3BlobStore>) {
        let bucket = format!("berth-test-{}", uuid::Uuid::new_v4().simple());
        let store = self.store(&bucket);
        store.create_bucket_if_missing().await.unwrap();
        (bucket, store)
    }
}

/// One test per check of the blob store suite, on the server `$target` names.
macro_rules! s3_checks {
    ($target:expr) => {
        s3_checks!($target =>
            a_put_blob_can_be_stat_and_read_back_whole,
            reading_or_stating_an_absent_blob_finds_nothing,
            putting_the_same_blob_twice_is_idempotent,
            a_ranged_read_returns_exactly_the_inclusive_range,
            a_chunked_upload_commits_to_a_visible_blob_and_ends_the_session,
            an_empty_upload_commits_to_the_empty_blob,
            an_append_at_the_wrong_offset_is_rejected_with_the_current_size_and_appends_nothing,
            a_commit_with_the_wrong_digest_reports_the_computed_one_and_stores_nothing,
            a_sha512_upload_commits_and_verifies_under_sha512,
            an_aborted_upload_is_unknown_afterwards,
            operations_on_an_unknown_upload_report_upload_unknown,
            concurrent_sessions_are_independent,
            concurrent_commits_of_the_same_content_all_succeed_and_leave_the_blob_intact,
            a_body_that_fails_midway_leaves_a_session_that_can_resume_from_its_state,
            expiring_uploads_spares_sessions_written_since_the_cutoff,
            expiring_uploads_aborts_idle_sessions_and_leaves_committed_blobs,
            a_large_upload_is_assembled_from_multipart_parts,
            a_large_upload_with_the_wrong_digest_stores_nothing,
            a_presigned_url_fetches_the_blob,
            listing_pages_through_every_blob_in_key_order_with_sizes_and_times,
            deleting_blobs_removes_them_and_passes_over_absent_ones,
        );

        /// The adapter relies on `If-None-Match: *` (blobs, chunks): the server must refuse to overwrite.
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn the_server_honours_conditional_writes() {
            let Some(target) = $target else { return };
            let (bucket, _) = target.fresh().await;
            let client = aws_sdk_s3::Client::from_conf(target.config());
            let put = || {
                client
                    .put_object()
                    .bucket(&bucket)
                    .key("probe")
                    .if_none_match("*")
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
                    .send()
            };
            put().await.unwrap();
            let second = put().await;
            let status = second.as_ref().err().and_then(|e| e.raw_response()).map(|r| r.status().as_u16());
            assert_eq!(status, Some(412), "a second conditional put must fail with 412: {second:?}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn an_upload_session_survives_a_restart() {
            let Some(target) = $target else { return };
            let (bucket, _) = target.fresh().await;
            crate::blob_store::an_upload_session_survives_a_restart(|| -> Arc<dyn BlobStore> {
                target.store(&bucket)
            })
            .await;
        }
    };
    ($target:expr => $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(target) = $target else { return };
                let (_, store) = target.fresh().await;
                crate::$check(store).await;
            }
        )+
    };
}

/// The archive's objects read back with a client of the test's own.
struct Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

#[async_trait::async_trait]
impl event_sink::Archive for Objects {
    async fn documents(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let listed = (self.client.list_objects_v2())
            .bucket(&self.bucket)
            .prefix("audit/")
            .send()
            .await
            .unwrap();
        assert_ne!(listed.is_truncated(), Some(true), "the checks archive few events");
        for object in listed.contents() {
            let key = object.key().unwrap();
            let got = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            let bytes = got.body.collect().await.unwrap().into_bytes().to_vec();
            out.insert(key.strip_prefix("audit/").unwrap().to_string(), bytes);
        }
        out
    }
}

/// One test per check of the event sink suite, on the server `$target` names.
macro_rules! audit_checks {
    ($target:expr) => {
        audit_checks!($target =>
            a_published_event_is_archived_as_its_cloudevent,
            publishing_the_same_event_twice_leaves_one_copy,
            concurrent_publishes_of_one_event_leave_one_copy,
            events_are_filed_under_the_utc_day_of_their_time,
            keys_sort_in_log_order_within_a_day,
            every_event_type_is_archived_with_its_cloudevent_type,
            republishing_earlier_events_after_later_ones_changes_nothing,
            concurrent_publishes_of_many_events_archive_each_once,
        );
    };
    ($target:expr => $($check:ident),+ $(,)?) => {
        mod audit {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let Some(target) = $target else { return };
                    let (bucket, _) = target.fresh().await;
                    let sink = berth::adapters::s3::S3AuditSink::from_config(target.config(), &bucket);
                    let client = aws_sdk_s3::Client::from_conf(target.config());
                    let archive = Arc::new(crate::Objects { client, bucket });
                    crate::event_sink::$check(Arc::new(sink), archive).await;
                }
            )+
        }
    };
}

// The suite's checks, re-exported so the macro names them and the S3-only checks alike.
use blob_store::*;

mod moto {
    use super::*;

    s3_checks!(Target::from_env("BERTH_TEST_S3_MOTO_ENDPOINT", None));
    audit_checks!(Target::from_env("BERTH_TEST_S3_MOTO_ENDPOINT", None));
    s3_checks!(Target::from_env("BERTH_TEST_S3_MOTO_ENDPOINT", None) =>
        concurrent_appends_at_one_offset_keep_exactly_one,
    );

    /// A commit that crashed leaves an incomplete multipart upload on a blob key; expiry aborts it.
    /// Only here: moto reports every upload as initiated in 2010 (so a recent one cannot be shown to
    /// survive), and s3s-fs 0.14.1 lacks ListMultipartUploads (its expiry skips this step).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn expiry_aborts_the_multipart_upload_a_crashed_commit_left() {
        let Some(target) = Target::from_env("BERTH_TEST_S3_MOTO_ENDPOINT", None) else {
            return;
        };
        let (bucket, store) = target.fresh().await;
        let client = aws_sdk_s3::Client::from_conf(target.config());
        let digest = sha256(b"a crashed commit");
        let key = format!("blobs/sha256/{}", digest.hex());
        let created = (client.create_multipart_upload().bucket(&bucket).key(&key).send())
            .await
            .unwrap();
        (client.upload_part())
            .bucket(&bucket)
            .key(&key)
            .upload_id(created.upload_id().unwrap())
            .part_number(1)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"partial"))
            .send()
            .await
            .unwrap();
        let uploads = || async {
            let listed = client
                .list_multipart_uploads()
                .bucket(&bucket)
                .send()
                .await
                .unwrap();
            listed.uploads().len()
        };
        assert_eq!(uploads().await, 1);

        let cutoff = chrono::Utc::now() + chrono::Duration::minutes(1);
        assert_eq!(
            store.expire_uploads(cutoff).await.unwrap(),
            0,
            "a multipart upload is not an upload session"
        );
        assert_eq!(uploads().await, 0, "the incomplete multipart upload is aborted");
        assert_eq!(store.stat(&digest).await.unwrap(), None);
    }
}

/// Not `concurrent_appends_at_one_offset_keep_exactly_one`: s3s-fs 0.14.1 checks `If-None-Match: *` by
/// testing whether the file exists and then writing it (`put_object` in its `s3.rs`), so two racing
/// conditional puts can both succeed there; AWS S3 makes the check atomic.
mod s3s_fs {
    use super::*;

    s3_checks!(Target::from_env(
        "BERTH_TEST_S3_S3SFS_ENDPOINT",
        Some((
            "BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID",
            "BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY"
        ))
    ));
    audit_checks!(Target::from_env(
        "BERTH_TEST_S3_S3SFS_ENDPOINT",
        Some((
            "BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID",
            "BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY"
        ))
    ));
}

// S3-only checks: bodies past the multipart part size, and presigned reads.

use berth::domain::Algorithm;
use berth::ports::BlobError;
use support::{body, pattern, repo, sha256};

/// Larger than two multipart parts (8 MiB each), appended in uneven pieces.
const LARGE: usize = 17 * 1024 * 1024 + 12_345;

pub async fn a_large_upload_is_assembled_from_multipart_parts(store: Arc<S3BlobStore>) {
    let data = pattern(LARGE, 21);
    let digest = sha256(&data);
    let id = store.upload_start(&repo("contract/large")).await.unwrap();
    let cuts = [0, 3_000_000, 3_000_001, 12_000_000, LARGE];
    for w in cuts.windows(2) {
        let size = (store.upload_append(&id, w[0] as u64, body(&data[w[0]..w[1]], 1 << 20)))
            .await
            .unwrap();
        assert_eq!(size, w[1] as u64);
    }
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), LARGE as u64);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(LARGE as u64));
    let read = store.get(&digest, None).await.unwrap();
    assert!(
        support::collect(read).await == data,
        "the assembled blob's bytes differ"
    );
}

pub async fn a_large_upload_with_the_wrong_digest_stores_nothing(store: Arc<S3BlobStore>) {
    let data = pattern(LARGE, 22);
    let claimed = Algorithm::Sha256.hasher().finish();
    let id = store.upload_start(&repo("contract/large-bad")).await.unwrap();
    store.upload_append(&id, 0, body(&data, 1 << 20)).await.unwrap();
    match store.upload_commit(&id, &claimed).await {
        Err(BlobError::DigestMismatch { computed }) => assert_eq!(computed, sha256(&data)),
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(store.stat(&claimed).await.unwrap(), None);
    assert!(matches!(
        store.upload_state(&id).await,
        Err(BlobError::UploadUnknown)
    ));
}

pub async fn a_presigned_url_fetches_the_blob(store: Arc<S3BlobStore>) {
    let data = pattern(10_000, 23);
    let digest = sha256(&data);
    store
        .put(&digest, bytes::Bytes::from(data.clone()))
        .await
        .unwrap();
    let url = (store.presigned_get(&digest, std::time::Duration::from_secs(300)))
        .await
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "not a presigned URL: {url}");
    // Fetch it with a plain HTTP/1.1 GET (no client crate): the signature alone must authorize it.
    let got = http_get(&url).await;
    assert!(got == data, "the presigned URL served other bytes");
}

pub async fn concurrent_appends_at_one_offset_keep_exactly_one(store: Arc<S3BlobStore>) {
    let id = store.upload_start(&repo("contract/append-race")).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let tasks: Vec<_> = [pattern(3_000, 24), pattern(5_000, 25)]
        .into_iter()
        .map(|data| {
            let (store, id, barrier) = (store.clone(), id.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                (
                    data.len() as u64,
                    store.upload_append(&id, 0, body(&data, 1_000)).await,
                )
            })
        })
        .collect();
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (len, Ok(size)) => {
                assert_eq!(size, len);
                won.push(len);
            }
            (_, Err(BlobError::OffsetMismatch { offset: 0, .. })) => {}
            (_, other) => panic!("expected Ok or OffsetMismatch, got {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one of two racing appends wins: {won:?}");
    assert_eq!(store.upload_state(&id).await.unwrap().size, won[0]);
}

/// The body of a `GET url` answered 200 (plain http only).
async fn http_get(url: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let uri: http::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().as_str().to_string();
    let path = uri.path_and_query().unwrap().as_str().to_string();
    let mut conn = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    // Any HTTP/1.x: moto served serially (scripts/moto_serial.py) answers HTTP/1.0.
    let status = head.split_whitespace().nth(1);
    assert!(
        head.starts_with("HTTP/1.") && status == Some("200"),
        "presigned GET failed: {head}"
    );
    let body = &response[split + 4..];
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_hex = String::from_utf8_lossy(&body[..line_end]).to_string();
        let size = usize::from_str_radix(size_hex.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}
