//! The repository's decisions: given what the repository holds (loaded by the application from the
//! views, at a known stream version) and a command, which events happen — or why not.

use std::collections::BTreeSet;

use super::accessory::AccessoryKind;
use super::digest::Digest;
use super::error::DomainError;
use super::event::Event;
use super::manifest::ManifestInfo;
use super::name::{RepoName, Tag};
use super::projection::ManifestRecord;

/// Push a manifest, optionally under a tag.
#[derive(Debug, Clone)]
pub struct PushManifest {
    pub repository: RepoName,
    pub digest: Digest,
    pub size: u64,
    pub info: ManifestInfo,
    pub tag: Option<Tag>,
}

/// What a manifest push depends on.
#[derive(Debug, Clone, Default)]
pub struct PushState {
    pub manifest_exists: bool,
    /// The manifest's referenced blobs that are linked to the repository.
    pub linked_blobs: BTreeSet<Digest>,
    /// The index's child manifests that the repository holds.
    pub present_manifests: BTreeSet<Digest>,
    pub tag_target: Option<Digest>,
}

pub fn push_manifest(cmd: &PushManifest, state: &PushState) -> Result<Vec<Event>, DomainError> {
    let missing_blobs: Vec<Digest> = (cmd.info.blobs.iter())
        .filter(|d| !state.linked_blobs.contains(*d))
        .cloned()
        .collect();
    if !missing_blobs.is_empty() {
        return Err(DomainError::ManifestBlobUnknown(missing_blobs));
    }
    let missing_children: Vec<Digest> = (cmd.info.manifests.iter())
        .filter(|d| !state.present_manifests.contains(*d))
        .cloned()
        .collect();
    if !missing_children.is_empty() {
        return Err(DomainError::ManifestChildUnknown(missing_children));
    }
    let mut events = Vec::new();
    if !state.manifest_exists {
        let info = &cmd.info;
        events.push(Event::ManifestPushed {
            repository: cmd.repository.clone(),
            digest: cmd.digest.clone(),
            media_type: info.media_type.as_str().to_string(),
            size: cmd.size,
            subject: info.subject.clone(),
            artifact_type: info.artifact_type.clone(),
            config_media_type: info.config_media_type.clone(),
            annotations: info.annotations.clone(),
            annotations_omitted: info.annotations_omitted,
            blobs: info.blobs.clone(),
            manifests: info.manifests.clone(),
            content: Some(info.content),
        });
    }
    if let Some(tag) = &cmd.tag {
        if state.tag_target.as_ref() != Some(&cmd.digest) {
            events.push(Event::TagMoved {
                repository: cmd.repository.clone(),
                tag: tag.clone(),
                digest: cmd.digest.clone(),
                previous: state.tag_target.clone(),
            });
        }
    }
    Ok(events)
}

/// Delete a tag; the manifest stays.
pub fn delete_tag(
    repository: &RepoName,
    tag: &Tag,
    target: Option<&Digest>,
) -> Result<Vec<Event>, DomainError> {
    let digest = target.ok_or_else(|| DomainError::TagUnknown(tag.clone()))?;
    Ok(vec![Event::TagDeleted {
        repository: repository.clone(),
        tag: tag.clone(),
        digest: digest.clone(),
    }])
}

/// Delete a manifest and every tag that points to it.
pub fn delete_manifest(
    repository: &RepoName,
    digest: &Digest,
    record: Option<&ManifestRecord>,
    tags: &[Tag],
) -> Result<Vec<Event>, DomainError> {
    let record = record.ok_or_else(|| DomainError::ManifestUnknown(digest.clone()))?;
    let mut events: Vec<Event> = (tags.iter())
        .map(|tag| Event::TagDeleted {
            repository: repository.clone(),
            tag: tag.clone(),
            digest: digest.clone(),
        })
        .collect();
    events.push(Event::ManifestDeleted {
        repository: repository.clone(),
        digest: digest.clone(),
        media_type: record.media_type.clone(),
        subject: record.subject.clone(),
        artifact_type: record.artifact_type.clone(),
        config_media_type: record.config_media_type.clone(),
    });
    Ok(events)
}

/// One manifest to delete with what it is linked to.
#[derive(Debug, Clone)]
pub struct Deletion {
    pub digest: Digest,
    pub record: Option<ManifestRecord>,
    pub tags: Vec<Tag>,
    /// The subjects it is an accessory of.
    pub links: Vec<(Digest, AccessoryKind)>,
}

