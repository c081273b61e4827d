//! The `EventLog` contract. Each check takes a fresh store; checks that look at the whole log start
//! from its current end, and every check uses its own streams.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth::domain::{EventEnvelope, LogPosition, RecordedEvent, StreamId};
use berth::ports::{EventLog, LogError, StreamAppend, Views};
use tokio::sync::Barrier;

use crate::support::{
    blob_uploaded, digest, envelope, expected_manifest, expected_referrer, manifest_pushed, repo, tag,
    tag_moved, tags,
};

fn stream(name: &str) -> StreamId {
    StreamId::repository(&repo(name))
}

/// `n` events for the repository `name`, labelled so that they all differ.
fn events(name: &str, label: &str, n: u64) -> Vec<EventEnvelope> {
    let repository = repo(name);
    (0..n)
        .map(|i| envelope(blob_uploaded(&repository, &digest(&format!("{label}-{i}")), i)))
        .collect()
}

/// The whole log, read in pages; checks that every page starts after its cursor and that
/// positions increase through the whole read.
async fn whole_log(log: &dyn EventLog) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    loop {
        let cursor = out.last().map_or_else(LogPosition::start, |e| e.position.clone());
        let page = log.read_all(&cursor, 100).await.unwrap();
        if page.is_empty() {
            assert_positions_increase(&out);
            return out;
        }
        assert!(
            page[0].position > cursor,
            "read_all({cursor}, _) returned position {} (not after {cursor})",
            page[0].position
        );
        out.extend(page);
    }
}

/// What the log holds at some moment (its events' ids): later reads subtract it.
#[derive(Debug, PartialEq, Eq)]
struct Mark(HashSet<String>);

async fn log_end(log: &dyn EventLog) -> Mark {
    Mark(whole_log(log).await.into_iter().map(|e| e.envelope.id).collect())
}

/// Every event of the log that was not in it at `mark`, in log order. (The log promises time order
/// across streams, not commit order, so "after the last position seen" could miss an event of
/// another stream committed in the same millisecond: the mark compares ids instead.)
async fn everything_after(log: &dyn EventLog, mark: &Mark) -> Vec<RecordedEvent> {
    let all = whole_log(log).await;
    all.into_iter()
        .filter(|e| !mark.0.contains(&e.envelope.id))
        .collect()
}

/// `events` as `read_all` lists them: by position.
fn in_log_order(mut events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
    events.sort_by(|a, b| a.position.cmp(&b.position));
    events
}

fn assert_positions_increase(events: &[RecordedEvent]) {
    let positions: Vec<&str> = events.iter().map(|e| e.position.as_str()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions must increase: {positions:?}"
    );
}

pub async fn appending_to_a_new_stream_at_version_zero_numbers_the_events_from_one(log: Arc<dyn EventLog>) {
    let s = stream("contract/numbering");
    assert_eq!(
        log.stream_version(&s).await.unwrap(),
        0,
        "a new stream is at version 0"
    );
    let start = log_end(&*log).await;

    let first = events("contract/numbering", "first", 3);
    let recorded = log.append(&s, 0, first.clone()).await.unwrap();

    assert_eq!(recorded.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(recorded.iter().all(|e| e.stream == s));
    assert_eq!(
        recorded.iter().map(|e| e.envelope.clone()).collect::<Vec<_>>(),
        first,
        "the log records the envelopes as given"
    );
    assert_positions_increase(&recorded);
    assert_eq!(log.stream_version(&s).await.unwrap(), 3);

    let second = log
        .append(&s, 3, events("contract/numbering", "second", 2))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|e| e.version).collect::<Vec<_>>(), [4, 5]);
    assert!(
        second[0].position > recorded[2].position,
        "a stream's positions grow with its versions"
    );
    assert_eq!(log.stream_version(&s).await.unwrap(), 5);

    let all: Vec<RecordedEvent> = recorded.into_iter().chain(second).collect();
    assert_eq!(
        everything_after(&*log, &start).await,
        all,
        "read_all returns what append recorded"
    );
}

