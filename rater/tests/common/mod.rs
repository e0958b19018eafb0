//! Test data and store-independent scenarios: the same exactly-once checks run against the embedded store and DynamoDB Local.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use pricing::{BillingPeriod, InvoiceKind, RecordRule};
use rater::limits::{LEASE_S, PAYLOAD_BYTES_MAX};
use rater::store::fault::FaultyStore;
use rater::store::Store;
use rater::{aggregate, rate_batch, BatchRequest, Mode, RateResponse, RaterConfig};
use rater::{finalize, invoice_for, RaterError};

pub const CATALOG: &str = include_str!("../../../examples/catalogs/cloudstack.json");
pub const ACCOUNTS: &str = include_str!("../../../examples/accounts/cloudstack.json");
pub const PERIOD: &str = "2017-02";
/// 2017-03-05: after February 2017 (the periods tests finalize have ended), and a clock tests
/// control, so that leases expire when they say.
pub const T0: i64 = 1_488_700_000;

/// A store whose whole content can be compared before and after a request.
pub trait Snapshot {
    fn snapshot(&self) -> impl std::future::Future<Output = Vec<String>> + Send;
}

impl Snapshot for rater::EmbeddedStore {
    async fn snapshot(&self) -> Vec<String> {
        self.dump()
            .expect("dump")
            .into_iter()
            .map(|(pk, sk, v)| format!("{pk} | {sk} | {}", String::from_utf8_lossy(&v)))
            .collect()
    }
}

impl Snapshot for rater::DynamoStore {
    async fn snapshot(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client()
                .scan()
                .table_name(self.table())
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scan");
            for item in page.items() {
                let mut fields: Vec<String> =
                    item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                fields.sort();
                out.push(fields.join(" | "));
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        out.sort();
        out
    }
}

/// The table's TTL process, which DynamoDB Local does not run: deletes the items whose TTL
/// attribute (`expires_at`, infra/table.json) is at or before `now_s`, as DynamoDB may at any
/// time after it. The embedded store has no TTL.
pub trait Ttl {
    fn expire(&self, now_s: i64) -> impl std::future::Future<Output = usize> + Send;
}

impl Ttl for rater::EmbeddedStore {
    async fn expire(&self, _now_s: i64) -> usize {
        0
    }
}

impl Ttl for rater::DynamoStore {
    async fn expire(&self, now_s: i64) -> usize {
        use aws_sdk_dynamodb::types::AttributeValue;
        let page = self
            .client()
            .scan()
            .table_name(self.table())
            .consistent_read(true)
            .filter_expression("expires_at <= :now")
            .expression_attribute_values(":now", AttributeValue::N(now_s.to_string()))
            .send()
            .await
            .expect("scan");
        assert!(
            page.last_evaluated_key().is_none(),
            "one page is enough here"
        );
        for item in page.items() {
            self.client()
                .delete_item()
                .table_name(self.table())
                .key("pk", item["pk"].clone())
                .key("sk", item["sk"].clone())
                .send()
                .await
                .expect("delete");
        }
        page.items().len()
    }
}

impl<S: Ttl + Sync + Store> Ttl for FaultyStore<S> {
    fn expire(&self, now_s: i64) -> impl std::future::Future<Output = usize> + Send {
        self.inner().expire(now_s)
    }
}

impl<S: Snapshot + Sync> Snapshot for Arc<S> {
    fn snapshot(&self) -> impl std::future::Future<Output = Vec<String>> + Send {
        (**self).snapshot()
    }
}

impl<S: Snapshot + Sync + Store> Snapshot for FaultyStore<S> {
    fn snapshot(&self) -> impl std::future::Future<Output = Vec<String>> + Send {
        self.inner().snapshot()
    }
}

pub fn period() -> BillingPeriod {
    BillingPeriod::parse(PERIOD).unwrap()
}

/// A clock the test moves by hand.
pub fn manual_clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(T0))
}

/// The example catalog with the accounts file `book` (issuer prefix `issuer`), on a clock the
/// test moves.
pub fn book_config(book: &str, issuer: &str, clock: &Arc<AtomicI64>) -> RaterConfig {
    let mut c = RaterConfig::from_json(CATALOG, book, issuer).expect("the test's config");
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

pub fn config_at(clock: &Arc<AtomicI64>) -> RaterConfig {
    let mut c = RaterConfig::from_json(CATALOG, ACCOUNTS, "test").expect("example config");
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

pub fn config() -> RaterConfig {
    config_at(&manual_clock())
}

/// One canonical JSON Lines record.
pub fn line(
    account: &str,
    resource: &str,
    product: &str,
    meter: &str,
    quantity: &str,
    unit: &str,
    day: u32,
) -> String {
    format!(
        r#"{{"account":"{account}","resource":"{resource}","product":"{product}","meter":"{meter}","quantity":"{quantity}","unit":"{unit}","start":"2017-02-{day:02}T00:00:00Z","end":"2017-02-{day:02}T01:00:00Z"}}"#
    )
}

/// An export for both example accounts; `resources` distinct VMs of bu1user1 make its usage
/// span several chunks when large (about 2,000 totals fit in one).
pub fn export(resources: usize, salt: u32) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..resources {
        out.push_str(&line(
            "bu1user1",
            &format!("vm-{salt}-{i:05}"),
            "copper",
            "vm.running",
            "1",
            "hours",
            1 + (i % 27) as u32,
        ));
        out.push('\n');
    }
    out.push_str(&line(
        "bu1user1",
        "vol-1",
        "small-disk",
        "volume.gbh",
        "120",
        "gigabyte_hours",
        2,
    ));
    out.push('\n');
    out.push_str(&line(
        "smb-tenant",
        "web-1",
        "bronze",
        "vm.running",
        "24",
        "hours",
        3,
    ));
    out.push('\n');
    out.into_bytes()
}

pub fn request(export: &[u8], batch_id: Option<&str>, mode: Mode) -> BatchRequest {
    BatchRequest {
        batch_id: batch_id.map(str::to_string),
        format: None,
        period: Some(period()),
        account: None,
        mode,
        export: export.to_vec(),
    }
}

/// What the store must hold for an account after `exports` were rated once each.
pub fn expected_usage(config: &RaterConfig, exports: &[&[u8]], account: &str) -> pricing::Usage {
    let mut u = pricing::Usage::default();
    for e in exports {
        u.merge(
            &aggregate(config, None, *e, Some(period()), None)
                .unwrap()
                .usage(),
        )
        .unwrap();
    }
    u.for_account(account)
}

pub async fn assert_usage<S: Store>(store: &S, config: &RaterConfig, exports: &[&[u8]]) {
    for account in ["bu1user1", "smb-tenant"] {
        let got = store.period_usage(account, PERIOD).await.unwrap();
        assert_eq!(
            got.usage,
            expected_usage(config, exports, account),
            "usage of {account}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// The same batch again returns the same invoices and changes nothing in the store.
pub async fn replay<S: Store + Snapshot>(store: &S) {
    let config = config();
    let export = export(50, 1);
    let first = rate_batch(store, &config, request(&export, None, Mode::Interim))
        .await
        .unwrap();
    assert!(!first.replayed);
    assert_eq!(first.invoices.len(), 2);
    let before = store.snapshot().await;
    for key in [None, Some(first.batch_id.as_str())] {
        let again = rate_batch(store, &config, request(&export, key, Mode::Interim))
            .await
            .unwrap();
        assert!(again.replayed, "second delivery must be a replay");
        assert_eq!(again.invoices, first.invoices);
        assert_eq!(again.records, first.records);
    }
    assert_eq!(store.snapshot().await, before, "a replay wrote something");
    assert_usage(store, &config, &[&export]).await;
    // The same idempotency key with other content is refused, not silently replayed.
    let other = self::export(3, 9);
    let err = rate_batch(
        store,
        &config,
        request(&other, Some(&first.batch_id), Mode::Interim),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RaterError::IdempotencyKeyReused { .. }),
        "{err}"
    );
    assert_eq!(err.http_status(), 422);
}

/// 8 concurrent deliveries of one batch: one set of aggregates, one answer.
/// Eight batches merge the readings of 300 counter series at once (each at its own hour):
/// none is lost to a concurrent write, and each series keeps its latest
/// `pricing::import::READINGS_KEPT` readings, oldest first.
pub async fn readings_merge_concurrently<S: Store + 'static>(store: Arc<S>) {
    use pricing::import::{Reading, Readings, READINGS_KEPT};
    let at = |h: i64| {
        chrono::DateTime::parse_from_rfc3339("2026-11-30T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
            + chrono::Duration::hours(h)
    };
    let mut tasks = Vec::new();
    for task in 0..8i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let readings: Readings = (0..300)
                .map(|i| {
                    let r = Reading {
                        at: at(task),
                        volume: rust_decimal::Decimal::from(task * 1_000 + i),
                        until: None,
                    };
                    (format!("TrafficOut Bytes tap-{i}"), vec![r])
                })
                .collect();
            store.merge_readings(&readings).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("merged");
    }
    let got = store.readings().await.unwrap();
    assert_eq!(got.len(), 300);
    for (series, readings) in &got {
        let i: i64 = series.rsplit('-').next().unwrap().parse().unwrap();
        let want: Vec<Reading> = (8 - READINGS_KEPT as i64..8)
            .map(|task| Reading {
                at: at(task),
                volume: rust_decimal::Decimal::from(task * 1_000 + i),
                until: None,
            })
            .collect();
        assert_eq!(readings, &want, "{series}");
    }
}

pub async fn concurrent_deliveries<S: Store + Snapshot + 'static>(store: Arc<S>) {
    let config = Arc::new(config());
    let export = Arc::new(export(3_000, 2));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, config, export) = (store.clone(), config.clone(), export.clone());
        tasks.push(tokio::spawn(async move {
            rate_batch(
                &*store,
                &config,
                request(&export, Some("nightly-2017-02-03"), Mode::Interim),
            )
            .await
        }));
    }
    let mut answers: Vec<RateResponse> = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap().unwrap());
    }
    assert_eq!(
        answers.iter().filter(|a| !a.replayed).count(),
        1,
        "exactly one delivery rates"
    );
    for a in &answers {
        assert_eq!(a.invoices, answers[0].invoices);
    }
    assert_usage(&*store, &config, &[&export]).await;
    let pu = store.period_usage("bu1user1", PERIOD).await.unwrap();
    assert_eq!(pu.batches, 1);
    assert_eq!(pu.version, 1, "one commit");
}

/// A crash after every possible number of writes, then a retry by a new process: the usage
/// is never visible half-written, and after the retry it is counted exactly once.
pub async fn crash_then_retry<S, F, Fut>(new_store: F, ks: Option<Vec<usize>>)
where
    S: Store + Snapshot,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let export = export(5_000, 3);
    // Count the writes of a clean run.
    let clean = FaultyStore::new(new_store().await);
    rate_batch(&clean, &config(), request(&export, None, Mode::Final))
        .await
        .unwrap();
    let total = clean.writes();
    assert!(
        total >= 7,
        "config x2, lease, >=2 chunks, commit, finalize x2: got {total}"
    );
    let ks = ks.unwrap_or_else(|| (0..total).collect());
    for k in ks {
        let clock = manual_clock();
        let store = FaultyStore::new(new_store().await);
        store.crash_after(k);
        let config = config_at(&clock);
        let err = rate_batch(&store, &config, request(&export, None, Mode::Final))
            .await
            .unwrap_err();
        assert!(err.retryable(), "k={k}: a crash must be retryable: {err}");
        store.heal();
        // The new process: before the dead attempt's lease expires, it is told to come back.
        let mut retry_config = config_at(&clock);
        retry_config.in_progress_wait_ms_max = 100;
        let ledger = store.ledger(&rater::sha256_hex(&export)).await.unwrap();
        if matches!(ledger, Some(rater::model::Ledger::InProgress { .. })) {
            let err = rate_batch(&store, &retry_config, request(&export, None, Mode::Final))
                .await
                .unwrap_err();
            assert!(
                matches!(err, RaterError::BatchInProgress { .. }),
                "k={k}: {err}"
            );
            for account in ["bu1user1", "smb-tenant"] {
                let pu = store.period_usage(account, PERIOD).await.unwrap();
                assert!(
                    pu.usage.totals.is_empty(),
                    "k={k}: uncommitted usage of {account} is visible"
                );
            }
            clock.fetch_add(LEASE_S + 1, Ordering::SeqCst);
        }
        let resp = rate_batch(&store, &retry_config, request(&export, None, Mode::Final))
            .await
            .unwrap_or_else(|e| panic!("k={k}: retry failed: {e}"));
        assert_eq!(resp.invoices.len(), 2, "k={k}");
        for inv in &resp.invoices {
            assert_eq!(inv.kind, InvoiceKind::Final, "k={k}");
        }
        let mut numbers: Vec<String> = resp
            .invoices
            .iter()
            .filter_map(|i| i.number.clone())
            .collect();
        numbers.sort();
        assert_eq!(
            numbers,
            ["test-000001", "test-000002"],
            "k={k}: numbers are gapless"
        );
        assert_usage(&store, &config, &[&export]).await;
        let again = rate_batch(&store, &retry_config, request(&export, None, Mode::Final))
            .await
            .unwrap();
        assert!(again.replayed);
        assert_eq!(again.invoices, resp.invoices, "k={k}");
    }
}

/// Finalizing twice is refused; numbers are gapless per issuer.
pub async fn finalize_twice<S: Store + Snapshot>(store: &S) {
    let config = config();
    let export = export(10, 4);
    rate_batch(store, &config, request(&export, None, Mode::Interim))
        .await
        .unwrap();
    let first = finalize(store, &config, "bu1user1", period())
        .await
        .unwrap();
    assert_eq!(first.number.as_deref(), Some("test-000001"));
    assert_eq!(first.kind, InvoiceKind::Final);
    assert_eq!(first.accounts_version.as_deref(), Some("2017-02-28.1"));
    assert_eq!(first.bill.catalog_version, "2017-02.1");
    first.check_totals().unwrap();
    let before = store.snapshot().await;
    let err = finalize(store, &config, "bu1user1", period())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RaterError::AlreadyFinalized { number, .. } if number == "test-000001"),
        "{err}"
    );
    assert_eq!(err.http_status(), 409);
    assert!(!err.retryable());
    assert_eq!(
        store.snapshot().await,
        before,
        "a refused finalize wrote something"
    );
    let second = finalize(store, &config, "smb-tenant", period())
        .await
        .unwrap();
    assert_eq!(second.number.as_deref(), Some("test-000002"));
    assert_eq!(store.counter("test").await.unwrap(), 2);
    // The interim view of a finalized period is the final invoice.
    let shown = rater::invoice_for(store, &config, "bu1user1", period())
        .await
        .unwrap();
    assert_eq!(shown, first);
}

/// 8 concurrent finalizes of one period: one invoice, one number.
pub async fn concurrent_finalize<S: Store + 'static>(store: Arc<S>) {
    let config = Arc::new(config());
    let export = export(10, 5);
    rate_batch(&*store, &config, request(&export, None, Mode::Interim))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, config) = (store.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            finalize(&*store, &config, "bu1user1", period()).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(inv) => {
                ok += 1;
                assert_eq!(inv.number.as_deref(), Some("test-000001"));
            }
            Err(RaterError::AlreadyFinalized { .. }) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.counter("test").await.unwrap(), 1);
}

/// Late usage for a finalized period is refused whole, with nothing written; other accounts'
/// usage and replays of earlier batches still work.
pub async fn late_usage<S: Store + Snapshot>(store: &S) {
    let config = config();
    let early = export(5, 6);
    rate_batch(store, &config, request(&early, None, Mode::Interim))
        .await
        .unwrap();
    let final_inv = finalize(store, &config, "bu1user1", period())
        .await
        .unwrap();
    let before = store.snapshot().await;
    let late = export(5, 7);
    let err = rate_batch(store, &config, request(&late, None, Mode::Interim))
        .await
        .unwrap_err();
    match &err {
        RaterError::PeriodClosed {
            account,
            period,
            number,
        } => {
            assert_eq!(
                (account.as_str(), period.as_str(), number.as_str()),
                ("bu1user1", PERIOD, "test-000001")
            );
        }
        e => panic!("expected PeriodClosed, got {e}"),
    }
    assert_eq!(err.http_status(), 409);
    assert_eq!(store.snapshot().await, before, "late usage wrote something");
    // The other account's period is open.
    let smb_only = line(
        "smb-tenant",
        "web-2",
        "bronze",
        "vm.running",
        "5",
        "hours",
        20,
    ) + "\n";
    let ok = rate_batch(
        store,
        &config,
        request(smb_only.as_bytes(), None, Mode::Interim),
    )
    .await
    .unwrap();
    assert_eq!(ok.invoices.len(), 1);
    // A replay of the batch rated before the close answers the final invoice.
    let again = rate_batch(store, &config, request(&early, None, Mode::Interim))
        .await
        .unwrap();
    assert!(again.replayed);
    assert!(again.invoices.contains(&final_inv));
}

