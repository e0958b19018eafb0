//! Nightly exports dropped in S3: an object rated exactly once (its batch id is derived from the object), streamed in ranges through the protocol's steps, and a rejection report written next to a refused one.
//!
//! The trigger is the bucket's `ObjectCreated` notification (an S3 event, which Lambda
//! delivers at least once and retries on error). The batch id is a hash of the bucket, the
//! key and the object's whole-content checksum (else its ETag, see [`batch_id_of`]): the same
//! notification delivered twice, or the same bytes uploaded again under the same key, find the
//! batch's ledger `DONE` and are answered without reading the object. (The ETag alone would
//! not do: an SSE-KMS object's ETag is not the MD5 of its bytes, and differs on every upload;
//! records without ids would be billed again.)
//!
//! A refused export (bad records, unreadable bytes) gets `rejected/<key>.errors.json` beside
//! it: each bad record with its position, field, value and rule, so an operator sees why
//! without reading logs; [`status`] answers for any key from the ledger and that report.

use serde::Serialize;
use serde_json::{json, Value};

use crate::aggregate::{aggregate_pass, Aggregated, Pass};
use crate::batch::{rate_aggregated, RateResponse};
use crate::config::RaterConfig;
use crate::error::{ExportProblem, RaterError};
use crate::import::Format;
use crate::model::{Ledger, Mode};
use crate::objects::{decompressed, ObjectLoc, ObjectMeta, ObjectReader, Objects, ProblemSlot};
use crate::store::Store;

/// Where rejection reports go, in the export's own bucket (outside the trigger's prefix, so a
/// report never triggers a rating).
pub const REJECTED_PREFIX: &str = "rejected/";

/// The batch id of an object: `s3-` and 40 hex digits of SHA-256 over bucket, key and the
/// object's whole-content checksum when S3 has one ([`ObjectMeta::checksum`]: the same bytes
/// uploaded again, in one PUT or in parts, encrypted with KMS or not, are the same batch),
/// else its ETag.
pub fn batch_id_of(loc: &ObjectLoc, meta: &ObjectMeta) -> String {
    let identity = match &meta.checksum {
        Some(c) => format!("checksum {c}"),
        None => meta.etag.trim_matches('"').to_string(),
    };
    let text = format!("{}\n{}\n{identity}", loc.bucket, loc.key);
    let hex = crate::aggregate::sha256_hex(text.as_bytes());
    format!("s3-{}", &hex[..40])
}

/// The key of an export's rejection report.
pub fn report_key(key: &str) -> String {
    format!("{REJECTED_PREFIX}{key}.errors.json")
}

/// Where an export's rejection report is: beside it, in the same bucket.
fn report_loc(export: &ObjectLoc) -> ObjectLoc {
    ObjectLoc {
        bucket: export.bucket.clone(),
        key: report_key(&export.key),
        version_id: None,
    }
}

pub(crate) fn export_error(loc: &ObjectLoc, problem: ExportProblem) -> RaterError {
    RaterError::Export {
        object: loc.to_string(),
        problem,
    }
}

/// What a caller may set on an object's batch (the S3 trigger sets only the window its key
/// names, [`window_of_key`]: detected format, every account, interim). The batch id is always the object's.
#[derive(Debug, Clone, Default)]
pub struct ObjectBatch {
    pub format: Option<Format>,
    pub period: Option<pricing::BillingPeriod>,
    pub account: Option<String>,
    pub mode: Mode,
}

/// An object as one HEAD saw it: every pass reads exactly these bytes (`If-Match` its ETag).
struct Seen<'a, O> {
    objects: &'a O,
    loc: &'a ObjectLoc,
    meta: &'a ObjectMeta,
}

/// One pass over the object: a fresh ranged stream, decompressed, aggregated. A problem the
/// reader met (a GET throttled, the object replaced, a cut gzip stream) wins over the
/// importer's view of it ("reading failed"), so the answer says what happened and whether a
/// retry can help.
fn pass_over<O: Objects>(
    seen: &Seen<'_, O>,
    config: &RaterConfig,
    format: Option<Format>,
    window: Option<pricing::BillingPeriod>,
    account: Option<&str>,
    pass: &Pass<'_>,
) -> Result<Aggregated, RaterError> {
    let (objects, loc, meta) = (seen.objects, seen.loc, seen.meta);
    let slot = ProblemSlot::default();
    let reader = ObjectReader::new(objects.clone(), loc.clone(), meta.clone(), slot.clone());
    let result = tokio::task::block_in_place(|| {
        let (input, _) = decompressed(reader, slot.clone()).map_err(|p| export_error(loc, p))?;
        aggregate_pass(config, format, input, window, account, pass)
    });
    problem_wins(loc, &slot, result)
}

