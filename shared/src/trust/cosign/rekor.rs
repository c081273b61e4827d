//! The Rekor bundle cosign attaches to a logged signature ([`super::BUNDLE_ANNOTATION`]): proof,
//! signed by the transparency log, that the signature was entered in the log at `integratedTime`.
//!
//! As sigstore/cosign `pkg/cosign/verify.go` (`VerifyBundle`): the SignedEntryTimestamp is the log's
//! signature over the RFC 8785 canonical JSON of `Payload`; `Payload.body` is the base64 log entry,
//! here a `hashedrekord` v0.0.1 naming the payload's SHA-256, the signature and the public key.

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PublicKey;

#[derive(Deserialize)]
struct Bundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: BundlePayload,
}

/// Declared in key order, so serde_json writes the canonical JSON: keys sorted, no whitespace
/// (the values are a base64 string, integers and a hex string: nothing RFC 8785 escapes differently).
#[derive(Serialize, Deserialize)]
struct BundlePayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    #[serde(rename = "logIndex")]
    log_index: i64,
}

#[derive(Deserialize)]
struct Entry {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    spec: HashedRekord,
}

#[derive(Deserialize)]
struct HashedRekord {
    data: HashedData,
    signature: EntrySignature,
}

#[derive(Deserialize)]
struct HashedData {
    hash: Hash,
}

#[derive(Deserialize)]
struct Hash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct EntrySignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: EntryKey,
}

#[derive(Deserialize)]
struct EntryKey {
    content: String,
}

/// Checks `bundle_json` proves that the log holds this signature: `Err` holds the verdict's reason.
pub(super) fn check_bundle(
    bundle_json: &str,
    payload: &[u8],
    signature: &[u8],
    key: &PublicKey,
    rekor_keys: &[PublicKey],
) -> Result<(), String> {
    let bundle: Bundle =
        serde_json::from_str(bundle_json).map_err(|e| format!("the Rekor bundle is not valid JSON: {e}"))?;
    let canonical = serde_json::to_vec(&bundle.payload).map_err(|e| e.to_string())?;
    let set = Base64::decode_vec(&bundle.signed_entry_timestamp)
        .map_err(|_| "the Rekor bundle's SignedEntryTimestamp is not base64".to_owned())?;
    if !rekor_keys.iter().any(|rekor| rekor.verifies(&canonical, &set)) {
        return Err(
            "the Rekor bundle's SignedEntryTimestamp does not verify with a trusted Rekor key".to_owned(),
        );
    }
    let body =
        Base64::decode_vec(&bundle.payload.body).map_err(|_| "the Rekor entry is not base64".to_owned())?;
    let entry: Entry = serde_json::from_slice(&body)
        .map_err(|e| format!("the Rekor entry is not a hashedrekord entry: {e}"))?;
    if entry.kind != "hashedrekord" || entry.api_version != "0.0.1" {
        return Err(format!(
            "the Rekor entry is a {} {} entry, not a hashedrekord 0.0.1 entry",
            entry.kind, entry.api_version
        ));
    }
    let hash = &entry.spec.data.hash;
    if hash.algorithm != "sha256"
        || !hash
            .value
            .eq_ignore_ascii_case(&hex::encode(Sha256::digest(payload)))
    {
        return Err("the Rekor entry names another payload".to_owned());
    }
    if Base64::decode_vec(&entry.spec.signature.content).ok().as_deref() != Some(signature) {
        return Err("the Rekor entry holds another signature".to_owned());
    }
    let logged_key = Base64::decode_vec(&entry.spec.signature.public_key.content)
        .ok()
        .and_then(|pem| String::from_utf8(pem).ok())
        .and_then(|pem| PublicKey::from_pem(&pem).ok());
    if logged_key.as_ref() != Some(key) {
        return Err("the Rekor entry names another public key".to_owned());
    }
    Ok(())
}
