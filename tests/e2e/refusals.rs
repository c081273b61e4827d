//! Refusals a client can read: every request refused while it still has a body to send (a chunk at
//! the wrong offset, a repeated chunk, an unknown session, a final PUT whose digest does not match,
//! an oversize manifest, a wrong password) is answered only after its body was read, so a client
//! that writes a multi-MiB body slowly finishes writing, reads the status and the OCI error body,
//! and can go on using the same connection. Go's `net/http` (the conformance suite, containerd,
//! crane, oras-go) reports `write: broken pipe` instead when a server answers early and closes.
//!
//! After a 416 the upload session is still usable: `GET` on it reports the true `Range`, and the
//! right chunk continues it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

const REPO: &str = "library/refused";
/// The body each refused request sends: large enough that a server that stops reading fills the
/// socket buffers and resets the connection, small enough for the Lambda host's request limit.
const BODY_LEN: usize = 3 * 1024 * 1024;
const SLICE: usize = 64 * 1024;

/// One keep-alive connection that writes bodies slowly and reads whole responses.
struct Slow {
    reader: BufReader<TcpStream>,
    host: String,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> String {
        let body: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        body["errors"][0]["code"].as_str().unwrap_or("").to_owned()
    }
}

impl Slow {
    fn connect(reg: &Registry) -> Slow {
        let stream = TcpStream::connect(reg.host()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Slow {
            reader: BufReader::new(stream),
            host: reg.host(),
        }
    }

    /// Sends a request, its body in 64 KiB slices with a pause between them, and reads the
    /// answer. A failed write is the failure under test: it panics with what the server did.
    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            head.push_str(&format!(
                "Authorization: {}\r\n",
                basic_auth("admin", ADMIN_PASSWORD)
            ));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes()).expect("write the request head");
        for (i, slice) in body.chunks(SLICE).enumerate() {
            if let Err(e) = stream.write_all(slice) {
                panic!(
                    "{method} {path}: the server stopped reading the body after at most {} of {} \
                     bytes: {e}",
                    i * SLICE,
                    body.len()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.read_answer(method == "HEAD")
    }

    fn read_answer(&mut self, head_only: bool) -> Answer {
        let mut status_line = String::new();
        self.reader
            .read_line(&mut status_line)
            .expect("read the status line");
        let status = (status_line.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read a header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let mut answer = Answer {
            status,
            headers,
            body: String::new(),
        };
        if head_only || status == 204 {
            return answer;
        }
        let mut body = Vec::new();
        if answer
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).expect("read a chunk size");
                let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
                let mut chunk = vec![0u8; size + 2];
                self.reader.read_exact(&mut chunk).expect("read a chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let length: usize = answer.header("content-length").map_or(0, |v| v.parse().unwrap());
            body.resize(length, 0);
            self.reader.read_exact(&mut body).expect("read the body");
        }
        answer.body = String::from_utf8_lossy(&body).into_owned();
        answer
    }
}

/// A well-formed session id that no session has.
fn unknown_id() -> String {
    let h = hex::encode(random_bytes(16));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Starts an upload; returns its path (no scheme and host).
fn start(reg: &Registry) -> String {
    let location = reg.start_upload(REPO);
    match location.strip_prefix(&format!("http://{}", reg.host())) {
        Some(path) => path.to_owned(),
        None => location,
    }
}

fn assert_refused(answer: &Answer, what: &str, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (status, code),
        "{what}: {} {}",
        answer.status,
        answer.body
    );
}

#[test]
fn a_chunk_at_the_wrong_offset_or_repeated_is_refused_readably_and_the_session_goes_on() {
    let reg = Registry::start();
    let mut client = Slow::connect(&reg);
    let first = random_bytes(BODY_LEN);
    let second = random_bytes(BODY_LEN);
    let session = start(&reg);
    let n = BODY_LEN as u64;

    // Out of order: the second chunk first.
    let range = format!("{n}-{}", 2 * n - 1);
    let answer = client.send("PATCH", &session, &[("Content-Range", &range)], &second);
    assert_refused(
        &answer,
        "a chunk past the upload's end",
        416,
        "BLOB_UPLOAD_INVALID",
    );
    assert_eq!(answer.header("range"), Some("0-0"), "416 reports the true Range");

    // The same connection goes on: the right chunk continues the session.
    let range = format!("0-{}", n - 1);
    let answer = client.send("PATCH", &session, &[("Content-Range", &range)], &first);
    assert_eq!(answer.status, 202, "the first chunk after a 416: {}", answer.body);
    let session = (answer.header("location").map(str::to_owned))
        .map(|l| l.trim_start_matches(&format!("http://{}", reg.host())).to_owned())
        .unwrap_or(session);

    // Repeated: the first chunk again.
    let answer = client.send("PATCH", &session, &[("Content-Range", &range)], &first);
    assert_refused(&answer, "a repeated chunk", 416, "BLOB_UPLOAD_INVALID");
    let last = format!("0-{}", n - 1);
    assert_eq!(answer.header("range"), Some(last.as_str()));
    let status = client.send("GET", &session, &[], &[]);
    assert_eq!(
        status.status, 204,
        "GET on the session after a 416: {}",
        status.body
    );
    assert_eq!(
        status.header("range"),
        Some(last.as_str()),
        "the session's true Range"
    );

    // And finishes with the right second chunk.
    let range = format!("{n}-{}", 2 * n - 1);
    let answer = client.send("PATCH", &session, &[("Content-Range", &range)], &second);
    assert_eq!(answer.status, 202, "{}", answer.body);
    let whole = [first, second].concat();
    let digest = sha256(&whole);
    let finish = with_query(&session, &format!("digest={digest}"));
    let answer = client.send("PUT", &finish, &[], &[]);
    assert_eq!(answer.status, 201, "{}", answer.body);
    let served = reg
        .http
        .get(reg.url(&format!("/v2/{REPO}/blobs/{digest}")))
        .send()
        .unwrap();
    assert_eq!(
        served.bytes().unwrap().as_ref(),
        whole.as_slice(),
        "the blob is the two chunks"
    );
}

#[test]
fn refusals_of_requests_with_large_bodies_reach_a_slow_client() {
    let reg = Registry::start();
    let body = random_bytes(BODY_LEN);
    let (config, layer) = reg.push_small_blobs(REPO);

    // An unknown session.
    let mut client = Slow::connect(&reg);
    let unknown = format!("/v2/{REPO}/blobs/uploads/{}", unknown_id());
    let answer = client.send(
        "PATCH",
        &unknown,
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_refused(
        &answer,
        "a chunk to an unknown session",
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );

    // A final PUT whose digest is not the body's: refused, nothing stored.
    let session = start(&reg);
    let wrong = sha256(b"not this body");
    let finish = with_query(&session, &format!("digest={wrong}"));
    let answer = client.send(
        "PUT",
        &finish,
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_refused(
        &answer,
        "a final PUT with the wrong digest",
        400,
        "DIGEST_INVALID",
    );
    assert_eq!(reg.blob_status(REPO, &wrong), 404);
    assert_eq!(reg.blob_status(REPO, &sha256(&body)), 404);

    // A manifest over the 4 MiB limit.
    let mut manifest: Value =
        serde_json::from_slice(&image_manifest(&config, std::slice::from_ref(&layer), None, None)).unwrap();
    manifest["annotations"] = serde_json::json!({"padding": "p".repeat(4 * 1024 * 1024 + 100_000)});
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let answer = client.send(
        "PUT",
        &format!("/v2/{REPO}/manifests/big"),
        &[("Content-Type", OCI_MANIFEST)],
        &manifest,
    );
    assert_eq!(answer.status, 413, "an oversize manifest: {}", answer.body);
    assert!(!answer.code().is_empty(), "an OCI error body: {}", answer.body);
    assert_eq!(reg.manifest_status(REPO, "big"), 404);

    // A wrong password, on a monolithic upload.
    let mut client = Slow::connect(&reg);
    let monolithic = format!("/v2/{REPO}/blobs/uploads/?digest={}", sha256(&body));
    let wrong_password = basic_auth("admin", "not-the-password");
    let answer = client.send(
        "POST",
        &monolithic,
        &[
            ("Authorization", &wrong_password),
            ("Content-Type", "application/octet-stream"),
        ],
        &body,
    );
    assert_refused(&answer, "a wrong password", 401, "UNAUTHORIZED");
    assert!(
        answer.header("www-authenticate").is_some(),
        "a 401 carries its challenge"
    );
    assert_eq!(reg.blob_status(REPO, &sha256(&body)), 404);

    // Each refusal left the connection usable.
    let answer = client.send("GET", "/v2/", &[], &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// `Expect: 100-continue`: a request refused before its body is asked for is answered at once, and
/// the client never has to send the body.
#[test]
fn an_expect_continue_request_is_refused_before_its_body_is_sent() {
    if skip_unless_berth("distribution's behaviour on Expect is Go's, not under test") {
        return;
    }
    if deployment() == Deployment::Lambda {
        eprintln!("skipped: in the Lambda deployment the emulator in front answers Expect, not Berth");
        return;
    }
    let reg = Registry::start();
    let mut stream = TcpStream::connect(reg.host()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let unknown = format!("/v2/{REPO}/blobs/uploads/{}", unknown_id());
    let head = format!(
        "PATCH {unknown} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Length: {BODY_LEN}\r\n\
         Content-Type: application/octet-stream\r\nExpect: 100-continue\r\n\r\n",
        reg.host(),
        basic_auth("admin", ADMIN_PASSWORD)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    assert!(
        status_line.starts_with("HTTP/1.1 404"),
        "answered without the body, not with 100 Continue: {status_line:?}"
    );
}
