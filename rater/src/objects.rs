//! Exports kept as objects (S3): the small trait the rater reads and writes them through, its S3 implementation, and a reader that streams an object in ranges (a few fetched ahead, in parallel), decompressing gzip and zstd on the way.
//!
//! Why ranges: a nightly export can be gigabytes and the function has at most a few hundred
//! megabytes of memory; a ranged GET per [`RANGE_BYTES`] keeps at most [`RANGES_AHEAD`] + 1
//! ranges in memory (the one being parsed, the next ones in flight), and every range is read
//! under `If-Match`
//! of the ETag the object had when rating began, so an object replaced half-way is refused
//! instead of rated as a mix of two uploads.

use std::future::Future;
use std::io::{BufRead, Read};
use std::sync::{Arc, Mutex};

use crate::error::ExportProblem;

/// Bytes per ranged GET: large enough that request latency is amortized (S3 serves a range at
/// 50-100 MB/s per connection), small enough that two in memory stay far below the function's
/// memory. Measured in BENCHMARKS.md ("S3 exports").
pub const RANGE_BYTES: u64 = 8 << 20;

/// Ranges in flight while one is parsed. One S3 connection serves 50-100 MB/s and the parser
/// reads 80-110 MB/s of CSV on one core: four parallel GETs keep the parser fed even when one
/// is slow, for 32 MiB of memory (measured in BENCHMARKS.md, "Exports in S3").
pub const RANGES_AHEAD: usize = 4;

/// Where an object is: a key, and the version an S3 event named (`None`: the current one).
/// Reading the event's version rates the object that was created, even when the key was
/// overwritten before the event (or its retry) was handled; the newer object has its own event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectLoc {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

impl std::fmt::Display for ObjectLoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)?;
        match &self.version_id {
            Some(v) => write!(f, " (version {v})"),
            None => Ok(()),
        }
    }
}

impl ObjectLoc {
    /// Parses `s3://bucket/key`.
    pub fn parse_url(url: &str) -> Option<ObjectLoc> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/')?;
        (!bucket.is_empty() && !key.is_empty()).then(|| ObjectLoc {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: None,
        })
    }
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// The entity tag, quotes included, as S3 sends it.
    pub etag: String,
    pub version_id: Option<String>,
    /// A checksum of the whole object's bytes, `<algorithm>:<base64>`, when S3 has one
    /// (it computes CRC64NVME for every upload since 2025; other algorithms when the
    /// uploader chose one); never a composite multipart checksum, which depends on the part
    /// size. Unlike the ETag, it is the same for the same bytes however they were uploaded
    /// and encrypted (an SSE-KMS object's ETag is not its MD5, so it differs on every
    /// upload): the export's identity when present ([`crate::exports::batch_id_of`]).
    pub checksum: Option<String>,
}

/// The whole-object checksum of a HeadObject answer (see [`ObjectMeta::checksum`]): the first
/// of CRC64NVME, SHA-256, SHA-1, CRC32C and CRC32 that S3 sent, unless it is a composite of the
/// parts' checksums (`<base64>-<parts>`; base64 has no `-`).
fn whole_object_checksum(
    o: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
) -> Option<String> {
    [
        ("CRC64NVME", o.checksum_crc64_nvme()),
        ("SHA256", o.checksum_sha256()),
        ("SHA1", o.checksum_sha1()),
        ("CRC32C", o.checksum_crc32_c()),
        ("CRC32", o.checksum_crc32()),
    ]
    .into_iter()
    .find_map(|(algorithm, value)| {
        value
            .filter(|v| !v.is_empty() && !v.contains('-'))
            .map(|v| format!("{algorithm}:{v}"))
    })
}

