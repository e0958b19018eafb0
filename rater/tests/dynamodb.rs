//! The exactly-once scenarios against DynamoDB Local (started and stopped by the harness), plus BatchWriteItem's UnprocessedItems retries.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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

impl Ttl for Local {
    async fn expire(&self, now_s: i64) -> usize {
        self.store.expire(now_s).await
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
    async fn partitions(
        &self,
        b: &str,
        k: &[(String, String)],
    ) -> Result<Vec<rater::store::PartitionState>, rater::StoreError> {
        self.store.partitions(b, k).await
    }
    async fn record_ids(
        &self,
        a: &str,
        p: &str,
        b: &str,
    ) -> Result<rater::store::RecordIds, rater::StoreError> {
        self.store.record_ids(a, p, b).await
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
    async fn balance(&self, a: &str) -> Result<rater::model::Balance, rater::StoreError> {
        self.store.balance(a).await
    }
    async fn final_statement(
        &self,
        a: &str,
        p: &str,
    ) -> Result<Option<pricing::Statement>, rater::StoreError> {
        self.store.final_statement(a, p).await
    }
    async fn corrections(
        &self,
        a: &str,
        p: &str,
    ) -> Result<Vec<rater::model::StoredNote>, rater::StoreError> {
        self.store.corrections(a, p).await
    }
    async fn late_markers(
        &self,
        a: &str,
    ) -> Result<Vec<rater::model::LateMarker>, rater::StoreError> {
        self.store.late_markers(a).await
    }
    async fn billed_customers(&self, a: &str, p: &str) -> Result<Vec<String>, rater::StoreError> {
        self.store.billed_customers(a, p).await
    }
    async fn resold_markers(
        &self,
        a: &str,
    ) -> Result<Vec<rater::model::ResoldMarker>, rater::StoreError> {
        self.store.resold_markers(a).await
    }
    async fn clear_resold_marker(
        &self,
        a: &str,
        p: &str,
        v: u64,
    ) -> Result<bool, rater::StoreError> {
        self.store.clear_resold_marker(a, p, v).await
    }
    async fn note_counter(&self, i: &str) -> Result<u64, rater::StoreError> {
        self.store.note_counter(i).await
    }
    async fn issue_note(&self, w: &rater::store::NoteWrite) -> Result<(), rater::StoreError> {
        self.store.issue_note(w).await
    }
    async fn record_payment(
        &self,
        p: &rater::store::PaymentWrite,
    ) -> Result<rater::store::PaymentOutcome, rater::StoreError> {
        self.store.record_payment(p).await
    }
    async fn payments(
        &self,
        a: &str,
    ) -> Result<Vec<rater::model::RecordedPayment>, rater::StoreError> {
        self.store.payments(a).await
    }
    async fn history(&self, a: &str) -> Result<Vec<rater::model::DocRef>, rater::StoreError> {
        self.store.history(a).await
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
    async fn readings(&self) -> Result<pricing::import::Readings, rater::StoreError> {
        self.store.readings().await
    }
    async fn merge_readings(&self, r: &pricing::import::Readings) -> Result<(), rater::StoreError> {
        self.store.merge_readings(r).await
    }
    async fn fanout(&self, b: &str) -> Result<Option<(u64, String)>, rater::StoreError> {
        self.store.fanout(b).await
    }
    async fn put_fanout(
        &self,
        b: &str,
        expected: Option<u64>,
        body: &str,
    ) -> Result<bool, rater::StoreError> {
        self.store.put_fanout(b, expected, body).await
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
async fn dynamodb_concurrent_readings_merges_lose_nothing() {
    let server = DynamoLocal::shared();
    readings_merge_concurrently(Arc::new(new_table(&server, None).await)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_batches_of_1_99_100_250_and_1000_accounts_commit_whole() {
    let server = DynamoLocal::shared();
    for n in [1, 99, 100, 250, 1_000] {
        many_accounts_rate_once(&new_table(&server, None).await, n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_partial_commit_of_250_accounts_then_takeover_commits_what_was_left() {
    let server = DynamoLocal::shared();
    many_accounts_crash_between_commits(|| new_table(&server, None), 250).await;
}

#[tokio::test]
async fn dynamodb_a_batch_refused_between_commits_keeps_its_key_bound_to_its_content() {
    let server = DynamoLocal::shared();
    many_accounts_refused_between_commits(&rater::store::fault::FaultyStore::new(
        new_table(&server, None).await,
    ))
    .await;
}

#[tokio::test]
async fn dynamodb_a_partly_committed_key_outlives_a_crashed_retry_and_ttl() {
    let server = DynamoLocal::shared();
    partly_committed_key_outlives_a_crashed_retry(&rater::store::fault::FaultyStore::new(
        new_table(&server, None).await,
    ))
    .await;
}

#[tokio::test]
async fn dynamodb_a_lapsed_lease_that_committed_nothing_frees_its_key_for_another_body() {
    let server = DynamoLocal::shared();
    a_lapsed_lease_that_committed_nothing_frees_its_key(&rater::store::fault::FaultyStore::new(
        new_table(&server, None).await,
    ))
    .await;
}

#[tokio::test]
async fn dynamodb_final_batch_of_250_accounts_crashing_part_way_names_what_it_finalized() {
    let server = DynamoLocal::shared();
    many_accounts_final(&rater::store::fault::FaultyStore::new(
        new_table(&server, None).await,
    ))
    .await;
}

#[tokio::test]
async fn dynamodb_a_catalog_of_10000_products_is_stored_in_parts_and_read_back() {
    let server = DynamoLocal::shared();
    large_config_round_trips(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_a_full_partition_refuses_the_next_batch_before_its_lease() {
    let server = DynamoLocal::shared();
    full_partition_is_refused_before_the_lease(&new_table(&server, None).await).await;
}

/// The size the rater computes for `#COMMITTED` is DynamoDB's own, from above: an item of the
/// longest batch ids filled to `COMMITTED_ITEM_BYTES_MAX` by that computation is accepted
/// and can still be finalized (its `closed` attribute fits), the next batch is refused before
/// its lease, and an item the computation puts 2 KB over DynamoDB's limit is refused by
/// DynamoDB itself (the estimate is not loose).
#[tokio::test]
async fn dynamodb_committed_item_size_matches_what_dynamodb_accepts() {
    use rater::limits::{BATCH_ID_BYTES_MAX, COMMITTED_ITEM_BYTES_MAX, DYNAMODB_ITEM_BYTES_MAX};
    use rater::model::{committed_item_bytes, usage_pk, COMMITTED_SK};
    let server = DynamoLocal::shared();
    let local = new_table(&server, None).await;
    let pk = usage_pk("bu1user1", PERIOD);
    let ids: Vec<String> = (0..2_000)
        .map(|i| format!("{i:06}{}", "x".repeat(BATCH_ID_BYTES_MAX - 6)))
        .collect();
    // The most batches (with record ids) that fit under `limit` by the rater's computation.
    let fill = |limit: usize| -> (usize, HashMap<String, AttributeValue>) {
        let size = |k: usize| {
            committed_item_bytes(
                &pk,
                k as u64,
                None,
                ids[..k].iter().map(|b| (b.as_str(), 99)),
                ids[..k].iter().map(|b| (b.as_str(), 99)),
            )
        };
        let k = (0..ids.len())
            .take_while(|&k| size(k) <= limit)
            .last()
            .unwrap();
        let mut item = HashMap::from([
            ("pk".to_string(), AttributeValue::S(pk.clone())),
            ("sk".to_string(), AttributeValue::S(COMMITTED_SK.into())),
            ("version".to_string(), AttributeValue::N(k.to_string())),
        ]);
        for b in &ids[..k] {
            item.insert(format!("b:{b}"), AttributeValue::N("99".into()));
            item.insert(format!("i:{b}"), AttributeValue::N("99".into()));
        }
        (k, item)
    };
    let put = |item: HashMap<String, AttributeValue>| {
        local
            .store
            .client()
            .put_item()
            .table_name(local.store.table())
            .set_item(Some(item))
            .send()
    };
    let (over, item) = fill(DYNAMODB_ITEM_BYTES_MAX + 2_048);
    let err = put(item)
        .await
        .expect_err("DynamoDB refuses an item over 400 KB");
    assert!(
        format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)).contains("size"),
        "{over} batches: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(&err)
    );
    let (k, item) = fill(COMMITTED_ITEM_BYTES_MAX);
    put(item).await.expect("an item filled to the limit fits");
    // The next batch does not fit: refused before its lease.
    let config = config();
    let batch = line_with_id("r-next", "vm-a", "1", 1);
    let err = rater::rate_batch(
        &local,
        &config,
        request(batch.as_bytes(), Some(&ids[k]), rater::Mode::Interim),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, rater::RaterError::PartitionFull { batches, .. } if batches == k),
        "{err}"
    );
    // A full partition can still be finalized: `closed` fits.
    let inv = rater::finalize(&local, &config, "bu1user1", period())
        .await
        .unwrap();
    assert_eq!(inv.number.as_deref(), Some("test-000001"));
}

#[tokio::test]
async fn dynamodb_records_are_billed_in_their_accounts_periods_whatever_the_request_names() {
    let server = DynamoLocal::shared();
    records_billed_in_their_accounts_periods(&new_table(&server, None).await).await;
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

/// Fails the `fail_at`-th TransactWriteItems call (1-based) of a client before it is sent, as
/// a crash or a lost connection between two commit transactions would.
#[derive(Debug)]
struct FailTransaction {
    calls: Arc<AtomicUsize>,
    fail_at: usize,
}

impl aws_sdk_dynamodb::config::Intercept for FailTransaction {
    fn name(&self) -> &'static str {
        "FailTransaction"
    }

    fn read_before_serialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
        if context
            .input()
            .downcast_ref::<TransactWriteItemsInput>()
            .is_some()
            && self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at
        {
            return Err("injected: the commit transaction was lost".into());
        }
        Ok(())
    }
}

/// Issue 12, part 2: a batch of 250 accounts commits in several transactions. The second one
/// fails after the first is visible; the retry must complete exactly what was left (never
/// taking the batch's own record ids for duplicates, never deleting a chunk the first
/// transaction counted), and a concurrent redelivery afterwards changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_partial_commit_of_250_accounts_then_retry_counts_every_account_once() {
    let server = DynamoLocal::shared();
    let n = 250;
    let local = new_table(&server, None).await;
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .interceptor(FailTransaction {
            calls: Arc::new(AtomicUsize::new(0)),
            fail_at: 2,
        })
        .build();
    let faulty = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        local.store.table().to_string(),
    );
    let clock = manual_clock();
    let config = many_accounts_config(n, &clock);
    let export = many_accounts_export(n, 1);
    let req = || request(&export, Some("many-250"), rater::Mode::Interim);
    let err = rater::rate_batch(&faulty, &config, req())
        .await
        .expect_err("the second commit transaction fails");
    assert!(err.retryable(), "a lost transaction is retryable: {err}");

    let resp = rater::rate_batch(&local, &config, req())
        .await
        .unwrap_or_else(|e| panic!("retry failed: {e}"));
    assert_eq!(resp.records, 2 * n as u64);
    assert_many_accounts(&local, &config, &[&export], n).await;

    // Two redeliveries at once: both replays, nothing moves.
    let local = Arc::new(local);
    let config = Arc::new(config);
    let export = Arc::new(export);
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (l, c, e) = (local.clone(), config.clone(), export.clone());
        tasks.push(tokio::spawn(async move {
            rater::rate_batch(&*l, &c, request(&e, Some("many-250"), rater::Mode::Interim)).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap().replayed);
    }
    assert_many_accounts(&*local, &config, &[&export], n).await;
}

#[tokio::test]
async fn dynamodb_overflow_regression_a_record_too_large_to_price_is_refused_and_the_period_stays_invoiceable(
) {
    let server = DynamoLocal::shared();
    overflowing_record_is_refused_before_writing(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_a_billing_month_carries_balances_payments_and_credit_from_close_to_close() {
    let server = DynamoLocal::shared();
    billing_month(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_a_final_invoice_larger_than_an_item_is_stored_in_parts_and_read_back_whole() {
    let server = DynamoLocal::shared();
    large_final_invoice_round_trips(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_a_customers_late_usage_is_billed_on_its_resellers_statement_however_old() {
    let server = DynamoLocal::shared();
    for subscription in [true, false] {
        resellers_old_statement_bills_late_usage(
            &new_table(&server, None).await,
            subscription,
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn dynamodb_one_resellers_customers_mark_a_period_once_and_a_final_batch_waits_for_earlier() {
    let server = DynamoLocal::shared();
    one_resellers_customers_mark_a_period_once(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_a_resellers_statement_waits_for_a_customer_whose_usage_came_after_its_close() {
    let server = DynamoLocal::shared();
    reseller_statement_waits_for_a_late_customer(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_usage_and_payments_after_a_skipped_close_are_billed_by_the_next_close_first() {
    let server = DynamoLocal::shared();
    skipped_period_billed_first(&new_table(&server, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_a_close_crashing_part_way_then_rerun_concurrently_finalizes_each_account_once() {
    let server = DynamoLocal::shared();
    close_crash_then_rerun(|| new_table(&server, None)).await;
}

#[tokio::test]
async fn dynamodb_late_usage_under_each_policy_and_a_rerate_issue_notes_and_adjustments() {
    let server = DynamoLocal::shared();
    late_usage_and_rerate(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_a_former_issuers_late_note_is_owed_to_it_not_brought_forward() {
    let server = DynamoLocal::shared();
    former_issuers_late_note_is_owed_to_it(&new_table(&server, None).await).await;
}

#[tokio::test]
async fn dynamodb_an_issuer_billing_a_customer_again_brings_back_what_it_was_owed() {
    let server = DynamoLocal::shared();
    common::an_issuer_billing_a_customer_again_brings_back_what_it_was_owed(
        &new_table(&server, None).await,
    )
    .await;
}

/// A balance item written before the last final invoice's period was kept as its own
/// attribute (`last_period`, which a note's write is conditional on): a late-usage note is
/// still issued and brought forward, its write conditional on the balance's version instead.
/// Without that, every note of such an account was refused as a conflict, for ever. By hand:
/// 10 late hours of copper at 2.20 with 20 % VAT, 26.40.
#[tokio::test]
async fn dynamodb_a_note_on_a_balance_written_before_last_period_was_kept_is_issued() {
    use std::sync::atomic::AtomicI64;
    let server = DynamoLocal::shared();
    let local = new_table(&server, None).await;
    let clock = Arc::new(AtomicI64::new(1_486_900_000)); // 2017-02-12
    let direct = bu1_book(CATALOG, None, "bu1-direct", &clock);
    let usage = copper_hours("f1", "bu1user1", 2, 3, 5);
    rater::rate_batch(&local, &direct, request_in(usage.as_bytes(), "feb", None))
        .await
        .unwrap();
    clock.store(1_488_600_000, Ordering::SeqCst); // 2017-03-04
    let feb = pricing::BillingPeriod::parse("2017-02").unwrap();
    let report = rater::month::close(&local, &direct, feb, Default::default())
        .await
        .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    let before = local.balance("bu1user1").await.unwrap();
    assert_eq!(before.last.as_ref().unwrap().period, "2017-02");
    // As the rater wrote balances before `last_period` (80952a7).
    let removed = local
        .store
        .client()
        .update_item()
        .table_name(local.store.table())
        .key(
            "pk",
            AttributeValue::S(rater::model::account_pk("bu1user1")),
        )
        .key("sk", AttributeValue::S(rater::model::BALANCE_SK.into()))
        .update_expression("REMOVE last_period")
        .condition_expression("attribute_exists(last_period)")
        .send()
        .await;
    assert!(removed.is_ok(), "{removed:?}");

    clock.store(1_489_000_000, Ordering::SeqCst); // 2017-03-08
    let late = copper_hours("late1", "bu1user1", 2, 27, 10);
    rater::rate_batch(&local, &direct, request_in(late.as_bytes(), "late", None))
        .await
        .unwrap();
    let notes = rater::notes::notes_of(&local, "bu1user1", "2017-02")
        .await
        .unwrap();
    assert_eq!(
        notes.iter().map(|n| n.total).collect::<Vec<_>>(),
        ["26.40".parse::<rust_decimal::Decimal>().unwrap()]
    );
    let after = local.balance("bu1user1").await.unwrap();
    assert_eq!(after.notes_since, notes[0].total, "{after:?}");
}

#[tokio::test]
async fn dynamodb_a_customer_moved_after_its_invoice_is_still_on_its_former_resellers_statement() {
    let server = DynamoLocal::shared();
    common::a_customer_moved_after_its_invoice_is_still_on_its_former_resellers_statement(
        &new_table(&server, None).await,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_a_customer_invoiced_statements_later_is_billed_on_its_resellers_statement() {
    let server = DynamoLocal::shared();
    common::a_customer_invoiced_statements_later_is_billed_on_its_resellers_statement(
        &new_table(&server, None).await,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_a_note_on_an_old_book_racing_the_new_issuers_invoice_is_owed_to_its_issuer() {
    let server = DynamoLocal::shared();
    common::a_note_on_an_old_book_racing_the_new_issuers_invoice_is_owed_to_its_issuer(
        new_table(&server, None).await,
    )
    .await;
}