/// Every kind of bad input is refused whole with the rule it broke, and nothing is written.
pub async fn bad_input_writes_nothing<S: Store + Snapshot>(store: &S) {
    let config = config();
    rate_batch(store, &config, request(&export(3, 8), None, Mode::Interim))
        .await
        .unwrap();
    let before = store.snapshot().await;
    let good = line("bu1user1", "vm-x", "copper", "vm.running", "1", "hours", 5);
    let cases: Vec<(&str, String, &str)> = vec![
        ("malformed json", "{not json".into(), "$"),
        (
            "NaN quantity",
            good.replace(r#""quantity":"1""#, r#""quantity":"NaN""#),
            "quantity",
        ),
        (
            "infinite quantity",
            good.replace(r#""quantity":"1""#, r#""quantity":"inf""#),
            "quantity",
        ),
        (
            "unknown field",
            good.replace(r#""unit""#, r#""colour":"red","unit""#),
            "$",
        ),
        (
            "missing field",
            good.replace(r#""meter":"vm.running","#, ""),
            "meter",
        ),
        ("unknown product", good.replace("copper", "tin"), "product"),
        (
            "unknown meter",
            good.replace("vm.running", "vm.flying"),
            "meter",
        ),
        (
            "negative quantity",
            good.replace(r#""quantity":"1""#, r#""quantity":"-1""#),
            "quantity",
        ),
        (
            "absurd quantity",
            good.replace(
                r#""quantity":"1""#,
                r#""quantity":"10000000000000000000000000""#,
            ),
            "quantity",
        ),
        (
            "end before start",
            good.replace("2017-02-05T01:00:00Z", "2017-02-04T01:00:00Z"),
            "end",
        ),
        (
            "outside period",
            good.replace("2017-02-05", "2017-03-05"),
            "start",
        ),
        (
            "unit mismatch",
            good.replace(r#""unit":"hours""#, r#""unit":"gigabytes""#),
            "unit",
        ),
        (
            "unknown account",
            good.replace("bu1user1", "mallory"),
            "account",
        ),
    ];
    for (name, bad, field) in cases {
        // The bad record is the second line of three: the good ones around it are not written
        // either. Record numbers of line formats are 1-based line numbers.
        let export = format!("{good}\n{bad}\n{good}\n");
        let err = rate_batch(
            store,
            &config,
            request(export.as_bytes(), None, Mode::Interim),
        )
        .await
        .unwrap_err();
        let RaterError::BadRecords(b) = &err else {
            panic!("{name}: expected BadRecords, got {err}");
        };
        assert_eq!(b.total, 1, "{name}: {err}");
        assert_eq!(b.errors[0].index, 2, "{name}: {err}");
        assert_eq!(b.errors[0].field, field, "{name}: {err}");
        if name == "unknown account" {
            assert_eq!(b.errors[0].rule, RecordRule::UnknownAccount);
        }
        assert_eq!(err.http_status(), 422, "{name}");
        assert!(!err.retryable(), "{name}");
        assert_eq!(
            store.snapshot().await,
            before,
            "{name}: a rejected batch wrote something"
        );
    }
    // Empty batches and oversize payloads.
    for empty in ["", "\n\n  \n"] {
        let err = rate_batch(
            store,
            &config,
            request(empty.as_bytes(), None, Mode::Interim),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RaterError::EmptyBatch), "{err}");
        assert_eq!(err.http_status(), 400);
    }
    let huge = vec![b' '; PAYLOAD_BYTES_MAX + 1];
    let err = rate_batch(store, &config, request(&huge, None, Mode::Interim))
        .await
        .unwrap_err();
    assert!(matches!(err, RaterError::PayloadTooLarge { .. }), "{err}");
    assert_eq!(err.http_status(), 413);
    assert_eq!(store.snapshot().await, before);
}

/// A batch in final mode answers numbered invoices; its replay answers the same ones.
pub async fn final_mode_batch<S: Store + Snapshot>(store: &S) {
    let config = config();
    let export = export(20, 10);
    let first = rate_batch(
        store,
        &config,
        request(&export, Some("month-end"), Mode::Final),
    )
    .await
    .unwrap();
    assert!(first
        .invoices
        .iter()
        .all(|i| i.kind == InvoiceKind::Final && i.number.is_some()));
    let again = rate_batch(
        store,
        &config,
        request(&export, Some("month-end"), Mode::Final),
    )
    .await
    .unwrap();
    assert!(again.replayed);
    assert_eq!(again.invoices, first.invoices);
    assert_eq!(store.counter("test").await.unwrap(), 2);
}

/// One canonical JSON Lines record with a record id.
pub fn line_with_id(id: &str, resource: &str, quantity: &str, day: u32) -> String {
    let l = line(
        "bu1user1",
        resource,
        "copper",
        "vm.running",
        quantity,
        "hours",
        day,
    );
    format!(r#"{{"record_id":"{id}",{}"#, &l[1..])
}

/// Rates an export under an idempotency key, interim.
async fn rate_as<S: Store>(
    store: &S,
    config: &RaterConfig,
    export: &str,
    key: &str,
) -> Result<RateResponse, RaterError> {
    rate_batch(
        store,
        config,
        request(export.as_bytes(), Some(key), Mode::Interim),
    )
    .await
}

/// The same record id in two different batches (an exporter re-sending an overlapping window,
/// once as CSV and once as JSON Lines, even concurrently) is counted once; the same id with
/// other content refuses the whole batch, names the record and writes nothing. With `spill`,
/// every batch sorts its ids through temporary files (runs of one id).
pub async fn record_ids_count_once<S: Store + Snapshot + 'static>(store: Arc<S>, spill: bool) {
    let mut config = config();
    if spill {
        config.id_run_entries = 1;
    }
    let config = Arc::new(config);
    // Window 1 as canonical CSV: r1, r2.
    let csv = format!(
        "{}\nr1,bu1user1,,vm-a,copper,vm.running,2.50,hours,2017-02-01T00:00:00Z,2017-02-01T01:00:00Z,,\n\
         r2,bu1user1,,vm-b,copper,vm.running,3,hours,2017-02-02T00:00:00Z,2017-02-02T01:00:00Z,,\n",
        pricing::import::CSV_HEADER
    );
    // Window 2 as JSON Lines: r2 again (same content, other spelling of 3), r3 new, and an
    // identical copy of r3 inside the batch.
    let window2 = [
        line_with_id("r2", "vm-b", "3.000", 2),
        line_with_id("r3", "vm-c", "4", 3),
        line_with_id("r3", "vm-c", "4", 3),
    ]
    .join("\n");
    // Both windows at once: whichever commits second must drop r2.
    let (a, b) = {
        let (s1, s2) = (store.clone(), store.clone());
        let (c1, c2) = (config.clone(), config.clone());
        let (e1, e2) = (csv.clone(), window2.clone());
        let t1 = tokio::spawn(async move { rate_as(&*s1, &c1, &e1, "window-1").await });
        let t2 = tokio::spawn(async move { rate_as(&*s2, &c2, &e2, "window-2").await });
        (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap())
    };
    assert_eq!((a.records, b.records), (2, 3));
    // r3's in-batch copy always drops; r2 drops from whichever batch committed second.
    assert_eq!(a.duplicates_dropped + b.duplicates_dropped, 2);
    let usage = store.period_usage("bu1user1", PERIOD).await.unwrap().usage;
    let (hours, records) = usage
        .totals
        .values()
        .fold((rust_decimal::Decimal::ZERO, 0), |(q, n), t| {
            (q + t.quantity, n + t.records)
        });
    assert_eq!(
        (hours, records),
        (rust_decimal::Decimal::new(95, 1), 3),
        "r1 + r2 + r3 once each"
    );

    // A replay of window 2 answers the same and writes nothing.
    let before = store.snapshot().await;
    let again = rate_as(&*store, &config, &window2, "window-2")
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.duplicates_dropped, b.duplicates_dropped);
    assert_eq!(store.snapshot().await, before);

    // Window 3 only repeats what was counted: accepted, nothing counted, same invoice total.
    let repeat = line_with_id("r1", "vm-a", "2.5", 1);
    let r = rate_as(&*store, &config, &repeat, "window-3")
        .await
        .unwrap();
    assert_eq!((r.records, r.duplicates_dropped), (1, 1));
    assert_eq!(r.invoices[0].bill.total, again.invoices[0].bill.total);

    // The same id with another quantity: refused whole, named, nothing written.
    let before = store.snapshot().await;
    let bad = [
        line_with_id("r4", "vm-d", "1", 4),
        line_with_id("r2", "vm-b", "30", 2),
    ]
    .join("\n");
    let err = rate_as(&*store, &config, &bad, "window-4")
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 422);
    match &err {
        RaterError::BadRecords(e) => {
            assert_eq!(e.total, 1);
            let r = &e.errors[0];
            assert_eq!(
                (r.index, r.record_id.as_deref(), r.field, r.value.as_str()),
                (2, Some("r2"), "record_id", "r2")
            );
            assert!(matches!(r.rule, RecordRule::RecordIdReused { .. }));
        }
        e => panic!("expected BadRecords, got {e}"),
    }
    assert_eq!(store.snapshot().await, before, "a refused batch wrote");
}

/// A batch with more record ids than one item holds, sorted through temporary files: its ids
/// span several record-id chunks, all read back; a later batch repeating every third record
/// (and bringing new ones) drops exactly the repeats.
pub async fn many_record_ids_span_chunks<S: Store>(store: &S) {
    let mut config = config();
    config.id_run_entries = 4_096;
    let n = rater::dedupe::IDS_PER_CHUNK * 2 + 17;
    let line = |i: usize| line_with_id(&format!("r{i}"), "vm-a", "1", 1 + (i % 28) as u32);
    let first: Vec<String> = (0..n).map(line).collect();
    let a = rate_as(store, &config, &first.join("\n"), "big-1")
        .await
        .unwrap();
    assert_eq!((a.records, a.duplicates_dropped), (n as u64, 0));
    let ids = store.record_ids("bu1user1", PERIOD, "").await.unwrap();
    assert_eq!(ids.ids.len(), n, "every id stored once, over 3 chunks");

    let second: Vec<String> = (0..n).step_by(3).chain(n..n + 5).map(line).collect();
    let b = rate_as(store, &config, &second.join("\n"), "big-2")
        .await
        .unwrap();
    let repeats = n.div_ceil(3) as u64;
    assert_eq!((b.records, b.duplicates_dropped), (repeats + 5, repeats));
    let ids = store.record_ids("bu1user1", PERIOD, "").await.unwrap();
    assert_eq!(ids.ids.len(), n + 5);
    let usage = store.period_usage("bu1user1", PERIOD).await.unwrap().usage;
    let records: u64 = usage.totals.values().map(|t| t.records).sum();
    assert_eq!(records, n as u64 + 5, "each record counted once");
}

/// Sweeping deletes exactly the chunks of one batch in one account's period beyond the counts
/// it keeps: nothing of another batch (even one whose id extends this one's) or account.
pub async fn sweep_deletes_only_what_is_not_kept<S: Store + Snapshot>(store: &S) {
    use rater::model::{ChunkKind, UsageChunk};
    let mut all = Vec::new();
    for account in ["bu1user1", "bu1user2"] {
        for batch in ["x", "x#y"] {
            for kind in [ChunkKind::Usage, ChunkKind::RecordIds] {
                for n in 0..3 {
                    all.push(UsageChunk {
                        account: account.into(),
                        period_id: PERIOD.into(),
                        batch_id: batch.into(),
                        n,
                        kind,
                        body: format!("body of {account}/{batch}/{kind:?}/{n}"),
                    });
                }
            }
        }
    }
    store.put_chunks(&all).await.unwrap();
    let keep = rater::store::Keep {
        account: "bu1user1".into(),
        period_id: PERIOD.into(),
        batch_id: "x".into(),
        chunks: 1,
        id_chunks: 2,
    };
    store.sweep_chunks(&keep).await.unwrap();
    let snapshot = store.snapshot().await.join("\n");
    for c in &all {
        let kept = match c.kind {
            ChunkKind::Usage => keep.chunks,
            ChunkKind::RecordIds => keep.id_chunks,
        };
        let gone = c.account == keep.account && c.batch_id == keep.batch_id && c.n >= kept;
        assert_eq!(
            !snapshot.contains(&c.body),
            gone,
            "{}: gone should be {gone}",
            c.body
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Batches over many accounts (more than one commit transaction holds)

/// Id of account `i` of [`many_accounts_config`].
pub fn many_account(i: usize) -> String {
    format!("a{i:04}")
}

/// The example catalog with an accounts book of `n` plain accounts (`a0000`, `a0001`...), all
/// billed monthly in the catalog's currency.
pub fn many_accounts_config(n: usize, clock: &Arc<AtomicI64>) -> RaterConfig {
    let accounts: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({ "id": many_account(i), "name": format!("Account {i}") }))
        .collect();
    let book =
        serde_json::json!({ "schema_version": 1, "version": "many-1", "accounts": accounts });
    let mut c =
        RaterConfig::from_json(CATALOG, &book.to_string(), "test").expect("many-accounts config");
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

/// An export with two records (with record ids) for each of `n` accounts.
pub fn many_accounts_export(n: usize, salt: u32) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        let account = many_account(i);
        for (k, quantity) in [(1u32, "2"), (2, "3.5")] {
            let l = line(
                &account,
                &format!("vm-{salt}-{i}"),
                "copper",
                "vm.running",
                quantity,
                "hours",
                k,
            );
            out.push_str(&format!(
                r#"{{"record_id":"{account}-{salt}-{k}",{}"#,
                &l[1..]
            ));
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Every one of the `n` accounts holds exactly the usage of `exports` counted once (the
/// reference is the exports aggregated afresh), so no chunk a commit counted is missing.
pub async fn assert_many_accounts<S: Store>(
    store: &S,
    config: &RaterConfig,
    exports: &[&[u8]],
    n: usize,
) {
    let mut reference = pricing::Usage::default();
    for e in exports {
        reference
            .merge(
                &aggregate(config, None, *e, Some(period()), None)
                    .unwrap()
                    .usage(),
            )
            .unwrap();
    }
    for i in 0..n {
        let account = many_account(i);
        let got = store.period_usage(&account, PERIOD).await.unwrap();
        assert_eq!(
            got.usage,
            reference.for_account(&account),
            "usage of {account} differs from the reference"
        );
        assert_eq!(
            got.batches,
            exports.len(),
            "batches committed for {account}"
        );
    }
}

/// A batch of `n` accounts rated once (in ceil(n / 99) commit transactions) holds every
/// account's usage once; a redelivery is a replay that writes nothing.
pub async fn many_accounts_rate_once<S: Store + Snapshot>(store: &S, n: usize) {
    let config = many_accounts_config(n, &manual_clock());
    let export = many_accounts_export(n, 3);
    let req = || request(&export, Some("many-once"), Mode::Interim);
    let first = rate_batch(store, &config, req()).await.unwrap();
    assert_eq!(first.records, 2 * n as u64, "n={n}");
    assert_eq!(first.accounts, n as u64, "n={n}");
    // The answer holds every invoice up to 100 accounts, and points to them above.
    if n <= rater::limits::ANSWER_INVOICES_MAX {
        assert_eq!((first.invoices.len(), first.invoices_omitted), (n, 0));
    } else {
        assert_eq!(
            (first.invoices.len(), first.invoices_omitted),
            (0, n as u64)
        );
        assert_eq!(
            first.invoice_path.as_deref(),
            Some("?account={account}&period={period}")
        );
    }
    assert_many_accounts(store, &config, &[&export], n).await;
    let before = store.snapshot().await;
    let again = rate_batch(store, &config, req()).await.unwrap();
    assert!(again.replayed, "n={n}");
    assert_eq!(store.snapshot().await, before, "n={n}: a replay wrote");
}

/// Account periods per commit transaction when each is the period's first usage: its
/// `#COMMITTED` item and its balance's open mark are two items of the transaction.
pub const FIRST_USAGE_PER_TRANSACTION: usize =
    rater::limits::COMMIT_ACCOUNTS_PER_TRANSACTION_MAX / 2;

/// How many of the `n` accounts of [`many_accounts_export`] have one batch committed.
pub async fn billed_accounts<S: Store>(store: &S, n: usize) -> usize {
    let mut billed = 0;
    for i in 0..n {
        let pu = store.period_usage(&many_account(i), PERIOD).await.unwrap();
        billed += usize::from(pu.batches == 1);
    }
    billed
}

/// Rates `other` under `key`, bound to another content: refused `IdempotencyKeyReused`,
/// nothing written. Answers the error.
pub async fn other_body_is_refused<S: Store + Snapshot>(
    store: &S,
    config: &RaterConfig,
    other: &[u8],
    key: Option<&str>,
) -> RaterError {
    let before = store.snapshot().await;
    let err = rate_batch(store, config, request(other, key, Mode::Interim))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RaterError::IdempotencyKeyReused { .. }),
        "{err}"
    );
    assert_eq!(store.snapshot().await, before, "a refused body wrote");
    err
}

/// Issue 12, part 2: a crash after each commit transaction but the last of a batch over `n`
/// accounts (the earlier transactions are visible, the ledger is still in progress), then a
/// new process taking the lease over: it commits exactly what was left. A second batch with
/// the same record ids afterwards drops them all; two concurrent redeliveries are replays.
pub async fn many_accounts_crash_between_commits<S, F, Fut>(new_store: F, n: usize)
where
    S: Store + Snapshot + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let export = many_accounts_export(n, 5);
    let groups = n.div_ceil(FIRST_USAGE_PER_TRANSACTION);
    assert!(groups > 1, "n={n} fits one transaction");
    let clean = FaultyStore::new(new_store().await);
    let key = Some("many-crash");
    rate_batch(
        &clean,
        &many_accounts_config(n, &manual_clock()),
        request(&export, key, Mode::Interim),
    )
    .await
    .unwrap();
    // The commit transactions are the run's last writes.
    let total = clean.writes();
    for committed in 1..groups {
        let k = total - groups + committed;
        let clock = manual_clock();
        let config = many_accounts_config(n, &clock);
        let store = Arc::new(FaultyStore::new(new_store().await));
        store.crash_after(k);
        let err = rate_batch(&*store, &config, request(&export, key, Mode::Interim))
            .await
            .unwrap_err();
        assert!(err.retryable(), "crash after {committed} commits: {err}");
        assert_eq!(
            billed_accounts(&*store, n).await,
            (committed * FIRST_USAGE_PER_TRANSACTION).min(n),
            "the transactions before the crash are visible"
        );
        store.heal();
        clock.fetch_add(LEASE_S + 1, Ordering::SeqCst);
        // Another body under the key, once the dead attempt's lease expired: refused, never
        // merged with the partitions the first body committed.
        let other = many_accounts_export(n, 6);
        other_body_is_refused(&*store, &config, &other, key).await;
        let resp = rate_batch(&*store, &config, request(&export, key, Mode::Interim))
            .await
            .unwrap_or_else(|e| panic!("crash after {committed} commits: retry failed: {e}"));
        assert!(!resp.replayed);
        assert_eq!(resp.duplicates_dropped, 0, "its own ids are not duplicates");
        assert_many_accounts(&*store, &config, &[&export], n).await;

        // The same records again under another key: every one is a counted duplicate.
        let again = rate_batch(
            &*store,
            &config,
            request(&export, Some("many-again"), Mode::Interim),
        )
        .await
        .unwrap();
        assert_eq!(again.duplicates_dropped, 2 * n as u64);
        assert_many_accounts(&*store, &config, &[&export], n).await;

        // Two redeliveries of the first batch at once: replays, nothing moves.
        let before = store.snapshot().await;
        let config = Arc::new(config);
        let export = Arc::new(export.clone());
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (s, c, e) = (store.clone(), config.clone(), export.clone());
            tasks.push(tokio::spawn(async move {
                rate_batch(&*s, &c, request(&e, key, Mode::Interim)).await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().unwrap().replayed);
        }
        assert_eq!(store.snapshot().await, before);
    }
}

/// A batch over 250 accounts refused between two commit transactions (the process lives and
/// gives its lease up): the committed accounts stay billed and the key stays bound to the
/// batch's content. Another body under the key is refused, nothing written (before, the
/// released key was free and the other body's retry took the first body's committed
/// partitions for its own: billed the first body's usage there and its own elsewhere); the
/// same body again at once commits exactly the rest.
pub async fn many_accounts_refused_between_commits<S: Store + Snapshot>(store: &FaultyStore<S>) {
    let n = 250;
    let config = many_accounts_config(n, &manual_clock());
    let export = many_accounts_export(n, 7);
    let key = Some("many-refused");
    store.fail_commit_after(1);
    let err = rate_batch(store, &config, request(&export, key, Mode::Interim))
        .await
        .unwrap_err();
    assert!(matches!(err, RaterError::Store(_)), "{err}");
    store.heal();
    assert_eq!(
        billed_accounts(store, n).await,
        FIRST_USAGE_PER_TRANSACTION,
        "one transaction landed"
    );
    let ledger = store.ledger("many-refused").await.unwrap();
    assert!(
        matches!(ledger, Some(rater::model::Ledger::Partial { .. })),
        "{ledger:?}"
    );

    let other = many_accounts_export(n, 8);
    let err = other_body_is_refused(store, &config, &other, key).await;
    match &err {
        RaterError::IdempotencyKeyReused {
            stored_sha256,
            sha256,
            ..
        } => {
            assert_eq!(stored_sha256, &rater::sha256_hex(&export));
            assert_eq!(sha256, &rater::sha256_hex(&other));
        }
        e => panic!("expected IdempotencyKeyReused, got {e}"),
    }
    assert_eq!(err.http_status(), 422);

    // The same body at once (no lease to wait for): the rest, each account once.
    let resp = rate_batch(store, &config, request(&export, key, Mode::Interim))
        .await
        .unwrap();
    assert!(!resp.replayed);
    assert_many_accounts(store, &config, &[&export], n).await;
}

/// A batch refused between two commit transactions (its ledger kept `PARTIAL`), whose retry
/// with the same body crashed before committing more: the ledger stays bound to its content and
/// without the TTL attribute. So once the retry's lease lapsed and TTL ran, another body under
/// the key is still refused, nothing written (before, the retry's lease put the TTL attribute
/// back, TTL deleted the ledger, and the other body took the committed partitions for its
/// own). The same body then commits exactly the rest.
pub async fn partly_committed_key_outlives_a_crashed_retry<S: Store + Snapshot + Ttl>(
    store: &FaultyStore<S>,
) {
    let n = 250;
    let clock = manual_clock();
    let config = many_accounts_config(n, &clock);
    let export = many_accounts_export(n, 11);
    let key = Some("many-retry-crash");
    store.fail_commit_after(1);
    rate_batch(store, &config, request(&export, key, Mode::Interim))
        .await
        .unwrap_err();
    store.heal();
    // The retry dies at its first commit: no release, its lease left to lapse.
    store.crash_after_commits(0);
    let err = rate_batch(store, &config, request(&export, key, Mode::Interim))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    store.heal();
    let ledger = store.ledger("many-retry-crash").await.unwrap();
    assert!(
        matches!(
            ledger,
            Some(rater::model::Ledger::InProgress { bound: true, .. })
        ),
        "{ledger:?}"
    );
    clock.fetch_add(LEASE_S + 1, Ordering::SeqCst);
    assert_eq!(store.expire(config.now_s()).await, 0, "TTL took the ledger");

    let other = many_accounts_export(n, 12);
    other_body_is_refused(store, &config, &other, key).await;
    let resp = rate_batch(store, &config, request(&export, key, Mode::Interim))
        .await
        .unwrap();
    assert!(!resp.replayed);
    assert_many_accounts(store, &config, &[&export], n).await;
}

/// An attempt that died before its first commit leaves an unbound lease: while it lives,
/// another body under the key is refused (it may still commit); once it lapsed, the key is free
/// for any body, before TTL deletes the ledger as after (the embedded store used to refuse the
/// other body for good, DynamoDB only until TTL ran), and the other body is rated whole.
pub async fn a_lapsed_lease_that_committed_nothing_frees_its_key<S: Store + Snapshot>(
    store: &FaultyStore<S>,
) {
    let n = 3;
    let clock = manual_clock();
    let config = many_accounts_config(n, &clock);
    let first = many_accounts_export(n, 13);
    let other = many_accounts_export(n, 14);
    let key = Some("lapsed");
    store.crash_after_commits(0);
    let err = rate_batch(store, &config, request(&first, key, Mode::Interim))
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    store.heal();
    let ledger = store.ledger("lapsed").await.unwrap();
    assert!(
        matches!(
            ledger,
            Some(rater::model::Ledger::InProgress { bound: false, .. })
        ),
        "{ledger:?}"
    );
    let err = rate_batch(store, &config, request(&other, key, Mode::Interim))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RaterError::IdempotencyKeyReused { .. }),
        "while the lease lives: {err}"
    );
    clock.fetch_add(LEASE_S + 1, Ordering::SeqCst);
    // Before TTL has run: the lapsed ledger is still there, and yet free.
    assert!(store.ledger("lapsed").await.unwrap().is_some());
    let resp = rate_batch(store, &config, request(&other, key, Mode::Interim))
        .await
        .unwrap();
    assert!(!resp.replayed);
    assert_many_accounts(store, &config, &[&other], n).await;
}

/// A `final` batch over 250 accounts finalizes each once with gapless numbers; a crash
/// part-way through the finalizes answers which accounts were finalized, and the retry
/// finalizes exactly the rest. A `final` batch over more accounts than a summary lists is
/// refused before anything is written.
pub async fn many_accounts_final<S: Store + Snapshot>(store: &FaultyStore<S>) {
    let n = 250;
    let config = many_accounts_config(n, &manual_clock());
    let export = many_accounts_export(n, 11);
    let req = || request(&export, Some("many-final"), Mode::Final);
    // Let the batch commit and 40 finalizes through (config x2, lease, chunks, the commits).
    let before_finalize = 2 + 1 + 2 * n + n.div_ceil(FIRST_USAGE_PER_TRANSACTION);
    store.crash_after(before_finalize + 40);
    let err = rate_batch(store, &config, req()).await.unwrap_err();
    store.heal();
    match &err {
        RaterError::FinalizeIncomplete {
            finalized, account, ..
        } => {
            assert_eq!(finalized.len(), 40, "{err}");
            assert_eq!(account, &many_account(40));
            assert_eq!(finalized[0].number, "test-000001");
        }
        e => panic!("expected FinalizeIncomplete, got {e}"),
    }
    assert!(err.retryable(), "{err}");
    let resp = rate_batch(store, &config, req()).await.unwrap();
    assert!(resp.replayed);
    let numbers: Vec<String> = resp.finalized.iter().map(|f| f.number.clone()).collect();
    let want: Vec<String> = (1..=n as u64)
        .map(|i| rater::store::invoice_number("test", i))
        .collect();
    assert_eq!(
        numbers, want,
        "each account finalized once, numbers gapless"
    );
    assert_eq!(store.counter("test").await.unwrap(), n as u64);

    let big = rater::limits::SUMMARY_PARTITIONS_MAX + 1;
    let config = many_accounts_config(big, &manual_clock());
    let export = many_accounts_export(big, 12);
    let before = store.snapshot().await;
    let err = rate_batch(store, &config, request(&export, None, Mode::Final))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RaterError::TooManyAccountsForFinal { accounts, .. } if accounts == big),
        "{err}"
    );
    assert_eq!(store.snapshot().await, before, "a refused batch wrote");
}

/// The example catalog grown to `products` products (copies of `copper`, each with its own id
/// and a name in several scripts): megabytes of JSON the validator accepts.
pub fn large_catalog(products: usize) -> String {
    let mut c: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
    let copper = c["products"][0].clone();
    let list = c["products"].as_array_mut().unwrap();
    while list.len() < products {
        let mut p = copper.clone();
        let i = list.len();
        p["id"] = serde_json::json!(format!("copper-{i:05}"));
        p["name"] = serde_json::json!(format!("Copper {i} – Kupfer – 銅 – медь"));
        p["aliases"] = serde_json::json!([]);
        list.push(p);
    }
    c["version"] = serde_json::json!(format!("large-{products}"));
    c.to_string()
}

/// A final invoice larger than one DynamoDB item (400 KB): one hour each of 3,000 products
/// (copies of copper at 2.20 an hour) is 3,000 lines. It is finalized, stored (in parts on
/// DynamoDB) and read back whole; its total is 3,000 x 2.20 = 6,600.00. Late usage of as
/// many other resources issues a debit note of as much again, as large, stored the same way.
pub async fn large_final_invoice_round_trips<S: Store>(store: &S) {
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let catalog = large_catalog(3_000);
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&catalog).unwrap()["products"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["id"].as_str())
        .filter(|id| id.starts_with("copper-"))
        .map(str::to_string)
        .collect();
    let n = ids.len();
    assert!(n > 2_900, "{n} copies");
    let book = serde_json::json!({ "schema_version": 1, "version": "large-final-2", "accounts": [
        { "id": "a0000", "name": "Account 0", "late_usage": "note" },
    ]});
    let mut config = RaterConfig::from_json(&catalog, &book.to_string(), "test").unwrap();
    let at = clock.clone();
    config.clock = Arc::new(move || at.load(Ordering::SeqCst));
    // One hour of each product, on resources named `<resource>-<i>`, on February's `day`.
    let hour_each = |resource: &str, day: u32| -> String {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                format!(
                    r#"{{"account":"a0000","resource":"{resource}-{i}","product":"{id}","meter":"vm.running","quantity":"1","unit":"hours","start":"2017-02-{day:02}T00:00:00Z","end":"2017-02-{day:02}T01:00:00Z"}}"#
                ) + "\n"
            })
            .collect()
    };
    let export = hour_each("vm", 3);
    rate_batch(
        store,
        &config,
        request_in(export.as_bytes(), "large", Some("2017-02")),
    )
    .await
    .unwrap();
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let inv = finalize(store, &config, "a0000", feb).await.unwrap();
    let bytes = serde_json::to_vec(&inv).unwrap().len();
    assert!(bytes > 400 * 1024, "{bytes} bytes: not larger than an item");
    let want = rust_decimal::Decimal::from(n as u64) * d("2.20");
    assert_eq!(inv.bill.total, want);
    assert_eq!(inv.bill.lines().count(), n);
    let stored = store.final_invoice("a0000", "2017-02").await.unwrap();
    assert_eq!(stored.as_ref(), Some(&inv), "read back whole");
    assert!(store
        .final_statement("a0000", "2017-02")
        .await
        .unwrap()
        .is_some());
    let again = invoice_for(store, &config, "a0000", feb).await.unwrap();
    assert_eq!(again, inv);

    // Late usage of as many other resources: its debit note is as large as the invoice, and
    // is issued, stored and read back whole (it was one item: refused by DynamoDB, so the
    // account's every later close failed on it).
    let late = hour_each("late", 4);
    let resp = rate_batch(
        store,
        &config,
        request_in(late.as_bytes(), "large-late", Some("2017-02")),
    )
    .await
    .unwrap();
    assert_eq!(resp.late.len(), 1, "{:?}", resp.late);
    assert_eq!(resp.late[0].notes.len(), 1);
    let note = &resp.late[0].notes[0];
    assert_eq!(note.number.as_deref(), Some("test-N000001"));
    assert_eq!(note.total, want, "as much again");
    assert_eq!(note.lines().count(), n);
    assert!(
        serde_json::to_vec(note).unwrap().len() > 400 * 1024,
        "not larger than an item"
    );
    let stored = store.corrections("a0000", "2017-02").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(&stored[0].note, note, "read back whole");
    // A replay answers the same note and issues nothing more; the invoice is unchanged.
    let replay = rate_batch(
        store,
        &config,
        request_in(late.as_bytes(), "large-late", Some("2017-02")),
    )
    .await
    .unwrap();
    assert!(replay.late == resp.late, "the replay answered another note");
    assert_eq!(
        store.corrections("a0000", "2017-02").await.unwrap().len(),
        1
    );
    assert_eq!(
        invoice_for(store, &config, "a0000", feb).await.unwrap(),
        inv
    );
}