/// The object storage the rater reads exports from and writes rejection reports to.
/// Implemented by [`S3Objects`]; tests of the protocol use an in-memory map, and the
/// end-to-end tests run the S3 implementation against a local S3 (moto).
pub trait Objects: Clone + Send + Sync + 'static {
    /// Bytes per ranged GET ([`RANGE_BYTES`]; tests use small ranges to cross many bounds).
    fn range_bytes(&self) -> u64 {
        RANGE_BYTES
    }

    /// The object's size and ETag; `None` when there is no such object.
    fn head(
        &self,
        loc: &ObjectLoc,
    ) -> impl Future<Output = Result<Option<ObjectMeta>, ExportProblem>> + Send;

    /// Bytes `start..end` of the object, only if its ETag is still `etag`.
    fn get_range(
        &self,
        loc: ObjectLoc,
        etag: String,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ExportProblem>> + Send + 'static;

    /// Writes a whole (small) object.
    fn put(
        &self,
        loc: &ObjectLoc,
        body: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), ExportProblem>> + Send;

    /// The size above which an export is rated in shards by parallel invocations
    /// ([`crate::shards`]); `None` when the deployment has no shard queue (every export is
    /// rated by the invocation its event reaches, as the CLI does).
    fn shard_bytes(&self) -> Option<u64> {
        None
    }

    /// Sends shard messages (JSON bodies) to the shard queue, every one or an error.
    fn enqueue(
        &self,
        messages: Vec<String>,
    ) -> impl Future<Output = Result<(), ExportProblem>> + Send {
        let n = messages.len();
        async move {
            Err(ExportProblem::Refused {
                message: format!(
                    "{n} shard messages and no shard queue (RATECARD_SHARD_QUEUE_URL)"
                ),
            })
        }
    }
}

/// No object storage: a deployment (or a test) without an exports bucket. Every call is
/// refused, naming the setting.
#[derive(Debug, Clone, Copy)]
pub struct NoObjects;

fn no_bucket() -> ExportProblem {
    ExportProblem::Refused {
        message: "this deployment has no exports bucket (RATECARD_EXPORTS_BUCKET)".into(),
    }
}

impl Objects for NoObjects {
    async fn head(&self, _: &ObjectLoc) -> Result<Option<ObjectMeta>, ExportProblem> {
        Err(no_bucket())
    }

    // Not an `async fn`: that would borrow `self`, and the trait wants a `'static` future
    // (the reader spawns it to fetch a range ahead).
    #[allow(clippy::manual_async_fn)]
    fn get_range(
        &self,
        _: ObjectLoc,
        _: String,
        _: u64,
        _: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ExportProblem>> + Send + 'static {
        async { Err(no_bucket()) }
    }

    async fn put(&self, _: &ObjectLoc, _: Vec<u8>, _: &str) -> Result<(), ExportProblem> {
        Err(no_bucket())
    }
}

/// Objects in Amazon S3 (or anything speaking its API: `AWS_ENDPOINT_URL_S3`), and the
/// SQS queue that hands a large export's shards to parallel invocations, when there is one.
#[derive(Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    queue: Option<Arc<ShardQueue>>,
}

/// The shard queue: an SQS queue whose messages trigger the function (its event source
/// mapping), and the export size above which exports are sharded.
pub struct ShardQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    pub shard_bytes: u64,
}

/// Messages per `SendMessageBatch` (the API's limit).
const SQS_BATCH_MAX: usize = 10;

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client) -> S3Objects {
        S3Objects {
            client,
            queue: None,
        }
    }

    /// The same objects, with a shard queue.
    pub fn with_queue(mut self, queue: ShardQueue) -> S3Objects {
        self.queue = Some(Arc::new(queue));
        self
    }

    /// A client from the shared AWS configuration. A custom endpoint (`AWS_ENDPOINT_URL_S3`
    /// or `AWS_ENDPOINT_URL`: a local S3 such as moto or MinIO) is addressed path-style,
    /// which such servers need; AWS itself is addressed virtual-host style.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> S3Objects {
        let custom = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
        let conf = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(custom)
            .build();
        S3Objects::new(aws_sdk_s3::Client::from_conf(conf))
    }
}

