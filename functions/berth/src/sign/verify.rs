//! Verifying an image's cosign signatures, as `cosign verify --key` does: gather the
//! simple-signing layers of the `sha256-<hex>.sig` manifest and of the image's referrers of type
//! `application/vnd.dev.cosign.artifact.sig.v1+json` (the referrers API, else the referrers tag
//! schema's `sha256-<hex>` index), verify each against the keys and the image's digest, print a
//! summary on stderr and the verified payloads as a JSON array on stdout.

use std::collections::BTreeMap;

use anyhow::Context;
use berth::trust::cosign::{
    PublicKey, Signature, BUNDLE_ANNOTATION, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE,
};
use berth::trust::Verdict;
use serde_json::Value;

use super::push::MAX_SIGNATURES;
use berth::registry_client::documents::{
    Descriptor, Index, Manifest, COSIGN_SIG_ARTIFACT, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use berth::registry_client::reference::digest_tag;
use berth::registry_client::ImageRef;
use berth::registry_client::{Fetched, RegistryClient, MAX_MANIFEST_BYTES};

/// A simple-signing payload is a few hundred bytes; refuse anything far larger.
const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// A signature layer and where it was found.
struct Candidate {
    origin: String,
    layer: Descriptor,
}

/// A signature that verified.
struct Verified {
    payload: Value,
    warnings: Vec<String>,
}

/// Verifies `image`'s signatures; fails unless at least one verifies with one of `keys` (and
/// carries `annotations`).
pub async fn verify(
    client: &RegistryClient,
    image: &ImageRef,
    keys: &[PublicKey],
    rekor_keys: &[PublicKey],
    annotations: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let subject = super::resolve(client, image).await?;
    let mut candidates = tagged(client, image, &subject).await?;
    candidates.extend(referrers(client, image, &subject).await?);
    if candidates.is_empty() {
        anyhow::bail!("no signatures found for {image} ({})", subject.digest);
    }
    // Signed once, listed twice (under the tag and as a referrer): verify and print it once.
    let mut seen = std::collections::BTreeSet::new();
    candidates.retain(|c| {
        seen.insert((
            c.layer.digest.clone(),
            c.layer.annotations.get(SIGNATURE_ANNOTATION).cloned(),
        ))
    });
    candidates.truncate(MAX_SIGNATURES);
    let mut verified = vec![];
    let mut rejected = vec![];
    for candidate in &candidates {
        match check(client, candidate, &subject.digest, keys, rekor_keys, annotations).await {
            Ok(ok) => verified.push(ok),
            Err(reason) => rejected.push(format!("{}: {reason:#}", candidate.origin)),
        }
    }
    if verified.is_empty() {
        anyhow::bail!(
            "no matching signatures for {image} ({}): {} found, none verifies:\n  - {}",
            subject.digest,
            candidates.len(),
            rejected.join("\n  - ")
        );
    }
    report(image, &verified, !annotations.is_empty(), !rekor_keys.is_empty())
}

/// One candidate: its payload fetched, its signature verified, its annotations checked.
async fn check(
    client: &RegistryClient,
    candidate: &Candidate,
    digest: &str,
    keys: &[PublicKey],
    rekor_keys: &[PublicKey],
    annotations: &BTreeMap<String, String>,
) -> anyhow::Result<Verified> {
    let layer = &candidate.layer;
    let signature_b64 = (layer.annotations.get(SIGNATURE_ANNOTATION))
        .ok_or_else(|| anyhow::anyhow!("the layer has no {SIGNATURE_ANNOTATION} annotation"))?;
    let bundle_json = layer.annotations.get(BUNDLE_ANNOTATION).map(String::as_str);
    let payload = client.blob(&layer.digest, MAX_PAYLOAD_BYTES).await?;
    let signature = Signature {
        payload: &payload,
        signature_b64,
        bundle_json,
    };
    let warnings = match berth::trust::cosign::verify(&signature, digest, keys, rekor_keys) {
        Verdict::Verified { warnings, .. } => warnings,
        Verdict::Rejected { reason } => anyhow::bail!("{reason}"),
    };
    let payload: Value = serde_json::from_slice(&payload).context("the payload is not JSON")?;
    for (key, value) in annotations {
        let signed = payload
            .get("optional")
            .and_then(|o| o.get(key))
            .and_then(Value::as_str);
        if signed != Some(value.as_str()) {
            anyhow::bail!("the payload does not carry the annotation {key}={value}");
        }
    }
    Ok(Verified { payload, warnings })
}

/// The simple-signing layers of the manifest tagged `sha256-<hex>.sig`.
async fn tagged(
    client: &RegistryClient,
    image: &ImageRef,
    subject: &Fetched,
) -> anyhow::Result<Vec<Candidate>> {
    let tag = format!("{}.sig", digest_tag(&subject.digest));
    let Some(fetched) = client.manifest(&tag, &[OCI_MANIFEST, DOCKER_MANIFEST]).await? else {
        return Ok(vec![]);
    };
    let manifest: Manifest = serde_json::from_slice(&fetched.bytes)
        .with_context(|| format!("{}:{tag} is not an image manifest", image.name()))?;
    let origin = format!("{}:{tag}", image.name());
    Ok(signature_layers(manifest, &origin))
}

/// The simple-signing layers of the image's cosign referrers.
async fn referrers(
    client: &RegistryClient,
    image: &ImageRef,
    subject: &Fetched,
) -> anyhow::Result<Vec<Candidate>> {
    let listed = match client.referrers(&subject.digest, COSIGN_SIG_ARTIFACT).await? {
        Some(listed) => listed,
        None => fallback_index(client, subject).await?,
    };
    let mut candidates = vec![];
    for descriptor in listed.iter().take(MAX_SIGNATURES) {
        let Some(fetched) = client.manifest(&descriptor.digest, &[OCI_MANIFEST]).await? else {
            continue;
        };
        let origin = format!("{}@{}", image.name(), fetched.digest);
        let Ok(manifest) = serde_json::from_slice::<Manifest>(&fetched.bytes) else {
            continue;
        };
        // A fallback index is an ordinary tag anyone may write: keep only true referrers.
        if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(subject.digest.as_str()) {
            continue;
        }
        candidates.extend(signature_layers(manifest, &origin));
    }
    Ok(candidates)
}

/// The cosign signatures listed in the referrers tag schema's `sha256-<hex>` index.
async fn fallback_index(client: &RegistryClient, subject: &Fetched) -> anyhow::Result<Vec<Descriptor>> {
    let tag = digest_tag(&subject.digest);
    let Some(fetched) = client.manifest(&tag, &[OCI_INDEX]).await? else {
        return Ok(vec![]);
    };
    let Ok(index) = serde_json::from_slice::<Index>(&fetched.bytes) else {
        return Ok(vec![]);
    };
    let cosign = |d: &Descriptor| d.artifact_type.as_deref() == Some(COSIGN_SIG_ARTIFACT);
    Ok(index.manifests.into_iter().filter(cosign).collect())
}

fn signature_layers(manifest: Manifest, origin: &str) -> Vec<Candidate> {
    (manifest.layers.into_iter())
        .filter(|layer| {
            layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE && layer.size <= MAX_MANIFEST_BYTES as u64
        })
        .map(|layer| Candidate {
            origin: format!("{origin} layer {}", layer.digest),
            layer,
        })
        .collect()
}

/// cosign's report: the checks on stderr, the verified payloads on stdout.
/// `tlog`: every signature's Rekor bundle was checked against the given Rekor keys.
fn report(image: &ImageRef, verified: &[Verified], annotations: bool, tlog: bool) -> anyhow::Result<()> {
    eprintln!("\nVerification for {image} --");
    eprintln!("The following checks were performed on each of these signatures:");
    if annotations {
        eprintln!("  - The specified annotations were verified.");
    }
    eprintln!("  - The cosign claims were validated");
    if tlog {
        eprintln!("  - Existence of the claims in the transparency log was verified offline");
    }
    eprintln!("  - The signatures were verified against the specified public key");
    for warning in verified.iter().flat_map(|v| &v.warnings) {
        eprintln!("WARNING: {warning}");
    }
    let payloads: Vec<&Value> = verified.iter().map(|v| &v.payload).collect();
    println!(
        "{}",
        serde_json::to_string(&payloads).context("cannot print the payloads")?
    );
    Ok(())
}
