//! DynamoDB-specific checks of the log's layout (docs/log-scale-out.md, "No global counter"):
//! which partition keys an append writes, tables written before the upgrade, clocks that disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use berth::adapters::dynamodb::DynamoStore;
use berth::adapters::fs::FsBlobStore;
use berth::app::{Registry, RequestContext};
use berth::domain::{Algorithm, Digest, EventEnvelope, LogPosition, RecordedEvent, RepoName, StreamId};
use berth::ports::{ByteStream, EventLog, SystemClock};
use bytes::Bytes;
use serde_json::json;

use crate::support::{blob_uploaded, digest, envelope, repo};

tokio::task_local! {
    /// The repository whose request the current task serves: what caused the writes it makes.
    static CAUSE: String;
}

/// One written item: the partition key, and the `log` index partition it also lands in.
#[derive(Debug, Clone)]
struct Written {
    cause: String,
    pk: String,
    index: Option<String>,
}

/// Records the partition key of every item each write call puts, updates or deletes, with the
/// repository of the task that made the call.
#[derive(Debug, Clone, Default)]
struct WriteKeys(Arc<Mutex<Vec<Written>>>);

fn s(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

impl Intercept for WriteKeys {
    fn name(&self) -> &'static str {
        "WriteKeys"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let cause = CAUSE.try_with(String::clone).unwrap_or_else(|_| "(setup)".into());
        let input = context.input();
        // (item or key, whether it is written): condition checks write nothing.
        let mut items = Vec::new();
        if let Some(t) = input.downcast_ref::<TransactWriteItemsInput>() {
            for action in t.transact_items() {
                if let Some(put) = action.put() {
                    items.push(put.item().clone());
                } else if let Some(update) = action.update() {
                    items.push(update.key().clone());
                } else if let Some(delete) = action.delete() {
                    items.push(delete.key().clone());
                }
            }
        } else if let Some(put) = input.downcast_ref::<PutItemInput>() {
            items.push(put.item().cloned().unwrap_or_default());
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            items.push(update.key().cloned().unwrap_or_default());
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            items.push(delete.key().cloned().unwrap_or_default());
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            for requests in batch.request_items().into_iter().flat_map(|m| m.values()) {
                for request in requests {
                    if let Some(put) = request.put_request() {
                        items.push(put.item().clone());
                    } else if let Some(delete) = request.delete_request() {
                        items.push(delete.key().clone());
                    }
                }
            }
        }
        let mut written = self.0.lock().unwrap();
        for item in items {
            written.push(Written {
                cause: cause.clone(),
                pk: s(&item, "pk").unwrap_or_default(),
                index: s(&item, "log_bucket"),
            });
        }
        Ok(())
    }
}

/// A store on a fresh table whose client records what it writes.
async fn recorded_store() -> Option<(Arc<DynamoStore>, WriteKeys, Vec<Arc<DynamoStore>>)> {
    let stores = crate::stores(1).await?;
    let config = crate::sdk_config(&crate::endpoint().unwrap()).await;
    let keys = WriteKeys::default();
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(keys.clone())
            .build(),
    );
    let store = Arc::new(DynamoStore::with_client(client, stores[0].table()));
    Some((store, keys, stores))
}

async fn upload(registry: &Registry, repo: &RepoName, bytes: Vec<u8>) -> serde_json::Value {
    let digest = Digest::compute(Algorithm::Sha256, &bytes);
    let size = bytes.len();
    let id = registry.start_upload(repo).await.unwrap();
    let body: ByteStream = Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from(bytes))]));
    (registry.finish_upload(
        &RequestContext::anonymous(),
        repo,
        &id,
        &digest,
        Some((None, body)),
    ))
    .await
    .unwrap();
    json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest.to_string(), "size": size})
}

async fn push(registry: &Registry, repo: &RepoName, reference: &str, manifest: serde_json::Value) -> Digest {
    let body = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let digest = Digest::compute(Algorithm::Sha256, &body);
    let content_type = "application/vnd.oci.image.manifest.v1+json";
    (registry.push_manifest(
        &RequestContext::anonymous(),
        repo,
        reference.parse().unwrap(),
        content_type,
        body,
    ))
    .await
    .unwrap();
    digest
}

