//! The `Views` contract, driven through `Views::apply` with the projection ops (`ops_for`) of events
//! as the application records them. Each check takes a fresh, empty store, or a factory of them.

use std::sync::Arc;

use berth::domain::{Algorithm, Digest, Event, RepoName};
use berth::ports::Views;

use crate::support::{
    artifact_pushed, blob_unlinked, blob_uploaded, digest, expected_artifact_referrer, expected_manifest,
    expected_referrer, manifest_deleted, manifest_pushed, repo, tag, tag_deleted, tag_moved, tags, History,
};

const SIGNATURE: &str = "application/vnd.example.signature.v1";

async fn project(views: &dyn Views, history: &mut History, events: Vec<Event>) {
    views.apply(history.ops(events)).await.unwrap();
}

/// Projects each event in its own `apply`.
async fn project_one_by_one(views: &dyn Views, history: &mut History, events: Vec<Event>) {
    for event in events {
        project(views, history, vec![event]).await;
    }
}

async fn sorted_manifest_tags(views: &dyn Views, repository: &RepoName, digest: &Digest) -> Vec<String> {
    let mut names: Vec<String> = views
        .manifest_tags(repository, digest)
        .await
        .unwrap()
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    names.sort();
    names
}

async fn all_tags(views: &dyn Views, repository: &RepoName) -> Vec<String> {
    let listed = views.tags(repository, None, 1_000).await.unwrap();
    listed.iter().map(|t| t.as_str().to_string()).collect()
}

pub async fn projected_rows_answer_point_reads(views: Arc<dyn Views>) {
    let r = repo("library/app");
    let (config, image, signature, sbom) = (
        digest("config"),
        digest("image"),
        digest("signature"),
        digest("sbom"),
    );
    let mut history = History::default();
    assert!(!views.repository_exists(&r).await.unwrap());

    project_one_by_one(
        &*views,
        &mut history,
        vec![
            blob_uploaded(&r, &config, 123),
            manifest_pushed(&r, &image, None),
            tag_moved(&r, "latest", &image, None),
            tag_moved(&r, "v1", &image, None),
            artifact_pushed(&r, &signature, &image, SIGNATURE),
            manifest_pushed(&r, &sbom, Some(&image)),
        ],
    )
    .await;

    assert_eq!(views.tag(&r, &tag("latest")).await.unwrap(), Some(image.clone()));
    assert_eq!(views.tag(&r, &tag("v1")).await.unwrap(), Some(image.clone()));
    assert_eq!(views.tag(&r, &tag("v2")).await.unwrap(), None);
    assert_eq!(
        views.manifest(&r, &image).await.unwrap(),
        Some(expected_manifest(&image, None))
    );
    assert_eq!(
        views.manifest(&r, &sbom).await.unwrap(),
        Some(expected_manifest(&sbom, Some(&image)))
    );
    let signature_record = views.manifest(&r, &signature).await.unwrap().unwrap();
    assert_eq!(signature_record.artifact_type.as_deref(), Some(SIGNATURE));
    assert_eq!(signature_record.subject, Some(image.clone()));
    assert_eq!(views.manifest(&r, &digest("absent")).await.unwrap(), None);
    assert_eq!(views.blob_link(&r, &config).await.unwrap(), Some(123));
    assert_eq!(
        views.blob_link(&r, &image).await.unwrap(),
        None,
        "a manifest is not a blob link"
    );
    assert_eq!(views.blob_link(&r, &digest("absent")).await.unwrap(), None);
    assert_eq!(sorted_manifest_tags(&*views, &r, &image).await, ["latest", "v1"]);
    assert_eq!(views.manifest_tags(&r, &signature).await.unwrap(), vec![]);
    let mut referrers = vec![
        expected_artifact_referrer(&signature, SIGNATURE),
        expected_referrer(&sbom),
    ];
    referrers.sort_by_key(|d| d.digest.to_string());
    assert_eq!(views.referrers(&r, &image).await.unwrap(), referrers);
    assert_eq!(views.referrers(&r, &config).await.unwrap(), vec![]);
    assert!(views.repository_exists(&r).await.unwrap());
    assert!(!views.repository_exists(&repo("library/other")).await.unwrap());
    assert!(!views.repository_exists(&repo("library")).await.unwrap());
}