/// A pass's result, where a problem the object reader met (kept in `slot`) replaces the
/// importer's view of the failure it caused.
pub(crate) fn problem_wins<T>(
    loc: &ObjectLoc,
    slot: &ProblemSlot,
    result: Result<T, RaterError>,
) -> Result<T, RaterError> {
    let problem = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (result, problem) {
        (Err(_), Some(p)) => Err(export_error(loc, p)),
        (r, _) => r,
    }
}

/// Rates one export object exactly once (the trigger's batches are interim: the close
/// finalizes).
pub async fn rate_object<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    loc: &ObjectLoc,
    how: &ObjectBatch,
) -> Result<RateResponse, RaterError> {
    let account = how.account.as_deref();
    let meta = objects
        .head(loc)
        .await
        .map_err(|p| export_error(loc, p))?
        .ok_or_else(|| export_error(loc, ExportProblem::Missing))?;
    let batch_id = batch_id_of(loc, &meta);
    // Delivered before: answered from the ledger, the object not read again.
    if let Some(Ledger::Done(summary)) = store.ledger(&batch_id).await? {
        let sha = summary.content_sha256.clone();
        return crate::invoices::replay(store, config, summary, &sha, account).await;
    }
    // Cut in shards by the trigger (`crate::shards`): its shards are its batches. Rated whole
    // as well (the CLI on the same object, say), its records without ids would bill twice.
    if store.fanout(&batch_id).await?.is_some() {
        return Err(RaterError::BadRequest {
            field: "export",
            message: format!(
                "{loc} was cut in shards by the exports trigger and is rated by them (its status: GET /exports?key=...); rating it whole as well would bill its records without ids twice"
            ),
        });
    }
    let seen = Seen {
        objects,
        loc,
        meta: &meta,
    };
    let carried = crate::import::carried_readings(store, how.format).await?;
    let carried = carried.as_ref();
    let first = Pass {
        carried,
        ..Pass::default()
    };
    let batch = pass_over(&seen, config, how.format, how.period, account, &first)?;
    let (format, window) = (Some(batch.format), batch.window);
    let reread = |pass: &Pass<'_>| {
        let pass = Pass { carried, ..*pass };
        pass_over(&seen, config, format, window, account, &pass)
    };
    rate_aggregated(
        store,
        config,
        batch,
        Some(batch_id),
        how.mode,
        account,
        &reread,
    )
    .await
}

/// The S3 event notification's parts the rater reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records")]
    pub records: Vec<S3EventRecord>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct S3EventRecord {
    #[serde(rename = "eventSource", default)]
    pub event_source: String,
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct S3Object {
    /// URL-encoded, as S3 sends it (a space is `+`).
    pub key: String,
    /// The version created, in a versioned bucket (the template's exports bucket is one).
    #[serde(rename = "versionId", default)]
    pub version_id: Option<String>,
}

/// Whether a Lambda payload is an S3 event notification.
pub fn is_s3_event(payload: &Value) -> bool {
    payload
        .pointer("/Records/0/eventSource")
        .and_then(Value::as_str)
        == Some("aws:s3")
}

/// A key as S3 event notifications encode it (form encoding: `+` for a space, `%XX`), decoded.
pub fn decode_event_key(key: &str) -> Result<String, RaterError> {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(b) = hex else {
                    return Err(RaterError::BadRequest {
                        field: "Records[].s3.object.key",
                        message: format!("`{key}` has a bad %-escape at byte {i}"),
                    });
                };
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| RaterError::BadRequest {
        field: "Records[].s3.object.key",
        message: format!("`{key}` does not decode to UTF-8"),
    })
}

/// What happened to one export of an event.
#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    pub bucket: String,
    pub key: String,
    /// `rated`, `replayed` (rated before), `rejected`, or `partly_rated` (refused after some
    /// of its accounts were committed).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// The rejection report's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// `sharded`: the shards the export was cut into (`crate::shards`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// The window an export's key names: a period id at the start of its file name
/// (`exports/ceilometer/2026-11-30.json.gz` is 30 November, `2026-11 night.csv` November,
/// `2026-W48.jsonl` ISO week 48), or none. Its records must lie in it, and Ceilometer's gauge
/// time is cut to it, so that nightly exports overlapping by one sample bill each hour once.
pub fn window_of_key(key: &str) -> Option<pricing::BillingPeriod> {
    let name = key.rsplit('/').next().unwrap_or(key);
    // Longest first: `2026-11-30` also starts with the month `2026-11`.
    [10, 8, 7].into_iter().find_map(|n| {
        let id = name.get(..n)?;
        let rest = &name[n..];
        if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        pricing::BillingPeriod::parse(id).ok()
    })
}

