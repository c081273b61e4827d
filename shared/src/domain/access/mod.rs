//! Access control, Harbor's model (Harbor docs "Managing Users", "Project Roles", "Robot Accounts"):
//! projects (public or private) hold repositories; users are members of projects with a role;
//! robot accounts belong to one project with a fixed set of actions; a system admin may do anything.
//!
//! Every change is an event on one stream, [`StreamId::access`](super::StreamId::access); the
//! [`Directory`] is the fold of that stream, and its `decide_*` methods are the business rules.
//! Secrets appear only as salted slow hashes (PHC strings) in events and in the directory.

mod content_trust;
mod directory;
mod names;
mod role;

pub use content_trust::ContentTrust;
pub use directory::{
    AccessCommand, AccessError, Directory, Member, Principal, Project, RegistryEntry, ReplicationPolicyEntry,
    Robot, User, DEFAULT_PROJECT,
};
pub use names::{NameRuleError, ProjectName, RobotName, Username, ROBOT_PREFIX};
pub use role::{Action, Role};
