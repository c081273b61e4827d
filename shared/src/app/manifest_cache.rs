//! The manifests of recently checked repositories, kept per stream version. Content-trust checks of
//! layer and index-child pulls need a repository's whole manifest list (which artifacts use a blob,
//! which index holds a manifest) and a docker pull asks once per layer: one read of the stream's
//! version replaces reading every manifest again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::projection::ManifestRecord;
use crate::domain::RepoName;
use crate::ports::Version;

/// Repositories kept; the least recently used one makes room.
const MAX_REPOSITORIES: usize = 32;
/// Larger repositories are read each time rather than held in memory.
const MAX_MANIFESTS: usize = 10_000;

#[derive(Default)]
pub(super) struct ManifestCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_repo: HashMap<RepoName, Entry>,
    clock: u64,
}

struct Entry {
    version: Version,
    manifests: Arc<Vec<ManifestRecord>>,
    used: u64,
}

impl ManifestCache {
    /// The manifests read at `version`, if that is what was kept.
    pub(super) fn get(&self, repo: &RepoName, version: Version) -> Option<Arc<Vec<ManifestRecord>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let now = entries.clock;
        let entry = entries.by_repo.get_mut(repo).filter(|e| e.version == version)?;
        entry.used = now;
        Some(entry.manifests.clone())
    }

    /// Keeps `manifests`, read after the stream was seen at `version` (so they hold at least
    /// everything appended up to it; anything newer shows as a newer version next time).
    pub(super) fn put(&self, repo: &RepoName, version: Version, manifests: Arc<Vec<ManifestRecord>>) {
        if manifests.len() > MAX_MANIFESTS {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !entries.by_repo.contains_key(repo) && entries.by_repo.len() >= MAX_REPOSITORIES {
            let oldest = (entries.by_repo.iter())
                .min_by_key(|(_, e)| e.used)
                .map(|(r, _)| r.clone());
            if let Some(oldest) = oldest {
                entries.by_repo.remove(&oldest);
            }
        }
        entries.clock += 1;
        let used = entries.clock;
        entries.by_repo.insert(
            repo.clone(),
            Entry {
                version,
                manifests,
                used,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(i: usize) -> RepoName {
        format!("p/r{i}").parse().unwrap()
    }

    fn list(n: usize) -> Arc<Vec<ManifestRecord>> {
        Arc::new(Vec::with_capacity(n))
    }

    #[test]
    fn a_list_is_served_only_at_the_version_it_was_read_at() {
        let cache = ManifestCache::default();
        assert!(cache.get(&repo(0), 3).is_none());
        cache.put(&repo(0), 3, list(0));
        assert!(cache.get(&repo(0), 3).is_some());
        assert!(cache.get(&repo(0), 4).is_none(), "an append since: read again");
        assert!(cache.get(&repo(1), 3).is_none(), "another repository");
        cache.put(&repo(0), 4, list(0));
        assert!(cache.get(&repo(0), 3).is_none(), "replaced");
        assert!(cache.get(&repo(0), 4).is_some());
    }

    #[test]
    fn the_least_recently_used_repository_makes_room() {
        let cache = ManifestCache::default();
        for i in 0..MAX_REPOSITORIES {
            cache.put(&repo(i), 1, list(0));
        }
        assert!(cache.get(&repo(0), 1).is_some(), "0 is now the most recent");
        cache.put(&repo(MAX_REPOSITORIES), 1, list(0));
        assert!(cache.get(&repo(0), 1).is_some());
        assert!(cache.get(&repo(1), 1).is_none(), "1 was the least recently used");
        assert!(cache.get(&repo(MAX_REPOSITORIES), 1).is_some());
    }
}
