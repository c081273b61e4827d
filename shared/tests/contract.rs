#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Port contract suites. Each port has one suite of generic checks (in `contract/`) that take the port
//! as a trait object, so every adapter runs the same checks; this file runs them against the embedded
//! adapters: `FsBlobStore` for `BlobStore`, `RedbStore` for `EventLog`, `Views` and `Checkpoints`,
//! `FsAuditSink` for `EventSink`.

#[path = "contract/blob_store.rs"]
mod blob_store;
#[path = "contract/checkpoints.rs"]
mod checkpoints;
#[path = "contract/event_log.rs"]
mod event_log;
#[path = "contract/event_sink.rs"]
mod event_sink;
#[path = "contract/key_store.rs"]
mod key_store;
#[path = "contract/quota_race.rs"]
mod quota_race;
#[path = "contract/support.rs"]
mod support;
#[path = "contract/views.rs"]
mod views;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth::adapters::embedded::RedbStore;
use berth::adapters::fs::FsBlobStore;
use tempfile::TempDir;

/// Temporary directories that live as long as the test that made them.
#[derive(Default)]
struct Scratch {
    dirs: Mutex<Vec<TempDir>>,
}

impl Scratch {
    fn dir(&self) -> PathBuf {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        self.dirs.lock().unwrap().push(dir);
        path
    }

    /// A fresh, empty redb store (event log and views).
    fn redb(&self) -> Arc<RedbStore> {
        Arc::new(RedbStore::open(&self.dir().join("berth.redb")).unwrap())
    }

    /// A fresh, empty file-system blob store.
    fn fs_blobs(&self) -> Arc<FsBlobStore> {
        Arc::new(FsBlobStore::open(&self.dir()).unwrap())
    }
}

/// One test per check that takes a single fresh port instance: `checks!(suite, fixture => check…)`.
macro_rules! checks {
    ($suite:ident, $fixture:ident => $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let scratch = crate::Scratch::default();
                crate::$suite::$check(scratch.$fixture()).await;
            }
        )+
    };
}

mod fs_blob_store {
    use std::sync::Arc;

    use berth::adapters::fs::FsBlobStore;
    use berth::ports::BlobStore;

