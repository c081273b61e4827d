//! Signing an image and pushing the signature, as `cosign sign --key` does:
//! - cosign's tag scheme (default): the signature is one more layer of the image manifest tagged
//!   `sha256-<hex>.sig`, so signatures accumulate (except the same payload signed again with the
//!   same key: cosign's duplicate detection); its config is go-containerregistry's empty image
//!   config with one `diff_ids`/`history` entry per layer;
//! - OCI 1.1 referrers (`--referrer`): an artifact manifest of type
//!   `application/vnd.dev.cosign.artifact.sig.v1+json` with the empty config, the signature
//!   layer and the image as `subject`, pushed by digest. A registry that does not process the
//!   subject (no `OCI-Subject` header) gets the referrers tag schema's index at `sha256-<hex>`
//!   updated, as distribution-spec v1.1 "Pushing Manifests with Subject" asks of clients.

use std::collections::BTreeMap;

use anyhow::Context;
use berth::trust::cosign::{
    payload_for, verify, KeyPair, Signature, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE,
};
use serde_json::{Map, Value};

use berth::registry_client::documents::{
    Descriptor, Manifest, SigConfig, COSIGN_SIG_ARTIFACT, DOCKER_MANIFEST, EMPTY_CONTENT, EMPTY_MEDIA_TYPE,
    OCI_CONFIG, OCI_MANIFEST,
};
use berth::registry_client::reference::digest_tag;
use berth::registry_client::ImageRef;
use berth::registry_client::{Fetched, RegistryClient, MAX_MANIFEST_BYTES};

/// cosign refuses to grow a `.sig` manifest past this many layers; so does this tool.
pub const MAX_SIGNATURES: usize = 1000;

/// Signs `image` with `key` and pushes the signature; returns the pushed manifest's
/// `host/repo@digest`.
pub async fn sign(
    client: &RegistryClient,
    image: &ImageRef,
    key: &KeyPair,
    annotations: &BTreeMap<String, String>,
    referrer: bool,
) -> anyhow::Result<String> {
    let subject = super::resolve(client, image).await?;
    let payload = payload(image, &subject.digest, annotations)?;
    let signature = key.sign(&payload).context("cannot sign the payload")?;
    let mut layer = Descriptor::of(SIMPLE_SIGNING_MEDIA_TYPE, &payload);
    layer
        .annotations
        .insert(SIGNATURE_ANNOTATION.to_string(), signature);
    client.push_blob(&payload).await?;
    let digest = if referrer {
        push_referrer(client, image, &subject, layer).await?
    } else {
        push_tagged(client, image, &subject, layer, &payload, key).await?
    };
    Ok(format!("{}@{digest}", image.name()))
}

/// The simple-signing payload for `digest`, with `annotations` as its `optional` map.
fn payload(
    image: &ImageRef,
    digest: &str,
    annotations: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let payload = payload_for(&image.name(), digest);
    if annotations.is_empty() {
        return Ok(payload);
    }
    let mut value: Value = serde_json::from_slice(&payload).context("the payload is not JSON")?;
    let optional: Map<String, Value> = (annotations.iter())
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    match value.as_object_mut() {
        Some(object) => object.insert("optional".to_string(), Value::Object(optional)),
        None => anyhow::bail!("the payload is not a JSON object"),
    };
    serde_json::to_vec(&value).context("cannot serialise the payload")
}

/// Appends `layer` to the manifest tagged `sha256-<hex>.sig` (creating it); returns its digest.
async fn push_tagged(
    client: &RegistryClient,
    image: &ImageRef,
    subject: &Fetched,
    layer: Descriptor,
    payload: &[u8],
    key: &KeyPair,
) -> anyhow::Result<String> {
    let tag = format!("{}.sig", digest_tag(&subject.digest));
    let existing = client.manifest(&tag, &[OCI_MANIFEST, DOCKER_MANIFEST]).await?;
    let (mut manifest, mut config) = match existing {
        Some(fetched) => {
            let manifest: Manifest = serde_json::from_slice(&fetched.bytes)
                .with_context(|| format!("{}:{tag} is not an image manifest", image.name()))?;
            if manifest
                .layers
                .iter()
                .any(|l| duplicate(l, &layer, payload, &subject.digest, key))
            {
                eprintln!("{image} already carries this signature in {}:{tag}", image.name());
                return Ok(fetched.digest);
            }
            let config = existing_config(client, &manifest).await;
            (manifest, config)
        }
        None => (new_sig_manifest(), SigConfig::empty()),
    };
    if manifest.layers.len() >= MAX_SIGNATURES {
        anyhow::bail!("{}:{tag} has {MAX_SIGNATURES} signatures already", image.name());
    }
    config.append_layer(&layer.digest);
    manifest.layers.push(layer);
    let config_bytes = serde_json::to_vec(&config).context("cannot serialise the config")?;
    client.push_blob(&config_bytes).await?;
    manifest.config = Descriptor::of(&manifest.config.media_type, &config_bytes);
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    let body = serde_json::to_vec(&manifest).context("cannot serialise the manifest")?;
    eprintln!("Pushing signature to: {}:{tag}", image.name());
    let (digest, _) = client.put_manifest(&tag, &media_type, body).await?;
    Ok(digest)
}