/// Issue 12, part 3: a configuration version larger than one DynamoDB item (a 10,000-product
/// catalog) is stored and read back byte for byte, as current; storing it again is a no-op;
/// another body under the same version is refused; the handler stores it before rating.
pub async fn large_config_round_trips<S: Store>(store: &S) {
    use rater::model::ConfigKind;
    let body = large_catalog(10_000);
    assert!(body.len() > 1_000_000, "{} bytes", body.len());
    let config = RaterConfig::from_json(&body, ACCOUNTS, "test").expect("the validator accepts it");
    let version = config.catalog.version.clone();
    // Through the handler: a batch stores the versions it prices with.
    let export = export(3, 21);
    rate_batch(store, &config, request(&export, None, Mode::Interim))
        .await
        .unwrap();
    let stored = store
        .config(ConfigKind::Catalog, Some(&version))
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.body, config.catalog.to_json(), "read back whole");
    // Directly, made current, twice.
    for _ in 0..2 {
        store
            .put_config(ConfigKind::Catalog, "big-1", &body, true)
            .await
            .unwrap();
    }
    let current = store
        .config(ConfigKind::Catalog, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.version.as_str(), current.body == body),
        ("big-1", true)
    );
    let other = body.replacen("Copper 30", "Copper thirty", 1);
    let err = store
        .put_config(ConfigKind::Catalog, "big-1", &other, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, rater::StoreError::ConfigVersionConflict { .. }),
        "{err}"
    );
    let again = store
        .config(ConfigKind::Catalog, Some("big-1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        again.body == body,
        "a refused version left the stored one as it was"
    );
}

