//! Exports read from object storage (`rater::exports`) against an in-memory object store that can throttle a range or replace the object half-way: ranges stitched exactly, nothing written on a failure, retryable failures told apart from bad exports. The same paths run against a real local S3 in `tests/tests/exports.rs`.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use common::*;
use rater::error::ExportProblem;
use rater::exports::{rate_and_report, report_key, ObjectBatch};
use rater::objects::{ObjectLoc, ObjectMeta, Objects};
use rater::shards::{handle_s3_event, ShardMessage};
use rater::store::fault::FaultyStore;
use rater::{EmbeddedStore, RaterError, Store};

#[derive(Default)]
struct Bucket {
    /// key -> (bytes, ETag).
    objects: HashMap<String, (Vec<u8>, String)>,
    gets: usize,
    /// The n-th GET (1-based) answers 503.
    throttle_get: Option<usize>,
    /// After the n-th GET, the object is replaced by these bytes.
    replace_after: Option<(usize, Vec<u8>)>,
    /// Every call is denied (a deployment whose role lacks the bucket).
    denied: bool,
    /// The shard size, when the deployment has a shard queue.
    shard_bytes: Option<u64>,
    /// The shard queue's messages, in the order sent.
    queue: Vec<String>,
    /// As a bucket encrypting with SSE-KMS: every upload gets an ETag of its own (not the MD5
    /// of its bytes), and HEAD answers the whole-object checksum S3 keeps (CRC64NVME there;
    /// here a SHA-256 of the bytes).
    kms: bool,
    uploads: usize,
}

/// An object store in memory, with 64 KiB ranges.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Bucket>>);

impl Memory {
    fn put_export(&self, key: &str, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap();
        b.uploads += 1;
        let etag = match b.kms {
            true => format!("\"kms-upload-{}\"", b.uploads),
            false => format!("\"{}\"", &rater::sha256_hex(bytes)[..32]),
        };
        b.objects.insert(key.to_string(), (bytes.to_vec(), etag));
    }

    /// A sharding store whose uploads are encrypted with SSE-KMS (see `Bucket::kms`).
    fn sharding_kms(shard_bytes: u64) -> Memory {
        let m = Memory::sharding(shard_bytes);
        m.0.lock().unwrap().kms = true;
        m
    }

    fn has(&self, key: &str) -> bool {
        self.0.lock().unwrap().objects.contains_key(key)
    }

    /// An object store with a shard queue, cutting exports larger than `shard_bytes`.
    fn sharding(shard_bytes: u64) -> Memory {
        let m = Memory::default();
        m.0.lock().unwrap().shard_bytes = Some(shard_bytes);
        m
    }

    fn take_messages(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap().queue)
    }
}

impl Objects for Memory {
    fn range_bytes(&self) -> u64 {
        64 << 10
    }

    async fn head(&self, loc: &ObjectLoc) -> Result<Option<ObjectMeta>, ExportProblem> {
        let b = self.0.lock().unwrap();
        if b.denied {
            return Err(ExportProblem::Refused {
                message: "AccessDenied".into(),
            });
        }
        Ok(b.objects.get(&loc.key).map(|(bytes, etag)| ObjectMeta {
            size: bytes.len() as u64,
            etag: etag.clone(),
            version_id: None,
            checksum: b
                .kms
                .then(|| format!("SHA256:{}", rater::sha256_hex(bytes))),
        }))
    }

    fn get_range(
        &self,
        loc: ObjectLoc,
        etag: String,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<u8>, ExportProblem>> + Send + 'static {
        let me = self.clone();
        async move {
            let mut b = me.0.lock().unwrap();
            b.gets += 1;
            let n = b.gets;
            if b.throttle_get == Some(n) {
                return Err(ExportProblem::Unavailable {
                    message: "503 SlowDown".into(),
                });
            }
            let Some((bytes, tag)) = b.objects.get(&loc.key).cloned() else {
                return Err(ExportProblem::Missing);
            };
            if tag != etag {
                return Err(ExportProblem::Changed);
            }
            if let Some((after, new)) = b.replace_after.clone() {
                if n >= after {
                    let new_tag = format!("\"{}\"", &rater::sha256_hex(&new)[..32]);
                    b.objects.insert(loc.key.clone(), (new, new_tag));
                }
            }
            Ok(bytes[start as usize..end as usize].to_vec())
        }
    }

