//! The OCI documents cosign's signatures live in (image-spec v1.1: `manifest.md`,
//! `image-index.md`, `descriptor.md`, `config.md`, and the empty descriptor of `manifest.md`
//! "Guidance for an Empty Descriptor").
//!
//! Fields this tool does not know are kept (`extra`), so appending a signature to a manifest
//! another tool wrote loses nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

pub use crate::domain::manifest::{
    DOCKER_LIST as DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Every manifest type an image reference may resolve to, for `Accept`.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/// The artifact type of cosign's signatures pushed as OCI 1.1 referrers.
pub const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The empty descriptor's media type, content (`{}`) and digest.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONTENT: &[u8] = b"{}";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// The descriptor of `bytes` as a blob of `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            artifact_type: None,
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
            extra: Map::new(),
        }
    }
}

/// An image manifest (field order as go-containerregistry writes it, for cosign's tools).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An image index (here: a referrers API answer or the referrers fallback tag).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Index {
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            manifests: vec![],
            extra: Map::new(),
        }
    }
}

/// The image config of cosign's `.sig` manifest: go-containerregistry's empty image with one
/// `rootfs.diff_ids` entry (the uncompressed layer's digest, i.e. the payload's) and one empty
/// `history` entry per signature layer, times at Go's zero time unless the writer recorded one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default = "zero_time")]
    pub created: Value,
    #[serde(default)]
    pub history: Vec<Value>,
    #[serde(default)]
    pub os: String,
    pub rootfs: RootFs,
    #[serde(default = "empty_object")]
    pub config: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// Go's `time.Time{}` as `encoding/json` writes it.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn zero_time() -> Value {
    Value::String(GO_ZERO_TIME.to_string())
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl SigConfig {
    /// The config of a `.sig` image with no layer yet.
    pub fn empty() -> SigConfig {
        SigConfig {
            architecture: String::new(),
            created: zero_time(),
            history: vec![],
            os: String::new(),
            rootfs: RootFs {
                kind: "layers".to_string(),
                diff_ids: vec![],
            },
            config: empty_object(),
            extra: Map::new(),
        }
    }

    /// Records one more (uncompressed) layer, as go-containerregistry's `mutate.Append` does.
    pub fn append_layer(&mut self, diff_id: &str) {
        self.rootfs.diff_ids.push(diff_id.to_string());
        self.history.push(serde_json::json!({ "created": GO_ZERO_TIME }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_descriptor_has_the_well_known_digest() {
        let empty = Descriptor::of(EMPTY_MEDIA_TYPE, EMPTY_CONTENT);
        assert_eq!(
            empty.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(empty.size, 2);
    }

    #[test]
    fn a_sig_config_serialises_as_go_containerregistry_writes_it() {
        let mut config = SigConfig::empty();
        config.append_layer("sha256:aa");
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"config":{}}"#
        );
    }

    #[test]
    fn unknown_manifest_fields_survive_a_round_trip() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:aa","size":1,"urls":["x"]},"layers":[],"x-extra":1}"#;
        let manifest: Manifest = serde_json::from_str(text).unwrap();
        let back = serde_json::to_value(&manifest).unwrap();
        assert_eq!(back["x-extra"], 1);
        assert_eq!(back["config"]["urls"][0], "x");
    }
}
