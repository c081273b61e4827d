//! The `Checkpoints` contract. Each check takes a fresh store (or a way to open one over the same
//! backing storage): a checkpoint starts absent, `advance` moves it only forwards (and says whether
//! it moved), names are independent, and concurrent writers leave the latest position.

use std::sync::Arc;

use berth::domain::LogPosition;
use berth::ports::Checkpoints;

/// The position of the `sequence`-th event of a numbered log (the embedded log's form).
fn p(sequence: u64) -> LogPosition {
    LogPosition::sequence(sequence)
}
use tokio::sync::Barrier;

pub async fn a_projection_without_a_checkpoint_has_none(checkpoints: Arc<dyn Checkpoints>) {
    assert_eq!(checkpoints.get("audit").await.unwrap(), None);
    assert_eq!(checkpoints.get("never-advanced").await.unwrap(), None);
}

pub async fn advancing_a_fresh_checkpoint_sets_it(checkpoints: Arc<dyn Checkpoints>) {
    assert!(checkpoints.advance("audit", &p(1)).await.unwrap());
    assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(1)));
}

pub async fn a_checkpoint_moves_forward(checkpoints: Arc<dyn Checkpoints>) {
    for sequence in [3, 4, 10, 11] {
        assert!(
            checkpoints.advance("audit", &p(sequence)).await.unwrap(),
            "to {sequence}"
        );
        assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(sequence)));
    }
}

pub async fn a_checkpoint_never_moves_backwards(checkpoints: Arc<dyn Checkpoints>) {
    assert!(checkpoints.advance("audit", &p(9)).await.unwrap());
    for sequence in [8, 1, 0] {
        assert!(
            !checkpoints.advance("audit", &p(sequence)).await.unwrap(),
            "advancing to {sequence} must not move a checkpoint at 9"
        );
    }
    assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(9)));
}

pub async fn advancing_to_the_current_sequence_is_not_a_move(checkpoints: Arc<dyn Checkpoints>) {
    assert!(checkpoints.advance("audit", &p(5)).await.unwrap());
    assert!(!checkpoints.advance("audit", &p(5)).await.unwrap());
    assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(5)));
}

pub async fn checkpoints_are_independent_per_name(checkpoints: Arc<dyn Checkpoints>) {
    let names = ["audit", "audit-v2", "replication/site#a", "Audit"];
    for (name, sequence) in names.iter().zip([7, 3, 12, 1]) {
        assert!(checkpoints.advance(name, &p(sequence)).await.unwrap());
    }
    assert!(checkpoints.advance("audit-v2", &p(4)).await.unwrap());
    let got: Vec<Option<LogPosition>> = {
        let mut got = Vec::new();
        for name in names {
            got.push(checkpoints.get(name).await.unwrap());
        }
        got
    };
    assert_eq!(got, [Some(p(7)), Some(p(4)), Some(p(12)), Some(p(1))]);
    assert_eq!(checkpoints.get("audit-v3").await.unwrap(), None);
}

pub async fn concurrent_advances_keep_the_highest(checkpoints: Arc<dyn Checkpoints>) {
    // Sixteen writers at once, in an order unrelated to their sequences.
    let sequences: Vec<u64> = (0..16u64).map(|i| (i * 7) % 16 + 100).collect();
    let barrier = Arc::new(Barrier::new(sequences.len()));
    let tasks: Vec<_> = sequences
        .iter()
        .map(|&sequence| {
            let (checkpoints, barrier) = (checkpoints.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                checkpoints.advance("audit", &p(sequence)).await
            })
        })
        .collect();
    let mut moved = 0;
    for task in tasks {
        moved += usize::from(task.await.unwrap().unwrap());
    }
    assert!(moved >= 1, "some advance moved the checkpoint");
    assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(115)));
}

pub async fn every_u64_sequence_is_kept_exactly(checkpoints: Arc<dyn Checkpoints>) {
    // Past 2^53 a float would round; past i64::MAX a signed integer would overflow.
    for sequence in [(1u64 << 53) + 1, i64::MAX as u64 + 1, u64::MAX] {
        assert!(checkpoints.advance("audit", &p(sequence)).await.unwrap());
        assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(sequence)));
    }
}

pub async fn a_checkpoint_survives_reopening_the_store(open: impl Fn() -> Arc<dyn Checkpoints>) {
    {
        let checkpoints = open();
        assert!(checkpoints.advance("audit", &p(42)).await.unwrap());
    }
    let checkpoints = open();
    assert_eq!(checkpoints.get("audit").await.unwrap(), Some(p(42)));
    assert!(!checkpoints.advance("audit", &p(41)).await.unwrap());
}
