//! Who may do what on `/v2/`: Docker token authentication (distribution "Token Authentication
//! Specification") with Basic credentials accepted too.
//!
//! A request without credentials that needs some gets 401 with
//! `Www-Authenticate: Bearer realm="<base>/service/token",service="<service>",scope="repository:<repo>:<actions>"`.
//! A token is honoured only for what its `access` names *and* what its subject may still do now
//! (a removed member or a disabled robot loses access before its tokens expire). A caller who is
//! known but may not do the thing gets 403 `DENIED`; a private project's existence is never
//! revealed: an unknown project and a private one answer the same.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode, Uri};

use crate::app::{Registry, RequestContext};
use crate::auth::{self, Claims};
use crate::domain::access::ROBOT_PREFIX;
use crate::domain::access::{AccessCommand, Action, Directory, Principal, ProjectName, RobotName, Username};
use crate::domain::RepoName;
use crate::oci::challenge::{BearerError, Challenge, WWW_AUTHENTICATE};
use crate::oci::route::Endpoint;
use crate::oci::OciError;

/// How a deployment names itself in tokens and challenges.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The token `aud` and the challenge's `service` (`BERTH_TOKEN_SERVICE`, default `berth`).
    pub service: String,
    /// The base URL clients reach Berth at (`BERTH_PUBLIC_URL`); by default taken from each
    /// request's `Host` and `X-Forwarded-Proto`.
    pub public_url: Option<String>,
    /// Lifetime of issued tokens (`BERTH_TOKEN_TTL_SECS`, default 300).
    pub token_ttl: Duration,
}

/// Tokens live this long unless configured (Harbor's default is 30 minutes; shorter limits what a
/// leaked token can do).
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 300;
/// The `service` tokens name unless configured.
pub const DEFAULT_TOKEN_SERVICE: &str = "berth";
/// The token issuer (`iss`).
pub const ISSUER: &str = "berth-token-service";

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            service: DEFAULT_TOKEN_SERVICE.to_string(),
            public_url: None,
            token_ttl: Duration::from_secs(DEFAULT_TOKEN_TTL_SECS),
        }
    }
}

impl AuthConfig {
    /// From `BERTH_TOKEN_SERVICE`, `BERTH_PUBLIC_URL` and `BERTH_TOKEN_TTL_SECS`.
    pub fn from_env() -> Result<AuthConfig, String> {
        let mut config = AuthConfig::default();
        if let Ok(service) = std::env::var("BERTH_TOKEN_SERVICE") {
            config.service = service;
        }
        config.public_url = std::env::var("BERTH_PUBLIC_URL")
            .ok()
            .map(|u| u.trim_end_matches('/').to_string());
        if let Ok(ttl) = std::env::var("BERTH_TOKEN_TTL_SECS") {
            let secs: u64 = ttl
                .parse()
                .map_err(|_| format!("BERTH_TOKEN_TTL_SECS={ttl:?} is not a number of seconds"))?;
            config.token_ttl = Duration::from_secs(secs.max(1));
        }
        Ok(config)
    }
}

/// Credentials a request carries.
pub enum Credentials {
    None,
    Basic { username: String, secret: String },
    Bearer(String),
}

/// Reads the `Authorization` header; a malformed one is refused.
pub fn credentials(headers: &HeaderMap) -> Result<Credentials, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text")?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or("the Authorization header has no scheme")?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        use base64ct::Encoding as _;
        let decoded = base64ct::Base64::decode_vec(rest).map_err(|_| "Basic credentials are not base64")?;
        let text = String::from_utf8(decoded).map_err(|_| "Basic credentials are not UTF-8")?;
        let (username, secret) = text.split_once(':').ok_or("Basic credentials have no ':'")?;
        Ok(Credentials::Basic {
            username: username.to_string(),
            secret: secret.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(rest.to_string()))
    } else {
        Err("the Authorization scheme must be Basic or Bearer")
    }
}

/// The principal a token names.
pub fn principal_of(claims: &Claims) -> Principal {
    if claims.sub.is_empty() {
        return Principal::Anonymous;
    }
    if claims.sub.starts_with(ROBOT_PREFIX) {
        if let Ok(robot) = RobotName::parse(&claims.sub) {
            return Principal::Robot(robot);
        }
    } else if let Ok(user) = Username::parse(&claims.sub) {
        return Principal::User(user);
    }
    Principal::Anonymous
}

