//! Replication (issue 15, docs/replication.md): the registry endpoints it copies from and to.
//!
//! An endpoint is kept in the access directory (`RegistryChanged`) with its credential's secret
//! sealed by the registry's [`SecretBox`](crate::ports::SecretBox): the log holds it sealed only,
//! and no answer ever shows it. An endpoint is added or changed only once it answers as a
//! registry and takes its credential (as Harbor does), so a wrong password is said at once, not at
//! the first replication.

use std::time::Duration;

use crate::domain::access::{AccessCommand, RegistryEntry};
use crate::domain::replication::{normalize_url, RegistryKind, RegistrySpec, SealedCredential};
use crate::domain::Event;
use crate::registry_client::{Access, ClientError, Credentials, Endpoint, RegistryClient};

use super::{AppError, Registry, RequestContext};

/// How long a health check waits for a registry (its ping and its token service together).
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// A credential's secret as a change gives it: new (to seal), or the one recorded (kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Plain(String),
    Sealed(String),
}

/// A credential as a change gives it (Harbor's `basic` type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialDraft {
    pub access_key: String,
    pub secret: Secret,
}

/// A registry endpoint as a change asks for it, before its URL is checked and its secret sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDraft {
    pub name: String,
    pub description: String,
    pub kind: RegistryKind,
    pub url: String,
    pub insecure: bool,
    pub ca_certificate: Option<String>,
    pub credential: Option<CredentialDraft>,
}

impl RegistryDraft {
    /// The draft of what `entry` records (to change some of it).
    pub fn of(entry: &RegistryEntry) -> RegistryDraft {
        let spec = &entry.spec;
        RegistryDraft {
            name: spec.name.clone(),
            description: spec.description.clone(),
            kind: spec.kind,
            url: spec.url.clone(),
            insecure: spec.insecure,
            ca_certificate: spec.ca_certificate.clone(),
            credential: (spec.credential.as_ref()).map(|c| CredentialDraft {
                access_key: c.access_key.clone(),
                secret: Secret::Sealed(c.sealed_secret.clone()),
            }),
        }
    }
}

/// Whether a registry endpoint answers as a registry and takes its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Healthy,
    /// Why not.
    Unhealthy(String),
}

impl Health {
    /// Harbor's `status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy(_) => "unhealthy",
        }
    }
}

/// The endpoint a registry spec describes.
pub fn endpoint_of(spec: &RegistrySpec) -> Result<Endpoint, AppError> {
    let mut endpoint = Endpoint::parse(&spec.url).map_err(|e| AppError::Invalid(e.to_string()))?;
    endpoint.insecure = spec.insecure;
    endpoint.ca_pem = spec.ca_certificate.clone();
    Ok(endpoint)
}

impl Registry {
    /// Adds a registry endpoint once it answers with its credential; its id.
    pub async fn add_registry(&self, ctx: &RequestContext, draft: RegistryDraft) -> Result<u64, AppError> {
        let spec = self.checked_spec(0, draft).await?;
        let recorded = (self.change_access(ctx, AccessCommand::CreateRegistry { registry: spec })).await?;
        (recorded.iter())
            .find_map(|r| match &r.envelope.event {
                Event::RegistryChanged { id, .. } => Some(*id),
                _ => None,
            })
            .ok_or_else(|| AppError::Backend("the added registry is missing".into()))
    }

    /// Replaces registry endpoint `id` with `draft`, once it answers with its credential.
    pub async fn change_registry(
        &self,
        ctx: &RequestContext,
        id: u64,
        draft: RegistryDraft,
    ) -> Result<(), AppError> {
        let spec = self.checked_spec(id, draft).await?;
        self.change_access(ctx, AccessCommand::UpdateRegistry { registry: spec })
            .await?;
        Ok(())
    }

    /// Deletes registry endpoint `id`.
    pub async fn delete_registry(&self, ctx: &RequestContext, id: u64) -> Result<(), AppError> {
        self.change_access(ctx, AccessCommand::DeleteRegistry { id })
            .await?;
        Ok(())
    }

