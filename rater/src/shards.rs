//! Exports too large for one invocation: cut into shards on line boundaries, every shard checked in parallel, then (only if all pass) rated in parallel, each exactly once, through the shard queue (SQS).
//!
//! # Why two rounds
//!
//! An export with a bad record is refused whole, sharded or not: an operator fixes the
//! export and drops it again, and nothing of the first drop may have been billed. So the
//! shards are first only **checked** (read, validated, aggregated and put through every check
//! that can refuse a batch, without writing usage), and rated only when every shard passed.
//! Reading twice costs a second pass over the bytes; a refused export costs nothing more.
//!
//! # Exactly once
//!
//! - The export's status document (`FANOUT#<batch>`, one item, written with a version
//!   condition) holds the plan (the byte bounds of each shard, fixed once) and what each
//!   shard reported. A shard's report is recorded once (a second delivery finds it there).
//! - Each shard is rated as its own batch, `<export batch id>-<n>`, through the usual
//!   protocol (lease, ledger, commit): a duplicated message replays, a crashed one resumes.
//! - The move to the next round is made by whichever invocation records the last report. It
//!   sends the next round's messages **before** it records the move, so a crash between the
//!   two leaves a state that its own redelivered message completes; a round's messages may
//!   thus be sent twice, which the rules above make harmless.
//!
//! # Cuts
//!
//! Canonical CSV and JSON Lines hold one record per line (a CSV field may not contain a line
//! break), so a shard starts right after a line break; every CSV shard is read with the
//! header line in front. CloudStack and Ceilometer documents, and compressed objects (a
//! compressed stream cannot be entered in the middle), are rated by one invocation: they are
//! split into several objects by the exporter (see README, "Nightly exports").
//!
//! # What is left to one shard
//!
//! The check round sees each shard alone, against the store as it is then. Three refusals
//! can therefore only come in the rate round, and refuse one shard, not the export: a record
//! id that comes twice with other content in two different shards (within one shard it
//! refuses the export in the check round, like any bad record); an account period whose
//! committed list fills up with the shards together although each fit alone
//! (`PartitionFull`: 2,000 batches or 400 KB per account period, far from what a month's
//! nightly exports use); and a month closed between the two rounds (late usage). The status
//! then says `partly_rated`, and a report names the shard and why; the other shards' usage
//! stays billed (a record-id clash is a broken exporter: neither copy can be guessed right).

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::aggregate::{aggregate_pass, Aggregated, Pass};
use crate::batch::{check_before_writing, rate_aggregated};
use crate::config::RaterConfig;
use crate::error::{RaterError, StoreError};
use crate::exports::{
    batch_id_of, decode_event_key, export_error, problem_wins, rate_and_report, refused,
    report_key, window_of_key, ExportOutcome, S3Event, REJECTED_PREFIX,
};
use crate::import::Format;
use crate::model::{Ledger, Mode};
use crate::objects::{Compression, ObjectLoc, ObjectMeta, ObjectReader, Objects, ProblemSlot};
use crate::store::Store;

/// The shard size when the deployment sets none (`RATECARD_SHARD_BYTES`): 2 GiB. At 512 MB
/// a function has 0.29 of a vCPU and reads canonical CSV at about 44 s per GB (BENCHMARKS.md,
/// "One invocation's reach"); a shard is read once to check it and, in the rate round, up to
/// twice (a second pass when it holds copies of records counted before), so 2 GiB is about
/// 190 s of a 300 s timeout. Larger shards would also make fewer, larger batches per account
/// period (each shard is one batch in the account's committed list).
pub const SHARD_BYTES_DEFAULT: u64 = 2 * 1024 * 1024 * 1024;

/// Bytes read per GET while looking for the line break after a cut.
const SCAN_BYTES: u64 = 64 * 1024;

/// A cut that finds no line break within this many bytes refuses the export: no usage
/// record is a megabyte long.
pub const LINE_BYTES_MAX: u64 = 1024 * 1024;

/// Most shards one export is cut into (the status document lists them all, and stays far
/// below DynamoDB's 400 KB item); an export that would need more gets larger shards.
pub const SHARDS_MAX: u64 = 500;

/// Bad records of one shard kept in the status document and the rejection report (the
/// shard's total is kept too).
pub const SHARD_ERRORS_KEPT: usize = 10;

/// Refused shards whose bad records the status document keeps (see `kept`).
pub const SHARDS_WITH_RECORDS_MAX: usize = 20;

/// Longest message kept for a refused shard.
pub const SHARD_MESSAGE_CHARS_MAX: usize = 200;

/// Attempts at a status update against concurrent shards before the invocation gives up
/// (retryably: the queue delivers its message again).
const STATUS_ATTEMPTS: u32 = 12;

/// The round a shard message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Check,
    Rate,
}

