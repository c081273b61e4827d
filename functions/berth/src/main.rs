//! `berth`: the local registry server (the container host of the same router the Lambda `api`
//! function serves) and the operator's CLI.

mod admin;
mod commands;
mod serve;
mod sign;
mod subscriptions;

use std::io::IsTerminal as _;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = commands::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .map_err(|e| anyhow::anyhow!("--log / BERTH_LOG {:?}: {e}", cli.log))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    cli.run().await
}