    checks!(blob_store, fs_blobs =>
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
        listing_pages_through_every_blob_in_key_order_with_sizes_and_times,
        deleting_blobs_removes_them_and_passes_over_absent_ones,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_upload_session_survives_a_restart() {
        let scratch = crate::Scratch::default();
        let root = scratch.dir();
        crate::blob_store::an_upload_session_survives_a_restart(|| -> Arc<dyn BlobStore> {
            Arc::new(FsBlobStore::open(&root).unwrap())
        })
        .await;
    }
}

mod redb_event_log {
    checks!(event_log, redb =>
        appending_to_a_new_stream_at_version_zero_numbers_the_events_from_one,
        an_append_at_a_stale_version_is_a_conflict_and_appends_nothing,
        appending_no_events_is_a_no_op,
        streams_are_versioned_independently,
        read_all_pages_through_every_stream_in_position_order,
        concurrent_appenders_that_retry_on_conflict_lose_no_update,
        an_append_to_several_streams_writes_all_of_them_or_none,
        a_stream_only_checked_guards_the_append_and_gains_nothing,
        an_append_naming_a_stream_twice_is_refused,
        reading_a_stream_returns_only_its_events_in_version_order,
        reading_a_stream_after_a_version_skips_up_to_it,
        reading_a_stream_pages_by_limit,
        a_stream_that_does_not_exist_reads_empty,
        a_conflicting_append_adds_nothing_to_the_stream_read,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_append_updates_the_views_in_the_same_step() {
        let scratch = crate::Scratch::default();
        let store = scratch.redb();
        crate::event_log::an_append_updates_the_views_in_the_same_step(store.clone(), store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_conflicting_append_leaves_the_views_untouched() {
        let scratch = crate::Scratch::default();
        let store = scratch.redb();
        crate::event_log::a_conflicting_append_leaves_the_views_untouched(store.clone(), store).await;
    }
}

mod redb_views {
    use std::sync::Arc;

    use berth::ports::Views;

    checks!(views, redb =>
        projected_rows_answer_point_reads,
        views_are_scoped_to_their_repository,
        the_users_of_a_blob_and_the_holders_of_a_manifest_are_point_reads,
        tags_are_listed_case_insensitively_and_paginate_after_a_tag,
        repositories_are_listed_in_byte_order_and_paginate_after_a_name,
        referrers_are_listed_in_digest_order,
        moving_a_tag_with_a_previous_digest_moves_it_between_manifests,
        deleting_a_manifest_removes_it_and_its_referrer_row,
        deleting_a_tag_and_unlinking_a_blob_remove_their_rows,
        ops_in_one_apply_take_effect_in_order,
        clearing_empties_every_view,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn dumps_are_sorted_and_equal_exactly_when_the_contents_are() {
        let scratch = crate::Scratch::default();
        crate::views::dumps_are_sorted_and_equal_exactly_when_the_contents_are(|| -> Arc<dyn Views> {
            scratch.redb()
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replaying_the_same_ops_twice_changes_nothing() {
        let scratch = crate::Scratch::default();
        crate::views::replaying_the_same_ops_twice_changes_nothing(|| -> Arc<dyn Views> { scratch.redb() })
            .await;
    }
}

mod redb_checkpoints {
    use std::sync::Arc;

    use berth::adapters::embedded::RedbStore;
    use berth::ports::Checkpoints;

    checks!(checkpoints, redb =>
        a_projection_without_a_checkpoint_has_none,
        advancing_a_fresh_checkpoint_sets_it,
        a_checkpoint_moves_forward,
        a_checkpoint_never_moves_backwards,
        advancing_to_the_current_sequence_is_not_a_move,
        checkpoints_are_independent_per_name,
        concurrent_advances_keep_the_highest,
        every_u64_sequence_is_kept_exactly,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_checkpoint_survives_reopening_the_store() {
        let scratch = crate::Scratch::default();
        let path = scratch.dir().join("berth.redb");
        crate::checkpoints::a_checkpoint_survives_reopening_the_store(|| -> Arc<dyn Checkpoints> {
            Arc::new(RedbStore::open(&path).unwrap())
        })
        .await;
    }
}

mod redb_key_store {
    checks!(key_store, redb =>
        a_new_store_holds_no_keys,
        keys_load_back_oldest_first_byte_for_byte,
        an_add_at_a_stale_count_adds_nothing,
        concurrent_first_adds_agree_on_one_key,
    );
}

mod fs_audit_sink {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use async_trait::async_trait;
    use berth::adapters::audit::FsAuditSink;

    /// The archive's files read back from disk, every file under `audit/` included.
    struct Files(PathBuf);

    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }

    #[async_trait]
    impl crate::event_sink::Archive for Files {
        async fn documents(&self) -> BTreeMap<String, Vec<u8>> {
            let mut out = BTreeMap::new();
            walk(&self.0, &self.0, &mut out);
            out
        }
    }

    macro_rules! sink_checks {
        ($($check:ident),+ $(,)?) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let scratch = crate::Scratch::default();
                    let sink = FsAuditSink::open(&scratch.dir()).unwrap();
                    let archive = Arc::new(Files(sink.root().to_path_buf()));
                    crate::event_sink::$check(Arc::new(sink), archive).await;
                }
            )+
        };
    }

    /// A crash between the rename and the sync can leave a document cut short under its final
    /// name; the replay (the checkpoint did not pass it) must replace it, not keep it.
    #[tokio::test]
    async fn a_document_cut_short_before_its_sync_is_replaced_and_flush_makes_the_batch_durable() {
        use berth::adapters::audit::{archive_body, archive_key};
        use berth::ports::EventSink;
        let scratch = crate::Scratch::default();
        let sink = FsAuditSink::open(&scratch.dir()).unwrap();
        let event = crate::event_sink::blob_event(7);
        let path = sink.root().join(archive_key(&event));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"specversion\":").unwrap();

        sink.publish(&event).await.unwrap();
        sink.flush().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), archive_body(&event).unwrap());
        // Nothing written since: a flush has nothing to do and succeeds.
        sink.flush().await.unwrap();
    }

    sink_checks!(
        a_published_event_is_archived_as_its_cloudevent,
        publishing_the_same_event_twice_leaves_one_copy,
        concurrent_publishes_of_one_event_leave_one_copy,
        events_are_filed_under_the_utc_day_of_their_time,
        keys_sort_in_log_order_within_a_day,
        every_event_type_is_archived_with_its_cloudevent_type,
        republishing_earlier_events_after_later_ones_changes_nothing,
        concurrent_publishes_of_many_events_archive_each_once,
    );
}

/// Every adapter's test file lists the checks of its suites by name; this keeps those lists complete,
/// so a check added to a suite cannot silently skip an adapter.
#[test]
fn every_adapter_runs_every_check_of_its_suites() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let suites = [
        ("contract/blob_store.rs", ["contract.rs", "contract_s3.rs"]),
        ("contract/event_log.rs", ["contract.rs", "contract_dynamodb.rs"]),
        ("contract/views.rs", ["contract.rs", "contract_dynamodb.rs"]),
        ("contract/event_sink.rs", ["contract.rs", "contract_s3.rs"]),
        ("contract/checkpoints.rs", ["contract.rs", "contract_dynamodb.rs"]),
        ("contract/key_store.rs", ["contract.rs", "contract_dynamodb.rs"]),
    ];
    for (suite, adapters) in suites {
        let checks: Vec<String> = (read(suite).lines())
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|l| l.split(['(', '<']).next())
            .map(str::to_string)
            .collect();
        assert!(checks.len() >= 4, "{suite}: found only {checks:?}");
        for adapter in adapters {
            let text = read(adapter);
            let words: std::collections::HashSet<&str> =
                text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
            let missing: Vec<&String> = checks.iter().filter(|c| !words.contains(c.as_str())).collect();
            assert!(
                missing.is_empty(),
                "{adapter} does not run these checks of {suite}: {missing:?}"
            );
        }
    }
}

mod redb_quota {
    use std::sync::Arc;

    use berth::app::Registry;
    use berth::ports::SystemClock;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_pushers_at_the_limit_never_exceed_it() {
        let scratch = crate::Scratch::default();
        let store = scratch.redb();
        let registry = Registry::new(store.clone(), store, scratch.fs_blobs(), Arc::new(SystemClock));
        crate::quota_race::concurrent_pushers_at_the_limit_never_exceed_it(registry).await;
    }
}