/// Delete an artifact with its accessories: `deletions` in order, accessories (deepest first) before
/// the artifact asked for, which comes last and must exist. Each loses its links, then its tags, then
/// itself.
pub fn delete_artifacts(repository: &RepoName, deletions: &[Deletion]) -> Result<Vec<Event>, DomainError> {
    let Some(asked) = deletions.last() else {
        return Ok(vec![]);
    };
    if asked.record.is_none() {
        return Err(DomainError::ManifestUnknown(asked.digest.clone()));
    }
    let mut events = Vec::new();
    for deletion in deletions {
        events.extend(
            deletion
                .links
                .iter()
                .map(|(subject, kind)| Event::AccessoryUnlinked {
                    repository: repository.clone(),
                    subject: subject.clone(),
                    digest: deletion.digest.clone(),
                    kind: *kind,
                }),
        );
        if deletion.record.is_some() {
            events.extend(delete_manifest(
                repository,
                &deletion.digest,
                deletion.record.as_ref(),
                &deletion.tags,
            )?);
        }
    }
    Ok(events)
}

/// Link a blob whose upload completed (nothing to record if it is linked already).
pub fn complete_upload(repository: &RepoName, digest: &Digest, size: u64, linked: bool) -> Vec<Event> {
    if linked {
        return vec![];
    }
    vec![Event::BlobUploadCompleted {
        repository: repository.clone(),
        digest: digest.clone(),
        size,
    }]
}

/// Mount a blob from another repository: only if `from` may serve it.
pub fn mount_blob(
    repository: &RepoName,
    digest: &Digest,
    from: &RepoName,
    size_in_from: Option<u64>,
    linked_here: bool,
) -> Result<Vec<Event>, DomainError> {
    let size = size_in_from.ok_or_else(|| DomainError::BlobUnknown(digest.clone()))?;
    if linked_here {
        return Ok(vec![]);
    }
    Ok(vec![Event::BlobMounted {
        repository: repository.clone(),
        digest: digest.clone(),
        size,
        from: from.clone(),
    }])
}

