//! Concurrent manifest writers against any registry (bench/writers.sh runs it against Berth and
//! distribution in the same run): W writers, each on one HTTP/1.1 keep-alive connection, PUT small,
//! distinct OCI image manifests under distinct tags, into one repository or one repository each.
//! The config blob is uploaded once per repository beforehand. Prints one line of JSON: PUTs per
//! second, latency percentiles, errors.
//!
//! ```text
//! writers URL REPO_PREFIX WRITERS TOTAL_PUTS (one|each) [USER:PASSWORD]
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn client(auth: Option<&str>) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(auth) = auth {
        use base64ct::Encoding as _;
        let value = format!("Basic {}", base64ct::Base64::encode_string(auth.as_bytes()));
        headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
    }
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// POST then PUT (distribution 2.8 has no single-request upload).
fn upload_config(http: &reqwest::blocking::Client, url: &str, repo: &str) {
    let digest = sha256(CONFIG);
    let started = http
        .post(format!("{url}/v2/{repo}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(started.status(), 202, "upload start in {repo}");
    let location = started.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with('/') {
        format!("{url}{location}")
    } else {
        location
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let answer = http
        .put(format!("{location}{separator}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(CONFIG)
        .send()
        .unwrap();
    assert_eq!(
        answer.status(),
        201,
        "config upload to {repo}: {}",
        answer.text().unwrap_or_default()
    );
}

fn manifest(writer: usize, n: usize) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_TYPE}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[],"annotations":{{"writer":"{writer}","n":"{n}"}}}}"#,
        sha256(CONFIG),
        CONFIG.len()
    )
    .into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: writers URL REPO_PREFIX WRITERS TOTAL_PUTS (one|each) [USER:PASSWORD]");
        std::process::exit(2);
    }
    let url = args[1].trim_end_matches('/').to_string();
    let prefix = args[2].clone();
    let writers: usize = args[3].parse().expect("WRITERS");
    let total: usize = args[4].parse().expect("TOTAL_PUTS");
    let one_repo = match args[5].as_str() {
        "one" => true,
        "each" => false,
        other => panic!("one or each, not {other}"),
    };
    let auth = args.get(6).cloned();
    let repo_of = |w: usize| {
        if one_repo {
            prefix.clone()
        } else {
            format!("{prefix}-{w}")
        }
    };
    let setup = client(auth.as_deref());
    let repos: std::collections::BTreeSet<String> = (0..writers).map(repo_of).collect();
    for repo in &repos {
        upload_config(&setup, &url, repo);
    }

    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let (next, errors, url, auth, repo) = (
                next.clone(),
                errors.clone(),
                url.clone(),
                auth.clone(),
                repo_of(w),
            );
            std::thread::spawn(move || {
                let http = client(auth.as_deref());
                let mut latencies = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        return latencies;
                    }
                    let body = manifest(w, n);
                    let sent = Instant::now();
                    let answer = http
                        .put(format!("{url}/v2/{repo}/manifests/w{w}-{n}"))
                        .header("Content-Type", MANIFEST_TYPE)
                        .body(body)
                        .send();
                    match answer {
                        Ok(a) if a.status() == 201 => {
                            let _ = a.bytes();
                            latencies.push(sent.elapsed());
                        }
                        Ok(a) => {
                            let status = a.status();
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("PUT {repo}:w{w}-{n}: {status} {}", a.text().unwrap_or_default());
                            }
                        }
                        Err(e) => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("PUT {repo}:w{w}-{n}: {e}");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    println!(
        r#"{{"puts":{},"errors":{},"seconds":{:.3},"per_second":{:.0},"p50_ms":{:.2},"p90_ms":{:.2},"p99_ms":{:.2},"max_ms":{:.2}}}"#,
        all.len(),
        errors.load(Ordering::Relaxed),
        elapsed,
        all.len() as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.90),
        percentile(&all, 0.99),
        all.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
}
