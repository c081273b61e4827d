//! The audit projection end to end.
//!
//! On the local AWS stack: `berth serve --storage aws` appends to DynamoDB (moto); the table's stream
//! is read by `scripts/stream-pump.py`, which plays Lambda's event source mapping and POSTs the
//! batches to the invoke API of cargo-lambda's emulator (`/2015-03-31/functions/projector/invocations`),
//! where the real `projector` binary serves them (started by the test against the emulator's runtime
//! API, `--only-lambda-apis`, so no build happens inside the emulator). The archive lands in s3s-fs,
//! the checkpoint in the table. On embedded storage: `berth project` does the same from the redb log.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;

const REPO: &str = "e2e/projected";

fn venv_python() -> PathBuf {
    let python = workspace().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `scripts/local-stack.sh up`",
        python.display()
    );
    python
}

fn var<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    (env.iter().find(|(k, _)| k == name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} is not in the test's environment"))
}

fn with(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = env.iter().filter(|(k, _)| k != name).cloned().collect();
    out.push((name.to_string(), value.to_string()));
    out
}

/// The `projector` function behind the emulator's invoke API; both processes die with it.
struct ProjectorFunction {
    emulator: Child,
    function: Child,
    port: u16,
    logs: tempfile::TempDir,
}

impl ProjectorFunction {
    fn start(env: &[(String, String)]) -> ProjectorFunction {
        let logs = tempfile::tempdir().unwrap();
        let log = |name: &str| File::create(logs.path().join(name)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let emulator = Command::new(cargo_lambda_bin())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--disable-cors",
                "--timeout",
                "120",
            ])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(workspace())
            .stdin(Stdio::null())
            .stdout(log("emulator.log"))
            .stderr(log("emulator.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start cargo-lambda (pip install cargo-lambda): {e}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the emulator did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let binary = workspace().join("target/debug/projector");
        assert!(
            binary.is_file(),
            "run `cargo build --workspace` first: no {}",
            binary.display()
        );
        // The runtime API path names the function, so invocations of `projector` reach this process.
        let function = Command::new(binary)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/projector"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "projector")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log("projector.log"))
            .stderr(log("projector.log"))
            .spawn()
            .expect("start the projector binary");
        ProjectorFunction {
            emulator,
            function,
            port,
            logs,
        }
    }

    fn invoke_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("projector.log")).unwrap_or_default()
    }
}

impl Drop for ProjectorFunction {
    fn drop(&mut self) {
        for child in [&mut self.function, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- projector log ---\n{}", self.log());
        }
    }
}

/// What one run of the pump did: its exit status and its JSON lines (one per invocation, then a
/// summary).
struct Pumped {
    success: bool,
    invocations: Vec<Value>,
    summary: Value,
    text: String,
}

fn pump(env: &[(String, String)], function: &ProjectorFunction, extra: &[&str]) -> Pumped {
    let out: Output = Command::new(venv_python())
        .arg(workspace().join("scripts/stream-pump.py"))
        .args([
            "--table",
            var(env, "BERTH_DYNAMODB_TABLE"),
            "--function",
            "projector",
        ])
        .args(["--invoke-url", &function.invoke_url()])
        .args(extra)
        .envs(env.iter().cloned())
        .output()
        .expect("run scripts/stream-pump.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let (summary, invocations): (Vec<Value>, Vec<Value>) =
        lines.into_iter().partition(|l| l.get("summary").is_some());
    Pumped {
        success: out.status.success(),
        invocations,
        summary: summary.into_iter().next().unwrap_or(Value::Null),
        text: format!(
            "exit {}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Reads the audit archive and the checkpoint with boto3, as a consumer would.
const READ_ARCHIVE: &str = r#"
import json, os, sys
import boto3
bucket, table = sys.argv[1], sys.argv[2]
region = os.environ.get("AWS_REGION", "us-east-1")
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=region)
objects = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="audit/"):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        objects[o["Key"]] = {"document": json.loads(body), "etag": o.get("ETag"),
                             "modified": o["LastModified"].isoformat()}
dynamodb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
                        region_name=region)
item = dynamodb.get_item(TableName=table, ConsistentRead=True,
                         Key={"pk": {"S": "checkpoint"}, "sk": {"S": "audit"}}).get("Item")
print(json.dumps({"objects": objects, "checkpoint": item["position"]["S"] if item else None}))
"#;

struct Archive {
    /// Object key → {document, etag, modified}.
    objects: BTreeMap<String, Value>,
    checkpoint: Option<String>,
}

fn read_archive(env: &[(String, String)]) -> Archive {
    let out = Command::new(venv_python())
        .args(["-c", READ_ARCHIVE])
        .args([var(env, "BERTH_S3_BUCKET"), var(env, "BERTH_DYNAMODB_TABLE")])
        .envs(env.iter().cloned())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "reading the archive failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    Archive {
        objects: serde_json::from_value(read["objects"].clone()).unwrap(),
        checkpoint: read["checkpoint"].as_str().map(str::to_string),
    }
}

