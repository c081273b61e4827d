//! The `BlobStore` contract. Each check takes a fresh, empty store (or a way to open one over the same
//! backing storage) and exercises only the port, so it runs unchanged against every adapter.

use std::sync::Arc;

use berth::domain::Algorithm;
use berth::ports::{BlobError, BlobStore, ByteRange, UploadId, UploadState};
use bytes::Bytes;
use tokio::sync::Barrier;

use crate::support::{
    assert_upload_unknown, body, collect, describe_read, failing_body, pattern, repo, sha256, sha512,
};

/// Chunk size of request bodies: odd, so chunk boundaries fall anywhere.
const CHUNK: usize = 7_919;

async fn content(store: &dyn BlobStore, digest: &berth::domain::Digest) -> Vec<u8> {
    let read = store.get(digest, None).await.unwrap();
    let size = read.size;
    let bytes = collect(read).await;
    assert_eq!(
        size,
        bytes.len() as u64,
        "get reports a size other than the body's length"
    );
    bytes
}

pub async fn a_put_blob_can_be_stat_and_read_back_whole(store: Arc<dyn BlobStore>) {
    // Larger than a typical read buffer, so the body comes in several chunks.
    let data = pattern(600_000, 1);
    let digest = sha256(&data);
    assert_eq!(
        store.stat(&digest).await.unwrap(),
        None,
        "a fresh store holds no blob"
    );

    store.put(&digest, Bytes::from(data.clone())).await.unwrap();

    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert_eq!(content(&*store, &digest).await, data);
}

pub async fn reading_or_stating_an_absent_blob_finds_nothing(store: Arc<dyn BlobStore>) {
    let stored = pattern(1_000, 2);
    store
        .put(&sha256(&stored), Bytes::from(stored.clone()))
        .await
        .unwrap();

    // Never stored, and the same content under another algorithm: neither exists.
    for absent in [sha256(b"never stored"), sha512(&stored)] {
        assert_eq!(store.stat(&absent).await.unwrap(), None, "stat {absent}");
        let whole = store.get(&absent, None).await;
        assert!(
            matches!(whole, Err(BlobError::NotFound)),
            "get {absent}: expected NotFound, got {}",
            describe_read(&whole)
        );
        let ranged = store.get(&absent, Some(ByteRange { start: 0, end: 0 })).await;
        assert!(
            matches!(ranged, Err(BlobError::NotFound)),
            "ranged get {absent}: expected NotFound, got {}",
            describe_read(&ranged)
        );
    }
}

pub async fn putting_the_same_blob_twice_is_idempotent(store: Arc<dyn BlobStore>) {
    let data = pattern(70_000, 3);
    let digest = sha256(&data);

    store.put(&digest, Bytes::from(data.clone())).await.unwrap();
    store.put(&digest, Bytes::from(data.clone())).await.unwrap();

    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert_eq!(content(&*store, &digest).await, data);

    // And a put of a blob an upload already committed.
    let uploaded = pattern(5_000, 4);
    let uploaded_digest = sha256(&uploaded);
    let id = store.upload_start(&repo("contract/put")).await.unwrap();
    store.upload_append(&id, 0, body(&uploaded, CHUNK)).await.unwrap();
    store.upload_commit(&id, &uploaded_digest).await.unwrap();
    store
        .put(&uploaded_digest, Bytes::from(uploaded.clone()))
        .await
        .unwrap();
    assert_eq!(content(&*store, &uploaded_digest).await, uploaded);
}

