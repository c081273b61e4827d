//! Seeds a synthetic store for the garbage collection bench (bench/gc.sh): BLOBS blobs referenced
//! by MANIFESTS image manifests (a config and layers each, none shared), 100 manifests per
//! repository, one manifest in ten untagged (what `--delete-untagged` collects: a tenth of the
//! manifests and of the blobs). The same shape in either store:
//!
//! ```text
//! gc_seed berth DATA_DIR BLOBS MANIFESTS          # Berth's embedded store (redb + blobs on disk)
//! gc_seed aws NAME BLOBS MANIFESTS                # Berth on S3 + DynamoDB: bucket and table NAME
//! gc_seed distribution ROOT BLOBS MANIFESTS       # distribution 2.8's filesystem driver layout
//! ```
//!
//! Berth's store is written as a push would leave it (the same events, `BlobUploadCompleted`,
//! `ManifestPushed`, `TagMoved`, appended through the log's port with its inline projection), but
//! many pushes per transaction (embedded; one per transaction on DynamoDB, whose transactions
//! hold 100 items) and, on disk, the blob files without an fsync each: seeding a million blobs one
//! push at a time would take the better part of an hour. `aws` uses the environment's AWS
//! endpoints (scripts/local-stack.sh) and creates the bucket and table. Prints one line of JSON.

// A bench tool: any failure ends the run with its reason.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth::adapters::aws::AwsTargets;
use berth::adapters::dynamodb::DynamoStore;
use berth::adapters::embedded::RedbStore;
use berth::adapters::s3::S3BlobStore;
use berth::domain::{Algorithm, Digest, Event, EventEnvelope, RepoName, StreamId};
use berth::ports::{BlobStore, EventLog, StreamAppend};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const PER_REPOSITORY: usize = 100;
/// Pushes per transaction on the embedded store.
const BATCH: usize = 200;

/// One synthetic image: its blobs (bytes), its manifest (bytes), where and how it is pushed.
struct Image {
    repository: String,
    tag: Option<String>,
    blobs: Vec<Vec<u8>>,
    manifest: Vec<u8>,
}

fn sha256(bytes: &[u8]) -> Digest {
    Digest::compute(Algorithm::Sha256, bytes)
}

fn image(index: usize, blobs_per_image: usize) -> Image {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{index}}}"#).into_bytes();
    let layers: Vec<Vec<u8>> = (1..blobs_per_image)
        .map(|layer| format!("image {index} layer {layer}").into_bytes())
        .collect();
    let descriptor = |media: &str, bytes: &[u8]| serde_json::json!({"mediaType": media, "digest": sha256(bytes).to_string(), "size": bytes.len()});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(CONFIG_TYPE, &config),
        "layers": layers.iter().map(|l| descriptor(LAYER_TYPE, l)).collect::<Vec<_>>(),
    });
    let mut blobs = vec![config];
    blobs.extend(layers);
    Image {
        repository: format!("bench/r{:05}", index / PER_REPOSITORY),
        tag: (index % 10 != 9).then(|| format!("t{index}")),
        blobs,
        manifest: manifest.to_string().into_bytes(),
    }
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create a directory");
    }
    std::fs::write(path, bytes).expect("write a file");
}

