//! A project's content-trust configuration (`/projects/{p}/content-trust`, Berth's own): which
//! signatures pulls require, and the cosign keys, Rekor keys, Notation trust stores and trust policy
//! a signature must verify against to count. Harbor's `enable_content_trust` and
//! `enable_content_trust_cosign` metadata set the `required` flags too.
//!
//! Changing it re-verifies the project's signatures; verdicts reached under an earlier
//! configuration are never used.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::app::RequestContext;
use crate::domain::access::{AccessCommand, ContentTrust, Project};
use crate::trust::{cosign, notation};

use super::caller::{Caller, Sent, SignedIn};
use super::projects;
use super::{ok, ApiError};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CosignJson {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    public_keys: Vec<String>,
    #[serde(default)]
    rekor_public_keys: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotationJson {
    #[serde(default)]
    required: bool,
    #[serde(default)]
    trust_stores: BTreeMap<String, String>,
    #[serde(default)]
    trust_policy: Option<Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContentTrustJson {
    #[serde(default)]
    cosign: CosignJson,
    #[serde(default)]
    notation: NotationJson,
    /// The configuration's revision (read only: accepted and ignored, so a configuration read
    /// can be edited and sent back).
    #[serde(default)]
    revision: u64,
    /// What the change's re-verification came to (in the answer to a PUT only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reverification: Option<ReverificationJson>,
}

/// `verified`: signatures re-verified by the change; `complete`: false when the re-verification
/// budget ran out first (pulls verify the rest; the accessories API lists them `pending`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReverificationJson {
    verified: usize,
    complete: bool,
}

fn to_json(project: &Project) -> ContentTrustJson {
    let trust = &project.trust;
    ContentTrustJson {
        cosign: CosignJson {
            required: trust.require_cosign,
            public_keys: trust.cosign_keys.clone(),
            rekor_public_keys: trust.rekor_keys.clone(),
        },
        notation: NotationJson {
            required: trust.require_notation,
            trust_stores: trust.notation_trust_stores.clone(),
            trust_policy: (trust.notation_trust_policy.as_deref()).and_then(|p| serde_json::from_str(p).ok()),
        },
        revision: project.trust_revision,
        reverification: None,
    }
}

/// Checks every key, certificate and the policy; the configuration as the domain keeps it.
fn validated(request: ContentTrustJson) -> Result<ContentTrust, ApiError> {
    let bad = |what: String| ApiError::bad_request(what);
    for (i, pem) in request.cosign.public_keys.iter().enumerate() {
        cosign::PublicKey::from_pem(pem)
            .map_err(|e| bad(format!("cosign.public_keys[{i}] is not a public key: {e}")))?;
    }
    for (i, pem) in request.cosign.rekor_public_keys.iter().enumerate() {
        cosign::PublicKey::from_pem(pem)
            .map_err(|e| bad(format!("cosign.rekor_public_keys[{i}] is not a public key: {e}")))?;
    }
    for (name, pem) in &request.notation.trust_stores {
        let store = notation::TrustStore::from_pem(name, pem)
            .map_err(|e| bad(format!("notation.trust_stores[{name:?}] is not usable: {e}")))?;
        if store.is_empty() {
            return Err(bad(format!(
                "notation.trust_stores[{name:?}] holds no certificate"
            )));
        }
    }
    let policy = match &request.notation.trust_policy {
        None | Some(Value::Null) => None,
        Some(value) => {
            let text = value.to_string();
            notation::TrustPolicy::from_json(&text)
                .map_err(|e| bad(format!("notation.trust_policy is not a valid trust policy: {e}")))?;
            Some(text)
        }
    };
    Ok(ContentTrust {
        require_cosign: request.cosign.required,
        require_notation: request.notation.required,
        cosign_keys: request.cosign.public_keys,
        rekor_keys: request.cosign.rekor_public_keys,
        notation_trust_stores: request.notation.trust_stores,
        notation_trust_policy: policy,
    })
}

/// `GET /projects/{p}/content-trust`: for whoever may see the project.
pub(super) async fn get(Path(key): Path<String>, caller: Caller) -> Result<Response, ApiError> {
    let project = projects::visible(&caller.directory, &caller.principal, &key)?;
    ok(&to_json(project))
}

/// `PUT /projects/{p}/content-trust`: project admins and system admins.
pub(super) async fn put(
    Path(key): Path<String>,
    Sent(caller, request): Sent<SignedIn, ContentTrustJson>,
) -> Result<Response, ApiError> {
    let project = projects::managed(&caller.directory, &caller.principal, &key)?;
    let name = project.name.clone();
    let trust = validated(request)?;
    caller
        .change(AccessCommand::ConfigureTrust {
            name: name.clone(),
            trust,
        })
        .await?;
    configured(&caller, &name.to_string()).await
}

/// Re-verifies the project's signatures under the configuration just changed; answers it.
pub(super) async fn configured<A>(caller: &Caller<A>, project: &str) -> Result<Response, ApiError> {
    let ctx = RequestContext::as_principal(caller.principal.clone());
    let done = caller.registry().reverify_project(&ctx, project).await?;
    let directory = caller.reread_directory().await?;
    let project = projects::find(&directory, project)
        .ok_or_else(|| ApiError::not_found(format!("project {project} not found")))?;
    let mut answer = to_json(project);
    answer.reverification = Some(ReverificationJson {
        verified: done.verified,
        complete: done.complete,
    });
    ok(&answer)
}
