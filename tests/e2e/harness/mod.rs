//! The end-to-end harness: the registry process ([`server`]), HTTP helpers ([`http`]), OCI layouts
//! built in Rust ([`layout`]) and the external clients (skopeo, docker) run as processes.

pub mod api;
pub mod bearer;
pub mod cases;
pub mod fault_proxy;
pub mod http;
pub mod lambda_front;
pub mod layout;
pub mod server;

use std::process::{Command, Output};

pub use api::*;
pub use bearer::*;
pub use cases::*;
pub use http::*;
pub use layout::*;
pub use server::*;

/// The system admin's password every Berth the harness starts is bootstrapped with.
pub const ADMIN_PASSWORD: &str = "Berth-e2e-Admin-1";

/// `Authorization: Basic` for `user:secret`.
pub fn basic_auth(user: &str, secret: &str) -> String {
    use base64ct::Encoding as _;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{secret}").as_bytes())
    )
}

/// An HTTP client builder whose requests carry the admin's Basic credentials (other registries
/// ignore them).
pub fn admin_client() -> reqwest::blocking::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&basic_auth("admin", ADMIN_PASSWORD)).unwrap();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::blocking::Client::builder().default_headers(headers)
}

/// `--creds` style flags for `args`: the admin's, on each registry side that has none yet.
fn admin_creds(args: &[&str]) -> Vec<String> {
    let creds = format!("admin:{ADMIN_PASSWORD}");
    let has = |flag: &str| args.iter().any(|a| a.starts_with(flag));
    let remote: Vec<usize> = (args.iter().enumerate())
        .filter(|(_, a)| a.starts_with("docker://"))
        .map(|(i, _)| i)
        .collect();
    let mut extra = vec![];
    if args.first() == Some(&"copy") {
        let (src, dest) = (args.len().saturating_sub(2), args.len().saturating_sub(1));
        if remote.contains(&src) && !has("--src-creds") && !has("--src-no-creds") {
            extra.push(format!("--src-creds={creds}"));
        }
        if remote.contains(&dest) && !has("--dest-creds") && !has("--dest-no-creds") {
            extra.push(format!("--dest-creds={creds}"));
        }
    } else if !remote.is_empty() && !has("--creds") && !has("--no-creds") {
        extra.push(format!("--creds={creds}"));
    }
    extra
}

/// Runs `skopeo --insecure-policy <args>` (no signature policy file needed) and returns its output.
/// Registry references get the admin's credentials unless `args` name their own (or `--no-creds`).
pub fn skopeo(args: &[&str]) -> Output {
    let creds = admin_creds(args);
    let (command, rest) = args.split_first().map_or(("", &[][..]), |(c, r)| (*c, r));
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .arg(command)
        .args(&creds)
        .args(rest)
        .output()
        .unwrap_or_else(|e| panic!("cannot run skopeo (apt install skopeo): {e}"));
    eprintln!("$ skopeo {} -> {}", args.join(" "), out.status);
    out
}

/// Runs skopeo and asserts it succeeds; returns its stdout.
pub fn skopeo_ok(args: &[&str]) -> String {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {} failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo copy` from an `oci:` layout reference to the registry (plain HTTP).
pub fn skopeo_push(src: &str, dest: &str, extra: &[&str]) {
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[src, dest]);
    skopeo_ok(&args);
}

/// `skopeo copy` from the registry (plain HTTP) to a local reference.
pub fn skopeo_pull(src: &str, dest: &str, extra: &[&str]) {
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[src, dest]);
    skopeo_ok(&args);
}

/// Runs `docker <args>`; returns the output (the caller decides what failure means).
pub fn docker(args: &[&str]) -> Output {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
    eprintln!("$ docker {} -> {}", args.join(" "), out.status);
    out
}

/// Runs docker and asserts it succeeds; returns its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker login` to the registry as the admin (docker keeps the credentials per host:port).
pub fn docker_login(reg: &Registry) {
    use std::io::Write as _;
    let mut child = Command::new("docker")
        .args(["login", &reg.host(), "-u", "admin", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ADMIN_PASSWORD.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker login {} failed: {}",
        reg.host(),
        String::from_utf8_lossy(&out.stderr)
    );
}