/// Rates one export; a refusal of the export (a 4xx) is written as its rejection report and
/// answered as an outcome; a failure of ours (retryable, or a 5xx) is returned as the error.
pub async fn rate_and_report<S: Store, O: Objects>(
    store: &S,
    config: &RaterConfig,
    objects: &O,
    loc: &ObjectLoc,
) -> Result<ExportOutcome, RaterError> {
    let outcome = |status, batch_id, records, code, report| ExportOutcome {
        bucket: loc.bucket.clone(),
        key: loc.key.clone(),
        status,
        batch_id,
        records,
        code,
        report,
        shards: None,
    };
    let how = ObjectBatch {
        period: window_of_key(&loc.key),
        ..ObjectBatch::default()
    };
    match rate_object(store, config, objects, loc, &how).await {
        Ok(resp) => Ok(outcome(
            if resp.replayed { "replayed" } else { "rated" },
            Some(resp.batch_id),
            Some(resp.records),
            None,
            None,
        )),
        // Ours to fix, not the export's (the store or S3 refusing us, a bug): the invocation
        // fails, so Lambda retries it and then dead-letters it (the errors alarm), and once
        // the deployment is fixed the event is redriven. Only the export's own faults (4xx:
        // bad records, unreadable bytes, a missing object, late usage) get a report.
        Err(e) if e.retryable() || e.http_status() >= 500 => Err(e),
        Err(e) => {
            let partly = partly_rated(store, objects, loc).await?;
            let mut outcome = refused(config, objects, loc, &e, partly).await?;
            if partly {
                outcome.status = "partly_rated";
            }
            Ok(outcome)
        }
    }
}

/// Whether some of the export's partitions were committed before its refusal (a batch over
/// more accounts than one transaction commits, refused between two of them or by a redelivery
/// after a crash between them: a period closed meanwhile, an account removed): those accounts'
/// usage is billed. The first commit binds the ledger ([`Ledger::partly_committed`]).
async fn partly_rated<S: Store, O: Objects>(
    store: &S,
    objects: &O,
    loc: &ObjectLoc,
) -> Result<bool, RaterError> {
    let Some(meta) = objects.head(loc).await.map_err(|p| export_error(loc, p))? else {
        return Ok(false);
    };
    let ledger = store.ledger(&batch_id_of(loc, &meta)).await?;
    Ok(ledger.is_some_and(|l| l.partly_committed()))
}

/// An export refused for its own fault (a 4xx): its rejection report written beside it, and
/// the outcome that names it. `partly`: some of its accounts were committed before the
/// refusal (see [`rejection_report`]).
pub async fn refused<O: Objects>(
    config: &RaterConfig,
    objects: &O,
    loc: &ObjectLoc,
    e: &RaterError,
    partly: bool,
) -> Result<ExportOutcome, RaterError> {
    let report = report_loc(loc);
    let body = rejection_report(loc, e, config.now_s(), partly);
    objects
        .put(&report, body, "application/json")
        .await
        .map_err(|p| export_error(&report, p))?;
    Ok(ExportOutcome {
        bucket: loc.bucket.clone(),
        key: loc.key.clone(),
        status: "rejected",
        batch_id: None,
        records: None,
        code: Some(e.code()),
        report: Some(report.key),
        shards: None,
    })
}

/// The rejection report: the export, when it was refused, and the error body (every bad record
/// up to the display cap, with the total). `partly`: the refusal came after some of the
/// export's accounts were committed (they are billed, `nothing_rated` is false), and the report
/// says how to finish it without billing them twice.
pub fn rejection_report(loc: &ObjectLoc, e: &RaterError, now_s: i64, partly: bool) -> Vec<u8> {
    let mut v = json!({
        "bucket": loc.bucket,
        "key": loc.key,
        "rejected_at": chrono::DateTime::from_timestamp(now_s, 0).map(|t| t.to_rfc3339()),
        "nothing_rated": !partly,
    });
    if partly {
        v["partly_rated"] = json!(
            "some accounts of this export were committed before the refusal and are billed (the error says how many, and what to do with the rest). Do not upload a corrected copy: it would be another batch, and its records without record_id in those accounts would be billed twice. Deliver this object again unchanged (it rates only what is left, once the cause allows), or bill the rest with a debit note."
        );
    }
    v["error"] = e.to_json()["error"].take();
    let mut text = serde_json::to_vec_pretty(&v).expect("reports serialize");
    text.push(b'\n');
    text
}

