//! The `KeyStore` contract: the token service's signing keys, oldest first, added only at the
//! count the writer saw (so two instances starting at once agree on one key).

use std::sync::Arc;

use berth::ports::KeyStore;

fn pem(n: usize) -> String {
    format!("-----BEGIN PRIVATE KEY-----\nkey-{n}\n-----END PRIVATE KEY-----\n")
}

pub async fn a_new_store_holds_no_keys(store: Arc<dyn KeyStore>) {
    assert_eq!(store.load().await.unwrap(), Vec::<String>::new());
}

pub async fn keys_load_back_oldest_first_byte_for_byte(store: Arc<dyn KeyStore>) {
    for n in 0..3 {
        assert!(store.add(n, pem(n)).await.unwrap(), "add #{n}");
    }
    assert_eq!(store.load().await.unwrap(), vec![pem(0), pem(1), pem(2)]);
}

pub async fn an_add_at_a_stale_count_adds_nothing(store: Arc<dyn KeyStore>) {
    assert!(store.add(0, pem(0)).await.unwrap());
    assert!(!store.add(0, pem(9)).await.unwrap(), "another writer added first");
    assert!(!store.add(5, pem(9)).await.unwrap(), "a count ahead of the store");
    assert_eq!(store.load().await.unwrap(), vec![pem(0)]);
}

pub async fn concurrent_first_adds_agree_on_one_key(store: Arc<dyn KeyStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.add(0, pem(n)).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(store.load().await.unwrap().len(), 1);
}
