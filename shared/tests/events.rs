//! The CloudEvents Berth emits, held to the contract in `events/` at the repository root: one JSON Schema
//! per event type (`events/schemas/<type>.json`, sharing `common.json`) and one sample per type
//! (`events/samples/<type>.json`), generated from the code.
//!
//! Regenerate the samples after changing an event: `BERTH_UPDATE_SAMPLES=1 cargo nextest run -p
//! berth-shared --test events`, then review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use berth::domain::access::{Action, ContentTrust, ProjectName, RobotName, Role, Username};
use berth::domain::accessory::AccessoryKind;
use berth::domain::event::{EventKind, RetentionRow};
use berth::domain::lifecycle::immutability::{RuleSpec, SelectorSpec};
use berth::domain::lifecycle::retention::{PolicySpec, RetentionRuleSpec, TagSelectorSpec, Template};
use berth::domain::lifecycle::schedule::GcScheduleSpec;
use berth::domain::manifest::Content;
use berth::domain::replication::{
    FilterSpec, PolicySpec as ReplicationPolicySpec, RegistryKind, RegistrySpec, SealedCredential,
    TriggerSpec,
};
use berth::domain::{
    Algorithm, Digest, Event, EventEnvelope, LogPosition, RecordedEvent, RepoName, StreamId, Tag,
};
use berth::events_out::to_json;
use chrono::{DateTime, Utc};
use jsonschema::{Draft, Resource, Validator};
use serde_json::{json, Value};

/// The base of every schema's `$id`; `common.json` is registered under it, so no fetching happens.
const SCHEMA_BASE: &str = "https://berth.dev/events/schemas/";
const COMMON: &str = "common.json";
const UPDATE_ENV: &str = "BERTH_UPDATE_SAMPLES";
/// `data` fields an event may leave out.
const OPTIONAL_DATA_FIELDS: [&str; 16] = [
    "subject",
    "after",
    "scheduledFor",
    "artifactType",
    "previous",
    "quota",
    "expiresAt",
    "content",
    "metadata",
    "tags",
    "accessories",
    "blobsSent",
    "blobsMounted",
    "blobsPresent",
    "bytesSent",
    "deletion",
];
/// Fields of the logged events that never reach a CloudEvent (`events_out` removes them), and that no
/// schema allows.
const CREDENTIAL_FIELDS: [&str; 3] = ["passwordHash", "secretHash", "sealedSecret"];
/// An argon2id PHC string, as `passwordHash` and `secretHash` hold in the log.
const SAMPLE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YmVydGggc2FtcGxlIHNhbHQ$\
                           c2FtcGxlIGhhc2ggb2YgYSBzYW1wbGUgc2VjcmV0IDAxMjM0NTY3";

const SAMPLE_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEx/dpwlOHo9VbmuOXS5E+CMpF7I3X\n\
QB9vTSBJT6mnbNfPpFlcBC8NIX8EPUnzSfUuwKgMOn2Ds0jPNHxOZSiPtQ==\n\
-----END PUBLIC KEY-----\n";
const SAMPLE_CERTIFICATE: &str =
    "-----BEGIN CERTIFICATE-----\n(a CA certificate, base64)\n-----END CERTIFICATE-----\n";
const SAMPLE_TRUST_POLICY: &str = r#"{"version":"1.0","trustPolicies":[{"name":"team-web","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:team-web"],"trustedIdentities":["*"]}]}"#;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

// ---------------------------------------------------------------------------------------------------
// Files

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("events")
}

fn schema_path(cloud_type: &str) -> PathBuf {
    events_dir().join("schemas").join(format!("{cloud_type}.json"))
}

fn sample_path(cloud_type: &str) -> PathBuf {
    events_dir().join("samples").join(format!("{cloud_type}.json"))
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn updating_samples() -> bool {
    std::env::var_os(UPDATE_ENV).is_some_and(|v| v == "1")
}

/// Writes through a temporary file and a rename, so a test listing the samples in parallel never
/// reads half a file.
fn write_sample(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join(path.file_name().unwrap());
    fs::write(&tmp, &text).unwrap();
    if fs::rename(&tmp, path).is_err() {
        fs::write(path, &text).unwrap();
    }
}

fn kind_of_type(cloud_type: &str) -> Option<EventKind> {
    Event::KINDS.into_iter().find(|k| k.cloud_type == cloud_type)
}

// ---------------------------------------------------------------------------------------------------
// Schemas

fn options() -> jsonschema::ValidationOptions {
    let common = Resource::from_contents(read_json(&events_dir().join("schemas").join(COMMON))).unwrap();
    let mut options = jsonschema::options();
    options
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_resource(format!("{SCHEMA_BASE}{COMMON}"), common);
    options
}

fn validator(schema: &Value) -> Validator {
    options()
        .build(schema)
        .unwrap_or_else(|e| panic!("schema {} does not build: {e}", schema["$id"]))
}

fn schema_validator(cloud_type: &str) -> Validator {
    let path = schema_path(cloud_type);
    assert!(
        path.is_file(),
        "{cloud_type} has no schema: write {}",
        path.display()
    );
    validator(&read_json(&path))
}

/// A validator of one definition of `common.json`.
fn definition_validator(name: &str) -> Validator {
    validator(&json!({ "$ref": format!("{SCHEMA_BASE}{COMMON}#/$defs/{name}") }))
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} (at {})", e.instance_path))
        .collect()
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = errors(validator, instance);
    assert!(
        errors.is_empty(),
        "{what} should be valid, but: {errors:#?}\n{instance:#}"
    );
}