/// What one repository's users do: layers (one shared by every repository), two tagged images, a
/// tag moved, a referrer (a signature-like artifact with a subject) attached then deleted, a tag
/// deleted.
async fn workload(registry: Registry, repo: RepoName, n: usize) {
    let shared = upload(&registry, &repo, b"a layer every repository has".to_vec()).await;
    let mut config = upload(&registry, &repo, format!("{{\"repo\":{n}}}").into_bytes()).await;
    config["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
    let mut images = Vec::new();
    for tag in ["v1", "v2"] {
        let own = upload(&registry, &repo, format!("{n} {tag}").into_bytes()).await;
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [shared, own],
        });
        images.push((push(&registry, &repo, tag, manifest.clone()).await, manifest));
    }
    push(&registry, &repo, "latest", images[1].1.clone()).await;
    push(&registry, &repo, "latest", images[0].1.clone()).await;
    let (subject, subject_manifest) = &images[0];
    let signature = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
        "layers": [upload(&registry, &repo, format!("signature {n}").into_bytes()).await],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject.to_string(),
                    "size": serde_json::to_vec(subject_manifest).unwrap().len()},
    });
    upload(&registry, &repo, b"{}".to_vec()).await;
    let signature = push(
        &registry,
        &repo,
        &format!("{subject}").replace(':', "-"),
        signature,
    )
    .await;
    let ctx = RequestContext::anonymous();
    (registry.delete_manifest(&ctx, &repo, &signature.to_string().parse().unwrap()))
        .await
        .unwrap();
    (registry.delete_manifest(&ctx, &repo, &"v2".parse().unwrap()))
        .await
        .unwrap();
}

/// Issue 13: "no key receives writes caused by more than one repository's appends, except keys
/// that the design note names and justifies". Sixteen repositories' workloads run at once through
/// one store; every item written is attributed to the repository whose task wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_partition_key_takes_writes_of_two_repositories_but_the_named_ones() {
    const REPOSITORIES: usize = 16;
    let Some((store, keys, stores)) = recorded_store().await else {
        return;
    };
    let blobs = tempfile::tempdir().unwrap();
    let registry = Registry::new(
        store.clone(),
        store.clone(),
        Arc::new(FsBlobStore::open(blobs.path()).unwrap()),
        Arc::new(SystemClock),
    );
    let tasks: Vec<_> = (0..REPOSITORIES)
        .map(|n| {
            let repo: RepoName = format!("team{n}/app").parse().unwrap();
            let registry = registry.clone();
            tokio::spawn(CAUSE.scope(repo.to_string(), workload(registry, repo, n)))
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let written = keys.0.lock().unwrap().clone();
    let mut causes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut writes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut index: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for w in &written {
        causes.entry(&w.pk).or_default().insert(&w.cause);
        *writes.entry(&w.pk).or_default() += 1;
        if let Some(bucket) = &w.index {
            index.entry(bucket).or_default().insert(&w.cause);
        }
    }
    // The named exceptions (docs/log-scale-out.md, "Keys written by many repositories"):
    // - `catalog`: a repository's catalog row, written by the first append of each repository a
    //   process makes (then skipped: the row is never deleted);
    // - `log`: the index's epoch, written once per process.
    let shared: Vec<(&str, usize, usize)> = (causes.iter())
        .filter(|(_, c)| c.len() > 1)
        .map(|(pk, c)| (*pk, c.len(), writes[pk]))
        .collect();
    println!(
        "{} items written under {} partition keys",
        written.len(),
        causes.len()
    );
    println!("keys written by more than one repository (key, repositories, writes): {shared:?}");
    println!(
        "`log` index partitions: {} (repositories each: {:?})",
        index.len(),
        index.values().map(BTreeSet::len).collect::<Vec<_>>()
    );
    for (pk, repositories, count) in &shared {
        match *pk {
            "catalog" => assert_eq!(
                *count, REPOSITORIES,
                "one catalog write per repository, not one per event"
            ),
            "log" => assert_eq!(*count, 1, "the epoch is written once per process"),
            other => panic!("{other} was written by {repositories} repositories' appends"),
        }
    }
    assert!(
        causes.keys().all(|pk| !pk.is_empty()),
        "every write names its key"
    );
    assert!(
        !causes.contains_key("log") || writes["log"] == 1,
        "no append writes the legacy log partition"
    );
    // The index spreads a day's events over 16 partitions (GSI writes are asynchronous and take no
    // part in transactions; each partition takes about 1,000 writes per second).
    assert!(index
        .keys()
        .all(|b| b.starts_with("log#") && b.len() == "log#20261207#f".len()));
    assert!(
        index.len() > 8,
        "16 repositories' streams land in most of the 16 shards: {}",
        index.len()
    );
    crate::drop_tables(&stores).await;
}

/// A table written before the upgrade: events numbered by `log/head` and copied under `log /
/// seq#…`. It needs no migration: `read_all` lists those events first, then the new ones, and a
/// stream goes on from its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_written_by_the_counter_layout_reads_on_without_migration() {
    let Some(stores) = crate::stores(1).await else {
        return;
    };
    let store = stores[0].clone();
    let config = crate::sdk_config(&crate::endpoint().unwrap()).await;
    let client = Client::new(&config);
    let stream = StreamId::repository(&repo("legacy/app"));
    // What the counter layout wrote for two events: the counter, the log items, the stream's
    // head and its copies (JSON with a numeric `sequence`).
    let old: Vec<EventEnvelope> = (0..2)
        .map(|i| {
            envelope(blob_uploaded(
                &repo("legacy/app"),
                &digest(&format!("old-{i}")),
                1,
            ))
        })
        .collect();
    let put = |item: Vec<(&str, AttributeValue)>| {
        let request = client.put_item().table_name(store.table());
        item.into_iter().fold(request, |r, (k, v)| r.item(k, v)).send()
    };
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: u64| AttributeValue::N(v.to_string());
    put(vec![("pk", s("log")), ("sk", s("head")), ("n", n(2))])
        .await
        .unwrap();
    put(vec![
        ("pk", s(&format!("stream#{stream}"))),
        ("sk", s("head")),
        ("version", n(2)),
    ])
    .await
    .unwrap();
    let mut expected = Vec::new();
    for (i, envelope) in old.into_iter().enumerate() {
        let sequence = i as u64 + 1;
        let mut json = serde_json::to_value(&envelope).unwrap();
        json["sequence"] = json!(sequence);
        json["stream"] = json!(stream.as_str());
        json["version"] = json!(sequence);
        let text = json.to_string();
        put(vec![
            ("pk", s("log")),
            ("sk", s(&format!("seq#{sequence:020}"))),
            ("event", s(&text)),
        ])
        .await
        .unwrap();
        put(vec![
            ("pk", s(&format!("stream#{stream}"))),
            ("sk", s(&format!("v#{sequence:020}"))),
            ("event", s(&text)),
        ])
        .await
        .unwrap();
        let event: RecordedEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(
            event.position,
            LogPosition::sequence(sequence),
            "an old event reads its sequence"
        );
        expected.push(event);
    }

    let new = store
        .append(
            &stream,
            2,
            vec![envelope(blob_uploaded(&repo("legacy/app"), &digest("new"), 1))],
        )
        .await
        .unwrap();
    assert_eq!(new[0].version, 3);
    assert!(
        new[0].position.millis().is_some(),
        "new events have timed positions"
    );
    expected.extend(new);
    assert_eq!(store.read_all(&LogPosition::start(), 10).await.unwrap(), expected);
    assert_eq!(
        store.read_all(&LogPosition::sequence(1), 10).await.unwrap(),
        expected[1..].to_vec(),
        "a cursor of the old layout goes on from where it was"
    );
    assert_eq!(store.read_stream(&stream, 0, 10).await.unwrap(), expected);
    crate::drop_tables(&stores).await;
}