/// Checks a token against the current keys (rereading them once if it names a key this process
/// has not seen: another instance rotated).
pub async fn verify_token(registry: &Registry, config: &AuthConfig, token: &str) -> Result<Claims, OciError> {
    let now = chrono::Utc::now().timestamp();
    let ring = registry.token_keys().await?;
    let result = match auth::verify(&ring, token, &config.service, now) {
        Err(auth::AuthError::UnknownKey) => {
            let ring = registry.reload_token_keys().await?;
            auth::verify(&ring, token, &config.service, now)
        }
        other => other,
    };
    result.map_err(|e| OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", format!("{e}")))
}

/// Who is asking and, for a token, what it grants (`None`: Basic or anonymous, no narrowing).
pub struct Caller {
    pub principal: Principal,
    pub token: Option<Claims>,
}

/// Authenticates the request's credentials; bad ones get 401.
pub async fn authenticate(
    registry: &Registry,
    config: &AuthConfig,
    headers: &HeaderMap,
) -> Result<Caller, OciError> {
    let unauthorized = |message: &str| OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
    match credentials(headers).map_err(unauthorized)? {
        Credentials::None => Ok(Caller {
            principal: Principal::Anonymous,
            token: None,
        }),
        Credentials::Basic { username, secret } => match registry.authenticate(&username, &secret).await? {
            Some(principal) => Ok(Caller {
                principal,
                token: None,
            }),
            None => Err(unauthorized(
                "invalid username or password (or the robot account is disabled or expired)",
            )),
        },
        Credentials::Bearer(token) => {
            let claims = verify_token(registry, config, &token).await?;
            Ok(Caller {
                principal: principal_of(&claims),
                token: Some(claims),
            })
        }
    }
}

/// One thing a request needs.
struct Need {
    repo: String,
    action: Action,
}

fn needs(endpoint: &Endpoint) -> Vec<Need> {
    use Endpoint as E;
    let need = |repo: &str, action| Need {
        repo: repo.to_string(),
        action,
    };
    match endpoint {
        E::Base | E::Catalog => vec![],
        E::BlobGet { name, .. }
        | E::ManifestGet { name, .. }
        | E::TagsList { name }
        | E::Referrers { name, .. } => vec![need(name, Action::Pull)],
        E::UploadStart { name }
        | E::UploadPatch { name, .. }
        | E::UploadFinish { name, .. }
        | E::UploadStatus { name, .. }
        | E::UploadCancel { name, .. }
        | E::ManifestPut { name, .. } => vec![need(name, Action::Pull), need(name, Action::Push)],
        E::ManifestDelete { name, .. } | E::BlobDelete { name, .. } => vec![need(name, Action::Delete)],
    }
}

/// The project of a repository name: its first component.
pub fn project_of(repo: &str) -> Option<ProjectName> {
    ProjectName::parse(repo.split('/').next().unwrap_or(repo)).ok()
}

/// What `caller` may do to `repo` now: the directory's answer, narrowed by the token if any.
pub fn allowed(directory: &Directory, caller: &Caller, repo: &str) -> BTreeSet<Action> {
    let Some(project) = project_of(repo) else {
        return BTreeSet::new();
    };
    let mut actions = directory.repository_actions(&caller.principal, &project, chrono::Utc::now());
    if let Some(claims) = &caller.token {
        let granted: BTreeSet<Action> = (claims.access.iter())
            .filter(|a| a.resource_type == "repository" && a.name == repo)
            .flat_map(|a| a.actions.iter().flat_map(|s| Action::parse_scope(s)))
            .collect();
        actions.retain(|a| granted.contains(a));
    }
    actions
}

/// Authenticates and authorizes a `/v2/` request; the context carries the principal. May rewrite
/// the request (a mount from a repository the caller may not read becomes a plain upload, as the
/// spec's fallback says).
pub async fn authorize(
    registry: &Registry,
    config: &AuthConfig,
    endpoint: &Endpoint,
    request: &mut Request<Body>,
) -> Result<RequestContext, OciError> {
    let challenge = Challenge::new(config, request.headers());
    let needs = needs(endpoint);
    let mount_from = mount_source(endpoint, request);
    let scopes = scopes(&needs, mount_from.as_deref());
    let unauthorized = |message: &str, scopes: &[String], error: Option<BearerError>| {
        OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
            .with_header(WWW_AUTHENTICATE, challenge.header(scopes, error))
    };
    let headers = request.headers().clone();
    let caller = match authenticate(registry, config, &headers).await {
        Ok(caller) => caller,
        // Every 401 tells the client where to get a token (RFC 6750 §3), a refused token why.
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            let bearer = matches!(credentials(&headers), Ok(Credentials::Bearer(_)));
            let error = bearer.then_some(BearerError::InvalidToken);
            return Err(e.with_header(WWW_AUTHENTICATE, challenge.header(&scopes, error)));
        }
        Err(e) => return Err(e),
    };
    let anonymous = caller.principal == Principal::Anonymous;
    if matches!(endpoint, Endpoint::Base) && anonymous && caller.token.is_none() {
        return Err(unauthorized("authentication required", &[], None));
    }
    // The catalog lists what the caller may pull, for signed-in callers only (as Harbor's).
    if matches!(endpoint, Endpoint::Catalog) && anonymous {
        return Err(unauthorized(
            "authentication required",
            &["registry:catalog:*".to_string()],
            None,
        ));
    }
    if let Some(need) = needs.first() {
        // A malformed name is the same 400 for everyone (its syntax is no secret).
        super::http::repo(&need.repo)?;
    }
    if needs.is_empty() && anonymous {
        return Ok(RequestContext::as_principal(caller.principal));
    }
    let mut directory = registry.directory().await?;
    if let Some(refusal) = stale(&directory, &caller) {
        return Err(unauthorized(
            refusal,
            &scopes,
            caller.token.as_ref().map(|_| BearerError::InvalidToken),
        ));
    }
    let Some(need) = needs.first() else {
        return Ok(RequestContext::as_principal(caller.principal));
    };
    let repo = need.repo.clone();
    let wanted: BTreeSet<Action> = needs.iter().map(|n| n.action).collect();
    let mut have = allowed(&directory, &caller, &repo);
    if !wanted.is_subset(&have) {
        if let Some(created) = auto_create(registry, &directory, &caller, &repo, &wanted).await? {
            directory = created;
            have = allowed(&directory, &caller, &repo);
        }
    }
    if !wanted.is_subset(&have) {
        let scope_actions: Vec<&str> = wanted.iter().map(|a| a.as_str()).collect();
        let project = project_of(&repo);
        let exists = project.as_ref().is_some_and(|p| directory.project(p).is_some());
        // The referrers API never answers 404 (the spec: a 404 says it is not supported); in a
        // project that does not exist there is simply nothing that refers to the subject.
        if !exists && directory.is_admin(&caller.principal) && matches!(endpoint, Endpoint::Referrers { .. })
        {
            return Ok(RequestContext::as_principal(caller.principal));
        }
        if !exists && directory.is_admin(&caller.principal) {
            let name = project.map_or_else(|| repo.clone(), |p| p.to_string());
            return Err(OciError::new(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                format!(
                    "project {name} does not exist: create it first (POST /api/v2.0/projects or \
                     berth admin create-project {name})"
                ),
            ));
        }
        let could = project
            .as_ref()
            .map(|p| directory.repository_actions(&caller.principal, p, chrono::Utc::now()));
        if anonymous || caller.token.is_some() && could.is_some_and(|c| wanted.is_subset(&c)) {
            // No credentials, or a token that was not asked for this scope: the client asks
            // the token service again, for everything the request can use.
            let error = caller.token.as_ref().map(|_| BearerError::InsufficientScope);
            return Err(unauthorized("authentication required", &scopes, error).with_detail(
                serde_json::json!([{ "Type": "repository", "Name": repo, "Action": scope_actions.join(",") }]),
            ));
        }
        return Err(OciError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            format!(
                "requested access to the resource is denied: {} may not {} {repo}",
                caller.principal.name(),
                scope_actions.join(",")
            ),
        ));
    }
    if mount_from.is_some() {
        drop_unreadable_mount(&directory, &caller, request);
    }
    Ok(RequestContext::as_principal(caller.principal))
}

