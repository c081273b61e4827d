//! Registries started as processes on 127.0.0.1 (`berth serve`, Debian's docker-registry 2.8),
//! a small image pushed over the distribution API, and the `berth` CLI run against them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// The password of `admin`, the system admin every Berth started here is bootstrapped with.
pub const ADMIN_PASSWORD: &str = "Berth-sign-Admin-1";
/// Where Debian's `docker-registry` package installs distribution 2.8.
const DISTRIBUTION_BIN: &str = "/usr/bin/docker-registry";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Berth,
    Distribution,
}

/// A registry process with its own data directory, killed on drop.
pub struct Registry {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    work: TempDir,
}

impl Registry {
    /// `berth serve` on embedded storage; pushes need the admin's credentials.
    pub fn berth() -> Registry {
        Registry::start(Kind::Berth)
    }

    /// docker-registry 2.8 (no authentication), or `None` after saying why when it is absent.
    pub fn distribution() -> Option<Registry> {
        if !Path::new(DISTRIBUTION_BIN).is_file() {
            eprintln!("SKIPPED: {DISTRIBUTION_BIN} is absent (Debian package docker-registry)");
            return None;
        }
        Some(Registry::start(Kind::Distribution))
    }

    fn start(kind: Kind) -> Registry {
        let work = tempfile::Builder::new().prefix("berth-sign-").tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("data")).unwrap();
        let mut last = String::new();
        // A port freed by free_port() may be taken by a parallel test before we bind it: retry.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(work.path().join("server.log")).unwrap();
            let mut command = match kind {
                Kind::Berth => {
                    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
                    c.arg("serve")
                        .arg("--listen")
                        .arg(format!("127.0.0.1:{port}"))
                        .arg("--data-dir")
                        .arg(work.path().join("data"))
                        .arg("--auto-create-projects=true")
                        .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
                        .env("BERTH_LOG", "warn")
                        .env_remove("BERTH_STORAGE")
                        .env_remove("BERTH_PUBLIC_URL");
                    c
                }
                Kind::Distribution => {
                    let mut c = Command::new(DISTRIBUTION_BIN);
                    c.arg("serve").arg(distribution_config(work.path(), port));
                    c
                }
            };
            let mut child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {kind:?}: {e}"));
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Registry {
                        kind,
                        port,
                        child,
                        work,
                    }
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(work.path().join("server.log")).unwrap_or_default();
                    last = format!("{why}\n{log}");
                }
            }
        }
        panic!("{kind:?} did not start: {last}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("server.log")).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    /// A client authenticated as the admin (Berth takes Basic credentials on /v2/; distribution
    /// ignores them).
    pub fn http(&self) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let basic = basic(&format!("admin:{ADMIN_PASSWORD}"));
        headers.insert(reqwest::header::AUTHORIZATION, basic.parse().unwrap());
        Client::builder().default_headers(headers).build().unwrap()
    }

    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let http = self.http();
        let resp = http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "POST upload: {}",
            resp.text().unwrap()
        );
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            self.url(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = http
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "PUT upload: {}",
            resp.text().unwrap()
        );
        digest
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) {
        let resp = self
            .http()
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "PUT manifest: {}",
            resp.text().unwrap()
        );
    }

    /// Pushes a one-layer OCI image as `repo:tag`; returns its manifest digest.
    pub fn push_image(&self, repo: &str, tag: &str) -> String {
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        let layer_digest = self.push_blob(repo, &layer);
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = self.push_blob(repo, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        self.put_manifest(repo, tag, "application/vnd.oci.image.manifest.v1+json", &manifest);
        sha256(&manifest)
    }

    /// The JSON document at `path` (a manifest, blob or referrers list), or `None` on 404.
    pub fn get_json(&self, path: &str, accept: &str) -> Option<Value> {
        let resp = self
            .http()
            .get(self.url(path))
            .header("accept", accept)
            .send()
            .unwrap();
        if resp.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        Some(serde_json::from_slice(&resp.bytes().unwrap()).unwrap())
    }

    pub fn get_bytes(&self, path: &str) -> Vec<u8> {
        let resp = self.http().get(self.url(path)).send().unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.bytes().unwrap().to_vec()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- {:?} log (last lines) ---", self.kind);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn distribution_config(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("config.yml");
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
         rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join("data").display()
    );
    std::fs::write(&path, config).unwrap();
    path
}

/// Waits until the registry on `port` answers `GET /v2/` (200, or 401 asking to sign in).
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let http = Client::new();
    let url = format!("http://127.0.0.1:{port}/v2/");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        if let Ok(resp) = http.get(&url).timeout(Duration::from_secs(2)).send() {
            if matches!(resp.status(), StatusCode::OK | StatusCode::UNAUTHORIZED) {
                // Another test's server may hold the port while ours fails to bind it.
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited with {status} (port taken?)"));
                }
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err("GET /v2/ did not answer within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn basic(pair: &str) -> String {
    use base64ct::Encoding as _;
    format!("Basic {}", base64ct::Base64::encode_string(pair.as_bytes()))
}

/// A working directory for the CLI (its key files) with no docker config of its own.
pub struct Workdir {
    pub dir: TempDir,
}

/// What a `berth` run printed and how it ended.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ok: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::Builder::new()
                .prefix("berth-sign-cli-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `berth <args>` in this directory, as the admin, with `COSIGN_PASSWORD=<password>`.
    pub fn berth(&self, args: &[&str]) -> Run {
        self.berth_with(
            args,
            &[("BERTH_USERNAME", "admin"), ("BERTH_PASSWORD", ADMIN_PASSWORD)],
        )
    }

    /// `berth <args>` with `env` on top of `COSIGN_PASSWORD` and an empty `HOME`.
    pub fn berth_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("COSIGN_PASSWORD", "correct horse")
            .env_remove("BERTH_USERNAME")
            .env_remove("BERTH_PASSWORD")
            .env_remove("DOCKER_CONFIG")
            .env("RUST_LIB_BACKTRACE", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let run = Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("$ berth {}\n{run:?}", args.join(" "));
        run
    }

    /// `berth key generate --output-key-prefix <prefix>`, asserted to succeed.
    pub fn generate_key(&self, prefix: &str) {
        let run = self.berth(&["key", "generate", "--output-key-prefix", prefix]);
        assert!(run.ok, "{run:?}");
    }
}