/// A stream whose last commit is ahead of this host's clock (another host's clock runs fast): the
/// append commits at that time, so the stream's positions still grow with its versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_append_after_a_commit_from_a_fast_clock_keeps_the_stream_in_order() {
    let Some(stores) = crate::stores(1).await else {
        return;
    };
    let store = stores[0].clone();
    let stream = StreamId::repository(&repo("clocks/app"));
    let first = store
        .append(
            &stream,
            0,
            vec![envelope(blob_uploaded(&repo("clocks/app"), &digest("1"), 1))],
        )
        .await
        .unwrap();
    let ahead = first[0].position.millis().unwrap() + 3_600_000;
    let config = crate::sdk_config(&crate::endpoint().unwrap()).await;
    Client::new(&config)
        .update_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(format!("stream#{stream}")))
        .key("sk", AttributeValue::S("head".into()))
        .update_expression("SET last_at = :ahead")
        .expression_attribute_values(":ahead", AttributeValue::N(ahead.to_string()))
        .send()
        .await
        .unwrap();
    let second = store
        .append(
            &stream,
            1,
            vec![envelope(blob_uploaded(&repo("clocks/app"), &digest("2"), 1))],
        )
        .await
        .unwrap();
    assert_eq!(second[0].position.millis(), Some(ahead));
    assert!(second[0].position > first[0].position);
    let all = store.read_all(&LogPosition::start(), 10).await.unwrap();
    assert_eq!(all.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    crate::drop_tables(&stores).await;
}

/// Quotas on DynamoDB: the project's quota stream head is the one item its additions share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushers_at_the_quota_limit_never_exceed_it() {
    let Some(stores) = crate::stores(1).await else {
        return;
    };
    let store = stores[0].clone();
    let blobs = tempfile::tempdir().unwrap();
    let registry = Registry::new(
        store.clone(),
        store.clone(),
        Arc::new(FsBlobStore::open(blobs.path()).unwrap()),
        Arc::new(SystemClock),
    );
    crate::quota_race::concurrent_pushers_at_the_limit_never_exceed_it(registry).await;
    crate::drop_tables(&stores).await;
}
