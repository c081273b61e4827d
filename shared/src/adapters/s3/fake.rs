//! A scripted S3 endpoint for the adapter's unit tests: a loopback HTTP/1.1 server whose answer to
//! each request the test decides, including what a faulty network does (an answer lost after the
//! request took effect, a body cut off half-way).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::S3BlobStore;

pub const BUCKET: &str = "bucket";

/// A request as the handler sees it.
pub struct Request {
    pub method: String,
    /// The path below the bucket (`/bucket/<key>` → `<key>`; empty for the bucket itself).
    pub key: String,
    pub query: String,
    pub body: Vec<u8>,
}

pub enum Reply {
    /// A whole answer.
    Answer { status: u16, body: Vec<u8> },
    /// The request was read (it took effect), then the connection closed without an answer.
    Drop,
    /// The head with the whole body's `Content-Length`, only `sent` bytes of it, then a close.
    Cut { body: Vec<u8>, sent: usize },
}

pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
    Reply::Answer {
        status: 200,
        body: body.into(),
    }
}

/// S3's answer to a conditional write whose condition failed.
pub fn precondition_failed() -> Reply {
    Reply::Answer {
        status: 412,
        body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PreconditionFailed</Code>\
                <Message>At least one of the pre-conditions you specified did not hold</Message></Error>"
            .to_vec(),
    }
}

/// A ListObjectsV2 answer naming `objects` (key, size).
pub fn listing(objects: &[(&str, usize)]) -> Reply {
    let contents: String = (objects.iter())
        .map(|(key, size)| format!("<Contents><Key>{key}</Key><Size>{size}</Size></Contents>"))
        .collect();
    ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>{BUCKET}</Name>\
         <KeyCount>{}</KeyCount><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>",
        objects.len()
    ))
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// Serves `handler` on a loopback port; returns a store on [`BUCKET`] there whose client retries
/// as the SDK's standard mode does, with millisecond back-offs.
pub async fn store(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> S3BlobStore {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let _ = connection(stream, handler).await;
            });
        }
    });
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "fake"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
        .build();
    S3BlobStore::from_config(config, BUCKET)
}

async fn connection(stream: tokio::net::TcpStream, handler: Handler) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let (mut length, mut chunked, mut aws_chunked) = (0usize, false, false);
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "transfer-encoding" && value.contains("chunked") {
                chunked = true;
            } else if name == "content-encoding" && value.contains("aws-chunked") {
                aws_chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).await?;
                let size =
                    usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
                let mut data = vec![0; size + 2];
                reader.read_exact(&mut data).await?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&data[..size]);
            }
        } else {
            body.resize(length, 0);
            reader.read_exact(&mut body).await?;
        }
        if aws_chunked {
            body = decode_aws_chunked(&body);
        }
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let key = (path.trim_start_matches('/').strip_prefix(BUCKET))
            .unwrap_or(path)
            .trim_start_matches('/')
            .to_string();
        let request = Request {
            method,
            key,
            query: query.to_string(),
            body,
        };
        match handler(&request) {
            Reply::Answer { status, body } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                write.write_all(head.as_bytes()).await?;
                write.write_all(&body).await?;
            }
            Reply::Drop => return Ok(()),
            Reply::Cut { body, sent } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                write.write_all(head.as_bytes()).await?;
                write.write_all(&body[..sent.min(body.len())]).await?;
                write.flush().await?;
                return Ok(());
            }
        }
    }
}

/// The payload of an `aws-chunked` body (`<hex size>[;ext]\r\n<data>\r\n` … `0\r\n<trailers>`).
fn decode_aws_chunked(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let line = String::from_utf8_lossy(&body[..end]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 || body.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&body[end + 2..end + 2 + size]);
        body = &body[(end + 4 + size).min(body.len())..];
    }
    out
}