pub async fn a_ranged_read_returns_exactly_the_inclusive_range(store: Arc<dyn BlobStore>) {
    let data = pattern(600_000, 5);
    let digest = sha256(&data);
    store.put(&digest, Bytes::from(data.clone())).await.unwrap();
    let last = data.len() as u64 - 1;

    let ranges = [
        (0, 0),
        (0, 1),
        (10, 19),
        (last, last),
        (last - 1, last),
        (0, last),
        // Across typical buffer boundaries (64 KiB, 256 KiB).
        (65_530, 65_545),
        (262_100, 262_200),
        (100_000, last),
    ];
    for (start, end) in ranges {
        let read = store.get(&digest, Some(ByteRange { start, end })).await.unwrap();
        assert_eq!(
            read.size,
            data.len() as u64,
            "a ranged read reports the whole blob's size"
        );
        let got = collect(read).await;
        let want = &data[start as usize..=end as usize];
        assert_eq!(got.len(), want.len(), "length of range {start}-{end}");
        assert!(got == want, "bytes of range {start}-{end} differ");
    }
}

pub async fn a_chunked_upload_commits_to_a_visible_blob_and_ends_the_session(store: Arc<dyn BlobStore>) {
    let repository = repo("contract/chunked");
    let data = pattern(200_000, 6);
    let digest = sha256(&data);

    let id = store.upload_start(&repository).await.unwrap();
    assert_eq!(
        store.upload_state(&id).await.unwrap(),
        UploadState {
            repository: repository.clone(),
            size: 0
        }
    );

    // Several appends, each itself a body of several chunks; the first is a single byte.
    let cuts = [0, 1, 70_000, 70_001, 150_000, data.len()];
    for window in cuts.windows(2) {
        let (from, to) = (window[0], window[1]);
        let size = store
            .upload_append(&id, from as u64, body(&data[from..to], CHUNK))
            .await
            .unwrap();
        assert_eq!(size, to as u64, "append returns the new size");
        assert_eq!(
            store.upload_state(&id).await.unwrap(),
            UploadState {
                repository: repository.clone(),
                size: to as u64
            }
        );
        assert_eq!(
            store.stat(&digest).await.unwrap(),
            None,
            "no blob before the commit"
        );
    }

    let size = store.upload_commit(&id, &digest).await.unwrap();

    assert_eq!(size, data.len() as u64, "commit returns the size");
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert_eq!(content(&*store, &digest).await, data);
    assert_upload_unknown(store.upload_state(&id).await, "state after commit");
    assert_upload_unknown(
        store
            .upload_append(&id, data.len() as u64, body(b"more", CHUNK))
            .await,
        "append after commit",
    );
    assert_upload_unknown(store.upload_commit(&id, &digest).await, "second commit");
    assert_upload_unknown(store.upload_abort(&id).await, "abort after commit");
    assert_eq!(
        content(&*store, &digest).await,
        data,
        "the blob outlives its session"
    );
}

pub async fn an_empty_upload_commits_to_the_empty_blob(store: Arc<dyn BlobStore>) {
    let digest = sha256(b"");
    let id = store.upload_start(&repo("contract/empty")).await.unwrap();

    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), 0);

    assert_eq!(store.stat(&digest).await.unwrap(), Some(0));
    assert_eq!(content(&*store, &digest).await, Vec::<u8>::new());
}

pub async fn an_append_at_the_wrong_offset_is_rejected_with_the_current_size_and_appends_nothing(
    store: Arc<dyn BlobStore>,
) {
    let data = pattern(2_000, 7);
    let id = store.upload_start(&repo("contract/offsets")).await.unwrap();
    assert!(
        matches!(
            store.upload_append(&id, 1, body(&data[..1_000], CHUNK)).await,
            Err(BlobError::OffsetMismatch { offset: 1, size: 0 })
        ),
        "an empty session accepts only offset 0"
    );
    store
        .upload_append(&id, 0, body(&data[..1_000], CHUNK))
        .await
        .unwrap();

    for wrong in [0, 1, 999, 1_001, 5_000] {
        let result = store.upload_append(&id, wrong, body(&data[1_000..], CHUNK)).await;
        assert!(
            matches!(result, Err(BlobError::OffsetMismatch { offset, size: 1_000 }) if offset == wrong),
            "append at {wrong}: expected OffsetMismatch {{ offset: {wrong}, size: 1000 }}, got {result:?}"
        );
        assert_eq!(
            store.upload_state(&id).await.unwrap().size,
            1_000,
            "after append at {wrong}"
        );
    }

    // The session holds exactly the first 1 000 bytes: the right continuation commits.
    assert_eq!(
        store
            .upload_append(&id, 1_000, body(&data[1_000..], CHUNK))
            .await
            .unwrap(),
        2_000
    );
    let digest = sha256(&data);
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), 2_000);
    assert_eq!(content(&*store, &digest).await, data);
}