/// The archive key of a CloudEvent from `berth log`: `<yyyy>/<mm>/<dd>/<log position>.json`.
fn archive_key(event: &Value) -> String {
    let day = event["time"].as_str().unwrap()[..10].replace('-', "/");
    format!("{day}/{}.json", event["berthposition"].as_str().unwrap())
}

/// The position of the log's last event (`berth log` lists by position).
fn last_position(events: &[Value]) -> Option<String> {
    events
        .last()
        .and_then(|e| e["berthposition"].as_str())
        .map(str::to_string)
}

/// Pushes two tagged images and deletes a tag: blob, manifest, tag and tag-deletion events.
fn push_some_history(reg: &Registry) {
    reg.push_small_image(REPO, "v1");
    reg.push_small_image(REPO, "v2");
    assert_eq!(
        reg.delete(&format!("/v2/{REPO}/manifests/v1")).status().as_u16(),
        202
    );
}

fn assert_archive_is_the_log(archive: &Archive, events: &[Value], prefix: &str) {
    let expected: Vec<String> = events
        .iter()
        .map(|e| format!("{prefix}{}", archive_key(e)))
        .collect();
    let keys: Vec<&String> = archive.objects.keys().collect();
    assert_eq!(
        keys,
        expected.iter().collect::<Vec<_>>(),
        "one document per event"
    );
    for (event, key) in events.iter().zip(&expected) {
        let document = &archive.objects[key]["document"];
        assert_eq!(document["type"], event["type"], "{key}");
        assert_eq!(document["berthposition"], event["berthposition"], "{key}");
        assert_eq!(
            document, event,
            "{key} is the event's CloudEvent as `berth log` prints it"
        );
    }
}

/// A registry on the local stack with some history in its log, stopped.
struct AwsHistory {
    env: Vec<(String, String)>,
    reg: Registry,
    events: Vec<Value>,
}

fn aws_history() -> Option<AwsHistory> {
    if skip_unless_berth("the projector is Berth's") {
        return None;
    }
    let env = local_stack_env()?;
    let mut reg = Registry::start_with_env(env.clone());
    push_some_history(&reg);
    reg.stop();
    let events = reg.log_events();
    assert!(
        events.len() >= 9,
        "4 blobs, 2 manifests, 2 tags, 1 tag deletion: {events:?}"
    );
    Some(AwsHistory { env, reg, events })
}

#[test]
fn the_projector_function_fed_by_the_stream_archives_each_event_once_and_checkpoints_the_last() {
    let Some(AwsHistory { env, reg, events }) = aws_history() else {
        return;
    };
    let function = ProjectorFunction::start(&env);

    let first = pump(&env, &function, &[]);
    assert!(first.success, "the pump failed:\n{}", first.text);
    assert!(
        (first.invocations.iter()).all(|i| i["failed"] == serde_json::json!([])),
        "no batch item failure:\n{}",
        first.text
    );
    let archive = read_archive(&env);
    assert_archive_is_the_log(&archive, &events, "audit/");
    assert_eq!(archive.checkpoint, last_position(&events));

    // The mapping delivers at least once: the same records again change nothing.
    let again = pump(&env, &function, &[]);
    assert!(again.success, "the second pump failed:\n{}", again.text);
    assert!(again.summary["records"].as_u64() >= first.summary["records"].as_u64());
    let after = read_archive(&env);
    assert_eq!(after.objects, archive.objects, "redelivery rewrote the archive");
    assert_eq!(after.checkpoint, archive.checkpoint);

    // `berth project` on the same storage shares the checkpoint: nothing is left to do.
    let out = reg.berth_cli("project", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["published"], 0);
    assert_eq!(
        report["checkpoint"].as_str().map(str::to_string),
        last_position(&events)
    );
}