/// Where a fanned-out export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Shards are being checked; nothing is written.
    Checking,
    /// Every shard passed; shards are being rated.
    Rating,
    /// Every shard rated.
    Rated,
    /// A shard was refused in the check round: nothing was rated, a report was written.
    Rejected,
    /// Every shard finished the rate round, and at least one was refused there (see the
    /// module docs): the others are billed.
    PartlyRated,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Checking => "checking",
            State::Rating => "rating",
            State::Rated => "rated",
            State::Rejected => "rejected",
            State::PartlyRated => "partly_rated",
        }
    }
}

/// What the check round found in one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    /// Line breaks in the shard's bytes (the header line is not the shard's): later shards'
    /// line numbers start after them.
    pub lines: u64,
    pub records: u64,
    /// The refusal (the error body, at most [`SHARD_ERRORS_KEPT`] bad records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// What the rate round did with one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rated {
    pub batch_id: String,
    pub records: u64,
    pub duplicates_dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// The status document of a fanned-out export: the plan and each shard's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fanout {
    pub bucket: String,
    pub key: String,
    /// The version the event named: shards read it, whatever the key holds by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub etag: String,
    pub size: u64,
    pub batch_id: String,
    pub format: Format,
    /// Where the records start (after the CSV header line; 0 for JSON Lines).
    pub header_end: u64,
    /// Shard `n` is bytes `bounds[n]..bounds[n + 1]`.
    pub bounds: Vec<u64>,
    pub state: State,
    pub started_s: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_s: Option<i64>,
    #[serde(default)]
    pub checked: BTreeMap<u32, Checked>,
    #[serde(default)]
    pub rated: BTreeMap<u32, Rated>,
    /// The rejection report's key, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
}

impl Fanout {
    pub fn shards(&self) -> u32 {
        (self.bounds.len() - 1) as u32
    }

    fn loc(&self) -> ObjectLoc {
        ObjectLoc {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version_id: self.version_id.clone(),
        }
    }

    fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            size: self.size,
            etag: self.etag.clone(),
            version_id: None,
            checksum: None,
        }
    }

    /// Whether every shard passed its check: the rate round may run. (Its messages are sent
    /// before the state says `rating`, so a shard may be rated while it still says
    /// `checking`.)
    pub fn passed(&self) -> bool {
        self.checked.len() == self.shards() as usize
            && self.checked.values().all(|c| c.error.is_none())
    }

    /// The status route's view: state, shards by round, records rated so far.
    pub fn summary(&self) -> Value {
        let rated_ok = self.rated.values().filter(|r| r.error.is_none());
        json!({
            "status": self.state.name(),
            "shards": {
                "total": self.shards(),
                "checked": self.checked.len(),
                "refused": self.checked.values().filter(|c| c.error.is_some()).count()
                    + self.rated.values().filter(|r| r.error.is_some()).count(),
                "rated": self.rated.values().filter(|r| r.error.is_none()).count(),
            },
            "records": rated_ok.clone().map(|r| r.records).sum::<u64>(),
            "duplicates_dropped": rated_ok.map(|r| r.duplicates_dropped).sum::<u64>(),
            "started_at": rfc3339(self.started_s),
            "finished_at": self.finished_s.map(rfc3339),
        })
    }
}

fn rfc3339(s: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(s, 0).map(|t| t.to_rfc3339())
}

/// The body of a shard message (an SQS message of the shard queue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardMessage {
    pub batch_id: String,
    pub shard: u32,
    pub step: Step,
    /// For logs and the dead-letter queue: which export.
    pub bucket: String,
    pub key: String,
}

/// The batch id shard `n` of an export is rated under.
pub fn shard_batch_id(batch_id: &str, n: u32) -> String {
    format!("{batch_id}-{n:04}")
}

async fn get<O: Objects>(
    objects: &O,
    loc: &ObjectLoc,
    meta: &ObjectMeta,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, RaterError> {
    objects
        .get_range(loc.clone(), meta.etag.clone(), start, end)
        .await
        .map_err(|p| export_error(loc, p))
}

/// The start of the first line that begins at or after `at`: right after the first line
/// break at `at - 1` or later (the end of the object when there is none).
async fn line_start<O: Objects>(
    objects: &O,
    loc: &ObjectLoc,
    meta: &ObjectMeta,
    at: u64,
) -> Result<u64, RaterError> {
    let mut pos = at.saturating_sub(1);
    while pos < meta.size {
        if pos - at.saturating_sub(1) >= LINE_BYTES_MAX {
            return Err(RaterError::BadRequest {
                field: "export",
                message: format!(
                    "no line break within {LINE_BYTES_MAX} bytes after byte {at}: a usage record is one line, and no line is that long"
                ),
            });
        }
        let end = (pos + SCAN_BYTES).min(meta.size);
        let bytes = get(objects, loc, meta, pos, end).await?;
        if let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            return Ok(pos + i as u64 + 1);
        }
        pos = end;
    }
    Ok(meta.size)
}