    fn shard_bytes(&self) -> Option<u64> {
        self.0.lock().unwrap().shard_bytes
    }

    async fn enqueue(&self, messages: Vec<String>) -> Result<(), ExportProblem> {
        self.0.lock().unwrap().queue.extend(messages);
        Ok(())
    }

    async fn put(&self, loc: &ObjectLoc, body: Vec<u8>, _: &str) -> Result<(), ExportProblem> {
        let etag = format!("\"{}\"", &rater::sha256_hex(&body)[..32]);
        self.0
            .lock()
            .unwrap()
            .objects
            .insert(loc.key.clone(), (body, etag));
        Ok(())
    }
}

fn store() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    (dir, s)
}

fn loc(key: &str) -> ObjectLoc {
    ObjectLoc {
        bucket: "exports-test".into(),
        key: key.into(),
        version_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_read_in_many_ranges_is_rated_as_the_same_bytes_in_a_request() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::default();
    let export = export(4000, 1);
    assert!(export.len() > 10 * (64 << 10), "crosses many range bounds");
    objects.put_export("exports/a.jsonl", &export);
    let out = rate_and_report(&store, &config, &objects, &loc("exports/a.jsonl"))
        .await
        .unwrap();
    assert_eq!((out.status, out.records), ("rated", Some(4002)));
    assert_usage(&store, &config, &[&export]).await;
    // The same object again: from the ledger, no GET.
    let gets = objects.0.lock().unwrap().gets;
    let again = rate_and_report(&store, &config, &objects, &loc("exports/a.jsonl"))
        .await
        .unwrap();
    assert_eq!(again.status, "replayed");
    assert_eq!(objects.0.lock().unwrap().gets, gets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_records_under_another_key_are_counted_once_by_their_ids() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::default();
    let export: String = (0..3000)
        .map(|i| line_with_id(&format!("r-{i}"), &format!("vm-{i}"), "2", 1 + i % 27) + "\n")
        .collect();
    objects.put_export("exports/a.jsonl", export.as_bytes());
    objects.put_export("exports/copy-of-a.jsonl", export.as_bytes());
    for key in ["exports/a.jsonl", "exports/copy-of-a.jsonl"] {
        let out = rate_and_report(&store, &config, &objects, &loc(key))
            .await
            .unwrap();
        assert_eq!((out.status, out.records), ("rated", Some(3000)), "{key}");
    }
    let usage = store.period_usage("bu1user1", PERIOD).await.unwrap().usage;
    let expected = expected_usage(&config, &[export.as_bytes()], "bu1user1");
    assert_eq!(usage, expected, "the copy's records were all left out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_range_is_retryable_writes_nothing_and_leaves_no_report() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::default();
    let export = export(3000, 2);
    objects.put_export("exports/t.jsonl", &export);
    objects.0.lock().unwrap().throttle_get = Some(3);
    let before = store.snapshot().await;
    let err = rate_and_report(&store, &config, &objects, &loc("exports/t.jsonl"))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert_eq!(err.code(), "export_unavailable");
    assert_eq!(store.snapshot().await, before, "nothing written");
    assert!(!objects.has(&report_key("exports/t.jsonl")));
    // Lambda delivers the event again: rated once.
    let out = rate_and_report(&store, &config, &objects, &loc("exports/t.jsonl"))
        .await
        .unwrap();
    assert_eq!(out.status, "rated");
    assert_usage(&store, &config, &[&export]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_while_read_is_refused_and_reported() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::default();
    let first = export(3000, 3);
    objects.put_export("exports/r.jsonl", &first);
    objects.0.lock().unwrap().replace_after = Some((2, export(10, 4)));
    let before = store.snapshot().await;
    let out = rate_and_report(&store, &config, &objects, &loc("exports/r.jsonl"))
        .await
        .unwrap();
    assert_eq!((out.status, out.code), ("rejected", Some("export_changed")));
    assert_eq!(store.snapshot().await, before, "nothing written");
    let report = objects.0.lock().unwrap().objects[&report_key("exports/r.jsonl")]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["error"]["code"], "export_changed", "{report}");
    assert_eq!(report["key"], "exports/r.jsonl");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_options_limit_an_object_like_a_request() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::default();
    let export = export(10, 5);
    objects.put_export("exports/o.jsonl", &export);
    let how = ObjectBatch {
        account: Some("smb-tenant".into()),
        ..ObjectBatch::default()
    };
    let err = rater::exports::rate_object(&store, &config, &objects, &loc("exports/o.jsonl"), &how)
        .await
        .unwrap_err();
    assert!(matches!(err, RaterError::BadRecords(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_fault_fails_the_invocation_instead_of_reporting() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::default();
    objects.put_export("exports/d.jsonl", &export(10, 6));
    objects.0.lock().unwrap().denied = true;
    let err = rate_and_report(&store, &config, &objects, &loc("exports/d.jsonl"))
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("export_refused", 500));
    assert!(
        !err.public_message().contains("AccessDenied"),
        "AWS text stays in the log"
    );
    objects.0.lock().unwrap().denied = false;
    assert!(!objects.has(&report_key("exports/d.jsonl")));
}

/// The S3 notification of a new object, as the shard module's entry point reads it.
fn created(key: &str) -> rater::exports::S3Event {
    serde_json::from_value(serde_json::json!({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "exports-test"}, "object": {"key": key}}
    }]}))
    .unwrap()
}

/// Hands every queued shard message to the shard handler, last sent first and each twice (SQS
/// delivers at least once, in no order), until the queue is empty. Answers the deliveries.
async fn drain<S: Store>(store: &S, config: &rater::RaterConfig, objects: &Memory) -> usize {
    let mut delivered = 0;
    loop {
        let mut messages = objects.take_messages();
        if messages.is_empty() {
            return delivered;
        }
        messages.reverse();
        for m in messages {
            let msg: ShardMessage = serde_json::from_str(&m).unwrap();
            for _ in 0..2 {
                rater::shards::handle(store, config, objects, &msg)
                    .await
                    .unwrap_or_else(|e| panic!("shard {} {:?}: {e}", msg.shard, msg.step));
                delivered += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_export_is_cut_on_lines_and_its_shards_bill_it_exactly_once() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::sharding(100 << 10);
    let export = export(3000, 7);
    let key = "exports/large.jsonl";
    objects.put_export(key, &export);
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(out[0].status, "sharded", "{out:?}");
    let shards = out[0].shards.unwrap();
    let expected_shards = (export.len() as u64).div_ceil(100 << 10) as u32;
    assert_eq!(shards, expected_shards);
    let batch = out[0].batch_id.clone().unwrap();
    let (_, doc) = rater::shards::load(&store, &batch).await.unwrap().unwrap();
    assert_eq!(doc.bounds.first(), Some(&0), "JSON Lines has no header");
    assert_eq!(doc.bounds.last(), Some(&(export.len() as u64)));
    for b in &doc.bounds[1..doc.bounds.len() - 1] {
        assert_eq!(
            export[*b as usize - 1],
            b'\n',
            "a shard starts right after a line break"
        );
    }
    // The same notification again: the plan stands, the checks are sent again.
    let again = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(again[0].batch_id.as_deref(), Some(batch.as_str()));
    // Nothing is written before every shard passed its check.
    let before = store.period_usage("bu1user1", PERIOD).await.unwrap();
    assert!(before.usage.totals.is_empty());
    let delivered = drain(&store, &config, &objects).await;
    assert!(
        delivered >= 4 * shards as usize,
        "checks twice over, rates: {delivered}"
    );
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rated", "{status}");
    assert_eq!(status["records"], 3002, "{status}");
    assert_eq!(status["shards"]["rated"], shards, "{status}");
    assert_usage(&store, &config, &[&export]).await;
    // The same object rated whole as well (the CLI's `ratecard rate s3://...`) is refused:
    // its records without ids would bill twice.
    let err = rater::exports::rate_object(
        &store,
        &config,
        &objects,
        &loc(key),
        &ObjectBatch::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("cut in shards by the exports trigger"),
        "{err}"
    );
    assert_usage(&store, &config, &[&export]).await;
}

/// A bucket encrypting with SSE-KMS gives the same bytes another ETag at every upload. An
/// export of records without ids, uploaded again by an exporter that retried: rated once
/// (the batch id follows the whole-object checksum), whole or cut in shards. Re-uploaded while
/// its shards were being checked, the running shards (reading the first upload under its
/// ETag) are refused `export_changed`; the re-upload's event plans it again and rates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_uploaded_again_under_kms_are_rated_once_whole_or_in_shards() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::sharding_kms(100 << 10);
    // Whole (smaller than a shard): the second upload replays the first batch.
    let small = export(200, 3);
    objects.put_export("exports/small.jsonl", &small);
    let first = handle_s3_event(&store, &config, &objects, created("exports/small.jsonl"))
        .await
        .unwrap();
    assert_eq!(first[0].status, "rated", "{first:?}");
    objects.put_export("exports/small.jsonl", &small);
    let again = handle_s3_event(&store, &config, &objects, created("exports/small.jsonl"))
        .await
        .unwrap();
    assert_eq!(again[0].status, "replayed", "{again:?}");
    assert_eq!(again[0].batch_id, first[0].batch_id);
    assert_usage(&store, &config, &[&small]).await;

    // In shards, re-uploaded before any shard was checked.
    let large = export(3000, 9);
    let key = "exports/large.jsonl";
    objects.put_export(key, &large);
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(out[0].status, "sharded", "{out:?}");
    objects.put_export(key, &large);
    drain(&store, &config, &objects).await;
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rejected", "{status}");
    assert_usage(&store, &config, &[&small]).await;
    let replanned = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(replanned[0].status, "sharded", "{replanned:?}");
    assert_eq!(replanned[0].batch_id, out[0].batch_id);
    drain(&store, &config, &objects).await;
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rated", "{status}");
    assert_usage(&store, &config, &[&small, &large]).await;
    // Once rated, another upload of the same bytes changes nothing.
    objects.put_export(key, &large);
    handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(drain(&store, &config, &objects).await, 0);
    assert_usage(&store, &config, &[&small, &large]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_crashed_half_way_resumes_after_its_lease_and_counts_once() {
    let clock = manual_clock();
    let config = config_at(&clock);
    let (_d, inner) = store();
    let store = FaultyStore::new(inner);
    let objects = Memory::sharding(100 << 10);
    let export = export(3000, 8);
    let key = "exports/crash.jsonl";
    objects.put_export(key, &export);
    handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    // The check round: every shard passes, and the rate round's messages are sent.
    for m in objects.take_messages() {
        let msg: ShardMessage = serde_json::from_str(&m).unwrap();
        rater::shards::handle(&store, &config, &objects, &msg)
            .await
            .unwrap();
    }
    let rates = objects.take_messages();
    assert!(
        rates.iter().all(|m| m.contains("\"step\":\"rate\"")),
        "{rates:?}"
    );
    let first: ShardMessage = serde_json::from_str(&rates[0]).unwrap();
    // Killed after its lease and two chunk writes, before its commit.
    store.crash_after(3);
    let err = rater::shards::handle(&store, &config, &objects, &first)
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    store.heal();
    assert!(
        store
            .period_usage("bu1user1", PERIOD)
            .await
            .unwrap()
            .usage
            .totals
            .is_empty(),
        "a shard's uncommitted usage is invisible"
    );
    // Delivered again before the lease expires: told to come back.
    let mut quick = config_at(&clock);
    quick.in_progress_wait_ms_max = 50;
    let held = rater::shards::handle(&store, &quick, &objects, &first)
        .await
        .unwrap_err();
    assert!(matches!(held, RaterError::BatchInProgress { .. }), "{held}");
    clock.fetch_add(
        rater::limits::LEASE_S + 1,
        std::sync::atomic::Ordering::SeqCst,
    );
    for m in rates {
        let msg: ShardMessage = serde_json::from_str(&m).unwrap();
        rater::shards::handle(&store, &quick, &objects, &msg)
            .await
            .unwrap();
    }
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rated", "{status}");
    assert_usage(&store, &config, &[&export]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_record_in_one_shard_refuses_the_whole_export_naming_its_line() {
    let (_d, store) = store();
    let config = config();
    // The example CSV month (a header line, 37 records): cut in shards of about 1 KB.
    let csv = include_str!("../../examples/exports/canonical-2017-02.csv");
    let lines: Vec<&str> = csv.lines().collect();
    // 0-based: the last line with a unit of hours, in the last shard.
    let target = lines.iter().rposition(|l| l.contains(",hours,")).unwrap();
    assert!(target > lines.len() - 5, "{target}");
    let bad: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| match i == target {
            true => l.replacen(",hours,", ",furlongs,", 1) + "\n",
            false => format!("{l}\n"),
        })
        .collect();
    let objects = Memory::sharding(1000);
    let key = "exports/canonical/2017-02.csv";
    objects.put_export(key, bad.as_bytes());
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert!(out[0].shards.unwrap() >= 4, "{out:?}");
    let before = store.snapshot().await;
    drain(&store, &config, &objects).await;
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rejected", "{status}");
    let report = objects.0.lock().unwrap().objects[&report_key(key)]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    let rec = &report["error"]["records"][0];
    assert_eq!(
        (
            rec["index"].as_u64(),
            rec["field"].as_str(),
            rec["value"].as_str()
        ),
        (Some(target as u64 + 1), Some("unit"), Some("furlongs")),
        "line numbers are the export's (1-based, the header is line 1): {report}"
    );
    assert_eq!(report["error"]["total"], 1);
    // The status documents changed; no usage, no ledger, no record id.
    let after = store.snapshot().await;
    let written: Vec<&String> = after
        .iter()
        .filter(|i| !before.contains(i) && !i.contains("FANOUT#"))
        .collect();
    assert!(written.is_empty(), "nothing rated: {written:?}");
    // The same export fixed and dropped again is a new object: cut, checked and billed as the
    // golden invoice of the example month says.
    objects.put_export(key, csv.as_bytes());
    handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    drain(&store, &config, &objects).await;
    let golden: serde_json::Value = serde_json::from_str(include_str!(
        "../../examples/exports/canonical-2017-02.expected.json"
    ))
    .unwrap();
    let invoice = rater::invoice_for(&store, &config, "smb-tenant", period())
        .await
        .unwrap();
    assert_eq!(
        invoice.bill.total.to_string(),
        golden["total"].as_str().unwrap()
    );
    // The first upload's report is still in the bucket; the status of this upload names none.
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rated", "{status}");
    assert!(status.get("report").is_none(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_refused_keeps_the_status_document_small_and_the_report_whole_in_totals() {
    let (_d, store) = store();
    let config = config();
    // 4,000 records, every one with a negative quantity, in about 60 shards.
    let bad: String = (0..4000)
        .map(|i| line_with_id(&format!("r-{i}"), &format!("vm-{i}"), "-1", 1 + i % 27) + "\n")
        .collect();
    let objects = Memory::sharding(bad.len() as u64 / 60);
    let key = "exports/all-bad.jsonl";
    objects.put_export(key, bad.as_bytes());
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    let shards = out[0].shards.unwrap();
    assert!(shards >= 55, "{out:?}");
    drain(&store, &config, &objects).await;
    let batch = out[0].batch_id.clone().unwrap();
    let (_, body) = store.fanout(&batch).await.unwrap().unwrap();
    assert!(
        body.len() < 64 << 10,
        "{} bytes for {shards} refused shards: far below DynamoDB's 400 KB item",
        body.len()
    );
    let report = objects.0.lock().unwrap().objects[&report_key(key)]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["error"]["total"], 4000, "every bad record counted");
    let listed = report["error"]["records"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        rater::shards::SHARDS_WITH_RECORDS_MAX * rater::shards::SHARD_ERRORS_KEPT
    );
    // Lines of the export, each once (record r-i is on line i + 1).
    let lines: std::collections::BTreeSet<u64> = listed
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(lines.len(), listed.len());
    for r in listed {
        let id = r["record_id"].as_str().unwrap();
        let i: u64 = id.strip_prefix("r-").unwrap().parse().unwrap();
        assert_eq!(r["index"].as_u64(), Some(i + 1), "{r}");
    }
    assert_eq!(
        report["shard_errors"].as_array().unwrap().len(),
        shards as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_cut_is_rated_whole_and_a_line_too_long_is_refused() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::sharding(1000);
    // Compressed: a stream cannot be entered in the middle.
    let csv = include_str!("../../examples/exports/canonical-2017-02.csv");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() > 1000);
    objects.put_export("exports/2017-02.csv.gz", &gz);
    let out = handle_s3_event(&store, &config, &objects, created("exports/2017-02.csv.gz"))
        .await
        .unwrap();
    assert_eq!((out[0].status, out[0].shards), ("rated", None), "{out:?}");
    assert!(objects.take_messages().is_empty());
    // A "line" of 2 MiB without a break: no record is that long.
    let mut long = csv.lines().next().unwrap().to_string() + "\n";
    long.push_str(&"x".repeat(2 << 20));
    objects.put_export("exports/long.csv", long.as_bytes());
    let out = handle_s3_event(&store, &config, &objects, created("exports/long.csv"))
        .await
        .unwrap();
    assert_eq!(out[0].status, "rejected", "{out:?}");
    let report = objects.0.lock().unwrap().objects[&report_key("exports/long.csv")]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no line break within"),
        "{report}"
    );
}

/// The one case the check round cannot see (`rater::shards`, "What is left to one shard"):
/// one record id with two contents in two shards. Each shard alone passes; the shard rated
/// second is refused by the record-id rule, and the export says `partly_rated`, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_id_with_two_contents_in_two_shards_is_refused_in_the_shard_rated_second() {
    let (_d, store) = store();
    let config = config();
    let objects = Memory::sharding(20 << 10);
    let mut export: String = (0..600)
        .map(|i| line_with_id(&format!("r-{i}"), &format!("vm-{i}"), "2", 1 + i % 27) + "\n")
        .collect();
    export.push_str(&(line_with_id("r-0", "vm-0", "3", 1) + "\n"));
    let key = "exports/conflict.jsonl";
    objects.put_export(key, export.as_bytes());
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    let shards = out[0].shards.unwrap();
    assert!(shards >= 3, "{out:?}");
    // In order: shard 0 (r-0 with 2 hours) first, the last shard (r-0 with 3) after it.
    loop {
        let messages = objects.take_messages();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let msg: ShardMessage = serde_json::from_str(&m).unwrap();
            rater::shards::handle(&store, &config, &objects, &msg)
                .await
                .unwrap();
        }
    }
    let status = rater::shards::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "partly_rated", "{status}");
    assert_eq!(status["shards"]["refused"], 1, "{status}");
    assert_eq!(status["shards"]["rated"], shards - 1, "{status}");
    // Billed: every record but the last shard's, whose shard was refused whole.
    let (_, doc) = rater::shards::load(&store, out[0].batch_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let last = (shards - 1) as usize;
    let kept = &export.as_bytes()[..doc.bounds[last] as usize];
    let refused = doc.rated[&(shards - 1)].error.as_ref().unwrap();
    assert_eq!(refused["code"], "bad_records", "{refused}");
    let rec = &refused["records"][0];
    assert_eq!(
        (
            rec["index"].as_u64(),
            rec["record_id"].as_str(),
            rec["shard"].as_u64()
        ),
        (Some(601), Some("r-0"), Some(u64::from(shards - 1))),
        "named by its line in the export: {refused}"
    );
    let usage = store.period_usage("bu1user1", PERIOD).await.unwrap().usage;
    assert_eq!(usage, expected_usage(&config, &[kept], "bu1user1"));
    // The operator's report says which shard, which record, and that the rest is billed.
    assert_eq!(status["report"], report_key(key).as_str(), "{status}");
    let report = objects.0.lock().unwrap().objects[&report_key(key)]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["nothing_rated"], false, "{report}");
    assert_eq!(report["error"]["records"][0]["index"], 601, "{report}");
}

/// An export over 250 accounts (three commit transactions) that crashed after its first, then
/// found one of the accounts it had not committed closed by a final invoice: the first
/// transaction's accounts stay billed, so its report and status say so (`partly_rated`,
/// `nothing_rated` false) instead of "nothing rated", which would invite an operator to
/// upload a corrected export and bill those accounts' records again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_refused_after_part_of_it_was_committed_says_what_is_billed() {
    let clock = manual_clock();
    let config = many_accounts_config(250, &clock);
    let (_d, inner) = store();
    let store = FaultyStore::new(inner);
    let objects = Memory::default();
    let key = "exports/many.jsonl";
    let export = many_accounts_export(250, 9);
    objects.put_export(key, &export);
    store.crash_after_commits(1);
    let err = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    store.heal();
    // An account of the last transaction is closed for February meanwhile.
    let last = many_account(249);
    let period = pricing::BillingPeriod::parse(PERIOD).unwrap();
    rater::finalize(&store, &config, &last, period)
        .await
        .unwrap();
    clock.fetch_add(
        rater::limits::LEASE_S + 1,
        std::sync::atomic::Ordering::SeqCst,
    );
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(out[0].status, "partly_rated", "{out:?}");
    assert_eq!(out[0].code, Some("batch_partly_committed"), "{out:?}");
    let report = objects.0.lock().unwrap().objects[&report_key(key)]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["nothing_rated"], false, "{report}");
    assert!(report["partly_rated"].is_string(), "{report}");
    let status = rater::exports::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "partly_rated", "{status}");
    assert_eq!(status["report"], report_key(key).as_str(), "{status}");
    // Billed: the first transaction's accounts, each once; not the closed one.
    assert_eq!(
        billed_accounts(&store, 250).await,
        FIRST_USAGE_PER_TRANSACTION
    );
    // Another body under the export's batch id is refused, not merged with the billed part.
    let other = many_accounts_export(250, 10);
    let batch_id = status["batch_id"].as_str().unwrap().to_string();
    other_body_is_refused(&store, &config, &other, Some(&batch_id)).await;
}

/// An export whose redelivery, after a crash between its commit transactions, is refused for
/// another cause than the committed part (an account removed from the accounts file
/// meanwhile): its outcome, report and status still say that the first transaction's accounts
/// are billed (before, only `batch_partly_committed` did, and this said `nothing_rated`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_refused_for_any_cause_after_a_partial_commit_says_what_is_billed() {
    let clock = manual_clock();
    let config = many_accounts_config(250, &clock);
    let (_d, inner) = store();
    let store = FaultyStore::new(inner);
    let objects = Memory::default();
    let key = "exports/many-removed.jsonl";
    let export = many_accounts_export(250, 15);
    objects.put_export(key, &export);
    store.crash_after_commits(1);
    let err = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    store.heal();
    // The config reads the test's clock.
    let status = || async {
        rater::exports::status(&store, &objects, &loc(key), config.now_s())
            .await
            .unwrap()
    };
    // While the dead attempt's lease lives, it may be at work: in progress.
    let now = status().await;
    assert_eq!(now["status"], "in_progress", "{now}");
    clock.fetch_add(
        rater::limits::LEASE_S + 1,
        std::sync::atomic::Ordering::SeqCst,
    );
    let now = status().await;
    assert_eq!(now["status"], "partly_rated", "{now}");
    assert!(now.get("report").is_none(), "no report yet: {now}");

    let fewer = many_accounts_config(249, &clock);
    let out = handle_s3_event(&store, &fewer, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(out[0].status, "partly_rated", "{out:?}");
    // The removed account's records are bad records now.
    assert_eq!(out[0].code, Some("bad_records"), "{out:?}");
    let report = objects.0.lock().unwrap().objects[&report_key(key)]
        .0
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["nothing_rated"], false, "{report}");
    assert!(report["partly_rated"].is_string(), "{report}");
    let now = status().await;
    assert_eq!(now["status"], "partly_rated", "{now}");
    assert_eq!(now["report"], report_key(key).as_str(), "{now}");
    assert_eq!(
        billed_accounts(&store, 250).await,
        FIRST_USAGE_PER_TRANSACTION
    );
}

