//! Limits on password checks, so wrong passwords cannot exhaust the server: every argon2
//! verification takes ~19 MiB and tens of milliseconds on purpose.
//!
//! - At most `hash_concurrency` verifications run at once, and at most `hash_queue` wait for a
//!   turn; beyond that a login is refused at once with 429 `TOOMANYREQUESTS` and `Retry-After`.
//! - After [`LoginLimits::max_failures`] failed checks within [`FAILURE_WINDOW`] for one username,
//!   or from one client address, further checks for that key are refused with 429 for
//!   [`FAILURE_BACKOFF`] without hashing. A success clears the username's count; one mistyped
//!   password does not lock anyone out.
//! - Credentials verified recently are answered from the credential cache, before any of this: a
//!   signed-in client is never throttled.
//!
//! The client address comes from the host: [`with_client_address`] runs a request with it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppError;
use crate::auth::HashMemory;

/// Failures counted per key within this window (it starts at the key's first failure).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a key that reached the failure limit is refused: long enough to make guessing slow,
/// short enough that a locked-out user retries soon.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(30);
/// What a 429 for a full hashing queue asks the client to wait: hashing turns over in milliseconds.
const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Keys whose failures are tracked at most; expired ones are dropped when full, then all.
const TRACKED_KEYS: usize = 65_536;
/// Password checks waiting for a hashing turn, unless configured.
const DEFAULT_HASH_QUEUE: usize = 64;
/// Failed checks per username or address within [`FAILURE_WINDOW`], unless configured.
const DEFAULT_MAX_FAILURES: u32 = 10;

tokio::task_local! {
    static CLIENT_ADDRESS: IpAddr;
}

/// Runs `request` knowing its client's address (the failure throttle counts per address too).
pub async fn with_client_address<F: Future>(address: IpAddr, request: F) -> F::Output {
    CLIENT_ADDRESS.scope(address, request).await
}

/// The address of the client whose request is running, when the host said.
fn client_address() -> Option<IpAddr> {
    CLIENT_ADDRESS.try_with(|a| *a).ok()
}

/// The operator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Verifications running at once (`BERTH_AUTH_HASH_CONCURRENCY`, default: the core count).
    pub hash_concurrency: usize,
    /// Verifications waiting for a turn (`BERTH_AUTH_HASH_QUEUE`, default 64).
    pub hash_queue: usize,
    /// Failures per username or address within [`FAILURE_WINDOW`] before [`FAILURE_BACKOFF`]
    /// (`BERTH_AUTH_MAX_FAILURES`, default 10).
    pub max_failures: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            hash_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            hash_queue: DEFAULT_HASH_QUEUE,
            max_failures: DEFAULT_MAX_FAILURES,
        }
    }
}

impl LoginLimits {
    /// From `BERTH_AUTH_HASH_CONCURRENCY`, `BERTH_AUTH_HASH_QUEUE` and `BERTH_AUTH_MAX_FAILURES`.
    pub fn from_env() -> Result<LoginLimits, String> {
        fn var<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String> {
            match std::env::var(name) {
                Ok(v) => (v.parse().map(Some)).map_err(|_| format!("{name}={v:?} is not a number")),
                Err(_) => Ok(None),
            }
        }
        let mut limits = LoginLimits::default();
        if let Some(n) = var::<usize>("BERTH_AUTH_HASH_CONCURRENCY")? {
            limits.hash_concurrency = n.max(1);
        }
        if let Some(n) = var("BERTH_AUTH_HASH_QUEUE")? {
            limits.hash_queue = n;
        }
        if let Some(n) = var::<u32>("BERTH_AUTH_MAX_FAILURES")? {
            limits.max_failures = n.max(1);
        }
        Ok(limits)
    }
}

/// The process's hashing turns and failure counts.
pub(super) struct LoginGuard {
    limits: LoginLimits,
    turns: Arc<Semaphore>,
    /// Argon2 working memory, one per turn at most: reused, so checks hold turns × 19 MiB.
    memories: Arc<Mutex<Vec<HashMemory>>>,
    waiting: AtomicUsize,
    failures: Mutex<Failures>,
}

/// A turn to hash: held while argon2 runs, with the working memory to run it in.
pub(super) struct HashTurn {
    _permit: OwnedSemaphorePermit,
    memory: HashMemory,
    pool: Arc<Mutex<Vec<HashMemory>>>,
}