/// Issue 12, part 3: `#COMMITTED` grows by two attributes per batch. A batch that would take
/// it past its limit is refused before its lease, naming account, period and limit, with
/// nothing written; the period can still be finalized.
pub async fn full_partition_is_refused_before_the_lease<S: Store + Snapshot>(store: &S) {
    let mut config = config();
    // Room for a few batches with ids (the item's keys and version take about 50 bytes).
    config.committed_item_bytes_max = 400;
    let mut accepted = 0;
    let err = loop {
        let batch = line_with_id(&format!("r{accepted}"), "vm-a", "1", 1);
        let key = format!("fill-{accepted:03}-{}", "k".repeat(40));
        match rate_batch(
            store,
            &config,
            request(batch.as_bytes(), Some(&key), Mode::Interim),
        )
        .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 50, "the partition never filled");
    };
    assert!(accepted >= 2, "accepted {accepted}");
    match &err {
        RaterError::PartitionFull {
            account,
            period,
            batches,
            bytes,
            max,
            ..
        } => {
            assert_eq!((account.as_str(), period.as_str()), ("bu1user1", PERIOD));
            assert_eq!((*batches, *max), (accepted, 400));
            assert!(*bytes > 400);
        }
        e => panic!("expected PartitionFull, got {e}"),
    }
    assert_eq!(err.http_status(), 422);
    assert!(err.to_string().contains("over the limit of 400"), "{err}");
    // Nothing of the refused batch was written: not even its lease.
    let before = store.snapshot().await;
    let key = format!("fill-{accepted:03}-{}", "k".repeat(40));
    let batch = line_with_id(&format!("r{accepted}"), "vm-a", "1", 1);
    rate_batch(
        store,
        &config,
        request(batch.as_bytes(), Some(&key), Mode::Interim),
    )
    .await
    .unwrap_err();
    assert_eq!(store.snapshot().await, before, "a refused batch wrote");
    let inv = finalize(store, &config, "bu1user1", period())
        .await
        .unwrap();
    assert_eq!(inv.records, accepted as u64);
}

/// A request for `export` limited to the records of `window` (or to none).
pub fn request_in(export: &[u8], key: &str, window: Option<&str>) -> BatchRequest {
    BatchRequest {
        batch_id: Some(key.to_string()),
        format: None,
        period: window.map(|w| BillingPeriod::parse(w).unwrap()),
        account: None,
        mode: Mode::Interim,
        export: export.to_vec(),
    }
}

/// The example accounts book with `smb-tenant` billed by the day.
pub fn daily_config() -> RaterConfig {
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "smb-tenant" {
            a["billing_period"] = serde_json::json!("day");
        }
    }
    book["version"] = serde_json::json!("daily-1");
    let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "test").unwrap();
    c.clock = Arc::new(|| T0);
    c
}

/// One JSON Lines record with an id, of `account`, at `start` for an hour.
pub fn record_at(id: &str, account: &str, resource: &str, start: &str) -> String {
    let start: chrono::DateTime<chrono::Utc> = start.parse().unwrap();
    let end = start + chrono::Duration::hours(1);
    format!(
        r#"{{"record_id":"{id}","account":"{account}","resource":"{resource}","product":"copper","meter":"vm.running","quantity":"1","unit":"hours","start":"{}","end":"{}"}}"#,
        start.to_rfc3339(),
        end.to_rfc3339()
    )
}

/// Issue 12, addendum: a record is billed in the period of its account's kind that holds its
/// start, whatever period a request names. The same records sent for the month and again for
/// one day of it count once; once the month is final, a day's batch inside it is refused; an
/// account billed by the day gets one invoice per day, and closing one day leaves the next
/// open; a batch without a period spanning two months lands in both.
pub async fn records_billed_in_their_accounts_periods<S: Store + Snapshot>(store: &S) {
    let config = daily_config();
    let day14 = [
        record_at("m1", "bu1user1", "vm-1", "2017-02-14T09:00:00Z"),
        record_at("m2", "bu1user1", "vm-1", "2017-02-14T10:00:00Z"),
    ]
    .join("\n");
    let month = rate_batch(
        store,
        &config,
        request_in(day14.as_bytes(), "as-month", Some("2017-02")),
    )
    .await
    .unwrap();
    assert_eq!(month.duplicates_dropped, 0);
    let day = rate_batch(
        store,
        &config,
        request_in(day14.as_bytes(), "as-day", Some("2017-02-14")),
    )
    .await
    .unwrap();
    assert_eq!(
        day.duplicates_dropped, 2,
        "the day's records were counted by the month's batch"
    );
    let pu = store.period_usage("bu1user1", "2017-02").await.unwrap();
    let hours: rust_decimal::Decimal = pu.usage.totals.values().map(|t| t.quantity).sum();
    assert_eq!(hours, rust_decimal::Decimal::from(2), "billed once");
    assert_eq!(
        day.invoices[0].period_id, "2017-02",
        "a month account's invoice is its month's"
    );
    assert!(store
        .period_usage("bu1user1", "2017-02-14")
        .await
        .unwrap()
        .usage
        .totals
        .is_empty());

    // Once February is final, a day batch inside it is late usage, however it is sent.
    finalize(store, &config, "bu1user1", period())
        .await
        .unwrap();
    let before = store.snapshot().await;
    let late = record_at("m3", "bu1user1", "vm-1", "2017-02-20T09:00:00Z");
    for window in [Some("2017-02-20"), Some("2017-02"), None] {
        let key = format!("late-{}", window.unwrap_or("none"));
        let err = rate_batch(store, &config, request_in(late.as_bytes(), &key, window))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RaterError::PeriodClosed { ref period, .. } if period == "2017-02"),
            "{window:?}: {err}"
        );
    }
    assert_eq!(store.snapshot().await, before, "refused late usage wrote");

    // An account billed by the day: one partition and one invoice per day.
    let days = [
        record_at("d1", "smb-tenant", "web-1", "2017-02-14T09:00:00Z"),
        record_at("d2", "smb-tenant", "web-1", "2017-02-15T09:00:00Z"),
        record_at("d3", "smb-tenant", "web-1", "2017-02-15T10:00:00Z"),
    ]
    .join("\n");
    let r = rate_batch(
        store,
        &config,
        request_in(days.as_bytes(), "days", Some("2017-02")),
    )
    .await
    .unwrap();
    let periods: Vec<&str> = r.invoices.iter().map(|i| i.period_id.as_str()).collect();
    assert_eq!(periods, ["2017-02-14", "2017-02-15"]);
    assert_eq!((r.invoices[0].records, r.invoices[1].records), (1, 2));
    let again = rate_batch(
        store,
        &config,
        request_in(days.as_bytes(), "days-again", Some("2017-02-15")),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&again, RaterError::BadRecords(e) if e.errors[0].rule == RecordRule::OutsidePeriod { period: "2017-02-15".into() }),
        "the window still limits what a request may hold: {again}"
    );
    let day14 = BillingPeriod::parse("2017-02-14").unwrap();
    finalize(store, &config, "smb-tenant", day14).await.unwrap();
    let next = record_at("d4", "smb-tenant", "web-1", "2017-02-15T11:00:00Z");
    rate_batch(store, &config, request_in(next.as_bytes(), "day-15", None))
        .await
        .expect("the next day is open");
    let closed = record_at("d5", "smb-tenant", "web-1", "2017-02-14T11:00:00Z");
    let err = rate_batch(
        store,
        &config,
        request_in(closed.as_bytes(), "day-14", None),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RaterError::PeriodClosed { ref period, .. } if period == "2017-02-14"),
        "{err}"
    );

    // No window: a batch over the month's end lands in both months.
    let across = [
        record_at("x1", "bu1user1", "vm-9", "2017-03-31T23:00:00Z"),
        record_at("x2", "bu1user1", "vm-9", "2017-04-01T00:00:00Z"),
    ]
    .join("\n");
    let r = rate_batch(
        store,
        &config,
        request_in(across.as_bytes(), "across", None),
    )
    .await
    .unwrap();
    let periods: Vec<&str> = r.invoices.iter().map(|i| i.period_id.as_str()).collect();
    assert_eq!(periods, ["2017-03", "2017-04"]);
}

/// A store that panics in its next commit, or refuses its next ledger read with an error
/// whose text holds AWS internals (a table ARN): what a caller must never see. Or runs
/// `before_note` once, on the inner store, before its next note is issued: what another process
/// does between a correction's reads and its write.
pub struct Sabotaged<S> {
    pub inner: S,
    pub panic_on_commit: std::sync::atomic::AtomicBool,
    pub refuse_ledger: std::sync::atomic::AtomicBool,
    pub before_note: std::sync::Mutex<Option<NoteHook<S>>>,
}

/// See [`Sabotaged::before_note`].
pub type NoteHook<S> = Box<
    dyn for<'a> FnOnce(
            &'a S,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>
        + Send,
>;

pub const LEAKY_MESSAGE: &str = "dynamodb: ResourceNotFoundException: Requested resource not found: Table: arn:aws:dynamodb:eu-west-1:123456789012:table/ratecard-prod not found";

impl<S: Store> Sabotaged<S> {
    pub fn new(inner: S) -> Sabotaged<S> {
        Sabotaged {
            inner,
            panic_on_commit: false.into(),
            refuse_ledger: false.into(),
            before_note: std::sync::Mutex::new(None),
        }
    }
}

impl<S: Store + Snapshot + Sync> Snapshot for Sabotaged<S> {
    fn snapshot(&self) -> impl std::future::Future<Output = Vec<String>> + Send {
        self.inner.snapshot()
    }
}

impl<S: Store> Store for Sabotaged<S> {
    async fn ledger(&self, b: &str) -> Result<Option<rater::model::Ledger>, rater::StoreError> {
        if self.refuse_ledger.swap(false, Ordering::SeqCst) {
            return Err(rater::StoreError::Rejected {
                message: LEAKY_MESSAGE.into(),
            });
        }
        self.inner.ledger(b).await
    }
    async fn try_lease(
        &self,
        l: &rater::store::Lease,
        now: i64,
    ) -> Result<rater::store::LeaseOutcome, rater::StoreError> {
        self.inner.try_lease(l, now).await
    }
    async fn release(&self, b: &str, o: &str) -> Result<(), rater::StoreError> {
        self.inner.release(b, o).await
    }
    async fn put_chunks(&self, c: &[rater::model::UsageChunk]) -> Result<(), rater::StoreError> {
        self.inner.put_chunks(c).await
    }
    async fn sweep_chunks(&self, k: &rater::store::Keep) -> Result<(), rater::StoreError> {
        self.inner.sweep_chunks(k).await
    }
    async fn commit(&self, c: &rater::store::Commit) -> Result<(), rater::StoreError> {
        if self.panic_on_commit.swap(false, Ordering::SeqCst) {
            panic!("injected: a bug while committing");
        }
        self.inner.commit(c).await
    }
    async fn partitions(
        &self,
        b: &str,
        k: &[(String, String)],
    ) -> Result<Vec<rater::store::PartitionState>, rater::StoreError> {
        self.inner.partitions(b, k).await
    }
    async fn record_ids(
        &self,
        a: &str,
        p: &str,
        b: &str,
    ) -> Result<rater::store::RecordIds, rater::StoreError> {
        self.inner.record_ids(a, p, b).await
    }
    async fn period_usage(
        &self,
        a: &str,
        p: &str,
    ) -> Result<rater::store::PeriodUsage, rater::StoreError> {
        self.inner.period_usage(a, p).await
    }
    async fn final_invoice(
        &self,
        a: &str,
        p: &str,
    ) -> Result<Option<pricing::Invoice>, rater::StoreError> {
        self.inner.final_invoice(a, p).await
    }
    async fn counter(&self, i: &str) -> Result<u64, rater::StoreError> {
        self.inner.counter(i).await
    }
    async fn finalize(&self, f: &rater::store::Finalize) -> Result<(), rater::StoreError> {
        self.inner.finalize(f).await
    }
    async fn balance(&self, a: &str) -> Result<rater::model::Balance, rater::StoreError> {
        self.inner.balance(a).await
    }
    async fn final_statement(
        &self,
        a: &str,
        p: &str,
    ) -> Result<Option<pricing::Statement>, rater::StoreError> {
        self.inner.final_statement(a, p).await
    }
    async fn corrections(
        &self,
        a: &str,
        p: &str,
    ) -> Result<Vec<rater::model::StoredNote>, rater::StoreError> {
        self.inner.corrections(a, p).await
    }
    async fn late_markers(
        &self,
        a: &str,
    ) -> Result<Vec<rater::model::LateMarker>, rater::StoreError> {
        self.inner.late_markers(a).await
    }
    async fn billed_customers(&self, a: &str, p: &str) -> Result<Vec<String>, rater::StoreError> {
        self.inner.billed_customers(a, p).await
    }
    async fn resold_markers(
        &self,
        a: &str,
    ) -> Result<Vec<rater::model::ResoldMarker>, rater::StoreError> {
        self.inner.resold_markers(a).await
    }
    async fn clear_resold_marker(
        &self,
        a: &str,
        p: &str,
        v: u64,
    ) -> Result<bool, rater::StoreError> {
        self.inner.clear_resold_marker(a, p, v).await
    }
    async fn note_counter(&self, i: &str) -> Result<u64, rater::StoreError> {
        self.inner.note_counter(i).await
    }
    async fn issue_note(&self, w: &rater::store::NoteWrite) -> Result<(), rater::StoreError> {
        let hook = self
            .before_note
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(hook) = hook {
            hook(&self.inner).await;
        }
        self.inner.issue_note(w).await
    }
    async fn record_payment(
        &self,
        p: &rater::store::PaymentWrite,
    ) -> Result<rater::store::PaymentOutcome, rater::StoreError> {
        self.inner.record_payment(p).await
    }
    async fn payments(
        &self,
        a: &str,
    ) -> Result<Vec<rater::model::RecordedPayment>, rater::StoreError> {
        self.inner.payments(a).await
    }
    async fn history(&self, a: &str) -> Result<Vec<rater::model::DocRef>, rater::StoreError> {
        self.inner.history(a).await
    }
    async fn put_config(
        &self,
        k: rater::model::ConfigKind,
        v: &str,
        b: &str,
        c: bool,
    ) -> Result<(), rater::StoreError> {
        self.inner.put_config(k, v, b, c).await
    }
    async fn config(
        &self,
        k: rater::model::ConfigKind,
        v: Option<&str>,
    ) -> Result<Option<rater::store::ConfigItem>, rater::StoreError> {
        self.inner.config(k, v).await
    }
    async fn readings(&self) -> Result<pricing::import::Readings, rater::StoreError> {
        self.inner.readings().await
    }
    async fn merge_readings(&self, r: &pricing::import::Readings) -> Result<(), rater::StoreError> {
        self.inner.merge_readings(r).await
    }
    async fn fanout(&self, b: &str) -> Result<Option<(u64, String)>, rater::StoreError> {
        self.inner.fanout(b).await
    }
    async fn put_fanout(
        &self,
        b: &str,
        expected: Option<u64>,
        body: &str,
    ) -> Result<bool, rater::StoreError> {
        self.inner.put_fanout(b, expected, body).await
    }
}