#[test]
fn the_pump_retries_from_the_failed_record_then_stops_and_a_healthy_function_catches_up() {
    let Some(AwsHistory {
        env,
        reg: _reg,
        events,
    }) = aws_history()
    else {
        return;
    };
    // A function whose S3 credentials s3s-fs rejects (403) fails on the first event; DynamoDB on
    // moto takes any credentials, so the checkpoint still reads.
    let broken = ProjectorFunction::start(&with(&env, "AWS_SECRET_ACCESS_KEY", "not-the-secret"));

    let failed = pump(&env, &broken, &["--max-retries", "2"]);
    assert!(
        !failed.success,
        "the pump must stop after its retries:\n{}",
        failed.text
    );
    assert_eq!(
        failed.invocations.len(),
        3,
        "one attempt and two retries:\n{}",
        failed.text
    );
    let named = &failed.invocations[0]["failed"];
    assert_eq!(named.as_array().map(Vec::len), Some(1), "{}", failed.text);
    let sizes: Vec<u64> = (failed.invocations.iter())
        .map(|i| i["records"].as_u64().unwrap())
        .collect();
    assert!(
        sizes[1] < sizes[0] && sizes[1] == sizes[2],
        "retries start at the failed record (a log item after the stream head and counter):\n{}",
        failed.text
    );
    assert!(
        (failed.invocations.iter()).all(|i| &i["failed"] == named),
        "{}",
        failed.text
    );
    let archive = read_archive(&env);
    assert!(archive.objects.is_empty());
    assert_eq!(archive.checkpoint, None);
    drop(broken);

    let healthy = ProjectorFunction::start(&env);
    let pumped = pump(&env, &healthy, &[]);
    assert!(pumped.success, "{}", pumped.text);
    let archive = read_archive(&env);
    assert_archive_is_the_log(&archive, &events, "audit/");
    assert_eq!(archive.checkpoint, last_position(&events));
}

/// Files by path relative to a directory: content and modification time.
type Files = BTreeMap<String, (Vec<u8>, std::time::SystemTime)>;

