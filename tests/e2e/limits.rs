//! Limits against abuse, as an attacker meets them: a flood of wrong passwords must not exhaust the
//! server's memory nor lock out other users, and connections that send half a request must not
//! stop the service.
//!
//! These tests watch the server process (its memory, its descriptors, its connections), so they
//! run against `berth serve` (embedded or AWS storage), not the Lambda host.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;

use crate::harness::*;

/// Concurrent connections sending wrong passwords.
const FLOOD_CONNECTIONS: usize = 64;
/// How long the flood lasts.
const FLOOD: Duration = Duration::from_secs(4);
/// How long a sign-in during the flood may wait: Bob's starts a second into the flood, so he is
/// answered before it ends.
const SIGN_IN_WAIT: Duration = Duration::from_millis(2500);
/// What one argon2 verification takes (m = 19 MiB), with a little for its thread.
const HASH_MIB: u64 = 20;
/// Past this the flood stops early: an unbounded server must not take the machine down.
const SAFETY_MIB: u64 = 3 * 1024;

/// True (after saying why) unless the server under test is a local `berth serve` process.
fn skip_unless_local_server(reg: &Registry) -> bool {
    if skip_unless_berth("limits of Berth's container host") {
        return true;
    }
    if reg.deployment == Deployment::Lambda {
        eprintln!(
            "SKIPPED under BERTH_E2E_TARGET=lambda: no container host (the Lambda host has its own limits)"
        );
        return true;
    }
    false
}

/// `VmRSS` and `VmHWM` of `pid`, in MiB.
fn memory_mib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// A client without the harness's admin credentials, connecting from `from` (any 127.0.0.0/8
/// address reaches the server: each stands for another client machine).
fn client_from(from: &str) -> Client {
    Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Answers of the flood.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    refused_401: AtomicUsize,
    throttled_429: AtomicUsize,
    throttled_without_retry_after: AtomicUsize,
    other: AtomicUsize,
}

