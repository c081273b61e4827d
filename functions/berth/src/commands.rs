//! The CLI's commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::serve::ListenerExt;
use clap::{Args, Parser, Subcommand};

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
        data: DataDir,
    },
    /// Drop every view, replay the event log, and compare with the views before (server stopped).
    /// Exits 1 if the rebuilt views differ.
    RebuildViews {
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the event log as CloudEvents 1.0, one JSON object per line (server stopped).
    Log {
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Args)]
struct DataDir {
    /// Where the embedded store keeps the event log, views and blobs.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./berth-data")]
    data_dir: PathBuf,
}

impl DataDir {
    fn open(&self) -> anyhow::Result<berth::app::Registry> {
        berth::adapters::local::open(&self.data_dir)
            .with_context(|| "is another berth process using this data directory?")
    }
}

/// Events read per page when printing the log.
const LOG_PAGE: usize = 1024;

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve { listen, data } => serve(listen, data.open()?).await,
            Command::RebuildViews { data } => rebuild_views(data.open()?).await,
            Command::Log { data } => print_log(data.open()?).await,
        }
    }
}

async fn serve(listen: SocketAddr, registry: berth::app::Registry) -> anyhow::Result<()> {
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

async fn rebuild_views(registry: berth::app::Registry) -> anyhow::Result<()> {
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

async fn print_log(registry: berth::app::Registry) -> anyhow::Result<()> {
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
