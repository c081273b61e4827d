//! The manifests of recently checked repositories, kept per stream version. Content-trust checks of
//! layer and index-child pulls need a repository's whole manifest list (which artifacts use a blob,
//! which index holds a manifest) and a docker pull asks once per layer: one read of the stream's
//! version replaces reading every manifest again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::projection::ManifestRecord;
use crate::domain::RepoName;
use crate::ports::Version;

/// Repositories kept at most.
const MAX_REPOSITORIES: usize = 32;
/// The memory the kept lists may take, estimated: small beside a 1 GB Lambda function. A
/// repository whose list alone is larger is read each time instead.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// What a digest costs in a record (the string and the vector slot), for the estimate.
const DIGEST_BYTES: usize = 96;

#[derive(Default)]
pub(super) struct ManifestCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_repo: HashMap<RepoName, Entry>,
    bytes: usize,
    clock: u64,
}

struct Entry {
    version: Version,
    manifests: Arc<Vec<ManifestRecord>>,
    bytes: usize,
    used: u64,
}

/// A record's memory, roughly: its strings, its digests, and a fixed part.
fn estimate(record: &ManifestRecord) -> usize {
    let strings = [&record.media_type]
        .into_iter()
        .chain(record.artifact_type.as_ref())
        .chain(record.config_media_type.as_ref())
        .chain(record.annotations.iter().flat_map(|(k, v)| [k, v]))
        .map(String::len)
        .sum::<usize>();
    let digests = 2 + record.blobs.len() + record.manifests.len();
    256 + strings + digests * DIGEST_BYTES
}

impl Entries {
    fn remove(&mut self, repo: &RepoName) {
        if let Some(entry) = self.by_repo.remove(repo) {
            self.bytes -= entry.bytes;
        }
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = (self.by_repo.iter())
            .min_by_key(|(_, e)| e.used)
            .map(|(r, _)| r.clone());
        if let Some(oldest) = oldest {
            self.remove(&oldest);
        }
    }
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
        let bytes = manifests.iter().map(estimate).sum::<usize>();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(repo);
        if bytes > MAX_BYTES {
            return;
        }
        while !entries.by_repo.is_empty()
            && (entries.by_repo.len() >= MAX_REPOSITORIES || entries.bytes + bytes > MAX_BYTES)
        {
            entries.evict_least_recently_used();
        }
        entries.clock += 1;
        let used = entries.clock;
        entries.bytes += bytes;
        entries.by_repo.insert(
            repo.clone(),
            Entry {
                version,
                manifests,
                bytes,
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

    fn record(annotation_bytes: usize) -> ManifestRecord {
        ManifestRecord {
            digest: format!("sha256:{}", "a".repeat(64)).parse().unwrap(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 1,
            subject: None,
            artifact_type: None,
            config_media_type: None,
            annotations: [("k".to_string(), "v".repeat(annotation_bytes))].into(),
            annotations_omitted: false,
            blobs: vec![],
            manifests: vec![],
            pushed_at: chrono::DateTime::UNIX_EPOCH,
            content: None,
        }
    }

    /// A list whose estimate is about `bytes`.
    fn list(bytes: usize) -> Arc<Vec<ManifestRecord>> {
        Arc::new(vec![record(bytes.saturating_sub(estimate(&record(0))))])
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

    #[test]
    fn the_kept_lists_stay_within_the_memory_bound() {
        let cache = ManifestCache::default();
        cache.put(&repo(0), 1, list(MAX_BYTES / 2));
        cache.put(&repo(1), 1, list(MAX_BYTES / 3));
        assert!(cache.get(&repo(0), 1).is_some() && cache.get(&repo(1), 1).is_some());
        // A third that does not fit beside both: the least recently used (0, read before 1) goes.
        cache.put(&repo(2), 1, list(MAX_BYTES / 3));
        assert!(cache.get(&repo(0), 1).is_none());
        assert!(cache.get(&repo(1), 1).is_some() && cache.get(&repo(2), 1).is_some());
        let kept = cache.entries.lock().unwrap().bytes;
        assert!(kept <= MAX_BYTES, "{kept}");
        // A list over the bound alone is not kept, and takes the place of nothing.
        cache.put(&repo(3), 1, list(MAX_BYTES + 1));
        assert!(cache.get(&repo(3), 1).is_none());
        assert!(cache.get(&repo(2), 1).is_some());
    }
}
