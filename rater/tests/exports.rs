//! Exports read from object storage (`rater::exports`) against an in-memory object store that can throttle a range or replace the object half-way: ranges stitched exactly, nothing written on a failure, retryable failures told apart from bad exports. The same paths run against a real local S3 in `tests/tests/exports.rs`.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use common::*;
use rater::error::ExportProblem;
use rater::exports::{rate_and_report, report_key, ObjectBatch};
use rater::objects::{ObjectLoc, ObjectMeta, Objects};
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
}

/// An object store in memory, with 64 KiB ranges.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Bucket>>);

impl Memory {
    fn put_export(&self, key: &str, bytes: &[u8]) {
        let etag = format!("\"{}\"", &rater::sha256_hex(bytes)[..32]);
        let mut b = self.0.lock().unwrap();
        b.objects.insert(key.to_string(), (bytes.to_vec(), etag));
    }

    fn has(&self, key: &str) -> bool {
        self.0.lock().unwrap().objects.contains_key(key)
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
