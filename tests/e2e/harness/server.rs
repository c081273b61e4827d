//! Starting, stopping, killing and restarting the registry under test, and Berth's offline CLI.
//!
//! Every server binds 127.0.0.1 on an ephemeral port and keeps its data in its own temporary
//! directory; the child process is killed when the [`Registry`] is dropped.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

pub fn target() -> Target {
    match std::env::var("BERTH_E2E_TARGET").as_deref() {
        Ok("distribution") => Target::Distribution,
        Ok("berth") | Ok("") | Err(_) => Target::Berth,
        Ok(other) => panic!("BERTH_E2E_TARGET={other}: expected `berth` or `distribution`"),
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
    let bin = match std::env::var_os("BERTH_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/berth"),
    };
    assert!(
        bin.is_file(),
        "the berth binary is missing at {}: run `cargo build -p berth` first (or set BERTH_BIN)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A running (or stopped) registry with its own data directory.
pub struct Registry {
    pub target: Target,
    pub http: Client,
    work: TempDir,
    child: Option<Child>,
    port: u16,
    /// Extra environment for the `berth` processes (e.g. the AWS storage configuration).
    env: Vec<(String, String)>,
}

impl Registry {
    /// Starts a fresh registry on an empty data directory.
    pub fn start() -> Registry {
        Registry::start_with_env(vec![])
    }

    /// Starts a fresh registry whose `berth` processes (server and CLI) get `env` too.
    pub fn start_with_env(env: Vec<(String, String)>) -> Registry {
        let work = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temp dir");
        fs::create_dir_all(work.path().join("data")).expect("data dir");
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        let mut registry = Registry {
            target: target(),
            http,
            work,
            child: None,
            port: 0,
            env,
        };
        registry.spawn();
        registry
    }

    pub fn data_dir(&self) -> PathBuf {
        self.work.path().join("data")
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

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the registry is already running");
        // A port freed by `free_port` can be taken by a parallel test before we bind it: retry.
        // A restart tries the previous port first so clients' URLs stay valid.
        let mut last_failure = String::new();
        for attempt in 0..6 {
            let port = if attempt == 0 && self.port != 0 {
                self.port
            } else {
                free_port()
            };
            let mut command = match self.target {
                Target::Berth => {
                    let mut command = Command::new(berth_bin());
                    command
                        .arg("serve")
                        .arg("--listen")
                        .arg(format!("127.0.0.1:{port}"))
                        .arg("--data-dir")
                        .arg(self.data_dir())
                        .envs(self.env.iter().cloned());
                    command
                }
                Target::Distribution => {
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
            self.port = port;
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
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("the server ignored SIGTERM for 15s: killing it");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
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