pub async fn a_commit_with_the_wrong_digest_reports_the_computed_one_and_stores_nothing(
    store: Arc<dyn BlobStore>,
) {
    let data = pattern(50_000, 8);
    let actual = sha256(&data);
    let claimed = sha256(b"something else");
    let id = store.upload_start(&repo("contract/mismatch")).await.unwrap();
    store.upload_append(&id, 0, body(&data, CHUNK)).await.unwrap();

    let result = store.upload_commit(&id, &claimed).await;

    match result {
        Err(BlobError::DigestMismatch { computed }) => assert_eq!(computed, actual),
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(
        store.stat(&claimed).await.unwrap(),
        None,
        "the claimed digest is not stored"
    );
    assert_eq!(
        store.stat(&actual).await.unwrap(),
        None,
        "nor is the content under its own digest"
    );
    assert_upload_unknown(store.upload_state(&id).await, "state after a failed commit");
    assert_upload_unknown(
        store
            .upload_append(&id, data.len() as u64, body(b"x", CHUNK))
            .await,
        "append after a failed commit",
    );
    assert_upload_unknown(
        store.upload_commit(&id, &actual).await,
        "commit with the right digest after a failed commit",
    );
    assert_eq!(store.stat(&actual).await.unwrap(), None);
}

pub async fn a_sha512_upload_commits_and_verifies_under_sha512(store: Arc<dyn BlobStore>) {
    let data = pattern(120_000, 9);
    let digest = sha512(&data);
    let repository = repo("contract/sha512");

    let id = store.upload_start(&repository).await.unwrap();
    store
        .upload_append(&id, 0, body(&data[..60_000], CHUNK))
        .await
        .unwrap();
    store
        .upload_append(&id, 60_000, body(&data[60_000..], CHUNK))
        .await
        .unwrap();
    assert_eq!(
        store.upload_commit(&id, &digest).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert_eq!(content(&*store, &digest).await, data);

    // A wrong sha512 digest reports the content's sha512, not its sha256.
    let other = pattern(1_000, 10);
    let id = store.upload_start(&repository).await.unwrap();
    store.upload_append(&id, 0, body(&other, CHUNK)).await.unwrap();
    match store.upload_commit(&id, &sha512(b"not it")).await {
        Err(BlobError::DigestMismatch { computed }) => {
            assert_eq!(computed.algorithm(), Algorithm::Sha512);
            assert_eq!(computed, sha512(&other));
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(store.stat(&sha512(&other)).await.unwrap(), None);
}

pub async fn an_aborted_upload_is_unknown_afterwards(store: Arc<dyn BlobStore>) {
    let data = pattern(10_000, 11);
    let digest = sha256(&data);
    let id = store.upload_start(&repo("contract/abort")).await.unwrap();
    store.upload_append(&id, 0, body(&data, CHUNK)).await.unwrap();

    store.upload_abort(&id).await.unwrap();

    assert_upload_unknown(store.upload_state(&id).await, "state after abort");
    assert_upload_unknown(
        store
            .upload_append(&id, data.len() as u64, body(b"x", CHUNK))
            .await,
        "append after abort",
    );
    assert_upload_unknown(store.upload_commit(&id, &digest).await, "commit after abort");
    assert_upload_unknown(store.upload_abort(&id).await, "second abort");
    assert_eq!(store.stat(&digest).await.unwrap(), None);
}

pub async fn operations_on_an_unknown_upload_report_upload_unknown(store: Arc<dyn BlobStore>) {
    let id = UploadId::new();
    assert_upload_unknown(store.upload_state(&id).await, "state");
    assert_upload_unknown(store.upload_append(&id, 0, body(b"x", CHUNK)).await, "append");
    assert_upload_unknown(store.upload_commit(&id, &sha256(b"")).await, "commit");
    assert_upload_unknown(store.upload_abort(&id).await, "abort");
    // None of these created the session.
    assert_upload_unknown(store.upload_state(&id).await, "state after the attempts");
    assert_eq!(store.stat(&sha256(b"")).await.unwrap(), None);
}

pub async fn concurrent_sessions_are_independent(store: Arc<dyn BlobStore>) {
    let (a_data, b_data) = (pattern(30_000, 12), pattern(20_000, 13));
    let a = store.upload_start(&repo("contract/one")).await.unwrap();
    let b = store.upload_start(&repo("contract/two")).await.unwrap();
    assert_ne!(a, b);

    store
        .upload_append(&a, 0, body(&a_data[..10_000], CHUNK))
        .await
        .unwrap();
    store
        .upload_append(&b, 0, body(&b_data[..5_000], CHUNK))
        .await
        .unwrap();
    store
        .upload_append(&a, 10_000, body(&a_data[10_000..], CHUNK))
        .await
        .unwrap();
    assert_eq!(
        store.upload_state(&a).await.unwrap(),
        UploadState {
            repository: repo("contract/one"),
            size: 30_000
        }
    );
    assert_eq!(
        store.upload_state(&b).await.unwrap(),
        UploadState {
            repository: repo("contract/two"),
            size: 5_000
        }
    );
    store
        .upload_append(&b, 5_000, body(&b_data[5_000..], CHUNK))
        .await
        .unwrap();

    assert_eq!(store.upload_commit(&b, &sha256(&b_data)).await.unwrap(), 20_000);
    assert_eq!(store.upload_commit(&a, &sha256(&a_data)).await.unwrap(), 30_000);
    assert_eq!(content(&*store, &sha256(&a_data)).await, a_data);
    assert_eq!(content(&*store, &sha256(&b_data)).await, b_data);
}

/// `open` opens the adapter over the same backing storage each time (a process restart).
pub async fn an_upload_session_survives_a_restart(open: impl Fn() -> Arc<dyn BlobStore>) {
    let repository = repo("contract/restart");
    let data = pattern(300_000, 14);
    let digest = sha256(&data);

    let before = open();
    let id = before.upload_start(&repository).await.unwrap();
    before
        .upload_append(&id, 0, body(&data[..100_000], CHUNK))
        .await
        .unwrap();
    before
        .upload_append(&id, 100_000, body(&data[100_000..180_000], CHUNK))
        .await
        .unwrap();
    drop(before);

    let after = open();
    assert_eq!(
        after.upload_state(&id).await.unwrap(),
        UploadState {
            repository: repository.clone(),
            size: 180_000
        }
    );
    let early = after
        .upload_append(&id, 100_000, body(&data[100_000..], CHUNK))
        .await;
    assert!(
        matches!(
            early,
            Err(BlobError::OffsetMismatch {
                offset: 100_000,
                size: 180_000
            })
        ),
        "the reopened store knows the session's size: got {early:?}"
    );
    assert_eq!(
        after
            .upload_append(&id, 180_000, body(&data[180_000..], CHUNK))
            .await
            .unwrap(),
        300_000
    );
    drop(after);

    let last = open();
    assert_eq!(last.upload_commit(&id, &digest).await.unwrap(), 300_000);
    assert_upload_unknown(last.upload_state(&id).await, "state after commit");
    drop(last);

    let reopened = open();
    assert_eq!(
        content(&*reopened, &digest).await,
        data,
        "the committed blob is durable"
    );
}

pub async fn concurrent_commits_of_the_same_content_all_succeed_and_leave_the_blob_intact(
    store: Arc<dyn BlobStore>,
) {
    const SESSIONS: usize = 8;
    let data = Arc::new(pattern(1 << 20, 15));
    let digest = sha256(&data);
    // Every session and one direct put race for the same digest once all are ready.
    let barrier = Arc::new(Barrier::new(SESSIONS + 1));

    let mut tasks = Vec::new();
    for n in 0..SESSIONS {
        let (store, data, digest, barrier) = (store.clone(), data.clone(), digest.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let id = store
                .upload_start(&repo(&format!("contract/race{n}")))
                .await
                .unwrap();
            store.upload_append(&id, 0, body(&data, 65_536)).await.unwrap();
            barrier.wait().await;
            store.upload_commit(&id, &digest).await
        }));
    }
    let put = {
        let (store, data, digest, barrier) = (store.clone(), data.clone(), digest.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            store.put(&digest, Bytes::from(data.to_vec())).await
        })
    };

    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        assert!(
            matches!(result, Ok(size) if size == data.len() as u64),
            "commit {n}: expected Ok({}), got {result:?}",
            data.len()
        );
    }
    put.await.unwrap().unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert!(
        content(&*store, &digest).await == *data,
        "the blob's bytes are intact"
    );
}

