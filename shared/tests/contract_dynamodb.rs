#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `EventLog`, `Views` and `Checkpoints` contract suites against `DynamoStore`, each check on a fresh table with
//! a random name. Needs a DynamoDB endpoint (moto from `scripts/local-stack.sh up`) in
//! `AWS_ENDPOINT_URL_DYNAMODB` or `BERTH_TEST_DYNAMODB_ENDPOINT`; `BERTH_SKIP_AWS_TESTS=1` skips.

#[path = "contract/checkpoints.rs"]
mod checkpoints;
#[path = "contract/dynamodb_layout.rs"]
mod dynamodb_layout;
#[path = "contract/event_log.rs"]
mod event_log;
#[path = "contract/key_store.rs"]
mod key_store;
#[path = "contract/quota_race.rs"]
mod quota_race;
#[path = "contract/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "contract/views.rs"]
mod views;

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::Credentials;
use berth::adapters::dynamodb::DynamoStore;
use berth::ports::Views;

const ENDPOINT_VARS: [&str; 2] = ["AWS_ENDPOINT_URL_DYNAMODB", "BERTH_TEST_DYNAMODB_ENDPOINT"];

/// The endpoint to test against, or `None` when the AWS tests are skipped; fails the test when no
/// endpoint is configured and they are not.
fn endpoint() -> Option<String> {
    if std::env::var("BERTH_SKIP_AWS_TESTS").is_ok_and(|v| v == "1") {
        println!("skipped: BERTH_SKIP_AWS_TESTS=1");
        return None;
    }
    let found = ENDPOINT_VARS
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    match found {
        Some(url) => Some(url),
        None => panic!(
            "no DynamoDB endpoint: run `scripts/local-stack.sh up` and export the environment it \
             prints ({} or {}), or set BERTH_SKIP_AWS_TESTS=1 to skip these tests",
            ENDPOINT_VARS[0], ENDPOINT_VARS[1]
        ),
    }
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"));
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        // moto accepts any credentials.
        loader = loader.credentials_provider(Credentials::new("test", "test", None, None, "berth-contract"));
    }
    loader.load().await
}

/// `count` fresh stores, each on its own new table; `None` when skipped.
async fn stores(count: usize) -> Option<Vec<Arc<DynamoStore>>> {
    let endpoint = endpoint()?;
    let config = sdk_config(&endpoint).await;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let table = format!("berth-contract-{}", uuid::Uuid::new_v4().simple());
        let store = DynamoStore::new(&config, table);
        store.create_table_if_missing().await.unwrap();
        out.push(Arc::new(store));
    }
    Some(out)
}

async fn drop_tables(stores: &[Arc<DynamoStore>]) {
    for store in stores {
        // Best effort: a leftover table only costs the local stack some memory.
        let _ = store.delete_table().await;
    }
}

/// Hands out pre-made stores to the checks that take a synchronous factory.
struct Factory(Mutex<Vec<Arc<DynamoStore>>>);

impl Factory {
    fn make(&self) -> Arc<dyn Views> {
        self.0
            .lock()
            .unwrap()
            .pop()
            .expect("the test made too few stores")
    }
}

/// One test per check that takes a single fresh store: `checks!(suite => check…)`.
macro_rules! checks {
    ($suite:ident => $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(stores) = crate::stores(1).await else { return };
                crate::$suite::$check(stores[0].clone()).await;
                crate::drop_tables(&stores).await;
            }
        )+
    };
}

/// One test per check that takes the same store as log and views.
macro_rules! log_and_views_checks {
    ($($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(stores) = crate::stores(1).await else { return };
                crate::event_log::$check(stores[0].clone(), stores[0].clone()).await;
                crate::drop_tables(&stores).await;
            }
        )+
    };
}

/// One test per check that takes a factory of fresh stores (`n` of them at most).
macro_rules! factory_checks {
    ($($check:ident: $n:expr),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(stores) = crate::stores($n).await else { return };
                let factory = crate::Factory(std::sync::Mutex::new(stores.clone()));
                crate::views::$check(|| factory.make()).await;
                crate::drop_tables(&stores).await;
            }
        )+
    };
}

mod dynamodb_event_log {
    checks!(event_log =>
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

    log_and_views_checks!(
        an_append_updates_the_views_in_the_same_step,
        a_conflicting_append_leaves_the_views_untouched,
    );
}

mod dynamodb_views {
    checks!(views =>
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

    factory_checks!(
        dumps_are_sorted_and_equal_exactly_when_the_contents_are: 4,
        replaying_the_same_ops_twice_changes_nothing: 2,
    );
}

mod dynamodb_key_store {
    checks!(key_store =>
        a_new_store_holds_no_keys,
        keys_load_back_oldest_first_byte_for_byte,
        an_add_at_a_stale_count_adds_nothing,
        concurrent_first_adds_agree_on_one_key,
    );
}

mod dynamodb_checkpoints {
    use std::sync::Arc;