pub async fn an_append_at_a_stale_version_is_a_conflict_and_appends_nothing(log: Arc<dyn EventLog>) {
    let s = stream("contract/conflict");
    let start = log_end(&*log).await;
    log.append(&s, 0, events("contract/conflict", "base", 2))
        .await
        .unwrap();
    let before = everything_after(&*log, &start).await;
    assert_eq!(before.len(), 2);

    // Behind (including "the stream is new") and ahead of the actual version.
    for stale in [0, 1, 3, 7] {
        let result = log
            .append(
                &s,
                stale,
                events("contract/conflict", &format!("stale{stale}"), 2),
            )
            .await;
        assert_eq!(
            result,
            Err(LogError::Conflict {
                stream: s.clone(),
                expected: stale,
                actual: 2
            }),
            "append at {stale}"
        );
        assert_eq!(log.stream_version(&s).await.unwrap(), 2);
        assert_eq!(
            everything_after(&*log, &start).await,
            before,
            "nothing appended at {stale}"
        );
    }

    let next = log
        .append(&s, 2, events("contract/conflict", "next", 1))
        .await
        .unwrap();
    assert_eq!(next[0].version, 3, "the stream goes on after conflicts");
}

pub async fn appending_no_events_is_a_no_op(log: Arc<dyn EventLog>) {
    let s = stream("contract/empty");
    let start = log_end(&*log).await;

    assert_eq!(log.append(&s, 0, vec![]).await.unwrap(), vec![]);
    assert_eq!(log.stream_version(&s).await.unwrap(), 0);
    assert_eq!(log_end(&*log).await, start);

    let first = log
        .append(&s, 0, events("contract/empty", "one", 1))
        .await
        .unwrap();
    assert_eq!(first[0].version, 1);
    let end = log_end(&*log).await;

    assert_eq!(log.append(&s, 1, vec![]).await.unwrap(), vec![]);
    // At a stale version an empty append may report the conflict or do nothing, but never append.
    match log.append(&s, 0, vec![]).await {
        Ok(recorded) => assert_eq!(recorded, vec![]),
        Err(e) => assert_eq!(
            e,
            LogError::Conflict {
                stream: s.clone(),
                expected: 0,
                actual: 1
            }
        ),
    }
    assert_eq!(log.stream_version(&s).await.unwrap(), 1);
    assert_eq!(log_end(&*log).await, end);
}

pub async fn streams_are_versioned_independently(log: Arc<dyn EventLog>) {
    // One name a prefix of the other, to catch prefix-matched keys.
    let a = stream("contract/app");
    let b = stream("contract/app/sub");

    let on_a = log.append(&a, 0, events("contract/app", "a", 2)).await.unwrap();
    let on_b = log
        .append(&b, 0, events("contract/app/sub", "b", 1))
        .await
        .unwrap();
    assert_eq!(on_a.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(on_b.iter().map(|e| e.version).collect::<Vec<_>>(), [1]);
    assert_eq!(log.stream_version(&a).await.unwrap(), 2);
    assert_eq!(log.stream_version(&b).await.unwrap(), 1);

    assert_eq!(
        log.append(&b, 2, events("contract/app/sub", "c", 1)).await,
        Err(LogError::Conflict {
            stream: b.clone(),
            expected: 2,
            actual: 1
        }),
        "b's version is its own"
    );
    let more_a = log.append(&a, 2, events("contract/app", "d", 1)).await.unwrap();
    assert_eq!(more_a[0].version, 3);
    assert_eq!(
        log.stream_version(&b).await.unwrap(),
        1,
        "appending to a leaves b alone"
    );
    assert_eq!(log.stream_version(&stream("contract")).await.unwrap(), 0);
}

pub async fn read_all_pages_through_every_stream_in_position_order(log: Arc<dyn EventLog>) {
    let start = log_end(&*log).await;
    let (a, b, c) = (
        stream("contract/pa"),
        stream("contract/pb"),
        stream("contract/pc"),
    );
    let mut appended = Vec::new();
    appended.extend(log.append(&a, 0, events("contract/pa", "1", 2)).await.unwrap());
    appended.extend(log.append(&b, 0, events("contract/pb", "2", 1)).await.unwrap());
    appended.extend(log.append(&a, 2, events("contract/pa", "3", 1)).await.unwrap());
    appended.extend(log.append(&c, 0, events("contract/pc", "4", 3)).await.unwrap());
    appended.extend(log.append(&b, 1, events("contract/pb", "5", 2)).await.unwrap());
    assert_eq!(appended.len(), 9);
    let appended = in_log_order(appended);

    let mut pages = Vec::new();
    let mut after = LogPosition::start();
    loop {
        let page = log.read_all(&after, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4, "a page holds at most `limit` events");
        assert!(page[0].position > after, "a page starts after `after`");
        after = page[page.len() - 1].position.clone();
        pages.push(page);
    }
    let read: Vec<RecordedEvent> = pages.concat();
    assert_positions_increase(&read);
    assert!(
        pages.iter().rev().skip(1).all(|p| p.len() == 4),
        "only the last page is short"
    );
    let read: Vec<RecordedEvent> = read
        .into_iter()
        .filter(|e| !start.0.contains(&e.envelope.id))
        .collect();
    assert_eq!(read, appended, "every event, once, by position");
    for s in [&a, &b, &c] {
        let versions: Vec<u64> = read
            .iter()
            .filter(|e| e.stream == *s)
            .map(|e| e.version)
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] + 1 == w[1]),
            "each stream's events in version order: {s} {versions:?}"
        );
    }
    // `after` is exclusive, wherever it points.
    let from_third = log.read_all(&appended[2].position, 2).await.unwrap();
    assert_eq!(from_third, appended[3..5].to_vec());
    let last = &appended[8].position;
    assert!(log
        .read_all(last, 10)
        .await
        .unwrap()
        .iter()
        .all(|e| start.0.contains(&e.envelope.id)));
    assert_eq!(
        log.read_all(&LogPosition::start(), 0).await.unwrap(),
        vec![],
        "limit 0 reads nothing"
    );
}