pub async fn a_body_that_fails_midway_leaves_a_session_that_can_resume_from_its_state(
    store: Arc<dyn BlobStore>,
) {
    let data = pattern(100_000, 16);
    let digest = sha256(&data);
    let id = store.upload_start(&repo("contract/failing")).await.unwrap();
    store
        .upload_append(&id, 0, body(&data[..10_000], CHUNK))
        .await
        .unwrap();

    // A body that fails before its first byte keeps nothing.
    let result = store
        .upload_append(&id, 10_000, failing_body(&[], &data[10_000..20_000]))
        .await;
    assert!(
        matches!(result, Err(BlobError::Backend(_))),
        "a failing body fails the append: got {result:?}"
    );
    assert_eq!(store.upload_state(&id).await.unwrap().size, 10_000);

    // A body that fails after 40 000 bytes keeps a prefix of them, and the state says how much.
    let result = store
        .upload_append(
            &id,
            10_000,
            failing_body(
                &[&data[10_000..30_000], &data[30_000..50_000]],
                &data[50_000..60_000],
            ),
        )
        .await;
    assert!(
        matches!(result, Err(BlobError::Backend(_))),
        "a failing body fails the append: got {result:?}"
    );
    let kept = store.upload_state(&id).await.unwrap().size;
    assert!(
        (10_000..=50_000).contains(&kept),
        "the session holds {kept} bytes; it may only keep a prefix of what came before the error"
    );
    let probe = store.upload_append(&id, kept + 1, body(b"x", CHUNK)).await;
    assert!(
        matches!(probe, Err(BlobError::OffsetMismatch { offset, size }) if offset == kept + 1 && size == kept),
        "the session's offset check agrees with its state ({kept}): got {probe:?}"
    );

    // Resuming from the reported size completes the upload with exactly the right bytes.
    let size = store
        .upload_append(&id, kept, body(&data[kept as usize..], CHUNK))
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(
        store.upload_commit(&id, &digest).await.unwrap(),
        data.len() as u64
    );
    assert_eq!(content(&*store, &digest).await, data);
}

