//! The access directory: the fold of the `access` stream, the rules its commands follow, and the
//! authorization decisions made from it. Pure: hashing and clocks are the caller's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::content_trust::ContentTrust;
use super::names::{ProjectName, RobotName, Username};
use super::role::{Action, Role};
use crate::domain::event::{Event, RecordedEvent};
use crate::domain::lifecycle::immutability::{self, ImmutableRule, RuleError, RuleSpec};
use crate::domain::lifecycle::retention::{Policy, PolicyError, PolicySpec};
use crate::domain::lifecycle::schedule::{CronSchedule, GcScheduleSpec, ScheduleError};
use crate::domain::replication::{
    Policy as ReplicationPolicy, PolicyError as ReplicationPolicyError, PolicySpec as ReplicationPolicySpec,
    RegistryError, RegistrySpec,
};

/// The project every registry has from the start (public, as in Harbor).
pub const DEFAULT_PROJECT: &str = "library";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    pub id: u64,
    pub name: ProjectName,
    pub public: bool,
    /// Storage limit in bytes; `None` is unlimited.
    pub quota: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub members: BTreeMap<Username, Member>,
    pub trust: ContentTrust,
    /// Harbor metadata kept as sent (`auto_scan`, `severity`, `retention_id`, ...): Berth does not
    /// act on these; public and content trust have their own fields.
    pub metadata: BTreeMap<String, String>,
    /// The access-stream version of the last trust change: verdicts reached under another revision
    /// are not used.
    pub trust_revision: u64,
    /// Harbor's immutable tag rules, in the order they were added (at most 15).
    pub immutable_rules: Vec<ImmutableRule>,
    /// Harbor's tag retention policy of the project (its id is the `retention_id` metadata).
    #[serde(skip)]
    pub retention: Option<Policy>,
    /// When the retention policy was last set: its schedule counts from then.
    #[serde(skip)]
    pub retention_since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub id: u64,
    pub username: Username,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: u64,
    pub username: Username,
    /// A PHC string (argon2id); never the password.
    #[serde(skip)]
    pub password_hash: String,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The access-stream version that set the current password: tokens name it, and a token
    /// issued for an older one is refused.
    #[serde(skip)]
    pub credential_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Robot {
    pub id: u64,
    pub name: RobotName,
    pub description: String,
    pub actions: BTreeSet<Action>,
    /// `None` never expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub disabled: bool,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The access-stream version that set the current secret (see [`User::credential_version`]).
    #[serde(skip)]
    pub credential_version: u64,
}

impl Robot {
    /// Whether the robot may act at `now`: enabled and not expired.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        !self.disabled && self.expires_at.is_none_or(|t| now < t)
    }
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Principal {
    Anonymous,
    User(Username),
    Robot(RobotName),
}

impl Principal {
    /// The name events and audit logs record.
    pub fn name(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::User(u) => u.as_str(),
            Principal::Robot(r) => r.as_str(),
        }
    }

    /// The bootstrap and CLI principal.
    pub fn system() -> Principal {
        Principal::User(Username::system())
    }
}

impl Username {
    fn system() -> Username {
        Username::parse("system").unwrap_or_else(|_| unreachable!("a valid literal"))
    }
}