#[test]
fn a_flood_of_wrong_passwords_keeps_memory_bounded_and_other_users_signing_in() {
    let reg = Registry::start();
    if skip_unless_local_server(&reg) {
        return;
    }
    let pid = reg.pid().unwrap();
    let resp = (reg.http.post(reg.url("/api/v2.0/users")))
        .json(&json!({"username": "bob", "password": "Bob-Right-Pass-1", "email": "bob@example.com", "realname": "Bob"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap_or_default());
    // One check warms the hashing path (its thread, the dummy hash for unknown names).
    let warm = client_from("127.0.0.1")
        .get(reg.url("/v2/"))
        .basic_auth("nobody", Some("x"))
        .send()
        .unwrap();
    assert_eq!(warm.status().as_u16(), 401);
    let (baseline, _) = memory_mib(pid).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    // One argon2 memory per hashing turn (the default: one per core), reused; two more for slack.
    let bound = baseline + (cores + 2) * HASH_MIB;

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some((rss, hwm)) = memory_mib(pid) {
                    peak.fetch_max(rss.max(hwm), Ordering::SeqCst);
                    if rss > SAFETY_MIB {
                        eprintln!("RSS {rss} MiB: stopping the flood early");
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let tally = Arc::new(Tally::default());
    let flood_end = Instant::now() + FLOOD;
    let flooders: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|i| {
            let (stop, tally) = (stop.clone(), tally.clone());
            let urls = [reg.url("/v2/"), reg.url("/service/token?service=berth")];
            std::thread::spawn(move || {
                let client = client_from("127.0.0.1");
                let mut n = 0;
                while Instant::now() < flood_end && !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let request = client
                        .get(&urls[n % 2])
                        .basic_auth(format!("flood{i}"), Some(format!("wrong{n}")));
                    let Ok(resp) = request.send() else { continue };
                    tally.sent.fetch_add(1, Ordering::SeqCst);
                    match resp.status().as_u16() {
                        401 => tally.refused_401.fetch_add(1, Ordering::SeqCst),
                        429 => {
                            // The spec's code, and when to come back.
                            let retry =
                                header(&resp, "retry-after").is_some_and(|s| s.parse::<u64>().is_ok());
                            let codes = error_codes(&resp.text().unwrap_or_default());
                            if retry && codes == ["TOOMANYREQUESTS"] {
                                tally.throttled_429.fetch_add(1, Ordering::SeqCst)
                            } else {
                                tally.throttled_without_retry_after.fetch_add(1, Ordering::SeqCst)
                            }
                        }
                        _ => tally.other.fetch_add(1, Ordering::SeqCst),
                    };
                }
            })
        })
        .collect();

    // During the flood: Bob signs in for the first time from his own machine...
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let bob = (client_from("127.0.0.2").get(reg.url("/service/token?service=berth")))
        .basic_auth("bob", Some("Bob-Right-Pass-1"))
        .send()
        .unwrap();
    let bob_took = started.elapsed();
    // ...and the admin, signed in before the flood, keeps working from the flooding address.
    let started = Instant::now();
    let admin = reg.http.get(reg.url("/v2/")).send().unwrap();
    let admin_took = started.elapsed();

    for flooder in flooders {
        flooder.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let peak = peak.load(Ordering::SeqCst);
    let count = |n: &AtomicUsize| n.load(Ordering::SeqCst);
    eprintln!(
        "flood: {} requests ({} 401, {} 429); RSS baseline {baseline} MiB, peak {peak} MiB, bound {bound} MiB; \
         Bob answered in {bob_took:?}, the admin in {admin_took:?}",
        count(&tally.sent),
        count(&tally.refused_401),
        count(&tally.throttled_429),
    );
    assert!(
        peak <= bound,
        "peak RSS {peak} MiB exceeds {bound} MiB (baseline {baseline} + ({cores} cores + 2) x {HASH_MIB} MiB)"
    );
    assert_eq!(
        bob.status().as_u16(),
        200,
        "Bob's right password during the flood"
    );
    // Answered while the flood still runs, not queued behind it (a bound on waiting, not a speed
    // figure: on a loaded 2-core machine a sign-in's Argon2 hash alone can take a second).
    assert!(bob_took < SIGN_IN_WAIT, "Bob waited {bob_took:?}");
    assert_eq!(
        admin.status().as_u16(),
        200,
        "the admin's remembered credentials during the flood"
    );
    assert!(admin_took < SIGN_IN_WAIT, "the admin waited {admin_took:?}");
    assert!(count(&tally.throttled_429) > 0, "no 429 with Retry-After");
    assert_eq!(
        count(&tally.throttled_without_retry_after),
        0,
        "429 without Retry-After or without the TOOMANYREQUESTS code"
    );
    assert_eq!(count(&tally.other), 0, "answers other than 401 and 429");
}

/// Opens a connection that sends `prefix` and nothing more.
fn half_request(reg: &Registry, prefix: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(reg.host()).unwrap();
    stream.write_all(prefix).unwrap();
    stream
}

/// How long until the server closes `stream` (`None`: still open after `patience`).
fn closed_within(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

#[test]
fn a_thousand_half_sent_requests_do_not_keep_a_new_client_waiting() {
    // A soft limit of 512 open files, as some hosts set it: the server must raise it itself.
    let reg = Registry::start_under(vec![], &["prlimit", "--nofile=512:"]);
    if skip_unless_local_server(&reg) {
        return;
    }
    let held: Vec<TcpStream> = (0..1_000).map(|_| half_request(&reg, b"GET /v2/ HT")).collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let resp = client_from("127.0.0.1")
        .get(reg.url("/v2/"))
        .timeout(Duration::from_secs(5))
        .send();
    let took = started.elapsed();
    let status = resp.map(|r| r.status().as_u16());
    // 401: the challenge, the answer every client gets first.
    assert!(
        matches!(status, Ok(401)),
        "a new client got {status:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(1), "a new client waited {took:?}");
    // The half-sent requests are still there: their header-read timeout (30 s) has not passed.
    let mut first = held.into_iter().next().unwrap();
    assert_eq!(closed_within(&mut first, Duration::from_millis(200)), None);
}

#[test]
fn half_sent_silent_and_idle_connections_are_closed_after_their_timeouts() {
    let env = vec![
        ("BERTH_HEADER_READ_TIMEOUT_SECS".to_string(), "2".to_string()),
        ("BERTH_IDLE_TIMEOUT_SECS".to_string(), "3".to_string()),
    ];
    let reg = Registry::start_with_env(env);
    if skip_unless_local_server(&reg) {
        return;
    }
    let patience = Duration::from_secs(10);
    let mut half = half_request(&reg, b"GET /v2/ HT");
    let mut silent = TcpStream::connect(reg.host()).unwrap();
    let mut idle = half_request(
        &reg,
        format!("GET /v2/ HTTP/1.1\r\nHost: {}\r\n\r\n", reg.host()).as_bytes(),
    );
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).unwrap();
    assert_eq!(
        &answer, b"HTTP/1.1 401",
        "the kept-alive connection's first answer"
    );

    let half_closed = closed_within(&mut half, patience);
    let silent_closed = closed_within(&mut silent, patience);
    let idle_closed = closed_within(&mut idle, patience);
    eprintln!("closed after: half request {half_closed:?}, silent {silent_closed:?}, idle {idle_closed:?}");
    let about =
        |closed: Option<Duration>, secs: u64| closed.is_some_and(|d| d < Duration::from_secs(secs + 2));
    assert!(
        about(half_closed, 2),
        "a half-sent request's connection: {half_closed:?}"
    );
    assert!(about(silent_closed, 2), "a silent connection: {silent_closed:?}");
    assert!(
        about(idle_closed, 3),
        "an idle kept-alive connection: {idle_closed:?}"
    );
}

#[test]
fn at_the_connection_cap_new_clients_wait_and_the_log_says_so() {
    let env = vec![
        ("BERTH_MAX_CONNECTIONS".to_string(), "8".to_string()),
        ("BERTH_HEADER_READ_TIMEOUT_SECS".to_string(), "2".to_string()),
    ];
    let reg = Registry::start_with_env(env);
    if skip_unless_local_server(&reg) {
        return;
    }
    // With the harness's kept-alive connection from its readiness check, these take every slot.
    let _held: Vec<TcpStream> = (0..8).map(|_| half_request(&reg, b"GET /v2/ HT")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let resp = client_from("127.0.0.1")
        .get(reg.url("/v2/"))
        .timeout(Duration::from_secs(10))
        .send()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status().as_u16(), 401, "the challenge, once a slot freed");
    assert!(
        took >= Duration::from_secs(1),
        "answered in {took:?}: the cap did not hold"
    );
    assert!(
        reg.server_log().contains("connection limit 8 reached"),
        "{}",
        reg.server_log()
    );
}
