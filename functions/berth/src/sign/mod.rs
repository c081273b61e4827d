//! cosign-compatible signing from the CLI, against any registry speaking the OCI distribution
//! API: `berth key generate`, `berth sign` and `berth verify` read and write what
//! `cosign generate-key-pair`, `cosign sign --key` and `cosign verify --key` do (key files,
//! simple-signing payloads, the `sha256-<hex>.sig` tag scheme), plus OCI 1.1 referrers.
//!
//! - the registry client, image references and the OCI documents are the library's
//!   ([`berth::registry_client`]); [`auth`]: the credentials from the flags or docker's config;
//! - [`keys`]: key files and passwords;
//! - [`push`]: signing and pushing; [`verify`]: gathering and verifying.

mod auth;
mod keys;
mod push;
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use berth::registry_client::documents::MANIFEST_TYPES;
use berth::registry_client::{Access, Fetched, ImageRef, RegistryClient};

/// `berth key ...`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a cosign key pair: `<prefix>.key` (encrypted with $COSIGN_PASSWORD, else with a
    /// password asked twice on the terminal; empty is allowed) and `<prefix>.pub`.
    Generate {
        /// Where to write the keys: `<prefix>.key` and `<prefix>.pub`.
        #[arg(long, default_value = "cosign")]
        output_key_prefix: String,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
}

/// How to reach a registry.
#[derive(Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (implied for localhost, 127.0.0.0/8 and [::1]).
    #[arg(long)]
    plain_http: bool,
    /// The registry username (else from ~/.docker/config.json's `auths`).
    #[arg(long, env = "BERTH_USERNAME")]
    username: Option<String>,
    /// The registry password or token.
    #[arg(long, env = "BERTH_PASSWORD", hide_env_values = true)]
    password: Option<String>,
}

/// `berth sign`.
#[derive(Args)]
pub struct SignArgs {
    /// The private key: a `<prefix>.key` of `berth key generate` or `cosign generate-key-pair`
    /// (its password from $COSIGN_PASSWORD, else asked on the terminal).
    #[arg(long)]
    key: PathBuf,
    /// Push the signature as an OCI 1.1 referrer of the image (a manifest whose `subject` is the
    /// image) instead of under cosign's `sha256-<hex>.sig` tag.
    #[arg(long)]
    referrer: bool,
    /// Sign `key=value` along, in the payload's `optional` (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    /// The image: `host[:port]/repository[:tag|@digest]`.
    image: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// `berth verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The public key: a `<prefix>.pub` of `berth key generate` or cosign.
    #[arg(long)]
    key: PathBuf,
    /// Accept only signatures whose payload's `optional` has `key=value` (repeatable).
    #[arg(long = "annotation", short = 'a', value_name = "KEY=VALUE", value_parser = parse_annotation)]
    annotations: Vec<(String, String)>,
    /// Require every signature to carry a Rekor bundle (`dev.sigstore.cosign/bundle`) whose
    /// signed entry timestamp verifies with this Rekor public key (repeatable; PEM).
    #[arg(long = "rekor-key", value_name = "PEM")]
    rekor_keys: Vec<PathBuf>,
    /// The image: `host[:port]/repository[:tag|@digest]`.
    image: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn parse_annotation(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

/// `berth key <command>`.
pub fn key(command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Generate {
            output_key_prefix,
            force,
        } => keys::generate(&output_key_prefix, force),
    }
}

/// `berth sign`.
pub async fn sign(args: SignArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image).map_err(anyhow::Error::msg)?;
    let key = keys::load_private(&args.key)?;
    let client = connect(&image, &args.registry, Access::PullPush)?;
    let annotations: BTreeMap<String, String> = args.annotations.into_iter().collect();
    let pushed = push::sign(&client, &image, &key, &annotations, args.referrer).await?;
    println!("{pushed}");
    Ok(())
}

/// `berth verify`.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let image = ImageRef::parse(&args.image).map_err(anyhow::Error::msg)?;
    let key = keys::load_public(&args.key)?;
    let rekor_keys = (args.rekor_keys.iter())
        .map(|path| keys::load_public(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = connect(&image, &args.registry, Access::Pull)?;
    let annotations: BTreeMap<String, String> = args.annotations.into_iter().collect();
    verify::verify(&client, &image, &[key], &rekor_keys, &annotations).await
}

fn connect(image: &ImageRef, registry: &RegistryArgs, access: Access) -> anyhow::Result<RegistryClient> {
    let credentials = auth::credentials(
        registry.username.as_deref(),
        registry.password.as_deref(),
        &image.registry,
    )?;
    Ok(RegistryClient::new(
        image,
        registry.plain_http,
        credentials,
        access,
    )?)
}

/// The manifest `image` names (its digest computed from the bytes served).
async fn resolve(client: &RegistryClient, image: &ImageRef) -> anyhow::Result<Fetched> {
    match client.manifest(image.reference(), &MANIFEST_TYPES).await? {
        Some(fetched) => Ok(fetched),
        None => anyhow::bail!("{image}: no such manifest in the registry"),
    }
}
