//! Access-control use cases: the directory (the fold of the `access` stream, kept caught up in
//! memory: each call reads only the events after the version it holds), commands on it, the
//! first-start bootstrap, credential checks, and the token service's key ring.

use std::sync::{Arc, Mutex, RwLock};

use crate::auth::{self, KeyRing, SigningKey};
use crate::domain::access::{
    AccessCommand, Directory, Principal, ProjectName, RobotName, Username, DEFAULT_PROJECT, ROBOT_PREFIX,
};
use crate::domain::{EventEnvelope, RecordedEvent, StreamId};
use crate::ports::{KeyStore, LogError, MemoryKeyStore};

use super::credential_cache::CredentialCache;
use super::login_guard::{HashTurn, LoginGuard, LoginLimits};
use super::{AppError, Registry, RequestContext};

/// Events read per call while catching the directory up.
const CATCH_UP_PAGE: usize = 1_000;
/// How stale the directory may be when a request reads it: changes made through another process
/// (another Lambda instance, `berth admin` on AWS storage) apply within this long; changes made
/// through this process apply at once. One consistent read per second instead of one per request.
pub const DIRECTORY_FRESHNESS: std::time::Duration = std::time::Duration::from_secs(1);
/// The system admin created on first start.
pub const ADMIN_USERNAME: &str = "admin";

/// The process's copy of access-control state.
pub(super) struct AccessState {
    directory: RwLock<Arc<Directory>>,
    /// When the directory was last caught up with the log (`None`: must be, before the next read).
    checked: Mutex<Option<std::time::Instant>>,
    /// Credentials verified recently.
    credentials: Mutex<CredentialCache>,
    /// Hashing turns and failure counts.
    login: Arc<LoginGuard>,
    keys: RwLock<Option<Arc<KeyRing>>>,
    key_store: Arc<dyn KeyStore>,
    pub(super) auto_create_projects: bool,
}

impl AccessState {
    pub(super) fn new(key_store: Arc<dyn KeyStore>, auto_create_projects: bool) -> AccessState {
        AccessState {
            directory: RwLock::new(Arc::new(Directory::default())),
            checked: Mutex::new(None),
            credentials: Mutex::new(CredentialCache::new()),
            login: Arc::new(LoginGuard::new(LoginLimits::default())),
            keys: RwLock::new(None),
            key_store,
            auto_create_projects,
        }
    }

    pub(super) fn in_memory() -> AccessState {
        AccessState::new(Arc::new(MemoryKeyStore::default()), false)
    }
}

/// What the first start did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bootstrap {
    /// The admin's password, when Berth generated it (shown once, never stored in clear).
    pub generated_admin_password: Option<String>,
    pub created_admin: bool,
    pub created_default_project: bool,
}

pub(super) fn lock_failed<E: std::fmt::Display>(e: E) -> AppError {
    AppError::Backend(format!("access state lock poisoned: {e}"))
}

impl Registry {
    /// Uses `store` for the token service's signing keys.
    pub fn with_key_store(mut self, store: Arc<dyn KeyStore>) -> Registry {
        let mut state = AccessState::new(store, self.access.auto_create_projects);
        state.login = self.access.login.clone();
        self.access = Arc::new(state);
        self
    }

    /// Whether a push to a project that does not exist creates it (operator setting; off by default).
    pub fn with_auto_create_projects(mut self, on: bool) -> Registry {
        let mut state = AccessState::new(self.access.key_store.clone(), on);
        state.login = self.access.login.clone();
        self.access = Arc::new(state);
        self
    }

    /// Bounds password checks (hashing turns, queue, failure throttle) as `limits` say.
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Registry {
        let mut state = AccessState::new(self.access.key_store.clone(), self.access.auto_create_projects);
        state.login = Arc::new(LoginGuard::new(limits));
        self.access = Arc::new(state);
        self
    }

    pub fn auto_create_projects(&self) -> bool {
        self.access.auto_create_projects
    }

    /// The directory, caught up with the log at most [`DIRECTORY_FRESHNESS`] ago (and after every
    /// change this process made).
    pub async fn directory(&self) -> Result<Arc<Directory>, AppError> {
        let fresh = (*self.access.checked.lock().map_err(lock_failed)?)
            .is_some_and(|at| at.elapsed() < DIRECTORY_FRESHNESS);
        if fresh {
            return Ok(self.access.directory.read().map_err(lock_failed)?.clone());
        }
        self.current_directory().await
    }

