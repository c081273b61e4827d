//! A fault-injecting HTTP/1.1 proxy for the tests: one instance in front of the S3 server (s3s-fs)
//! and one in front of DynamoDB (moto), Berth's `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL_DYNAMODB`
//! pointed at them. Requests and responses are passed on byte for byte (headers untouched, so SigV4
//! signatures still verify upstream); on a configurable share of calls (a seeded draw per request)
//! the proxy injects one fault instead:
//!
//! | fault | what the client sees |
//! |---|---|
//! | `throttle` | S3: `503 SlowDown` (XML); DynamoDB: `400 ProvisionedThroughputExceededException` (JSON, `x-amzn-ErrorType`) |
//! | `error_500` | `500 InternalError` / `InternalServerError`, the request never forwarded |
//! | `error_503` | `503 ServiceUnavailable`, the request never forwarded |
//! | `latency` | the request forwarded after 0.2–1.5 s |
//! | `reset_before` | the connection reset (`SO_LINGER` 0) before the request is forwarded |
//! | `reset_after` | the request forwarded and applied upstream, then the connection reset: the answer is lost |
//! | `truncate` | the request applied, the answer's head and half its body sent, then a reset (a response without a body is reset instead, counted as `reset_after`) |
//!
//! Presigned GETs (`X-Amz-Signature` in the query: clients following a blob redirect to S3) are
//! passed through unfaulted and counted apart: the faults sit between Berth and its stores.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Which protocol's errors the proxy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    S3,
    DynamoDb,
}

/// A kind of injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Throttle,
    Error500,
    Error503,
    Latency,
    ResetBefore,
    ResetAfter,
    Truncate,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Throttle,
        Fault::Error500,
        Fault::Error503,
        Fault::Latency,
        Fault::ResetBefore,
        Fault::ResetAfter,
        Fault::Truncate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Throttle => "throttle",
            Fault::Error500 => "error_500",
            Fault::Error503 => "error_503",
            Fault::Latency => "latency",
            Fault::ResetBefore => "reset_before",
            Fault::ResetAfter => "reset_after",
            Fault::Truncate => "truncate",
        }
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// What a proxy has seen and done so far.
#[derive(Clone, Debug, Default)]
pub struct FaultStats {
    /// Requests received (presigned client GETs excluded).
    pub calls: u64,
    /// Presigned client GETs, passed through unfaulted.
    pub presigned: u64,
    /// Faults injected, per kind.
    pub faults: BTreeMap<&'static str, u64>,
}

impl FaultStats {
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

struct Shared {
    service: Service,
    upstream: SocketAddr,
    /// Faults per million calls.
    rate_ppm: AtomicU32,
    rng: Mutex<u64>,
    calls: AtomicU64,
    presigned: AtomicU64,
    counts: [AtomicU64; 7],
    stopped: AtomicBool,
}

impl Shared {
    fn next(&self) -> u64 {
        let mut state = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11
    }

    /// The fault for the next call, if one is drawn.
    fn draw(&self) -> Option<Fault> {
        let rate = u64::from(self.rate_ppm.load(Ordering::SeqCst));
        if rate == 0 || self.next() % 1_000_000 >= rate {
            return None;
        }
        let kinds = Fault::ALL.len() as u64;
        Some(Fault::ALL[usize::try_from(self.next() % kinds).unwrap_or(0)])
    }

