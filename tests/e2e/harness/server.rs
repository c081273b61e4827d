//! Starting, stopping, killing and restarting the registry under test, and Berth's offline CLI.
//!
//! Every server binds 127.0.0.1 on an ephemeral port and keeps its data in its own temporary
//! directory (or, on the local AWS stack, its own bucket and table); the child processes are killed
//! when the [`Registry`] is dropped.
//!
//! `BERTH_E2E_TARGET` picks what the whole suite runs against:
//! - `berth` (default): `berth serve` on embedded storage;
//! - `aws`: `berth serve --storage aws` on the local stack (`scripts/local-stack.sh`): blobs in
//!   s3s-fs, which checks SigV4 signatures (so blob pulls follow real presigned redirects), the log
//!   and views in DynamoDB on moto;
//! - `lambda`: the `api` Lambda function under cargo-lambda's emulator on the same stack;
//! - `distribution`: Debian's docker-registry, to check the portable tests themselves.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;
use tempfile::TempDir;

/// Which registry the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The `berth` binary of this workspace (the default).
    Berth,
    /// Debian's `docker-registry` (distribution 2.8), to validate the portable tests themselves:
    /// `BERTH_E2E_TARGET=distribution`.
    Distribution,
}

/// How Berth is deployed for the suite (meaningful for [`Target::Berth`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// `berth serve` with embedded storage.
    Embedded,
    /// `berth serve --storage aws` on the local AWS stack.
    Aws,
    /// The `api` function in cargo-lambda's emulator, on the local AWS stack.
    Lambda,
}

fn selection() -> (Target, Deployment) {
    match std::env::var("BERTH_E2E_TARGET").as_deref() {
        Ok("distribution") => (Target::Distribution, Deployment::Embedded),
        Ok("berth") | Ok("") | Err(_) => (Target::Berth, Deployment::Embedded),
        Ok("aws") => (Target::Berth, Deployment::Aws),
        Ok("lambda") => (Target::Berth, Deployment::Lambda),
        Ok(other) => {
            panic!("BERTH_E2E_TARGET={other}: expected `berth`, `aws`, `lambda` or `distribution`")
        }
    }
}

pub fn target() -> Target {
    selection().0
}

pub fn deployment() -> Deployment {
    selection().1
}

/// The environment for berth processes on the local AWS stack with a fresh bucket and table of their
/// own, after `berth aws init` created them; `None` (after saying why) when AWS tests are skipped
/// on purpose (`BERTH_SKIP_AWS_TESTS=1`).
pub fn local_stack_env() -> Option<Vec<(String, String)>> {
    if std::env::var("BERTH_SKIP_AWS_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: BERTH_SKIP_AWS_TESTS=1");
        return None;
    }
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!(
                "{name} is not set: run `scripts/local-stack.sh up` and `eval \"$(scripts/local-stack.sh env)\"`"
            )
        })
    };
    let name = format!("e2e-{}", random_hex(12));
    let env: Vec<(String, String)> = vec![
        ("BERTH_STORAGE".into(), "aws".into()),
        ("BERTH_S3_BUCKET".into(), name.clone()),
        ("BERTH_DYNAMODB_TABLE".into(), name),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_ENDPOINT_URL_S3".into(), var("BERTH_TEST_S3_S3SFS_ENDPOINT")),
        (
            "AWS_ACCESS_KEY_ID".into(),
            var("BERTH_TEST_S3_S3SFS_ACCESS_KEY_ID"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            var("BERTH_TEST_S3_S3SFS_SECRET_ACCESS_KEY"),
        ),
        (
            "AWS_ENDPOINT_URL_DYNAMODB".into(),
            var("AWS_ENDPOINT_URL_DYNAMODB"),
        ),
    ];
    let out = Command::new(berth_bin())
        .args(["aws", "init"])
        .envs(env.iter().cloned())
        .output()
        .expect("run berth aws init");
    assert!(
        out.status.success(),
        "berth aws init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(env)
}

fn random_hex(n: usize) -> String {
    hex::encode(super::http::random_bytes(n.div_ceil(2)))[..n].to_owned()
}

/// A workspace binary: `$<var>`, else `<workspace>/target/debug/<name>`.
fn workspace_bin(var: &str, name: &str) -> PathBuf {
    let bin = match std::env::var_os(var) {
        Some(path) => PathBuf::from(path),
        None => workspace().join("target/debug").join(name),
    };
    assert!(
        bin.is_file(),
        "the {name} binary is missing at {}: run `cargo build --workspace` first (or set {var})",
        bin.display()
    );
    bin
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// cargo-lambda's binary: `$BERTH_CARGO_LAMBDA`, else the project venv's (`scripts/test.sh`
/// installs it there), else `cargo-lambda` on the PATH.
pub fn cargo_lambda_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTH_CARGO_LAMBDA") {
        return PathBuf::from(path);
    }
    let venv = workspace().join(".venv/bin/cargo-lambda");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("cargo-lambda")
    }
}