pub async fn views_are_scoped_to_their_repository(views: Arc<dyn Views>) {
    // Names that are prefixes of each other, or differ only after a shared prefix.
    let names = ["lib", "lib/x", "lib-x", "li", "lib/x/y"];
    let subject = digest("shared-subject");
    let mut history = History::default();
    for (n, name) in names.iter().enumerate() {
        let r = repo(name);
        let own = digest(&format!("own-{name}"));
        project(
            &*views,
            &mut history,
            vec![
                blob_uploaded(&r, &subject, n as u64),
                manifest_pushed(&r, &own, Some(&subject)),
                tag_moved(&r, "t", &own, None),
                tag_moved(&r, &format!("only-{n}"), &own, None),
            ],
        )
        .await;
    }

    for (n, name) in names.iter().enumerate() {
        let r = repo(name);
        let own = digest(&format!("own-{name}"));
        assert_eq!(
            all_tags(&*views, &r).await,
            [format!("only-{n}"), "t".to_string()],
            "{name}"
        );
        assert_eq!(
            views.tag(&r, &tag("t")).await.unwrap(),
            Some(own.clone()),
            "{name}"
        );
        assert_eq!(
            views.tag(&r, &tag("only-0")).await.unwrap().is_some(),
            n == 0,
            "{name}"
        );
        assert_eq!(
            views.blob_link(&r, &subject).await.unwrap(),
            Some(n as u64),
            "{name}"
        );
        assert_eq!(
            views.referrers(&r, &subject).await.unwrap(),
            vec![expected_referrer(&own)],
            "{name}"
        );
        assert_eq!(
            sorted_manifest_tags(&*views, &r, &own).await,
            [format!("only-{n}"), "t".to_string()],
            "{name}"
        );
        for other in names.iter().filter(|o| *o != name) {
            let theirs = digest(&format!("own-{other}"));
            assert_eq!(
                views.manifest(&r, &theirs).await.unwrap(),
                None,
                "{other}'s manifest in {name}"
            );
            assert_eq!(
                views.manifest_tags(&r, &theirs).await.unwrap(),
                vec![],
                "{other} in {name}"
            );
        }
    }
    for absent in ["l", "lib/x/y/z", "lib/y", "libx"] {
        assert!(!views.repository_exists(&repo(absent)).await.unwrap(), "{absent}");
        assert_eq!(
            all_tags(&*views, &repo(absent)).await,
            Vec::<String>::new(),
            "{absent}"
        );
    }
}

pub async fn tags_are_listed_case_insensitively_and_paginate_after_a_tag(views: Arc<dyn Views>) {
    let r = repo("contract/tags");
    let image = digest("tagged");
    let mut history = History::default();
    let scrambled = ["b", "a.1", "_x", "A", "a-1", "a"];
    let events = scrambled
        .iter()
        .map(|t| tag_moved(&r, t, &image, None))
        // Neighbouring repositories whose tags must not show.
        .chain([
            tag_moved(&repo("contract/tags/sub"), "a0", &image, None),
            tag_moved(&repo("contract/tagsx"), "a0", &image, None),
            tag_moved(&repo("contract/tag"), "a0", &image, None),
        ])
        .collect();
    project(&*views, &mut history, events).await;

    // The spec's "lexical order (i.e. case-insensitive alphanumeric order)": by the lowercased tag,
    // ties (`A`, `a`) broken by the bytes of the tag.
    let expected = ["_x", "A", "a", "a-1", "a.1", "b"];
    let mut ordered = expected;
    ordered.sort_by_key(|t| (t.to_ascii_lowercase(), t.to_string()));
    assert_eq!(ordered, expected, "the expectation itself is in that order");

    let list = |after: Option<&'static str>, limit: usize| {
        let views = views.clone();
        let r = r.clone();
        async move {
            let listed = views.tags(&r, after, limit).await.unwrap();
            listed.iter().map(|t| t.as_str().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None, 100).await, expected);
    assert_eq!(list(None, 6).await, expected);
    assert_eq!(list(None, 0).await, Vec::<String>::new(), "limit 0 lists nothing");
    assert_eq!(list(None, 2).await, ["_x", "A"]);
    assert_eq!(list(Some("A"), 2).await, ["a", "a-1"]);
    assert_eq!(list(Some("a-1"), 2).await, ["a.1", "b"]);
    assert_eq!(list(Some("b"), 2).await, Vec::<String>::new());
    // `after` is exclusive even when a listed tag extends it, and need not be a tag itself.
    assert_eq!(list(Some("a"), 1).await, ["a-1"]);
    assert_eq!(list(Some("a0"), 100).await, ["b"]);
    assert_eq!(list(Some("B"), 100).await, ["b"], "`B` sorts just before `b`");
    assert_eq!(list(Some("Z"), 100).await, Vec::<String>::new());
    assert_eq!(list(Some("c"), 100).await, Vec::<String>::new());
}