/// An export whose commit fails on our side after its first transaction (DynamoDB throttling
/// past the SDK's retries): the invocation fails so that Lambda retries it, and no report is
/// written. Its status says `partly_rated` without naming a report (before, it named one that
/// did not exist); the redelivery rates the rest, each account once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_failing_on_our_side_after_a_partial_commit_names_no_report() {
    let clock = manual_clock();
    let config = many_accounts_config(250, &clock);
    let (_d, inner) = store();
    let store = FaultyStore::new(inner);
    let objects = Memory::default();
    let key = "exports/many-throttled.jsonl";
    let export = many_accounts_export(250, 16);
    objects.put_export(key, &export);
    store.fail_commit_after(1);
    handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap_err();
    store.heal();
    assert!(!objects.has(&report_key(key)));
    let status = rater::exports::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "partly_rated", "{status}");
    assert!(status.get("report").is_none(), "{status}");
    let out = handle_s3_event(&store, &config, &objects, created(key))
        .await
        .unwrap();
    assert_eq!(out[0].status, "rated", "{out:?}");
    assert_many_accounts(&store, &config, &[&export], 250).await;
    let status = rater::exports::status(&store, &objects, &loc(key), config.now_s())
        .await
        .unwrap();
    assert_eq!(status["status"], "rated", "{status}");
}
