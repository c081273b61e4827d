//! `GET /service/token` — the token service (distribution "Token Authentication Specification"):
//! Basic credentials (or none, for public pulls) in; a signed ES256 JWT whose `access` is what
//! was asked for narrowed to what the caller may do, out. Wrong credentials get 401.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::app::Registry;
use crate::auth::{self, Claims, ResourceActions, Scope};
use crate::domain::access::{Action, Principal};
use crate::domain::RepoName;
use crate::oci::auth::{authenticate, project_of, AuthConfig, Caller, ISSUER};
use crate::oci::http::finish;
use crate::oci::OciError;

pub async fn handle(
    registry: &Registry,
    config: &AuthConfig,
    request: Request<Body>,
) -> Result<Response, OciError> {
    let caller = authenticate(registry, config, request.headers()).await?;
    if caller.token.is_some() {
        return Err(OciError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "the token service takes Basic credentials or none, not a token",
        ));
    }
    let query = request.uri().query().unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| OciError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", format!("bad query: {e}")))?;
    if let Some((_, service)) = pairs.iter().find(|(k, _)| k == "service") {
        if service != &config.service {
            return Err(OciError::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED",
                format!("this token service serves {:?}, not {service:?}", config.service),
            ));
        }
    }
    let scopes = auth::parse_scopes(
        pairs
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    )
    .map_err(|e| OciError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED", e.to_string()))?;
    let directory = registry.directory().await?;
    let access = scopes
        .iter()
        .filter_map(|scope| grant(registry, &directory, &caller, scope))
        .collect();
    let now = chrono::Utc::now();
    let ttl = i64::try_from(config.token_ttl.as_secs()).unwrap_or(i64::MAX);
    let claims = Claims {
        iss: ISSUER.to_string(),
        sub: match &caller.principal {
            Principal::Anonymous => String::new(),
            other => other.name().to_string(),
        },
        aud: config.service.clone(),
        exp: now.timestamp() + ttl,
        nbf: now.timestamp(),
        iat: now.timestamp(),
        jti: uuid::Uuid::new_v4().to_string(),
        access,
        credential_version: directory.credential_version(&caller.principal),
    };
    let ring = registry.token_keys().await?;
    let token = auth::issue(&ring, &claims).map_err(|e| OciError::internal(&e.to_string()))?;
    let body = json!({
        "token": token,
        "access_token": token,
        "expires_in": ttl,
        "issued_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store");
    finish(builder, Body::from(body.to_string()))
}

/// What the token grants for one requested scope (`None`: nothing).
fn grant(
    registry: &Registry,
    directory: &crate::domain::access::Directory,
    caller: &Caller,
    scope: &Scope,
) -> Option<ResourceActions> {
    let actions: Vec<String> = match scope.resource_type.as_str() {
        "repository" => {
            // Nothing for a name /v2/ would refuse (`pub/../priv/app`, a project alone).
            RepoName::in_project(&scope.name).ok()?;
            let project = project_of(&scope.name)?;
            let mut may = directory.repository_actions(&caller.principal, &project, chrono::Utc::now());
            // A user pushing to a project that does not exist yet creates it (when allowed); the
            // /v2/ check does, so the token must carry what will then be true.
            let creatable = registry.auto_create_projects()
                && matches!(caller.principal, Principal::User(_))
                && directory.project(&project).is_none();
            if creatable {
                may.extend([Action::Pull, Action::Push, Action::Delete]);
            }
            (may.into_iter())
                .filter(|a| scope.asks(a.as_str()) || scope.asks("*"))
                .map(|a| a.as_str().to_string())
                .collect()
        }
        // The catalog lists only what the caller may pull, so any signed-in caller may ask.
        "registry" if scope.name == "catalog" && caller.principal != Principal::Anonymous => {
            vec!["*".to_string()]
        }
        _ => vec![],
    };
    (!actions.is_empty()).then(|| ResourceActions {
        resource_type: scope.resource_type.clone(),
        name: scope.name.clone(),
        actions,
    })
}