fn berth_blob(root: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    root.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn envelope(event: Event) -> EventEnvelope {
    EventEnvelope {
        id: uuid::Uuid::now_v7().to_string(),
        time: chrono::Utc::now(),
        principal: "bench".to_string(),
        event,
    }
}

/// Where Berth's blob bytes go: files under the data dir, or the object store.
enum Bytes<'a> {
    Dir(&'a Path),
    Store(&'a dyn BlobStore),
}

impl Bytes<'_> {
    async fn put(&self, digest: &Digest, bytes: &[u8]) {
        match self {
            Bytes::Dir(root) => write(&berth_blob(root, digest), bytes),
            Bytes::Store(store) => store
                .put(digest, bytes.to_vec().into())
                .await
                .expect("put a blob"),
        }
    }
}

async fn seed_berth(
    log: &dyn EventLog,
    blob_bytes: Bytes<'_>,
    batch: usize,
    images: impl Iterator<Item = Image>,
) -> u64 {
    let store = log;
    let mut bytes = 0u64;
    let mut appends: Vec<StreamAppend> = Vec::new();
    let mut pushes = 0;
    for image in images {
        let repository: RepoName = image.repository.parse().expect("a repository name");
        let mut digests = Vec::new();
        for blob in &image.blobs {
            let digest = sha256(blob);
            blob_bytes.put(&digest, blob).await;
            bytes += blob.len() as u64;
            appends.push(StreamAppend {
                stream: StreamId::blob(&repository, &digest),
                expected: 0,
                events: vec![envelope(Event::BlobUploadCompleted {
                    repository: repository.clone(),
                    digest: digest.clone(),
                    size: blob.len() as u64,
                })],
            });
            digests.push(digest);
        }
        let digest = sha256(&image.manifest);
        blob_bytes.put(&digest, &image.manifest).await;
        bytes += image.manifest.len() as u64;
        appends.push(StreamAppend {
            stream: StreamId::manifest(&repository, &digest),
            expected: 0,
            events: vec![envelope(Event::ManifestPushed {
                repository: repository.clone(),
                digest: digest.clone(),
                media_type: MANIFEST_TYPE.to_string(),
                size: image.manifest.len() as u64,
                subject: None,
                artifact_type: None,
                config_media_type: Some(CONFIG_TYPE.to_string()),
                annotations: BTreeMap::new(),
                annotations_omitted: false,
                blobs: digests,
                manifests: vec![],
                content: None,
            })],
        });
        if let Some(tag) = image.tag {
            let tag = tag.parse().expect("a tag");
            appends.push(StreamAppend {
                stream: StreamId::tag(&repository, &tag),
                expected: 0,
                events: vec![envelope(Event::TagMoved {
                    repository,
                    tag,
                    digest,
                    previous: None,
                })],
            });
        }
        pushes += 1;
        if pushes % batch == 0 {
            store
                .append_atomic(std::mem::take(&mut appends))
                .await
                .expect("append a batch of pushes");
        }
    }
    if !appends.is_empty() {
        store
            .append_atomic(appends)
            .await
            .expect("append the last pushes");
    }
    bytes
}

fn seed_distribution(root: &Path, images: impl Iterator<Item = Image>) -> u64 {
    let v2 = root.join("docker/registry/v2");
    let link = |path: PathBuf, digest: &Digest| write(&path, digest.to_string().as_bytes());
    let blob = |digest: &Digest| {
        let hex = digest.hex();
        v2.join("blobs/sha256").join(&hex[..2]).join(hex).join("data")
    };
    let mut bytes = 0u64;
    for image in images {
        let repo = v2.join("repositories").join(&image.repository);
        for content in &image.blobs {
            let digest = sha256(content);
            write(&blob(&digest), content);
            bytes += content.len() as u64;
            link(
                repo.join("_layers/sha256").join(digest.hex()).join("link"),
                &digest,
            );
        }
        let digest = sha256(&image.manifest);
        write(&blob(&digest), &image.manifest);
        bytes += image.manifest.len() as u64;
        link(
            repo.join("_manifests/revisions/sha256")
                .join(digest.hex())
                .join("link"),
            &digest,
        );
        if let Some(tag) = image.tag {
            let tag = repo.join("_manifests/tags").join(tag);
            link(tag.join("current/link"), &digest);
            link(tag.join("index/sha256").join(digest.hex()).join("link"), &digest);
        }
    }
    bytes
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, root, blobs, manifests] = args.as_slice() else {
        eprintln!("usage: gc_seed (berth|aws|distribution) DIR|NAME BLOBS MANIFESTS");
        std::process::exit(2);
    };
    let (blobs, manifests): (usize, usize) = (
        blobs.parse().expect("BLOBS: a number"),
        manifests.parse().expect("MANIFESTS: a number"),
    );
    let per_image = (blobs / manifests).max(2);
    let images = (0..manifests).map(|i| image(i, per_image));
    let started = Instant::now();
    let root = Path::new(root);
    let bytes = match kind.as_str() {
        "berth" => {
            std::fs::create_dir_all(root).expect("create the data dir");
            let store = RedbStore::open(&root.join("berth.redb")).expect("open the embedded store");
            seed_berth(&store, Bytes::Dir(root), BATCH, images).await
        }
        "aws" => {
            let name = root.to_string_lossy().to_string();
            let targets = AwsTargets {
                bucket: name.clone(),
                table: name.clone(),
            };
            berth::adapters::aws::init(&targets)
                .await
                .expect("create the bucket and the table");
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let log = DynamoStore::new(&sdk, name.clone());
            let blobs = S3BlobStore::from_env(name).await;
            seed_berth(&log, Bytes::Store(&blobs), 1, images).await
        }
        "distribution" => seed_distribution(root, images),
        other => {
            eprintln!("unknown store {other}: berth, aws or distribution");
            std::process::exit(2);
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "store": kind, "manifests": manifests, "blobs": manifests * per_image,
            "untagged_manifests": manifests / 10, "bytes": bytes,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
}