/// Every event of `stream` after version `after`, read in pages of `limit`.
async fn whole_stream(log: &dyn EventLog, s: &StreamId, after: u64, limit: usize) -> Vec<RecordedEvent> {
    let mut out: Vec<RecordedEvent> = Vec::new();
    loop {
        let cursor = out.last().map_or(after, |e| e.version);
        let page = log.read_stream(s, cursor, limit).await.unwrap();
        if page.is_empty() {
            return out;
        }
        assert!(page.len() <= limit, "a page holds at most `limit` events");
        out.extend(page);
    }
}

pub async fn reading_a_stream_returns_only_its_events_in_version_order(log: Arc<dyn EventLog>) {
    // One name a prefix of the other, to catch prefix-matched keys.
    let (a, b) = (stream("contract/rs"), stream("contract/rs/sub"));
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    on_a.extend(log.append(&a, 0, events("contract/rs", "1", 2)).await.unwrap());
    on_b.extend(
        log.append(&b, 0, events("contract/rs/sub", "2", 1))
            .await
            .unwrap(),
    );
    on_a.extend(log.append(&a, 2, events("contract/rs", "3", 1)).await.unwrap());
    on_b.extend(
        log.append(&b, 1, events("contract/rs/sub", "4", 2))
            .await
            .unwrap(),
    );

    let read_a = log.read_stream(&a, 0, 100).await.unwrap();
    assert_eq!(read_a, on_a, "a stream reads back what append recorded, in order");
    assert_eq!(read_a.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_positions_increase(&read_a);
    let read_b = log.read_stream(&b, 0, 100).await.unwrap();
    assert_eq!(read_b, on_b);
    assert_eq!(read_b.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    let logged: Vec<RecordedEvent> = whole_log(&*log)
        .await
        .into_iter()
        .filter(|e| e.stream == a)
        .collect();
    assert_eq!(read_a, logged, "a stream holds the same events as the log");
}

pub async fn reading_a_stream_after_a_version_skips_up_to_it(log: Arc<dyn EventLog>) {
    let s = stream("contract/rs-after");
    let mut appended = log
        .append(&s, 0, events("contract/rs-after", "1", 3))
        .await
        .unwrap();
    appended.extend(
        log.append(&s, 3, events("contract/rs-after", "2", 2))
            .await
            .unwrap(),
    );

    for after in 0..=5 {
        assert_eq!(
            log.read_stream(&s, after, 100).await.unwrap(),
            appended[after as usize..].to_vec(),
            "`after` = {after} is exclusive"
        );
    }
    assert_eq!(
        log.read_stream(&s, 6, 100).await.unwrap(),
        vec![],
        "after the end"
    );
    assert_eq!(log.read_stream(&s, u64::MAX, 100).await.unwrap(), vec![]);

    // Catching up: what an in-memory copy at version 5 reads after another append.
    let more = log
        .append(&s, 5, events("contract/rs-after", "3", 1))
        .await
        .unwrap();
    assert_eq!(log.read_stream(&s, 5, 100).await.unwrap(), more);
}

pub async fn reading_a_stream_pages_by_limit(log: Arc<dyn EventLog>) {
    let s = stream("contract/rs-pages");
    let mut appended = Vec::new();
    for (i, n) in [3u64, 1, 3].into_iter().enumerate() {
        let label = format!("{i}");
        let version = appended.len() as u64;
        appended.extend(
            log.append(&s, version, events("contract/rs-pages", &label, n))
                .await
                .unwrap(),
        );
    }
    let first = log.read_stream(&s, 0, 3).await.unwrap();
    assert_eq!(first, appended[..3].to_vec());
    let second = log.read_stream(&s, 3, 3).await.unwrap();
    assert_eq!(second, appended[3..6].to_vec(), "a page may span appends");
    assert_eq!(log.read_stream(&s, 6, 3).await.unwrap(), appended[6..].to_vec());
    assert_eq!(
        log.read_stream(&s, 0, 0).await.unwrap(),
        vec![],
        "limit 0 reads nothing"
    );
    assert_eq!(log.read_stream(&s, 0, 1).await.unwrap(), appended[..1].to_vec());
    for limit in [1, 2, 7, 1_000] {
        assert_eq!(
            whole_stream(&*log, &s, 0, limit).await,
            appended,
            "pages of {limit}"
        );
    }
}

pub async fn a_stream_that_does_not_exist_reads_empty(log: Arc<dyn EventLog>) {
    assert_eq!(
        log.read_stream(&stream("contract/nothing"), 0, 10).await.unwrap(),
        vec![],
        "in an empty log"
    );
    log.append(
        &stream("contract/something"),
        0,
        events("contract/something", "x", 2),
    )
    .await
    .unwrap();
    // Neighbours of an existing stream: a prefix of its name, and its name extended.
    for name in ["contract/nothing", "contract/some", "contract/something/else"] {
        assert_eq!(
            log.read_stream(&stream(name), 0, 10).await.unwrap(),
            vec![],
            "{name}"
        );
    }
    let appended = log
        .read_stream(&stream("contract/something"), 0, 10)
        .await
        .unwrap();
    assert_eq!(appended.len(), 2);
}

pub async fn a_conflicting_append_adds_nothing_to_the_stream_read(log: Arc<dyn EventLog>) {
    let s = stream("contract/rs-conflict");
    let base = log
        .append(&s, 0, events("contract/rs-conflict", "base", 2))
        .await
        .unwrap();
    for stale in [0, 1, 3] {
        let result = log
            .append(
                &s,
                stale,
                events("contract/rs-conflict", &format!("stale{stale}"), 2),
            )
            .await;
        assert!(
            matches!(result, Err(LogError::Conflict { actual: 2, .. })),
            "got {result:?}"
        );
        assert_eq!(
            log.read_stream(&s, 0, 100).await.unwrap(),
            base,
            "nothing added at {stale}"
        );
        assert_eq!(log.read_stream(&s, 2, 100).await.unwrap(), vec![]);
    }
    let next = log
        .append(&s, 2, events("contract/rs-conflict", "next", 1))
        .await
        .unwrap();
    assert_eq!(log.read_stream(&s, 0, 100).await.unwrap(), [base, next].concat());
}

pub async fn concurrent_appenders_that_retry_on_conflict_lose_no_update(log: Arc<dyn EventLog>) {
    const WRITERS: usize = 16;
    let name = "contract/contended";
    let s = stream(name);
    let start = log_end(&*log).await;
    // Every writer reads the version before any appends: the first round is a real race.
    let barrier = Arc::new(Barrier::new(WRITERS));
    let conflicts = Arc::new(AtomicUsize::new(0));

    let mut tasks = Vec::new();
    for n in 0..WRITERS {
        let (log, s, barrier, conflicts) = (log.clone(), s.clone(), barrier.clone(), conflicts.clone());
        let event = events(name, &format!("writer{n}"), 1);
        tasks.push(tokio::spawn(async move {
            for attempt in 0..1_000 {
                let version = log.stream_version(&s).await.unwrap();
                if attempt == 0 {
                    barrier.wait().await;
                }
                match log.append(&s, version, event.clone()).await {
                    Ok(recorded) => return recorded,
                    Err(LogError::Conflict { expected, actual, .. }) => {
                        assert_eq!(expected, version);
                        assert!(
                            actual > version,
                            "a conflict means someone appended: {actual} ≤ {version}"
                        );
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("writer {n}: {e}"),
                }
            }
            panic!("writer {n} never got its append in");
        }));
    }
    let mut ids = HashSet::new();
    let mut versions = Vec::new();
    for task in tasks {
        let recorded = task.await.unwrap();
        assert_eq!(recorded.len(), 1);
        versions.push(recorded[0].version);
        ids.insert(recorded[0].envelope.id.clone());
    }
    versions.sort_unstable();

    assert_eq!(versions, (1..=WRITERS as u64).collect::<Vec<_>>());
    assert!(
        conflicts.load(Ordering::Relaxed) >= WRITERS - 1,
        "all writers appended at version 0 first, so all but one conflicted"
    );
    assert_eq!(log.stream_version(&s).await.unwrap(), WRITERS as u64);
    let logged: Vec<RecordedEvent> = everything_after(&*log, &start)
        .await
        .into_iter()
        .filter(|e| e.stream == s)
        .collect();
    assert_eq!(
        logged.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=WRITERS as u64).collect::<Vec<_>>()
    );
    let logged_ids: HashSet<String> = logged.iter().map(|e| e.envelope.id.clone()).collect();
    assert_eq!(
        logged_ids.len(),
        WRITERS,
        "each writer's event is in the log once"
    );
    assert_eq!(logged_ids, ids);
    assert_eq!(
        log.read_stream(&s, 0, 100).await.unwrap(),
        logged,
        "the stream holds each winner once, in version order"
    );
}

/// `log` and `views` are the same store.
pub async fn an_append_updates_the_views_in_the_same_step(log: Arc<dyn EventLog>, views: Arc<dyn Views>) {
    let repository = repo("contract/inline");
    let s = StreamId::repository(&repository);
    let (config, image, signature) = (
        digest("inline-config"),
        digest("inline-image"),
        digest("inline-sig"),
    );
    assert!(!views.repository_exists(&repository).await.unwrap());

    log.append(
        &s,
        0,
        vec![
            envelope(blob_uploaded(&repository, &config, 1_234)),
            envelope(manifest_pushed(&repository, &image, None)),
            envelope(tag_moved(&repository, "latest", &image, None)),
        ],
    )
    .await
    .unwrap();

    assert_eq!(
        views.tag(&repository, &tag("latest")).await.unwrap(),
        Some(image.clone())
    );
    assert_eq!(
        views.manifest(&repository, &image).await.unwrap(),
        Some(expected_manifest(&image, None))
    );
    assert_eq!(views.blob_link(&repository, &config).await.unwrap(), Some(1_234));
    assert_eq!(
        views.manifest_tags(&repository, &image).await.unwrap(),
        tags(&["latest"])
    );
    assert!(views.repository_exists(&repository).await.unwrap());
    assert_eq!(
        views.tags(&repository, None, 10).await.unwrap(),
        tags(&["latest"])
    );

    log.append(
        &s,
        3,
        vec![
            envelope(manifest_pushed(&repository, &signature, Some(&image))),
            envelope(tag_moved(&repository, "latest", &signature, Some(&image))),
        ],
    )
    .await
    .unwrap();

    assert_eq!(
        views.referrers(&repository, &image).await.unwrap(),
        vec![expected_referrer(&signature)]
    );
    assert_eq!(
        views.tag(&repository, &tag("latest")).await.unwrap(),
        Some(signature.clone())
    );
    assert_eq!(views.manifest_tags(&repository, &image).await.unwrap(), vec![]);
    assert_eq!(
        views.manifest_tags(&repository, &signature).await.unwrap(),
        tags(&["latest"])
    );
}

/// `log` and `views` are the same store.
pub async fn a_conflicting_append_leaves_the_views_untouched(log: Arc<dyn EventLog>, views: Arc<dyn Views>) {
    let repository = repo("contract/untouched");
    let s = StreamId::repository(&repository);
    let (first, second, blob) = (
        digest("untouched-1"),
        digest("untouched-2"),
        digest("untouched-blob"),
    );
    log.append(
        &s,
        0,
        vec![
            envelope(manifest_pushed(&repository, &first, None)),
            envelope(tag_moved(&repository, "latest", &first, None)),
        ],
    )
    .await
    .unwrap();
    let before = views.dump().await.unwrap();
    assert!(!before.is_empty());

    let result = log
        .append(
            &s,
            0,
            vec![
                envelope(blob_uploaded(&repository, &blob, 9)),
                envelope(manifest_pushed(&repository, &second, None)),
                envelope(tag_moved(&repository, "latest", &second, Some(&first))),
            ],
        )
        .await;

    assert!(
        matches!(result, Err(LogError::Conflict { actual: 2, .. })),
        "got {result:?}"
    );
    assert_eq!(
        views.tag(&repository, &tag("latest")).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(views.manifest(&repository, &second).await.unwrap(), None);
    assert_eq!(views.blob_link(&repository, &blob).await.unwrap(), None);
    assert_eq!(views.dump().await.unwrap(), before);
}

fn part(s: &StreamId, expected: u64, events: Vec<EventEnvelope>) -> StreamAppend {
    StreamAppend {
        stream: s.clone(),
        expected,
        events,
    }
}

pub async fn an_append_to_several_streams_writes_all_of_them_or_none(log: Arc<dyn EventLog>) {
    let (a, b, c) = (
        stream("contract/atomic-a"),
        stream("contract/atomic-b"),
        stream("contract/atomic-c"),
    );
    let start = log_end(&*log).await;
    let recorded = log
        .append_atomic(vec![
            part(&a, 0, events("contract/atomic-a", "one", 2)),
            part(&b, 0, events("contract/atomic-b", "one", 1)),
        ])
        .await
        .unwrap();
    let streams: Vec<(&str, u64)> = recorded.iter().map(|e| (e.stream.as_str(), e.version)).collect();
    assert_eq!(
        streams,
        [(a.as_str(), 1), (a.as_str(), 2), (b.as_str(), 1)],
        "numbered in the order given"
    );
    assert_positions_increase(&recorded[..2]);
    assert_eq!(everything_after(&*log, &start).await, in_log_order(recorded));
    assert_eq!(log.stream_version(&a).await.unwrap(), 2);
    assert_eq!(log.stream_version(&b).await.unwrap(), 1);

    // One stale stream, whichever place it has: nothing of any stream is written.
    let before = everything_after(&*log, &start).await;
    for parts in [
        vec![
            part(&a, 2, events("contract/atomic-a", "two", 1)),
            part(&b, 0, events("contract/atomic-b", "two", 1)),
            part(&c, 0, events("contract/atomic-c", "two", 1)),
        ],
        vec![
            part(&c, 0, events("contract/atomic-c", "three", 1)),
            part(&b, 0, events("contract/atomic-b", "three", 1)),
        ],
    ] {
        assert_eq!(
            log.append_atomic(parts).await,
            Err(LogError::Conflict {
                stream: b.clone(),
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(everything_after(&*log, &start).await, before, "nothing appended");
        assert_eq!(
            (
                log.stream_version(&a).await.unwrap(),
                log.stream_version(&c).await.unwrap()
            ),
            (2, 0)
        );
        assert_eq!(log.read_stream(&c, 0, 10).await.unwrap(), vec![]);
    }
}

pub async fn a_stream_only_checked_guards_the_append_and_gains_nothing(log: Arc<dyn EventLog>) {
    let (written, read) = (stream("contract/checked-w"), stream("contract/checked-r"));
    log.append(&read, 0, events("contract/checked-r", "base", 1))
        .await
        .unwrap();
    // The stream read moved since the decision: the append is refused.
    assert_eq!(
        log.append_atomic(vec![
            part(&written, 0, events("contract/checked-w", "stale", 1)),
            part(&read, 0, vec![]),
        ])
        .await,
        Err(LogError::Conflict {
            stream: read.clone(),
            expected: 0,
            actual: 1
        })
    );
    assert_eq!(log.stream_version(&written).await.unwrap(), 0);
    // As read: the append goes through, and the stream only checked is unchanged.
    let recorded = log
        .append_atomic(vec![
            part(&written, 0, events("contract/checked-w", "fresh", 1)),
            part(&read, 1, vec![]),
        ])
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].stream, written);
    assert_eq!(log.stream_version(&read).await.unwrap(), 1);
    assert_eq!(log.read_stream(&read, 0, 10).await.unwrap().len(), 1);
    // A stream that does not exist is checked at version 0.
    let never = stream("contract/checked-never");
    log.append_atomic(vec![
        part(&written, 1, events("contract/checked-w", "again", 1)),
        part(&never, 0, vec![]),
    ])
    .await
    .unwrap();
    assert_eq!(log.stream_version(&never).await.unwrap(), 0);
}

pub async fn an_append_naming_a_stream_twice_is_refused(log: Arc<dyn EventLog>) {
    let s = stream("contract/twice");
    assert_eq!(
        log.append_atomic(vec![
            part(&s, 0, events("contract/twice", "one", 1)),
            part(&s, 1, events("contract/twice", "two", 1)),
        ])
        .await,
        Err(LogError::StreamTwice(s.clone()))
    );
    assert_eq!(log.stream_version(&s).await.unwrap(), 0);
}