/// An S3 error as an export problem: throttling, timeouts and 5xx can pass on a retry;
/// 404 is a missing object; 412 an object replaced since rating began; the rest (access
/// denied, a bad bucket name) is the deployment's.
fn problem<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> ExportProblem
where
    E: std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let status = e.raw_response().map(|r| r.status().as_u16());
    let message = aws_sdk_s3::error::DisplayErrorContext(e).to_string();
    match (e, status) {
        (_, Some(404)) => ExportProblem::Missing,
        (_, Some(412)) => ExportProblem::Changed,
        (_, Some(s)) if s == 429 || s == 503 || s >= 500 => ExportProblem::Unavailable { message },
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => {
            ExportProblem::Unavailable { message }
        }
        (SdkError::ResponseError(_), None) => ExportProblem::Unavailable { message },
        _ => ExportProblem::Refused { message },
    }
}

impl Objects for S3Objects {
    async fn head(&self, loc: &ObjectLoc) -> Result<Option<ObjectMeta>, ExportProblem> {
        let out = self
            .client
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .set_version_id(loc.version_id.clone())
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await;
        match out {
            Ok(o) => Ok(Some(ObjectMeta {
                size: o.content_length().unwrap_or(0).max(0) as u64,
                etag: o.e_tag().unwrap_or_default().to_string(),
                version_id: o.version_id().map(str::to_string),
                checksum: whole_object_checksum(&o),
            })),
            Err(e) => match problem(&e) {
                ExportProblem::Missing => Ok(None),
                p => Err(p),
            },
        }
    }