/// Issue 12, part 1: a canonical record of 10^14 GB-months on a GB-hour meter (under the
/// record quantity cap) used to be accepted and committed, after which every invoice and
/// finalize of the account's period aborted on a multiplication overflow. It is refused with
/// its batch, naming the record, field, value and rule, and nothing is written; the account's
/// period stays invoiceable and can be finalized.
pub async fn overflowing_record_is_refused_before_writing<S: Store + Snapshot>(store: &S) {
    let config = config();
    let before = store.snapshot().await;
    let huge = line(
        "bu1user1",
        "vol-1",
        "small-disk",
        "volume.gbh",
        "100000000000000",
        "gigabyte_months",
        3,
    );
    let err = rate_batch(
        store,
        &config,
        request(huge.as_bytes(), None, Mode::Interim),
    )
    .await
    .unwrap_err();
    match &err {
        RaterError::BadRecords(b) => {
            let r = &b.errors[0];
            assert_eq!(
                (r.index, r.field, r.value.as_str()),
                (1, "quantity", "73000000000000000")
            );
            assert!(
                matches!(r.rule, RecordRule::LineQuantityTooLarge(_)),
                "{err}"
            );
        }
        e => panic!("expected BadRecords, got {e}"),
    }
    assert_eq!(store.snapshot().await, before, "a refused batch wrote");
    // Many records that add up past the bound in one batch are refused the same way.
    let many: String = (0..3)
        .map(|i| {
            line(
                "bu1user1",
                &format!("vol-{i}"),
                "small-disk",
                "volume.gbh",
                "3000000000000",
                "gigabyte_hours",
                4,
            ) + "\n"
        })
        .collect();
    let err = rate_batch(
        store,
        &config,
        request(many.as_bytes(), None, Mode::Interim),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "bad_records", "{err}");
    assert_eq!(store.snapshot().await, before, "a refused batch wrote");
    // The account's period still prices, takes usage and is finalized.
    let export = export(3, 41);
    rate_batch(store, &config, request(&export, None, Mode::Interim))
        .await
        .unwrap();
    let inv = finalize(store, &config, "bu1user1", period())
        .await
        .unwrap();
    assert_eq!(inv.check_totals(), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// The billing month (issue 14)

/// Two plain GBP accounts without tax or subscriptions (copper is 2.20 an hour): `a0000` with
/// no opening balance, `a0001` with 30.00 of prepaid credit. Figures in the scenario below are
/// computed by hand from these.
pub fn month_config(clock: &Arc<AtomicI64>) -> RaterConfig {
    let book = serde_json::json!({ "schema_version": 1, "version": "month-1", "accounts": [
        { "id": "a0000", "name": "Account 0" },
        { "id": "a0001", "name": "Account 1", "prepaid_credit": "30.00" },
        { "id": "a0002", "name": "Account 2 (no usage)" },
    ]});
    let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "test").unwrap();
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

/// `hours` of copper for `account` on day `day` of `month` (2017).
pub fn hours_of(account: &str, month: u32, day: u32, hours: u32) -> String {
    let start = format!("2017-{month:02}-{day:02}T00:00:00Z");
    let end = format!("2017-{month:02}-{day:02}T{:02}:00:00Z", hours.min(23));
    format!(
        r#"{{"account":"{account}","resource":"vm-1","product":"copper","meter":"vm.running","quantity":"{hours}","unit":"hours","start":"{start}","end":"{end}"}}"#
    ) + "\n"
}

pub fn payment(
    account: &str,
    date: &str,
    amount: &str,
    reference: &str,
) -> rater::month::PaymentInput {
    rater::month::PaymentInput {
        account: account.into(),
        date: format!("{date}T12:00:00Z").parse().unwrap(),
        amount: amount.parse().unwrap(),
        currency: "GBP".into(),
        reference: reference.into(),
        payee: None,
    }
}

fn d(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap()
}

/// Issue 14: two months of one provider. February: usage, a payment (recorded twice: once),
/// bad payments refused with nothing written, no close before the month ends (an operator may
/// override), the close (twice, and a payment after it refused); March: the balance brought
/// forward from February's final invoice, prepaid credit consumed across the two months and
/// never reused, a payment, the close; the history newest first; February cannot be finalized
/// again, and an out-of-order finalize is refused. Every figure is computed by hand.
pub async fn billing_month<S: Store + Snapshot>(store: &S) {
    use rater::month::{close, history, record_payment};
    use rater::store::PaymentOutcome;
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let config = month_config(&clock);
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let export = hours_of("a0000", 2, 3, 10) + &hours_of("a0001", 2, 4, 10);
    rate_batch(
        store,
        &config,
        request_in(export.as_bytes(), "feb", Some("2017-02")),
    )
    .await
    .unwrap();

    // Payments: recorded once, idempotent by reference; bad ones refused, nothing written.
    let p = payment("a0000", "2017-02-10", "5.00", "wire-1");
    assert_eq!(
        record_payment(store, &config, &p).await.unwrap(),
        PaymentOutcome::Recorded
    );
    assert_eq!(
        record_payment(store, &config, &p).await.unwrap(),
        PaymentOutcome::AlreadyRecorded
    );
    let before = store.snapshot().await;
    let bad = [
        (
            payment("a0000", "2017-02-10", "6.00", "wire-1"),
            "payment_conflict",
        ),
        (payment("a0000", "2017-02-10", "0", "wire-2"), "bad_request"),
        (
            payment("a0000", "2017-02-10", "-5.00", "wire-3"),
            "bad_request",
        ),
        (
            payment("a0000", "2017-02-10", "5.001", "wire-4"),
            "bad_request",
        ),
        (
            payment("nobody", "2017-02-10", "5.00", "wire-5"),
            "unknown_account",
        ),
        (
            rater::month::PaymentInput {
                currency: "EUR".into(),
                ..payment("a0000", "2017-02-10", "5.00", "wire-6")
            },
            "bad_request",
        ),
    ];
    for (p, code) in bad {
        let err = record_payment(store, &config, &p).await.unwrap_err();
        assert_eq!(err.code(), code, "{p:?}: {err}");
    }
    assert_eq!(store.snapshot().await, before, "a refused payment wrote");

    // No close before the month ends; an operator may override (not used here).
    let err = close(store, &config, feb, Default::default())
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("period_not_ended", 409));
    let err = finalize(store, &config, "a0000", feb).await.unwrap_err();
    assert_eq!(err.code(), "period_not_ended");
    assert_eq!(store.snapshot().await, before, "a refused close wrote");

    // February closes (the grace is the schedule's business; the clock is past the end).
    clock.store(1_488_600_000, Ordering::SeqCst); // 2017-03-04
    let report = close(store, &config, feb, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (
            report.accounts,
            report.finalized,
            report.already_final,
            report.skipped,
            report.failed
        ),
        (3, 2, 0, 1, 0)
    );
    assert_eq!(report.skipped_accounts, ["a0002"]);
    let again = close(store, &config, feb, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (again.finalized, again.already_final, again.skipped),
        (0, 2, 1)
    );
    let f0 = invoice_for(store, &config, "a0000", feb).await.unwrap();
    // a0000: 10 h x 2.20 = 22.00; paid 5.00; carried 0 - 5.00 + 22.00 = 17.00.
    assert_eq!(
        (
            f0.bill.total,
            f0.payments_total,
            f0.brought_forward,
            f0.carried_forward
        ),
        (d("22.00"), d("5.00"), d("0.00"), d("17.00"))
    );
    // Issued on the close's day (2017-03-04), due 30 days later (the default terms).
    let date = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    assert_eq!(
        (f0.issue_date, f0.due_date),
        (Some(date("2017-03-04")), Some(date("2017-04-03")))
    );
    let f1 = invoice_for(store, &config, "a0001", feb).await.unwrap();
    // a0001: 22.00 from its 30.00 of credit: nothing due, 8.00 of credit left.
    assert_eq!(
        (f1.credits_applied, f1.amount_due, f1.carried_forward),
        (d("22.00"), d("0.00"), d("0.00"))
    );
    assert_eq!(
        (f1.prepaid_available, f1.prepaid_remaining),
        (Some(d("30.00")), Some(d("8.00")))
    );
    // A payment dated in the closed month would be on no invoice: refused.
    let late = payment("a0000", "2017-02-27", "1.00", "wire-late");
    let err = record_payment(store, &config, &late).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("period_closed", 409));
    let err = finalize(store, &config, "a0000", feb).await.unwrap_err();
    assert_eq!(err.code(), "already_finalized");

    // March: February's balance brought forward, the credit left (8.00) used, not 30.00 again.
    let export = hours_of("a0000", 3, 3, 5) + &hours_of("a0001", 3, 4, 5);
    rate_batch(
        store,
        &config,
        request_in(export.as_bytes(), "mar", Some("2017-03")),
    )
    .await
    .unwrap();
    record_payment(
        store,
        &config,
        &payment("a0000", "2017-03-08", "17.00", "wire-8"),
    )
    .await
    .unwrap();
    let interim = invoice_for(store, &config, "a0000", mar).await.unwrap();
    // a0000: 5 h = 11.00; brought 17.00, paid 17.00: carried 11.00.
    assert_eq!(
        (
            interim.brought_forward,
            interim.payments_total,
            interim.bill.total,
            interim.carried_forward
        ),
        (d("17.00"), d("17.00"), d("11.00"), d("11.00"))
    );
    // To date: nothing here is prorated (no subscription), so the same figures, marked as of.
    let at = "2017-03-10T00:00:00Z";
    let how = rater::invoices::Pricing::interim(Some(at), mar, clock.load(Ordering::SeqCst));
    let to_date = rater::invoices::invoice_as(store, &config, "a0000", mar, how.unwrap())
        .await
        .unwrap();
    assert_eq!(to_date.as_of, Some(at.parse().unwrap()));
    assert_eq!(to_date.bill.total, d("11.00"));
    let outside = rater::invoices::Pricing::interim(Some("2017-04-02T00:00:00Z"), mar, 0);
    assert_eq!(outside.unwrap_err().code(), "bad_request");
    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = close(store, &config, mar, Default::default())
        .await
        .unwrap();
    assert_eq!((report.finalized, report.skipped), (2, 1));
    let m1 = invoice_for(store, &config, "a0001", mar).await.unwrap();
    // a0001: 11.00 against the 8.00 left: 3.00 due.
    assert_eq!(
        (m1.credits_applied, m1.amount_due, m1.carried_forward),
        (d("8.00"), d("3.00"), d("3.00"))
    );
    let numbers: Vec<String> = history(store, &config, "a0000")
        .await
        .unwrap()
        .into_iter()
        .map(|h| format!("{} {}", h.period, h.number))
        .collect();
    assert_eq!(
        numbers,
        ["2017-03 test-000003", "2017-02 test-000001"],
        "newest first"
    );
    // February cannot be finalized after March (the chain would bring forward the wrong
    // balance): for a0002, which had nothing in February, a forced finalize is out of order
    // once its March is final.
    rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0002", 4, 2, 1).as_bytes(),
            "apr",
            Some("2017-04"),
        ),
    )
    .await
    .unwrap();
    let how = rater::invoices::Finalizing {
        before_period_end: true,
    };
    rater::invoices::finalize_with(
        store,
        &config,
        "a0002",
        BillingPeriod::parse("2017-04").unwrap(),
        how,
    )
    .await
    .unwrap();
    let err = finalize(store, &config, "a0002", feb).await.unwrap_err();
    assert_eq!(err.code(), "finalized_out_of_order", "{err}");
}

/// Usage and a payment that come into a period after its close skipped the account are billed,
/// not lost: a direct finalize of the next period is refused (`earlier_period_open`, nothing
/// written) and the next close finalizes the skipped period first, then its own, the second
/// bringing the first's balance forward. Usage dated in a period the account's chain has
/// passed (a later period final) is refused: early (nothing written) when that period ended a
/// whole period ago, else by the commit's own condition. Figures by hand: copper is 2.20 an
/// hour.
pub async fn skipped_period_billed_first<S: Store + Snapshot>(store: &S) {
    use rater::month::{close, record_payment};
    use rater::store::PaymentOutcome;
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let config = month_config(&clock);
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let early = rater::invoices::Finalizing {
        before_period_end: true,
    };
    rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0000", 2, 3, 10).as_bytes(),
            "feb",
            Some("2017-02"),
        ),
    )
    .await
    .unwrap();
    let report = close(store, &config, feb, Default::default())
        .await
        .unwrap();
    assert!(
        report.skipped_accounts.contains(&"a0002".to_string()),
        "{report:?}"
    );

    // After February's close: a late export of a0002's February (4 h) and a bank payment
    // dated in February (3.00). Both are taken: no invoice of a0002 has passed February.
    rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0002", 2, 20, 4).as_bytes(),
            "feb-late",
            Some("2017-02"),
        ),
    )
    .await
    .unwrap();
    let p = payment("a0002", "2017-02-27", "3.00", "wire-a2");
    assert_eq!(
        record_payment(store, &config, &p).await.unwrap(),
        PaymentOutcome::Recorded
    );
    // March for a0002 (2 h), then an operator's early finalize of March: refused, February
    // is to bill first.
    rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0002", 3, 5, 2).as_bytes(),
            "mar",
            Some("2017-03"),
        ),
    )
    .await
    .unwrap();
    let before = store.snapshot().await;
    let err = rater::invoices::finalize_with(store, &config, "a0002", mar, early)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("earlier_period_open", 409),
        "{err}"
    );
    assert!(err.to_string().contains("2017-02"), "{err}");
    assert_eq!(store.snapshot().await, before, "a refused finalize wrote");

    // March's close: a0002's February first, then its March.
    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = close(store, &config, mar, Default::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let a2: Vec<&str> = report
        .issued
        .iter()
        .filter(|c| c.account == "a0002")
        .map(|c| c.period.as_str())
        .collect();
    assert_eq!(a2, ["2017-02", "2017-03"], "{report:?}");
    let f = invoice_for(store, &config, "a0002", feb).await.unwrap();
    assert_eq!(f.kind, pricing::InvoiceKind::Final);
    // February: 4 h x 2.20 = 8.80; paid 3.00; carried 0 + 8.80 - 3.00 = 5.80.
    assert_eq!(
        (
            f.bill.total,
            f.payments_total,
            f.brought_forward,
            f.carried_forward
        ),
        (d("8.80"), d("3.00"), d("0.00"), d("5.80"))
    );
    let m = invoice_for(store, &config, "a0002", mar).await.unwrap();
    // March: 2 h x 2.20 = 4.40; brought 5.80; carried 10.20.
    assert_eq!(
        (m.kind, m.bill.total, m.brought_forward, m.carried_forward),
        (
            pricing::InvoiceKind::Final,
            d("4.40"),
            d("5.80"),
            d("10.20")
        )
    );
    let numbers: Vec<&str> = report
        .issued
        .iter()
        .filter(|c| c.account == "a0002")
        .map(|c| c.number.as_str())
        .collect();
    assert_eq!(
        numbers,
        [f.number.clone().unwrap(), m.number.clone().unwrap()],
        "February is numbered before March"
    );

    // a0002's chain is at March: usage dated in January is refused before anything is
    // written (January's next period ended a month ago).
    let before = store.snapshot().await;
    let err = rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0002", 1, 9, 3).as_bytes(),
            "jan-late",
            Some("2017-01"),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("period_closed", 409),
        "{err}"
    );
    assert!(
        err.to_string().contains(&m.number.clone().unwrap()),
        "{err}"
    );
    assert_eq!(store.snapshot().await, before, "a refused batch wrote");

    // a0001 was skipped in February and March; its April is finalized early by an operator.
    // Usage dated in March then reaches the commit (March's next period, April, has not
    // ended), whose condition on a0001's balance refuses it: never counted.
    rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0001", 4, 2, 1).as_bytes(),
            "apr",
            Some("2017-04"),
        ),
    )
    .await
    .unwrap();
    let apr = BillingPeriod::parse("2017-04").unwrap();
    rater::invoices::finalize_with(store, &config, "a0001", apr, early)
        .await
        .unwrap();
    let err = rate_batch(
        store,
        &config,
        request_in(
            hours_of("a0001", 3, 9, 3).as_bytes(),
            "mar-late",
            Some("2017-03"),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "period_closed", "{err}");
    let usage = store.period_usage("a0001", "2017-03").await.unwrap();
    assert!(usage.usage.totals.is_empty(), "{:?}", usage.usage);
}