impl HashTurn {
    /// Where this turn's argon2 computes.
    pub(super) fn memory(&mut self) -> &mut HashMemory {
        &mut self.memory
    }
}

impl Drop for HashTurn {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(std::mem::take(&mut self.memory));
        }
    }
}

/// Who failed: one account name, or one client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

impl LoginGuard {
    pub(super) fn new(limits: LoginLimits) -> LoginGuard {
        LoginGuard {
            turns: Arc::new(Semaphore::new(limits.hash_concurrency.max(1))),
            memories: Arc::default(),
            waiting: AtomicUsize::new(0),
            failures: Mutex::new(Failures::default()),
            limits,
        }
    }

    fn keys(username: &str) -> Vec<Key> {
        let mut keys = vec![Key::User(username.to_string())];
        keys.extend(client_address().map(Key::Address));
        keys
    }

    /// A turn to check `username`'s secret: refused while the username or the client's address
    /// is backing off, or when too many checks already wait.
    pub(super) async fn turn(&self, username: &str) -> Result<HashTurn, AppError> {
        let keys = LoginGuard::keys(username);
        self.refuse_backing_off(&keys)?;
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            return self.hash_turn(permit);
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = if queued >= self.limits.hash_queue {
            None
        } else {
            self.turns.clone().acquire_owned().await.ok()
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Some(permit) = permit else {
            return Err(AppError::Throttled {
                retry_after: QUEUE_FULL_RETRY_AFTER,
            });
        };
        // The name or address may have started backing off while this check waited (a flood
        // fills the queue before its failures add up): refuse it now rather than hash, so the
        // queue drains and others' checks are not kept waiting behind it.
        self.refuse_backing_off(&keys)?;
        self.hash_turn(permit)
    }

    fn hash_turn(&self, permit: OwnedSemaphorePermit) -> Result<HashTurn, AppError> {
        let memory = (self.memories.lock().map_err(super::access::lock_failed)?.pop()).unwrap_or_default();
        Ok(HashTurn {
            _permit: permit,
            memory,
            pool: self.memories.clone(),
        })
    }

    /// `Throttled` if any of `keys` is backing off now.
    fn refuse_backing_off(&self, keys: &[Key]) -> Result<(), AppError> {
        let now = Instant::now();
        let failures = self.failures.lock().map_err(super::access::lock_failed)?;
        match keys.iter().filter_map(|k| failures.refused(k, now)).max() {
            Some(wait) => Err(AppError::Throttled { retry_after: wait }),
            None => Ok(()),
        }
    }

    /// Counts a check of `username`'s secret that failed (or named nobody).
    pub(super) fn failed(&self, username: &str) -> Result<(), AppError> {
        let now = Instant::now();
        let mut failures = self.failures.lock().map_err(super::access::lock_failed)?;
        for key in LoginGuard::keys(username) {
            failures.failed(key, now, self.limits.max_failures);
        }
        Ok(())
    }

    /// Clears `username`'s failures after a successful check (not its address's: one account
    /// an attacker holds must not reset the count of their guesses at others).
    pub(super) fn succeeded(&self, username: &str) -> Result<(), AppError> {
        let mut failures = self.failures.lock().map_err(super::access::lock_failed)?;
        failures.keys.remove(&Key::User(username.to_string()));
        Ok(())
    }
}

/// Failures of one key in its current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
    refused_until: Option<Instant>,
}

impl Window {
    fn over(&self, now: Instant) -> bool {
        match self.refused_until {
            Some(until) => now >= until,
            None => now.saturating_duration_since(self.started) >= FAILURE_WINDOW,
        }
    }
}

/// Failure counts per key: a pure structure, given the time.
#[derive(Debug, Default)]
struct Failures {
    keys: HashMap<Key, Window>,
}

impl Failures {
    /// How long `key` is still refused at `now`, if it is.
    fn refused(&self, key: &Key, now: Instant) -> Option<Duration> {
        let until = self.keys.get(key)?.refused_until?;
        (until > now).then(|| until - now)
    }