/// True when running against distribution; prints why the caller skips. Use at the top of tests
/// that need a Berth-only feature (referrers API, `berth log`, `rebuild-views`, crash recovery).
pub fn skip_unless_berth(why: &str) -> bool {
    if target() == Target::Berth {
        return false;
    }
    eprintln!("SKIPPED under BERTH_E2E_TARGET=distribution: {why}");
    true
}

/// The `berth` binary: `$BERTH_BIN`, else `<workspace>/target/debug/berth`.
pub fn berth_bin() -> PathBuf {
    workspace_bin("BERTH_BIN", "berth")
}

/// Follows 307s (a blob GET redirected to a presigned object-store URL, as docker and skopeo do) and
/// nothing else: other redirects are answers the tests inspect.
fn follow_blob_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.status() == reqwest::StatusCode::TEMPORARY_REDIRECT && attempt.previous().len() < 3 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A running (or stopped) registry with its own data directory.
pub struct Registry {
    pub target: Target,
    pub deployment: Deployment,
    pub http: Client,
    work: TempDir,
    child: Option<Child>,
    /// The Lambda emulator in front of `child` (the `api` function) in the Lambda deployment.
    emulator: Option<Child>,
    /// Where the emulator listens, read by the [`lambda_front`] clients connect to (`port`).
    emulator_port: Arc<AtomicU16>,
    port: u16,
    /// Extra environment for the `berth` processes (e.g. the AWS storage configuration).
    env: Vec<(String, String)>,
    /// A command `berth serve` runs under (e.g. `prlimit --nofile=512:`), empty for none.
    launcher: Vec<String>,
    /// The data directory when the test chose it (a small file system, say); else `work/data`.
    data: Option<PathBuf>,
}

impl Registry {
    /// Starts a fresh registry on an empty data directory.
    pub fn start() -> Registry {
        Registry::start_with_env(vec![])
    }

    /// Starts a fresh registry whose `berth` processes (server and CLI) get `env` too. Under the
    /// `aws` and `lambda` targets a fresh bucket and table are added unless `env` names its own.
    pub fn start_with_env(env: Vec<(String, String)>) -> Registry {
        Registry::start_with(env, None, &[])
    }

    /// Starts a fresh registry as [`Registry::start_with_env`] does, `berth serve` run under
    /// `launcher` (a command that execs its arguments, as `prlimit --nofile=512:` does).
    pub fn start_under(env: Vec<(String, String)>, launcher: &[&str]) -> Registry {
        Registry::start_with(env, None, launcher)
    }

    /// Starts a fresh registry keeping its data in `data_dir` (which must exist and be empty), for
    /// tests that need a particular file system under it.
    pub fn start_on(data_dir: &Path) -> Registry {
        Registry::start_with(vec![], Some(data_dir.to_path_buf()), &[])
    }