/// The example book with a second customer of Acme's (`acme-lab`, no subscription), as
/// version `lab-1`.
pub fn config_with_acme_lab(clock: &Arc<AtomicI64>) -> RaterConfig {
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    book["accounts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            { "id": "acme-lab", "name": "Lab of Acme's customer", "reseller": "acme",
              "region": "lon1", "tax_jurisdiction": "de" }
        ));
    book["version"] = serde_json::json!("lab-1");
    let mut c = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

/// `hours` of copper for `account` from 2017-`month`-`day` 00:00, one record with an id.
pub fn copper_hours(id: &str, account: &str, month: u32, day: u32, hours: u32) -> String {
    format!(
        r#"{{"record_id":"{id}","account":"{account}","resource":"vm-{id}","product":"copper","meter":"vm.running","quantity":"{hours}","unit":"hours","start":"2017-{month:02}-{day:02}T00:00:00Z","end":"2017-{month:02}-{day:02}T{hours:02}:00:00Z"}}"#
    ) + "\n"
}

/// Two customers of one reseller bring a period its first usage in one batch: both mark it
/// open in the reseller's balance, one update on DynamoDB (which refuses an update that sets
/// an attribute twice). And a `final` batch of an account with an earlier period to bill is
/// refused before anything is written, instead of committing and then failing its finals.
pub async fn one_resellers_customers_mark_a_period_once<S: Store + Snapshot>(store: &S) {
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let config = config_with_acme_lab(&clock);
    let export =
        copper_hours("s1", "acme-shop", 2, 3, 2) + &copper_hours("l1", "acme-lab", 2, 3, 3);
    rate_batch(
        store,
        &config,
        request_in(export.as_bytes(), "two", Some("2017-02")),
    )
    .await
    .unwrap();
    let open = |b: rater::model::Balance| b.open.into_iter().collect::<Vec<String>>();
    assert_eq!(
        open(store.balance("reseller-acme").await.unwrap()),
        ["2017-02"]
    );
    assert_eq!(open(store.balance("acme-lab").await.unwrap()), ["2017-02"]);

    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let before = store.snapshot().await;
    let req = BatchRequest {
        mode: Mode::Final,
        ..request_in(
            copper_hours("l2", "acme-lab", 3, 3, 1).as_bytes(),
            "lab-march-final",
            Some("2017-03"),
        )
    };
    let err = rate_batch(store, &config, req).await.unwrap_err();
    assert_eq!(
        (err.code(), err.http_status()),
        ("earlier_period_open", 409),
        "{err}"
    );
    assert_eq!(
        store.snapshot().await,
        before,
        "a refused final batch wrote"
    );
}

/// A reseller's statement already final for February, and a customer skipped by February's
/// close whose first February usage comes after: the reseller's next statement waits for that
/// customer's February invoice (`customer_open`), else later February usage of the customer
/// would reach no statement. March's close then bills it all: the customer's February first,
/// the reseller's wholesale note on February (10 h x 2.20 x 1.17 = EUR 25.74, reverse-charged),
/// the reseller's March.
pub async fn reseller_statement_waits_for_a_late_customer<S: Store>(store: &S) {
    use rater::month::close;
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let config = config_with_acme_lab(&clock);
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let report = close(store, &config, feb, Default::default())
        .await
        .unwrap();
    assert!(
        report.issued.iter().any(|c| c.account == "reseller-acme"),
        "{report:?}"
    );
    assert!(
        report.skipped_accounts.iter().any(|a| a == "acme-lab"),
        "{report:?}"
    );
    let late = copper_hours("lab-feb", "acme-lab", 2, 20, 10);
    rate_batch(
        store,
        &config,
        request_in(late.as_bytes(), "lab-feb", Some("2017-02")),
    )
    .await
    .unwrap();

    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
                                                  // acme-shop's March (its subscription) is out: only acme-lab's February is open.
    finalize(store, &config, "acme-shop", mar).await.unwrap();
    let err = finalize(store, &config, "reseller-acme", mar)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "customer_open", "{err}");
    assert!(err.to_string().contains("acme-lab"), "{err}");

    let report = close(store, &config, mar, Default::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(
        report
            .issued
            .iter()
            .any(|c| c.account == "acme-lab" && c.period == "2017-02"),
        "{report:?}"
    );
    let notes = rater::notes::notes_of(store, "reseller-acme", "2017-02")
        .await
        .unwrap();
    let net: rust_decimal::Decimal = notes.iter().map(|n| n.net).sum();
    assert_eq!(net, d("25.74"), "{notes:?}");
    let statement = invoice_for(store, &config, "reseller-acme", mar)
        .await
        .unwrap();
    assert_eq!(statement.kind, InvoiceKind::Final);
    assert!(store
        .balance("reseller-acme")
        .await
        .unwrap()
        .open
        .is_empty());
}

/// A crash to inject: after how many writes, and how to arm (`Some(k)`) and heal (`None`)
/// the store.
pub type Crash<'a> = (usize, &'a dyn Fn(Option<usize>));

/// Late usage of two of a reseller's customers (policy `note`) for February, after the
/// reseller's March statement: both customers' notes go out at once, the commit marks
/// February in the reseller's account once (one DynamoDB item for both), and April's close
/// bills the reseller a wholesale note on its February statement, however many statements
/// ago (it corrected only its last one, March, and the provider never billed this usage).
/// Without `subscription` (acme-shop's DDoS plan), its February paid, the reseller has
/// nothing to bill after February: its closes skip it, and still issue the note (it waited
/// for a statement that never came). Figures by hand, wholesale copper 2.20 an hour at 1.17 EUR per GBP, rounded
/// per line: acme-shop 2 h -> 3 h is 5.15 -> 7.72, +2.57; acme-lab 3 h -> 13 h is 7.72 ->
/// 33.46, +25.74; the note is EUR 28.31 (reverse-charged, no tax). Then 2 h more of
/// acme-lab's in May: 13 h -> 15 h is 33.46 -> 38.61, a second note of 5.15 at May's close.
/// With `crash` = (k, arm): April's close first runs with a crash after k writes (`arm`
/// sets and heals it), then again: the same figures, each note once. Answers whether that
/// first close crashed.
pub async fn resellers_old_statement_bills_late_usage<S: Store>(
    store: &S,
    subscription: bool,
    crash: Option<Crash<'_>>,
) -> bool {
    use rater::month::close;
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    let accounts = book["accounts"].as_array_mut().unwrap();
    accounts.push(serde_json::json!(
        { "id": "acme-lab", "name": "Lab of Acme's customer", "reseller": "acme",
          "region": "lon1", "tax_jurisdiction": "de" }
    ));
    for a in accounts.iter_mut() {
        if a["reseller"] == "acme" {
            a["late_usage"] = serde_json::json!("note");
            if !subscription {
                a["subscriptions"] = serde_json::json!([]);
            }
        }
    }
    book["version"] = serde_json::json!(if subscription {
        "lab-late-1"
    } else {
        "lab-late-nosub-1"
    });
    let mut config = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let at = clock.clone();
    config.clock = Arc::new(move || at.load(Ordering::SeqCst));
    let period = |id: &str| BillingPeriod::parse(id).unwrap();
    let rate = |export: String, key: &'static str| {
        let config = &config;
        async move { rate_batch(store, config, request_in(export.as_bytes(), key, None)).await }
    };
    let close_at = |now: i64, p: &'static str| {
        let config = &config;
        let clock = &clock;
        async move {
            clock.store(now, Ordering::SeqCst);
            let report = close(store, config, period(p), Default::default())
                .await
                .unwrap();
            assert_eq!(report.failed, 0, "{report:?}");
            report
                .issued
                .iter()
                .any(|c| c.account == "reseller-acme" && c.period == p)
        }
    };
    let notes = |p: &'static str| async move {
        rater::notes::notes_of(store, "reseller-acme", p)
            .await
            .unwrap()
            .iter()
            .map(|n| (n.net, n.total))
            .collect::<Vec<_>>()
    };
    rate(
        copper_hours("s1", "acme-shop", 2, 3, 2) + &copper_hours("l1", "acme-lab", 2, 3, 3),
        "feb",
    )
    .await
    .unwrap();
    if !subscription {
        // Paid in full (5.15 + 7.72 = EUR 12.87): nothing carries into March.
        let paid = rater::month::PaymentInput {
            currency: "EUR".into(),
            ..payment("reseller-acme", "2017-02-27", "12.87", "acme-feb")
        };
        rater::month::record_payment(store, &config, &paid)
            .await
            .unwrap();
    }
    assert!(close_at(1_488_600_000, "2017-02").await); // 2017-03-04
    assert_eq!(close_at(1_491_300_000, "2017-03").await, subscription); // 2017-04-04

    clock.store(1_491_800_000, Ordering::SeqCst); // 2017-04-10
    let late =
        copper_hours("s2", "acme-shop", 2, 20, 1) + &copper_hours("l2", "acme-lab", 2, 20, 10);
    let resp = rate(late, "late").await.unwrap();
    assert_eq!(resp.late.len(), 2, "{:?}", resp.late);
    assert!(
        resp.late.iter().all(|l| l.notes.len() == 1),
        "{:?}",
        resp.late
    );
    let markers = store.resold_markers("reseller-acme").await.unwrap();
    assert_eq!(
        markers,
        vec![rater::model::ResoldMarker {
            period_id: "2017-02".into(),
            version: 1,
            settled: 0,
        }]
    );

    let mut crashed = false;
    if let Some((k, arm)) = crash {
        arm(Some(k));
        clock.store(1_493_900_000, Ordering::SeqCst);
        // Some accounts fail (or the whole close does): the rerun below finishes it.
        crashed = close(store, &config, period("2017-04"), Default::default())
            .await
            .map_or(true, |r| r.failed > 0);
        arm(None);
    }
    close_at(1_493_900_000, "2017-04").await; // 2017-05-04
    assert_eq!(
        store
            .final_invoice("reseller-acme", "2017-04")
            .await
            .unwrap()
            .is_some(),
        subscription
    );
    assert_eq!(notes("2017-02").await, vec![(d("28.31"), d("28.31"))]);
    assert!(notes("2017-03").await.is_empty());
    assert!(store
        .resold_markers("reseller-acme")
        .await
        .unwrap()
        .is_empty());
    // Again: nothing more.
    close_at(1_493_900_000, "2017-04").await;
    assert_eq!(notes("2017-02").await.len(), 1);

    // More late usage into the period its marker was settled for: pending again.
    clock.store(1_494_400_000, Ordering::SeqCst); // 2017-05-10
    let resp = rate(copper_hours("l3", "acme-lab", 2, 21, 2), "late-may")
        .await
        .unwrap();
    assert_eq!(resp.late.len(), 1, "{:?}", resp.late);
    assert_eq!(
        store.resold_markers("reseller-acme").await.unwrap(),
        vec![rater::model::ResoldMarker {
            period_id: "2017-02".into(),
            version: 2,
            settled: 1,
        }]
    );
    // May's statement brings April's note forward, with or without usage.
    assert!(close_at(1_496_600_000, "2017-05").await); // 2017-06-04
    assert_eq!(
        notes("2017-02").await,
        vec![(d("28.31"), d("28.31")), (d("5.15"), d("5.15"))]
    );
    crashed
}

/// Issue 14: a close that crashes after k finalizations (k = 0, 1, 2), then a rerun and a
/// concurrent second close: every account finalized once, numbers gapless.
pub async fn close_crash_then_rerun<S, F, Fut>(new_store: F)
where
    S: Store + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let n = 6;
    let feb = period();
    for k in 0..3 {
        let store = Arc::new(FaultyStore::new(new_store().await));
        let clock = manual_clock();
        let config = Arc::new(many_accounts_config(n, &clock));
        rate_batch(
            &*store,
            &config,
            request(&many_accounts_export(n, 51), None, Mode::Interim),
        )
        .await
        .unwrap();
        // Each finalize is one write (the config versions were stored by the batch).
        store.crash_after(k);
        let report = rater::month::close(&*store, &config, feb, Default::default())
            .await
            .unwrap();
        assert_eq!(
            (report.finalized as usize, report.failed as usize),
            (k, n - k),
            "k={k}"
        );
        assert!(report.failures.iter().all(|f| f.retryable), "k={k}");
        store.heal();
        let (a, b) = {
            let (s1, s2, c1, c2) = (store.clone(), store.clone(), config.clone(), config.clone());
            let t1 = tokio::spawn(async move {
                rater::month::close(&*s1, &c1, feb, Default::default()).await
            });
            let t2 = tokio::spawn(async move {
                rater::month::close(&*s2, &c2, feb, Default::default()).await
            });
            (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap())
        };
        assert_eq!((a.failed, b.failed), (0, 0), "k={k}");
        assert_eq!(
            a.finalized + b.finalized,
            (n - k) as u64,
            "k={k}: each finalized once"
        );
        let mut numbers = Vec::new();
        for i in 0..n {
            let inv = invoice_for(&*store, &config, &many_account(i), feb)
                .await
                .unwrap();
            numbers.push(inv.number.unwrap());
        }
        numbers.sort();
        let want: Vec<String> = (1..=n as u64)
            .map(|i| rater::store::invoice_number("test", i))
            .collect();
        assert_eq!(numbers, want, "k={k}: gapless");
    }
}

/// [`month_config`]'s accounts with late-usage policies: `a0000` takes a note, `a0001` (30.00
/// of prepaid credit) bills late usage on its next invoice, `a0002` keeps the catalog's
/// `refuse`. `copper` is the price of an hour of copper (2.2000 in the example catalog; a
/// corrected catalog changes it, under another version).
pub fn late_config(clock: &Arc<AtomicI64>, copper: Option<&str>) -> RaterConfig {
    let book = serde_json::json!({ "schema_version": 1, "version": "late-1", "accounts": [
        { "id": "a0000", "name": "Account 0", "late_usage": "note" },
        { "id": "a0001", "name": "Account 1", "prepaid_credit": "30.00", "late_usage": "next_period" },
        { "id": "a0002", "name": "Account 2" },
    ]});
    let mut catalog: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
    if let Some(price) = copper {
        catalog["version"] = serde_json::json!("2017-02.2-corrected");
        for p in catalog["products"].as_array_mut().unwrap() {
            if p["id"] == "copper" {
                p["charges"][0]["price"]["unit_price"] = serde_json::json!(price);
            }
        }
    }
    let mut c = RaterConfig::from_json(&catalog.to_string(), &book.to_string(), "test").unwrap();
    let clock = clock.clone();
    c.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    c
}