    fn get_range(
        &self,
        loc: ObjectLoc,
        etag: String,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ExportProblem>> + Send + 'static {
        let client = self.client.clone();
        async move {
            let out = client
                .get_object()
                .bucket(&loc.bucket)
                .key(&loc.key)
                .set_version_id(loc.version_id.clone())
                .range(format!("bytes={start}-{}", end - 1))
                .if_match(etag)
                .send()
                .await
                .map_err(|e| problem(&e))?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| ExportProblem::Unavailable {
                    message: e.to_string(),
                })?;
            Ok(body.into_bytes().to_vec())
        }
    }

    async fn put(
        &self,
        loc: &ObjectLoc,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ExportProblem> {
        self.client
            .put_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| problem(&e))
    }

    fn shard_bytes(&self) -> Option<u64> {
        self.queue.as_ref().map(|q| q.shard_bytes)
    }

    /// Ten messages per call; an entry SQS failed is sent again in the next call, up to a
    /// few times, then the whole call fails (retryable: a redelivered event sends them all
    /// again, and shards are idempotent).
    async fn enqueue(&self, messages: Vec<String>) -> Result<(), ExportProblem> {
        let Some(q) = self.queue.clone() else {
            return Err(ExportProblem::Refused {
                message: "no shard queue (RATECARD_SHARD_QUEUE_URL)".into(),
            });
        };
        let unavailable = |message: String| ExportProblem::Unavailable { message };
        for group in messages.chunks(SQS_BATCH_MAX) {
            let mut pending: Vec<(usize, &String)> = group.iter().enumerate().collect();
            for attempt in 1..=4u32 {
                let entries = pending
                    .iter()
                    .map(|(i, body)| {
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(format!("m{i}"))
                            .message_body(body.as_str())
                            .build()
                            .map_err(|e| unavailable(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = q
                    .client
                    .send_message_batch()
                    .queue_url(&q.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| {
                        unavailable(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())
                    })?;
                let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                pending.retain(|(i, _)| failed.contains(&format!("m{i}").as_str()));
                if pending.is_empty() {
                    break;
                }
                if attempt == 4 {
                    return Err(unavailable(format!(
                        "SQS refused {} shard messages four times: {:?}",
                        pending.len(),
                        out.failed()
                            .first()
                            .map(|f| f.message().unwrap_or(f.code()))
                    )));
                }
                tokio::time::sleep(crate::retry::backoff(attempt)).await;
            }
        }
        Ok(())
    }
}

/// The first problem a reader met, kept beside the `io::Error` that carried it through the
/// importer (which only sees text), so the caller can answer with the problem itself:
/// a throttled GET is retryable, a bad export is not.
pub type ProblemSlot = Arc<Mutex<Option<ExportProblem>>>;

/// A synchronous reader over an object, in ranges, [`RANGES_AHEAD`] fetched ahead. It blocks its thread
/// while a range is awaited (`block_in_place`: the importer is synchronous), so it needs the
/// multi-threaded Tokio runtime (the Lambda binary's and the CLI's).
pub struct ObjectReader<O: Objects> {
    objects: O,
    loc: ObjectLoc,
    meta: ObjectMeta,
    next_start: u64,
    /// Where reading stops (the object's size, or a shard's end).
    end: u64,
    /// The GETs in flight, in the object's order.
    ahead: std::collections::VecDeque<tokio::task::JoinHandle<Result<Vec<u8>, ExportProblem>>>,
    buf: Vec<u8>,
    pos: usize,
    handle: tokio::runtime::Handle,
    slot: ProblemSlot,
}

impl<O: Objects> ObjectReader<O> {
    /// A reader over the object as `meta` describes it (from a HEAD just made).
    pub fn new(objects: O, loc: ObjectLoc, meta: ObjectMeta, slot: ProblemSlot) -> Self {
        let end = meta.size;
        Self::range(objects, loc, meta, 0..end, slot)
    }

    /// A reader over bytes `range` of the object (a shard).
    pub fn range(
        objects: O,
        loc: ObjectLoc,
        meta: ObjectMeta,
        range: std::ops::Range<u64>,
        slot: ProblemSlot,
    ) -> Self {
        let mut r = ObjectReader {
            objects,
            loc,
            end: range.end.min(meta.size),
            meta,
            next_start: range.start,
            ahead: std::collections::VecDeque::with_capacity(RANGES_AHEAD),
            buf: Vec::new(),
            pos: 0,
            handle: tokio::runtime::Handle::current(),
            slot,
        };
        r.fetch_ahead();
        r
    }

    /// Starts GETs of the next ranges until [`RANGES_AHEAD`] are in flight or none is left.
    fn fetch_ahead(&mut self) {
        while self.ahead.len() < RANGES_AHEAD && self.next_start < self.end {
            self.fetch_next();
        }
    }

    /// Starts the GET of the next range.
    fn fetch_next(&mut self) {
        let end = (self.next_start + self.objects.range_bytes().max(1)).min(self.end);
        let fut = self.objects.get_range(
            self.loc.clone(),
            self.meta.etag.clone(),
            self.next_start,
            end,
        );
        self.ahead.push_back(self.handle.spawn(fut));
        self.next_start = end;
    }

    fn fail(&self, p: ExportProblem) -> std::io::Error {
        let text = p.to_string();
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(p);
        std::io::Error::other(text)
    }
}

impl<O: Objects> Drop for ObjectReader<O> {
    /// A reader dropped early (a bad record, a failed range) stops its downloads.
    fn drop(&mut self) {
        for task in &self.ahead {
            task.abort();
        }
    }
}

impl<O: Objects> Read for ObjectReader<O> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            let Some(ahead) = self.ahead.pop_front() else {
                return Ok(0);
            };
            let handle = self.handle.clone();
            let got = tokio::task::block_in_place(|| handle.block_on(ahead));
            let bytes = match got {
                Ok(Ok(b)) => b,
                Ok(Err(p)) => return Err(self.fail(p)),
                Err(join) => {
                    return Err(self.fail(ExportProblem::Unavailable {
                        message: format!("the range's download task failed: {join}"),
                    }))
                }
            };
            if bytes.is_empty() {
                // The object is shorter than its HEAD said: it changed under us.
                return Err(self.fail(ExportProblem::Changed));
            }
            self.buf = bytes;
            self.pos = 0;
            self.fetch_ahead();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// How an export's bytes are compressed, from their first bytes (the key's suffix can lie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A decoder's error, named for the compression and the usual cause, and kept in the slot
/// as a problem of the export (not retryable: the same bytes fail the same way).
struct Decoded<R> {
    inner: R,
    compression: Compression,
    slot: ProblemSlot,
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(out).inspect_err(|e| {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(ExportProblem::Compression {
                    compression: self.compression.name(),
                    message: e.to_string(),
                });
            }
        })
    }
}

/// A zstd stream of any number of frames, read as one stream, as `zstd -d` reads it:
/// `pzstd`, `cat a.zst b.zst` and writers that end a frame at each flush make several, and
/// `ruzstd`'s `StreamingDecoder` stops at the end of the first (the rest of the export would
/// be lost without a word). Skippable frames (metadata) are skipped.
struct ZstdFrames<R: BufRead> {
    source: R,
    frame: ruzstd::decoding::FrameDecoder,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(mut source: R) -> Result<Self, ruzstd::decoding::errors::FrameDecoderError> {
        let mut frame = ruzstd::decoding::FrameDecoder::new();
        frame.init(&mut source)?;
        Ok(ZstdFrames { source, frame })
    }

    /// At the end of a frame: starts the next one, skipping skippable frames; `false` at the
    /// end of the input.
    fn next_frame(&mut self) -> std::io::Result<bool> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = std::io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut std::io::sink(),
                    )?;
                    if skipped != u64::from(length) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the stream ends inside a skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.frame.is_finished() && self.frame.can_collect() == 0 {
                if !self.next_frame()? {
                    return Ok(0);
                }
                continue;
            }
            // As `StreamingDecoder::read`: decode until enough is collectable or the frame ends.
            while self.frame.can_collect() < out.len() && !self.frame.is_finished() {
                let wanted = out.len() - self.frame.can_collect();
                self.frame
                    .decode_blocks(
                        &mut self.source,
                        ruzstd::decoding::BlockDecodingStrategy::UptoBytes(wanted),
                    )
                    .map_err(std::io::Error::other)?;
            }
            let n = self.frame.read(out)?;
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// `input`, decompressed when its first bytes say gzip (several members are read as one
/// stream, as `gzip -d` does) or zstd (every frame, as `zstd -d` does).
pub fn decompressed<R: Read + Send + 'static>(
    input: R,
    slot: ProblemSlot,
) -> Result<(Box<dyn Read + Send>, Compression), ExportProblem> {
    let mut input = std::io::BufReader::with_capacity(1 << 20, input);
    let head = std::io::BufRead::fill_buf(&mut input)
        .map_err(|e| {
            slot.lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or(ExportProblem::Unavailable {
                    message: e.to_string(),
                })
        })?
        .to_vec();
    let compression = Compression::of(&head);
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => return Ok((Box::new(input), compression)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
        Compression::Zstd => {
            Box::new(
                ZstdFrames::new(input).map_err(|e| ExportProblem::Compression {
                    compression: "zstd",
                    message: e.to_string(),
                })?,
            )
        }
    };
    Ok((
        Box::new(Decoded {
            inner: reader,
            compression,
            slot,
        }),
        compression,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        assert_eq!(
            ObjectLoc::parse_url("s3://exports-b/exports/cs/2026-11-30.json.gz"),
            Some(ObjectLoc {
                bucket: "exports-b".into(),
                key: "exports/cs/2026-11-30.json.gz".into(),
                version_id: None,
            })
        );
        assert_eq!(ObjectLoc::parse_url("s3://bucket"), None);
        assert_eq!(ObjectLoc::parse_url("s3:///key"), None);
        assert_eq!(ObjectLoc::parse_url("/tmp/file.csv"), None);
    }

    #[test]
    fn compression_from_magic_bytes() {
        assert_eq!(Compression::of(b"\x1f\x8b\x08\0"), Compression::Gzip);
        assert_eq!(Compression::of(b"\x28\xb5\x2f\xfd\0"), Compression::Zstd);
        assert_eq!(Compression::of(b"account,product"), Compression::None);
        assert_eq!(Compression::of(b""), Compression::None);
    }

    #[test]
    fn gzip_is_decoded_and_a_truncated_stream_is_a_compression_problem() {
        use std::io::Write;
        let text = b"hello, export\n".repeat(1000);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&text).unwrap();
        let gz = enc.finish().unwrap();
        let slot = ProblemSlot::default();
        let (mut r, c) = decompressed(std::io::Cursor::new(gz.clone()), slot.clone()).unwrap();
        assert_eq!(c, Compression::Gzip);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, text);

        let cut = gz[..gz.len() / 2].to_vec();
        let (mut r, _) = decompressed(std::io::Cursor::new(cut), slot.clone()).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        assert!(matches!(
            slot.lock().unwrap().as_ref(),
            Some(ExportProblem::Compression {
                compression: "gzip",
                ..
            })
        ));
    }

    #[test]
    fn zstd_of_several_frames_is_read_whole_and_a_cut_frame_is_a_compression_problem() {
        use ruzstd::encoding::{compress_to_vec, CompressionLevel};
        let first = b"account,product\n".repeat(700);
        let second = b"acme,copper\n".repeat(900);
        // What `cat a.zst b.zst` (or `pzstd`) makes, with a skippable frame (metadata) between:
        // magic 0x184D2A50 and a length, little-endian, then that many bytes.
        let mut zst = compress_to_vec(&first[..], CompressionLevel::Fastest);
        zst.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        zst.extend_from_slice(&5u32.to_le_bytes());
        zst.extend_from_slice(b"notes");
        zst.extend_from_slice(&compress_to_vec(&second[..], CompressionLevel::Fastest));
        let slot = ProblemSlot::default();
        let (mut r, c) = decompressed(std::io::Cursor::new(zst.clone()), slot.clone()).unwrap();
        assert_eq!(c, Compression::Zstd);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let whole = [&first[..], &second[..]].concat();
        assert_eq!(out.len(), whole.len(), "both frames, not only the first");
        assert_eq!(out, whole);

        // Cut inside the second frame: an error, never the first frame alone as if whole.
        let cut = zst[..zst.len() - 10].to_vec();
        let (mut r, _) = decompressed(std::io::Cursor::new(cut), slot.clone()).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        assert!(matches!(
            slot.lock().unwrap().as_ref(),
            Some(ExportProblem::Compression {
                compression: "zstd",
                ..
            })
        ));
    }

    #[test]
    fn an_objects_identity_is_its_whole_content_checksum_never_a_composite() {
        use aws_sdk_s3::operation::head_object::HeadObjectOutput;
        let head = HeadObjectOutput::builder()
            .checksum_crc32("AAAAAA==")
            .checksum_crc64_nvme("xjQ3jbAPwaA=")
            .build();
        assert_eq!(
            whole_object_checksum(&head).as_deref(),
            Some("CRC64NVME:xjQ3jbAPwaA="),
            "CRC64NVME first: S3 computes it for every upload"
        );
        // A multipart upload's composite checksum (a checksum of the parts' checksums,
        // `-<parts>`) changes with the part size: not the content's identity.
        let head = HeadObjectOutput::builder()
            .checksum_sha256("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=-3")
            .checksum_crc32_c("yZRlqg==")
            .build();
        assert_eq!(
            whole_object_checksum(&head).as_deref(),
            Some("CRC32C:yZRlqg==")
        );
        let head = HeadObjectOutput::builder()
            .checksum_sha256("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=-3")
            .build();
        assert_eq!(whole_object_checksum(&head), None);
        assert_eq!(
            whole_object_checksum(&HeadObjectOutput::builder().build()),
            None
        );
    }
}