/// cosign's duplicate detection: `existing` carries the same payload, media type and other
/// annotations as the new `layer`, and its signature verifies with the signing key. Signing again
/// with the same key then adds nothing (ECDSA signatures differ each time, so comparing the
/// signatures themselves would not tell).
fn duplicate(existing: &Descriptor, layer: &Descriptor, payload: &[u8], digest: &str, key: &KeyPair) -> bool {
    let others = |d: &Descriptor| {
        let mut annotations = d.annotations.clone();
        annotations.remove(SIGNATURE_ANNOTATION);
        annotations
    };
    if existing.digest != layer.digest
        || existing.media_type != layer.media_type
        || others(existing) != others(layer)
    {
        return false;
    }
    let Some(signature_b64) = existing.annotations.get(SIGNATURE_ANNOTATION) else {
        return false;
    };
    let signature = Signature {
        payload,
        signature_b64,
        bundle_json: None,
    };
    verify(&signature, digest, &[key.public_key()], &[]).is_verified()
}

fn new_sig_manifest() -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: None,
        config: Descriptor::of(OCI_CONFIG, b""),
        layers: vec![],
        subject: None,
        annotations: BTreeMap::new(),
        extra: Map::new(),
    }
}

/// The `.sig` manifest's config, or one rebuilt from its layers when it cannot be read.
async fn existing_config(client: &RegistryClient, manifest: &Manifest) -> SigConfig {
    let fetched = client.blob(&manifest.config.digest, MAX_MANIFEST_BYTES).await;
    let parsed = fetched
        .ok()
        .and_then(|bytes| serde_json::from_slice::<SigConfig>(&bytes).ok());
    match parsed {
        Some(config) if config.rootfs.diff_ids.len() == manifest.layers.len() => config,
        _ => {
            let mut config = SigConfig::empty();
            for layer in &manifest.layers {
                config.append_layer(&layer.digest);
            }
            config
        }
    }
}

/// Pushes `layer` in an OCI 1.1 artifact manifest whose subject is the image; returns its digest.
async fn push_referrer(
    client: &RegistryClient,
    image: &ImageRef,
    subject: &Fetched,
    layer: Descriptor,
) -> anyhow::Result<String> {
    client.push_blob(EMPTY_CONTENT).await?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: Some(COSIGN_SIG_ARTIFACT.to_string()),
        config: Descriptor::of(EMPTY_MEDIA_TYPE, EMPTY_CONTENT),
        layers: vec![layer],
        subject: Some(subject.descriptor()),
        annotations: BTreeMap::new(),
        extra: Map::new(),
    };
    let body = serde_json::to_vec(&manifest).context("cannot serialise the manifest")?;
    let mut pushed = Descriptor::of(OCI_MANIFEST, &body);
    pushed.artifact_type = Some(COSIGN_SIG_ARTIFACT.to_string());
    eprintln!(
        "Pushing signature to: {}@{} (a referrer of {})",
        image.name(),
        pushed.digest,
        subject.digest
    );
    let (digest, subject_processed) = client.put_manifest(&pushed.digest, OCI_MANIFEST, body).await?;
    if !subject_processed {
        eprintln!(
            "The registry has no referrers API: listing the signature in {}:{}",
            image.name(),
            digest_tag(&subject.digest)
        );
        client.add_to_referrers_tag(&subject.digest, pushed).await?;
    }
    Ok(digest)
}