fn assert_invalid(validator: &Validator, instance: &Value, what: &str) {
    assert!(
        !validator.is_valid(instance),
        "{what} should be rejected:\n{instance:#}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Events, deterministic

fn digest(content: &str) -> Digest {
    Digest::compute(Algorithm::Sha256, content.as_bytes())
}

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

fn tag(name: &str) -> Tag {
    name.parse().unwrap()
}

fn project(name: &str) -> ProjectName {
    name.parse().unwrap()
}

fn user(name: &str) -> Username {
    name.parse().unwrap()
}

fn robot(name: &str) -> RobotName {
    name.parse().unwrap()
}

/// `2025-03-14T09:26:53.589Z` plus `seconds`.
fn selector(decoration: &str, pattern: &str) -> SelectorSpec {
    SelectorSpec {
        kind: "doublestar".to_string(),
        decoration: decoration.to_string(),
        pattern: pattern.to_string(),
    }
}

fn time(seconds: i64) -> DateTime<Utc> {
    let start = DateTime::parse_from_rfc3339("2025-03-14T09:26:53.589Z").unwrap();
    start.with_timezone(&Utc) + chrono::Duration::seconds(seconds)
}

/// A recorded event shaped like the log's: a UUIDv7 id of the event's time (with fixed random bits),
/// the principal `anonymous`, the repository's stream.
fn recorded(sequence: u64, version: u64, seconds: i64, event: Event) -> RecordedEvent {
    recorded_by("anonymous", sequence, version, seconds, event)
}

/// [`recorded`], caused by `principal`; access-control events are on the `access` stream.
fn recorded_by(principal: &str, sequence: u64, version: u64, seconds: i64, event: Event) -> RecordedEvent {
    let time = time(seconds);
    let millis = u64::try_from(time.timestamp_millis()).unwrap();
    let seed = Digest::compute(Algorithm::Sha256, &sequence.to_be_bytes());
    let random: [u8; 10] = hex::decode(&seed.hex()[..20]).unwrap().try_into().unwrap();
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    let stream = StreamId::of(&event);
    RecordedEvent {
        // As on DynamoDB; sequences are numbered into the same field by the embedded log.
        position: LogPosition::timed(millis, &stream, version),
        stream,
        version,
        envelope: EventEnvelope {
            id: id.to_string(),
            time,
            principal: principal.to_string(),
            event,
        },
    }
}

/// The empty JSON object, the config of artifacts (`application/vnd.oci.empty.v1+json`).
fn empty_config() -> Digest {
    digest("{}")
}

/// One event per type, its samples: a short story in `library/alpine`, then the life of the project
/// `team-web`, its member `bob` and its robot account `ci`, all by the admin, a garbage collection
/// run, a retention run, and a change of garbage collection's schedule. Optional fields are set, so
/// the samples show them; credential hashes are set too, and the CloudEvents leave them out.
fn sample_events() -> Vec<RecordedEvent> {
    let mut events = repository_sample_events();
    events.extend(access_sample_events());
    events.extend(gc_sample_events());
    events.extend(retention_sample_events());
    events.extend(gc_schedule_sample_events());
    events.extend(replication_sample_events());
    events
}

/// Then the admin adds the registry endpoint replication copies to: the disaster-recovery Berth,
/// signed in to as a robot account whose secret is sealed in the log (and never published).
fn replication_sample_events() -> Vec<RecordedEvent> {
    let registry = RegistrySpec {
        id: 15,
        name: "berth-dr".to_string(),
        description: "The disaster-recovery registry".to_string(),
        kind: RegistryKind::Harbor,
        url: "https://dr.registry.example".to_string(),
        insecure: false,
        ca_certificate: Some(SAMPLE_CERTIFICATE.to_string()),
        credential: Some(SealedCredential {
            access_key: "robot$replicator".to_string(),
            sealed_secret: "aes256gcm:5f0c2a9e:c2VhbGVkIHNhbXBsZSBzZWNyZXQ=".to_string(),
        }),
    };
    let policy = ReplicationPolicySpec {
        id: 16,
        name: "signed-to-dr".to_string(),
        description: "Signed images of team-web, every hour".to_string(),
        source_registry: None,
        destination_registry: Some(15),
        destination_namespace: "team-web-dr".to_string(),
        destination_namespace_replace_count: 1,
        filters: vec![
            FilterSpec::Name {
                pattern: "team-web/**".to_string(),
                excludes: false,
            },
            FilterSpec::Tag {
                pattern: "*-rc*".to_string(),
                excludes: true,
            },
            FilterSpec::Resource {
                resource: "image".to_string(),
            },
            FilterSpec::Signed,
        ],
        trigger: TriggerSpec::Scheduled {
            cron: "0 0 * * * *".to_string(),
        },
        deletion: true,
        override_existing: true,
        enabled: true,
        speed_kb: 10_240,
        copy_by_chunk: true,
        single_active_replication: false,
    };
    vec![
        recorded_by(
            "admin",
            7_001,
            60,
            86_400 + 240,
            Event::RegistryChanged {
                id: 15,
                registry: Some(registry),
            },
        ),
        recorded_by(
            "admin",
            7_002,
            61,
            86_400 + 300,
            Event::ReplicationPolicyChanged {
                id: 16,
                policy: Some(policy),
            },
        ),
        recorded_by(
            "admin",
            7_003,
            1,
            86_400 + 3_600,
            Event::ReplicationStarted {
                policy: 16,
                trigger: "SCHEDULE".to_string(),
                scheduled_for: Some(time(86_400 + 3_600)),
            },
        ),
        recorded_by(
            "admin",
            7_004,
            2,
            86_400 + 3_603,
            Event::ReplicationTaskFinished {
                policy: 16,
                execution: 1,
                resource_type: "image".to_string(),
                source: "team-web/app".to_string(),
                destination: "team-web-dr/app".to_string(),
                digest: digest("team-web/app 1.0 image manifest"),
                tags: vec!["1.0".to_string()],
                accessories: 2,
                status: "Succeed".to_string(),
                blobs_sent: 3,
                blobs_mounted: 1,
                blobs_present: 0,
                bytes_sent: 3_623_807,
                deletion: false,
                error: None,
            },
        ),
        recorded_by(
            "admin",
            7_005,
            3,
            86_400 + 3_603,
            Event::ReplicationFinished {
                policy: 16,
                execution: 1,
                status: "Succeed".to_string(),
                error: None,
            },
        ),
    ]
}

/// After the retention run, the admin makes garbage collection's schedule daily (at midnight, UTC),
/// untagged manifests collected too: an access-control event, after the retention policy's change.
fn gc_schedule_sample_events() -> Vec<RecordedEvent> {
    vec![recorded_by(
        "admin",
        7_000,
        59,
        86_400 + 180,
        Event::GcScheduleChanged {
            schedule: Some(GcScheduleSpec {
                kind: "Daily".to_string(),
                cron: "0 0 0 * * *".to_string(),
                delete_untagged: true,
                dry_run: false,
            }),
        },
    )]
}

/// A tag retention policy's rule that keeps the `k` most recently pushed artifacts, untagged ones
/// included, in every repository of its project.
fn latest_pushed_rule(id: u64, k: u32) -> RetentionRuleSpec {
    RetentionRuleSpec {
        id,
        priority: 0,
        disabled: false,
        template: Template::LatestPushedK,
        param: Some(k),
        tag_selectors: vec![TagSelectorSpec {
            kind: "doublestar".to_string(),
            decoration: "matches".to_string(),
            pattern: "**".to_string(),
            untagged: true,
        }],
        repository_selectors: vec![selector("repoMatches", "**")],
    }
}

/// Tag retention, a day later: an anonymous pull of `library/alpine` (a last-pull time retention
/// judges by), then the admin gives `team-web` a policy (its id 14 is a directory id) that keeps
/// the 2 most recently pushed artifacts of each repository, and runs it: its execution 1 (the
/// version of its `RetentionStarted`) deletes the oldest of `team-web/app`'s 3 artifacts and ends.
fn retention_sample_events() -> Vec<RecordedEvent> {
    let at = |seconds: i64| 86_400 + seconds;
    let days_ago = |days: i64| time(at(0)) - chrono::Duration::days(days);
    let app = || repo("team-web/app");
    let policy = 14;
    vec![
        recorded(
            6_000,
            3,
            at(0),
            Event::ArtifactPulled {
                repository: repo("library/alpine"),
                digest: digest("alpine 3.21.3 image manifest"),
            },
        ),
        recorded_by(
            "admin",
            6_001,
            58,
            at(60),
            Event::RetentionPolicyChanged {
                project: project("team-web"),
                policy: Some(PolicySpec {
                    id: policy,
                    rules: vec![latest_pushed_rule(1, 2)],
                    schedule: Some("0 2 0 * * *".to_string()),
                }),
            },
        ),
        recorded_by(
            "system",
            6_002,
            1,
            at(120),
            Event::RetentionStarted {
                policy,
                project: project("team-web"),
                dry_run: false,
                trigger: "Schedule".to_string(),
                scheduled_for: Some(time(at(120))),
            },
        ),
        recorded_by(
            "admin",
            6_003,
            2,
            at(121),
            Event::RetentionTaskFinished {
                policy,
                execution: 1,
                repository: app(),
                status: "Success".to_string(),
                total: 3,
                retained: 2,
                deleted: 1,
                // Deletions first, then what was kept.
                rows: vec![
                    RetentionRow {
                        digest: digest("team-web/app 1.4.0 image manifest"),
                        tags: vec!["1.4.0".to_string()],
                        pushed: days_ago(30),
                        pulled: None,
                        outcome: "DEL".to_string(),
                    },
                    RetentionRow {
                        digest: digest("team-web/app 1.4.2 image manifest"),
                        tags: vec!["1.4.2".to_string(), "latest".to_string()],
                        pushed: days_ago(2),
                        pulled: Some(time(at(-3_600))),
                        outcome: "RETAIN".to_string(),
                    },
                    RetentionRow {
                        digest: digest("team-web/app 1.4.1 image manifest"),
                        tags: vec!["1.4.1".to_string()],
                        pushed: days_ago(9),
                        pulled: Some(days_ago(3)),
                        outcome: "RETAIN".to_string(),
                    },
                ],
                rows_omitted: 0,
                error: None,
            },
        ),
        recorded_by(
            "admin",
            6_004,
            3,
            at(122),
            Event::RetentionFinished {
                policy,
                execution: 1,
                status: "Success".to_string(),
            },
        ),
    ]
}

/// A garbage collection run by the system, started by the schedule (hourly then) for its 10:00 firing:
/// it starts (raising the fence), condemns an unused blob that a push then spares, deletes another
/// (condemned too: its version 1 is left out, one sample per type), checkpoints after its first
/// repository, is asked to stop by an admin, and ends, stopped, after that page of blobs.
fn gc_sample_events() -> Vec<RecordedEvent> {
    let (kept, freed) = (digest("a layer pushed again"), digest("an old rootfs layer"));
    let at = |seconds: i64| 3_600 + seconds;
    let firing: DateTime<Utc> = "2025-03-14T10:00:00Z".parse().unwrap();
    assert!(firing <= time(at(0)));
    vec![
        recorded_by(
            "system",
            5_000,
            1,
            at(0),
            Event::GcStarted {
                delete_untagged: true,
                dry_run: false,
                cutoff: time(at(0)) - chrono::Duration::hours(2),
                scheduled_for: Some(firing),
            },
        ),
        recorded_by(
            "system",
            5_001,
            1,
            at(40),
            Event::BlobCondemned { digest: kept.clone() },
        ),
        recorded_by(
            "system",
            5_007,
            2,
            at(41),
            Event::GcCheckpoint {
                run: 1,
                phase: 1,
                after: Some("library/alpine".to_string()),
                manifests_deleted: 2,
                links_removed: 5,
                blobs_deleted: 0,
                bytes_freed: 0,
                paused: false,
            },
        ),
        recorded_by("admin", 5_008, 3, at(41), Event::GcStopRequested { run: 1 }),
        recorded_by("alice", 5_002, 2, at(41), Event::BlobSpared { digest: kept }),
        recorded_by(
            "system",
            5_004,
            2,
            at(42),
            Event::BlobDeleting {
                digest: freed.clone(),
            },
        ),
        recorded_by(
            "system",
            5_005,
            3,
            at(43),
            Event::BlobDeleted {
                digest: freed,
                size: 3_623_807,
            },
        ),
        recorded_by(
            "system",
            5_006,
            4,
            at(44),
            Event::GcFinished {
                run: 1,
                status: "Stopped".to_string(),
                manifests_deleted: 2,
                links_removed: 5,
                blobs_deleted: 1,
                bytes_freed: 3_623_807,
                duration_ms: 44_120,
                error: None,
            },
        ),
    ]
}

fn repository_sample_events() -> Vec<RecordedEvent> {
    let alpine = || repo("library/alpine");
    let layer = digest("alpine 3.21.3 rootfs layer");
    let image = digest("alpine 3.21.3 image manifest");
    let old_image = digest("alpine 3.21.2 image manifest");
    let sbom = digest("alpine 3.21.3 spdx sbom");
    let old_signature = digest("alpine 3.21.2 cosign signature");
    let signature = digest("alpine 3.21.3 cosign signature");
    let notation = digest("alpine 3.21.3 notation signature");
    vec![
        recorded(
            1041,
            12,
            0,
            Event::BlobUploadCompleted {
                repository: alpine(),
                digest: layer.clone(),
                size: 3_642_247,
            },
        ),
        recorded(
            1042,
            3,
            1,
            Event::BlobMounted {
                repository: repo("team-web/frontend"),
                digest: layer.clone(),
                size: 3_642_247,
                from: alpine(),
            },
        ),
        recorded(
            1043,
            13,
            4,
            Event::ManifestPushed {
                repository: alpine(),
                digest: sbom.clone(),
                media_type: OCI_MANIFEST.to_string(),
                size: 752,
                subject: Some(image.clone()),
                artifact_type: Some("application/spdx+json".to_string()),
                config_media_type: Some("application/vnd.oci.empty.v1+json".to_string()),
                annotations: [
                    ("org.opencontainers.image.created", "2025-03-14T09:26:50Z"),
                    (
                        "org.opencontainers.image.description",
                        "SPDX SBOM of alpine 3.21.3",
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                annotations_omitted: false,
                blobs: vec![empty_config(), digest("alpine 3.21.3 spdx document")],
                manifests: vec![],
                content: Some(Content::Sbom),
            },
        ),
        recorded(
            1044,
            14,
            5,
            Event::TagMoved {
                repository: alpine(),
                tag: tag("3.21"),
                digest: image.clone(),
                previous: Some(old_image.clone()),
            },
        ),
        recorded(
            1045,
            15,
            9,
            Event::TagDeleted {
                repository: alpine(),
                tag: tag("3.21.2"),
                digest: old_image.clone(),
            },
        ),
        recorded(
            1046,
            16,
            9,
            Event::ManifestDeleted {
                repository: alpine(),
                digest: old_signature,
                media_type: OCI_MANIFEST.to_string(),
                subject: Some(old_image),
                artifact_type: Some("application/vnd.dev.cosign.artifact.sig.v1+json".to_string()),
                config_media_type: Some("application/vnd.oci.empty.v1+json".to_string()),
            },
        ),
        recorded(
            1047,
            17,
            12,
            Event::BlobUnlinked {
                repository: alpine(),
                digest: digest("alpine 3.21.2 rootfs layer"),
                size: 3_642_247,
            },
        ),
        recorded_by(
            "admin",
            1070,
            18,
            30,
            Event::AccessoryLinked {
                repository: alpine(),
                subject: image.clone(),
                digest: signature.clone(),
                kind: AccessoryKind::CosignSignature,
                via_tag: Some(tag(&format!("{}.sig", image.tag_form()))),
            },
        ),
        recorded_by(
            "admin",
            1071,
            19,
            30,
            Event::SignatureVerified {
                repository: alpine(),
                subject: image.clone(),
                digest: signature.clone(),
                kind: AccessoryKind::CosignSignature,
                trust_revision: 57,
                signer: format!("sha256:{}", digest("cosign.pub").hex()),
                warnings: vec![],
            },
        ),
        recorded_by(
            "admin",
            1072,
            20,
            31,
            Event::SignatureRejected {
                repository: alpine(),
                subject: image.clone(),
                digest: notation.clone(),
                kind: AccessoryKind::NotationSignature,
                trust_revision: 57,
                reason: "the signature expired at 2023-06-27T05:21:21Z".to_string(),
            },
        ),
        recorded_by(
            "admin",
            1073,
            21,
            40,
            Event::AccessoryUnlinked {
                repository: alpine(),
                subject: image,
                digest: notation,
                kind: AccessoryKind::NotationSignature,
            },
        ),
        recorded(
            1074,
            4,
            41,
            Event::QuotaUsed {
                project: "team-web".parse().unwrap(),
                repository: repo("team-web/frontend"),
                digest: layer,
                size: 3_642_247,
            },
        ),
    ]
}

fn access_sample_events() -> Vec<RecordedEvent> {
    const GIB: u64 = 1 << 30;
    let team = || project("team-web");
    let bob = || user("bob");
    let ci = || robot("robot$team-web+ci");
    let expires = time(365 * 24 * 3600);
    let events = vec![
        Event::ProjectCreated {
            project: team(),
            id: 7,
            public: false,
            quota: Some(10 * GIB),
            metadata: Default::default(),
        },
        Event::UserCreated {
            username: bob(),
            id: 8,
            password_hash: SAMPLE_HASH.to_string(),
            admin: false,
        },
        Event::MemberAdded {
            project: team(),
            username: bob(),
            role: Role::Developer,
            id: 9,
        },
        Event::MemberRoleChanged {
            project: team(),
            username: bob(),
            role: Role::Maintainer,
        },
        Event::UserPasswordChanged {
            username: bob(),
            password_hash: SAMPLE_HASH.replace("YmVydGggc2FtcGxlIHNhbHQ", "YW5vdGhlciBzYWx0"),
        },
        Event::UserAdminChanged {
            username: bob(),
            admin: true,
        },
        Event::RobotCreated {
            robot: ci(),
            id: 10,
            description: "CI pipeline of team-web".to_string(),
            actions: [Action::Pull, Action::Push].into(),
            expires_at: Some(expires),
            secret_hash: SAMPLE_HASH.to_string(),
        },
        Event::RobotUpdated {
            robot: ci(),
            description: "CI pipeline of team-web, cleans up old builds".to_string(),
            actions: Action::ALL.into(),
            expires_at: Some(expires),
            disabled: false,
        },
        Event::RobotSecretRefreshed {
            robot: ci(),
            secret_hash: SAMPLE_HASH.replace("YmVydGggc2FtcGxlIHNhbHQ", "bmV3IHNhbHQ"),
        },
        Event::ProjectUpdated {
            project: team(),
            public: true,
            quota: Some(20 * GIB),
            metadata: [("auto_scan", "true"), ("severity", "high")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        },
        Event::MemberRemoved {
            project: team(),
            username: bob(),
        },
        Event::UserDeleted { username: bob() },
        Event::RobotDeleted { robot: ci() },
        Event::ProjectTrustConfigured {
            project: team(),
            trust: ContentTrust {
                require_cosign: true,
                require_notation: true,
                cosign_keys: vec![SAMPLE_PUBLIC_KEY.to_string()],
                rekor_keys: vec![],
                notation_trust_stores: [("ca:team-web".to_string(), SAMPLE_CERTIFICATE.to_string())].into(),
                notation_trust_policy: Some(SAMPLE_TRUST_POLICY.to_string()),
            },
        },
        Event::ImmutableTagRulesChanged {
            project: team(),
            rules: vec![
                RuleSpec {
                    id: 12,
                    priority: 0,
                    disabled: false,
                    tag_selectors: vec![selector("matches", "v*")],
                    repository_selectors: vec![selector("repoMatches", "**")],
                },
                RuleSpec {
                    id: 13,
                    priority: 1,
                    disabled: true,
                    tag_selectors: vec![selector("excludes", "{latest,dev-*}")],
                    repository_selectors: vec![selector("repoExcludes", "sandbox/**")],
                },
            ],
        },
        Event::ProjectDeleted { project: team() },
    ];
    (events.into_iter().zip(0_u32..))
        .map(|(event, n)| {
            let n64 = u64::from(n);
            recorded_by("admin", 1048 + n64, 41 + n64, 20 + 10 * i64::from(n), event)
        })
        .collect()
}

/// Other shapes Berth emits, beyond the samples: optional fields absent, indexes, Docker media types,
/// sha512 digests, names at the edges of their grammars, the empty blob, every role, every retention
/// template, trigger, status and outcome, every type of garbage collection's schedule and its removal.
fn other_events() -> Vec<RecordedEvent> {
    let plain_registry = Event::RegistryChanged {
        id: 3,
        registry: Some(RegistrySpec {
            id: 3,
            name: "hub mirror".to_string(),
            description: String::new(),
            kind: RegistryKind::DockerRegistry,
            url: "http://127.0.0.1:5000".to_string(),
            insecure: true,
            ca_certificate: None,
            credential: None,
        }),
    };
    let sha512 = Digest::compute(Algorithm::Sha512, b"a sha512 blob");
    let odd_repo = || repo("a.b_c__d---e/f0/x");
    let long_repo = || repo(&format!("{}/{}", "a".repeat(127), "b".repeat(127)));
    let child = |n: u32| digest(&format!("child manifest {n}"));
    let image = |media_type: &str| Event::ManifestPushed {
        repository: repo("library/busybox"),
        digest: digest(&format!("{media_type} image")),
        media_type: media_type.to_string(),
        size: 1_024,
        subject: None,
        artifact_type: None,
        config_media_type: Some("application/vnd.oci.image.config.v1+json".to_string()),
        annotations: Default::default(),
        annotations_omitted: false,
        blobs: vec![digest("config"), digest("layer 1"), sha512.clone()],
        manifests: vec![],
        content: Some(Content::Filesystem),
    };
    let index = |media_type: &str| Event::ManifestPushed {
        repository: repo("library/busybox"),
        digest: digest(&format!("{media_type} index")),
        media_type: media_type.to_string(),
        size: 0,
        subject: None,
        artifact_type: None,
        config_media_type: None,
        annotations: Default::default(),
        annotations_omitted: false,
        blobs: vec![],
        manifests: vec![child(1), child(2)],
        content: Some(Content::Index),
    };
    let events = vec![
        Event::BlobUploadCompleted {
            repository: odd_repo(),
            digest: sha512.clone(),
            size: 0,
        },
        Event::BlobUploadCompleted {
            repository: long_repo(),
            digest: digest(""),
            size: u64::MAX,
        },
        Event::BlobMounted {
            repository: repo("0"),
            digest: sha512.clone(),
            size: 1,
            from: odd_repo(),
        },
        Event::BlobUnlinked {
            repository: long_repo(),
            digest: sha512.clone(),
            size: 0,
        },
        image(OCI_MANIFEST),
        image(DOCKER_MANIFEST),
        index(OCI_INDEX),
        index(DOCKER_LIST),
        Event::ManifestPushed {
            repository: repo("library/busybox"),
            digest: digest("an index with an artifact type and a subject"),
            media_type: OCI_INDEX.to_string(),
            size: 400,
            subject: Some(digest("subject")),
            artifact_type: Some("application/vnd.example+type".to_string()),
            config_media_type: None,
            annotations: [("a".to_string(), String::new())].into_iter().collect(),
            annotations_omitted: false,
            blobs: vec![],
            manifests: vec![],
            content: None,
        },
        Event::TagMoved {
            repository: odd_repo(),
            tag: tag("_x"),
            digest: digest("new"),
            previous: None,
        },
        Event::TagDeleted {
            repository: odd_repo(),
            tag: tag(&format!("A{}", "-".repeat(127))),
            digest: digest("old"),
        },
        Event::ManifestDeleted {
            repository: odd_repo(),
            digest: digest("an image"),
            media_type: DOCKER_LIST.to_string(),
            subject: None,
            artifact_type: None,
            config_media_type: None,
        },
    ];
    (events.into_iter())
        .chain(other_access_events())
        .chain(other_retention_events())
        .chain(other_gc_events())
        .chain([
            plain_registry,
            Event::RegistryChanged {
                id: 3,
                registry: None,
            },
            Event::ReplicationPolicyChanged {
                id: 4,
                policy: Some(ReplicationPolicySpec {
                    id: 4,
                    name: "pull nightly".to_string(),
                    description: String::new(),
                    source_registry: Some(3),
                    destination_registry: None,
                    destination_namespace: String::new(),
                    destination_namespace_replace_count: -1,
                    filters: vec![FilterSpec::Verified],
                    trigger: TriggerSpec::EventBased,
                    deletion: false,
                    override_existing: false,
                    enabled: false,
                    speed_kb: 0,
                    copy_by_chunk: false,
                    single_active_replication: true,
                }),
            },
            Event::ReplicationPolicyChanged { id: 4, policy: None },
            Event::ReplicationStarted {
                policy: 4,
                trigger: "EVENT_BASED".to_string(),
                scheduled_for: None,
            },
            Event::ReplicationTaskFinished {
                policy: 4,
                execution: 7,
                resource_type: "artifact".to_string(),
                source: "a/b".to_string(),
                destination: "a/b".to_string(),
                digest: digest("a chart"),
                tags: vec![],
                accessories: 0,
                status: "Failed".to_string(),
                blobs_sent: 0,
                blobs_mounted: 0,
                blobs_present: 0,
                bytes_sent: 0,
                deletion: true,
                error: Some(
                    "DELETE http://127.0.0.1:5000/v2/a/b/manifests/x: the registry answered 405".to_string(),
                ),
            },
            Event::ReplicationFinished {
                policy: 4,
                execution: 7,
                status: "Failed".to_string(),
                error: Some("registry 3 of the policy no longer exists".to_string()),
            },
        ])
        .enumerate()
        .map(|(i, event)| {
            let n = u64::try_from(i).unwrap();
            recorded(
                u64::from(u32::MAX) + n,
                1 + n,
                60 + i64::try_from(i).unwrap(),
                event,
            )
        })
        .collect()
}

fn other_access_events() -> Vec<Event> {
    let long_project = || project(&"p".repeat(255));
    let odd_project = || project("a.b_c-d0");
    let long_robot = || RobotName::new(&long_project(), &format!("r.{}", "x".repeat(253))).unwrap();
    let odd_user = || user("alice.o'brien@example.com");
    let punctuation = || user("!#%&'()*,-.;<=>?@[]^_`{|}~");
    let mut events = vec![
        Event::ProjectCreated {
            project: long_project(),
            id: 1,
            public: true,
            quota: None,
            metadata: Default::default(),
        },
        Event::ProjectCreated {
            project: odd_project(),
            id: u64::MAX,
            public: false,
            quota: Some(0),
            metadata: [("retention_id", ""), ("proxy_speed_kb", "-1")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        },
        Event::ProjectUpdated {
            project: project("0"),
            public: false,
            quota: None,
            metadata: Default::default(),
        },
        Event::ProjectUpdated {
            project: odd_project(),
            public: true,
            quota: Some(u64::MAX),
            metadata: Default::default(),
        },
        Event::UserCreated {
            username: odd_user(),
            id: 2,
            password_hash: SAMPLE_HASH.to_string(),
            admin: true,
        },
        Event::UserCreated {
            username: user(&"U".repeat(255)),
            id: 3,
            password_hash: String::new(),
            admin: false,
        },
        Event::UserPasswordChanged {
            username: punctuation(),
            password_hash: SAMPLE_HASH.to_string(),
        },
        Event::UserAdminChanged {
            username: odd_user(),
            admin: false,
        },
        Event::UserDeleted {
            username: punctuation(),
        },
        Event::MemberRemoved {
            project: long_project(),
            username: punctuation(),
        },
        Event::RobotCreated {
            robot: long_robot(),
            id: 4,
            description: String::new(),
            actions: [Action::Pull].into(),
            expires_at: None,
            secret_hash: SAMPLE_HASH.to_string(),
        },
        Event::RobotUpdated {
            robot: robot("robot$a.b_c-d0+x"),
            description: "é ✓ \"quoted\"\nmultiline".to_string(),
            actions: [Action::Delete].into(),
            expires_at: None,
            disabled: true,
        },
        Event::RobotSecretRefreshed {
            robot: long_robot(),
            secret_hash: SAMPLE_HASH.to_string(),
        },
        Event::RobotDeleted {
            robot: robot("robot$0+1"),
        },
    ];
    for (role, id) in [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest]
        .into_iter()
        .zip(5..)
    {
        events.push(Event::MemberAdded {
            project: odd_project(),
            username: odd_user(),
            role,
            id,
        });
        events.push(Event::MemberRoleChanged {
            project: long_project(),
            username: punctuation(),
            role,
        });
    }
    events
}

fn other_retention_events() -> Vec<Event> {
    let sha512 = Digest::compute(Algorithm::Sha512, b"a sha512 manifest");
    let long_repo = || repo(&format!("{}/{}", "p".repeat(127), "b".repeat(127)));
    let row = |digest: Digest, tags: &[&str], pulled: Option<DateTime<Utc>>, outcome: &str| RetentionRow {
        digest,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        pushed: time(-86_400),
        pulled,
        outcome: outcome.to_string(),
    };
    let rule = |id: u64, template: Template, param: Option<u32>| RetentionRuleSpec {
        template,
        param,
        ..latest_pushed_rule(id, 0)
    };
    vec![
        Event::ArtifactPulled {
            repository: long_repo(),
            digest: sha512.clone(),
        },
        Event::RetentionPolicyChanged {
            project: project("a.b_c-d0"),
            policy: None,
        },
        Event::RetentionPolicyChanged {
            project: project("0"),
            policy: Some(PolicySpec {
                id: u64::MAX,
                rules: vec![],
                schedule: None,
            }),
        },
        Event::RetentionPolicyChanged {
            project: project(&"p".repeat(255)),
            policy: Some(PolicySpec {
                id: 1,
                schedule: Some("0 30 2 * * 1-5".to_string()),
                rules: vec![
                    rule(0, Template::LatestPushedK, Some(32_766)),
                    rule(2, Template::LatestPulledN, Some(0)),
                    rule(3, Template::NDaysSinceLastPush, Some(20_190_904)),
                    rule(4, Template::NDaysSinceLastPull, Some(7)),
                    RetentionRuleSpec {
                        priority: -1,
                        disabled: true,
                        tag_selectors: vec![
                            TagSelectorSpec {
                                kind: "doublestar".to_string(),
                                decoration: "excludes".to_string(),
                                pattern: "{latest,dev-*}".to_string(),
                                untagged: false,
                            },
                            TagSelectorSpec {
                                kind: "doublestar".to_string(),
                                decoration: "matches".to_string(),
                                pattern: "v*".to_string(),
                                untagged: false,
                            },
                        ],
                        repository_selectors: vec![
                            selector("repoExcludes", "sandbox/**"),
                            selector("repoMatches", "**"),
                        ],
                        ..rule(u64::MAX, Template::Always, None)
                    },
                ],
            }),
        },
        Event::RetentionStarted {
            policy: u64::MAX,
            project: project(&"p".repeat(255)),
            dry_run: true,
            trigger: "MANUAL".to_string(),
            scheduled_for: None,
        },
        Event::RetentionTaskFinished {
            policy: 1,
            execution: u64::MAX,
            repository: long_repo(),
            status: "Error".to_string(),
            total: 504,
            retained: 503,
            deleted: 1,
            rows: vec![
                row(digest("deleted"), &[], None, "DEL"),
                row(sha512.clone(), &["v1", "_x"], Some(time(0)), "IMMUTABLE"),
                row(digest("a failed deletion"), &["a"], None, "ERR"),
                row(digest("kept"), &[], Some(time(-60)), "RETAIN"),
            ],
            rows_omitted: 500,
            error: Some(format!("{}: storage unavailable", digest("a failed deletion"))),
        },
        Event::RetentionTaskFinished {
            policy: 2,
            execution: 3,
            repository: repo("0/x"),
            status: "Success".to_string(),
            total: 0,
            retained: 0,
            deleted: 0,
            rows: vec![],
            rows_omitted: 0,
            error: None,
        },
        Event::RetentionFinished {
            policy: 2,
            execution: 3,
            status: "Stopped".to_string(),
        },
        Event::RetentionFinished {
            policy: u64::MAX,
            execution: 1,
            status: "Error".to_string(),
        },
    ]
}

fn other_gc_events() -> Vec<Event> {
    let schedule = |kind: &str, cron: &str, delete_untagged: bool, dry_run: bool| {
        let spec = GcScheduleSpec {
            kind: kind.to_string(),
            cron: cron.to_string(),
            delete_untagged,
            dry_run,
        };
        assert!(spec.compile().is_ok(), "the directory refuses {spec:?}");
        Event::GcScheduleChanged { schedule: Some(spec) }
    };
    vec![
        Event::GcStarted {
            delete_untagged: false,
            dry_run: true,
            cutoff: time(0),
            scheduled_for: None,
        },
        Event::GcStarted {
            delete_untagged: false,
            dry_run: true,
            cutoff: time(0),
            scheduled_for: Some(time(7_200)),
        },
        Event::GcScheduleChanged { schedule: None },
        schedule("Hourly", "0 0 * * * *", false, false),
        schedule("Weekly", "0 0 0 * * SUN", false, true),
        schedule("Custom", "0 30 2 * * 1-5", true, true),
        schedule("Schedule", "0 */15 * 1,15 JAN-JUN SUN", true, false),
        // A cron given for a type that has Harbor's own, its fields as they were sent.
        schedule("Daily", "0  0 3 * * *", false, false),
    ]
}

fn cloud_event(recorded: &RecordedEvent) -> Value {
    to_json(recorded).unwrap_or_else(|e| panic!("{:?} has no CloudEvent: {e}", recorded.envelope.event))
}

/// The sample of each event type, as (type, JSON): what the checked-in samples hold when they are up
/// to date (another test checks that), built from the code so they never race a regeneration.
fn samples() -> Vec<(String, Value)> {
    (sample_events().iter())
        .map(|r| (r.envelope.event.kind().cloud_type.to_string(), cloud_event(r)))
        .collect()
}

fn sample_of(cloud_type: &str) -> Value {
    samples().into_iter().find(|(t, _)| t == cloud_type).unwrap().1
}

// ---------------------------------------------------------------------------------------------------
// Coverage

#[test]
fn every_event_type_has_a_sample_event_a_schema_and_a_sample_file() {
    let sampled: Vec<EventKind> = sample_events().iter().map(|r| r.envelope.event.kind()).collect();
    for kind in Event::KINDS {
        let count = sampled.iter().filter(|k| **k == kind).count();
        assert_eq!(
            count, 1,
            "{} needs exactly one event in sample_events() of tests/events.rs, has {count}",
            kind.name
        );
        assert_eq!(
            kind.cloud_type,
            format!("dev.berth.{}.v{}", snake(kind.name), kind.version)
        );
        assert!(
            schema_path(kind.cloud_type).is_file(),
            "{} has no schema: write {}",
            kind.name,
            schema_path(kind.cloud_type).display()
        );
        assert!(
            updating_samples() || sample_path(kind.cloud_type).is_file(),
            "{} has no sample: run with {UPDATE_ENV}=1",
            kind.name
        );
    }
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn every_schema_names_its_type_and_nothing_else_lives_in_the_events_directory() {
    let common = read_json(&events_dir().join("schemas").join(COMMON));
    assert_eq!(common["$id"], format!("{SCHEMA_BASE}{COMMON}"));
    for (dir, allowed_extra) in [("schemas", Some(COMMON)), ("samples", None)] {
        for entry in fs::read_dir(events_dir().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if Some(name.as_str()) == allowed_extra {
                continue;
            }
            let cloud_type = name
                .strip_suffix(".json")
                .unwrap_or_else(|| panic!("{dir}/{name}: not JSON"));
            assert!(
                kind_of_type(cloud_type).is_some(),
                "events/{dir}/{name} names no event type of Event::KINDS (stale after a rename?)"
            );
        }
    }
    for kind in Event::KINDS {
        let schema = read_json(&schema_path(kind.cloud_type));
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(schema["$id"], format!("{SCHEMA_BASE}{}.json", kind.cloud_type));
        assert_eq!(schema["title"], kind.cloud_type);
        assert_eq!(schema["properties"]["type"]["const"], kind.cloud_type);
        assert_eq!(schema["properties"]["data"]["additionalProperties"], false);
    }
}

// ---------------------------------------------------------------------------------------------------
// Samples

#[test]
fn the_cloud_event_of_each_sample_event_matches_its_schema_and_its_checked_in_sample() {
    let mut stale = Vec::new();
    for recorded in sample_events() {
        let kind = recorded.envelope.event.kind();
        let event = cloud_event(&recorded);
        assert_valid(&schema_validator(kind.cloud_type), &event, kind.cloud_type);
        let path = sample_path(kind.cloud_type);
        if updating_samples() {
            write_sample(&path, &event);
        } else if !path.is_file() {
            stale.push(format!("{} is missing", path.display()));
        } else if read_json(&path) != event {
            stale.push(format!(
                "{} differs from the code's event:\n{}",
                path.display(),
                serde_json::to_string_pretty(&event).unwrap()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "samples out of date (regenerate with {UPDATE_ENV}=1 and review the diff):\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_checked_in_sample_is_valid_against_the_schema_its_file_name_names() {
    if updating_samples() {
        return;
    }
    for entry in fs::read_dir(events_dir().join("samples")).unwrap() {
        let path = entry.unwrap().path();
        let cloud_type = path.file_stem().unwrap().to_str().unwrap().to_string();
        let sample = read_json(&path);
        assert_eq!(
            sample["type"],
            cloud_type.as_str(),
            "{} has another type",
            path.display()
        );
        assert_valid(
            &schema_validator(&cloud_type),
            &sample,
            &path.display().to_string(),
        );
    }
}

/// The `source`, `berthstream` and `subject` an event's `data` implies, as the README states them.
fn expected_attributes(event: &Value) -> (String, String, String) {
    let data = &event["data"];
    let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_string);
    // A replication run: on its policy's stream, about the run, one of its executions or one of
    // their tasks (an artifact). Its data reads as a retention run's: the type tells them apart.
    let replication_run = ["started", "task_finished", "finished"]
        .map(|kind| format!("dev.berth.replication_{kind}.v1"))
        .contains(&event["type"].as_str().unwrap_or_default().to_string());
    if let (true, Some(policy)) = (replication_run, data.get("policy").and_then(Value::as_u64)) {
        let subject = match (data.get("execution"), field("digest")) {
            (Some(execution), Some(digest)) => format!("replication/{policy}/{execution}/{digest}"),
            (Some(execution), None) => format!("replication/{policy}/{execution}"),
            (None, _) => format!("replication/{policy}"),
        };
        return (
            format!("/replication/policies/{policy}"),
            format!("replication/{policy}"),
            subject,
        );
    }
    // A retention run: on its policy's stream, about the run, one of its executions or one of their
    // tasks (a repository). A policy's change, which holds the policy, is an access-control event.
    if let Some(policy) = data.get("policy").and_then(Value::as_u64) {
        let subject = match (data.get("execution"), field("repository")) {
            (Some(execution), Some(repository)) => format!("retention/{policy}/{execution}/{repository}"),
            (Some(execution), None) => format!("retention/{policy}/{execution}"),
            (None, _) => format!("retention/{policy}"),
        };
        return (
            format!("/retentions/{policy}"),
            format!("retention/{policy}"),
            subject,
        );
    }
    // A replication policy: an access-control event about it.
    if let (Some(id), true) = (
        data.get("id").and_then(Value::as_u64),
        data.get("policy").is_some(),
    ) {
        if data.get("project").is_none() {
            return (
                format!("/replication/policies/{id}"),
                "access".to_string(),
                format!("replication/policies/{id}"),
            );
        }
    }
    // A registry endpoint of replication: an access-control event about it.
    if let (Some(id), true) = (
        data.get("id").and_then(Value::as_u64),
        data.get("registry").is_some(),
    ) {
        return (
            format!("/registries/{id}"),
            "access".to_string(),
            format!("registries/{id}"),
        );
    }
    // A pull names the artifact and nothing else; it is on the artifact's pull stream.
    let names: BTreeSet<&str> = data.as_object().unwrap().keys().map(String::as_str).collect();
    if names == BTreeSet::from(["repository", "digest"]) {
        let artifact = format!("{}@{}", field("repository").unwrap(), field("digest").unwrap());
        return (
            format!("/repositories/{}", field("repository").unwrap()),
            format!("pulled/{artifact}"),
            artifact,
        );
    }
    // Quota use: a project's event about content of one of its repositories.
    if let (Some(project), Some(_)) = (field("project"), field("repository")) {
        return (
            format!("/projects/{project}"),
            format!("quota/{project}"),
            field("digest").unwrap(),
        );
    }
    if let Some(repository) = field("repository") {
        let subject = field("tag").or_else(|| field("digest")).unwrap();
        // The stream, as events/README.md states it: a tag's events on the tag's, accessories and
        // verdicts (they have a `kind`) on their subject's, manifests on their own, blobs on theirs.
        let digest = || field("digest").unwrap();
        let stream = if let Some(tag) = field("tag") {
            format!("tag/{repository}:{tag}")
        } else if data.get("kind").is_some() {
            format!("manifest/{repository}@{}", field("subject").unwrap())
        } else if data.get("mediaType").is_some() {
            format!("manifest/{repository}@{}", digest())
        } else {
            format!("blob/{repository}@{}", digest())
        };
        return (format!("/repositories/{repository}"), stream, subject);
    }
    // Garbage collection: a run on the gc stream, a blob's state on its content stream.
    if let Some(run) = data.get("run") {
        return ("/system/gc".into(), "gc".into(), format!("gc/{run}"));
    }
    if data.get("dryRun").is_some() {
        return ("/system/gc".into(), "gc".into(), "gc".into());
    }
    // Garbage collection's schedule, an access-control event.
    if data.get("schedule").is_some() {
        return ("/system/gc".into(), "access".into(), "gc/schedule".into());
    }
    if let (Some(digest), None) = (field("digest"), field("project")) {
        return (format!("/blobs/{digest}"), format!("content/{digest}"), digest);
    }
    let access = "access".to_string();
    if let Some(robot) = field("robot") {
        let (project, _) = robot.strip_prefix("robot$").unwrap().split_once('+').unwrap();
        (format!("/projects/{project}/robots/{robot}"), access, robot)
    } else if let Some(username) = field("username") {
        match field("project") {
            Some(project) => (format!("/projects/{project}"), access, username),
            None => (format!("/users/{username}"), access, username),
        }
    } else {
        let project = field("project").unwrap();
        (format!("/projects/{project}"), access, project)
    }
}

#[test]
fn the_cloud_event_attributes_agree_with_the_data() {
    for recorded in sample_events().iter().chain(&other_events()) {
        let event = cloud_event(recorded);
        let (source, stream, subject) = expected_attributes(&event);
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], recorded.envelope.id.as_str());
        assert_eq!(event["source"], source);
        assert_eq!(event["berthstream"], stream);
        assert_eq!(recorded.stream.as_str(), stream);
        assert_eq!(event["berthposition"], recorded.position.as_str());
        assert_eq!(event["berthversion"], recorded.version);
        assert_eq!(event["berthprincipal"], recorded.envelope.principal.as_str());
        assert_eq!(event["subject"], subject);
        let time: DateTime<Utc> = event["time"].as_str().unwrap().parse().unwrap();
        assert_eq!(time, recorded.envelope.time);
    }
}

#[test]
fn credential_hashes_stay_in_the_log_never_reach_a_cloud_event_and_no_schema_allows_them() {
    let mut logged_hashes = 0;
    for recorded in sample_events().iter().chain(&other_events()) {
        let logged = serde_json::to_value(&recorded.envelope.event).unwrap();
        let event = cloud_event(recorded);
        let text = event.to_string();
        for field in CREDENTIAL_FIELDS {
            if let Some(hash) = logged["data"].get(field) {
                logged_hashes += 1;
                let hash = hash.as_str().unwrap();
                assert!(
                    hash.is_empty() || !text.contains(hash),
                    "the CloudEvent of {field} leaks it: {event:#}"
                );
            }
            assert!(!text.contains(field), "a CloudEvent names {field}: {event:#}");
        }
    }
    assert!(
        logged_hashes >= 4,
        "the sample events should carry hashes, so that this test sees them removed"
    );
    if !updating_samples() {
        for entry in fs::read_dir(events_dir().join("samples")).unwrap() {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            for needle in CREDENTIAL_FIELDS.iter().chain(&["$argon2"]) {
                assert!(!text.contains(needle), "{} holds {needle}", path.display());
            }
        }
    }
    for (cloud_type, sample) in samples() {
        let text = fs::read_to_string(schema_path(&cloud_type)).unwrap();
        let validator = schema_validator(&cloud_type);
        for field in CREDENTIAL_FIELDS {
            assert!(!text.contains(field), "the schema of {cloud_type} names {field}");
            let (what, event) = mutated(&sample, &format!("data.{field}"), |v| {
                v["data"][field] = json!(SAMPLE_HASH);
            });
            assert_invalid(&validator, &event, &format!("{cloud_type}: {what}"));
        }
    }
}

#[test]
fn the_schemas_accept_every_shape_berth_emits_not_only_the_samples() {
    for recorded in other_events() {
        let kind = recorded.envelope.event.kind();
        let event = cloud_event(&recorded);
        assert_valid(&schema_validator(kind.cloud_type), &event, kind.cloud_type);
    }
}

// ---------------------------------------------------------------------------------------------------
// The schemas are not vacuous

/// `sample` changed by `change`, as (description, JSON).
fn mutated(sample: &Value, what: &str, change: impl FnOnce(&mut Value)) -> (String, Value) {
    let mut value = sample.clone();
    change(&mut value);
    (what.to_string(), value)
}

/// Wrong values of the `data` fields of access-control events (none of them in repository events).
fn bad_access_values(field: &str) -> Vec<Value> {
    match field {
        "project" => vec![
            json!("Team-Web"),
            json!("a/b"),
            json!("a__b"),
            json!(""),
            json!(7),
        ],
        "username" => vec![json!("a:b"), json!("robot$team-web+ci"), json!("a b"), json!("")],
        "robot" => vec![
            json!("ci"),
            json!("robot$team-web"),
            json!("robot$team-web+"),
            json!("robot$Team+ci"),
            json!("bob"),
        ],
        "role" => vec![
            json!("owner"),
            json!("ProjectAdmin"),
            json!("project_admin"),
            json!(1),
        ],
        "actions" => vec![
            json!([]),
            json!(["pull", "pull"]),
            json!(["pull", "admin"]),
            json!(["Pull"]),
            json!("pull"),
        ],
        "id" => vec![json!(0), json!(-1), json!(1.5), json!("7")],
        "public" | "admin" | "disabled" => vec![json!("true"), json!(1), Value::Null],
        "quota" => vec![json!(-1), json!(1.5), json!("10GiB")],
        "expiresAt" => vec![json!("next year"), json!("2026-03-14T09:26:53"), json!(0)],
        "description" => vec![json!(1), Value::Null],
        _ => vec![],
    }
}

#[test]
fn each_schema_rejects_a_missing_data_field_a_bad_digest_an_extra_field_or_another_type() {
    for (cloud_type, sample) in samples() {
        let validator = schema_validator(&cloud_type);
        let data = sample["data"].as_object().unwrap().clone();
        let mut rejected = Vec::new();
        for field in data.keys() {
            let without = mutated(&sample, &format!("data without {field}"), |v| {
                v["data"].as_object_mut().unwrap().remove(field);
            });
            // `configMediaType` is required of an image's `manifest_pushed` (an if/then rule) but
            // optional in `manifest_deleted`, which only reports what the manifest was.
            // An accessory's `subject` is what it describes, always there; its `tag` is there only
            // for cosign's tag scheme.
            let about_accessory = cloud_type.contains("accessory") || cloud_type.contains("signature");
            let optional_here = (OPTIONAL_DATA_FIELDS.contains(&field.as_str())
                && !(about_accessory && field == "subject"))
                || (cloud_type.as_str() == "dev.berth.manifest_deleted.v1" && field == "configMediaType")
                || (cloud_type.as_str() == "dev.berth.accessory_linked.v1" && field == "viaTag");
            if optional_here {
                assert_valid(&validator, &without.1, &format!("{cloud_type}: {}", without.0));
            } else {
                rejected.push(without);
            }
        }
        let digests = if data.contains_key("digest") {
            &[
                "sha256:abc",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ][..]
        } else {
            &[][..]
        };
        for bad in digests {
            rejected.push(mutated(&sample, &format!("data.digest {bad}"), |v| {
                v["data"]["digest"] = json!(bad);
            }));
        }
        rejected.push(mutated(&sample, "an extra data field", |v| {
            v["data"]["unexpected"] = json!("field");
        }));
        if data.contains_key("repository") {
            rejected.push(mutated(&sample, "data.repository with capitals", |v| {
                v["data"]["repository"] = json!("Library/Alpine");
            }));
        } else {
            rejected.push(mutated(&sample, "a data.repository", |v| {
                v["data"]["repository"] = json!("library/alpine");
            }));
        }
        for field in data.keys() {
            for bad in bad_access_values(field) {
                rejected.push(mutated(&sample, &format!("data.{field} {bad}"), |v| {
                    v["data"][field] = bad.clone();
                }));
            }
        }
        rejected.push(mutated(&sample, "data as a string", |v| v["data"] = json!("{}")));
        if data.contains_key("size") {
            rejected.push(mutated(&sample, "a negative size", |v| {
                v["data"]["size"] = json!(-1)
            }));
            rejected.push(mutated(&sample, "a fractional size", |v| {
                v["data"]["size"] = json!(1.5)
            }));
            rejected.push(mutated(&sample, "a size as a string", |v| {
                v["data"]["size"] = json!("1")
            }));
        }
        // A subject of another kind than the event's: a tag, a digest, a project, a user or a robot.
        let other_subjects: &[&str] = if data.contains_key("tag") {
            &[
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "robot$team-web+ci",
            ]
        } else if data.contains_key("digest") {
            &["latest", "robot$team-web+ci"]
        } else if data.contains_key("robot") {
            &[
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "team-web",
                "bob",
            ]
        } else {
            &[
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "robot$team-web+ci",
                "/users/bob",
            ]
        };
        for subject in other_subjects {
            rejected.push(mutated(&sample, &format!("subject {subject}"), |v| {
                v["subject"] = json!(subject)
            }));
        }
        if data.contains_key("tag") {
            rejected.push(mutated(&sample, "a tag starting with a dot", |v| {
                v["data"]["tag"] = json!(".x")
            }));
        }
        for other in Event::KINDS.iter().filter(|k| k.cloud_type != cloud_type) {
            rejected.push(mutated(&sample, &format!("type {}", other.cloud_type), |v| {
                v["type"] = json!(other.cloud_type);
            }));
        }
        rejected.push(mutated(&sample, "type v2", |v| {
            v["type"] = json!(cloud_type.replace(".v1", ".v2"));
        }));
        for (what, event) in rejected {
            assert_invalid(&validator, &event, &format!("{cloud_type}: {what}"));
        }
    }
}

#[test]
fn each_schema_checks_the_cloud_events_envelope() {
    for (cloud_type, sample) in samples() {
        let validator = schema_validator(&cloud_type);
        let mut rejected = vec![
            mutated(&sample, "specversion 0.3", |v| v["specversion"] = json!("0.3")),
            mutated(&sample, "an empty id", |v| v["id"] = json!("")),
            mutated(&sample, "a source of no kind", |v| {
                v["source"] = json!("/blobs/x")
            }),
            mutated(&sample, "a source with a bad name", |v| {
                v["source"] = json!("/repositories/A")
            }),
            mutated(&sample, "a time that is no date-time", |v| {
                v["time"] = json!("yesterday")
            }),
            mutated(&sample, "a time without a zone", |v| {
                v["time"] = json!("2025-03-14T09:26:53")
            }),
            mutated(&sample, "datacontenttype text/plain", |v| {
                v["datacontenttype"] = json!("text/plain");
            }),
            mutated(&sample, "data_base64", |v| v["data_base64"] = json!("e30=")),
            mutated(&sample, "berthposition as a number", |v| {
                v["berthposition"] = json!(1)
            }),
            mutated(&sample, "berthposition of 3 digits", |v| {
                v["berthposition"] = json!("001")
            }),
            mutated(&sample, "berthversion 0", |v| v["berthversion"] = json!(0)),
            mutated(&sample, "berthstream of no repository", |v| {
                v["berthstream"] = json!("upload/x")
            }),
            mutated(&sample, "an empty berthprincipal", |v| {
                v["berthprincipal"] = json!("")
            }),
            mutated(&sample, "an extension that is an object", |v| {
                v["traceparent"] = json!({})
            }),
            mutated(&sample, "an attribute name with capitals", |v| {
                v["TraceParent"] = json!("x")
            }),
        ];
        let source = sample["source"].as_str().unwrap();
        let kind_of_source = |s: &str| {
            let project = s.strip_prefix("/projects/");
            match (
                s.strip_prefix("/repositories/"),
                project,
                s.strip_prefix("/users/"),
            ) {
                (Some(_), _, _) => "repository",
                (_, Some(p), _) if p.contains("/robots/") => "robot",
                (_, Some(_), _) => "project",
                (_, _, Some(_)) => "user",
                _ if s.starts_with("/blobs/") => "blob",
                _ if s == "/system/gc" => "gc",
                _ if s.starts_with("/retentions/") => "retention",
                _ if s.starts_with("/registries/") => "registry",
                _ if s.starts_with("/replication/policies/") => "replication policy",
                _ => panic!("{s}: a source of no kind"),
            }
        };
        let a_blob = format!("/blobs/{}", digest("a blob"));
        for other in [
            "/repositories/library/alpine",
            "/projects/team-web",
            "/users/bob",
            "/projects/team-web/robots/robot$team-web+ci",
            a_blob.as_str(),
            "/system/gc",
            "/retentions/14",
            "/registries/15",
            "/replication/policies/16",
        ] {
            if kind_of_source(other) != kind_of_source(source) {
                rejected.push(mutated(&sample, &format!("source {other}"), |v| {
                    v["source"] = json!(other)
                }));
            }
        }
        for bad in [
            "/projects/Team-Web",
            "/users/a:b",
            "/users/",
            "/projects/team-web/robots/ci",
            "/projects/team-web/robots/robot$Team+ci",
            "/projects/team-web/robots/robot$team-web+ci/x",
            "/retentions/",
            "/retentions/0",
            "/retentions/x",
            "/retentions/14/1",
        ] {
            rejected.push(mutated(&sample, &format!("source {bad}"), |v| {
                v["source"] = json!(bad)
            }));
        }
        let other_stream = if sample["berthstream"] == "access" {
            "repository/library/alpine"
        } else {
            "access"
        };
        rejected.push(mutated(&sample, &format!("berthstream {other_stream}"), |v| {
            v["berthstream"] = json!(other_stream)
        }));
        for attribute in sample.as_object().unwrap().keys() {
            rejected.push(mutated(&sample, &format!("no {attribute}"), |v| {
                v.as_object_mut().unwrap().remove(attribute);
            }));
        }
        for (what, event) in rejected {
            assert_invalid(&validator, &event, &format!("{cloud_type}: {what}"));
        }
        let with_extension = mutated(&sample, "a broker's extension", |v| {
            v["traceparent"] = json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        });
        assert_valid(
            &validator,
            &with_extension.1,
            &format!("{cloud_type}: {}", with_extension.0),
        );
    }
}

#[test]
fn manifest_pushed_requires_a_config_for_an_image_and_forbids_one_for_an_index() {
    let validator = schema_validator("dev.berth.manifest_pushed.v1");
    let sample = sample_of("dev.berth.manifest_pushed.v1");
    let cases = [
        mutated(&sample, "an image without configMediaType", |v| {
            v["data"].as_object_mut().unwrap().remove("configMediaType");
        }),
        mutated(&sample, "an image without blobs", |v| {
            v["data"]["blobs"] = json!([])
        }),
        mutated(&sample, "an image with children", |v| {
            v["data"]["manifests"] = json!([empty_config().to_string()]);
        }),
        mutated(&sample, "an index with blobs", |v| {
            v["data"]["mediaType"] = json!(OCI_INDEX)
        }),
        mutated(&sample, "an unknown media type", |v| {
            v["data"]["mediaType"] = json!("application/vnd.docker.distribution.manifest.v1+json");
        }),
        mutated(&sample, "duplicate blobs", |v| {
            v["data"]["blobs"] = json!([empty_config().to_string(), empty_config().to_string()]);
        }),
        mutated(&sample, "an annotation that is no string", |v| {
            v["data"]["annotations"]["n"] = json!(1);
        }),
    ];
    for (what, event) in cases {
        assert_invalid(&validator, &event, what.as_str());
    }
}

#[test]
fn the_retention_schemas_check_templates_parameters_selectors_and_verdicts() {
    let changed = "dev.berth.retention_policy_changed.v1";
    let sample = sample_of(changed);
    let rule = |change: fn(&mut Value)| move |v: &mut Value| change(&mut v["data"]["policy"]["rules"][0]);
    let accepted = [
        mutated(&sample, "a deleted policy", |v| v["data"]["policy"] = Value::Null),
        mutated(&sample, "no rules", |v| v["data"]["policy"]["rules"] = json!([])),
        mutated(
            &sample,
            "always without a parameter",
            rule(|r| {
                r["template"] = json!("always");
                r.as_object_mut().unwrap().remove("param");
            }),
        ),
        mutated(
            &sample,
            "the most days",
            rule(|r| {
                r["template"] = json!("nDaysSinceLastPull");
                r["param"] = json!(20_190_904);
            }),
        ),
    ];
    let rejected = [
        mutated(&sample, "no policy", |v| {
            v["data"].as_object_mut().unwrap().remove("policy");
        }),
        mutated(&sample, "policy id 0", |v| v["data"]["policy"]["id"] = json!(0)),
        mutated(&sample, "16 rules", |v| {
            let rule = v["data"]["policy"]["rules"][0].clone();
            v["data"]["policy"]["rules"] = json!(vec![rule; 16]);
        }),
        mutated(
            &sample,
            "always with a parameter",
            rule(|r| r["template"] = json!("always")),
        ),
        mutated(
            &sample,
            "latestPushedK without a parameter",
            rule(|r| {
                r.as_object_mut().unwrap().remove("param");
            }),
        ),
        mutated(
            &sample,
            "a count over Harbor's limit",
            rule(|r| r["param"] = json!(32_767)),
        ),
        mutated(
            &sample,
            "days over Harbor's limit",
            rule(|r| {
                r["template"] = json!("nDaysSinceLastPush");
                r["param"] = json!(20_190_905);
            }),
        ),
        mutated(&sample, "a negative parameter", rule(|r| r["param"] = json!(-1))),
        mutated(
            &sample,
            "an unknown template",
            rule(|r| r["template"] = json!("latestPushed")),
        ),
        mutated(&sample, "an action", rule(|r| r["action"] = json!("retain"))),
        mutated(
            &sample,
            "no tag selector",
            rule(|r| r["tagSelectors"] = json!([])),
        ),
        mutated(
            &sample,
            "a repository decoration on a tag selector",
            rule(|r| r["tagSelectors"][0]["decoration"] = json!("repoMatches")),
        ),
        mutated(
            &sample,
            "a tag selector without untagged",
            rule(|r| {
                r["tagSelectors"][0].as_object_mut().unwrap().remove("untagged");
            }),
        ),
        mutated(
            &sample,
            "a tag decoration on a repository selector",
            rule(|r| r["repositorySelectors"][0]["decoration"] = json!("matches")),
        ),
        mutated(
            &sample,
            "untagged on a repository selector",
            rule(|r| r["repositorySelectors"][0]["untagged"] = json!(true)),
        ),
        mutated(
            &sample,
            "a selector of another kind",
            rule(|r| r["repositorySelectors"][0]["kind"] = json!("regex")),
        ),
    ];
    let validator = schema_validator(changed);
    for (what, event) in accepted {
        assert_valid(&validator, &event, &format!("{changed}: {what}"));
    }
    for (what, event) in rejected {
        assert_invalid(&validator, &event, &format!("{changed}: {what}"));
    }

    let task = "dev.berth.retention_task_finished.v1";
    let sample = sample_of(task);
    let validator = schema_validator(task);
    let with_error = mutated(&sample, "an Error with its error", |v| {
        v["data"]["status"] = json!("Error");
        v["data"]["error"] = json!("storage unavailable");
        v["data"]["rowsOmitted"] = json!(1);
        v["data"]["rows"][0]["outcome"] = json!("ERR");
    });
    assert_valid(&validator, &with_error.1, &format!("{task}: {}", with_error.0));
    let rejected = [
        mutated(&sample, "status Stopped", |v| {
            v["data"]["status"] = json!("Stopped")
        }),
        mutated(&sample, "rowsOmitted 0", |v| v["data"]["rowsOmitted"] = json!(0)),
        mutated(&sample, "execution 0", |v| v["data"]["execution"] = json!(0)),
        mutated(&sample, "outcome KEEP", |v| {
            v["data"]["rows"][0]["outcome"] = json!("KEEP")
        }),
        mutated(&sample, "a row without pushed", |v| {
            v["data"]["rows"][0].as_object_mut().unwrap().remove("pushed");
        }),
        mutated(&sample, "a row pulled yesterday", |v| {
            v["data"]["rows"][0]["pulled"] = json!("yesterday")
        }),
        mutated(&sample, "a row with a bad tag", |v| {
            v["data"]["rows"][0]["tags"] = json!([".x"])
        }),
        mutated(&sample, "a row with a tag twice", |v| {
            v["data"]["rows"][1]["tags"] = json!(["latest", "latest"])
        }),
        mutated(&sample, "a row with a bad digest", |v| {
            v["data"]["rows"][0]["digest"] = json!("sha256:abc")
        }),
        mutated(&sample, "a row with an extra field", |v| {
            v["data"]["rows"][0]["rule"] = json!(1)
        }),
        mutated(&sample, "a negative count", |v| v["data"]["deleted"] = json!(-1)),
        mutated(&sample, "the subject of the execution", |v| {
            v["subject"] = json!("retention/14/1")
        }),
    ];
    for (what, event) in rejected {
        assert_invalid(&validator, &event, &format!("{task}: {what}"));
    }

    for (cloud_type, field, bad) in [
        ("dev.berth.retention_started.v1", "trigger", json!("manual")),
        ("dev.berth.retention_started.v1", "policy", json!(0)),
        ("dev.berth.retention_finished.v1", "status", json!("Running")),
        ("dev.berth.retention_finished.v1", "execution", json!(0)),
    ] {
        let (what, event) = mutated(&sample_of(cloud_type), &format!("data.{field} {bad}"), |v| {
            v["data"][field] = bad.clone()
        });
        assert_invalid(
            &schema_validator(cloud_type),
            &event,
            &format!("{cloud_type}: {what}"),
        );
    }
    let pulled = "dev.berth.artifact_pulled.v1";
    let (what, event) = mutated(&sample_of(pulled), "a subject of another artifact", |v| {
        v["subject"] = json!(format!("library/busybox@{}", digest("busybox")))
    });
    // The schema checks the subject's grammar, not that it names data's artifact.
    assert_valid(&schema_validator(pulled), &event, &format!("{pulled}: {what}"));
    for bad in [
        "library/alpine",
        "library/alpine:3.21",
        "Library/alpine@sha256:abc",
    ] {
        let (what, event) = mutated(&sample_of(pulled), &format!("subject {bad}"), |v| {
            v["subject"] = json!(bad)
        });
        assert_invalid(&schema_validator(pulled), &event, &format!("{pulled}: {what}"));
    }
}

#[test]
fn the_gc_schemas_check_the_schedule_its_types_and_crons_and_the_firing_a_run_serves() {
    let changed = "dev.berth.gc_schedule_changed.v1";
    let sample = sample_of(changed);
    let validator = schema_validator(changed);
    let mut accepted = vec![
        mutated(&sample, "a removed schedule", |v| {
            v["data"]["schedule"] = Value::Null
        }),
        mutated(&sample, "fields separated by several spaces", |v| {
            v["data"]["schedule"]["cron"] = json!("0  0   0 * * *")
        }),
    ];
    for kind in ["Hourly", "Daily", "Weekly", "Custom", "Schedule"] {
        accepted.push(mutated(&sample, &format!("kind {kind}"), |v| {
            v["data"]["schedule"]["kind"] = json!(kind)
        }));
    }
    for (what, event) in accepted {
        assert_valid(&validator, &event, &format!("{changed}: {what}"));
    }
    let mut rejected = vec![
        mutated(&sample, "no schedule", |v| {
            v["data"].as_object_mut().unwrap().remove("schedule");
        }),
        mutated(&sample, "a schedule as a cron string", |v| {
            v["data"]["schedule"] = json!("0 0 0 * * *")
        }),
        mutated(&sample, "a schedule with an extra field", |v| {
            v["data"]["schedule"]["workers"] = json!(1)
        }),
        mutated(&sample, "a schedule with Harbor's type field", |v| {
            v["data"]["schedule"]["type"] = json!("Daily")
        }),
        mutated(&sample, "deleteUntagged as a string", |v| {
            v["data"]["schedule"]["deleteUntagged"] = json!("true")
        }),
        mutated(&sample, "dryRun null", |v| {
            v["data"]["schedule"]["dryRun"] = Value::Null
        }),
        mutated(&sample, "the subject of a run", |v| v["subject"] = json!("gc")),
        mutated(&sample, "the gc stream", |v| v["berthstream"] = json!("gc")),
        mutated(&sample, "the source /system/gc/schedule", |v| {
            v["source"] = json!("/system/gc/schedule")
        }),
    ];
    for field in ["kind", "cron", "deleteUntagged", "dryRun"] {
        rejected.push(mutated(&sample, &format!("a schedule without {field}"), |v| {
            v["data"]["schedule"].as_object_mut().unwrap().remove(field);
        }));
    }
    for kind in [
        json!("daily"),
        json!("Manual"),
        json!("None"),
        json!(""),
        json!(1),
    ] {
        rejected.push(mutated(&sample, &format!("kind {kind}"), |v| {
            v["data"]["schedule"]["kind"] = kind.clone()
        }));
    }
    for cron in [
        json!("0 0 * * *"),
        json!("30 0 0 * * *"),
        json!("0 0 0 * * * 2030"),
        json!(" 0 0 0 * * *"),
        json!("0 0 0 * * * "),
        json!("@daily"),
        json!(""),
        json!(0),
    ] {
        rejected.push(mutated(&sample, &format!("cron {cron}"), |v| {
            v["data"]["schedule"]["cron"] = cron.clone()
        }));
    }
    for (what, event) in rejected {
        assert_invalid(&validator, &event, &format!("{changed}: {what}"));
    }

    let started = "dev.berth.gc_started.v1";
    let sample = sample_of(started);
    let validator = schema_validator(started);
    assert!(sample["data"]["scheduledFor"].is_string(), "{sample:#}");
    let triggered = mutated(&sample, "a triggered run", |v| {
        v["data"].as_object_mut().unwrap().remove("scheduledFor");
    });
    assert_valid(&validator, &triggered.1, &format!("{started}: {}", triggered.0));
    for bad in [
        json!("yesterday"),
        json!("2025-03-14T10:00:00"),
        json!(1_741_946_400),
        Value::Null,
    ] {
        let (what, event) = mutated(&sample, &format!("data.scheduledFor {bad}"), |v| {
            v["data"]["scheduledFor"] = bad.clone()
        });
        assert_invalid(&validator, &event, &format!("{started}: {what}"));
    }
}

// ---------------------------------------------------------------------------------------------------
// common.json

#[test]
fn the_schemas_take_their_definitions_from_common_json_and_do_not_build_without_it() {
    for kind in Event::KINDS {
        let schema = read_json(&schema_path(kind.cloud_type));
        let built = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&schema);
        let error = built.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.contains(&format!("{SCHEMA_BASE}{COMMON}")),
            "{} should fail to build without common.json (its $refs must go there), got {error:?}",
            kind.cloud_type
        );
    }
}

/// Whether a Rust parser accepts a string.
type Parses = fn(&str) -> bool;
/// A `common.json` definition of a source, and the prefix it puts before a name.
type Source<'a> = Option<(&'a str, &'a str)>;

#[test]
fn the_schema_grammars_agree_with_the_rust_parsers() {
    let sha512 = format!("sha512:{}", "a".repeat(128));
    let sha256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let long_name = "a".repeat(255);
    let too_long_name = "a".repeat(256);
    let long_path = format!("{}/{}", "a".repeat(127), "b".repeat(128));
    let sha256_too_long = format!("{sha256}5");
    let sha256_then_newline = format!("{sha256}\n");
    let long_tag = "a".repeat(128);
    let too_long_tag = "a".repeat(129);
    let robot_of =
        |project: usize, name: usize| format!("robot${}+{}", "p".repeat(project), "n".repeat(name));
    let (long_robot, robot_too_long_project, robot_too_long_name) =
        (robot_of(255, 255), robot_of(256, 1), robot_of(1, 256));
    let candidates: Vec<&str> = vec![
        "",
        "a",
        "0",
        "A",
        "latest",
        "_x",
        "-x",
        ".x",
        "x.",
        "v1.2.3-rc_1",
        "library/alpine",
        "library/Alpine",
        "a.b_c__d---e/f0",
        "x/y/z",
        "a..b",
        "a___b",
        "a_-b",
        "a.-b",
        "-a",
        "a-",
        "a/",
        "/a",
        "a//b",
        "..",
        "a/../b",
        "a b",
        "a:b",
        "a+b",
        "a\nb",
        "a/b\n",
        "é",
        sha256,
        &sha256[..70],
        &sha256_too_long,
        &sha256_then_newline,
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:",
        &sha512,
        &long_name,
        &too_long_name,
        &long_path,
        &long_tag,
        &too_long_tag,
        "a--b",
        "a__b",
        "team-web",
        "alice.o'brien@example.com",
        "!#%&'()*,-.;<=>?@[]^_`{|}~",
        "a$b",
        "a\"b",
        "a\\b",
        "a\tb",
        "a\u{7f}",
        "robot",
        "robot$team+ci",
        "robot$team-web+c.i_0",
        "robot$team",
        "team+ci",
        "robot$+ci",
        "robot$team+",
        "robot$Team+ci",
        "robot$team+Ci",
        "robot$team+ci+x",
        "robot$team+ci\n",
        "robot$a..b+ci",
        "robot$a__b+ci",
        "robot$team/x+ci",
        "robot$team+c/i",
        "ROBOT$team+ci",
        &long_robot,
        &robot_too_long_project,
        &robot_too_long_name,
    ];
    // Each definition, with the source its names make (`None` when there is none).
    let grammars: [(&str, Source, Parses); 6] = [
        ("digest", None, |s| s.parse::<Digest>().is_ok()),
        ("repository", Some(("repositorySource", "/repositories/")), |s| {
            s.parse::<RepoName>().is_ok()
        }),
        ("tag", None, |s| s.parse::<Tag>().is_ok()),
        ("project", Some(("projectSource", "/projects/")), |s| {
            s.parse::<ProjectName>().is_ok()
        }),
        ("username", Some(("userSource", "/users/")), |s| {
            s.parse::<Username>().is_ok()
        }),
        ("robot", None, |s| s.parse::<RobotName>().is_ok()),
    ];
    for (definition, source, parses) in grammars {
        let validator = definition_validator(definition);
        let accepted: BTreeSet<&str> = candidates.iter().copied().filter(|s| parses(s)).collect();
        assert!(!accepted.is_empty(), "no candidate {definition} parses");
        for candidate in &candidates {
            assert_eq!(
                validator.is_valid(&json!(candidate)),
                accepted.contains(candidate),
                "common.json#/$defs/{definition} and the Rust parser disagree on {candidate:?}"
            );
        }
        let Some((source_definition, prefix)) = source else {
            continue;
        };
        let source_validator = definition_validator(source_definition);
        for candidate in &candidates {
            let source = format!("{prefix}{candidate}");
            assert_eq!(
                source_validator.is_valid(&json!(source)),
                accepted.contains(candidate),
                "common.json#/$defs/{source_definition} and the Rust parser disagree on {source:?}"
            );
        }
    }
    // A robot's source: its name under its project's (a name that does not parse under `team`).
    let robot_source = definition_validator("robotSource");
    for candidate in &candidates {
        let robot = candidate.parse::<RobotName>();
        let project = robot
            .as_ref()
            .map_or("team".to_string(), |r| r.project().to_string());
        let source = format!("/projects/{project}/robots/{candidate}");
        assert_eq!(
            robot_source.is_valid(&json!(source)),
            robot.is_ok(),
            "common.json#/$defs/robotSource and the Rust parser disagree on {source:?}"
        );
    }
    // An artifact's pull stream: a repository's name and a digest.
    let pulled_stream = definition_validator("pulledStream");
    for candidate in &candidates {
        for (stream, parses) in [
            (
                format!("pulled/{candidate}@{sha256}"),
                candidate.parse::<RepoName>().is_ok(),
            ),
            (
                format!("pulled/library/alpine@{candidate}"),
                candidate.parse::<Digest>().is_ok(),
            ),
        ] {
            assert_eq!(
                pulled_stream.is_valid(&json!(stream)),
                parses,
                "common.json#/$defs/pulledStream and the Rust parsers disagree on {stream:?}"
            );
        }
    }
    // A retention policy's stream and source: its id, a positive integer.
    let (retention_stream, retention_source) = (
        definition_validator("retentionStream"),
        definition_validator("retentionSource"),
    );
    for policy in [1, 14, u64::MAX] {
        let stream = StreamId::retention(policy);
        assert!(retention_stream.is_valid(&json!(stream.as_str())), "{stream}");
        assert!(retention_source.is_valid(&json!(format!("/retentions/{policy}"))));
    }
    for bad in ["0", "01", "-1", "x", "1/2", ""] {
        assert!(
            !retention_stream.is_valid(&json!(format!("retention/{bad}"))),
            "{bad}"
        );
        assert!(
            !retention_source.is_valid(&json!(format!("/retentions/{bad}"))),
            "{bad}"
        );
    }
}
