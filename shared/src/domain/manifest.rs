//! Manifest parsing and validation (image-spec v1.1 "Image Manifest" and "Image Index", and their Docker
//! schema 2 counterparts). A manifest is parsed once at push; what Berth needs of it afterwards (blobs,
//! children, subject, artifact type, annotations) travels in the `ManifestPushed` event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];
/// Layers a registry does not have to hold: Docker foreign layers and OCI non-distributable layers.
const FOREIGN_LAYER_PREFIXES: [&str; 2] = [
    "application/vnd.docker.image.rootfs.foreign.",
    "application/vnd.oci.image.layer.nondistributable.",
];
/// Layer media type prefixes of container filesystems (OCI `layer.v1.tar` with `+gzip`/`+zstd`, its
/// non-distributable and encrypted variants; Docker's `rootfs.diff.tar.gzip` and `rootfs.foreign.…`):
/// what a runtime unpacks and runs.
const FILESYSTEM_LAYER_PREFIXES: [&str; 2] = [
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
];
/// A cosign signature's layer: the simple-signing payload, its signature in an annotation.
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation of a cosign signature layer that holds the signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// An attestation's layer (cosign `attest`, in-toto in a DSSE envelope).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// Words in the media types of SBOM layers (`text/spdx`, `application/vnd.cyclonedx+json`,
/// `application/vnd.syft+json`, as cosign `attach sbom` writes them).
const SBOM_MEDIA_TYPE_WORDS: [&str; 3] = ["spdx", "cyclonedx", "syft"];
/// Content types that say nothing about the manifest; the body's `mediaType` decides then.
const GENERIC_CONTENT_TYPES: [&str; 3] = ["", "application/json", "application/octet-stream"];

/// The four manifest media types Berth stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerList,
}

impl MediaType {
    pub fn parse(s: &str) -> Option<MediaType> {
        match s {
            OCI_MANIFEST => Some(MediaType::OciManifest),
            OCI_INDEX => Some(MediaType::OciIndex),
            DOCKER_MANIFEST => Some(MediaType::DockerManifest),
            DOCKER_LIST => Some(MediaType::DockerList),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::OciManifest => OCI_MANIFEST,
            MediaType::OciIndex => OCI_INDEX,
            MediaType::DockerManifest => DOCKER_MANIFEST,
            MediaType::DockerList => DOCKER_LIST,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, MediaType::OciIndex | MediaType::DockerList)
    }
}

/// A content descriptor (image-spec "Descriptors").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest's layers carry, as content trust sees it: whether a runtime could run it, or
/// which accessory its layers are shaped as. Recorded at push, so pulls need not read the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Content {
    /// An index: its children may be images.
    Index,
    /// An image manifest with at least one container filesystem layer.
    Filesystem,
    /// Every layer a cosign simple-signing payload with its signature annotation.
    CosignSignature,
    /// Every layer a DSSE envelope.
    Attestation,
    /// Every layer an SBOM document.
    Sbom,
    /// Anything else without a filesystem layer (no layers, or other artifacts).
    Other,
}

impl Content {
    /// Classifies an image manifest by its layers (an index is always [`Content::Index`]).
    pub fn classify(media_type: MediaType, layers: &[Descriptor]) -> Content {
        let all = |f: fn(&Descriptor) -> bool| !layers.is_empty() && layers.iter().all(f);
        if media_type.is_index() {
            Content::Index
        } else if layers.iter().any(|l| is_filesystem_layer(&l.media_type)) {
            Content::Filesystem
        } else if all(|l| {
            l.media_type == COSIGN_SIMPLE_SIGNING && l.annotations.contains_key(COSIGN_SIGNATURE_ANNOTATION)
        }) {
            Content::CosignSignature
        } else if all(|l| l.media_type == DSSE_ENVELOPE) {
            Content::Attestation
        } else if all(|l| {
            let t = l.media_type.to_ascii_lowercase();
            SBOM_MEDIA_TYPE_WORDS.iter().any(|w| t.contains(w))
        }) {
            Content::Sbom
        } else {
            Content::Other
        }
    }