/// Why a signed-in caller's credentials no longer hold (`None`: they do): the account is gone,
/// disabled or expired, or the token was issued before its password or secret last changed.
fn stale(directory: &Directory, caller: &Caller) -> Option<&'static str> {
    if caller.principal == Principal::Anonymous {
        return None;
    }
    if !directory.active(&caller.principal, chrono::Utc::now()) {
        return Some("the account no longer exists, or is disabled or expired");
    }
    let token = caller.token.as_ref()?;
    // Older than the current credentials: revoked. Newer: this process's directory is behind
    // another instance's (it catches up within a second), and only the token service signs.
    if token.credential_version.unwrap_or(0) < directory.credential_version(&caller.principal).unwrap_or(0) {
        return Some("the token was issued before the account's password or secret changed: get a new one");
    }
    None
}

/// The repository a mount request (`POST …/blobs/uploads/?mount=&from=`) names as its source, if
/// it is a well-formed name other than the target.
fn mount_source(endpoint: &Endpoint, request: &Request<Body>) -> Option<String> {
    let Endpoint::UploadStart { name } = endpoint else {
        return None;
    };
    let q = super::http::query(request.uri());
    q.get("mount")?;
    let from = q.get("from")?;
    (from != name && RepoName::in_project(from).is_ok()).then(|| from.clone())
}

