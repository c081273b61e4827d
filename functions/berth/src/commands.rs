//! The CLI's commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::serve::ListenerExt;
use berth::adapters::aws::AwsTargets;
use berth::app::Registry;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "berth", version, about = "A container registry with content trust")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OCI distribution API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BERTH_LISTEN", default_value = "127.0.0.1:5000")]
        listen: SocketAddr,
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
    /// Manage the AWS configuration's resources.
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
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

#[derive(Args)]
struct Storage {
    /// Where the event log, views and blobs live.
    #[arg(long, env = "BERTH_STORAGE", value_enum, default_value = "embedded")]
    storage: StorageKind,
    /// Where the embedded store keeps the event log, views and blobs (single process).
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./berth-data")]
    data_dir: PathBuf,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Args)]
struct AwsArgs {
    /// The S3 bucket for blobs (with --storage aws).
    #[arg(long, env = "BERTH_S3_BUCKET")]
    s3_bucket: Option<String>,
    /// The DynamoDB table for the event log and views (with --storage aws).
    #[arg(long, env = "BERTH_DYNAMODB_TABLE")]
    dynamodb_table: Option<String>,
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
    async fn open(&self) -> anyhow::Result<Registry> {
        match self.storage {
            StorageKind::Embedded => berth::adapters::local::open(&self.data_dir)
                .with_context(|| "is another berth process using this data directory?"),
            StorageKind::Aws => Ok(berth::adapters::aws::open(&self.aws.targets()?).await),
        }
    }
}

/// Events read per page when printing the log.
const LOG_PAGE: usize = 1024;

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve { listen, storage } => serve(listen, storage.open().await?).await,
            Command::RebuildViews { storage } => rebuild_views(storage.open().await?).await,
            Command::Log { storage } => print_log(storage.open().await?).await,
            Command::Aws {
                command: AwsCommand::Init { targets },
            } => {
                let targets = targets.targets()?;
                berth::adapters::aws::init(&targets).await?;
                eprintln!("bucket {} and table {} are ready", targets.bucket, targets.table);
                Ok(())
            }
        }
    }
}

async fn serve(listen: SocketAddr, registry: Registry) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("berth listening on http://{}", listener.local_addr()?);
    // Small responses (manifest HEAD/GET) must not wait for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, berth::oci::router(registry))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn shutdown() {
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
    let mut after = 0;
    loop {
        let page = registry.log().read_all(after, LOG_PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.sequence;
        for event in &page {
            println!("{}", berth::events_out::to_json(event)?);
        }
    }
}
