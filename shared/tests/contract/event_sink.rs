//! The `EventSink` contract, for the audit archive adapters. Each check takes a fresh sink and a
//! view of what it archived (`Archive`), and exercises only the port: publishing is idempotent (at-
//! least-once delivery leaves one copy), every event is archived as its CloudEvent under
//! `<yyyy>/<mm>/<dd>/<log position>.json` of its UTC time (20 digits for a numbered log), and keys
//! sort in log order.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use berth::domain::{Event, RecordedEvent, StreamId};
use berth::ports::EventSink;
use chrono::{DateTime, Utc};
use tokio::sync::Barrier;

use crate::support::{
    artifact_pushed, blob_unlinked, blob_uploaded, digest, envelope, manifest_deleted, manifest_pushed, repo,
    tag_deleted, tag_moved, time,
};

/// What an adapter's archive holds, read back by the test's own means: document bytes by key below
/// the archive's prefix (`2024/05/01/00000000000000000001.json`), every file or object included.
#[async_trait]
pub trait Archive: Send + Sync {
    async fn documents(&self) -> BTreeMap<String, Vec<u8>>;
}

/// An event as the log would record it at `sequence` (version = sequence: one stream).
fn recorded(sequence: u64, event: Event) -> RecordedEvent {
    RecordedEvent {
        position: berth::domain::LogPosition::sequence(sequence),
        stream: event
            .repository()
            .map_or_else(StreamId::access, StreamId::repository),
        version: sequence,
        envelope: envelope(event),
    }
}

/// The same event for the same `sequence`, as a redelivery would carry it.
pub fn blob_event(sequence: u64) -> RecordedEvent {
    let r = repo("contract/audit");
    let mut event = recorded(
        sequence,
        blob_uploaded(&r, &digest(&format!("blob-{sequence}")), sequence),
    );
    event.envelope.id = format!("contract-audit-{sequence}");
    event
}

fn at(mut event: RecordedEvent, rfc3339: &str) -> RecordedEvent {
    event.envelope.time = DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc);
    event
}

fn parse(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("an archived document is not JSON: {e}"))
}

pub async fn a_published_event_is_archived_as_its_cloudevent(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    let r = repo("contract/audit");
    let event = recorded(
        1,
        manifest_pushed(&r, &digest("manifest"), Some(&digest("subject"))),
    );
    sink.publish(&event).await.unwrap();

    let documents = archive.documents().await;
    let keys: Vec<&String> = documents.keys().collect();
    assert_eq!(
        keys,
        ["2024/05/01/00000000000000000001.json"],
        "the support events happen on {}",
        time()
    );
    let document = parse(&documents["2024/05/01/00000000000000000001.json"]);
    assert_eq!(document, berth::events_out::to_json(&event).unwrap());
    assert_eq!(document["type"], "dev.berth.manifest_pushed.v1");
    assert_eq!(document["id"], event.envelope.id.as_str());
    assert_eq!(document["berthposition"], "00000000000000000001");
    assert_eq!(document["data"]["digest"], digest("manifest").to_string());
}

pub async fn publishing_the_same_event_twice_leaves_one_copy(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    let event = blob_event(7);
    sink.publish(&event).await.unwrap();
    let first = archive.documents().await;
    sink.publish(&event).await.unwrap();
    assert_eq!(archive.documents().await, first);
    assert_eq!(first.len(), 1);
}