/// Issue 14: late usage after a close under each policy, and a re-rate under a corrected
/// catalog. Every figure is computed by hand from 2.20 an hour of copper (2.00 corrected), no
/// tax:
/// - February: 10 h each (22.00); closed: `test-000001..3`; a0001 uses 22.00 of its 30.00.
/// - Late usage for February: a0002's (`refuse`) is refused, nothing written; a0000's 2 h
///   (`note`) issue debit note `test-N000001` of 4.40 against `test-000001` at once (a replay
///   issues nothing more), 1 h more issues `test-N000002` of 2.20; a0001's 3 h
///   (`next_period`) wait for March, whose invoice bills them as 6.60 of adjustments: March
///   is 5 h (11.00) + 6.60 = 17.60, less the 8.00 of credit left = 9.60 due.
/// - A re-rate of a0002's February at 2.00: credit note `test-N000003` of -2.00 (20.00 less
///   22.00); again: nothing. A re-rate of a period without a final invoice is refused.
/// - March's close: a0000 brings forward 22.00 + 4.40 + 2.20 = 28.60, a0002 22.00 - 2.00 =
///   20.00; February's invoices are unchanged; late usage for February after March's close
///   goes to April (2.20).
pub async fn late_usage_and_rerate<S: Store + Snapshot>(store: &S) {
    use pricing::{NoteKind, NoteReason};
    use rater::month::close;
    use rater::notes::{correct, notes_of};
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let config = late_config(&clock, None);
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let mar = BillingPeriod::parse("2017-03").unwrap();
    let rate = |export: String, key: &'static str| {
        let config = &config;
        async move { rate_batch(store, config, request_in(export.as_bytes(), key, None)).await }
    };
    let export =
        hours_of("a0000", 2, 3, 10) + &hours_of("a0001", 2, 3, 10) + &hours_of("a0002", 2, 3, 10);
    rate(export, "feb").await.unwrap();
    clock.store(1_488_600_000, Ordering::SeqCst); // 2017-03-04
    let report = close(store, &config, feb, Default::default())
        .await
        .unwrap();
    assert_eq!((report.finalized, report.failed), (3, 0), "{report:?}");
    let feb_final = |a: &'static str| {
        let config = &config;
        async move { invoice_for(store, config, a, feb).await.unwrap() }
    };
    let f0 = feb_final("a0000").await;
    assert_eq!(
        (f0.number.as_deref(), f0.bill.total),
        (Some("test-000001"), d("22.00"))
    );

    // refuse: the whole batch, naming the invoice; nothing written.
    clock.store(1_488_700_000, Ordering::SeqCst); // 2017-03-05
    let before = store.snapshot().await;
    let err = rate(hours_of("a0002", 2, 20, 1), "late-refused")
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("period_closed", 409));
    assert!(err.to_string().contains("test-000003"), "{err}");
    assert_eq!(store.snapshot().await, before, "a refused late batch wrote");

    // note and next_period, in one batch.
    let late = hours_of("a0000", 2, 20, 2) + &hours_of("a0001", 2, 20, 3);
    let resp = rate(late.clone(), "late-1").await.unwrap();
    assert_eq!(resp.late.len(), 2, "{:?}", resp.late);
    let (l0, l1) = (&resp.late[0], &resp.late[1]);
    assert_eq!(
        (l0.account.as_str(), l0.period.as_str(), l0.invoice.as_str()),
        ("a0000", "2017-02", "test-000001")
    );
    assert_eq!(l0.policy, pricing::LateUsagePolicy::Note);
    assert_eq!(l0.notes.len(), 1);
    let n1 = &l0.notes[0];
    assert_eq!(
        (
            n1.number.as_deref(),
            n1.kind,
            n1.reason,
            n1.corrects.as_str()
        ),
        (
            Some("test-N000001"),
            NoteKind::Debit,
            NoteReason::LateUsage,
            "test-000001"
        )
    );
    // 2 h of copper at 2.20.
    assert_eq!((n1.net, n1.total), (d("4.40"), d("4.40")));
    let line = n1.lines().next().unwrap();
    assert_eq!(
        (line.product.as_str(), line.quantity, line.amount),
        ("copper", d("2"), d("4.40"))
    );
    n1.check_totals().unwrap();
    assert_eq!(
        (l1.account.as_str(), l1.policy),
        ("a0001", pricing::LateUsagePolicy::NextPeriod)
    );
    assert!(l1.notes.is_empty());
    // A replay: the same outcome, nothing issued again.
    let again = rate(late, "late-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.late, resp.late);
    let resp = rate(hours_of("a0000", 2, 21, 1), "late-2").await.unwrap();
    let n2 = &resp.late[0].notes[1];
    assert_eq!(
        (n2.number.as_deref(), n2.total),
        (Some("test-N000002"), d("2.20"))
    );
    // The final invoice is never edited; its notes stand beside it.
    assert_eq!(feb_final("a0000").await, f0);
    let notes = notes_of(store, "a0000", "2017-02").await.unwrap();
    let standing = pricing::note::standing(&f0, &notes).unwrap();
    assert_eq!(standing.total, d("28.60"));

    // March: a0001's February late usage on its interim invoice, as adjustments.
    rate(hours_of("a0001", 3, 3, 5), "mar").await.unwrap();
    let m1 = invoice_for(store, &config, "a0001", mar).await.unwrap();
    let adj = m1
        .bill
        .sections
        .iter()
        .find(|s| s.name == "Adjustments")
        .expect("an Adjustments section");
    assert_eq!(adj.total, d("6.60"), "{adj:?}");
    assert!(
        adj.lines[0].description.contains("2017-02"),
        "names the period: {adj:?}"
    );
    assert_eq!(
        (m1.bill.total, m1.credits_applied, m1.amount_due),
        (d("17.60"), d("8.00"), d("9.60"))
    );

    // A re-rate under a corrected catalog: a credit note, then nothing.
    let corrected = late_config(&clock, Some("2.0000"));
    let n3 = correct(
        store,
        &corrected,
        "a0002",
        feb,
        NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (
            n3.number.as_deref(),
            n3.kind,
            n3.total,
            n3.catalog_version.as_str()
        ),
        (
            Some("test-N000003"),
            NoteKind::Credit,
            d("-2.00"),
            "2017-02.2-corrected"
        )
    );
    let none = correct(
        store,
        &corrected,
        "a0002",
        feb,
        NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap();
    assert!(
        none.is_none(),
        "a re-rate that changes nothing issues nothing: {none:?}"
    );
    let before = store.snapshot().await;
    let err = correct(
        store,
        &corrected,
        "a0002",
        mar,
        NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("no_final_invoice", 404));
    let err = correct(
        store,
        &corrected,
        "nobody",
        feb,
        NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "unknown_account");
    assert_eq!(store.snapshot().await, before, "a refused correction wrote");

    // March closes: notes brought forward, adjustments billed once.
    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let report = close(store, &config, mar, Default::default())
        .await
        .unwrap();
    assert_eq!((report.finalized, report.failed), (3, 0), "{report:?}");
    let m0 = invoice_for(store, &config, "a0000", mar).await.unwrap();
    assert_eq!(
        (m0.brought_forward, m0.bill.total, m0.carried_forward),
        (d("28.60"), d("0.00"), d("28.60"))
    );
    let m1 = invoice_for(store, &config, "a0001", mar).await.unwrap();
    assert_eq!(m1.number.as_deref(), Some("test-000005"));
    assert_eq!(
        (m1.bill.total, m1.amount_due, m1.carried_forward),
        (d("17.60"), d("9.60"), d("9.60"))
    );
    let m2 = invoice_for(store, &config, "a0002", mar).await.unwrap();
    assert_eq!(
        (m2.brought_forward, m2.carried_forward),
        (d("20.00"), d("20.00"))
    );
    // The adjustment is now an unnumbered correction of February's invoice, billed on March's.
    let c1 = store.corrections("a0001", "2017-02").await.unwrap();
    assert_eq!(c1.len(), 1);
    assert_eq!(
        (
            c1[0].note.number.as_deref(),
            c1[0].billed_on.as_deref(),
            c1[0].note.total
        ),
        (None, Some("test-000005"), d("6.60"))
    );
    assert!(store.late_markers("a0001").await.unwrap().is_empty());
    // Late usage for February after March's close: April's adjustments, 1 h = 2.20.
    rate(hours_of("a0001", 2, 22, 1), "late-3").await.unwrap();
    let apr = BillingPeriod::parse("2017-04").unwrap();
    let a1 = invoice_for(store, &config, "a0001", apr).await.unwrap();
    let adj = a1
        .bill
        .sections
        .iter()
        .find(|s| s.name == "Adjustments")
        .unwrap();
    assert_eq!(adj.total, d("2.20"), "{adj:?}");

    let history: Vec<String> = rater::month::history(store, &config, "a0000")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.number)
        .collect();
    assert_eq!(
        history,
        ["test-000004", "test-N000002", "test-N000001", "test-000001"]
    );
}

/// bu1user1, the provider's customer in February, is Nimbus's from March. Nimbus's first
/// invoice (March) brings forward nothing of February's balance: it is handed over to the
/// provider, still owed to it, and a payment to the provider (`payee`) settles it on no invoice
/// of Nimbus's. February's debit note for usage that comes in after Nimbus's March invoice is
/// the provider's, and owed to the provider: Nimbus's April invoice brings forward March's
/// carried-forward and nothing of it. The account's statement shows all of it and reconciles.
/// Every expected figure is another document's (February's carried-forward, March's) or by
/// hand (the note).
pub async fn former_issuers_late_note_is_owed_to_it<S: Store>(store: &S) {
    use rater::month::{record_payment, PaymentInput};
    use rater::store::PaymentOutcome;
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let direct = bu1_book(CATALOG, None, "bu1-direct", &clock);
    let moved = bu1_book(CATALOG, Some("nimbus"), "bu1-nimbus", &clock);
    let final_of = |p: &'static str| async move {
        store
            .final_invoice("bu1user1", p)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no final invoice of {p}"))
    };
    let gbp = |reference: &str, date: &str, amount: rust_decimal::Decimal, payee: Option<&str>| {
        PaymentInput {
            amount,
            payee: payee.map(str::to_string),
            ..payment("bu1user1", date, "1", reference)
        }
    };

    rate_batch(
        store,
        &direct,
        request_in(
            copper_hours("f1", "bu1user1", 2, 3, 5).as_bytes(),
            "feb",
            None,
        ),
    )
    .await
    .unwrap();
    close_ok(store, &clock, 1_488_600_000, &direct, "2017-02").await; // 2017-03-04
    let february = final_of("2017-02").await;
    assert!(february.number.as_deref().unwrap().starts_with("prov-"));
    let owed = february.carried_forward;
    assert!(owed > rust_decimal::Decimal::ZERO, "{february:?}");
    // Paid to the provider after the move, before Nimbus's first invoice: on none of
    // Nimbus's invoices.
    let paid_feb = gbp("prov-feb", "2017-03-10", owed, Some("prov"));
    assert_eq!(
        record_payment(store, &moved, &paid_feb).await.unwrap(),
        PaymentOutcome::Recorded
    );
    close_ok(store, &clock, 1_491_300_000, &moved, "2017-03").await; // 2017-04-04
    let march = final_of("2017-03").await;
    assert!(march.number.as_deref().unwrap().starts_with("nimbus-"));
    // February's balance handed over to the provider, and paid.
    assert_eq!(march.brought_forward, rust_decimal::Decimal::ZERO);
    assert!(march.payments.iter().all(|p| p.reference != "prov-feb"));
    let balance = store.balance("bu1user1").await.unwrap();
    assert_eq!(
        balance.owed_elsewhere.into_iter().collect::<Vec<_>>(),
        [("prov".to_string(), rust_decimal::Decimal::ZERO)]
    );

    // Ten late hours of February, after Nimbus's first invoice: the provider's note.
    clock.store(1_491_700_000, Ordering::SeqCst); // 2017-04-09
    rate_batch(
        store,
        &moved,
        request_in(
            copper_hours("late1", "bu1user1", 2, 27, 10).as_bytes(),
            "late",
            None,
        ),
    )
    .await
    .unwrap();
    let notes = rater::notes::notes_of(store, "bu1user1", "2017-02")
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert!(note.number.as_deref().unwrap().starts_with("prov-N"));
    // 10 hours of copper at the provider's 2.20, with 20 % UK VAT: 22.00 + 4.40.
    assert_eq!(note.total, "26.40".parse().unwrap(), "{note:?}");
    let balance = store.balance("bu1user1").await.unwrap();
    assert_eq!(balance.notes_since, rust_decimal::Decimal::ZERO);
    assert_eq!(
        balance.owed_elsewhere.into_iter().collect::<Vec<_>>(),
        [("prov".to_string(), note.total)]
    );
    let statement = |to: &str| {
        let (from, to) = rater::statements::parse_range("2017-02-01", Some(to)).unwrap();
        let moved = &moved;
        async move {
            rater::statements::statement(store, moved, "bu1user1", from, to, None)
                .await
                .unwrap()
        }
    };
    // What the customer owes now: March's balance to Nimbus and the note to the provider.
    let st = statement("2017-04-15").await;
    assert_eq!(st.closing, march.carried_forward + note.total);
    assert!(st.adds_up().unwrap());

    // Paid to the provider: settles the note, on none of Nimbus's invoices. Only to an issuer
    // of the account's documents, once.
    let to_prov = gbp("prov-late", "2017-04-20", note.total, Some("prov"));
    assert_eq!(
        record_payment(store, &moved, &to_prov).await.unwrap(),
        PaymentOutcome::Recorded
    );
    assert_eq!(
        record_payment(store, &moved, &to_prov).await.unwrap(),
        PaymentOutcome::AlreadyRecorded
    );
    let stranger = gbp("acme-late", "2017-04-20", note.total, Some("acme"));
    match record_payment(store, &moved, &stranger).await {
        Err(RaterError::BadRequest { field: "payee", .. }) => {}
        other => panic!("{other:?}"),
    }
    let balance = store.balance("bu1user1").await.unwrap();
    assert_eq!(
        balance.owed_elsewhere.into_iter().collect::<Vec<_>>(),
        [("prov".to_string(), rust_decimal::Decimal::ZERO)]
    );

    // Nimbus's April brings forward March's carried-forward, not the provider's note, and
    // takes no payment made to the provider.
    close_ok(store, &clock, 1_493_900_000, &moved, "2017-04").await; // 2017-05-04
    let april = final_of("2017-04").await;
    assert!(april.number.as_deref().unwrap().starts_with("nimbus-"));
    assert_eq!(april.brought_forward, march.carried_forward);
    assert!(april.payments.iter().all(|p| p.reference != "prov-late"));
    let st = statement("2017-05-31").await;
    assert_eq!(st.closing, april.carried_forward);
    let refs: Vec<&str> = st.entries.iter().map(|e| e.reference.as_str()).collect();
    assert!(
        refs.contains(&note.number.as_deref().unwrap()) && refs.contains(&"prov-late"),
        "{refs:?}"
    );
    assert!(st.adds_up().unwrap());
    // The statement says who the note and the payments off Nimbus's invoices are owed or
    // paid to, as a table and as CSV (last column).
    let off_chain: Vec<(&str, Option<&str>)> = st
        .entries
        .iter()
        .filter(|e| e.owed_to.is_some())
        .map(|e| (e.reference.as_str(), e.owed_to.as_deref()))
        .collect();
    assert_eq!(
        off_chain,
        [
            ("prov-feb", Some("prov")),
            (note.number.as_deref().unwrap(), Some("prov")),
            ("prov-late", Some("prov")),
        ]
    );
    let table = rater::render::statement_table(&st);
    assert!(table.contains("Payment prov-late, to prov"), "{table}");
    assert!(
        table.contains(&format!(
            "Debit note {} (2017-02) corrects {}, owed to prov",
            note.number.as_deref().unwrap(),
            february.number.as_deref().unwrap()
        )),
        "{table}"
    );
    let csv = rater::render::statement_csv(&st);
    assert!(
        csv.lines().next().unwrap().ends_with(",balance,owed_to"),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("entry,") && l.contains(",prov-late,") && l.ends_with(",prov")),
        "{csv}"
    );
    // Opening balances: after the note (16 April), March's carried-forward and the note;
    // after April's invoice (issued 4 May), its carried-forward, with what was handed over,
    // the note and their payments before it, which April's invoice does not hold, cancelling
    // out.
    let opening = |from: &'static str| {
        let moved = &moved;
        async move {
            let (from, to) = rater::statements::parse_range(from, Some("2017-05-31")).unwrap();
            rater::statements::statement(store, moved, "bu1user1", from, to, None)
                .await
                .unwrap()
                .opening
        }
    };
    assert_eq!(
        opening("2017-04-16").await,
        march.carried_forward + note.total
    );
    assert_eq!(opening("2017-05-05").await, april.carried_forward);
}