/// The status of an export key at `now_s`: `missing` (no object), `rated` (with its batch
/// summary), `in_progress` (a live lease), `partly_rated` (some accounts committed, the rest
/// not, and no attempt at it now: with its report when it was refused; without one, it failed
/// on our side and Lambda retries it), `rejected` (with its report), or `pending` (not rated
/// yet). (An export cut in shards: `crate::shards::status`.)
pub async fn status<S: Store, O: Objects>(
    store: &S,
    objects: &O,
    loc: &ObjectLoc,
    now_s: i64,
) -> Result<Value, RaterError> {
    let Some(meta) = objects.head(loc).await.map_err(|p| export_error(loc, p))? else {
        return Ok(json!({ "bucket": loc.bucket, "key": loc.key, "status": "missing" }));
    };
    let batch_id = batch_id_of(loc, &meta);
    let mut v = json!({
        "bucket": loc.bucket,
        "key": loc.key,
        "etag": meta.etag,
        "bytes": meta.size,
        "batch_id": batch_id,
    });
    match store.ledger(&batch_id).await? {
        Some(Ledger::Done(summary)) => {
            v["status"] = json!("rated");
            v["records"] = json!(summary.records);
            v["duplicates_dropped"] = json!(summary.duplicates_dropped);
            v["accounts"] = json!(summary.accounts_total.max(summary.accounts.len() as u64));
            v["period"] = json!(summary.period);
        }
        Some(Ledger::InProgress { expires_at, .. }) if expires_at > now_s => {
            v["status"] = json!("in_progress")
        }
        // Partly committed, or not at all (an unbound lease that lapsed committed nothing).
        ledger => {
            let partly = ledger.is_some_and(|l| l.partly_committed());
            let report = report_loc(loc);
            let found = objects
                .head(&report)
                .await
                .map_err(|p| export_error(&report, p))?
                .is_some();
            v["status"] = json!(match (partly, found) {
                (true, _) => "partly_rated",
                (false, true) => "rejected",
                (false, false) => "pending",
            });
            if found {
                v["report"] = json!(report.key);
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_like_s3_encodes_them() {
        assert_eq!(
            decode_event_key("exports/cloudstack/night+of+2026-11-30%281%29.json").unwrap(),
            "exports/cloudstack/night of 2026-11-30(1).json"
        );
        assert_eq!(decode_event_key("a%2Bb").unwrap(), "a+b");
        assert!(decode_event_key("bad%zz").is_err());
        assert!(decode_event_key("cut%2").is_err());
    }

    #[test]
    fn a_key_names_its_window_by_the_period_its_file_name_starts_with() {
        let p = |id: &str| Some(pricing::BillingPeriod::parse(id).unwrap());
        assert_eq!(
            window_of_key("exports/ceilometer/2026-11-30.json.gz"),
            p("2026-11-30")
        );
        assert_eq!(
            window_of_key("exports/canonical/2017-02 night.csv.gz"),
            p("2017-02")
        );
        assert_eq!(window_of_key("2026-W48.jsonl"), p("2026-W48"));
        assert_eq!(window_of_key("exports/a/2026-11.json"), p("2026-11"));
        for none in [
            "exports/2026-11-30/export.json",
            "exports/a/2026-11-301.json",
            "exports/a/2026-11-30x.json",
            "exports/a/2026-13.json",
            "exports/a/night.json",
            "",
        ] {
            assert_eq!(window_of_key(none), None, "{none}");
        }
    }

    #[test]
    fn batch_ids_follow_the_object_not_the_delivery() {
        let loc = ObjectLoc {
            bucket: "b".into(),
            key: "exports/x.json".into(),
            version_id: None,
        };
        let meta = |etag: &str, checksum: Option<&str>| ObjectMeta {
            size: 3,
            etag: etag.into(),
            version_id: None,
            checksum: checksum.map(str::to_string),
        };
        let a = batch_id_of(&loc, &meta("\"abc\"", None));
        assert_eq!(
            a,
            batch_id_of(&loc, &meta("abc", None)),
            "quotes are not part of the tag"
        );
        assert_ne!(a, batch_id_of(&loc, &meta("\"abd\"", None)));
        // With a whole-object checksum, the bytes decide, not the ETag (an SSE-KMS object's
        // ETag differs on every upload, a multipart one's with the part size).
        let crc = Some("CRC64NVME:xjQ3jbAPwaA=");
        let b = batch_id_of(&loc, &meta("\"abc\"", crc));
        assert_eq!(b, batch_id_of(&loc, &meta("\"9b2cf535f27731c9-2\"", crc)));
        assert_ne!(b, a);
        assert_ne!(
            b,
            batch_id_of(&loc, &meta("\"abc\"", Some("CRC64NVME:AAAAAAAAAAA=")))
        );
        assert!(a.starts_with("s3-") && a.len() == 43);
        crate::batch::check_batch_id(&a).unwrap();
    }

    #[test]
    fn s3_events_are_recognized() {
        let ev = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": "exports/a.json", "size": 3}}}]});
        assert!(is_s3_event(&ev));
        let parsed: S3Event = serde_json::from_value(ev).unwrap();
        assert_eq!(parsed.records[0].s3.object.key, "exports/a.json");
        assert!(!is_s3_event(&json!({"close": {}})));
    }
}