/// Pause between the writes of the expiry check: S3 servers report `LastModified` to the second.
const EXPIRY_STEP: std::time::Duration = std::time::Duration::from_millis(2_100);

pub async fn expiring_uploads_spares_sessions_written_since_the_cutoff(store: Arc<dyn BlobStore>) {
    let r = repo("contract/expiry");
    let (first, second, third) = (pattern(9_000, 40), pattern(6_000, 41), pattern(3_000, 42));
    let whole: Vec<u8> = [&first[..], &second[..], &third[..]].concat();
    let started = chrono::Utc::now();
    let kept = store.upload_start(&r).await.unwrap();
    store.upload_append(&kept, 0, body(&first, CHUNK)).await.unwrap();
    let idle = store.upload_start(&r).await.unwrap();
    tokio::time::sleep(EXPIRY_STEP).await;
    // After both sessions' first writes, before `kept`'s next one.
    let cutoff = chrono::Utc::now() - chrono::Duration::seconds(1);
    let size = store
        .upload_append(&kept, first.len() as u64, body(&second, CHUNK))
        .await
        .unwrap();

    let before_any_write = started - chrono::Duration::minutes(1);
    assert_eq!(
        store.expire_uploads(before_any_write).await.unwrap(),
        0,
        "no session is older than a cutoff before every write"
    );
    assert_eq!(store.upload_state(&idle).await.unwrap().size, 0);

    assert_eq!(
        store.expire_uploads(cutoff).await.unwrap(),
        1,
        "only the session not written to since the cutoff expires"
    );
    assert_upload_unknown(store.upload_state(&idle).await, "state of the expired session");
    assert_eq!(store.upload_state(&kept).await.unwrap().size, size);

    // The session written to after the cutoff resumes where it was and commits.
    let size = store
        .upload_append(&kept, size, body(&third, CHUNK))
        .await
        .unwrap();
    assert_eq!(size, whole.len() as u64);
    let digest = sha256(&whole);
    assert_eq!(store.upload_commit(&kept, &digest).await.unwrap(), size);
    assert_eq!(content(&*store, &digest).await, whole);
}

