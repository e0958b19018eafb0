//! The exactly-once scenarios against DynamoDB Local (started and stopped by the harness), plus BatchWriteItem's UnprocessedItems retries.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use e2e::DynamoLocal;
use rater::store::fault::{UnprocessedItemsInterceptor, UnprocessedPlan};
use rater::{DynamoStore, Store};

/// A store on a new table of the shared DynamoDB Local. Holding the `Arc` keeps the server up.
struct Local {
    _server: Arc<DynamoLocal>,
    store: DynamoStore,
}

impl Snapshot for Local {
    async fn snapshot(&self) -> Vec<String> {
        self.store.snapshot().await
    }
}

impl Snapshot for DynamoStore {
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

fn client(server: &DynamoLocal, plan: Option<&UnprocessedPlan>) -> aws_sdk_dynamodb::Client {
    let mut b = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"));
    if let Some(plan) = plan {
        b = b.interceptor(UnprocessedItemsInterceptor::new(plan.clone()));
    }
    aws_sdk_dynamodb::Client::from_conf(b.build())
}

async fn new_table(server: &Arc<DynamoLocal>, plan: Option<&UnprocessedPlan>) -> Local {
    let table = format!("ratecard-test-{:016x}", fastrand::u64(..));
    let store = DynamoStore::new(client(server, plan), table);
    store
        .create_table()
        .await
        .expect("create table from infra/table.json");
    Local {
        _server: server.clone(),
        store,
    }
}

/// `Local` is a store by delegation (the server handle rides along).
impl Store for Local {
    async fn ledger(&self, b: &str) -> Result<Option<rater::model::Ledger>, rater::StoreError> {
        self.store.ledger(b).await
    }
    async fn try_lease(
        &self,
        l: &rater::store::Lease,
        now: i64,
    ) -> Result<rater::store::LeaseOutcome, rater::StoreError> {
        self.store.try_lease(l, now).await
    }
    async fn release(&self, b: &str, o: &str) -> Result<(), rater::StoreError> {
        self.store.release(b, o).await
    }
    async fn put_chunks(&self, c: &[rater::model::UsageChunk]) -> Result<(), rater::StoreError> {
        self.store.put_chunks(c).await
    }
    async fn sweep_chunks(&self, k: &rater::store::Keep) -> Result<(), rater::StoreError> {
        self.store.sweep_chunks(k).await
    }
    async fn commit(&self, c: &rater::store::Commit) -> Result<(), rater::StoreError> {
        self.store.commit(c).await
    }
    async fn record_ids(
        &self,
        a: &str,
        p: &str,
    ) -> Result<rater::store::RecordIds, rater::StoreError> {
        self.store.record_ids(a, p).await
    }
    async fn period_usage(
        &self,
        a: &str,
        p: &str,
    ) -> Result<rater::store::PeriodUsage, rater::StoreError> {
        self.store.period_usage(a, p).await
    }
    async fn final_invoice(
        &self,
        a: &str,
        p: &str,
    ) -> Result<Option<pricing::Invoice>, rater::StoreError> {
        self.store.final_invoice(a, p).await
    }
    async fn counter(&self, i: &str) -> Result<u64, rater::StoreError> {
        self.store.counter(i).await
    }
    async fn finalize(&self, f: &rater::store::Finalize) -> Result<(), rater::StoreError> {
        self.store.finalize(f).await
    }
    async fn put_config(
        &self,
        k: rater::model::ConfigKind,
        v: &str,
        b: &str,
        c: bool,
    ) -> Result<(), rater::StoreError> {
        self.store.put_config(k, v, b, c).await
    }
    async fn config(
        &self,
        k: rater::model::ConfigKind,
        v: Option<&str>,
    ) -> Result<Option<rater::store::ConfigItem>, rater::StoreError> {
        self.store.config(k, v).await
    }
}

#[tokio::test]
async fn dynamodb_replay_returns_the_same_invoices_and_writes_nothing() {
    let server = DynamoLocal::shared();
    replay(&new_table(&server, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_same_record_id_in_two_batches_counts_once() {
    let server = DynamoLocal::shared();
    record_ids_count_once(Arc::new(new_table(&server, None).await), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_sweeping_deletes_only_chunks_not_kept() {
    let server = DynamoLocal::shared();
    sweep_deletes_only_what_is_not_kept(&new_table(&server, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_many_record_ids_span_chunks() {
    let server = DynamoLocal::shared();
    many_record_ids_span_chunks(&new_table(&server, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_eight_concurrent_deliveries_rate_once() {
    let server = DynamoLocal::shared();
    concurrent_deliveries(Arc::new(new_table(&server, None).await)).await;
}

#[tokio::test]
async fn dynamodb_crash_after_k_writes_then_retry_counts_once() {
    let server = DynamoLocal::shared();
    // Every write position of a clean run (config x2, lease, 4 chunks, commit, 2 finalizes).
    crash_then_retry(|| new_table(&server, None), None).await;
}

#[tokio::test]
async fn dynamodb_finalizing_twice_is_refused() {
    let server = DynamoLocal::shared();
    finalize_twice(&new_table(&server, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_eight_concurrent_finalizes_issue_one_invoice() {
    let server = DynamoLocal::shared();
    concurrent_finalize(Arc::new(new_table(&server, None).await)).await;
}

#[tokio::test]
async fn dynamodb_late_usage_is_refused_and_bad_input_writes_nothing() {
    let server = DynamoLocal::shared();
    late_usage(&new_table(&server, None).await).await;
    bad_input_writes_nothing(&new_table(&server, None).await).await;
    final_mode_batch(&new_table(&server, None).await).await;
}

fn item(i: usize) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S("TEST#unprocessed".into()),
        ),
        ("sk".to_string(), AttributeValue::S(format!("{i:04}"))),
        ("body".to_string(), AttributeValue::S("x".repeat(100))),
    ])
}

#[tokio::test]
async fn dynamodb_unprocessed_items_are_retried_until_written() {
    let server = DynamoLocal::shared();
    let plan = UnprocessedPlan::default();
    let local = new_table(&server, Some(&plan)).await;
    // 60 items = groups of 25, 25, 10. Group 1: 25 sent, 20 come back; 20 sent, 10 back;
    // 10 sent, 1 back; 1 sent. Group 2: 25 sent, 9 back; 9 sent. Group 3: 10 sent.
    plan.hold([20, 10, 1, 0, 9]);
    local
        .store
        .batch_put((0..60).map(item).collect())
        .await
        .unwrap();
    assert_eq!(plan.held.load(Ordering::SeqCst), 20 + 10 + 1 + 9);
    assert_eq!(
        plan.calls.load(Ordering::SeqCst),
        7,
        "each held item was sent again"
    );
    let page = local
        .store
        .client()
        .query()
        .table_name(local.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("TEST#unprocessed".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(page.count(), 60, "every item written exactly once");

    // A whole batch through the handler with throttled chunk writes still counts once.
    plan.hold([2, 1, 1]);
    let export = export(5_000, 14);
    let config = config();
    rater::rate_batch(
        &local,
        &config,
        request(&export, None, rater::Mode::Interim),
    )
    .await
    .unwrap();
    assert_usage(&local, &config, &[&export]).await;

    // Throttled for longer than the attempts last (one item of 25 gets through per call): a
    // retryable error after BATCH_WRITE_ATTEMPTS_MAX calls, not a hang.
    plan.hold(std::iter::repeat_n(
        24,
        rater::limits::BATCH_WRITE_ATTEMPTS_MAX as usize,
    ));
    let err = local
        .store
        .batch_put((100..125).map(item).collect())
        .await
        .unwrap_err();
    assert!(err.retryable(), "{err}");
}