    /// Starts Debian's `docker-registry` (distribution 2.8) whatever the target: a peer that tests
    /// of Berth talk to (a replication destination without the referrers API).
    pub fn start_distribution() -> Registry {
        Registry::start_as((Target::Distribution, Deployment::Embedded), vec![], None, &[])
    }

    fn start_with(env: Vec<(String, String)>, data: Option<PathBuf>, launcher: &[&str]) -> Registry {
        Registry::start_as(selection(), env, data, launcher)
    }

    fn start_as(
        (target, deployment): (Target, Deployment),
        mut env: Vec<(String, String)>,
        data: Option<PathBuf>,
        launcher: &[&str],
    ) -> Registry {
        let names_storage = env.iter().any(|(k, _)| k == "BERTH_STORAGE");
        if target == Target::Berth && deployment != Deployment::Embedded && !names_storage {
            match local_stack_env() {
                Some(stack) => env.extend(stack),
                None => panic!("BERTH_E2E_TARGET={deployment:?} needs the local AWS stack"),
            }
        }
        let work = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir_all(work.path().join("data")).expect("data dir");
        if target == Target::Berth {
            // Embedded storage makes its own key in the data directory; the AWS hosts are given
            // one, as a deployment's configuration gives it.
            let secret_key = match deployment {
                Deployment::Embedded => None,
                _ => Some(("BERTH_SECRET_KEY", "YmVydGgtZTJlLXNlY3JldC1rZXktMzItYnl0ZXMhISE=")),
            };
            for (key, value) in [
                ("BERTH_ADMIN_PASSWORD", super::ADMIN_PASSWORD),
                ("BERTH_AUTO_CREATE_PROJECTS", "true"),
            ]
            .into_iter()
            .chain(secret_key)
            {
                if !env.iter().any(|(k, _)| k == key) {
                    env.push((key.to_string(), value.to_string()));
                }
            }
        }
        let http = super::admin_client()
            .redirect(follow_blob_redirects())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut registry = Registry {
            target,
            deployment,
            http,
            work,
            child: None,
            emulator: None,
            emulator_port: Arc::new(AtomicU16::new(0)),
            port: 0,
            env,
            launcher: launcher.iter().map(|a| a.to_string()).collect(),
            data,
        };
        registry.spawn();
        registry
    }

    pub fn data_dir(&self) -> PathBuf {
        (self.data.clone()).unwrap_or_else(|| self.work.path().join("data"))
    }

    fn log_path(&self) -> PathBuf {
        self.work.path().join("server.log")
    }