/// Stop serving a blob through the repository (`linked_size`: its size if it is linked).
pub fn unlink_blob(
    repository: &RepoName,
    digest: &Digest,
    linked_size: Option<u64>,
) -> Result<Vec<Event>, DomainError> {
    let size = linked_size.ok_or_else(|| DomainError::BlobUnknown(digest.clone()))?;
    Ok(vec![Event::BlobUnlinked {
        repository: repository.clone(),
        digest: digest.clone(),
        size,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::OCI_MANIFEST;
    use crate::domain::Algorithm;

    fn d(s: &str) -> Digest {
        Digest::compute(Algorithm::Sha256, s.as_bytes())
    }
    fn repo() -> RepoName {
        "library/app".parse().unwrap()
    }
    fn tag(s: &str) -> Tag {
        s.parse().unwrap()
    }

    fn push(tag_name: Option<&str>) -> PushManifest {
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"c","digest":"{}","size":1}},"layers":[{{"mediaType":"l","digest":"{}","size":1}}]}}"#,
            d("config"),
            d("layer")
        );
        PushManifest {
            repository: repo(),
            digest: d("manifest"),
            size: body.len() as u64,
            info: ManifestInfo::parse(OCI_MANIFEST, body.as_bytes()).unwrap(),
            tag: tag_name.map(tag),
        }
    }

    fn all_blobs_linked() -> PushState {
        PushState {
            linked_blobs: [d("config"), d("layer")].into(),
            ..PushState::default()
        }
    }

    #[test]
    fn given_its_blobs_when_a_manifest_is_pushed_by_tag_then_it_is_pushed_and_the_tag_moves() {
        let events = push_manifest(&push(Some("v1")), &all_blobs_linked()).unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], Event::ManifestPushed { digest, .. } if *digest == d("manifest")));
        assert!(matches!(&events[1], Event::TagMoved { previous: None, .. }));
    }

    #[test]
    fn given_a_missing_layer_when_a_manifest_is_pushed_then_it_is_refused_naming_the_layer() {
        let state = PushState {
            linked_blobs: [d("config")].into(),
            ..PushState::default()
        };
        let err = push_manifest(&push(None), &state).unwrap_err();
        assert_eq!(err, DomainError::ManifestBlobUnknown(vec![d("layer")]));
    }

    #[test]
    fn given_the_same_manifest_under_the_tag_when_pushed_again_then_nothing_happens() {
        let state = PushState {
            manifest_exists: true,
            tag_target: Some(d("manifest")),
            ..all_blobs_linked()
        };
        assert!(push_manifest(&push(Some("v1")), &state).unwrap().is_empty());
    }

    #[test]
    fn given_a_tag_on_another_manifest_when_pushed_then_the_tag_moves_from_it() {
        let state = PushState {
            manifest_exists: true,
            tag_target: Some(d("old")),
            ..all_blobs_linked()
        };
        let events = push_manifest(&push(Some("v1")), &state).unwrap();
        assert!(matches!(&events[..], [Event::TagMoved { previous: Some(p), .. }] if *p == d("old")));
    }

    #[test]
    fn given_tags_on_a_manifest_when_it_is_deleted_then_its_tags_go_first() {
        let record = ManifestRecord {
            digest: d("m"),
            media_type: OCI_MANIFEST.to_string(),
            size: 10,
            subject: Some(d("s")),
            artifact_type: Some("application/x.sig".to_string()),
            config_media_type: None,
            annotations: Default::default(),
            annotations_omitted: false,
            blobs: vec![],
            manifests: vec![],
            pushed_at: chrono::DateTime::UNIX_EPOCH,
            content: None,
        };
        let events = delete_manifest(&repo(), &d("m"), Some(&record), &[tag("a"), tag("b")]).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind().name).collect();
        assert_eq!(kinds, ["TagDeleted", "TagDeleted", "ManifestDeleted"]);
        assert!(matches!(
            &events[2],
            Event::ManifestDeleted { media_type, subject: Some(s), artifact_type: Some(t), .. }
                if media_type == OCI_MANIFEST && *s == d("s") && t == "application/x.sig"
        ));
    }

    #[test]
    fn given_a_signed_subject_when_it_is_deleted_then_its_accessories_go_first_with_their_links() {
        let record = |digest: &str| ManifestRecord {
            digest: d(digest),
            media_type: OCI_MANIFEST.to_string(),
            size: 1,
            subject: None,
            artifact_type: None,
            config_media_type: None,
            annotations: Default::default(),
            annotations_omitted: false,
            blobs: vec![],
            manifests: vec![],
            pushed_at: chrono::DateTime::UNIX_EPOCH,
            content: None,
        };
        let deletions = [
            Deletion {
                digest: d("sig"),
                record: Some(record("sig")),
                tags: vec![tag("sha256-x.sig")],
                links: vec![(d("image"), AccessoryKind::CosignSignature)],
            },
            Deletion {
                digest: d("image"),
                record: Some(record("image")),
                tags: vec![tag("v1")],
                links: vec![],
            },
        ];
        let events = delete_artifacts(&repo(), &deletions).unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind().name).collect();
        assert_eq!(
            kinds,
            [
                "AccessoryUnlinked",
                "TagDeleted",
                "ManifestDeleted",
                "TagDeleted",
                "ManifestDeleted"
            ]
        );
        let missing = [Deletion {
            record: None,
            ..deletions[1].clone()
        }];
        assert_eq!(
            delete_artifacts(&repo(), &missing).unwrap_err(),
            DomainError::ManifestUnknown(d("image"))
        );
    }

    #[test]
    fn given_no_manifest_when_it_is_deleted_then_it_is_unknown() {
        let err = delete_manifest(&repo(), &d("m"), None, &[]).unwrap_err();
        assert_eq!(err, DomainError::ManifestUnknown(d("m")));
    }

    #[test]
    fn given_no_tag_when_it_is_deleted_then_it_is_unknown() {
        assert_eq!(
            delete_tag(&repo(), &tag("x"), None).unwrap_err(),
            DomainError::TagUnknown(tag("x"))
        );
    }

    #[test]
    fn given_a_blob_absent_from_the_source_when_mounted_then_the_mount_is_refused() {
        let from: RepoName = "other/app".parse().unwrap();
        assert!(mount_blob(&repo(), &d("b"), &from, None, false).is_err());
        assert!(mount_blob(&repo(), &d("b"), &from, Some(3), true)
            .unwrap()
            .is_empty());
        assert_eq!(
            mount_blob(&repo(), &d("b"), &from, Some(3), false).unwrap().len(),
            1
        );
    }

    #[test]
    fn given_a_linked_blob_when_its_upload_completes_again_then_nothing_is_recorded() {
        assert!(complete_upload(&repo(), &d("b"), 1, true).is_empty());
        assert_eq!(complete_upload(&repo(), &d("b"), 1, false).len(), 1);
        assert!(unlink_blob(&repo(), &d("b"), None).is_err());
        assert!(matches!(
            &unlink_blob(&repo(), &d("b"), Some(7)).unwrap()[..],
            [Event::BlobUnlinked { size: 7, .. }]
        ));
    }
}
