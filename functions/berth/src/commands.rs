//! The CLI's commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use berth::adapters::aws::AwsTargets;
use berth::app::Registry;
use berth::oci::Host;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "berth", version, about = "A container registry with content trust")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// What to log, as a tracing filter (`info`, `debug`, `berth=debug,info`...); on stderr,
    /// coloured only on a terminal.
    #[arg(long = "log", env = "BERTH_LOG", default_value = "info", global = true)]
    pub log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OCI distribution API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:5000")]
        listen: SocketAddr,
        /// Also serve the process's counters (HTTP responses, AWS requests, DynamoDB items
        /// written) at `GET /metrics` on this address, in the Prometheus text format; none if absent.
        #[arg(long, env = "BERTH_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        #[command(flatten)]
        storage: Storage,
        #[command(flatten)]
        blobs: BlobServing,
        #[command(flatten)]
        access: AccessArgs,
        #[command(flatten)]
        limits: crate::serve::ConnectionLimits,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        subscriptions: crate::subscriptions::SubscriptionArgs,
    },
    /// Bootstrap tasks on the registry's storage: projects, users, members, robot accounts, token keys.
    Admin {
        #[command(subcommand)]
        command: crate::admin::AdminCommand,
        #[command(flatten)]
        storage: Storage,
    },
    /// Drop every view, replay the event log, and compare with the views before (nothing else may
    /// write meanwhile: stop the servers). Exits 1 if the rebuilt views differ.
    RebuildViews {
        #[command(flatten)]
        storage: Storage,
    },
    /// Print the event log as CloudEvents 1.0, one JSON object per line.
    Log {
        #[command(flatten)]
        storage: Storage,
    },
    /// Expire the upload sessions not written to for --max-age-secs (what the janitor function does
    /// on a schedule; for the container host, e.g. from cron). Prints {"expired_uploads": n}.
    Janitor {
        /// How long an upload session may sit idle, in seconds.
        #[arg(long, env = "BERTH_UPLOAD_MAX_AGE_SECS", default_value_t = 86_400)]
        max_age_secs: u64,
        #[command(flatten)]
        storage: Storage,
    },
    /// Collect garbage once, online (docs/lifecycle.md): delete what no tag keeps (with
    /// --delete-untagged, untagged manifests and their accessories), unlink blobs nothing uses,
    /// delete the bytes no repository uses. Nothing younger than the grace window goes. Prints the
    /// run's report as a JSON line. A real run first waits for writers that may not have seen it
    /// start (about 50 s). The embedded store is single-process: not while `berth serve` runs on it.
    Gc {
        /// Report what a run would delete; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Collect untagged manifests (and their signatures and other accessories) too.
        #[arg(long)]
        delete_untagged: bool,
        /// Nothing written more recently than this many seconds ago is collected.
        #[arg(long, env = "BERTH_GC_GRACE_SECS", default_value_t = 7_200)]
        grace_secs: u64,
        /// Take over a run that is under way, paused or stopped half-way, and carry it on from its
        /// last checkpoint with its own parameters (its cutoff, --delete-untagged).
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        storage: Storage,
    },
    /// Run a project's tag retention policy once (set it with Harbor's POST /retentions): each
    /// repository it applies to keeps what its rules retain, the rest is deleted with its
    /// signatures and other accessories; artifacts with an immutable tag stay. Prints a JSON line
    /// per repository, then the execution. The embedded store is single-process: not while
    /// `berth serve` runs on it.
    Retention {
        /// The project whose policy runs.
        project: String,
        /// Report what a run would delete; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        storage: Storage,
    },
    /// Hand the log's events to every subscription (the audit archive: <data-dir>/audit/, or audit/
    /// in the bucket) from each one's checkpoint on, a new one from the beginning; what `berth serve`
    /// does in its process on embedded storage and the projector function does from DynamoDB
    /// Streams. Prints a JSON line per subscription. The embedded store is single-process: not
    /// while `berth serve` runs on the same data dir.
    Project {
        /// Keep projecting new events until interrupted.
        #[arg(long)]
        follow: bool,
        /// With --follow, how often to look for new events, in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        poll_ms: u64,
        #[command(flatten)]
        storage: Storage,
    },
    /// Print how each subscription of the log stands: state (new, replaying, live), checkpoint,
    /// events behind and lag, one JSON line each (also `GET /api/v2.0/subscriptions`).
    Subscriptions {
        #[command(flatten)]
        storage: Storage,
    },
    /// Manage the AWS configuration's resources.
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
    /// Manage cosign signing keys.
    Key {
        #[command(subcommand)]
        command: crate::sign::KeyCommand,
    },
    /// Sign an image in any OCI registry as `cosign sign --key` does.
    Sign(crate::sign::SignArgs),
    /// Verify an image's cosign signatures as `cosign verify --key` does; exits 1 unless one verifies.
    Verify(crate::sign::VerifyArgs),
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create the S3 bucket and the DynamoDB table unless they exist.
    Init {
        #[command(flatten)]
        targets: AwsArgs,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StorageKind {
    /// One process: a redb file and blobs on local disk under --data-dir.
    Embedded,
    /// DynamoDB and S3, configured by the standard AWS environment variables.
    Aws,
}

/// `berth serve`'s data directory when none is named; the other commands use the same one.
const DEFAULT_DATA_DIR: &str = "./berth-data";

#[derive(Args)]
struct Storage {
    /// Where the event log, views and blobs live.
    #[arg(
        long,
        env = "BERTH_STORAGE",
        value_enum,
        default_value = "embedded",
        global = true
    )]
    storage: StorageKind,
    /// Where the embedded store keeps the event log, views and blobs (single process). `berth
    /// serve` creates it; the other commands need it to exist.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    data_dir: PathBuf,
    /// The embedded store's database page cache, in MiB: the most of the database the process
    /// keeps in memory.
    #[arg(long, env = "BERTH_CACHE_MIB", default_value_t = (berth::adapters::embedded::DEFAULT_CACHE_BYTES >> 20) as u64, global = true)]
    cache_mib: u64,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Args)]