pub async fn expiring_uploads_aborts_idle_sessions_and_leaves_committed_blobs(store: Arc<dyn BlobStore>) {
    let r = repo("contract/expiry");
    let (uploaded, put, pending) = (pattern(20_000, 43), pattern(4_000, 44), pattern(5_000, 45));
    let id = store.upload_start(&r).await.unwrap();
    store.upload_append(&id, 0, body(&uploaded, CHUNK)).await.unwrap();
    store.upload_commit(&id, &sha256(&uploaded)).await.unwrap();
    store.put(&sha256(&put), Bytes::from(put.clone())).await.unwrap();
    let written = store.upload_start(&r).await.unwrap();
    store
        .upload_append(&written, 0, body(&pending, CHUNK))
        .await
        .unwrap();
    let empty = store.upload_start(&r).await.unwrap();

    let after_every_write = chrono::Utc::now() + chrono::Duration::minutes(1);
    assert_eq!(store.expire_uploads(after_every_write).await.unwrap(), 2);

    for session in [&written, &empty] {
        assert_upload_unknown(store.upload_state(session).await, "state after expiry");
        assert_upload_unknown(
            store.upload_append(session, 0, body(b"x", CHUNK)).await,
            "append after expiry",
        );
        assert_upload_unknown(
            store.upload_commit(session, &sha256(&pending)).await,
            "commit after expiry",
        );
    }
    assert_eq!(store.stat(&sha256(&pending)).await.unwrap(), None);
    assert_eq!(content(&*store, &sha256(&uploaded)).await, uploaded);
    assert_eq!(content(&*store, &sha256(&put)).await, put);
    assert_eq!(
        store.expire_uploads(after_every_write).await.unwrap(),
        0,
        "expiring again finds nothing"
    );

    // New sessions work as before.
    let id = store.upload_start(&r).await.unwrap();
    store.upload_append(&id, 0, body(&pending, CHUNK)).await.unwrap();
    store.upload_commit(&id, &sha256(&pending)).await.unwrap();
    assert_eq!(content(&*store, &sha256(&pending)).await, pending);
}

/// Every page of `list_blobs` from the start, `limit` at a time.
async fn list_all(store: &dyn BlobStore, limit: usize) -> Vec<berth::ports::StoredBlob> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_blobs(after.as_ref(), limit).await.unwrap();
        assert!(page.len() <= limit, "a page holds at most its limit");
        let last = page.len() < limit;
        after = page.last().map(|b| b.digest.clone());
        all.extend(page);
        if last {
            return all;
        }
    }
}

