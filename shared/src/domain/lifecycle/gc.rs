//! Garbage collection's mark, per repository (docs/lifecycle.md, "GC protocol", phase 1): from a
//! snapshot of what the repository holds, which manifests it keeps and which blob links nothing
//! kept uses any more. Pure: the application reads the snapshot from the views and deletes through
//! the ordinary decisions.
//!
//! What is kept:
//! - manifests with a user tag (not a cosign scheme tag: those are their accessories' own), and
//!   manifests pushed after the grace cutoff, whatever they are;
//! - without `delete_untagged`, every manifest that is not an accessory;
//! - the children of a kept index, recursively;
//! - the accessories (signatures, attestations, SBOMs, referrers) of a kept manifest, recursively
//!   (a signature of a signature), and only those: an accessory whose subject goes, or was never
//!   there, goes too once it is older than the cutoff;
//! - the config and layers of every kept manifest.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::domain::Digest;

/// A manifest as the mark sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: Digest,
    pub pushed_at: DateTime<Utc>,
    /// Config and layers.
    pub blobs: Vec<Digest>,
    /// An index's children.
    pub children: Vec<Digest>,
    /// Whether a user tag points at it (cosign scheme tags do not count).
    pub tagged: bool,
}

/// What a repository holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub manifests: Vec<Manifest>,
    /// (subject, accessory): every accessory link, by `subject` field or cosign tag scheme.
    pub accessories: Vec<(Digest, Digest)>,
    /// The blobs linked to the repository.
    pub linked: Vec<Digest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Collect untagged manifests (Harbor's `delete_untagged`).
    pub delete_untagged: bool,
    /// Nothing pushed after this is collected (now minus the grace window).
    pub cutoff: DateTime<Utc>,
}

/// What the mark decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub kept: BTreeSet<Digest>,
    /// Manifests to delete, accessories included, deepest accessories first.
    pub delete: Vec<Digest>,
    /// Linked blobs no kept manifest uses (the caller still spares links younger than the cutoff).
    pub unlink: Vec<Digest>,
}