struct BlobServing {
    /// Answer blob GETs with a 307 redirect to a presigned URL when the store has them (S3); the
    /// embedded store always streams.
    #[arg(long, env = "BERTH_BLOB_REDIRECT", default_value_t = true, action = clap::ArgAction::Set)]
    blob_redirect: bool,
    /// How long a blob redirect's presigned URL stays valid, in seconds (at most 7 days).
    #[arg(long, env = "BERTH_PRESIGN_TTL_SECS", default_value = "900", value_parser = berth::oci::host::parse_ttl)]
    presign_ttl_secs: Duration,
}

impl BlobServing {
    fn host(&self) -> Host {
        Host::container().with_blob_redirect(self.blob_redirect.then_some(self.presign_ttl_secs))
    }
}

#[derive(Args)]
struct AccessArgs {
    /// A push to a project that does not exist creates it (private, the pusher its admin) instead
    /// of being refused.
    #[arg(long, env = "BERTH_AUTO_CREATE_PROJECTS", default_value_t = false, action = clap::ArgAction::Set)]
    auto_create_projects: bool,
    /// How long a change of a project's content-trust configuration re-verifies its signatures
    /// before it answers, in seconds; pulls verify what is left.
    #[arg(long = "reverify-budget-secs", env = "BERTH_REVERIFY_BUDGET_SECS", default_value = "10", value_parser = berth::app::parse_reverify_budget)]
    reverify_budget: Duration,
}

#[derive(Args)]
struct AwsArgs {
    /// The S3 bucket for blobs (with --storage aws).
    #[arg(long, env = "BERTH_S3_BUCKET", global = true)]
    s3_bucket: Option<String>,
    /// The DynamoDB table for the event log and views (with --storage aws).
    #[arg(long, env = "BERTH_DYNAMODB_TABLE", global = true)]
    dynamodb_table: Option<String>,
}