/// How an export is cut: its format, where the records start, and the shards' bounds; `None`
/// when it is rated whole (compressed, a document, or not larger than one shard).
pub async fn plan<O: Objects>(
    objects: &O,
    loc: &ObjectLoc,
    meta: &ObjectMeta,
    shard_bytes: u64,
) -> Result<Option<(Format, u64, Vec<u64>)>, RaterError> {
    let head = get(objects, loc, meta, 0, meta.size.min(SCAN_BYTES)).await?;
    if Compression::of(&head) != Compression::None {
        return Ok(None);
    }
    let prefix = &head[..head.len().min(crate::import::DETECT_PREFIX_BYTES)];
    let format = match crate::import::detect(prefix) {
        Ok(f @ (Format::Csv | Format::JsonLines)) => f,
        // A document, or bytes that are nothing: the whole-export path says what they are.
        _ => return Ok(None),
    };
    let header_end = match format {
        // The header is the first line that is not blank (the importer skips blank ones).
        Format::Csv => {
            let mut at = 0usize;
            loop {
                let Some(i) = head[at..].iter().position(|&b| b == b'\n') else {
                    return Ok(None);
                };
                let line = &head[at..at + i];
                // A byte-order mark in front of the file is not a line of its own.
                let line = match at {
                    0 => line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line),
                    _ => line,
                };
                at += i + 1;
                if !line.iter().all(u8::is_ascii_whitespace) {
                    break at as u64;
                }
            }
        }
        _ => 0,
    };
    let body = meta.size - header_end;
    let n = body.div_ceil(shard_bytes.max(1)).clamp(1, SHARDS_MAX);
    if n < 2 {
        return Ok(None);
    }
    let mut bounds = vec![header_end];
    for k in 1..n {
        let cut = header_end + (u128::from(body) * u128::from(k) / u128::from(n)) as u64;
        let start = line_start(objects, loc, meta, cut).await?;
        if start > *bounds.last().expect("one bound") && start < meta.size {
            bounds.push(start);
        }
    }
    bounds.push(meta.size);
    if bounds.len() < 3 {
        return Ok(None);
    }
    Ok(Some((format, header_end, bounds)))
}

fn status_corrupt(batch_id: &str, e: impl std::fmt::Display) -> RaterError {
    RaterError::Store(StoreError::Corrupt {
        pk: crate::model::fanout_pk(batch_id),
        sk: crate::model::FANOUT_SK.into(),
        message: e.to_string(),
    })
}

/// The export's status document and its version.
pub async fn load<S: Store>(
    store: &S,
    batch_id: &str,
) -> Result<Option<(u64, Fanout)>, RaterError> {
    match store.fanout(batch_id).await? {
        None => Ok(None),
        Some((v, body)) => serde_json::from_str(&body)
            .map(|d| Some((v, d)))
            .map_err(|e| status_corrupt(batch_id, e)),
    }
}

/// Applies `change` to the status document (read again and reapplied when a concurrent shard
/// moved it); answers the document as stored. `change` answers false when there is nothing to
/// change (a report already recorded): nothing is written then.
async fn update<S: Store>(
    store: &S,
    batch_id: &str,
    change: impl Fn(&mut Fanout) -> bool,
) -> Result<Fanout, RaterError> {
    for attempt in 1..=STATUS_ATTEMPTS {
        let Some((version, mut doc)) = load(store, batch_id).await? else {
            return Err(status_corrupt(batch_id, "the status document is gone"));
        };
        if !change(&mut doc) {
            return Ok(doc);
        }
        let body = serde_json::to_string(&doc).expect("documents serialize");
        if store.put_fanout(batch_id, Some(version), &body).await? {
            return Ok(doc);
        }
        tokio::time::sleep(crate::retry::backoff(attempt)).await;
    }
    Err(RaterError::Store(StoreError::Unavailable {
        message: format!(
            "export {batch_id}: {STATUS_ATTEMPTS} concurrent status updates in a row; the shard message is delivered again"
        ),
    }))
}

fn message(doc: &Fanout, shard: u32, step: Step) -> String {
    serde_json::to_string(&ShardMessage {
        batch_id: doc.batch_id.clone(),
        shard,
        step,
        bucket: doc.bucket.clone(),
        key: doc.key.clone(),
    })
    .expect("messages serialize")
}

/// Sends the messages the export's state still waits for: the check of every shard not
/// checked, or the rating of every shard not rated.
async fn send_pending<O: Objects>(objects: &O, doc: &Fanout) -> Result<usize, RaterError> {
    let (step, done): (Step, Vec<u32>) = match doc.state {
        State::Checking => (Step::Check, doc.checked.keys().copied().collect()),
        State::Rating => (Step::Rate, doc.rated.keys().copied().collect()),
        _ => return Ok(0),
    };
    let messages: Vec<String> = (0..doc.shards())
        .filter(|n| !done.contains(n))
        .map(|n| message(doc, n, step))
        .collect();
    let sent = messages.len();
    if sent > 0 {
        objects
            .enqueue(messages)
            .await
            .map_err(|p| export_error(&doc.loc(), p))?;
    }
    Ok(sent)
}

