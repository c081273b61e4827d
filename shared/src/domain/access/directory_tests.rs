//! Given events, when a command, then events (or a refusal); and the authorization table.

use chrono::TimeZone;

use super::*;
use crate::domain::event::{EventEnvelope, StreamId};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn given(commands: Vec<AccessCommand>) -> Directory {
    given_more(Directory::default(), commands)
}

/// `d` after `commands`.
fn given_more(mut d: Directory, commands: Vec<AccessCommand>) -> Directory {
    for command in commands {
        for event in d.decide(command).expect("given commands succeed") {
            let version = d.version + 1;
            d.apply(&RecordedEvent {
                position: crate::domain::LogPosition::sequence(version),
                stream: StreamId::access(),
                version,
                envelope: EventEnvelope {
                    id: format!("e{version}"),
                    time: t0(),
                    principal: "system".into(),
                    event,
                },
            });
        }
    }
    d
}

fn p(name: &str) -> ProjectName {
    ProjectName::parse(name).unwrap()
}

fn u(name: &str) -> Username {
    Username::parse(name).unwrap()
}

fn user(name: &str, admin: bool) -> AccessCommand {
    AccessCommand::CreateUser {
        username: u(name),
        password_hash: format!("hash-of-{name}"),
        admin,
    }
}

fn project(name: &str, public: bool, owner: Option<&str>) -> AccessCommand {
    AccessCommand::CreateProject {
        name: p(name),
        public,
        quota: None,
        owner: owner.map(u),
        metadata: Default::default(),
    }
}

fn member(project: &str, name: &str, role: Role) -> AccessCommand {
    AccessCommand::AddMember {
        project: p(project),
        username: u(name),
        role,
    }
}

fn robot(project: &str, name: &str, actions: &[Action], expires_at: Option<DateTime<Utc>>) -> AccessCommand {
    AccessCommand::CreateRobot {
        name: RobotName::new(&p(project), name).unwrap(),
        description: String::new(),
        actions: actions.iter().copied().collect(),
        expires_at,
        secret_hash: "robot-hash".into(),
    }
}

fn team() -> Directory {
    given(vec![
        user("root", true),
        user("owner", false),
        user("dev", false),
        user("guest", false),
        user("maint", false),
        project("team", false, Some("owner")),
        project("open", true, None),
        member("team", "dev", Role::Developer),
        member("team", "guest", Role::Guest),
        member("team", "maint", Role::Maintainer),
        robot("team", "ci", &[Action::Pull, Action::Push], None),
        robot("team", "old", &[Action::Pull], Some(t0())),
    ])
}

fn actions(d: &Directory, who: Principal, project: &str) -> Vec<&'static str> {
    d.repository_actions(&who, &p(project), t0())
        .into_iter()
        .map(Action::as_str)
        .collect()
}

#[test]
fn creating_a_project_makes_its_creator_the_project_admin() {
    let d = team();
    assert_eq!(
        d.role(&Principal::User(u("owner")), &p("team")),
        Some(Role::ProjectAdmin)
    );
    assert!(d.manages(&Principal::User(u("owner")), &p("team")));
}

#[test]
fn a_project_name_is_taken_once() {
    let d = team();
    assert_eq!(
        d.decide(project("team", true, None)),
        Err(AccessError::ProjectExists(p("team")))
    );
}

#[test]
fn roles_grant_harbors_actions_in_a_private_project() {
    let d = team();
    assert_eq!(actions(&d, Principal::Anonymous, "team"), Vec::<&str>::new());
    assert_eq!(actions(&d, Principal::User(u("guest")), "team"), ["pull"]);
    assert_eq!(actions(&d, Principal::User(u("dev")), "team"), ["pull", "push"]);
    assert_eq!(
        actions(&d, Principal::User(u("maint")), "team"),
        ["pull", "push", "delete"]
    );
    assert_eq!(
        actions(&d, Principal::User(u("owner")), "team"),
        ["pull", "push", "delete"]
    );
    assert_eq!(
        actions(&d, Principal::User(u("root")), "team"),
        ["pull", "push", "delete"]
    );
}

#[test]
fn a_public_project_lets_anyone_pull_and_only_members_push() {
    let d = team();
    assert_eq!(actions(&d, Principal::Anonymous, "open"), ["pull"]);
    assert_eq!(actions(&d, Principal::User(u("dev")), "open"), ["pull"]);
}

#[test]
fn robots_act_in_their_project_and_pull_public_ones_while_enabled_and_unexpired() {
    let mut d = team();
    let ci = Principal::Robot(RobotName::parse("robot$team+ci").unwrap());
    assert_eq!(actions(&d, ci.clone(), "team"), ["pull", "push"]);
    // Anyone signed in may pull from a public project, a robot of another project too.
    assert_eq!(actions(&d, ci.clone(), "open"), ["pull"]);
    let old = Principal::Robot(RobotName::parse("robot$team+old").unwrap());
    assert_eq!(actions(&d, old, "team"), Vec::<&str>::new(), "expired at t0");
    d = {
        let mut d2 = d.clone();
        let events = d2
            .decide(AccessCommand::UpdateRobot {
                name: RobotName::parse("robot$team+ci").unwrap(),
                description: None,
                actions: None,
                expires_at: None,
                disabled: Some(true),
            })
            .unwrap();
        assert!(matches!(events[..], [Event::RobotUpdated { disabled: true, .. }]));
        for event in events {
            d2.apply(&RecordedEvent {
                position: crate::domain::LogPosition::sequence(100),
                stream: StreamId::access(),
                version: d2.version + 1,
                envelope: EventEnvelope {
                    id: "x".into(),
                    time: t0(),
                    principal: "owner".into(),
                    event,
                },
            });
        }
        d2
    };
    assert_eq!(actions(&d, ci.clone(), "team"), Vec::<&str>::new(), "disabled");
    assert_eq!(actions(&d, ci, "open"), Vec::<&str>::new(), "disabled");
}