/// How the server signs in its users and names itself in tokens.
#[derive(Args)]
struct AuthArgs {
    /// The system admin's password on first start (ignored once the admin exists); if absent, one
    /// is generated and printed once.
    #[arg(long, env = "BERTH_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// The URL clients reach the registry at (`https://registry.example.com`): the token realm in
    /// `WWW-Authenticate` challenges. If absent, taken from the request's Host header.
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    public_url: Option<String>,
    /// The `service` the token service names in challenges and tokens.
    #[arg(long, env = "BERTH_TOKEN_SERVICE", default_value = berth::oci::auth::DEFAULT_TOKEN_SERVICE)]
    token_service: String,
    /// How long an issued bearer token is valid, in seconds.
    #[arg(long, env = "BERTH_TOKEN_TTL_SECS", default_value_t = berth::oci::auth::DEFAULT_TOKEN_TTL_SECS)]
    token_ttl_secs: u64,
    /// Password checks (argon2) run at once; more wait in a queue.
    #[arg(long, env = "BERTH_AUTH_HASH_CONCURRENCY", default_value_t = berth::app::LoginLimits::default().hash_concurrency)]
    auth_hash_concurrency: usize,
    /// Password checks that may wait for a turn; beyond, sign-ins are answered 429.
    #[arg(long, env = "BERTH_AUTH_HASH_QUEUE", default_value_t = berth::app::LoginLimits::default().hash_queue)]
    auth_hash_queue: usize,
    /// Failed sign-ins per username or client address within a minute before they are refused
    /// for a while (429).
    #[arg(long, env = "BERTH_AUTH_MAX_FAILURES", default_value_t = berth::app::LoginLimits::default().max_failures)]
    auth_max_failures: u32,
}

impl AuthArgs {
    fn config(&self) -> berth::oci::AuthConfig {
        berth::oci::AuthConfig {
            service: self.token_service.clone(),
            public_url: (self.public_url.as_deref()).map(|u| u.trim_end_matches('/').to_string()),
            token_ttl: Duration::from_secs(self.token_ttl_secs.max(1)),
        }
    }

    fn login_limits(&self) -> berth::app::LoginLimits {
        berth::app::LoginLimits {
            hash_concurrency: self.auth_hash_concurrency.max(1),
            hash_queue: self.auth_hash_queue,
            max_failures: self.auth_max_failures.max(1),
        }
    }
}

impl AwsArgs {
    fn targets(&self) -> anyhow::Result<AwsTargets> {
        match (&self.s3_bucket, &self.dynamodb_table) {
            (Some(bucket), Some(table)) => Ok(AwsTargets {
                bucket: bucket.clone(),
                table: table.clone(),
            }),
            _ => anyhow::bail!("the AWS storage needs BERTH_S3_BUCKET and BERTH_DYNAMODB_TABLE"),
        }
    }
}

impl Storage {
    /// Opens the storage, creating an embedded store that does not exist yet (`berth serve`).
    async fn create_or_open(&self) -> anyhow::Result<Registry> {
        match self.storage {
            StorageKind::Embedded => {
                berth::adapters::local::open_with_cache(&self.data_dir, self.cache_bytes())
                    .with_context(|| "is another berth process using this data directory?")
            }
            StorageKind::Aws => Ok(berth::adapters::aws::open(&self.aws.targets()?).await),
        }
    }

    /// Opens an existing registry's storage (every command but `serve`): an embedded store that
    /// is not there is an error, not a new empty registry no server reads.
    async fn open(&self) -> anyhow::Result<Registry> {
        match self.storage {
            StorageKind::Embedded => {
                self.check_embedded_exists()?;
                eprintln!("berth: using the registry in {}", self.data_dir.display());
                berth::adapters::local::open_with_cache(&self.data_dir, self.cache_bytes())
                    .with_context(|| self.in_use())
            }
            StorageKind::Aws => Ok(berth::adapters::aws::open(&self.aws.targets()?).await),
        }
    }