/// The trigger's side: an export larger than the deployment's shard size is planned, its
/// status document written and its shards' check messages sent; answers `None` when the
/// export is rated whole by this invocation (no queue, small, not cuttable, rated before).
/// A second delivery of the same event finds the document and sends what is still missing.
pub async fn start<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    loc: &ObjectLoc,
) -> Result<Option<ExportOutcome>, RaterError> {
    let Some(shard_bytes) = objects.shard_bytes() else {
        return Ok(None);
    };
    let Some(meta) = objects.head(loc).await.map_err(|p| export_error(loc, p))? else {
        return Ok(None);
    };
    let batch_id = batch_id_of(loc, &meta);
    // Once cut, always cut (a redelivered event after the shard size changed must not rate
    // the object whole as well); once rated or being rated whole, never cut.
    let found = load(store, &batch_id).await?;
    let doc = match found {
        // Refused in its check round (nothing rated) for an earlier upload of these same
        // bytes (the batch id follows the content; the ETag differs with every SSE-KMS
        // upload). Its shards read that upload under `If-Match` of its ETag, so one replaced
        // by this upload was refused `export_changed`: planned again for this upload, which
        // rates it, or refuses bad records again.
        Some((_, doc)) if doc.state != State::Rejected || doc.etag == meta.etag => doc,
        _ => {
            let expected = found.as_ref().map(|(v, _)| *v);
            if expected.is_none()
                && (meta.size <= shard_bytes || store.ledger(&batch_id).await?.is_some())
            {
                return Ok(None);
            }
            let Some((format, header_end, bounds)) = plan(objects, loc, &meta, shard_bytes).await?
            else {
                return Ok(None);
            };
            let doc = Fanout {
                bucket: loc.bucket.clone(),
                key: loc.key.clone(),
                version_id: loc.version_id.clone(),
                etag: meta.etag.clone(),
                size: meta.size,
                batch_id: batch_id.clone(),
                format,
                header_end,
                bounds,
                state: State::Checking,
                started_s: config.now_s(),
                finished_s: None,
                checked: BTreeMap::new(),
                rated: BTreeMap::new(),
                report: None,
            };
            let body = serde_json::to_string(&doc).expect("documents serialize");
            if store.put_fanout(&batch_id, expected, &body).await? {
                doc
            } else {
                // The same event delivered twice at once: the other one's plan is the plan.
                load(store, &batch_id)
                    .await?
                    .ok_or_else(|| status_corrupt(&batch_id, "written and gone"))?
                    .1
            }
        }
    };
    send_pending(objects, &doc).await?;
    Ok(Some(ExportOutcome {
        bucket: loc.bucket.clone(),
        key: loc.key.clone(),
        status: "sharded",
        batch_id: Some(batch_id),
        records: None,
        code: None,
        report: None,
        shards: Some(doc.shards()),
    }))
}