    fn count(&self, fault: Fault) {
        self.counts[fault.index()].fetch_add(1, Ordering::SeqCst);
    }
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// A proxy on an ephemeral 127.0.0.1 port in front of `upstream` (`http://host:port`), injecting
    /// faults on `rate` (0.0–1.0) of the calls, drawn from `seed`.
    pub fn start(service: Service, upstream: &str, seed: u64, rate: f64) -> FaultProxy {
        let authority = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let upstream: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&authority)
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("the proxy's upstream {authority} does not resolve"));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            service,
            upstream,
            rate_ppm: AtomicU32::new(0),
            rng: Mutex::new(seed | 1),
            calls: AtomicU64::new(0),
            presigned: AtomicU64::new(0),
            counts: Default::default(),
            stopped: AtomicBool::new(false),
        });
        let proxy = FaultProxy {
            addr,
            shared: Arc::clone(&shared),
        };
        proxy.set_rate(rate);
        std::thread::Builder::new()
            .name(format!("fault-proxy-{service:?}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(accept(listener, shared));
            })
            .expect("the proxy's thread");
        proxy
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_*`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the share of calls that get a fault (0.0 turns faults off).
    pub fn set_rate(&self, rate: f64) {
        let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
        self.shared.rate_ppm.store(ppm, Ordering::SeqCst);
    }

    pub fn stats(&self) -> FaultStats {
        let faults = (Fault::ALL.iter())
            .map(|f| (f.name(), self.shared.counts[f.index()].load(Ordering::SeqCst)))
            .collect();
        FaultStats {
            calls: self.shared.calls.load(Ordering::SeqCst),
            presigned: self.shared.presigned.load(Ordering::SeqCst),
            faults,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

async fn accept(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _ = serve(client, shared).await;
        });
    }
}

/// A request or response as read: its head lines (without CRLF) and its body. Requests keep the
/// body's bytes as framed on the wire (chunks included); responses are decoded.
struct Message {
    head: Vec<Vec<u8>>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<String> {
        self.head.iter().skip(1).find_map(|line| {
            let text = String::from_utf8_lossy(line);
            let (key, value) = text.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    fn first_line(&self) -> String {
        self.head
            .first()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .unwrap_or_default()
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

const MAX_HEAD: usize = 64 * 1024;
/// How long a client connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(120);

/// Reads a message head; `None` on a clean end of stream before its first byte.
async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Vec<Vec<u8>>>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "head cut off"));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if line.is_empty() {
            if lines.is_empty() {
                continue; // A stray CRLF between messages.
            }
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

/// A chunked body: (the raw framing, the decoded bytes).
async fn read_chunked<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut decoded = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunk cut off"));
        }
        raw.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line);
        let size_text = text.trim().split(';').next().unwrap_or("").trim().to_owned();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut trailer = Vec::new();
                if reader.read_until(b'\n', &mut trailer).await? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "trailer cut off"));
                }
                raw.extend_from_slice(&trailer);
                if trailer == b"\r\n" || trailer == b"\n" {
                    return Ok((raw, decoded));
                }
            }
        }
        let mut data = vec![0; size + 2];
        reader.read_exact(&mut data).await?;
        raw.extend_from_slice(&data);
        decoded.extend_from_slice(&data[..size]);
    }
}

async fn read_request(
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
) -> io::Result<Option<Message>> {
    let Some(head) = read_head(reader).await? else {
        return Ok(None);
    };
    let mut message = Message { head, body: vec![] };
    if (message.header("expect")).is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    if (message.header("transfer-encoding")).is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        message.body = read_chunked(reader).await?.0;
    } else if let Some(length) = message.header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        message.body = body;
    }
    Ok(Some(message))
}

/// Reads the final response (1xx interim answers skipped); `close` when the body ran to the end of
/// the stream or the server asked to close.
async fn read_response(
    reader: &mut BufReader<OwnedReadHalf>,
    method_is_head: bool,
) -> io::Result<(Message, bool)> {
    loop {
        let head = read_head(reader)
            .await?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
        let mut message = Message { head, body: vec![] };
        let status: u16 = (message.first_line().split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if (100..200).contains(&status) {
            continue;
        }
        let mut close = message.wants_close();
        if method_is_head || status == 204 || status == 304 {
            return Ok((message, close));
        }
        if (message.header("transfer-encoding")).is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            message.body = read_chunked(reader).await?.1;
        } else if let Some(length) = message.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?;
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
            message.body = body;
        } else {
            reader.read_to_end(&mut message.body).await?;
            close = true;
        }
        return Ok((message, close));
    }
}

fn serialize_request(request: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(request.body.len() + 1024);
    for line in &request.head {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&request.body);
    out
}

/// The response's head with its body framed by `Content-Length` (a decoded chunked body), and the
/// body. A HEAD answer's headers are left as they are.
fn serialize_response(response: &Message, method_is_head: bool) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::new();
    for (i, line) in response.head.iter().enumerate() {
        let lower = String::from_utf8_lossy(line).to_ascii_lowercase();
        let framing = lower.starts_with("transfer-encoding:") || lower.starts_with("content-length:");
        if i > 0 && framing && !method_is_head {
            continue;
        }
        head.extend_from_slice(line);
        head.extend_from_slice(b"\r\n");
    }
    if !method_is_head {
        head.extend_from_slice(format!("content-length: {}\r\n", response.body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    (head, response.body.clone())
}

/// The canned answer of an error fault.
fn error_response(service: Service, fault: Fault) -> Vec<u8> {
    let (status, reason, code, message) = match (service, fault) {
        (Service::S3, Fault::Throttle) => (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
        (Service::DynamoDb, Fault::Throttle) => (
            400,
            "Bad Request",
            "ProvisionedThroughputExceededException",
            "The level of configured provisioned throughput for the table was exceeded.",
        ),
        (Service::S3, Fault::Error500) => (
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
        (Service::DynamoDb, Fault::Error500) => (
            500,
            "Internal Server Error",
            "InternalServerError",
            "Internal server error",
        ),
        (_, _) => (
            503,
            "Service Unavailable",
            "ServiceUnavailable",
            "Service is unable to handle request.",
        ),
    };
    let (content_type, body, extra) = match service {
        Service::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
                 <RequestId>FAULTPROXY</RequestId><HostId>faultproxy</HostId></Error>"
            ),
            String::new(),
        ),
        Service::DynamoDb => (
            "application/x-amz-json-1.0",
            format!("{{\"__type\":\"com.amazonaws.dynamodb.v20120810#{code}\",\"message\":\"{message}\"}}"),
            format!("x-amzn-ErrorType: {code}\r\nx-amzn-RequestId: FAULTPROXY\r\n"),
        ),
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Resets the client's connection: `SO_LINGER` 0, so closing it sends a RST.
fn reset(reader: BufReader<OwnedReadHalf>, writer: OwnedWriteHalf) {
    if let Ok(stream) = reader.into_inner().reunite(writer) {
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

type Upstream = (BufReader<OwnedReadHalf>, OwnedWriteHalf);

/// Sends the request upstream (on the kept connection, or a new one if that one is gone) and reads
/// the answer.
async fn forward(
    shared: &Shared,
    upstream: &mut Option<Upstream>,
    bytes: &[u8],
    method_is_head: bool,
) -> io::Result<Message> {
    for attempt in 0..2 {
        if upstream.is_none() {
            let stream = TcpStream::connect(shared.upstream).await?;
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            *upstream = Some((BufReader::new(read), write));
        }
        let Some((reader, writer)) = upstream.as_mut() else {
            continue;
        };
        let sent = writer.write_all(bytes).await;
        let answer = match sent {
            Ok(()) => read_response(reader, method_is_head).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok((response, close)) => {
                if close {
                    *upstream = None;
                }
                return Ok(response);
            }
            // A kept-alive connection the server closed meanwhile: once more on a new one.
            Err(_) if attempt == 0 => *upstream = None,
            Err(e) => {
                *upstream = None;
                return Err(e);
            }
        }
    }
    Err(io::Error::other("unreachable"))
}

async fn serve(client: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    let (read, mut writer) = client.into_split();
    let mut reader = BufReader::new(read);
    let mut upstream: Option<Upstream> = None;
    loop {
        let request = match tokio::time::timeout(IDLE, read_request(&mut reader, &mut writer)).await {
            Ok(Ok(Some(request))) => request,
            _ => return Ok(()),
        };
        let line = request.first_line();
        let method_is_head = line.starts_with("HEAD ");
        let presigned = line.contains("X-Amz-Signature=");
        let fault = if presigned {
            shared.presigned.fetch_add(1, Ordering::SeqCst);
            None
        } else {
            shared.calls.fetch_add(1, Ordering::SeqCst);
            shared.draw()
        };
        match fault {
            Some(kind @ (Fault::Throttle | Fault::Error500 | Fault::Error503)) => {
                shared.count(kind);
                writer.write_all(&error_response(shared.service, kind)).await?;
                if request.wants_close() {
                    return Ok(());
                }
                continue;
            }
            Some(Fault::ResetBefore) => {
                shared.count(Fault::ResetBefore);
                reset(reader, writer);
                return Ok(());
            }
            Some(Fault::Latency) => {
                shared.count(Fault::Latency);
                let pause = 200 + shared.next() % 1300;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            _ => {}
        }
        let bytes = serialize_request(&request);
        let response = match forward(&shared, &mut upstream, &bytes, method_is_head).await {
            Ok(answer) => answer,
            Err(_) => {
                reset(reader, writer);
                return Ok(());
            }
        };
        let (head, body) = serialize_response(&response, method_is_head);
        match fault {
            Some(Fault::Truncate) if body.len() >= 2 => {
                shared.count(Fault::Truncate);
                writer.write_all(&head).await?;
                writer.write_all(&body[..body.len() / 2]).await?;
                writer.flush().await?;
                // Let the head and half body reach the client before the reset.
                tokio::time::sleep(Duration::from_millis(20)).await;
                reset(reader, writer);
                return Ok(());
            }
            Some(Fault::ResetAfter | Fault::Truncate) => {
                shared.count(Fault::ResetAfter);
                reset(reader, writer);
                return Ok(());
            }
            _ => {}
        }
        writer.write_all(&head).await?;
        writer.write_all(&body).await?;
        if request.wants_close() {
            return Ok(());
        }
    }
}