    /// Whether a runtime could run it (an index, or an image with filesystem layers): such a
    /// manifest needs its own signature, even when it names a subject.
    pub fn runnable(self) -> bool {
        matches!(self, Content::Index | Content::Filesystem)
    }
}

/// Whether a layer media type is a container filesystem (OCI or Docker, any compression,
/// distributable or not).
pub fn is_filesystem_layer(media_type: &str) -> bool {
    let t = media_type.to_ascii_lowercase();
    FILESYSTEM_LAYER_PREFIXES.iter().any(|p| t.starts_with(p))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The most blobs and child manifests one manifest may reference. Every reference is recorded in the
/// manifest's event, and an event must fit in one DynamoDB item (400 KB); Docker caps images at 127
/// layers, so this refuses only pathological manifests.
pub const MAX_REFERENCES: usize = 1_000;
/// The longest media or artifact type recorded (RFC 6838 allows 127 characters on each side of `/`).
pub const MAX_MEDIA_TYPE_LEN: usize = 255;
/// Annotations larger than this (as JSON) are not copied into the manifest's event; the referrers
/// listing reads them from the manifest itself. Keeps every event well inside a DynamoDB item.
pub const MAX_RECORDED_ANNOTATIONS_BYTES: usize = 16 * 1024;

/// The size of annotations as JSON, roughly: keys and values plus quotes and separators.
fn annotations_size(annotations: &BTreeMap<String, String>) -> usize {
    annotations.iter().map(|(k, v)| k.len() + v.len() + 6).sum()
}

/// What Berth keeps of a valid manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub media_type: MediaType,
    pub artifact_type: Option<String>,
    pub config_media_type: Option<String>,
    /// Blobs the manifest references that the repository must hold (config and distributable layers).
    pub blobs: Vec<Digest>,
    /// Child manifests of an index, which the repository must hold.
    pub manifests: Vec<Digest>,
    pub subject: Option<Digest>,
    /// The manifest's annotations, unless they exceed [`MAX_RECORDED_ANNOTATIONS_BYTES`].
    pub annotations: BTreeMap<String, String>,
    /// The annotations were too large to record: read them from the manifest when needed.
    pub annotations_omitted: bool,
    /// What its layers carry.
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("Docker schema 1 manifests are not supported; push schema 2 or OCI")]
    Schema1,
    #[error("unsupported manifest media type {0:?}; supported: {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_LIST}")]
    UnsupportedMediaType(String),
    #[error("mediaType {body:?} in the manifest does not match Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("an image manifest needs a config descriptor and a layers array, and no manifests array")]
    NotAnImage,
    #[error("an index needs a manifests array, and no config or layers")]
    NotAnIndex,
    #[error("the manifest references {0} blobs or manifests; at most {MAX_REFERENCES} are accepted")]
    TooManyReferences(usize),
    #[error("a media or artifact type is longer than {MAX_MEDIA_TYPE_LEN} characters")]
    MediaTypeTooLong,
}