    use berth::adapters::dynamodb::DynamoStore;
    use berth::ports::Checkpoints;

    checks!(checkpoints =>
        a_projection_without_a_checkpoint_has_none,
        advancing_a_fresh_checkpoint_sets_it,
        a_checkpoint_moves_forward,
        a_checkpoint_never_moves_backwards,
        advancing_to_the_current_sequence_is_not_a_move,
        checkpoints_are_independent_per_name,
        concurrent_advances_keep_the_highest,
        every_u64_sequence_is_kept_exactly,
    );

    /// A new client on the same table is a restarted process.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_checkpoint_survives_reopening_the_store() {
        let Some(stores) = crate::stores(1).await else {
            return;
        };
        let config = crate::sdk_config(&crate::endpoint().unwrap()).await;
        let table = stores[0].table().to_string();
        crate::checkpoints::a_checkpoint_survives_reopening_the_store(|| -> Arc<dyn Checkpoints> {
            Arc::new(DynamoStore::new(&config, table.clone()))
        })
        .await;
        crate::drop_tables(&stores).await;
    }

    /// Checkpoints share the table with the views but are none of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn checkpoints_are_not_views() {
        use berth::ports::Views;
        let Some(stores) = crate::stores(1).await else {
            return;
        };
        let store = stores[0].clone();
        store
            .advance("audit", &berth::domain::LogPosition::sequence(3))
            .await
            .unwrap();
        assert_eq!(store.dump().await.unwrap(), Vec::<String>::new());
        store.clear().await.unwrap();
        assert_eq!(
            Checkpoints::get(&*store, "audit").await.unwrap(),
            Some(berth::domain::LogPosition::sequence(3))
        );
        crate::drop_tables(&stores).await;
    }
}

/// DynamoDB-specific: appends beyond the transaction limits fail cleanly and append nothing.
mod dynamodb_limits {
    use berth::domain::{EventEnvelope, LogPosition, StreamId};
    use berth::ports::{EventLog, LogError, Views};

    use crate::support::{blob_uploaded, digest, envelope, repo};

    fn blobs(n: usize, principal_bytes: usize) -> Vec<EventEnvelope> {
        let r = repo("limits/repo");
        (0..n)
            .map(|i| {
                let mut e = envelope(blob_uploaded(&r, &digest(&format!("blob-{i}")), 1));
                e.principal = "p".repeat(principal_bytes);
                e
            })
            .collect()
    }

    async fn assert_rejected(events: Vec<EventEnvelope>, constant: &str) {
        let Some(stores) = crate::stores(1).await else {
            return;
        };
        let store = stores[0].clone();
        let s = StreamId::repository(&repo("limits/repo"));
        match store.append(&s, 0, events).await {
            Err(LogError::Backend(message)) => assert!(message.contains(constant), "{message}"),
            other => panic!("expected a Backend error naming {constant}, got {other:?}"),
        }
        assert_eq!(store.stream_version(&s).await.unwrap(), 0);
        assert_eq!(store.read_all(&LogPosition::start(), 10).await.unwrap(), vec![]);
        assert_eq!(store.read_stream(&s, 0, 10).await.unwrap(), vec![]);
        assert_eq!(store.dump().await.unwrap(), Vec::<String>::new());
        crate::drop_tables(&stores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_append_over_the_item_limit_of_a_transaction_is_rejected() {
        // The stream's head, each blob upload's event item and blob link, the catalog row:
        // 1 + 50 × 2 + 1 = 102 items.
        assert_rejected(blobs(50, 10), "MAX_TRANSACT_ITEMS").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_append_over_the_byte_limit_of_a_transaction_is_rejected() {
        assert_rejected(blobs(12, 380 * 1024), "MAX_TRANSACT_BYTES").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_event_over_the_item_size_limit_is_rejected() {
        assert_rejected(blobs(1, 500 * 1024), "MAX_ITEM_BYTES").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_append_just_within_the_item_limit_succeeds() {
        let Some(stores) = crate::stores(1).await else {
            return;
        };
        let store = stores[0].clone();
        let s = StreamId::repository(&repo("limits/repo"));
        // 1 head + 49 event items + 49 blob links + 1 catalog row = 100.
        let recorded = store.append(&s, 0, blobs(49, 10)).await.unwrap();
        assert_eq!(recorded.len(), 49);
        assert_eq!(
            store.read_all(&LogPosition::start(), 100).await.unwrap(),
            recorded
        );
        assert_eq!(store.read_stream(&s, 0, 100).await.unwrap(), recorded);
        crate::drop_tables(&stores).await;
    }
}