#[test]
fn a_robot_never_acts_in_another_private_project() {
    let d = given(vec![
        project("team", false, None),
        project("secret", false, None),
        robot("team", "ci", &[Action::Pull, Action::Push, Action::Delete], None),
    ]);
    let ci = Principal::Robot(RobotName::parse("robot$team+ci").unwrap());
    assert_eq!(actions(&d, ci, "secret"), Vec::<&str>::new());
}

#[test]
fn reserved_usernames_are_refused_in_any_case() {
    let d = team();
    for name in ["anonymous", "system", "System", "ANONYMOUS"] {
        assert_eq!(
            d.decide(user(name, false)),
            Err(AccessError::UsernameReserved(u(name))),
            "{name}"
        );
    }
}

#[test]
fn usernames_are_unique_ignoring_case_and_keep_their_case() {
    let d = team();
    assert_eq!(
        d.decide(user("Root", false)),
        Err(AccessError::UserExists(u("root")))
    );
    assert_eq!(
        d.decide(user("DEV", false)),
        Err(AccessError::UserExists(u("dev")))
    );
    let d = given(vec![user("Alice", false)]);
    assert_eq!(d.user(&u("Alice")).map(|a| a.username.as_str()), Some("Alice"));
    assert_eq!(
        d.decide(user("alice", false)),
        Err(AccessError::UserExists(u("Alice")))
    );
}

#[test]
fn changing_a_password_or_refreshing_a_secret_moves_the_credential_version() {
    let d = team();
    let dev = Principal::User(u("dev"));
    let ci = Principal::Robot(RobotName::parse("robot$team+ci").unwrap());
    let (dev_before, ci_before) = (d.credential_version(&dev), d.credential_version(&ci));
    assert!(dev_before.is_some() && ci_before.is_some());
    let d = given_more(
        d,
        vec![
            AccessCommand::ChangePassword {
                username: u("dev"),
                password_hash: "new".into(),
            },
            AccessCommand::RefreshRobotSecret {
                name: RobotName::parse("robot$team+ci").unwrap(),
                secret_hash: "new".into(),
            },
        ],
    );
    assert!(d.credential_version(&dev) > dev_before);
    assert!(d.credential_version(&ci) > ci_before);
    let guest = Principal::User(u("guest"));
    assert_eq!(
        d.credential_version(&guest),
        team().credential_version(&guest),
        "others keep theirs"
    );
    assert_eq!(d.credential_version(&Principal::Anonymous), None);
}

#[test]
fn only_project_admins_and_system_admins_manage_a_project() {
    let d = team();
    for who in ["dev", "guest", "maint"] {
        assert!(!d.manages(&Principal::User(u(who)), &p("team")), "{who}");
    }
    assert!(d.manages(&Principal::User(u("root")), &p("team")));
    assert!(!d.manages(&Principal::Anonymous, &p("team")));
}

#[test]
fn the_last_system_admin_stays() {
    let d = team();
    assert_eq!(
        d.decide(AccessCommand::SetAdmin {
            username: u("root"),
            admin: false
        }),
        Err(AccessError::LastAdmin)
    );
    assert_eq!(
        d.decide(AccessCommand::DeleteUser { username: u("root") }),
        Err(AccessError::LastAdmin)
    );
}

#[test]
fn deleting_a_user_removes_their_memberships_first() {
    let d = team();
    let events = d
        .decide(AccessCommand::DeleteUser { username: u("dev") })
        .unwrap();
    assert_eq!(
        events,
        vec![
            Event::MemberRemoved {
                project: p("team"),
                username: u("dev")
            },
            Event::UserDeleted { username: u("dev") }
        ]
    );
}

#[test]
fn deleting_a_project_deletes_its_robots() {
    let d = team();
    let events = d
        .decide(AccessCommand::DeleteProject { name: p("team") })
        .unwrap();
    assert_eq!(events.len(), 3);
    assert!(matches!(events[2], Event::ProjectDeleted { .. }));
}

#[test]
fn a_robot_needs_a_project_and_an_action() {
    let d = team();
    assert_eq!(
        d.decide(robot("nope", "x", &[Action::Pull], None)),
        Err(AccessError::ProjectUnknown(p("nope")))
    );
    assert_eq!(
        d.decide(robot("team", "x", &[], None)),
        Err(AccessError::RobotWithoutActions)
    );
}

#[test]
fn ids_are_unique_across_kinds() {
    let d = team();
    let mut ids: Vec<u64> = d.projects().map(|p| p.id).collect();
    ids.extend(d.users().map(|u| u.id));
    ids.extend(d.robots().map(|r| r.id));
    ids.extend(d.projects().flat_map(|p| p.members.values().map(|m| m.id)));
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
}

#[test]
fn password_hashes_never_serialize() {
    let d = team();
    let json = serde_json::to_string(d.user(&u("dev")).unwrap()).unwrap();
    assert!(!json.contains("hash-of-dev"), "{json}");
}
