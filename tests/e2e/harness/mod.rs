//! The end-to-end harness: the registry process ([`server`]), HTTP helpers ([`http`]), OCI layouts
//! built in Rust ([`layout`]) and the external clients (skopeo, docker) run as processes.

pub mod cases;
pub mod http;
pub mod lambda_front;
pub mod layout;
pub mod server;

use std::process::{Command, Output};

pub use cases::*;
pub use http::*;
pub use layout::*;
pub use server::*;

/// Runs `skopeo --insecure-policy <args>` (no signature policy file needed) and returns its output.
pub fn skopeo(args: &[&str]) -> Output {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
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