/// bu1user1 is the provider's customer in February, Nimbus's in March and the provider's
/// again from April. February's balance is handed over to the provider by Nimbus's March
/// invoice; the provider's note for February's late usage and a part payment to the provider
/// move what the account owes it off the chain. Back with the provider, its April invoice
/// brings that forward (and asks for it), while March's balance is handed over to Nimbus.
/// Before this, the provider's April invoice brought forward nothing, and what the account
/// owed the provider was on no invoice of it, ever. Expected figures: other documents'
/// (February's and March's carried-forward) and by hand (the note, the payment).
pub async fn an_issuer_billing_a_customer_again_brings_back_what_it_was_owed<S: Store>(store: &S) {
    use rater::month::{record_payment, PaymentInput};
    use rust_decimal::Decimal;
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let direct = bu1_book(CATALOG, None, "bu1-direct", &clock);
    let moved = bu1_book(CATALOG, Some("nimbus"), "bu1-nimbus", &clock);
    let final_of = |p: &'static str| async move {
        store
            .final_invoice("bu1user1", p)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no final invoice of {p}"))
    };
    let rate = |config: &'static str, records: String, batch: &'static str| {
        let config = if config == "direct" { &direct } else { &moved };
        async move {
            rate_batch(store, config, request_in(records.as_bytes(), batch, None))
                .await
                .unwrap()
        }
    };

    rate("direct", copper_hours("f1", "bu1user1", 2, 3, 5), "feb").await;
    close_ok(store, &clock, 1_488_600_000, &direct, "2017-02").await; // 2017-03-04
    let february = final_of("2017-02").await;
    assert!(february.carried_forward > Decimal::ZERO, "{february:?}");

    // Nimbus's March: February's balance handed over to the provider.
    clock.store(1_489_000_000, Ordering::SeqCst); // 2017-03-08
    rate("moved", copper_hours("m1", "bu1user1", 3, 3, 4), "mar").await;
    close_ok(store, &clock, 1_491_300_000, &moved, "2017-03").await; // 2017-04-04
    let march = final_of("2017-03").await;
    assert!(march.number.as_deref().unwrap().starts_with("nimbus-"));
    assert_eq!(march.brought_forward, Decimal::ZERO);
    assert!(march.carried_forward > Decimal::ZERO, "{march:?}");

    // Ten late hours of February after it: the provider's note, owed to the provider. The
    // customer pays the provider 10.00 of what it owes it.
    clock.store(1_491_700_000, Ordering::SeqCst); // 2017-04-09
    rate(
        "moved",
        copper_hours("late1", "bu1user1", 2, 27, 10),
        "late",
    )
    .await;
    let notes = rater::notes::notes_of(store, "bu1user1", "2017-02")
        .await
        .unwrap();
    // 10 hours of copper at the provider's 2.20, with 20 % UK VAT: 22.00 + 4.40.
    assert_eq!(
        notes.iter().map(|n| n.total).collect::<Vec<_>>(),
        [d("26.40")]
    );
    let part = PaymentInput {
        payee: Some("prov".into()),
        ..payment("bu1user1", "2017-04-10", "10.00", "prov-part")
    };
    record_payment(store, &moved, &part).await.unwrap();
    let owed_to_prov = february.carried_forward + d("26.40") - d("10.00");
    let balance = store.balance("bu1user1").await.unwrap();
    assert_eq!(balance.owed_elsewhere.get("prov"), Some(&owed_to_prov));

    // Back with the provider from April, with no usage there: its April invoice is issued
    // for what the account owes it, and brings it forward; March's balance is Nimbus's.
    close_ok(store, &clock, 1_493_900_000, &direct, "2017-04").await; // 2017-05-04
    let april = final_of("2017-04").await;
    assert!(april.number.as_deref().unwrap().starts_with("prov-"));
    assert_eq!(april.brought_forward, owed_to_prov, "{april:?}");
    assert!(april.payments.iter().all(|p| p.reference != "prov-part"));
    let balance = store.balance("bu1user1").await.unwrap();
    assert_eq!(
        balance.owed_elsewhere.into_iter().collect::<Vec<_>>(),
        [
            ("nimbus".to_string(), march.carried_forward),
            ("prov".to_string(), Decimal::ZERO)
        ]
    );

    // The statement: what the customer owes either, from either side of each move.
    let statement = |from: &'static str| {
        let direct = &direct;
        async move {
            let (from, to) = rater::statements::parse_range(from, Some("2017-05-31")).unwrap();
            rater::statements::statement(store, direct, "bu1user1", from, to, None)
                .await
                .unwrap()
        }
    };
    let owed_now = april.carried_forward + march.carried_forward;
    let whole = statement("2017-02-01").await;
    assert!(whole.adds_up().unwrap());
    assert_eq!(whole.closing, owed_now);
    // After the payment (11 April): March's carried-forward and what is owed to the provider.
    assert_eq!(
        statement("2017-04-11").await.opening,
        march.carried_forward + owed_to_prov
    );
    assert_eq!(statement("2017-05-05").await.opening, owed_now);
}

/// The accounts book with bu1user1 billed by `reseller` (the provider's when `None`), as
/// `version`, with `catalog`, on `clock`.
pub fn bu1_book(
    catalog: &str,
    reseller: Option<&str>,
    version: &str,
    clock: &Arc<AtomicI64>,
) -> RaterConfig {
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "bu1user1" {
            a["late_usage"] = "note".into();
            if let Some(r) = reseller {
                a["reseller"] = r.into();
            }
        }
    }
    book["version"] = version.into();
    let mut c = RaterConfig::from_json(catalog, &book.to_string(), "prov").unwrap();
    let at = clock.clone();
    c.clock = Arc::new(move || at.load(Ordering::SeqCst));
    c
}

/// A process still on the accounts book before bu1user1 moved from the provider to Nimbus
/// re-rates February under a corrected catalog (copper 2.30 instead of 2.20), while another
/// process, on the new book, issues Nimbus's first invoice (March) between the correction's
/// reads and its write. The provider's note must be owed to the provider, not left for
/// Nimbus's next invoice to bring forward: the note's write is conditional on the last final
/// invoice it read (before, an issuer that bills the account by its own book wrote it
/// unconditionally, and Nimbus billed the provider's money). By hand: 5 h × 0.10 more, with
/// 20 % VAT: 0.60.
pub async fn a_note_on_an_old_book_racing_the_new_issuers_invoice_is_owed_to_its_issuer<
    S: Store + 'static,
>(
    inner: S,
) {
    use rust_decimal::Decimal;
    let store = Sabotaged::new(Arc::new(inner));
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let direct = bu1_book(CATALOG, None, "bu1-direct", &clock);
    let moved = bu1_book(CATALOG, Some("nimbus"), "bu1-nimbus", &clock);
    let copper =
        r#"{ "meter": "vm.running", "price": { "model": "per_unit", "unit_price": "2.2000" } }"#;
    assert_eq!(CATALOG.matches(copper).count(), 1);
    let corrected = CATALOG
        .replacen(copper, &copper.replace("2.2000", "2.3000"), 1)
        .replacen(r#""version": "2017-02.1""#, r#""version": "2017-03.1""#, 1);
    let old_book = bu1_book(&corrected, None, "bu1-direct", &clock);

    let feb_usage = copper_hours("f1", "bu1user1", 2, 3, 5);
    rate_batch(
        &store,
        &direct,
        request_in(feb_usage.as_bytes(), "feb", None),
    )
    .await
    .unwrap();
    close_ok(&store, &clock, 1_488_600_000, &direct, "2017-02").await; // 2017-03-04
    let february = store
        .final_invoice("bu1user1", "2017-02")
        .await
        .unwrap()
        .unwrap();
    clock.store(1_489_000_000, Ordering::SeqCst); // 2017-03-08
    let mar_usage = copper_hours("m1", "bu1user1", 3, 3, 4);
    rate_batch(
        &store,
        &moved,
        request_in(mar_usage.as_bytes(), "mar", None),
    )
    .await
    .unwrap();

    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    let hook_clock = clock.clone();
    *store.before_note.lock().unwrap() = Some(Box::new(move |s: &Arc<S>| {
        let s = s.clone();
        Box::pin(async move {
            let moved = bu1_book(CATALOG, Some("nimbus"), "bu1-nimbus", &hook_clock);
            close_ok(&s, &hook_clock, 1_491_300_000, &moved, "2017-03").await;
        })
    }));
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let note = rater::notes::correct(
        &store,
        &old_book,
        "bu1user1",
        feb,
        pricing::NoteReason::CorrectedCatalog,
    )
    .await
    .unwrap()
    .expect("a re-rate under a new price issues a note");
    assert!(store.before_note.lock().unwrap().is_none(), "the race ran");
    assert!(note.number.as_deref().unwrap().starts_with("prov-N"));
    assert_eq!(note.total, d("0.60"), "{note:?}");
    let march = store
        .final_invoice("bu1user1", "2017-03")
        .await
        .unwrap()
        .unwrap();
    assert!(march.number.as_deref().unwrap().starts_with("nimbus-"));
    let balance = store.balance("bu1user1").await.unwrap();
    assert_eq!(balance.notes_since, Decimal::ZERO, "{balance:?}");
    assert_eq!(
        balance.owed_elsewhere.get("prov"),
        Some(&(february.carried_forward + note.total))
    );
    // Nimbus's April brings forward March's carried-forward, nothing of the note.
    close_ok(&store, &clock, 1_493_900_000, &moved, "2017-04").await; // 2017-05-04
    let april = store
        .final_invoice("bu1user1", "2017-04")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(april.brought_forward, march.carried_forward);
}

/// acme-shop's February is invoiced by Acme (its own final invoice first: a close that stopped
/// after it, or an operator's finalize), and then the accounts book moves it to Nimbus before
/// the month's close issues the resellers' statements. Acme still owes the provider its
/// customer's February at wholesale: Acme's statement bills it, Nimbus's does not. Before,
/// neither did (Acme's book listed it no more, and Nimbus's statement leaves out a period
/// another reseller invoiced): the provider lost it. By hand (see `tests/documents.rs`):
/// Acme's February statement is EUR 2,443.41 (reverse charge), Nimbus's GBP 411.60 + VAT 20 %
/// 82.32 = 493.92 for nimbus-studio alone.
/// Run by `handler.rs` (embedded store) and `dynamodb.rs`.
pub async fn a_customer_moved_after_its_invoice_is_still_on_its_former_resellers_statement<
    S: Store,
>(
    s: &S,
) {
    use rater::invoices::Finalizing;
    const EXPORT: &str = include_str!("../../../examples/exports/resellers-2017-02.json");
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let mut c = RaterConfig::from_json(CATALOG, ACCOUNTS, "prov").unwrap();
    let clock1 = clock.clone();
    c.clock = Arc::new(move || clock1.load(Ordering::SeqCst));
    let req = BatchRequest {
        batch_id: Some("feb".into()),
        format: Some(pricing::import::Format::CloudStack),
        export: EXPORT.as_bytes().to_vec(),
        ..BatchRequest::default()
    };
    rate_batch(s, &c, req).await.unwrap();
    let feb = BillingPeriod::parse("2017-02").unwrap();
    let shop = rater::invoices::finalize(s, &c, "acme-shop", feb)
        .await
        .unwrap();
    assert!(shop.number.as_deref().unwrap().starts_with("acme-"));

    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "acme-shop" {
            a["reseller"] = "nimbus".into();
            a["country"] = "GB".into();
            a["tax_jurisdiction"] = "gb".into();
        }
    }
    book["version"] = "shop-to-nimbus".into();
    let mut moved = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let clock2 = clock.clone();
    moved.clock = Arc::new(move || clock2.load(Ordering::SeqCst));
    let report = rater::month::close(s, &moved, feb, Finalizing::default())
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");

    let statement_of = |account: &'static str| async move {
        let inv = s.final_invoice(account, "2017-02").await.unwrap().unwrap();
        let st = s
            .final_statement(account, "2017-02")
            .await
            .unwrap()
            .unwrap();
        let customers: Vec<String> = st.resold.into_iter().map(|r| r.account).collect();
        (inv.bill.currency, inv.bill.total, customers)
    };
    assert_eq!(
        statement_of("reseller-acme").await,
        (
            "EUR".to_string(),
            d("2443.41"),
            vec!["acme-shop".to_string()]
        )
    );
    assert_eq!(
        statement_of("reseller-nimbus").await,
        (
            "GBP".to_string(),
            d("493.92"),
            vec!["nimbus-studio".to_string()]
        )
    );
    // acme-shop's own February stays Acme's, once.
    assert_eq!(
        s.final_invoice("acme-shop", "2017-02")
            .await
            .unwrap()
            .unwrap()
            .number,
        shop.number
    );
}

/// Nimbus has issued its February and March statements before acme-shop's February is
/// invoiced (by Nimbus, the book having moved it): February's statement is not Nimbus's last
/// any more, so only the marker acme-shop's invoice sets on it (`Finalize::resold_late`) makes
/// Nimbus's next finalize (April's close) bill acme-shop's February, a wholesale note on that
/// statement. Before, it was on no statement. Run by `handler.rs` (embedded store) and
/// `dynamodb.rs`.
pub async fn a_customer_invoiced_statements_later_is_billed_on_its_resellers_statement<S: Store>(
    s: &S,
) {
    const EXPORT: &str = include_str!("../../../examples/exports/resellers-2017-02.json");
    let clock = Arc::new(AtomicI64::new(1_488_600_000)); // 2017-03-04
    let mut c = RaterConfig::from_json(CATALOG, ACCOUNTS, "prov").unwrap();
    let clock1 = clock.clone();
    c.clock = Arc::new(move || clock1.load(Ordering::SeqCst));
    let req = BatchRequest {
        batch_id: Some("feb".into()),
        format: Some(pricing::import::Format::CloudStack),
        export: EXPORT.as_bytes().to_vec(),
        ..BatchRequest::default()
    };
    rate_batch(s, &c, req).await.unwrap();
    let (feb, mar) = (
        BillingPeriod::parse("2017-02").unwrap(),
        BillingPeriod::parse("2017-03").unwrap(),
    );
    for account in ["nimbus-studio", "reseller-nimbus"] {
        rater::invoices::finalize(s, &c, account, feb)
            .await
            .unwrap();
    }
    clock.store(1_491_300_000, Ordering::SeqCst); // 2017-04-04
    for account in ["nimbus-studio", "reseller-nimbus"] {
        rater::invoices::finalize(s, &c, account, mar)
            .await
            .unwrap();
    }
    let mut book: serde_json::Value = serde_json::from_str(ACCOUNTS).unwrap();
    for a in book["accounts"].as_array_mut().unwrap() {
        if a["id"] == "acme-shop" {
            a["reseller"] = "nimbus".into();
            a["country"] = "GB".into();
            a["tax_jurisdiction"] = "gb".into();
        }
    }
    book["version"] = "shop-to-nimbus".into();
    let mut moved = RaterConfig::from_json(CATALOG, &book.to_string(), "prov").unwrap();
    let clock2 = clock.clone();
    moved.clock = Arc::new(move || clock2.load(Ordering::SeqCst));
    let shop = rater::invoices::finalize(s, &moved, "acme-shop", feb)
        .await
        .unwrap();
    assert!(shop.number.as_deref().unwrap().starts_with("nimbus-"));

    clock.store(1_493_900_000, Ordering::SeqCst); // 2017-05-04
    let apr = BillingPeriod::parse("2017-04").unwrap();
    let report = rater::month::close(s, &moved, apr, Default::default())
        .await
        .unwrap();
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.account != "reseller-nimbus"),
        "{report:?}"
    );
    let notes = rater::notes::notes_of(s, "reseller-nimbus", "2017-02")
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    let dec = |x: &str| x.parse::<rust_decimal::Decimal>().unwrap();
    let sections: Vec<&str> = note.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        sections,
        ["Resold to Shop of Acme's customer (shop.acme.example) (acme-shop)"]
    );
    // By hand as above: Acme's EUR 2,443.41 at 1.17 EUR per GBP, rounded per line; UK VAT.
    assert!(
        (note.net * dec("1.17") - dec("2443.41")).abs() <= dec("0.05"),
        "{note:?}"
    );
    assert_eq!(note.total, note.net + (note.net * dec("0.20")).round_dp(2));
    // Settled: the next finalize issues nothing more for February.
    assert!(s
        .resold_markers("reseller-nimbus")
        .await
        .unwrap()
        .is_empty());
}

/// Closes `period` at `now` (epoch seconds) under `config`: bu1user1 is not among the failures.
async fn close_ok<S: Store>(
    store: &S,
    clock: &AtomicI64,
    now: i64,
    config: &RaterConfig,
    period: &str,
) {
    clock.store(now, Ordering::SeqCst);
    let p = BillingPeriod::parse(period).unwrap();
    let report = rater::month::close(store, config, p, Default::default())
        .await
        .unwrap();
    assert!(
        report.failures.iter().all(|f| f.account != "bu1user1"),
        "{report:?}"
    );
}