impl ManifestInfo {
    /// Parses and validates `body`, sent with the `Content-Type` `content_type`.
    pub fn parse(content_type: &str, body: &[u8]) -> Result<ManifestInfo, ManifestError> {
        let raw: RawManifest =
            serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
        let media_type = resolve_media_type(content_type, raw.media_type.as_deref())?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::SchemaVersion);
        }
        let (blobs, manifests) = if media_type.is_index() {
            match (&raw.manifests, &raw.config, &raw.layers) {
                (Some(children), None, None) => (vec![], dedup(children.iter().map(|d| &d.digest))),
                _ => return Err(ManifestError::NotAnIndex),
            }
        } else {
            match (&raw.config, &raw.layers, &raw.manifests) {
                (Some(config), Some(layers), None) => {
                    let distributable = layers.iter().filter(|l| !is_foreign(l));
                    let blobs = std::iter::once(&config.digest).chain(distributable.map(|l| &l.digest));
                    (dedup(blobs), vec![])
                }
                _ => return Err(ManifestError::NotAnImage),
            }
        };
        let references = blobs.len() + manifests.len();
        if references > MAX_REFERENCES {
            return Err(ManifestError::TooManyReferences(references));
        }
        let content = Content::classify(media_type, raw.layers.as_deref().unwrap_or_default());
        let config_media_type = raw.config.map(|c| c.media_type);
        let types = [raw.artifact_type.as_deref(), config_media_type.as_deref()];
        if types.iter().flatten().any(|t| t.len() > MAX_MEDIA_TYPE_LEN) {
            return Err(ManifestError::MediaTypeTooLong);
        }
        let annotations_omitted = annotations_size(&raw.annotations) > MAX_RECORDED_ANNOTATIONS_BYTES;
        Ok(ManifestInfo {
            media_type,
            artifact_type: raw.artifact_type,
            config_media_type,
            blobs,
            manifests,
            subject: raw.subject.map(|s| s.digest),
            annotations: if annotations_omitted {
                BTreeMap::new()
            } else {
                raw.annotations
            },
            annotations_omitted,
            content,
        })
    }

    /// The annotations of a manifest already validated by [`ManifestInfo::parse`] (for those too
    /// large to record).
    pub fn annotations_of(body: &[u8]) -> Result<BTreeMap<String, String>, ManifestError> {
        #[derive(Deserialize)]
        struct Annotated {
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        serde_json::from_slice::<Annotated>(body)
            .map(|a| a.annotations)
            .map_err(|e| ManifestError::Json(e.to_string()))
    }

    /// The artifact type a referrers response reports: `artifactType`, else the config's media type.
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or(self.config_media_type.as_deref())
    }
}

fn resolve_media_type(header: &str, body: Option<&str>) -> Result<MediaType, ManifestError> {
    let header = header.split(';').next().unwrap_or("").trim();
    let check_known = |s: &str| {
        if DOCKER_SCHEMA1.contains(&s) {
            return Err(ManifestError::Schema1);
        }
        MediaType::parse(s).ok_or_else(|| ManifestError::UnsupportedMediaType(s.to_string()))
    };
    if GENERIC_CONTENT_TYPES.contains(&header) {
        return match body {
            Some(b) => check_known(b),
            None => Err(ManifestError::UnsupportedMediaType(header.to_string())),
        };
    }
    let media_type = check_known(header)?;
    match body {
        Some(b) if b != header => Err(ManifestError::MediaTypeMismatch {
            body: b.to_string(),
            header: header.to_string(),
        }),
        _ => Ok(media_type),
    }
}

fn is_foreign(layer: &Descriptor) -> bool {
    FOREIGN_LAYER_PREFIXES
        .iter()
        .any(|p| layer.media_type.starts_with(p))
}