pub async fn listing_pages_through_every_blob_in_key_order_with_sizes_and_times(store: Arc<dyn BlobStore>) {
    let before = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut expected: Vec<(berth::domain::Digest, u64)> = Vec::new();
    for seed in 0..7 {
        let data = pattern(1_000 + seed as usize * 100, 60 + seed);
        store
            .put(&sha256(&data), Bytes::from(data.clone()))
            .await
            .unwrap();
        expected.push((sha256(&data), data.len() as u64));
    }
    let long = pattern(3_000, 70);
    store
        .put(&sha512(&long), Bytes::from(long.clone()))
        .await
        .unwrap();
    expected.push((sha512(&long), long.len() as u64));
    let uploaded = pattern(2_000, 71);
    let id = store.upload_start(&repo("contract/list")).await.unwrap();
    store.upload_append(&id, 0, body(&uploaded, CHUNK)).await.unwrap();
    store.upload_commit(&id, &sha256(&uploaded)).await.unwrap();
    expected.push((sha256(&uploaded), uploaded.len() as u64));
    // A session in progress is no blob.
    let pending = store.upload_start(&repo("contract/list")).await.unwrap();
    store
        .upload_append(&pending, 0, body(b"pending", CHUNK))
        .await
        .unwrap();
    // Key order: by algorithm, then hex.
    expected
        .sort_by(|(a, _), (b, _)| (a.algorithm().as_str(), a.hex()).cmp(&(b.algorithm().as_str(), b.hex())));
    let after = chrono::Utc::now() + chrono::Duration::minutes(5);

    for limit in [1, 2, 4, 1_000] {
        let listed = list_all(&*store, limit).await;
        let got: Vec<(berth::domain::Digest, u64)> =
            listed.iter().map(|b| (b.digest.clone(), b.size)).collect();
        assert_eq!(got, expected, "pages of {limit}");
        for blob in &listed {
            assert!(
                before < blob.modified && blob.modified < after,
                "{} modified at {}",
                blob.digest,
                blob.modified
            );
        }
    }
    // From any digest, only what comes after it.
    let third = &expected[2].0;
    let rest = store.list_blobs(Some(third), 1_000).await.unwrap();
    assert_eq!(rest.len(), expected.len() - 3);
    assert_eq!(rest[0].digest, expected[3].0);
}

pub async fn deleting_blobs_removes_them_and_passes_over_absent_ones(store: Arc<dyn BlobStore>) {
    let kept = pattern(4_000, 80);
    let gone: Vec<Vec<u8>> = (81..85).map(|seed| pattern(2_000, seed)).collect();
    store
        .put(&sha256(&kept), Bytes::from(kept.clone()))
        .await
        .unwrap();
    for data in &gone {
        store.put(&sha256(data), Bytes::from(data.clone())).await.unwrap();
    }
    let mut doomed: Vec<berth::domain::Digest> = gone.iter().map(|d| sha256(d)).collect();
    doomed.push(sha256(b"never stored"));
    store.delete_blobs(&doomed).await.unwrap();
    for digest in &doomed {
        assert_eq!(store.stat(digest).await.unwrap(), None, "{digest} deleted");
        assert!(matches!(store.get(digest, None).await, Err(BlobError::NotFound)));
    }
    assert_eq!(content(&*store, &sha256(&kept)).await, kept);
    let listed: Vec<_> = list_all(&*store, 1_000)
        .await
        .into_iter()
        .map(|b| b.digest)
        .collect();
    assert_eq!(listed, [sha256(&kept)]);
    // Deleting again, or nothing, is no error; a deleted blob can be stored again.
    store.delete_blobs(&doomed).await.unwrap();
    store.delete_blobs(&[]).await.unwrap();
    store.put(&doomed[0], Bytes::from(gone[0].clone())).await.unwrap();
    assert_eq!(content(&*store, &doomed[0]).await, gone[0]);
}