pub fn mark(snapshot: &Snapshot, options: &Options) -> Plan {
    let manifests: BTreeMap<&Digest, &Manifest> = snapshot.manifests.iter().map(|m| (&m.digest, m)).collect();
    let mut accessories_of: BTreeMap<&Digest, Vec<&Digest>> = BTreeMap::new();
    let mut is_accessory: BTreeSet<&Digest> = BTreeSet::new();
    for (subject, accessory) in &snapshot.accessories {
        accessories_of.entry(subject).or_default().push(accessory);
        is_accessory.insert(accessory);
    }
    let root = |m: &Manifest| {
        m.tagged
            || m.pushed_at > options.cutoff
            || (!options.delete_untagged && !is_accessory.contains(&m.digest))
    };
    let mut kept: BTreeSet<Digest> = BTreeSet::new();
    let mut frontier: Vec<&Digest> = (snapshot.manifests.iter())
        .filter(|m| root(m))
        .map(|m| &m.digest)
        .collect();
    while let Some(digest) = frontier.pop() {
        if !manifests.contains_key(digest) || !kept.insert(digest.clone()) {
            continue;
        }
        if let Some(m) = manifests.get(digest) {
            frontier.extend(m.children.iter());
        }
        frontier.extend(accessories_of.get(digest).into_iter().flatten().copied());
    }
    // Deepest first: an accessory before its subject, a child after its index.
    let mut delete: Vec<Digest> = Vec::new();
    let mut placed: BTreeSet<&Digest> = BTreeSet::new();
    fn place<'a>(
        digest: &'a Digest,
        accessories_of: &BTreeMap<&Digest, Vec<&'a Digest>>,
        kept: &BTreeSet<Digest>,
        placed: &mut BTreeSet<&'a Digest>,
        delete: &mut Vec<Digest>,
        present: &BTreeMap<&Digest, &Manifest>,
    ) {
        if kept.contains(digest) || !present.contains_key(digest) || !placed.insert(digest) {
            return;
        }
        for accessory in accessories_of.get(digest).into_iter().flatten() {
            place(accessory, accessories_of, kept, placed, delete, present);
        }
        delete.push(digest.clone());
    }
    for m in &snapshot.manifests {
        place(
            &m.digest,
            &accessories_of,
            &kept,
            &mut placed,
            &mut delete,
            &manifests,
        );
    }
    let used: BTreeSet<&Digest> = (snapshot.manifests.iter())
        .filter(|m| kept.contains(&m.digest))
        .flat_map(|m| m.blobs.iter())
        .collect();
    let unlink = (snapshot.linked.iter())
        .filter(|b| !used.contains(b))
        .cloned()
        .collect();
    Plan { kept, delete, unlink }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Duration;

    use super::*;
    use crate::domain::Algorithm;

    fn d(name: &str) -> Digest {
        Digest::compute(Algorithm::Sha256, name.as_bytes())
    }

    fn old() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn options(delete_untagged: bool) -> Options {
        Options {
            delete_untagged,
            cutoff: old() + Duration::hours(1),
        }
    }

    fn image(name: &str, tagged: bool, blobs: &[&str]) -> Manifest {
        Manifest {
            digest: d(name),
            pushed_at: old(),
            blobs: blobs.iter().map(|b| d(b)).collect(),
            children: vec![],
            tagged,
        }
    }

    fn index(name: &str, tagged: bool, children: &[&str]) -> Manifest {
        Manifest {
            children: children.iter().map(|c| d(c)).collect(),
            ..image(name, tagged, &[])
        }
    }

    fn names(digests: &[Digest], all: &[&str]) -> Vec<String> {
        (digests.iter())
            .map(|x| all.iter().find(|n| d(n) == *x).unwrap().to_string())
            .collect()
    }

    const ALL: [&str; 16] = [
        "app",
        "old",
        "config",
        "layer",
        "shared",
        "old-layer",
        "idx",
        "amd64",
        "arm64",
        "sig",
        "sig-of-sig",
        "sbom",
        "orphan",
        "young",
        "lonely",
        "young-orphan",
    ];

    #[test]
    fn tagged_images_keep_their_blobs_and_untagged_ones_go_only_when_asked() {
        let snapshot = Snapshot {
            manifests: vec![
                image("app", true, &["config", "layer", "shared"]),
                image("old", false, &["config", "old-layer", "shared"]),
            ],
            accessories: vec![],
            linked: ["config", "layer", "shared", "old-layer", "lonely"]
                .map(d)
                .to_vec(),
        };
        let kept_all = mark(&snapshot, &options(false));
        assert!(kept_all.delete.is_empty());
        assert_eq!(names(&kept_all.unlink, &ALL), ["lonely"]);

        let plan = mark(&snapshot, &options(true));
        assert_eq!(names(&plan.delete, &ALL), ["old"]);
        assert_eq!(names(&plan.unlink, &ALL), ["old-layer", "lonely"]);
        assert!(plan.kept.contains(&d("app")));
    }

    #[test]
    fn an_index_keeps_its_children_and_an_untagged_index_takes_them_along() {
        let snapshot = Snapshot {
            manifests: vec![
                index("idx", true, &["amd64", "arm64"]),
                image("amd64", false, &["layer"]),
                image("arm64", false, &["shared"]),
            ],
            accessories: vec![],
            linked: ["layer", "shared"].map(d).to_vec(),
        };
        let plan = mark(&snapshot, &options(true));
        assert!(plan.delete.is_empty() && plan.unlink.is_empty(), "{plan:?}");

        let mut untagged = snapshot.clone();
        untagged.manifests[0].tagged = false;
        let plan = mark(&untagged, &options(true));
        assert_eq!(names(&plan.delete, &ALL), ["idx", "amd64", "arm64"]);
        assert_eq!(names(&plan.unlink, &ALL), ["layer", "shared"]);
    }

    #[test]
    fn accessories_live_and_die_with_their_subject_recursively() {
        let mut snapshot = Snapshot {
            manifests: vec![
                image("app", true, &["layer"]),
                image("sig", false, &["config"]),
                image("sig-of-sig", false, &["config"]),
                image("sbom", false, &["shared"]),
            ],
            accessories: vec![
                (d("app"), d("sig")),
                (d("sig"), d("sig-of-sig")),
                (d("app"), d("sbom")),
            ],
            linked: ["layer", "config", "shared"].map(d).to_vec(),
        };
        // Accessories are never collected on their own, even with delete_untagged.
        let plan = mark(&snapshot, &options(true));
        assert!(plan.delete.is_empty() && plan.unlink.is_empty(), "{plan:?}");

        // Their subject untagged and collected: they go first, deepest first.
        snapshot.manifests[0].tagged = false;
        let plan = mark(&snapshot, &options(true));
        assert_eq!(names(&plan.delete, &ALL), ["sig-of-sig", "sig", "sbom", "app"]);
        // Without delete_untagged the untagged subject stays, and so do they.
        assert!(mark(&snapshot, &options(false)).delete.is_empty());
    }

    #[test]
    fn an_accessory_whose_subject_is_absent_goes_once_past_the_grace_window() {
        let young = Manifest {
            pushed_at: old() + Duration::hours(2),
            ..image("young-orphan", false, &["shared"])
        };
        let snapshot = Snapshot {
            manifests: vec![image("orphan", false, &["layer"]), young],
            accessories: vec![(d("app"), d("orphan")), (d("app"), d("young-orphan"))],
            linked: ["layer", "shared"].map(d).to_vec(),
        };
        for delete_untagged in [false, true] {
            let plan = mark(&snapshot, &options(delete_untagged));
            assert_eq!(names(&plan.delete, &ALL), ["orphan"]);
            assert_eq!(names(&plan.unlink, &ALL), ["layer"]);
        }
    }

    #[test]
    fn manifests_pushed_inside_the_grace_window_are_kept_with_what_they_use() {
        let young = Manifest {
            pushed_at: old() + Duration::hours(2),
            ..index("young", false, &["amd64"])
        };
        let snapshot = Snapshot {
            manifests: vec![young, image("amd64", false, &["layer"])],
            accessories: vec![],
            linked: vec![d("layer")],
        };
        let plan = mark(&snapshot, &options(true));
        assert!(plan.delete.is_empty() && plan.unlink.is_empty(), "{plan:?}");
    }
}