/// Rates every export of an S3 event notification, one after the other: an export larger
/// than a shard is cut and handed to the shard queue ([`start`]), any other is rated here
/// (`exports::rate_and_report`). A refused export gets its rejection report and the event
/// goes on; an error that is not the export's (S3, SQS or the table unavailable or refusing
/// us) fails the invocation, so Lambda delivers the event again and finally dead-letters it
/// (exports already rated replay from their ledger, exports already cut from their status).
pub async fn handle_s3_event<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    event: S3Event,
) -> Result<Vec<ExportOutcome>, RaterError> {
    let mut outcomes = Vec::with_capacity(event.records.len());
    for r in event.records {
        if r.event_source != "aws:s3" || !r.event_name.starts_with("ObjectCreated") {
            continue;
        }
        let loc = ObjectLoc {
            bucket: r.s3.bucket.name,
            key: decode_event_key(&r.s3.object.key)?,
            version_id: r.s3.object.version_id,
        };
        if loc.key.starts_with(REJECTED_PREFIX) {
            continue;
        }
        let outcome = match start(store, config, objects, &loc).await {
            Ok(Some(sharded)) => sharded,
            Ok(None) => rate_and_report(store, config, objects, &loc).await?,
            // Refused while planning: nothing of it was rated.
            Err(e) if refuses(&e) => refused(config, objects, &loc, &e, false).await?,
            Err(e) => return Err(e),
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The status of an export key (`exports::status`), with its shards' progress when it was
/// cut: `checking`, `rating`, `rated`, `rejected` or `partly_rated`, shards by round, records.
pub async fn status<S: Store, O: Objects>(
    store: &S,
    objects: &O,
    loc: &ObjectLoc,
    now_s: i64,
) -> Result<Value, RaterError> {
    let mut v = crate::exports::status(store, objects, loc, now_s).await?;
    let batch_id = match v["batch_id"].as_str() {
        Some(b) if v["status"] != "rated" => b.to_string(),
        _ => return Ok(v),
    };
    if let Some((_, doc)) = load(store, &batch_id).await? {
        for (k, x) in doc.summary().as_object().expect("an object") {
            v[k] = x.clone();
        }
        // The report of this upload only (an earlier upload's may still be in the bucket).
        match &doc.report {
            Some(report) => v["report"] = json!(report),
            None => {
                if let Some(o) = v.as_object_mut() {
                    o.remove("report");
                }
            }
        }
    }
    Ok(v)
}

/// Counts line breaks in what passes through.
struct Lines<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let found = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        self.count.fetch_add(found, Ordering::Relaxed);
        Ok(n)
    }
}

/// One pass over shard `n`: the header line, then the shard's bytes, aggregated. With
/// `lines`, the shard is read to its end even when a record refuses it early, so that the
/// count of its lines is whole.
fn shard_pass<O: Objects>(
    objects: &O,
    config: &RaterConfig,
    doc: &Fanout,
    header: &[u8],
    n: u32,
    pass: &Pass<'_>,
    lines: Option<&Arc<AtomicU64>>,
) -> Result<Aggregated, RaterError> {
    let loc = doc.loc();
    let slot = ProblemSlot::default();
    let range = doc.bounds[n as usize]..doc.bounds[n as usize + 1];
    let reader = ObjectReader::range(
        objects.clone(),
        loc.clone(),
        doc.meta(),
        range,
        slot.clone(),
    );
    let mut body = Lines {
        inner: reader,
        count: lines.cloned().unwrap_or_default(),
    };
    let result = tokio::task::block_in_place(|| {
        let r = aggregate_pass(
            config,
            Some(doc.format),
            Cursor::new(header).chain(&mut body),
            window_of_key(&doc.key),
            None,
            pass,
        );
        if r.is_err() && lines.is_some() {
            let _ = std::io::copy(&mut body, &mut std::io::sink());
        }
        r
    });
    problem_wins(&loc, &slot, result)
}

/// Whether an error is the export's (recorded as the shard's refusal) rather than ours or
/// the moment's (the invocation fails and the queue delivers the message again).
fn refuses(e: &RaterError) -> bool {
    !(e.retryable() || e.http_status() >= 500)
}

/// A shard's error as the status document keeps it: bounded, whatever the export, so that
/// the document stays far below DynamoDB's 400 KB item with every shard refused. The first
/// [`SHARD_ERRORS_KEPT`] bad records of the first [`SHARDS_WITH_RECORDS_MAX`] refused shards
/// are kept (the structured fields, line numbers moved to the export's when reported); every
/// refusal keeps its code, its total and a message of at most [`SHARD_MESSAGE_CHARS_MAX`]
/// characters (the batch message's record list counts lines from the shard's start, so the
/// records are the reference, not the text).
fn kept(e: &RaterError, with_records: bool, n: u32) -> Value {
    let mut body = e.to_json()["error"].take();
    match body.get_mut("records").and_then(Value::as_array_mut) {
        Some(records) if with_records => records.truncate(SHARD_ERRORS_KEPT),
        Some(records) => records.clear(),
        None => {}
    }
    let message = match &body["total"] {
        Value::Number(t) => format!("shard {n}: {t} bad record(s)"),
        _ => {
            let text = body["message"].as_str().unwrap_or("").to_string();
            let first = text.lines().next().unwrap_or("");
            let cut: String = first.chars().take(SHARD_MESSAGE_CHARS_MAX).collect();
            format!("shard {n}: {cut}")
        }
    };
    body["message"] = json!(message);
    body
}

/// Whether the status document still keeps bad records for one more refused shard.
fn room_for_records(doc: &Fanout) -> bool {
    let refused = doc.checked.values().filter(|c| c.error.is_some()).count()
        + doc.rated.values().filter(|r| r.error.is_some()).count();
    refused < SHARDS_WITH_RECORDS_MAX
}

/// Handles one shard message: checks or rates the shard, records its report, and moves the
/// export to the next round when it was the last. Answers the shard's report.
pub async fn handle<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    msg: &ShardMessage,
) -> Result<Value, RaterError> {
    let Some((_, doc)) = load(store, &msg.batch_id).await? else {
        return Err(RaterError::BadRequest {
            field: "batch_id",
            message: format!(
                "shard {} of {}: no export {} was fanned out",
                msg.shard, msg.key, msg.batch_id
            ),
        });
    };
    if msg.shard >= doc.shards() {
        return Err(RaterError::BadRequest {
            field: "shard",
            message: format!(
                "{} has {} shards, not {}",
                doc.key,
                doc.shards(),
                msg.shard + 1
            ),
        });
    }
    let n = msg.shard;
    let sub_id = shard_batch_id(&doc.batch_id, n);
    let doc = match msg.step {
        Step::Check => {
            if doc.checked.contains_key(&n) {
                doc
            } else {
                let lines = Arc::new(AtomicU64::new(0));
                let checked = check(store, config, objects, &doc, n, &sub_id, &lines).await;
                let checked = match checked {
                    Ok(records) => Checked {
                        lines: lines.load(Ordering::Relaxed),
                        records,
                        error: None,
                    },
                    Err(e) if refuses(&e) => Checked {
                        lines: lines.load(Ordering::Relaxed),
                        records: 0,
                        error: Some(kept(&e, room_for_records(&doc), n)),
                    },
                    Err(e) => return Err(e),
                };
                update(store, &doc.batch_id, |d| {
                    d.checked.insert(n, checked.clone()).is_none()
                })
                .await?
            }
        }
        Step::Rate => {
            if doc.rated.contains_key(&n) {
                doc
            } else if !doc.passed() {
                // Never sent by the protocol (a rate round starts only once every shard
                // passed); a hand-made or stale message. Refused, not retried.
                return Err(RaterError::BadRequest {
                    field: "step",
                    message: format!(
                        "{} is {}: its shards are not rated",
                        doc.key,
                        doc.state.name()
                    ),
                });
            } else {
                let rated = match rate(store, config, objects, &doc, n, &sub_id).await {
                    Ok(r) => r,
                    Err(e) if refuses(&e) => {
                        let mut error = kept(&e, room_for_records(&doc), n);
                        renumber(&mut error, lines_before(&doc, n), n);
                        Rated {
                            batch_id: sub_id.clone(),
                            records: 0,
                            duplicates_dropped: 0,
                            error: Some(error),
                        }
                    }
                    Err(e) => return Err(e),
                };
                update(store, &doc.batch_id, |d| {
                    d.rated.insert(n, rated.clone()).is_none()
                })
                .await?
            }
        }
    };
    let doc = advance(store, config, objects, doc).await?;
    let mut answer = json!({
        "batch_id": sub_id,
        "shard": n,
        "step": msg.step,
        "export": doc.key,
    });
    answer["status"] = doc.summary()["status"].clone();
    Ok(answer)
}