/// Every file under `dir`.
fn files(dir: &Path) -> Files {
    fn walk(root: &Path, dir: &Path, out: &mut Files) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let key = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let modified = path.metadata().unwrap().modified().unwrap();
                out.insert(key, (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    let mut out = Files::new();
    walk(dir, dir, &mut out);
    out
}

/// `berth project`'s line of the audit archive (one line per subscription: the audit archive,
/// then event-based replication).
fn project(reg: &Registry) -> Value {
    let out = reg.berth_cli("project", &[]);
    assert!(
        out.status.success(),
        "berth project failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = (String::from_utf8_lossy(&out.stdout).lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines.iter().filter_map(|l| l["subscription"].as_str()).collect();
    assert_eq!(names, ["audit", "replication"], "{lines:?}");
    lines[0].clone()
}

fn subscriptions_cli(reg: &Registry) -> Vec<Value> {
    let out = reg.berth_cli("subscriptions", &[]);
    assert!(
        out.status.success(),
        "berth subscriptions failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8_lossy(&out.stdout).lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn skip_unless_embedded() -> bool {
    if skip_unless_berth("`berth project` is Berth's") {
        return true;
    }
    if std::env::var("BERTH_E2E_TARGET").as_deref() == Ok("lambda") {
        eprintln!("SKIPPED under BERTH_E2E_TARGET=lambda: embedded storage is served by `berth serve` only");
        return true;
    }
    false
}

/// The archive under the data directory, as [`Archive`] (no checkpoint).
fn embedded_archive(reg: &Registry) -> Archive {
    Archive {
        objects: (files(&reg.data_dir().join("audit")).iter())
            .map(|(key, (bytes, _))| {
                let document: Value = serde_json::from_slice(bytes).unwrap();
                (key.clone(), serde_json::json!({ "document": document }))
            })
            .collect(),
        checkpoint: None,
    }
}

#[test]
fn berth_project_replays_the_embedded_log_for_a_new_subscription_once_and_resumes_from_its_checkpoint() {
    if skip_unless_embedded() {
        return;
    }
    // A server that runs no subscriptions: the archive is left to `berth project`.
    let mut reg = Registry::start_with_env(vec![
        ("BERTH_STORAGE".into(), "embedded".into()),
        ("BERTH_SUBSCRIPTIONS_POLL_MS".into(), "0".into()),
    ]);
    push_some_history(&reg);
    reg.stop();
    let events = reg.log_events();

    let status = subscriptions_cli(&reg);
    assert_eq!(status.len(), 2, "{status:?}");
    assert_eq!(status[0]["name"], "audit");
    assert_eq!(status[1]["name"], "replication");
    assert_eq!(status[0]["state"], "new");
    assert_eq!(status[0]["behind"].as_u64(), Some(events.len() as u64));
    assert!(status[0]["lag_seconds"].as_f64().unwrap() > 0.0, "{status:?}");

    let report = project(&reg);
    assert_eq!(report["subscription"], "audit");
    assert_eq!(report["state"], "live");
    assert_eq!(report["published"].as_u64(), Some(events.len() as u64));
    assert_eq!(
        report["checkpoint"].as_str().map(str::to_string),
        last_position(&events)
    );
    let audit = reg.data_dir().join("audit");
    let archived = files(&audit);
    assert_archive_is_the_log(&embedded_archive(&reg), &events, "");
    let status = subscriptions_cli(&reg);
    assert_eq!(
        (
            &status[0]["state"],
            &status[0]["behind"],
            &status[0]["lag_seconds"]
        ),
        (
            &serde_json::json!("live"),
            &serde_json::json!(0),
            &serde_json::json!(0.0)
        )
    );

    let again = project(&reg);
    assert_eq!(
        (again["published"].as_u64(), again["skipped"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(files(&audit), archived, "a second run rewrote the archive");

    reg.restart();
    reg.push_small_image(REPO, "v3");
    reg.stop();
    let more = reg.log_events();
    let resumed = project(&reg);
    assert_eq!(
        resumed["published"].as_u64(),
        Some((more.len() - events.len()) as u64)
    );
    assert_eq!(
        resumed["checkpoint"].as_str().map(str::to_string),
        last_position(&more)
    );
    assert_eq!(files(&audit).len(), more.len());
}

/// Waits until the running server's subscriptions are all live at the end of the log.
fn wait_until_caught_up(reg: &Registry) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api_admin(reg, "GET", "/subscriptions", Value::Null);
        assert_eq!(status, 200, "{body}");
        let caught_up = (body.as_array().unwrap().iter())
            .all(|s| s["state"] == "live" && s["behind"] == 0 && s["lag_seconds"] == 0.0);
        if caught_up {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the subscriptions did not catch up: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn berth_serve_archives_the_embedded_log_as_it_goes_and_reports_its_subscriptions_live() {
    if skip_unless_embedded() {
        return;
    }
    let mut reg = Registry::start_with_env(vec![
        ("BERTH_STORAGE".into(), "embedded".into()),
        ("BERTH_SUBSCRIPTIONS_POLL_MS".into(), "100".into()),
    ]);
    // Only system admins see the subscriptions.
    create_user(&reg, "watcher", "Watcher-Pass1");
    let (status, _) = api_call(
        &reg,
        Some(("watcher", "Watcher-Pass1")),
        "GET",
        "/subscriptions",
        Value::Null,
    );
    assert_eq!(status, 403);
    let (status, _) = api_call(&reg, None, "GET", "/subscriptions", Value::Null);
    assert_eq!(status, 401);

    push_some_history(&reg);
    let live = wait_until_caught_up(&reg);
    assert_eq!(live[0]["name"], "audit");
    reg.stop();
    let events = reg.log_events();
    assert_eq!(
        live[0]["checkpoint"].as_str().map(str::to_string),
        last_position(&events)
    );
    assert_archive_is_the_log(&embedded_archive(&reg), &events, "");
    let archived = files(&reg.data_dir().join("audit"));

    // A restart resumes from the checkpoint: the new events only, nothing rewritten.
    reg.restart();
    reg.push_small_image(REPO, "v3");
    wait_until_caught_up(&reg);
    reg.stop();
    let more = reg.log_events();
    assert_archive_is_the_log(&embedded_archive(&reg), &more, "");
    let now = files(&reg.data_dir().join("audit"));
    for (key, file) in &archived {
        assert_eq!(now.get(key), Some(file), "{key} was rewritten");
    }
    let report = project(&reg);
    assert_eq!(
        (report["state"].as_str(), report["published"].as_u64()),
        (Some("live"), Some(0))
    );
}