    fn cache_bytes(&self) -> usize {
        usize::try_from(self.cache_mib.max(1).saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    fn check_embedded_exists(&self) -> anyhow::Result<()> {
        if self
            .data_dir
            .join(berth::adapters::local::DATABASE_FILE)
            .is_file()
        {
            return Ok(());
        }
        anyhow::bail!(
            "no registry in {}: `berth serve` creates one there (its default is {DEFAULT_DATA_DIR}); \
             name the data directory your server uses with --data-dir or BERTH_DATA_DIR",
            self.data_dir.display()
        )
    }

    fn in_use(&self) -> String {
        format!(
            "cannot open the registry in {}: if `berth serve` is running on it, it holds the store; \
             make the change through the server's REST API instead (/api/v2.0: projects, users, \
             members, robots; see README), or stop the server first",
            self.data_dir.display()
        )
    }
}

/// Events read per page when printing the log.
const LOG_PAGE: usize = 1024;

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve {
                listen,
                metrics_listen,
                storage,
                blobs,
                access,
                limits,
                auth,
                subscriptions,
            } => {
                let registry = storage
                    .create_or_open()
                    .await?
                    .with_auto_create_projects(access.auto_create_projects)
                    .with_reverify_budget(access.reverify_budget)
                    .with_login_limits(auth.login_limits());
                bootstrap(&registry, auth.admin_password.as_deref()).await?;
                let embedded = storage.storage == StorageKind::Embedded;
                if let Some(poll) = subscriptions.interval(embedded) {
                    let subscriptions = match storage.storage {
                        StorageKind::Embedded => {
                            berth::adapters::projection::local_for(&registry, &storage.data_dir)?
                        }
                        StorageKind::Aws => berth::adapters::projection::aws(&storage.aws.targets()?).await,
                    };
                    tracing::info!(names = ?subscriptions.names(), ?poll, "running the subscriptions");
                    tokio::spawn(crate::subscriptions::follow(
                        subscriptions,
                        poll,
                        false,
                        shutdown(),
                    ));
                }
                tokio::spawn(run_schedules(registry.clone()));
                let host = blobs.host();
                serve(listen, metrics_listen, registry, host, auth.config(), limits).await
            }
            Command::Admin { command, storage } => crate::admin::run(storage.open().await?, command).await,
            Command::RebuildViews { storage } => rebuild_views(storage.open().await?).await,
            Command::Log { storage } => print_log(storage.open().await?).await,
            Command::Janitor {
                max_age_secs,
                storage,
            } => expire_uploads(storage.open().await?, max_age_secs).await,
            Command::Gc {
                dry_run,
                delete_untagged,
                grace_secs,
                resume,
                storage,
            } => {
                let options = berth::app::GcOptions {
                    delete_untagged,
                    dry_run,
                    resume,
                    grace: Duration::from_secs(grace_secs),
                    ..berth::app::GcOptions::default()
                };
                let mut registry = storage.open().await?;
                if storage.storage == StorageKind::Embedded {
                    // The embedded store is this process's alone (its file is locked): no other
                    // writer can be deciding anything, so there is nothing to wait out.
                    registry = registry.with_gc_timing(berth::app::GcTiming::exclusive());
                }
                let report = registry.gc(options).await?;
                println!(
                    "{}",
                    serde_json::json!({
                        "run": report.run, "dry_run": dry_run,
                        "outcome": format!("{:?}", report.outcome),
                        "manifests_deleted": report.manifests_deleted,
                        "manifests_held_by_immutable_tags": report.manifests_held,
                        "links_removed": report.links_removed,
                        "blobs_deleted": report.blobs_deleted,
                        "bytes_freed": report.bytes_freed,
                        "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                    })
                );
                Ok(())
            }
            Command::Retention {
                project,
                dry_run,
                storage,
            } => retention(storage.open().await?, &project, dry_run).await,
            Command::Project {
                follow,
                poll_ms,
                storage,
            } => project(&storage, follow, std::time::Duration::from_millis(poll_ms)).await,
            Command::Subscriptions { storage } => {
                crate::subscriptions::print_status(storage.open().await?).await
            }
            Command::Aws {
                command: AwsCommand::Init { targets },
            } => {
                let targets = targets.targets()?;
                berth::adapters::aws::init(&targets).await?;
                eprintln!("bucket {} and table {} are ready", targets.bucket, targets.table);
                Ok(())
            }
            Command::Key { command } => crate::sign::key(command),
            Command::Sign(args) => crate::sign::sign(args).await,
            Command::Verify(args) => crate::sign::verify(args).await,
        }
    }
}

/// How often `berth serve` looks for scheduled work that is due, unless `BERTH_SCHEDULE_POLL_SECS`
/// says otherwise.
const SCHEDULE_POLL: Duration = Duration::from_secs(30);

/// Runs the retention policies, replication policies and garbage collection whose schedules fired, every
/// [`SCHEDULE_POLL`], for as long as the server runs (several servers on one store start each
/// firing once: the start is decided on the policy's or the `gc` stream).
async fn run_schedules(registry: Registry) {
    let ctx = berth::app::RequestContext::as_principal(berth::domain::access::Principal::system());
    let poll = match std::env::var("BERTH_SCHEDULE_POLL_SECS") {
        Err(_) => SCHEDULE_POLL,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => {
                tracing::error!(value = %v, "BERTH_SCHEDULE_POLL_SECS is not a positive number of seconds; using 30");
                SCHEDULE_POLL
            }
        },
    };
    let mut tick = tokio::time::interval(poll);
    loop {
        tick.tick().await;
        match registry.run_due_retentions(&ctx, chrono::Utc::now()).await {
            Ok(ran) => {
                for execution in ran {
                    tracing::info!(policy = execution.policy, execution = execution.id, status = %execution.status, "scheduled retention ran");
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduled retention: will look again"),
        }
        match registry.run_due_replications(&ctx, chrono::Utc::now()).await {
            Ok(ran) => {
                for execution in ran {
                    tracing::info!(policy = execution.policy, execution = execution.id, status = %execution.status, "scheduled replication ran");
                }
            }
            Err(e) => tracing::warn!(error = %e, "scheduled replication: will look again"),
        }
        match registry.run_due_gc(chrono::Utc::now(), None).await {
            Ok(Some(report)) => {
                tracing::info!(
                    run = report.run,
                    outcome = ?report.outcome,
                    bytes_freed = report.bytes_freed,
                    "scheduled garbage collection ran"
                )
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "scheduled garbage collection: will look again"),
        }
    }
}

/// `berth retention`: one manual run of the project's policy, by the system.
async fn retention(registry: Registry, project: &str, dry_run: bool) -> anyhow::Result<()> {
    let project = berth::domain::access::ProjectName::parse(project)?;
    let ctx = berth::app::RequestContext::as_principal(berth::domain::access::Principal::system());
    let execution = registry
        .run_retention(&ctx, &project, dry_run, berth::app::RetentionTrigger::Manual)
        .await?;
    for task in &execution.tasks {
        println!(
            "{}",
            serde_json::json!({
                "repository": task.repository.to_string(), "status": task.status,
                "total": task.total, "retained": task.retained, "deleted": task.deleted,
                "error": task.error,
            })
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "policy": execution.policy, "execution": execution.id, "dry_run": execution.dry_run,
            "status": execution.status, "repositories": execution.tasks.len(),
            "deleted": execution.tasks.iter().map(|t| t.deleted).sum::<u64>(),
        })
    );
    if execution.status != "Success" {
        anyhow::bail!("retention execution {} ended {}", execution.id, execution.status);
    }
    Ok(())
}

/// The system admin and the `library` project on first start. The admin's password comes from
/// `--admin-password` (`BERTH_ADMIN_PASSWORD`), or is generated and printed once on stdout (never
/// logged).
async fn bootstrap(registry: &Registry, password: Option<&str>) -> anyhow::Result<()> {
    let password = password.filter(|p| !p.is_empty());
    let done = registry.bootstrap(password).await?;
    if let Some(generated) = done.generated_admin_password {
        println!(
            "berth: created the system admin {:?}; its password, shown this once: {generated}",
            berth::app::ADMIN_USERNAME
        );
    } else if done.created_admin {
        tracing::info!(
            "created the system admin {:?} (password from BERTH_ADMIN_PASSWORD)",
            berth::app::ADMIN_USERNAME
        );
    }
    if done.created_default_project {
        tracing::info!("created the public project library");
    }
    // The first token key, now rather than on the first login.
    registry.token_keys().await?;
    Ok(())
}

async fn serve(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    registry: Registry,
    host: Host,
    auth: berth::oci::AuthConfig,
    limits: crate::serve::ConnectionLimits,
) -> anyhow::Result<()> {
    if let Some(metrics_listen) = metrics_listen {
        serve_metrics(metrics_listen).await?;
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("berth listening on http://{}", listener.local_addr()?);
    crate::serve::run(listener, berth::oci::router(registry, host, auth), limits).await
}

/// Serves `GET /metrics` ([`berth::metrics::render`]) on `listen`, in the background for the
/// process's lifetime. A listener of its own, so the registry's port never exposes the counters.
async fn serve_metrics(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the metrics"))?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    let metrics = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            let content_type = [(axum::http::header::CONTENT_TYPE, berth::metrics::CONTENT_TYPE)];
            (content_type, berth::metrics::render())
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, metrics).await {
            tracing::warn!("the metrics listener stopped: {e}");
        }
    });
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c.
pub(crate) async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