/// The CSV header line every shard is read after (nothing for JSON Lines). Read inside the
/// round's work, so that a replaced or deleted object is the shard's refusal, recorded, not
/// a message dropped.
async fn header_of<O: Objects>(objects: &O, doc: &Fanout) -> Result<Vec<u8>, RaterError> {
    match doc.header_end {
        0 => Ok(Vec::new()),
        end => get(objects, &doc.loc(), &doc.meta(), 0, end).await,
    }
}

/// The check round for one shard: everything that can refuse it, nothing written. Answers
/// its records.
async fn check<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    doc: &Fanout,
    n: u32,
    sub_id: &str,
    lines: &Arc<AtomicU64>,
) -> Result<u64, RaterError> {
    let header = &header_of(objects, doc).await?;
    let batch = shard_pass(
        objects,
        config,
        doc,
        header,
        n,
        &Pass::default(),
        Some(lines),
    )?;
    let reread = |pass: &Pass<'_>| shard_pass(objects, config, doc, header, n, pass, None);
    check_before_writing(store, config, &batch, sub_id, Mode::Interim, &reread).await?;
    Ok(batch.records)
}

/// The rate round for one shard: rated as batch `sub_id`, exactly once.
async fn rate<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    doc: &Fanout,
    n: u32,
    sub_id: &str,
) -> Result<Rated, RaterError> {
    let resp = match store.ledger(sub_id).await? {
        Some(Ledger::Done(summary)) => {
            return Ok(Rated {
                batch_id: sub_id.to_string(),
                records: summary.records,
                duplicates_dropped: summary.duplicates_dropped,
                error: None,
            })
        }
        _ => {
            let header = &header_of(objects, doc).await?;
            let batch = shard_pass(objects, config, doc, header, n, &Pass::default(), None)?;
            let reread = |pass: &Pass<'_>| shard_pass(objects, config, doc, header, n, pass, None);
            rate_aggregated(
                store,
                config,
                batch,
                Some(sub_id.to_string()),
                Mode::Interim,
                None,
                &reread,
            )
            .await?
        }
    };
    Ok(Rated {
        batch_id: resp.batch_id,
        records: resp.records,
        duplicates_dropped: resp.duplicates_dropped,
        error: None,
    })
}