    fn failed(&mut self, key: Key, now: Instant, max: u32) {
        if self.keys.len() >= TRACKED_KEYS && !self.keys.contains_key(&key) {
            self.keys.retain(|_, w| !w.over(now));
            if self.keys.len() >= TRACKED_KEYS {
                tracing::warn!("{TRACKED_KEYS} usernames and addresses failing to sign in: counts reset");
                self.keys.clear();
            }
        }
        let window = self.keys.entry(key).or_insert(Window {
            started: now,
            count: 0,
            refused_until: None,
        });
        if window.over(now) {
            *window = Window {
                started: now,
                count: 0,
                refused_until: None,
            };
        }
        window.count += 1;
        if window.count >= max {
            window.refused_until = Some(now + FAILURE_BACKOFF);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn user(name: &str) -> Key {
        Key::User(name.to_string())
    }

    #[test]
    fn a_key_is_refused_after_max_failures_until_the_backoff_ends() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        for i in 0..9 {
            failures.failed(user("alice"), t0 + Duration::from_secs(i), 10);
            assert_eq!(
                failures.refused(&user("alice"), t0 + Duration::from_secs(i)),
                None
            );
        }
        let t = t0 + Duration::from_secs(9);
        failures.failed(user("alice"), t, 10);
        assert_eq!(failures.refused(&user("alice"), t), Some(FAILURE_BACKOFF));
        assert_eq!(failures.refused(&user("bob"), t), None);
        assert_eq!(failures.refused(&user("alice"), t + FAILURE_BACKOFF), None);
    }

    #[test]
    fn failures_spread_beyond_the_window_never_refuse() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        for i in 0..30 {
            let t = t0 + (FAILURE_WINDOW / 5) * i;
            failures.failed(user("alice"), t, 10);
            assert_eq!(failures.refused(&user("alice"), t), None, "failure {i}");
        }
    }

    #[test]
    fn a_key_starts_afresh_after_its_backoff() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        for _ in 0..10 {
            failures.failed(user("alice"), t0, 10);
        }
        let after = t0 + FAILURE_BACKOFF;
        failures.failed(user("alice"), after, 10);
        assert_eq!(failures.refused(&user("alice"), after), None);
        assert_eq!(failures.keys[&user("alice")].count, 1);
    }

    fn guard(concurrency: usize, queue: usize) -> LoginGuard {
        LoginGuard::new(LoginLimits {
            hash_concurrency: concurrency,
            hash_queue: queue,
            max_failures: 3,
        })
    }

    #[tokio::test]
    async fn a_check_is_throttled_when_every_turn_is_taken_and_the_queue_is_full() {
        let guard = Arc::new(guard(1, 1));
        let held = guard.turn("a").await.unwrap();
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.turn("b").await.map(|_| ()) })
        };
        while guard.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let refused = guard.turn("c").await;
        assert!(
            matches!(refused, Err(AppError::Throttled { retry_after }) if retry_after == QUEUE_FULL_RETRY_AFTER),
            "{refused:?}",
            refused = refused.map(|_| ())
        );
        drop(held);
        waiter.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_check_that_waited_is_refused_if_its_address_began_backing_off_meanwhile() {
        let guard = Arc::new(guard(1, 4));
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let held = guard.turn("a").await.unwrap();
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(with_client_address(here, async move {
                guard.turn("b").await.map(|_| ())
            }))
        };
        while guard.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        with_client_address(here, async {
            for i in 0..3 {
                guard.failed(&format!("user{i}")).unwrap();
            }
        })
        .await;
        drop(held);
        let waited = waiter.await.unwrap();
        assert!(matches!(waited, Err(AppError::Throttled { .. })), "{waited:?}");
        assert!(guard.turn("c").await.is_ok(), "the turn it did not use is free");
    }

    #[tokio::test]
    async fn failures_from_one_address_throttle_every_username_from_it() {
        let guard = guard(2, 2);
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "192.0.2.2".parse().unwrap();
        with_client_address(here, async {
            for i in 0..3 {
                guard.failed(&format!("user{i}")).unwrap();
            }
            assert!(matches!(
                guard.turn("someone").await,
                Err(AppError::Throttled { .. })
            ));
        })
        .await;
        with_client_address(there, async {
            assert!(guard.turn("someone").await.is_ok());
        })
        .await;
    }

    #[tokio::test]
    async fn a_success_clears_the_usernames_failures_but_not_the_addresses() {
        let guard = guard(2, 2);
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        with_client_address(here, async {
            guard.failed("alice").unwrap();
            guard.failed("alice").unwrap();
            guard.succeeded("alice").unwrap();
            let failures = guard.failures.lock().unwrap();
            assert!(!failures.keys.contains_key(&user("alice")));
            assert_eq!(failures.keys[&Key::Address(here)].count, 2);
        })
        .await;
    }
}
