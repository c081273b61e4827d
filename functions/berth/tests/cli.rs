//! The CLI as a newcomer meets it: `berth admin` does not silently make a registry no server reads,
//! takes `--data-dir` on either side of the subcommand, says the REST API is the way while a server
//! holds the store; logs written to a file carry no colour codes; `--help` names every setting's
//! environment variable.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("BERTH_DATA_DIR")
        .env_remove("BERTH_STORAGE")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `berth serve` on a free loopback port over `data`, its stderr into `log`; returns once it
/// accepts connections.
fn serve(data: &Path, log: &Path) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .env("BERTH_ADMIN_PASSWORD", "Cli-test-Admin-1")
        .env("BERTH_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "berth serve did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    child.wait().unwrap();
}

#[test]
fn admin_refuses_a_data_dir_without_a_registry_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("berth-data");
    let out = berth(&[
        "admin",
        "create-project",
        "p",
        "--data-dir",
        missing.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("no registry in"), "{}", stderr(&out));
    assert!(!missing.exists(), "nothing was created");
    // Without --data-dir, the same default as `berth serve`, and the same refusal.
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["admin", "create-project", "p"])
        .current_dir(dir.path())
        .env_remove("BERTH_DATA_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("./berth-data"), "{}", stderr(&out));
    assert!(!missing.exists());
}

#[test]
fn admin_takes_the_data_dir_on_either_side_and_points_at_the_api_while_a_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let (server, port) = serve(&data, &log);
    // A request, so the debug log has a request line.
    let answer = reqwest::blocking::get(format!("http://127.0.0.1:{port}/v2/")).unwrap();
    assert_eq!(answer.status(), 401);

    let data_arg = data.to_str().unwrap();
    let out = berth(&["admin", "create-project", "held", "--data-dir", data_arg]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("REST API"), "{}", stderr(&out));
    stop(server);

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("listening"), "{logged}");
    assert!(
        !logged.contains('\u{1b}'),
        "no colour codes in a log file: {logged:?}"
    );

    let after = berth(&["admin", "create-project", "after", "--data-dir", data_arg]);
    assert!(after.status.success(), "{}", stderr(&after));
    assert!(
        stderr(&after).contains(data_arg),
        "says which registry it used: {}",
        stderr(&after)
    );
    let before = berth(&["admin", "--data-dir", data_arg, "create-project", "before"]);
    assert!(before.status.success(), "{}", stderr(&before));
    let top = berth(&["--data-dir", data_arg, "admin", "create-project", "top"]);
    assert!(
        !top.status.success(),
        "the data dir belongs to the commands, not to berth itself"
    );

    // Both projects are in the registry the server serves.
    let (server, port) = serve(&data, &log);
    let client = reqwest::blocking::Client::new();
    for project in ["after", "before"] {
        let answer = client
            .get(format!("http://127.0.0.1:{port}/api/v2.0/projects/{project}"))
            .basic_auth("admin", Some("Cli-test-Admin-1"))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200, "project {project}");
    }
    stop(server);
}

#[test]
fn help_names_every_setting_with_its_environment_variable() {
    let out = berth(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "BERTH_LISTEN",
        "BERTH_DATA_DIR",
        "BERTH_CACHE_MIB",
        "BERTH_ADMIN_PASSWORD",
        "BERTH_PUBLIC_URL",
        "BERTH_TOKEN_SERVICE",
        "BERTH_TOKEN_TTL_SECS",
        "BERTH_AUTH_HASH_CONCURRENCY",
        "BERTH_AUTH_HASH_QUEUE",
        "BERTH_AUTH_MAX_FAILURES",
        "BERTH_MAX_CONNECTIONS",
        "BERTH_MIN_BODY_RATE",
        "BERTH_LOG",
    ] {
        assert!(help.contains(var), "`berth serve --help` names {var}:\n{help}");
    }
    let janitor = String::from_utf8_lossy(&berth(&["janitor", "--help"]).stdout).into_owned();
    assert!(janitor.contains("BERTH_UPLOAD_MAX_AGE_SECS"), "{janitor}");
}