pub async fn repositories_are_listed_in_byte_order_and_paginate_after_a_name(views: Arc<dyn Views>) {
    assert_eq!(
        views.repositories(None, 100).await.unwrap(),
        vec![],
        "a fresh store lists none"
    );
    let scrambled = ["b", "a/b", "library/alpine", "a-b", "a", "a.b", "a_b"];
    let mut history = History::default();
    let events = scrambled
        .iter()
        .map(|name| blob_uploaded(&repo(name), &digest(name), 1))
        .collect();
    project(&*views, &mut history, events).await;

    let expected = ["a", "a-b", "a.b", "a/b", "a_b", "b", "library/alpine"];
    let mut by_bytes = expected;
    by_bytes.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert_eq!(by_bytes, expected, "the expectation itself is in byte order");

    let list = |after: Option<&'static str>, limit: usize| {
        let views = views.clone();
        async move {
            let listed = views.repositories(after, limit).await.unwrap();
            listed.iter().map(|r| r.as_str().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None, 100).await, expected);
    assert_eq!(list(None, 0).await, Vec::<String>::new(), "limit 0 lists nothing");
    assert_eq!(list(None, 3).await, ["a", "a-b", "a.b"]);
    assert_eq!(list(Some("a.b"), 3).await, ["a/b", "a_b", "b"]);
    assert_eq!(list(Some("b"), 3).await, ["library/alpine"]);
    assert_eq!(list(Some("library/alpine"), 3).await, Vec::<String>::new());
    assert_eq!(list(Some("a"), 1).await, ["a-b"]);
    assert_eq!(list(Some("a0"), 100).await, ["a_b", "b", "library/alpine"]);
}