pub async fn concurrent_publishes_of_one_event_leave_one_copy(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    let event = blob_event(3);
    let barrier = Arc::new(Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (sink, event, barrier) = (sink.clone(), event.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                sink.publish(&event).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let documents = archive.documents().await;
    assert_eq!(documents.len(), 1, "one document, not {:?}", documents.keys());
    let document = documents.values().next().unwrap();
    assert_eq!(parse(document), berth::events_out::to_json(&event).unwrap());
}

pub async fn events_are_filed_under_the_utc_day_of_their_time(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    let events = [
        at(blob_event(1), "2023-12-31T23:59:59.999999999Z"),
        at(blob_event(2), "2024-01-01T00:00:00Z"),
        // 23:30 in UTC-05:00 is the next day in UTC.
        at(blob_event(3), "2024-02-28T23:30:00-05:00"),
    ];
    for event in &events {
        sink.publish(event).await.unwrap();
    }
    let keys: Vec<String> = archive.documents().await.into_keys().collect();
    assert_eq!(
        keys,
        [
            "2023/12/31/00000000000000000001.json",
            "2024/01/01/00000000000000000002.json",
            "2024/02/29/00000000000000000003.json",
        ]
    );
}

pub async fn keys_sort_in_log_order_within_a_day(sink: Arc<dyn EventSink>, archive: Arc<dyn Archive>) {
    let sequences = [9, 10, 99, 100, 123_456_789_012, u64::MAX];
    // Published out of order: the keys, not the publishing order, carry the log order.
    for sequence in sequences.iter().rev() {
        sink.publish(&blob_event(*sequence)).await.unwrap();
    }
    let documents = archive.documents().await;
    let archived: Vec<u64> = documents
        .values()
        .map(|d| parse(d)["berthposition"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        archived[..5],
        sequences[..5],
        "keys in order: {:?}",
        documents.keys()
    );
    assert!(
        documents.contains_key("2024/05/01/18446744073709551615.json"),
        "{:?}",
        documents.keys()
    );
}

pub async fn every_event_type_is_archived_with_its_cloudevent_type(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    let r = repo("contract/audit-types");
    let (m, s) = (digest("m"), digest("s"));
    let events = [
        blob_uploaded(&r, &digest("b"), 1),
        Event::BlobMounted {
            repository: r.clone(),
            digest: digest("b2"),
            size: 2,
            from: repo("contract/other"),
        },
        blob_unlinked(&r, &digest("b")),
        artifact_pushed(&r, &m, &s, "application/example"),
        tag_moved(&r, "v1", &m, None),
        tag_deleted(&r, "v1", &m),
        manifest_deleted(&r, &m, Some(&s)),
    ];
    let events = (events.into_iter())
        .chain(access_events())
        .chain(accessory_events(&r, &m, &s));
    for (event, sequence) in events.zip(1..) {
        sink.publish(&recorded(sequence, event)).await.unwrap();
    }
    let types: Vec<String> = (archive.documents().await.values())
        .map(|d| parse(d)["type"].as_str().unwrap_or_default().to_string())
        .collect();
    let expected: Vec<&str> = Event::KINDS.iter().map(|k| k.cloud_type).collect();
    assert_eq!(types, expected);
}

pub async fn republishing_earlier_events_after_later_ones_changes_nothing(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    for sequence in 1..=5 {
        sink.publish(&blob_event(sequence)).await.unwrap();
    }
    let before = archive.documents().await;
    for sequence in [2, 4, 1] {
        sink.publish(&blob_event(sequence)).await.unwrap();
    }
    assert_eq!(archive.documents().await, before);
    assert_eq!(before.len(), 5);
}

pub async fn concurrent_publishes_of_many_events_archive_each_once(
    sink: Arc<dyn EventSink>,
    archive: Arc<dyn Archive>,
) {
    let events: Vec<RecordedEvent> = (1..=24).map(blob_event).collect();
    let tasks: Vec<_> = (events.iter().chain(events.iter()))
        .cloned()
        .map(|event| {
            let sink = sink.clone();
            tokio::spawn(async move { sink.publish(&event).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let documents = archive.documents().await;
    assert_eq!(documents.len(), events.len());
    for (document, event) in documents.values().zip(&events) {
        assert_eq!(parse(document), berth::events_out::to_json(event).unwrap());
    }
}

/// One event of each access-control type, in `Event::KINDS` order.
fn access_events() -> Vec<Event> {
    use berth::domain::access::{Action, ProjectName, RobotName, Role, Username};
    let project = ProjectName::parse("contract").unwrap();
    let user = Username::parse("alice").unwrap();
    let robot = RobotName::new(&project, "ci").unwrap();
    let actions: std::collections::BTreeSet<Action> = [Action::Pull].into();
    vec![
        Event::ProjectCreated {
            project: project.clone(),
            id: 1,
            public: false,
            quota: None,
            metadata: Default::default(),
        },
        Event::ProjectUpdated {
            project: project.clone(),
            public: true,
            quota: Some(10),
            metadata: Default::default(),
        },
        Event::ProjectDeleted {
            project: project.clone(),
        },
        Event::UserCreated {
            username: user.clone(),
            id: 2,
            password_hash: "h".into(),
            admin: false,
        },
        Event::UserPasswordChanged {
            username: user.clone(),
            password_hash: "h2".into(),
        },
        Event::UserAdminChanged {
            username: user.clone(),
            admin: true,
        },
        Event::UserDeleted {
            username: user.clone(),
        },
        Event::MemberAdded {
            project: project.clone(),
            username: user.clone(),
            role: Role::Guest,
            id: 3,
        },
        Event::MemberRoleChanged {
            project: project.clone(),
            username: user.clone(),
            role: Role::Developer,
        },
        Event::MemberRemoved {
            project: project.clone(),
            username: user.clone(),
        },
        Event::RobotCreated {
            robot: robot.clone(),
            id: 4,
            description: String::new(),
            actions: actions.clone(),
            expires_at: None,
            secret_hash: "s".into(),
        },
        Event::RobotUpdated {
            robot: robot.clone(),
            description: "d".into(),
            actions,
            expires_at: None,
            disabled: true,
        },
        Event::RobotSecretRefreshed {
            robot: robot.clone(),
            secret_hash: "s2".into(),
        },
        Event::RobotDeleted { robot },
    ]
}

/// One event of each content-trust type, in `Event::KINDS` order.
fn accessory_events(
    r: &berth::domain::RepoName,
    subject: &berth::domain::Digest,
    signature: &berth::domain::Digest,
) -> Vec<Event> {
    use berth::domain::access::{ContentTrust, ProjectName};
    use berth::domain::accessory::AccessoryKind;
    let kind = AccessoryKind::CosignSignature;
    vec![
        Event::AccessoryLinked {
            repository: r.clone(),
            subject: subject.clone(),
            digest: signature.clone(),
            kind,
            via_tag: None,
        },
        Event::AccessoryUnlinked {
            repository: r.clone(),
            subject: subject.clone(),
            digest: signature.clone(),
            kind,
        },
        Event::SignatureVerified {
            repository: r.clone(),
            subject: subject.clone(),
            digest: signature.clone(),
            kind,
            trust_revision: 1,
            signer: "sha256:00".into(),
            warnings: vec![],
        },
        Event::SignatureRejected {
            repository: r.clone(),
            subject: subject.clone(),
            digest: signature.clone(),
            kind,
            trust_revision: 1,
            reason: "wrong key".into(),
        },
        Event::ProjectTrustConfigured {
            project: ProjectName::parse("contract").unwrap(),
            trust: ContentTrust::default(),
        },
        Event::QuotaUsed {
            project: ProjectName::parse("contract").unwrap(),
            repository: r.clone(),
            digest: signature.clone(),
            size: 1,
        },
        Event::ImmutableTagRulesChanged {
            project: ProjectName::parse("contract").unwrap(),
            rules: vec![],
        },
        Event::BlobCondemned {
            digest: signature.clone(),
        },
        Event::BlobSpared {
            digest: signature.clone(),
        },
        Event::BlobDeleting {
            digest: signature.clone(),
        },
        Event::BlobDeleted {
            digest: signature.clone(),
            size: 1,
        },
        Event::GcStarted {
            delete_untagged: false,
            dry_run: true,
            cutoff: chrono::Utc::now(),
            scheduled_for: None,
        },
        Event::GcFinished {
            run: 1,
            status: "Success".into(),
            manifests_deleted: 0,
            links_removed: 0,
            blobs_deleted: 0,
            bytes_freed: 0,
            duration_ms: 1,
            error: None,
        },
        Event::ArtifactPulled {
            repository: r.clone(),
            digest: subject.clone(),
        },
        Event::RetentionPolicyChanged {
            project: ProjectName::parse("contract").unwrap(),
            policy: None,
        },
        Event::RetentionStarted {
            policy: 1,
            project: ProjectName::parse("contract").unwrap(),
            dry_run: true,
            trigger: "MANUAL".into(),
            scheduled_for: None,
        },
        Event::RetentionTaskFinished {
            policy: 1,
            execution: 1,
            repository: r.clone(),
            status: "Success".into(),
            total: 1,
            retained: 1,
            deleted: 0,
            rows: vec![],
            rows_omitted: 0,
            error: None,
        },
        Event::RetentionFinished {
            policy: 1,
            execution: 1,
            status: "Success".into(),
        },
        Event::GcScheduleChanged { schedule: None },
        Event::GcCheckpoint {
            run: 1,
            phase: 2,
            after: None,
            manifests_deleted: 0,
            links_removed: 0,
            blobs_deleted: 0,
            bytes_freed: 0,
            paused: true,
        },
        Event::GcStopRequested { run: 1 },
        Event::RegistryChanged {
            id: 1,
            registry: None,
        },
        Event::ReplicationPolicyChanged { id: 2, policy: None },
        Event::ReplicationStarted {
            policy: 2,
            trigger: "MANUAL".into(),
            scheduled_for: None,
        },
        Event::ReplicationTaskFinished {
            policy: 2,
            execution: 1,
            resource_type: "image".into(),
            source: "library/app".into(),
            destination: "library/app".into(),
            digest: digest("replicated"),
            tags: vec![],
            accessories: 0,
            status: "Succeed".into(),
            blobs_sent: 0,
            blobs_mounted: 0,
            blobs_present: 0,
            bytes_sent: 0,
            deletion: false,
            error: None,
        },
        Event::ReplicationFinished {
            policy: 2,
            execution: 1,
            status: "Succeed".into(),
            error: None,
        },
    ]
}
