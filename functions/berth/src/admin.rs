//! `berth admin`: the bootstrap tasks an operator runs on a registry's storage directly (a local
//! data dir, or the AWS bucket and table), without the management API. Secrets are printed once,
//! on stdout, and stored only as argon2id hashes.

use std::collections::BTreeSet;
use std::io::Read;

use anyhow::Context;
use berth::app::{hash_secret, Registry, RequestContext};
use berth::domain::access::{AccessCommand, Action, Principal, ProjectName, RobotName, Role, Username};
use berth::domain::lifecycle::immutability::{RuleSpec, SelectorSpec};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a project (private unless --public).
    CreateProject {
        name: String,
        /// Anyone, signed in or not, may pull from it.
        #[arg(long)]
        public: bool,
        /// Storage limit in bytes (unlimited if absent).
        #[arg(long)]
        quota_bytes: Option<u64>,
    },
    /// Create a local user; the password is read from stdin with --password-stdin, else generated
    /// and printed once.
    CreateUser {
        name: String,
        /// Make the user a system admin.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (read from stdin with --password-stdin, else generated and printed once).
    SetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make a user a member of a project.
    AddMember {
        project: String,
        user: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Create a robot account `robot$<project>+<name>`; its secret is printed once.
    CreateRobot {
        project: String,
        name: String,
        /// What it may do to the project's repositories.
        #[arg(long, value_delimiter = ',', default_value = "pull")]
        actions: Vec<ActionArg>,
        /// Days until it expires (never, if absent).
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Disable (or with --enable, enable again) a robot account: `robot$<project>+<name>`.
    DisableRobot {
        robot: String,
        #[arg(long)]
        enable: bool,
    },
    /// Add a new token signing key; tokens signed by older keys stay valid until they expire.
    RotateTokenKey,
    /// List a project's immutable tag rules (one JSON object per line, Berth's event shape).
    ImmutableRules { project: String },
    /// Add an immutable tag rule: tags matching --tags (doublestar) in repositories matching
    /// --repositories (their names within the project) may no longer move or be deleted.
    AddImmutableRule {
        project: String,
        #[arg(long, default_value = "**")]
        tags: String,
        /// Hold the tags that do NOT match --tags.
        #[arg(long)]
        exclude_tags: bool,
        #[arg(long, default_value = "**")]
        repositories: String,
        /// Apply to the repositories that do NOT match --repositories.
        #[arg(long)]
        exclude_repositories: bool,
    },
    /// Delete an immutable tag rule by its id.
    DeleteImmutableRule { project: String, id: u64 },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ActionArg {
    Pull,
    Push,
    Delete,
}

fn secret_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        let s = s.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(!s.is_empty(), "the password on stdin is empty");
        Ok((s, false))
    } else {
        Ok((berth::auth::generate_secret()?, true))
    }
}

pub async fn run(registry: Registry, command: AdminCommand) -> anyhow::Result<()> {
    let ctx = RequestContext::as_principal(Principal::system());
    let command = match command {
        AdminCommand::CreateProject {
            name,
            public,
            quota_bytes,
        } => AccessCommand::CreateProject {
            name: ProjectName::parse(&name)?,
            public,
            quota: quota_bytes,
            owner: None,
            metadata: Default::default(),
        },
        AdminCommand::CreateUser {
            name,
            admin,
            password_stdin,
        } => {
            let username = Username::parse(&name)?;
            let (password, generated) = secret_from(password_stdin)?;
            let command = AccessCommand::CreateUser {
                username,
                password_hash: hash_secret(&password).await?,
                admin,
            };
            registry.change_access(&ctx, command).await?;
            if generated {
                println!("{password}");
                eprintln!("created user {name}; the password above is shown once");
            } else {
                eprintln!("created user {name}");
            }
            return Ok(());
        }
        AdminCommand::SetPassword { name, password_stdin } => {
            let (password, generated) = secret_from(password_stdin)?;
            let command = AccessCommand::ChangePassword {
                username: Username::parse(&name)?,
                password_hash: hash_secret(&password).await?,
            };
            registry.change_access(&ctx, command).await?;
            if generated {
                println!("{password}");
            }
            eprintln!("changed the password of {name}");
            return Ok(());
        }
        AdminCommand::AddMember { project, user, role } => AccessCommand::AddMember {
            project: ProjectName::parse(&project)?,
            username: Username::parse(&user)?,
            role: match role {
                RoleArg::ProjectAdmin => Role::ProjectAdmin,
                RoleArg::Maintainer => Role::Maintainer,
                RoleArg::Developer => Role::Developer,
                RoleArg::Guest => Role::Guest,
            },
        },
        AdminCommand::CreateRobot {
            project,
            name,
            actions,
            expires_in_days,
            description,
        } => {
            let robot = RobotName::new(&ProjectName::parse(&project)?, &name)?;
            let secret = berth::auth::generate_secret()?;
            let actions: BTreeSet<Action> = (actions.into_iter())
                .map(|a| match a {
                    ActionArg::Pull => Action::Pull,
                    ActionArg::Push => Action::Push,
                    ActionArg::Delete => Action::Delete,
                })
                .collect();
            let command = AccessCommand::CreateRobot {
                name: robot.clone(),
                description,
                actions,
                expires_at: expires_in_days
                    .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
                secret_hash: hash_secret(&secret).await?,
            };
            registry.change_access(&ctx, command).await?;
            println!("{secret}");
            eprintln!("created {robot}; the secret above is shown once");
            return Ok(());
        }
        AdminCommand::DisableRobot { robot, enable } => AccessCommand::UpdateRobot {
            name: RobotName::parse(&robot)?,
            description: None,
            actions: None,
            expires_at: None,
            disabled: Some(!enable),
        },
        AdminCommand::ImmutableRules { project } => {
            let name = ProjectName::parse(&project)?;
            let directory = registry.current_directory().await?;
            let project =
                (directory.project(&name)).with_context(|| format!("project {name} does not exist"))?;
            for rule in &project.immutable_rules {
                println!("{}", serde_json::to_string(rule)?);
            }
            return Ok(());
        }
        AdminCommand::AddImmutableRule {
            project,
            tags,
            exclude_tags,
            repositories,
            exclude_repositories,
        } => {
            let selector = |decoration: &str, pattern: String| SelectorSpec {
                kind: "doublestar".to_string(),
                decoration: decoration.to_string(),
                pattern,
            };
            AccessCommand::AddImmutableRule {
                project: ProjectName::parse(&project)?,
                rule: RuleSpec {
                    id: 0,
                    priority: 0,
                    disabled: false,
                    tag_selectors: vec![selector(if exclude_tags { "excludes" } else { "matches" }, tags)],
                    repository_selectors: vec![selector(
                        if exclude_repositories {
                            "repoExcludes"
                        } else {
                            "repoMatches"
                        },
                        repositories,
                    )],
                },
            }
        }
        AdminCommand::DeleteImmutableRule { project, id } => AccessCommand::DeleteImmutableRule {
            project: ProjectName::parse(&project)?,
            id,
        },
        AdminCommand::RotateTokenKey => {
            let ring = registry.rotate_token_key().await?;
            let kid = ring.signing_key()?.kid().to_string();
            eprintln!(
                "tokens are now signed by key {kid} ({} keys verify)",
                ring.keys().len()
            );
            return Ok(());
        }
    };
    let recorded = registry.change_access(&ctx, command).await?;
    for event in recorded {
        eprintln!("{}", event.envelope.event.kind().name);
    }
    Ok(())
}