    /// The directory with every access event appended so far (one consistent read).
    pub async fn current_directory(&self) -> Result<Arc<Directory>, AppError> {
        let started = std::time::Instant::now();
        let mut current = self.access.directory.read().map_err(lock_failed)?.clone();
        let stream = StreamId::access();
        loop {
            let events = self
                .log
                .read_stream(&stream, current.version, CATCH_UP_PAGE)
                .await?;
            if events.is_empty() {
                break;
            }
            let mut next = (*current).clone();
            for event in &events {
                next.apply(event);
            }
            current = Arc::new(next);
            if events.len() < CATCH_UP_PAGE {
                break;
            }
        }
        let mut shared = self.access.directory.write().map_err(lock_failed)?;
        if shared.version < current.version {
            *shared = current.clone();
        }
        *self.access.checked.lock().map_err(lock_failed)? = Some(started);
        Ok(current)
    }

    /// Decides `command` on the current directory and appends its events (retrying on conflict).
    pub async fn change_access(
        &self,
        ctx: &RequestContext,
        command: AccessCommand,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        let stream = StreamId::access();
        for attempt in Registry::attempts() {
            let directory = self.current_directory().await?;
            let events = directory.decide(command.clone())?;
            let now = self.clock.now();
            let envelopes = (events.into_iter())
                .map(|event| EventEnvelope {
                    id: uuid::Uuid::now_v7().to_string(),
                    time: now,
                    principal: ctx.principal.name().to_string(),
                    event,
                })
                .collect();
            match self.log.append(&stream, directory.version, envelopes).await {
                Ok(recorded) => {
                    // The next read catches up with this change.
                    *self.access.checked.lock().map_err(lock_failed)? = None;
                    return Ok(recorded);
                }
                Err(LogError::Conflict { .. }) => {
                    let pause = u64::from(attempt.min(8));
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contention)
    }

    /// On first start: the system admin (`admin`, with `admin_password`, or a generated one
    /// returned once) and the public `library` project. Idempotent, and safe when several
    /// processes start at once.
    pub async fn bootstrap(&self, admin_password: Option<&str>) -> Result<Bootstrap, AppError> {
        let system = RequestContext::as_principal(Principal::system());
        let mut done = Bootstrap::default();
        if !self.current_directory().await?.has_admin() {
            let generated = match admin_password {
                Some(_) => None,
                None => Some(auth::generate_secret().map_err(|e| AppError::Backend(e.to_string()))?),
            };
            let password = admin_password.or(generated.as_deref()).unwrap_or_default();
            let command = AccessCommand::CreateUser {
                username: Username::parse(ADMIN_USERNAME).map_err(|e| AppError::Backend(e.to_string()))?,
                password_hash: hash(password).await?,
                admin: true,
            };
            match self.change_access(&system, command).await {
                Ok(_) => {
                    done.created_admin = true;
                    done.generated_admin_password = generated;
                }
                // Another process bootstrapped first.
                Err(AppError::Access(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let library = ProjectName::parse(DEFAULT_PROJECT).map_err(|e| AppError::Backend(e.to_string()))?;
        if self.current_directory().await?.project(&library).is_none() {
            let command = AccessCommand::CreateProject {
                name: library,
                public: true,
                quota: None,
                owner: None,
                metadata: Default::default(),
            };
            match self.change_access(&system, command).await {
                Ok(_) => done.created_default_project = true,
                Err(AppError::Access(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// The principal `username`/`secret` identify (a user's password or a robot's secret), or
    /// `None`. Disabled or expired robots are refused here too. A credential verified in the last
    /// minute is answered from memory; otherwise the check waits for a hashing turn and may be
    /// refused with [`AppError::Throttled`] (see [`super::login_guard`]).
    pub async fn authenticate(&self, username: &str, secret: &str) -> Result<Option<Principal>, AppError> {
        let directory = self.directory().await?;
        let now = self.clock.now();
        let known = if username.starts_with(ROBOT_PREFIX) {
            let Ok(name) = RobotName::parse(username) else {
                return Ok(None);
            };
            (directory.robot(&name))
                .filter(|robot| robot.active(now))
                .map(|robot| (Principal::Robot(name), robot.secret_hash.clone()))
        } else {
            let Ok(name) = Username::parse(username) else {
                return Ok(None);
            };
            (directory.user(&name)).map(|user| (Principal::User(name), user.password_hash.clone()))
        };
        let started = std::time::Instant::now();
        if let Some((principal, stored_hash)) = &known {
            let cache = self.access.credentials.lock().map_err(lock_failed)?;
            if cache.holds(username, secret, principal, stored_hash, started) {
                return Ok(Some(principal.clone()));
            }
        }
        let login = &self.access.login;
        let turn = login.turn(username).await?;
        let Some((principal, stored_hash)) = known else {
            refuse_in_constant_time(secret, turn).await?;
            login.failed(username)?;
            return Ok(None);
        };
        let valid = check_in_turn(secret, stored_hash.clone(), turn).await?;
        if !valid {
            login.failed(username)?;
            return Ok(None);
        }
        login.succeeded(username)?;
        let mut cache = self.access.credentials.lock().map_err(lock_failed)?;
        cache.remember(username, secret, principal.clone(), stored_hash, started);
        Ok(Some(principal))
    }

    /// The token service's keys, creating the first one if the store has none.
    pub async fn token_keys(&self) -> Result<Arc<KeyRing>, AppError> {
        if let Some(ring) = self.access.keys.read().map_err(lock_failed)?.clone() {
            return Ok(ring);
        }
        let ring = self.load_token_keys(false).await?;
        *self.access.keys.write().map_err(lock_failed)? = Some(ring.clone());
        Ok(ring)
    }

    /// Adds a new signing key (older keys keep verifying): `berth admin rotate-token-key`.
    pub async fn rotate_token_key(&self) -> Result<Arc<KeyRing>, AppError> {
        let ring = self.load_token_keys(true).await?;
        *self.access.keys.write().map_err(lock_failed)? = Some(ring.clone());
        Ok(ring)
    }

    /// Rereads the keys (another instance may have rotated them): the token check calls it when a
    /// token names a key this process does not know.
    pub async fn reload_token_keys(&self) -> Result<Arc<KeyRing>, AppError> {
        let ring = self.load_token_keys(false).await?;
        *self.access.keys.write().map_err(lock_failed)? = Some(ring.clone());
        Ok(ring)
    }

    async fn load_token_keys(&self, add_one: bool) -> Result<Arc<KeyRing>, AppError> {
        let store = &self.access.key_store;
        let backend = |e: &dyn std::fmt::Display| AppError::Backend(e.to_string());
        for _ in Registry::attempts() {
            let pems = store.load().await.map_err(|e| backend(&e))?;
            if pems.is_empty() || add_one {
                let key = SigningKey::generate().map_err(|e| backend(&e))?;
                let pem = key.to_pkcs8_pem().map_err(|e| backend(&e))?;
                if !store
                    .add(pems.len(), pem.to_string())
                    .await
                    .map_err(|e| backend(&e))?
                {
                    continue;
                }
                if add_one {
                    let mut keys = parse_keys(&pems)?;
                    keys.push(key);
                    return Ok(Arc::new(KeyRing::new(keys)));
                }
                continue;
            }
            return Ok(Arc::new(KeyRing::new(parse_keys(&pems)?)));
        }
        Err(AppError::Contention)
    }
}

/// Spends what checking a real hash costs before refusing an unknown name, so the answer's timing
/// does not tell which usernames and robots exist.
async fn refuse_in_constant_time(secret: &str, turn: HashTurn) -> Result<(), AppError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = match DUMMY.get() {
        Some(dummy) => dummy.clone(),
        None => {
            let made = hash("berth-dummy-credential").await?;
            DUMMY.get_or_init(|| made).clone()
        }
    };
    check_in_turn(secret, dummy, turn).await?;
    Ok(())
}

/// Whether `secret` matches `stored_hash`, checked off the async runtime in `turn`'s memory; the
/// turn ends when the check does.
async fn check_in_turn(secret: &str, stored_hash: String, mut turn: HashTurn) -> Result<bool, AppError> {
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || {
        let valid = auth::verify_secret_in(&secret, &stored_hash, turn.memory());
        drop(turn);
        valid
    })
    .await
    .map_err(|e| AppError::Backend(e.to_string()))
}

fn parse_keys(pems: &[String]) -> Result<Vec<SigningKey>, AppError> {
    (pems.iter())
        .map(|pem| {
            SigningKey::from_pkcs8_pem(pem).map_err(|e| AppError::Backend(format!("stored token key: {e}")))
        })
        .collect()
}

/// Hashes a password or secret off the async runtime (argon2 takes tens of milliseconds).
pub async fn hash(secret: &str) -> Result<String, AppError> {
    let secret = secret.to_string();
    tokio::task::spawn_blocking(move || auth::hash_secret(&secret))
        .await
        .map_err(|e| AppError::Backend(e.to_string()))?
        .map_err(|e| AppError::Backend(e.to_string()))
}