fn dedup<'a>(digests: impl Iterator<Item = &'a Digest>) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::new();
    for d in digests {
        if !out.contains(d) {
            out.push(d.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":3}},
                      {{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{D2}","size":3}}]{extra}}}"#
        )
    }

    #[test]
    fn an_image_manifest_lists_its_config_and_layers_once() {
        let info = ManifestInfo::parse(OCI_MANIFEST, image("").as_bytes()).unwrap();
        assert_eq!(info.media_type, MediaType::OciManifest);
        let blobs: Vec<String> = info.blobs.iter().map(|d| d.to_string()).collect();
        assert_eq!(blobs, vec![D1, D2]);
        assert_eq!(
            info.effective_artifact_type(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn large_annotations_are_left_in_the_manifest_and_marked_omitted() {
        let small = format!(r#","annotations":{{"k":"{}"}}"#, "v".repeat(100));
        let info = ManifestInfo::parse(OCI_MANIFEST, image(&small).as_bytes()).unwrap();
        assert!(!info.annotations_omitted);
        assert_eq!(info.annotations["k"].len(), 100);

        let large = format!(
            r#","annotations":{{"k":"{}"}}"#,
            "v".repeat(MAX_RECORDED_ANNOTATIONS_BYTES)
        );
        let body = image(&large);
        let info = ManifestInfo::parse(OCI_MANIFEST, body.as_bytes()).unwrap();
        assert!(info.annotations_omitted);
        assert!(info.annotations.is_empty());
        let read_back = ManifestInfo::annotations_of(body.as_bytes()).unwrap();
        assert_eq!(read_back["k"].len(), MAX_RECORDED_ANNOTATIONS_BYTES);
    }

    #[test]
    fn too_many_references_or_overlong_types_are_refused() {
        let children: Vec<String> = (0..=MAX_REFERENCES)
            .map(|i| format!(r#"{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{i:064x}","size":1}}"#))
            .collect();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
            children.join(",")
        );
        assert_eq!(
            ManifestInfo::parse(OCI_INDEX, index.as_bytes()),
            Err(ManifestError::TooManyReferences(MAX_REFERENCES + 1))
        );
        let long = format!(
            r#","artifactType":"application/{}""#,
            "x".repeat(MAX_MEDIA_TYPE_LEN)
        );
        assert_eq!(
            ManifestInfo::parse(OCI_MANIFEST, image(&long).as_bytes()),
            Err(ManifestError::MediaTypeTooLong)
        );
    }

    #[test]
    fn a_subject_and_artifact_type_are_kept() {
        let extra = format!(
            r#","artifactType":"application/x.sig","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":9}},"annotations":{{"a":"b"}}"#
        );
        let info = ManifestInfo::parse(OCI_MANIFEST, image(&extra).as_bytes()).unwrap();
        assert_eq!(info.subject.as_ref().unwrap().to_string(), D1);
        assert_eq!(info.effective_artifact_type(), Some("application/x.sig"));
        assert_eq!(info.annotations.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn the_body_media_type_decides_when_the_content_type_is_generic() {
        let info = ManifestInfo::parse("application/json", image("").as_bytes()).unwrap();
        assert_eq!(info.media_type, MediaType::OciManifest);
    }

    #[test]
    fn invalid_manifests_are_rejected_with_the_reason() {
        let index = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        let no_version = format!(r#"{{"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        let bad_digest = image("").replace(D2, "sha256:nothex");
        let negative = image("").replace("\"size\":2", "\"size\":-2");
        type Check = fn(&ManifestError) -> bool;
        let cases: Vec<(&str, String, Check)> = vec![
            (OCI_MANIFEST, "{".into(), |e| matches!(e, ManifestError::Json(_))),
            (OCI_MANIFEST, "[]".into(), |e| matches!(e, ManifestError::Json(_))),
            (OCI_MANIFEST, bad_digest, |e| matches!(e, ManifestError::Json(_))),
            (OCI_MANIFEST, negative, |e| matches!(e, ManifestError::Json(_))),
            ("text/plain", image(""), |e| {
                matches!(e, ManifestError::UnsupportedMediaType(_))
            }),
            (DOCKER_SCHEMA1[1], r#"{"schemaVersion":1}"#.into(), |e| {
                matches!(e, ManifestError::Schema1)
            }),
            (OCI_INDEX, image(""), |e| {
                matches!(e, ManifestError::MediaTypeMismatch { .. })
            }),
            (OCI_INDEX, no_version, |e| {
                matches!(e, ManifestError::SchemaVersion)
            }),
            (OCI_MANIFEST, index.replace(OCI_INDEX, OCI_MANIFEST), |e| {
                matches!(e, ManifestError::NotAnImage)
            }),
            ("", r#"{"schemaVersion":2}"#.into(), |e| {
                matches!(e, ManifestError::UnsupportedMediaType(_))
            }),
        ];
        for (content_type, body, check) in cases {
            let err = ManifestInfo::parse(content_type, body.as_bytes()).unwrap_err();
            assert!(check(&err), "{content_type} {body}: got {err:?}");
        }
    }

    #[test]
    fn foreign_layers_need_not_be_in_the_registry() {
        let body = image("").replacen(
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            2,
        );
        let info = ManifestInfo::parse(OCI_MANIFEST, body.as_bytes()).unwrap();
        assert_eq!(info.blobs.len(), 1);
    }

    fn layer(media_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: D2.parse().unwrap(),
            size: 3,
            urls: vec![],
            artifact_type: None,
            annotations: (annotations.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn layer_media_types_say_whether_an_image_carries_a_filesystem() {
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", true),
            ("application/vnd.oci.image.layer.v1.tar+gzip", true),
            ("application/vnd.oci.image.layer.v1.tar+zstd", true),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                true,
            ),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", true),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", true),
            ("Application/VND.OCI.Image.Layer.v1.tar", true),
            (COSIGN_SIMPLE_SIGNING, false),
            (DSSE_ENVELOPE, false),
            ("application/spdx+json", false),
            ("application/vnd.oci.image.config.v1+json", false),
            ("application/octet-stream", false),
        ];
        for (media_type, filesystem) in cases {
            assert_eq!(is_filesystem_layer(media_type), filesystem, "{media_type}");
        }
    }

    #[test]
    fn layers_classify_a_manifest_as_runnable_or_as_an_accessory_shape() {
        let signed = [(COSIGN_SIGNATURE_ANNOTATION, "MEUCIQ==")];
        let sig = || layer(COSIGN_SIMPLE_SIGNING, &signed);
        let fs = || layer("application/vnd.oci.image.layer.v1.tar+gzip", &[]);
        let docker_fs = || layer("application/vnd.docker.image.rootfs.diff.tar.gzip", &[]);
        let m = MediaType::OciManifest;
        let cases: Vec<(MediaType, Vec<Descriptor>, Content)> = vec![
            (m, vec![fs()], Content::Filesystem),
            (MediaType::DockerManifest, vec![docker_fs()], Content::Filesystem),
            (m, vec![sig(), sig()], Content::CosignSignature),
            (m, vec![sig(), fs()], Content::Filesystem),
            (m, vec![layer(COSIGN_SIMPLE_SIGNING, &[])], Content::Other),
            (m, vec![sig(), layer("application/json", &[])], Content::Other),
            (m, vec![layer(DSSE_ENVELOPE, &[])], Content::Attestation),
            (m, vec![layer("text/spdx", &[])], Content::Sbom),
            (
                m,
                vec![layer("application/vnd.cyclonedx+json", &[])],
                Content::Sbom,
            ),
            (
                m,
                vec![layer("application/vnd.cncf.notary.signature", &[])],
                Content::Other,
            ),
            (m, vec![], Content::Other),
            (MediaType::OciIndex, vec![], Content::Index),
            (MediaType::DockerList, vec![], Content::Index),
        ];
        for (media_type, layers, content) in cases {
            assert_eq!(
                Content::classify(media_type, &layers),
                content,
                "{media_type:?} {layers:?}"
            );
        }
        let runnable = [Content::Index, Content::Filesystem];
        for content in [
            Content::Index,
            Content::Filesystem,
            Content::CosignSignature,
            Content::Attestation,
            Content::Sbom,
            Content::Other,
        ] {
            assert_eq!(content.runnable(), runnable.contains(&content), "{content:?}");
        }
    }

    #[test]
    fn a_parsed_manifest_records_what_its_layers_carry() {
        let info = ManifestInfo::parse(OCI_MANIFEST, image("").as_bytes()).unwrap();
        assert_eq!(info.content, Content::Filesystem);
        let signature = image("").replace(
            r#""mediaType":"application/vnd.oci.image.layer.v1.tar","#,
            &format!(
                r#""mediaType":"{COSIGN_SIMPLE_SIGNING}","annotations":{{"{COSIGN_SIGNATURE_ANNOTATION}":"x"}},"#
            ),
        );
        let info = ManifestInfo::parse(OCI_MANIFEST, signature.as_bytes()).unwrap();
        assert_eq!(info.content, Content::CosignSignature);
    }
}