/// Moves the export on when its round is complete: after the checks, to the rejection
/// report or the rate round; after the ratings, to `rated`. The next round's messages (or the
/// report) go out before the move is recorded (see the module docs).
async fn advance<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    mut doc: Fanout,
) -> Result<Fanout, RaterError> {
    // A shard's report can complete two rounds at once (the last rating recorded while the
    // state still said `checking`): moved on until nothing is left to move.
    loop {
        let state = doc.state;
        doc = advance_once(store, config, objects, doc).await?;
        if doc.state == state {
            return Ok(doc);
        }
    }
}

/// One move of [`advance`].
async fn advance_once<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    doc: Fanout,
) -> Result<Fanout, RaterError> {
    let all = doc.shards() as usize;
    match doc.state {
        State::Checking if doc.checked.len() == all => {
            let next = if doc.passed() {
                let mut rating = doc.clone();
                rating.state = State::Rating;
                send_pending(objects, &rating).await?;
                State::Rating
            } else {
                put_report(objects, &doc, config.now_s(), false).await?;
                State::Rejected
            };
            move_to(store, &doc, State::Checking, next, config.now_s()).await
        }
        State::Rating if doc.rated.len() == all => {
            let next = if doc.rated.values().any(|r| r.error.is_some()) {
                put_report(objects, &doc, config.now_s(), true).await?;
                State::PartlyRated
            } else {
                State::Rated
            };
            move_to(store, &doc, State::Rating, next, config.now_s()).await
        }
        _ => Ok(doc),
    }
}

/// Writes the export's rejection report ([`rejection_report`]) beside it.
async fn put_report<O: Objects>(
    objects: &O,
    doc: &Fanout,
    now_s: i64,
    rated: bool,
) -> Result<(), RaterError> {
    let report = ObjectLoc {
        bucket: doc.bucket.clone(),
        key: report_key(&doc.key),
        version_id: None,
    };
    objects
        .put(
            &report,
            rejection_report(doc, now_s, rated),
            "application/json",
        )
        .await
        .map_err(|p| export_error(&report, p))
}

/// Records the export's move from `from` to `next` (nothing when another invocation made
/// it first): when it finished, and the report of a refusal.
async fn move_to<S: Store>(
    store: &S,
    doc: &Fanout,
    from: State,
    next: State,
    now_s: i64,
) -> Result<Fanout, RaterError> {
    update(store, &doc.batch_id, |d| {
        if d.state != from {
            return false;
        }
        d.state = next;
        if next != State::Rating {
            d.finished_s = Some(now_s);
        }
        if matches!(next, State::Rejected | State::PartlyRated) {
            d.report = Some(report_key(&d.key));
        }
        true
    })
    .await
}

/// Moves the bad records of shard `n`'s error body from the shard's line numbers to the
/// export's (`before`: the line breaks of the shards before it) and names the shard.
fn renumber(error: &mut Value, before: u64, n: u32) {
    for r in error
        .get_mut("records")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(i) = r["index"].as_u64() {
            r["index"] = json!(before + i);
        }
        r["shard"] = json!(n);
    }
}

/// The line breaks of the shards before shard `n` (all checked by the rate round).
fn lines_before(doc: &Fanout, n: u32) -> u64 {
    doc.checked.range(..n).map(|(_, c)| c.lines).sum()
}

/// The rejection report of a fanned-out export: like a whole export's
/// (`exports::rejection_report`), with each refused shard's error and its bad records
/// numbered by their line in the export (each shard's line numbers moved past the lines of
/// the shards before it). `rated`: the refusals of the rate round (the other shards are
/// billed: `nothing_rated` is false), else those of the check round.
pub fn rejection_report(doc: &Fanout, now_s: i64, rated: bool) -> Vec<u8> {
    let mut records = Vec::new();
    let mut total = 0u64;
    let mut shard_errors = Vec::new();
    let mut codes = Vec::new();
    for n in 0..doc.shards() {
        let error = match rated {
            // Renumbered when recorded (every shard's lines were known by then).
            true => doc.rated.get(&n).and_then(|r| r.error.clone()),
            false => doc
                .checked
                .get(&n)
                .and_then(|c| c.error.clone())
                .map(|mut e| {
                    renumber(&mut e, lines_before(doc, n), n);
                    e
                }),
        };
        let Some(e) = error else { continue };
        let code = e["code"].as_str().unwrap_or("").to_string();
        if !codes.contains(&code) {
            codes.push(code);
        }
        total += e["total"].as_u64().unwrap_or(0);
        records.extend(e["records"].as_array().into_iter().flatten().cloned());
        shard_errors.push(json!({
            "shard": n,
            "bytes": [doc.bounds[n as usize], doc.bounds[n as usize + 1]],
            "error": e,
        }));
    }
    let code = if codes.len() == 1 {
        codes[0].clone()
    } else {
        "shards_refused".into()
    };
    let outcome = match rated {
        true => "the other shards are billed",
        false => "nothing of the export was rated",
    };
    let mut error = json!({
        "code": code,
        "message": format!("{} of {} shards refused; {outcome}", shard_errors.len(), doc.shards()),
        "retryable": false,
    });
    if total > 0 {
        error["total"] = json!(total);
        error["records"] = Value::Array(records);
    }
    let v = json!({
        "bucket": doc.bucket,
        "key": doc.key,
        "rejected_at": rfc3339(now_s),
        "nothing_rated": !rated,
        "shards": doc.shards(),
        "error": error,
        "shard_errors": shard_errors,
    });
    let mut text = serde_json::to_vec_pretty(&v).expect("reports serialize");
    text.push(b'\n');
    text
}