pub async fn referrers_are_listed_in_digest_order(views: Arc<dyn Views>) {
    let r = repo("contract/referrers");
    let subject = digest("subject");
    let mut referrers: Vec<Digest> = (0..5).map(|n| digest(&format!("referrer-{n}"))).collect();
    referrers.push(Digest::compute(Algorithm::Sha512, b"referrer-sha512"));
    let mut history = History::default();
    let mut events = vec![manifest_pushed(&r, &subject, None)];
    events.extend(referrers.iter().map(|d| manifest_pushed(&r, d, Some(&subject))));
    // A referrer of another subject.
    events.push(manifest_pushed(
        &r,
        &digest("elsewhere"),
        Some(&digest("other-subject")),
    ));
    project_one_by_one(&*views, &mut history, events).await;

    let listed: Vec<String> = views
        .referrers(&r, &subject)
        .await
        .unwrap()
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    let mut expected: Vec<String> = referrers.iter().map(Digest::to_string).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

pub async fn moving_a_tag_with_a_previous_digest_moves_it_between_manifests(views: Arc<dyn Views>) {
    let r = repo("contract/move");
    let (old, new) = (digest("old"), digest("new"));
    let mut history = History::default();
    project_one_by_one(
        &*views,
        &mut history,
        vec![
            manifest_pushed(&r, &old, None),
            manifest_pushed(&r, &new, None),
            tag_moved(&r, "latest", &old, None),
            tag_moved(&r, "stable", &old, None),
        ],
    )
    .await;
    assert_eq!(
        sorted_manifest_tags(&*views, &r, &old).await,
        ["latest", "stable"]
    );

    project(
        &*views,
        &mut history,
        vec![tag_moved(&r, "latest", &new, Some(&old))],
    )
    .await;

    assert_eq!(views.tag(&r, &tag("latest")).await.unwrap(), Some(new.clone()));
    assert_eq!(views.tag(&r, &tag("stable")).await.unwrap(), Some(old.clone()));
    assert_eq!(sorted_manifest_tags(&*views, &r, &old).await, ["stable"]);
    assert_eq!(sorted_manifest_tags(&*views, &r, &new).await, ["latest"]);
    assert_eq!(all_tags(&*views, &r).await, ["latest", "stable"]);
}

pub async fn deleting_a_manifest_removes_it_and_its_referrer_row(views: Arc<dyn Views>) {
    let r = repo("contract/delete");
    let (subject, gone, kept) = (digest("subject"), digest("gone"), digest("kept"));
    let mut history = History::default();
    project(
        &*views,
        &mut history,
        vec![
            manifest_pushed(&r, &subject, None),
            manifest_pushed(&r, &gone, Some(&subject)),
            manifest_pushed(&r, &kept, Some(&subject)),
        ],
    )
    .await;
    assert_eq!(views.referrers(&r, &subject).await.unwrap().len(), 2);

    project(
        &*views,
        &mut history,
        vec![manifest_deleted(&r, &gone, Some(&subject))],
    )
    .await;

    assert_eq!(
        views.referrers(&r, &subject).await.unwrap(),
        vec![expected_referrer(&kept)]
    );
    assert_eq!(views.manifest(&r, &gone).await.unwrap(), None);
    assert_eq!(
        views.manifest(&r, &kept).await.unwrap(),
        Some(expected_manifest(&kept, Some(&subject)))
    );
    assert_eq!(
        views.manifest(&r, &subject).await.unwrap(),
        Some(expected_manifest(&subject, None))
    );
}

pub async fn deleting_a_tag_and_unlinking_a_blob_remove_their_rows(views: Arc<dyn Views>) {
    let r = repo("contract/removals");
    let (image, config) = (digest("image"), digest("config"));
    let mut history = History::default();
    project(
        &*views,
        &mut history,
        vec![
            blob_uploaded(&r, &config, 77),
            manifest_pushed(&r, &image, None),
            tag_moved(&r, "latest", &image, None),
            tag_moved(&r, "keep", &image, None),
        ],
    )
    .await;

    project(
        &*views,
        &mut history,
        vec![tag_deleted(&r, "latest", &image), blob_unlinked(&r, &config)],
    )
    .await;

    assert_eq!(views.tag(&r, &tag("latest")).await.unwrap(), None);
    assert_eq!(all_tags(&*views, &r).await, ["keep"]);
    assert_eq!(sorted_manifest_tags(&*views, &r, &image).await, ["keep"]);
    assert_eq!(views.blob_link(&r, &config).await.unwrap(), None);
    assert!(
        views.manifest(&r, &image).await.unwrap().is_some(),
        "the manifest stays"
    );
    assert!(views.repository_exists(&r).await.unwrap(), "the repository stays");
}

pub async fn ops_in_one_apply_take_effect_in_order(views: Arc<dyn Views>) {
    let r = repo("contract/order");
    let (one, two, blob, image) = (digest("one"), digest("two"), digest("blob"), digest("image"));
    let mut history = History::default();

    // Put then delete of the same rows in one apply: gone.
    project(
        &*views,
        &mut history,
        vec![tag_moved(&r, "t", &one, None), tag_deleted(&r, "t", &one)],
    )
    .await;
    assert_eq!(views.tag(&r, &tag("t")).await.unwrap(), None);
    assert_eq!(views.manifest_tags(&r, &one).await.unwrap(), vec![]);

    // Put, delete, put again (of the same and of changed values): the last one wins.
    project(
        &*views,
        &mut history,
        vec![
            tag_moved(&r, "t", &one, None),
            tag_deleted(&r, "t", &one),
            tag_moved(&r, "t", &two, None),
            blob_uploaded(&r, &blob, 1),
            blob_unlinked(&r, &blob),
            blob_uploaded(&r, &blob, 2),
            manifest_pushed(&r, &image, None),
            manifest_deleted(&r, &image, None),
            manifest_pushed(&r, &image, None),
        ],
    )
    .await;
    assert_eq!(views.tag(&r, &tag("t")).await.unwrap(), Some(two.clone()));
    assert_eq!(views.manifest_tags(&r, &one).await.unwrap(), vec![]);
    assert_eq!(views.manifest_tags(&r, &two).await.unwrap(), tags(&["t"]));
    assert_eq!(views.blob_link(&r, &blob).await.unwrap(), Some(2));
    assert_eq!(
        views.manifest(&r, &image).await.unwrap(),
        Some(expected_manifest(&image, None))
    );
}

/// Events that fill every view: a blob link, manifests, a referrer, a tag and its manifest tag, and
/// the repository. Seven rows in all.
/// An index holding `children`, with no blobs of its own.
fn index_pushed(r: &RepoName, index: &Digest, children: &[&Digest]) -> Event {
    let mut event = manifest_pushed(r, index, None);
    if let Event::ManifestPushed { blobs, manifests, .. } = &mut event {
        blobs.clear();
        *manifests = children.iter().map(|c| (*c).clone()).collect();
    }
    event
}

pub async fn the_users_of_a_blob_and_the_holders_of_a_manifest_are_point_reads(views: Arc<dyn Views>) {
    let (r, other) = (repo("contract/facts"), repo("contract/facts-other"));
    let (config, layer, unused) = (digest("config"), digest("layer"), digest("unused"));
    let (a, b, index, outer) = (digest("a"), digest("b"), digest("index"), digest("outer"));
    let mut history = History::default();
    project(
        &*views,
        &mut history,
        vec![
            manifest_pushed(&r, &a, None),
            manifest_pushed(&r, &b, None),
            index_pushed(&r, &index, &[&a, &b]),
            index_pushed(&r, &outer, &[&index]),
            manifest_pushed(&other, &a, None),
        ],
    )
    .await;
    let mut ab = vec![a.clone(), b.clone()];
    ab.sort();
    assert_eq!(
        views.manifests_using(&r, &config).await.unwrap(),
        ab,
        "both use the config"
    );
    assert_eq!(views.manifests_using(&r, &layer).await.unwrap(), ab);
    assert_eq!(views.manifests_using(&r, &unused).await.unwrap(), vec![]);
    assert_eq!(views.indexes_holding(&r, &a).await.unwrap(), vec![index.clone()]);
    assert_eq!(
        views.indexes_holding(&r, &index).await.unwrap(),
        vec![outer.clone()]
    );
    assert_eq!(views.indexes_holding(&r, &outer).await.unwrap(), vec![]);
    // Scoped to the repository.
    assert_eq!(
        views.manifests_using(&other, &config).await.unwrap(),
        vec![a.clone()]
    );
    assert_eq!(views.indexes_holding(&other, &a).await.unwrap(), vec![]);

    // Content facts outlive the manifest: readers look it up.
    project(&*views, &mut history, vec![manifest_deleted(&r, &a, None)]).await;
    assert_eq!(views.manifest(&r, &a).await.unwrap(), None);
    assert_eq!(views.manifests_using(&r, &config).await.unwrap(), ab);
    assert_eq!(views.indexes_holding(&r, &a).await.unwrap(), vec![index.clone()]);
}

fn every_view(r: &RepoName) -> Vec<Event> {
    let (config, image, signature) = (digest("config"), digest("image"), digest("signature"));
    vec![
        blob_uploaded(r, &config, 10),
        manifest_pushed(r, &image, None),
        manifest_pushed(r, &signature, Some(&image)),
        tag_moved(r, "latest", &image, None),
    ]
}

pub async fn clearing_empties_every_view(views: Arc<dyn Views>) {
    let r = repo("contract/clear");
    let (config, image) = (digest("config"), digest("image"));
    let mut history = History::default();
    project(&*views, &mut history, every_view(&r)).await;
    let dump = views.dump().await.unwrap();
    assert_eq!(dump.len(), 11, "one line per row: {dump:#?}");

    views.clear().await.unwrap();

    assert_eq!(views.dump().await.unwrap(), Vec::<String>::new());
    assert_eq!(views.tag(&r, &tag("latest")).await.unwrap(), None);
    assert_eq!(views.manifest(&r, &image).await.unwrap(), None);
    assert_eq!(views.blob_link(&r, &config).await.unwrap(), None);
    assert_eq!(views.tags(&r, None, 100).await.unwrap(), vec![]);
    assert_eq!(views.manifest_tags(&r, &image).await.unwrap(), vec![]);
    assert_eq!(views.referrers(&r, &image).await.unwrap(), vec![]);
    assert_eq!(views.manifests_using(&r, &config).await.unwrap(), vec![]);
    assert!(!views.repository_exists(&r).await.unwrap());
    assert_eq!(views.repositories(None, 100).await.unwrap(), vec![]);

    // The views work again after a clear.
    project(&*views, &mut history, vec![tag_moved(&r, "again", &image, None)]).await;
    assert_eq!(views.tag(&r, &tag("again")).await.unwrap(), Some(image.clone()));
    assert_eq!(
        views.dump().await.unwrap().len(),
        3,
        "tag, manifest tag, repository"
    );
}

/// `make` returns a fresh, empty store each time.
pub async fn dumps_are_sorted_and_equal_exactly_when_the_contents_are(make: impl Fn() -> Arc<dyn Views>) {
    let (r1, r2) = (repo("contract/dump-one"), repo("contract/dump-two"));
    let mut events = every_view(&r1);
    events.push(blob_uploaded(&r2, &digest("blob"), 20));
    events.push(tag_moved(&r2, "v1", &digest("image"), None));

    let (a, b, c, d) = (make(), make(), make(), make());
    assert_eq!(
        a.dump().await.unwrap(),
        Vec::<String>::new(),
        "a fresh store dumps nothing"
    );

    // The same rows, reached in one apply and in reverse order one event at a time.
    project(&*a, &mut History::default(), events.clone()).await;
    let mut reversed = events.clone();
    reversed.reverse();
    project_one_by_one(&*b, &mut History::default(), reversed).await;
    // One value differs.
    let mut changed = events.clone();
    changed[4] = blob_uploaded(&r2, &digest("blob"), 21);
    project(&*c, &mut History::default(), changed).await;
    // One row is missing.
    project(&*d, &mut History::default(), events[..5].to_vec()).await;

    let dump = a.dump().await.unwrap();
    assert_eq!(dump.len(), 15, "{dump:#?}");
    assert!(
        dump.windows(2).all(|w| w[0] < w[1]),
        "a dump is sorted, one line per row: {dump:#?}"
    );
    assert_eq!(b.dump().await.unwrap(), dump);
    assert_ne!(
        c.dump().await.unwrap(),
        dump,
        "a different value shows in the dump"
    );
    assert_ne!(d.dump().await.unwrap(), dump, "a missing row shows in the dump");
}

/// `make` returns a fresh, empty store each time.
pub async fn replaying_the_same_ops_twice_changes_nothing(make: impl Fn() -> Arc<dyn Views>) {
    let r = repo("contract/replay");
    let (one, two, signature, config) = (digest("one"), digest("two"), digest("sig"), digest("config"));
    let history = [
        blob_uploaded(&r, &config, 5),
        manifest_pushed(&r, &one, None),
        tag_moved(&r, "latest", &one, None),
        manifest_pushed(&r, &two, None),
        tag_moved(&r, "latest", &two, Some(&one)),
        artifact_pushed(&r, &signature, &one, SIGNATURE),
        tag_moved(&r, "old", &one, None),
        tag_deleted(&r, "old", &one),
        manifest_deleted(&r, &signature, Some(&one)),
        blob_unlinked(&r, &config),
        blob_uploaded(&r, &digest("layer"), 6),
    ];
    let ops = History::default().ops(history.to_vec());

    let once = make();
    once.apply(ops.clone()).await.unwrap();
    let dump = once.dump().await.unwrap();
    assert!(!dump.is_empty());

    once.apply(ops.clone()).await.unwrap();
    assert_eq!(once.dump().await.unwrap(), dump, "replaying changes nothing");

    let stepwise = make();
    for op in ops {
        stepwise.apply(vec![op]).await.unwrap();
    }
    assert_eq!(stepwise.dump().await.unwrap(), dump, "batching does not matter");
    assert_eq!(once.tag(&r, &tag("latest")).await.unwrap(), Some(two.clone()));
    assert_eq!(once.referrers(&r, &one).await.unwrap(), vec![]);
}