    /// The spec `draft` makes (id `id`): its URL normalized, its secret sealed, its health
    /// checked (an unhealthy endpoint is refused, as Harbor does).
    async fn checked_spec(&self, id: u64, draft: RegistryDraft) -> Result<RegistrySpec, AppError> {
        let url = normalize_url(&draft.url).map_err(crate::domain::access::AccessError::from)?;
        let draft = RegistryDraft { url, ..draft };
        if let Health::Unhealthy(why) = self.draft_health(&draft).await? {
            return Err(AppError::Invalid(format!("the registry is unhealthy: {why}")));
        }
        let credential = match draft.credential {
            None => None,
            Some(CredentialDraft { access_key, secret }) => {
                let sealed_secret = match secret {
                    Secret::Sealed(sealed) => sealed,
                    Secret::Plain(plain) if plain.is_empty() => String::new(),
                    Secret::Plain(plain) => {
                        (self.secrets.seal(&plain).await).map_err(|e| AppError::Invalid(e.to_string()))?
                    }
                };
                (!access_key.is_empty() || !sealed_secret.is_empty()).then_some(SealedCredential {
                    access_key,
                    sealed_secret,
                })
            }
        };
        Ok(RegistrySpec {
            id,
            name: draft.name.trim().to_string(),
            description: draft.description,
            kind: draft.kind,
            url: draft.url,
            insecure: draft.insecure,
            ca_certificate: draft.ca_certificate.filter(|pem| !pem.trim().is_empty()),
            credential,
        })
    }

    /// Whether the endpoint `draft` describes answers with its credential.
    pub async fn draft_health(&self, draft: &RegistryDraft) -> Result<Health, AppError> {
        let spec = RegistrySpec {
            id: 0,
            name: draft.name.clone(),
            description: String::new(),
            kind: draft.kind,
            url: normalize_url(&draft.url).map_err(crate::domain::access::AccessError::from)?,
            insecure: draft.insecure,
            ca_certificate: draft.ca_certificate.clone(),
            credential: None,
        };
        let credentials = match &draft.credential {
            None => None,
            Some(CredentialDraft { access_key, secret }) => {
                let password = match secret {
                    Secret::Plain(plain) => plain.clone(),
                    Secret::Sealed(sealed) if sealed.is_empty() => String::new(),
                    Secret::Sealed(sealed) => {
                        (self.secrets.open(sealed).await).map_err(|e| AppError::Invalid(e.to_string()))?
                    }
                };
                (!access_key.is_empty()).then(|| Credentials {
                    username: access_key.clone(),
                    password,
                })
            }
        };
        Ok(ping(&spec, credentials).await)
    }

    /// Whether recorded endpoint `entry` answers with its credential.
    pub async fn registry_health(&self, entry: &RegistryEntry) -> Health {
        match self.draft_health(&RegistryDraft::of(entry)).await {
            Ok(health) => health,
            Err(e) => Health::Unhealthy(e.to_string()),
        }
    }

    /// The credential of recorded endpoint `spec`, its secret opened.
    pub async fn registry_credentials(&self, spec: &RegistrySpec) -> Result<Option<Credentials>, AppError> {
        let Some(credential) = &spec.credential else {
            return Ok(None);
        };
        let password = if credential.sealed_secret.is_empty() {
            String::new()
        } else {
            (self.secrets.open(&credential.sealed_secret).await)
                .map_err(|e| AppError::Backend(e.to_string()))?
        };
        Ok(Some(Credentials {
            username: credential.access_key.clone(),
            password,
        }))
    }
}

/// Pings the registry `spec` describes with `credentials`, within [`PING_TIMEOUT`].
async fn ping(spec: &RegistrySpec, credentials: Option<Credentials>) -> Health {
    let endpoint = match endpoint_of(spec) {
        Ok(endpoint) => endpoint,
        Err(e) => return Health::Unhealthy(e.to_string()),
    };
    let client = match RegistryClient::at(&endpoint, "", credentials, Access::Pull) {
        Ok(client) => client,
        Err(e) => return Health::Unhealthy(e.to_string()),
    };
    match tokio::time::timeout(PING_TIMEOUT, client.ping()).await {
        Ok(Ok(())) => Health::Healthy,
        Ok(Err(ClientError::Unreachable { target, source })) => Health::Unhealthy(format!(
            "cannot reach {target} at {}: {}",
            spec.url,
            root_cause(&source)
        )),
        Ok(Err(e)) => Health::Unhealthy(e.to_string()),
        Err(_) => Health::Unhealthy(format!(
            "{} did not answer within {} s",
            spec.url,
            PING_TIMEOUT.as_secs()
        )),
    }
}

/// The innermost cause of an error (a refused connection, a certificate not trusted).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