/// Whether a Lambda payload is an SQS event (the shard queue's).
pub fn is_sqs_event(payload: &Value) -> bool {
    payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

/// Handles an SQS event, one message after the other. A message that fails (ours, or the
/// moment's: retryable) is answered in `batchItemFailures`, so SQS delivers it again (and
/// after the queue's receive count, moves it to the dead-letter queue) while the others are
/// deleted (the event source mapping's `ReportBatchItemFailures`). A message that is not a
/// shard message can never succeed: it is logged and dropped, not retried forever.
pub async fn handle_sqs_event<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    payload: &Value,
) -> (Vec<Value>, Vec<String>) {
    let mut answers = Vec::new();
    let mut failures = Vec::new();
    for r in payload["Records"].as_array().into_iter().flatten() {
        let id = r["messageId"].as_str().unwrap_or("").to_string();
        let msg: ShardMessage = match r["body"].as_str().map(serde_json::from_str) {
            Some(Ok(m)) => m,
            _ => {
                answers.push(json!({"message_id": id, "status": "dropped",
                    "error": "not a shard message: expected {batch_id, shard, step, bucket, key}"}));
                continue;
            }
        };
        match handle(store, config, objects, &msg).await {
            Ok(a) => answers.push(a),
            Err(e) => {
                answers.push(
                    json!({"message_id": id, "shard": msg.shard, "export": msg.key,
                    "error": e.to_json()["error"]}),
                );
                if e.retryable() || e.http_status() >= 500 {
                    failures.push(id);
                }
            }
        }
    }
    (answers, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(lines: &[(u64, Option<Value>)]) -> Fanout {
        Fanout {
            bucket: "b".into(),
            key: "exports/x.csv".into(),
            version_id: None,
            etag: "\"e\"".into(),
            size: 300,
            batch_id: "s3-x".into(),
            format: Format::Csv,
            header_end: 10,
            bounds: (0..=lines.len() as u64).map(|i| 10 + i * 10).collect(),
            state: State::Checking,
            started_s: 0,
            finished_s: None,
            checked: lines
                .iter()
                .enumerate()
                .map(|(i, (l, e))| {
                    (
                        i as u32,
                        Checked {
                            lines: *l,
                            records: *l,
                            error: e.clone(),
                        },
                    )
                })
                .collect(),
            rated: BTreeMap::new(),
            report: None,
        }
    }

    #[test]
    fn a_report_numbers_bad_records_by_their_line_in_the_export() {
        let bad = |index: u64| {
            Some(json!({"code": "bad_records", "total": 1,
                "records": [{"index": index, "field": "quantity", "value": "-5"}]}))
        };
        // Shard 0 holds lines 2..=101 (100 lines after the header), shard 1 the next 50.
        // Shard 1's first line is the export's line 102; read after the header, the importer
        // calls it line 2. Shard 2's second line is line 1 + 100 + 50 + 2 = 153; the importer
        // calls it line 3.
        let d = doc(&[(100, None), (50, bad(2)), (70, bad(3))]);
        let v: Value = serde_json::from_slice(&rejection_report(&d, 0, false)).unwrap();
        assert_eq!(v["error"]["code"], "bad_records");
        assert_eq!(v["error"]["total"], 2);
        let idx: Vec<u64> = v["error"]["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect();
        assert_eq!(idx, vec![102, 153]);
        assert_eq!(v["shard_errors"].as_array().unwrap().len(), 2);
        assert_eq!(v["nothing_rated"], true);
    }

    #[test]
    fn shard_batch_ids_are_valid_batch_ids() {
        let id = shard_batch_id(&format!("s3-{}", "a".repeat(40)), 7);
        assert!(id.ends_with("-0007"));
        crate::batch::check_batch_id(&id).unwrap();
    }

    #[test]
    fn shard_messages_and_sqs_events_are_recognized() {
        let m = ShardMessage {
            batch_id: "s3-x".into(),
            shard: 2,
            step: Step::Rate,
            bucket: "b".into(),
            key: "k".into(),
        };
        let body = serde_json::to_string(&m).unwrap();
        assert!(body.contains("\"step\":\"rate\""));
        let ev = json!({"Records": [{"messageId": "1", "eventSource": "aws:sqs", "body": body}]});
        assert!(is_sqs_event(&ev));
        assert!(!crate::exports::is_s3_event(&ev));
    }
}