async fn rebuild_views(registry: Registry) -> anyhow::Result<()> {
    let report = registry.rebuild_views().await?;
    let summary = serde_json::json!({
        "events": report.events,
        "identical": report.identical(),
        "missing": report.missing,
        "unexpected": report.unexpected,
    });
    println!("{summary}");
    if !report.identical() {
        std::process::exit(1);
    }
    Ok(())
}

async fn print_log(registry: Registry) -> anyhow::Result<()> {
    let mut after = berth::domain::LogPosition::start();
    loop {
        let page = registry.log().read_all(&after, LOG_PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.position.clone();
        for event in &page {
            println!("{}", berth::events_out::to_json(event)?);
        }
    }
}

async fn expire_uploads(registry: Registry, max_age_secs: u64) -> anyhow::Result<()> {
    let expired = registry
        .expire_uploads(std::time::Duration::from_secs(max_age_secs))
        .await?;
    println!("{}", serde_json::json!({ "expired_uploads": expired }));
    Ok(())
}

async fn project(storage: &Storage, follow: bool, poll: std::time::Duration) -> anyhow::Result<()> {
    let subscriptions = match storage.storage {
        StorageKind::Embedded => {
            storage.check_embedded_exists()?;
            berth::adapters::projection::local(&storage.data_dir).with_context(|| storage.in_use())?
        }
        StorageKind::Aws => berth::adapters::projection::aws(&storage.aws.targets()?).await,
    };
    if follow {
        crate::subscriptions::follow(subscriptions, poll, true, shutdown()).await;
        return Ok(());
    }
    let mut failed = false;
    for outcome in subscriptions.catch_up().await {
        failed |= outcome.result.is_err();
        println!("{}", crate::subscriptions::report(&outcome));
    }
    if failed {
        anyhow::bail!("a subscription stopped at an event it could not handle (see its line)");
    }
    Ok(())
}