    /// `127.0.0.1:<port>`: the registry host for clients (`docker://127.0.0.1:<port>/repo:tag`).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// An absolute URL for a path (`/v2/...`) or the URL itself if already absolute.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("http://{}{}", self.host(), path_or_url)
        }
    }

    /// The server process's id (the `api` function's, in the Lambda deployment), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the registry is already running");
        // A port freed by `free_port` can be taken by a parallel test before we bind it: retry.
        // A restart tries the previous port first so clients' URLs stay valid.
        let mut last_failure = String::new();
        for attempt in 0..6 {
            let previous = match self.deployment {
                Deployment::Lambda => self.emulator_port.load(Ordering::SeqCst),
                _ => self.port,
            };
            let port = if attempt == 0 && previous != 0 {
                previous
            } else {
                free_port()
            };
            let lambda = (self.target, self.deployment) == (Target::Berth, Deployment::Lambda);
            let mut command = match (self.target, self.deployment) {
                (Target::Berth, Deployment::Lambda) => {
                    if self.port == 0 {
                        self.port = self.start_front();
                    }
                    self.emulator_port.store(port, Ordering::SeqCst);
                    if let Err(why) = self.spawn_emulator(port) {
                        // Another test's process took the port between free_port() and the bind.
                        last_failure = why;
                        continue;
                    }
                    let mut command = Command::new(workspace_bin("BERTH_API_BIN", "api"));
                    command
                        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
                        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
                        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                        // Every request's status in the log a failing test prints.
                        .env("RUST_LOG", "info,berth::oci=debug")
                        .envs(self.env.iter().cloned());
                    command
                }
                (Target::Berth, _) => {
                    let mut command = match self.launcher.split_first() {
                        Some((program, args)) => {
                            let mut command = Command::new(program);
                            command.args(args).arg(berth_bin());
                            command
                        }
                        None => Command::new(berth_bin()),
                    };
                    command
                        .arg("serve")
                        .arg("--listen")
                        .arg(format!("127.0.0.1:{port}"))
                        .arg("--data-dir")
                        .arg(self.data_dir())
                        .envs(self.env.iter().cloned());
                    command
                }
                (Target::Distribution, _) => {
                    let config = self.write_distribution_config(port);
                    let mut command = Command::new("docker-registry");
                    command.arg("serve").arg(config);
                    command
                }
            };
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.log_path())
                .expect("log");
            let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
            command
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log clone"))
                .stderr(log)
                .env_remove("BERTH_LISTEN")
                .env_remove("BERTH_DATA_DIR");
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.target));
            self.child = Some(child);
            if !lambda {
                self.port = port;
            }
            match self.wait_ready() {
                Ok(()) => return,
                Err(why) => {
                    self.kill();
                    let log = self.log_since(log_start);
                    last_failure = format!("{why}\n--- server log ---\n{log}");
                    let in_use = log.contains("in use") || log.contains("AddrInUse");
                    if !in_use {
                        break;
                    }
                }
            }
        }
        panic!("the registry did not start: {last_failure}");
    }

    /// Starts the [`lambda_front`] on an ephemeral port, for the registry's lifetime; returns the port.
    fn start_front(&self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Lambda front");
        let port = listener.local_addr().expect("front address").port();
        let upstream = self.emulator_port.clone();
        std::thread::spawn(move || super::lambda_front::serve(listener, upstream));
        port
    }

    /// cargo-lambda's emulator on `port`, serving the Lambda runtime API to a function we start
    /// ourselves (`--only-lambda-apis`) and routing HTTP requests to it as function URL events.
    /// `Err` if it is not listening and alive within 20 s (a lost race for the port, most often:
    /// the caller picks another).
    fn spawn_emulator(&mut self, port: u16) -> Result<(), String> {
        if let Some(mut old) = self.emulator.take() {
            let _ = old.kill();
            let _ = old.wait();
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.emulator_log_path())
            .expect("emulator log");
        let child = Command::new(cargo_lambda_bin())
            .args(["lambda", "watch", "--only-lambda-apis", "--disable-cors"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .args(["--timeout", "120"])
            .current_dir(workspace())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log clone"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start cargo-lambda (pip install cargo-lambda): {e}"));
        self.emulator = Some(child);
        let exited = |emulator: &mut Option<Child>| {
            matches!(emulator.as_mut().map(Child::try_wait), Some(Ok(Some(_))))
        };
        // The function exits if the runtime API is not there yet when it starts.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if exited(&mut self.emulator) {
                return Err(format!("the emulator on port {port} exited"));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Something listens: it must be our emulator, still alive a moment later, and not
                // another test's process that holds the port while ours fails to bind it.
                std::thread::sleep(Duration::from_millis(150));
                if exited(&mut self.emulator) {
                    return Err(format!("the emulator lost port {port} to another process"));
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("the emulator did not listen on port {port} within 20s"))
    }

    fn emulator_log_path(&self) -> PathBuf {
        self.work.path().join("emulator.log")
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = self.url("/v2/");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("the server exited with {status}"));
                }
            }
            if let Ok(resp) = self.http.get(&url).timeout(Duration::from_secs(2)).send() {
                if resp.status().as_u16() == 200 {
                    // The answer may come from another test's server that took the port first, while
                    // ours is failing to bind it: ours must still be alive a moment later.
                    std::thread::sleep(Duration::from_millis(150));
                    if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                        return Err(format!("the server exited with {status}"));
                    }
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err("GET /v2/ did not answer 200 within 20s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write_distribution_config(&self, port: u16) -> PathBuf {
        let path = self.work.path().join("config.yml");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      \
             enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n",
            self.data_dir().display()
        );
        fs::write(&path, config).expect("write config.yml");
        path
    }

    /// Everything the server (or the function) has logged so far.
    pub fn server_log(&self) -> String {
        self.log_since(0)
    }

    fn log_since(&self, offset: u64) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(self.log_path()) {
            let _ = file.read_to_string(&mut text);
        }
        let start = usize::try_from(offset).unwrap_or(0).min(text.len());
        text.get(start..).unwrap_or("").to_owned()
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 15 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            self.stop_emulator();
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.stop_emulator();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("the server ignored SIGTERM for 15s: killing it");
        let _ = child.kill();
        let _ = child.wait();
        self.stop_emulator();
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stop_emulator();
    }

    fn stop_emulator(&mut self) {
        if let Some(mut emulator) = self.emulator.take() {
            let _ = emulator.kill();
            let _ = emulator.wait();
        }
    }

    /// Starts the server again on the same data directory (after `stop` or `kill`, or stopping it
    /// gracefully first), on the same port when it is still free.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs `berth <command> --data-dir <data> <args>`; the server must be stopped.
    pub fn berth_cli(&self, command: &str, args: &[&str]) -> Output {
        assert!(
            !self.is_running(),
            "stop the server before `berth {command}`: the store is single-process"
        );
        assert_eq!(
            self.target,
            Target::Berth,
            "`berth {command}` needs the Berth target"
        );
        Command::new(berth_bin())
            .arg(command)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env_remove("BERTH_DATA_DIR")
            .envs(self.env.iter().cloned())
            .output()
            .unwrap_or_else(|e| panic!("cannot run berth {command}: {e}"))
    }

    /// `berth rebuild-views`: the exit status, the parsed JSON summary (first JSON line) and the
    /// whole output for messages.
    pub fn rebuild_views(&self) -> (bool, Value, String) {
        let out = self.berth_cli("rebuild-views", &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = stdout
            .lines()
            .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .unwrap_or(Value::Null);
        let text = format!("exit: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
        (out.status.success(), summary, text)
    }

    /// Asserts `berth rebuild-views` exits 0 and reports `identical: true`; returns the event count.
    pub fn assert_rebuild_identical(&self) -> u64 {
        let (ok, summary, text) = self.rebuild_views();
        assert!(ok, "berth rebuild-views failed:\n{text}");
        assert_eq!(
            summary["identical"],
            Value::Bool(true),
            "rebuild-views summary:\n{text}"
        );
        summary["events"]
            .as_u64()
            .unwrap_or_else(|| panic!("no `events` count in:\n{text}"))
    }

    /// `berth log`: every event of the log, in log order.
    pub fn log_events(&self) -> Vec<Value> {
        let out = self.berth_cli("log", &[]);
        assert!(
            out.status.success(),
            "berth log failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("berth log line is not JSON ({e}): {line}"))
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            if self.emulator_log_path().exists() {
                let log = std::fs::read_to_string(self.emulator_log_path()).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(25).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                eprintln!(
                    "--- last lines of the Lambda emulator log ---\n{}",
                    tail.join("\n")
                );
            }
            let log = self.log_since(0);
            let tail: Vec<String> = log
                .lines()
                .rev()
                .take(25)
                .map(|l| l.chars().take(400).collect())
                .collect();
            let tail: Vec<String> = tail.into_iter().rev().collect();
            eprintln!(
                "--- last lines of the {:?} server log ---\n{}",
                self.target,
                tail.join("\n")
            );
        }
    }
}
