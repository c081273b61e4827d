//! `berth`: the local registry server (the container host of the same router the Lambda `api`
//! function serves) and the operator's CLI.

mod admin;
mod commands;
mod serve;
mod sign;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    commands::Cli::parse().run().await
}