/// A change to the directory, already validated at the edge (names parsed, secrets hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessCommand {
    CreateProject {
        name: ProjectName,
        public: bool,
        quota: Option<u64>,
        /// Becomes the project's admin (Harbor: the creator); `None` for the system.
        owner: Option<Username>,
        /// Kept metadata (see [`Project::metadata`]).
        metadata: BTreeMap<String, String>,
    },
    UpdateProject {
        name: ProjectName,
        public: Option<bool>,
        /// `Some(None)` removes the limit.
        quota: Option<Option<u64>>,
        /// Kept metadata to set (other keys stay as they are).
        metadata: BTreeMap<String, String>,
    },
    DeleteProject {
        name: ProjectName,
    },
    /// Replace the project's content-trust configuration (validated at the edge).
    ConfigureTrust {
        name: ProjectName,
        trust: ContentTrust,
    },
    CreateUser {
        username: Username,
        password_hash: String,
        admin: bool,
    },
    ChangePassword {
        username: Username,
        password_hash: String,
    },
    SetAdmin {
        username: Username,
        admin: bool,
    },
    DeleteUser {
        username: Username,
    },
    AddMember {
        project: ProjectName,
        username: Username,
        role: Role,
    },
    ChangeRole {
        project: ProjectName,
        username: Username,
        role: Role,
    },
    RemoveMember {
        project: ProjectName,
        username: Username,
    },
    CreateRobot {
        name: RobotName,
        description: String,
        actions: BTreeSet<Action>,
        expires_at: Option<DateTime<Utc>>,
        secret_hash: String,
    },
    UpdateRobot {
        name: RobotName,
        description: Option<String>,
        actions: Option<BTreeSet<Action>>,
        expires_at: Option<Option<DateTime<Utc>>>,
        disabled: Option<bool>,
    },
    RefreshRobotSecret {
        name: RobotName,
        secret_hash: String,
    },
    DeleteRobot {
        name: RobotName,
    },
    /// Adds an immutable tag rule (its `id` is ignored: the directory gives one).
    AddImmutableRule {
        project: ProjectName,
        rule: RuleSpec,
    },
    /// Replaces the rule `rule.id` names.
    UpdateImmutableRule {
        project: ProjectName,
        rule: RuleSpec,
    },
    DeleteImmutableRule {
        project: ProjectName,
        id: u64,
    },
    /// Gives a project its retention policy (`policy.id` is ignored: the directory gives one).
    CreateRetentionPolicy {
        project: ProjectName,
        policy: PolicySpec,
    },
    /// Replaces the project's retention policy (`policy.id` must be its id).
    UpdateRetentionPolicy {
        project: ProjectName,
        policy: PolicySpec,
    },
    DeleteRetentionPolicy {
        project: ProjectName,
    },
    /// Sets (or, `None`, removes) garbage collection's schedule.
    SetGcSchedule {
        schedule: Option<GcScheduleSpec>,
    },
    /// Adds a registry endpoint (`registry.id` is ignored: the directory gives one).
    CreateRegistry {
        registry: RegistrySpec,
    },
    /// Replaces registry endpoint `registry.id`.
    UpdateRegistry {
        registry: RegistrySpec,
    },
    DeleteRegistry {
        id: u64,
    },
    /// Adds a replication policy (`policy.id` is ignored: the directory gives one).
    CreateReplicationPolicy {
        policy: ReplicationPolicySpec,
    },
    /// Replaces replication policy `policy.id`.
    UpdateReplicationPolicy {
        policy: ReplicationPolicySpec,
    },
    DeleteReplicationPolicy {
        id: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("project {0} already exists")]
    ProjectExists(ProjectName),
    #[error("project {0} does not exist")]
    ProjectUnknown(ProjectName),
    #[error("user {0} already exists")]
    UserExists(Username),
    #[error("user {0} does not exist")]
    UserUnknown(Username),
    #[error("user {username} is already a member of project {project}")]
    MemberExists {
        project: ProjectName,
        username: Username,
    },
    #[error("user {username} is not a member of project {project}")]
    MemberUnknown {
        project: ProjectName,
        username: Username,
    },
    #[error("robot account {0} already exists")]
    RobotExists(RobotName),
    #[error("robot account {0} does not exist")]
    RobotUnknown(RobotName),
    #[error("a robot account needs at least one action")]
    RobotWithoutActions,
    #[error("the last system admin cannot be removed or demoted")]
    LastAdmin,
    #[error("the username {0} is reserved")]
    UsernameReserved(Username),
    #[error("project {project} has no immutable tag rule {id}")]
    ImmutableRuleUnknown { project: ProjectName, id: u64 },
    #[error(transparent)]
    ImmutableRuleInvalid(#[from] RuleError),
    #[error("a registry named {0:?} already exists")]
    RegistryNameTaken(String),
    #[error("registry {0} not found")]
    RegistryUnknown(u64),
    #[error(transparent)]
    RegistryInvalid(#[from] RegistryError),
    #[error("the registry {id} is referenced by replication policy {policy}, cannot delete it")]
    RegistryInUse { id: u64, policy: String },
    #[error("a replication policy named {0:?} already exists")]
    ReplicationPolicyNameTaken(String),
    #[error("replication policy {0} not found")]
    ReplicationPolicyUnknown(u64),
    #[error(transparent)]
    ReplicationPolicyInvalid(#[from] ReplicationPolicyError),
    #[error("project {project} already has retention policy {id}")]
    RetentionPolicyExists { project: ProjectName, id: u64 },
    #[error("project {project} has no retention policy {id}")]
    RetentionPolicyUnknown { project: ProjectName, id: u64 },
    #[error(transparent)]
    RetentionPolicyInvalid(#[from] PolicyError),
    #[error(transparent)]
    ScheduleInvalid(#[from] ScheduleError),
}

/// The event that records `rules` as the project's immutable tag rules, if they are within Harbor's
/// limit.
fn immutable_rules_changed(project: ProjectName, rules: &[ImmutableRule]) -> Result<Vec<Event>, AccessError> {
    immutability::check_rule_set(rules)?;
    Ok(vec![Event::ImmutableTagRulesChanged {
        project,
        rules: rules.iter().map(ImmutableRule::spec).collect(),
    }])
}

/// Names no user may take: what events and logs call callers without an account.
pub const RESERVED_USERNAMES: [&str; 2] = ["anonymous", "system"];

/// The fold of the `access` stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// The stream version folded so far.
    pub version: u64,
    projects: BTreeMap<ProjectName, Project>,
    users: BTreeMap<Username, User>,
    robots: BTreeMap<RobotName, Robot>,
    last_id: u64,
    /// Garbage collection's schedule, if it has one.
    pub gc_schedule: Option<GcSchedule>,
    /// Replication's registry endpoints, by id.
    registries: BTreeMap<u64, RegistryEntry>,
    /// Replication's policies, by id.
    replication_policies: BTreeMap<u64, ReplicationPolicyEntry>,
}

/// A replication policy, compiled, and when it was added and last changed (its schedule counts
/// from then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationPolicyEntry {
    pub policy: ReplicationPolicy,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A registry endpoint and when it was added and last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub spec: RegistrySpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Garbage collection's schedule: as set, its cron checked, and when it was set (its firings count
/// from then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcSchedule {
    pub spec: GcScheduleSpec,
    pub cron: CronSchedule,
    pub since: DateTime<Utc>,
}

impl Directory {
    pub fn project(&self, name: &ProjectName) -> Option<&Project> {
        self.projects.get(name)
    }

    pub fn projects(&self) -> impl Iterator<Item = &Project> {
        self.projects.values()
    }

    pub fn user(&self, name: &Username) -> Option<&User> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn robot(&self, name: &RobotName) -> Option<&Robot> {
        self.robots.get(name)
    }

    pub fn robots(&self) -> impl Iterator<Item = &Robot> {
        self.robots.values()
    }

    pub fn registry(&self, id: u64) -> Option<&RegistryEntry> {
        self.registries.get(&id)
    }

    /// Replication's registry endpoints, by id.
    pub fn registries(&self) -> impl Iterator<Item = &RegistryEntry> {
        self.registries.values()
    }

    pub fn replication_policy(&self, id: u64) -> Option<&ReplicationPolicyEntry> {
        self.replication_policies.get(&id)
    }

    /// Replication's policies, by id.
    pub fn replication_policies(&self) -> impl Iterator<Item = &ReplicationPolicyEntry> {
        self.replication_policies.values()
    }

    pub fn has_admin(&self) -> bool {
        self.users.values().any(|u| u.admin)
    }

    /// The next id the directory hands out (ids are unique across every kind, as ids of events are
    /// decided before they are appended).
    fn next_id(&self) -> u64 {
        self.last_id + 1
    }

    // ---- authorization ----

    pub fn is_admin(&self, principal: &Principal) -> bool {
        matches!(principal, Principal::User(u) if self.users.get(u).is_some_and(|u| u.admin))
    }

    /// The role of `principal` in `project`, if a user member.
    pub fn role(&self, principal: &Principal, project: &ProjectName) -> Option<Role> {
        let Principal::User(user) = principal else {
            return None;
        };
        self.projects.get(project)?.members.get(user).map(|m| m.role)
    }

    /// What `principal` may do to the repositories of `project` at `now` (empty if the project does
    /// not exist).
    pub fn repository_actions(
        &self,
        principal: &Principal,
        project: &ProjectName,
        now: DateTime<Utc>,
    ) -> BTreeSet<Action> {
        let Some(p) = self.projects.get(project) else {
            return BTreeSet::new();
        };
        let public_pull = || {
            if p.public {
                BTreeSet::from([Action::Pull])
            } else {
                BTreeSet::new()
            }
        };
        match principal {
            Principal::Anonymous => public_pull(),
            Principal::User(user) => {
                if !self.users.contains_key(user) {
                    return BTreeSet::new();
                }
                if self.is_admin(principal) {
                    return Action::ALL.into();
                }
                let mut actions = public_pull();
                if let Some(member) = p.members.get(user) {
                    actions.extend(member.role.actions());
                }
                actions
            }
            // Anyone signed in may pull from a public project, robots of other projects too.
            Principal::Robot(name) => match self.robots.get(name) {
                Some(robot) if robot.active(now) => {
                    let mut actions = public_pull();
                    if &name.project() == project {
                        actions.extend(robot.actions.iter().copied());
                    }
                    actions
                }
                _ => BTreeSet::new(),
            },
        }
    }

    /// The version of `principal`'s current password or secret (`None`: anonymous or unknown).
    pub fn credential_version(&self, principal: &Principal) -> Option<u64> {
        match principal {
            Principal::Anonymous => None,
            Principal::User(u) => self.users.get(u).map(|u| u.credential_version),
            Principal::Robot(r) => self.robots.get(r).map(|r| r.credential_version),
        }
    }

    /// The existing user whose name equals `name` ignoring ASCII case.
    fn user_named_alike(&self, name: &Username) -> Option<&Username> {
        (self.users.keys()).find(|u| u.as_str().eq_ignore_ascii_case(name.as_str()))
    }

    /// Whether `principal` manages `project` (members, robots, settings): its admins and system admins.
    pub fn manages(&self, principal: &Principal, project: &ProjectName) -> bool {
        self.projects.contains_key(project)
            && (self.is_admin(principal) || self.role(principal, project).is_some_and(Role::manages_project))
    }

    /// Whether `principal` may know that `project` exists.
    pub fn sees(&self, principal: &Principal, project: &ProjectName, now: DateTime<Utc>) -> bool {
        self.projects.get(project).is_some_and(|p| p.public)
            || !self.repository_actions(principal, project, now).is_empty()
            || self.role(principal, project).is_some()
    }

    /// Whether `principal` is a known, active principal at `now` (anonymous always is).
    pub fn active(&self, principal: &Principal, now: DateTime<Utc>) -> bool {
        match principal {
            Principal::Anonymous => true,
            Principal::User(u) => self.users.contains_key(u),
            Principal::Robot(r) => self.robots.get(r).is_some_and(|r| r.active(now)),
        }
    }

    // ---- decisions ----

    /// The events `command` leads to, or why it is refused.
    pub fn decide(&self, command: AccessCommand) -> Result<Vec<Event>, AccessError> {
        use AccessCommand as C;
        let id = self.next_id();
        let project_of = |name: &ProjectName| {
            (self.projects.get(name)).ok_or_else(|| AccessError::ProjectUnknown(name.clone()))
        };
        let user_of =
            |name: &Username| (self.users.get(name)).ok_or_else(|| AccessError::UserUnknown(name.clone()));
        let robot_of =
            |name: &RobotName| (self.robots.get(name)).ok_or_else(|| AccessError::RobotUnknown(name.clone()));
        let events = match command {
            C::CreateProject {
                name,
                public,
                quota,
                owner,
                metadata,
            } => {
                if self.projects.contains_key(&name) {
                    return Err(AccessError::ProjectExists(name));
                }
                let mut events = vec![Event::ProjectCreated {
                    project: name.clone(),
                    id,
                    public,
                    quota,
                    metadata,
                }];
                if let Some(owner) = owner.filter(|o| self.users.contains_key(o)) {
                    events.push(Event::MemberAdded {
                        project: name,
                        username: owner,
                        role: Role::ProjectAdmin,
                        id: id + 1,
                    });
                }
                events
            }
            C::UpdateProject {
                name,
                public,
                quota,
                metadata,
            } => {
                let p = project_of(&name)?;
                let mut kept = p.metadata.clone();
                kept.extend(metadata);
                vec![Event::ProjectUpdated {
                    project: name,
                    public: public.unwrap_or(p.public),
                    quota: quota.unwrap_or(p.quota),
                    metadata: kept,
                }]
            }
            C::ConfigureTrust { name, trust } => {
                let p = project_of(&name)?;
                if p.trust == trust {
                    vec![]
                } else {
                    vec![Event::ProjectTrustConfigured { project: name, trust }]
                }
            }
            C::AddImmutableRule { project, rule } => {
                let mut rules = project_of(&project)?.immutable_rules.clone();
                rules.push(RuleSpec { id, ..rule }.compile()?);
                immutable_rules_changed(project, &rules)?
            }
            C::UpdateImmutableRule { project, rule } => {
                let mut rules = project_of(&project)?.immutable_rules.clone();
                let slot = (rules.iter_mut().find(|r| r.id == rule.id)).ok_or(
                    AccessError::ImmutableRuleUnknown {
                        project: project.clone(),
                        id: rule.id,
                    },
                )?;
                *slot = rule.compile()?;
                immutable_rules_changed(project, &rules)?
            }
            C::DeleteImmutableRule { project, id } => {
                let mut rules = project_of(&project)?.immutable_rules.clone();
                let before = rules.len();
                rules.retain(|r| r.id != id);
                if rules.len() == before {
                    return Err(AccessError::ImmutableRuleUnknown { project, id });
                }
                immutable_rules_changed(project, &rules)?
            }
            C::CreateRetentionPolicy { project, policy } => {
                if let Some(existing) = &project_of(&project)?.retention {
                    return Err(AccessError::RetentionPolicyExists {
                        project,
                        id: existing.id(),
                    });
                }
                let policy = PolicySpec { id, ..policy };
                policy.compile()?;
                vec![Event::RetentionPolicyChanged {
                    project,
                    policy: Some(policy),
                }]
            }
            C::UpdateRetentionPolicy { project, policy } => {
                let current = project_of(&project)?.retention.as_ref().map(Policy::id);
                if current != Some(policy.id) {
                    return Err(AccessError::RetentionPolicyUnknown {
                        project,
                        id: policy.id,
                    });
                }
                policy.compile()?;
                vec![Event::RetentionPolicyChanged {
                    project,
                    policy: Some(policy),
                }]
            }
            C::SetGcSchedule { schedule } => {
                if let Some(spec) = &schedule {
                    spec.compile()?;
                }
                if self.gc_schedule.as_ref().map(|s| &s.spec) == schedule.as_ref() {
                    vec![]
                } else {
                    vec![Event::GcScheduleChanged { schedule }]
                }
            }
            C::CreateRegistry { registry } => {
                let registry = RegistrySpec { id, ..registry };
                self.check_registry(&registry)?;
                vec![Event::RegistryChanged {
                    id,
                    registry: Some(registry),
                }]
            }
            C::UpdateRegistry { registry } => {
                let current =
                    (self.registries.get(&registry.id)).ok_or(AccessError::RegistryUnknown(registry.id))?;
                self.check_registry(&registry)?;
                if current.spec == registry {
                    vec![]
                } else {
                    vec![Event::RegistryChanged {
                        id: registry.id,
                        registry: Some(registry),
                    }]
                }
            }
            C::DeleteRegistry { id } => {
                if !self.registries.contains_key(&id) {
                    return Err(AccessError::RegistryUnknown(id));
                }
                if let Some(user) = self
                    .replication_policies
                    .values()
                    .find(|p| p.policy.remote() == id)
                {
                    return Err(AccessError::RegistryInUse {
                        id,
                        policy: user.policy.spec().name.clone(),
                    });
                }
                vec![Event::RegistryChanged { id, registry: None }]
            }
            C::CreateReplicationPolicy { policy } => {
                let policy = ReplicationPolicySpec { id, ..policy };
                self.check_replication_policy(&policy)?;
                vec![Event::ReplicationPolicyChanged {
                    id,
                    policy: Some(policy),
                }]
            }
            C::UpdateReplicationPolicy { policy } => {
                let current = (self.replication_policies.get(&policy.id))
                    .ok_or(AccessError::ReplicationPolicyUnknown(policy.id))?;
                self.check_replication_policy(&policy)?;
                if current.policy.spec() == &policy {
                    vec![]
                } else {
                    vec![Event::ReplicationPolicyChanged {
                        id: policy.id,
                        policy: Some(policy),
                    }]
                }
            }
            C::DeleteReplicationPolicy { id } => {
                if !self.replication_policies.contains_key(&id) {
                    return Err(AccessError::ReplicationPolicyUnknown(id));
                }
                vec![Event::ReplicationPolicyChanged { id, policy: None }]
            }
            C::DeleteRetentionPolicy { project } => match &project_of(&project)?.retention {
                Some(_) => vec![Event::RetentionPolicyChanged {
                    project,
                    policy: None,
                }],
                None => vec![],
            },
            C::DeleteProject { name } => {
                let p = project_of(&name)?;
                let mut events: Vec<Event> = (self.robots.keys())
                    .filter(|r| r.project() == name)
                    .map(|r| Event::RobotDeleted { robot: r.clone() })
                    .collect();
                events.push(Event::ProjectDeleted {
                    project: p.name.clone(),
                });
                events
            }
            C::CreateUser {
                username,
                password_hash,
                admin,
            } => {
                if RESERVED_USERNAMES
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(username.as_str()))
                {
                    return Err(AccessError::UsernameReserved(username));
                }
                // Unique ignoring case (`Admin` beside `admin` would be a look-alike); the display
                // case is kept.
                if let Some(existing) = self.user_named_alike(&username) {
                    return Err(AccessError::UserExists(existing.clone()));
                }
                vec![Event::UserCreated {
                    username,
                    id,
                    password_hash,
                    admin,
                }]
            }
            C::ChangePassword {
                username,
                password_hash,
            } => {
                user_of(&username)?;
                vec![Event::UserPasswordChanged {
                    username,
                    password_hash,
                }]
            }
            C::SetAdmin { username, admin } => {
                let user = user_of(&username)?;
                if user.admin && !admin && self.admins() == 1 {
                    return Err(AccessError::LastAdmin);
                }
                vec![Event::UserAdminChanged { username, admin }]
            }
            C::DeleteUser { username } => {
                let user = user_of(&username)?;
                if user.admin && self.admins() == 1 {
                    return Err(AccessError::LastAdmin);
                }
                let mut events: Vec<Event> = (self.projects.values())
                    .filter(|p| p.members.contains_key(&username))
                    .map(|p| Event::MemberRemoved {
                        project: p.name.clone(),
                        username: username.clone(),
                    })
                    .collect();
                events.push(Event::UserDeleted { username });
                events
            }
            C::AddMember {
                project,
                username,
                role,
            } => {
                let p = project_of(&project)?;
                user_of(&username)?;
                if p.members.contains_key(&username) {
                    return Err(AccessError::MemberExists { project, username });
                }
                vec![Event::MemberAdded {
                    project,
                    username,
                    role,
                    id,
                }]
            }
            C::ChangeRole {
                project,
                username,
                role,
            } => {
                let p = project_of(&project)?;
                if !p.members.contains_key(&username) {
                    return Err(AccessError::MemberUnknown { project, username });
                }
                vec![Event::MemberRoleChanged {
                    project,
                    username,
                    role,
                }]
            }
            C::RemoveMember { project, username } => {
                let p = project_of(&project)?;
                if !p.members.contains_key(&username) {
                    return Err(AccessError::MemberUnknown { project, username });
                }
                vec![Event::MemberRemoved { project, username }]
            }
            C::CreateRobot {
                name,
                description,
                actions,
                expires_at,
                secret_hash,
            } => {
                project_of(&name.project())?;
                if self.robots.contains_key(&name) {
                    return Err(AccessError::RobotExists(name));
                }
                if actions.is_empty() {
                    return Err(AccessError::RobotWithoutActions);
                }
                vec![Event::RobotCreated {
                    robot: name,
                    id,
                    description,
                    actions,
                    expires_at,
                    secret_hash,
                }]
            }
            C::UpdateRobot {
                name,
                description,
                actions,
                expires_at,
                disabled,
            } => {
                let r = robot_of(&name)?;
                let actions = actions.unwrap_or_else(|| r.actions.clone());
                if actions.is_empty() {
                    return Err(AccessError::RobotWithoutActions);
                }
                vec![Event::RobotUpdated {
                    robot: name,
                    description: description.unwrap_or_else(|| r.description.clone()),
                    actions,
                    expires_at: expires_at.unwrap_or(r.expires_at),
                    disabled: disabled.unwrap_or(r.disabled),
                }]
            }
            C::RefreshRobotSecret { name, secret_hash } => {
                robot_of(&name)?;
                vec![Event::RobotSecretRefreshed {
                    robot: name,
                    secret_hash,
                }]
            }
            C::DeleteRobot { name } => {
                robot_of(&name)?;
                vec![Event::RobotDeleted { robot: name }]
            }
        };
        Ok(events)
    }

    fn admins(&self) -> usize {
        self.users.values().filter(|u| u.admin).count()
    }

    // ---- the fold ----

    /// Folds one event of the `access` stream (events of other streams are ignored).
    pub fn apply(&mut self, recorded: &RecordedEvent) {
        let time = recorded.envelope.time;
        self.version = recorded.version;
        match &recorded.envelope.event {
            Event::ProjectCreated {
                project,
                id,
                public,
                quota,
                metadata,
            } => {
                self.see_id(*id);
                self.projects.insert(
                    project.clone(),
                    Project {
                        id: *id,
                        name: project.clone(),
                        public: *public,
                        quota: *quota,
                        created_at: time,
                        updated_at: time,
                        members: BTreeMap::new(),
                        trust: ContentTrust::default(),
                        metadata: metadata.clone(),
                        trust_revision: recorded.version,
                        immutable_rules: Vec::new(),
                        retention: None,
                        retention_since: None,
                    },
                );
            }
            Event::ProjectUpdated {
                project,
                public,
                quota,
                metadata,
            } => {
                if let Some(p) = self.projects.get_mut(project) {
                    p.public = *public;
                    p.quota = *quota;
                    p.metadata = metadata.clone();
                    p.updated_at = time;
                }
            }
            Event::ProjectDeleted { project } => {
                self.projects.remove(project);
            }
            Event::GcScheduleChanged { schedule } => {
                self.gc_schedule = schedule.as_ref().and_then(|spec| {
                    let cron = (spec.compile())
                        .inspect_err(|e| tracing::error!(error = %e, "garbage collection schedule dropped"))
                        .ok()?;
                    Some(GcSchedule {
                        spec: spec.clone(),
                        cron,
                        since: recorded.envelope.time,
                    })
                });
            }
            Event::RegistryChanged { id, registry } => {
                self.see_id(*id);
                match registry {
                    Some(spec) => {
                        let created_at = (self.registries.get(id)).map_or(time, |r| r.created_at);
                        let entry = RegistryEntry {
                            spec: spec.clone(),
                            created_at,
                            updated_at: time,
                        };
                        self.registries.insert(*id, entry);
                    }
                    None => {
                        self.registries.remove(id);
                    }
                }
            }
            Event::ReplicationPolicyChanged { id, policy } => {
                self.see_id(*id);
                match policy.as_ref().map(ReplicationPolicySpec::compile) {
                    Some(Ok(policy)) => {
                        let created_at = (self.replication_policies.get(id)).map_or(time, |p| p.created_at);
                        let entry = ReplicationPolicyEntry {
                            policy,
                            created_at,
                            updated_at: time,
                        };
                        self.replication_policies.insert(*id, entry);
                    }
                    Some(Err(e)) => {
                        // Checked when decided; one that no longer compiles is left out (and said)
                        // rather than stopping the fold.
                        tracing::error!(policy = id, error = %e, "replication policy dropped");
                        self.replication_policies.remove(id);
                    }
                    None => {
                        self.replication_policies.remove(id);
                    }
                }
            }
            Event::RetentionPolicyChanged { project, policy } => {
                if let Some(spec) = policy {
                    self.see_id(spec.id);
                }
                if let Some(p) = self.projects.get_mut(project) {
                    // As for immutable rules: a recorded policy that no longer compiles is left out
                    // (and said) rather than stopping the fold.
                    p.retention_since = Some(recorded.envelope.time);
                    p.retention = (policy.as_ref()).and_then(|spec| {
                        (spec.compile())
                            .inspect_err(|e| {
                                tracing::error!(project = %project, policy = spec.id, error = %e, "retention policy dropped");
                            })
                            .ok()
                    });
                }
            }
            Event::ImmutableTagRulesChanged { project, rules } => {
                for rule in rules {
                    self.see_id(rule.id);
                }
                if let Some(p) = self.projects.get_mut(project) {
                    // Recorded rules were checked when decided; one that no longer compiles (a
                    // matcher grown stricter) is left out rather than stopping the fold.
                    p.immutable_rules = (rules.iter())
                        .filter_map(|spec| {
                            (spec.compile())
                                .inspect_err(|e| {
                                    tracing::error!(project = %project, rule = spec.id, error = %e, "immutable tag rule dropped");
                                })
                                .ok()
                        })
                        .collect();
                    p.updated_at = time;
                }
            }
            Event::ProjectTrustConfigured { project, trust } => {
                if let Some(p) = self.projects.get_mut(project) {
                    p.trust = trust.clone();
                    p.trust_revision = recorded.version;
                    p.updated_at = time;
                }
            }
            Event::UserCreated {
                username,
                id,
                password_hash,
                admin,
            } => {
                self.see_id(*id);
                self.users.insert(
                    username.clone(),
                    User {
                        id: *id,
                        username: username.clone(),
                        password_hash: password_hash.clone(),
                        admin: *admin,
                        created_at: time,
                        updated_at: time,
                        credential_version: recorded.version,
                    },
                );
            }
            Event::UserPasswordChanged {
                username,
                password_hash,
            } => {
                if let Some(u) = self.users.get_mut(username) {
                    u.password_hash = password_hash.clone();
                    u.updated_at = time;
                    u.credential_version = recorded.version;
                }
            }
            Event::UserAdminChanged { username, admin } => {
                if let Some(u) = self.users.get_mut(username) {
                    u.admin = *admin;
                    u.updated_at = time;
                }
            }
            Event::UserDeleted { username } => {
                self.users.remove(username);
            }
            Event::MemberAdded {
                project,
                username,
                role,
                id,
            } => {
                self.see_id(*id);
                if let Some(p) = self.projects.get_mut(project) {
                    p.members.insert(
                        username.clone(),
                        Member {
                            id: *id,
                            username: username.clone(),
                            role: *role,
                        },
                    );
                }
            }
            Event::MemberRoleChanged {
                project,
                username,
                role,
            } => {
                if let Some(m) = (self.projects.get_mut(project)).and_then(|p| p.members.get_mut(username)) {
                    m.role = *role;
                }
            }
            Event::MemberRemoved { project, username } => {
                if let Some(p) = self.projects.get_mut(project) {
                    p.members.remove(username);
                }
            }
            Event::RobotCreated {
                robot,
                id,
                description,
                actions,
                expires_at,
                secret_hash,
            } => {
                self.see_id(*id);
                self.robots.insert(
                    robot.clone(),
                    Robot {
                        id: *id,
                        name: robot.clone(),
                        description: description.clone(),
                        actions: actions.clone(),
                        expires_at: *expires_at,
                        disabled: false,
                        secret_hash: secret_hash.clone(),
                        created_at: time,
                        updated_at: time,
                        credential_version: recorded.version,
                    },
                );
            }
            Event::RobotUpdated {
                robot,
                description,
                actions,
                expires_at,
                disabled,
            } => {
                if let Some(r) = self.robots.get_mut(robot) {
                    r.description = description.clone();
                    r.actions = actions.clone();
                    r.expires_at = *expires_at;
                    r.disabled = *disabled;
                    r.updated_at = time;
                }
            }
            Event::RobotSecretRefreshed { robot, secret_hash } => {
                if let Some(r) = self.robots.get_mut(robot) {
                    r.secret_hash = secret_hash.clone();
                    r.updated_at = time;
                    r.credential_version = recorded.version;
                }
            }
            Event::RobotDeleted { robot } => {
                self.robots.remove(robot);
            }
            _ => {}
        }
    }

    /// A registry endpoint is valid on its own and named as no other is.
    fn check_registry(&self, registry: &RegistrySpec) -> Result<(), AccessError> {
        registry.check()?;
        let name = registry.name.trim();
        let taken = (self.registries.values())
            .any(|r| r.spec.id != registry.id && r.spec.name.trim().eq_ignore_ascii_case(name));
        if taken {
            return Err(AccessError::RegistryNameTaken(name.to_string()));
        }
        Ok(())
    }

    /// A replication policy compiles, names an endpoint that exists, and is named as no other is.
    fn check_replication_policy(&self, spec: &ReplicationPolicySpec) -> Result<(), AccessError> {
        let policy = spec.compile()?;
        if !self.registries.contains_key(&policy.remote()) {
            return Err(AccessError::RegistryUnknown(policy.remote()));
        }
        let name = spec.name.trim();
        let taken = (self.replication_policies.values())
            .any(|p| p.policy.id() != spec.id && p.policy.spec().name.trim().eq_ignore_ascii_case(name));
        if taken {
            return Err(AccessError::ReplicationPolicyNameTaken(name.to_string()));
        }
        Ok(())
    }

    fn see_id(&mut self, id: u64) {
        self.last_id = self.last_id.max(id);
    }
}

#[cfg(test)]
#[path = "directory_tests.rs"]
mod tests;