/// The scopes a challenge names for what the request needs: the target repository's actions, and
/// for a mount `pull` on the source too (as distribution asks), so one token serves the mount.
fn scopes(needs: &[Need], mount_from: Option<&str>) -> Vec<String> {
    let Some(first) = needs.first() else {
        return vec![];
    };
    let actions: BTreeSet<Action> = needs.iter().map(|n| n.action).collect();
    let actions: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    let mut scopes = vec![format!("repository:{}:{}", first.repo, actions.join(","))];
    if let Some(from) = mount_from {
        scopes.push(format!("repository:{from}:pull"));
    }
    scopes
}

/// Creates the project of `repo` for a user pushing to it, when the operator allows it.
async fn auto_create(
    registry: &Registry,
    directory: &Directory,
    caller: &Caller,
    repo: &str,
    wanted: &BTreeSet<Action>,
) -> Result<Option<std::sync::Arc<Directory>>, OciError> {
    let Principal::User(user) = &caller.principal else {
        return Ok(None);
    };
    let Some(project) = project_of(repo) else {
        return Ok(None);
    };
    if !registry.auto_create_projects()
        || !wanted.contains(&Action::Push)
        || directory.project(&project).is_some()
    {
        return Ok(None);
    }
    let ctx = RequestContext::as_principal(caller.principal.clone());
    let command = AccessCommand::CreateProject {
        name: project,
        public: false,
        quota: None,
        owner: Some(user.clone()),
        metadata: Default::default(),
    };
    match registry.change_access(&ctx, command).await {
        Ok(_) | Err(crate::app::AppError::Access(_)) => Ok(Some(registry.directory().await?)),
        Err(e) => Err(e.into()),
    }
}

/// `?mount=&from=` from a repository the caller may not pull: dropped, so the request opens a plain
/// upload session (the spec's answer when a mount cannot happen) and reveals nothing.
fn drop_unreadable_mount(directory: &Directory, caller: &Caller, request: &mut Request<Body>) {
    let q = super::http::query(request.uri());
    let Some(from) = q.get("from") else {
        return;
    };
    if allowed(directory, caller, from).contains(&Action::Pull) {
        return;
    }
    let kept: Vec<(&String, &String)> = (q.iter())
        .filter(|(k, _)| k.as_str() != "mount" && k.as_str() != "from")
        .collect();
    let kept = serde_urlencoded::to_string(kept).unwrap_or_default();
    let path = request.uri().path().to_string();
    let uri = if kept.is_empty() {
        path
    } else {
        format!("{path}?{kept}")
    };
    if let Ok(uri) = uri.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
}
