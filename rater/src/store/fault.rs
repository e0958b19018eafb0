//! Fault injection: a store wrapper that "crashes" after k writes, and a DynamoDB interceptor that turns written items into UnprocessedItems.
//!
//! Both are public so that tests and a fault simulator can drive the real handler and the real
//! stores through the failures production sees, instead of a mock of them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pricing::Invoice;

use crate::error::StoreError;
use crate::model::{
    Balance, ConfigKind, DocRef, LateMarker, Ledger, RecordedPayment, ResoldMarker, StoredNote,
    UsageChunk,
};
use crate::store::api::{
    Commit, ConfigItem, Finalize, Keep, Lease, LeaseOutcome, NoteWrite, PartitionState,
    PaymentOutcome, PaymentWrite, PeriodUsage, RecordIds, Store,
};

/// Wraps a store and lets `k` item writes through; the write after them fails, and so does
/// every later write until [`FaultyStore::heal`]: the process is dead, so it cannot clean up
/// (release its lease) either. Reads always pass.
///
/// A write is: taking a lease, releasing one, each chunk put, a commit, a finalize, a config
/// put, a payment, a note, a reseller's marker settled. A chunk put of several items writes the allowed prefix, then fails, as a crash in the
/// middle of a BatchWriteItem loop would.
pub struct FaultyStore<S> {
    inner: S,
    budget: AtomicUsize,
    writes: AtomicUsize,
    /// Commit transactions still allowed ([`FaultyStore::crash_after_commits`]).
    commits: AtomicUsize,
    /// The commit refused past `commits` is a handled failure, not a crash
    /// ([`FaultyStore::fail_commit_after`]).
    survives: AtomicBool,
}

const UNLIMITED: usize = usize::MAX;

impl<S: Store> FaultyStore<S> {
    pub fn new(inner: S) -> FaultyStore<S> {
        FaultyStore {
            inner,
            budget: AtomicUsize::new(UNLIMITED),
            writes: AtomicUsize::new(0),
            commits: AtomicUsize::new(UNLIMITED),
            survives: AtomicBool::new(false),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Allows `k` more writes, then fails.
    pub fn crash_after(&self, k: usize) {
        self.budget.store(k, Ordering::SeqCst);
    }

    /// Allows `j` more commit transactions (and every other write before them), then fails
    /// every write: a crash between two commit transactions of a batch over many accounts.
    pub fn crash_after_commits(&self, j: usize) {
        self.commits.store(j, Ordering::SeqCst);
    }

    /// Allows `j` more commit transactions, then refuses the next ones as DynamoDB refuses a
    /// transaction (throttled past the SDK's retries, say) while the process lives on: it sees
    /// the error and handles it (releases its lease), and every other write passes.
    pub fn fail_commit_after(&self, j: usize) {
        self.survives.store(true, Ordering::SeqCst);
        self.commits.store(j, Ordering::SeqCst);
    }

    /// Lets every write through again (a new process took over).
    pub fn heal(&self) {
        self.budget.store(UNLIMITED, Ordering::SeqCst);
        self.commits.store(UNLIMITED, Ordering::SeqCst);
        self.survives.store(false, Ordering::SeqCst);
    }

    /// Writes that went through so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Takes up to `n` writes from the budget; returns how many were granted.
    fn take(&self, n: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                if b == UNLIMITED {
                    granted = n;
                    Some(b)
                } else {
                    granted = n.min(b);
                    Some(b - granted)
                }
            });
        self.writes.fetch_add(granted, Ordering::SeqCst);
        granted
    }

    fn crashed(&self, what: &str) -> StoreError {
        StoreError::Injected {
            what: format!("crash before {what} (after {} writes)", self.writes()),
        }
    }

    fn one(&self, what: &str) -> Result<(), StoreError> {
        if self.take(1) == 1 {
            Ok(())
        } else {
            Err(self.crashed(what))
        }
    }
}

impl<S: Store> Store for FaultyStore<S> {
    async fn ledger(&self, batch_id: &str) -> Result<Option<Ledger>, StoreError> {
        self.inner.ledger(batch_id).await
    }

    async fn try_lease(&self, lease: &Lease, now_s: i64) -> Result<LeaseOutcome, StoreError> {
        self.one("taking the lease")?;
        self.inner.try_lease(lease, now_s).await
    }

    async fn release(&self, batch_id: &str, owner: &str) -> Result<(), StoreError> {
        self.one("releasing the lease")?;
        self.inner.release(batch_id, owner).await
    }

    async fn put_chunks(&self, chunks: &[UsageChunk]) -> Result<(), StoreError> {
        let granted = self.take(chunks.len());
        self.inner.put_chunks(&chunks[..granted]).await?;
        if granted < chunks.len() {
            return Err(self.crashed("writing a chunk"));
        }
        Ok(())
    }

    async fn sweep_chunks(&self, keep: &Keep) -> Result<(), StoreError> {
        self.one("sweeping chunks")?;
        self.inner.sweep_chunks(keep).await
    }

    async fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        let allowed = self
            .commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| match c {
                UNLIMITED => Some(c),
                0 => None,
                c => Some(c - 1),
            })
            .is_ok();
        if !allowed && self.survives.load(Ordering::SeqCst) {
            return Err(StoreError::Injected {
                what: "a commit transaction refused".into(),
            });
        }
        if !allowed {
            // The process is dead from here on: no later write gets through either.
            self.budget.store(0, Ordering::SeqCst);
            return Err(self.crashed("a commit transaction"));
        }
        self.one("committing")?;
        self.inner.commit(commit).await
    }

    async fn partitions(
        &self,
        batch_id: &str,
        keys: &[(String, String)],
    ) -> Result<Vec<PartitionState>, StoreError> {
        self.inner.partitions(batch_id, keys).await
    }

    async fn record_ids(
        &self,
        account: &str,
        period_id: &str,
        except_batch: &str,
    ) -> Result<RecordIds, StoreError> {
        self.inner
            .record_ids(account, period_id, except_batch)
            .await
    }

    async fn period_usage(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<PeriodUsage, StoreError> {
        self.inner.period_usage(account, period_id).await
    }

    async fn final_invoice(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<Invoice>, StoreError> {
        self.inner.final_invoice(account, period_id).await
    }

    async fn counter(&self, issuer: &str) -> Result<u64, StoreError> {
        self.inner.counter(issuer).await
    }

    async fn finalize(&self, f: &Finalize) -> Result<(), StoreError> {
        self.one("finalizing")?;
        self.inner.finalize(f).await
    }

    async fn balance(&self, account: &str) -> Result<Balance, StoreError> {
        self.inner.balance(account).await
    }

    async fn final_statement(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<pricing::Statement>, StoreError> {
        self.inner.final_statement(account, period_id).await
    }

    async fn corrections(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<StoredNote>, StoreError> {
        self.inner.corrections(account, period_id).await
    }

    async fn late_markers(&self, account: &str) -> Result<Vec<LateMarker>, StoreError> {
        self.inner.late_markers(account).await
    }

    async fn billed_customers(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.billed_customers(account, period_id).await
    }

    async fn resold_markers(&self, account: &str) -> Result<Vec<ResoldMarker>, StoreError> {
        self.inner.resold_markers(account).await
    }

    async fn clear_resold_marker(
        &self,
        account: &str,
        period_id: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        self.one("clearing a reseller's marker")?;
        self.inner
            .clear_resold_marker(account, period_id, version)
            .await
    }

    async fn note_counter(&self, issuer: &str) -> Result<u64, StoreError> {
        self.inner.note_counter(issuer).await
    }

    async fn issue_note(&self, w: &NoteWrite) -> Result<(), StoreError> {
        self.one("issuing a note")?;
        self.inner.issue_note(w).await
    }

    async fn record_payment(&self, p: &PaymentWrite) -> Result<PaymentOutcome, StoreError> {
        self.one("recording a payment")?;
        self.inner.record_payment(p).await
    }

    async fn payments(&self, account: &str) -> Result<Vec<RecordedPayment>, StoreError> {
        self.inner.payments(account).await
    }

    async fn history(&self, account: &str) -> Result<Vec<DocRef>, StoreError> {
        self.inner.history(account).await
    }

    async fn put_config(
        &self,
        kind: ConfigKind,
        version: &str,
        body: &str,
        make_current: bool,
    ) -> Result<(), StoreError> {
        self.one("storing config")?;
        self.inner
            .put_config(kind, version, body, make_current)
            .await
    }

    async fn config(
        &self,
        kind: ConfigKind,
        version: Option<&str>,
    ) -> Result<Option<ConfigItem>, StoreError> {
        self.inner.config(kind, version).await
    }

    async fn readings(&self) -> Result<pricing::import::Readings, StoreError> {
        self.inner.readings().await
    }

    async fn merge_readings(&self, readings: &pricing::import::Readings) -> Result<(), StoreError> {
        self.one("carrying readings")?;
        self.inner.merge_readings(readings).await
    }
    async fn fanout(&self, b: &str) -> Result<Option<(u64, String)>, StoreError> {
        self.inner.fanout(b).await
    }

    async fn put_fanout(
        &self,
        b: &str,
        expected: Option<u64>,
        body: &str,
    ) -> Result<bool, StoreError> {
        self.one("writing an export's shard status")?;
        self.inner.put_fanout(b, expected, body).await
    }
}

/// Plan for [`UnprocessedItemsInterceptor`]: for each of the next BatchWriteItem calls, how
/// many of its put requests to hold back (not send) and report as UnprocessedItems.
#[derive(Debug, Default, Clone)]
pub struct UnprocessedPlan {
    holds: Arc<Mutex<VecDeque<usize>>>,
    /// Put requests held back so far.
    pub held: Arc<AtomicUsize>,
    /// BatchWriteItem calls seen so far.
    pub calls: Arc<AtomicUsize>,
}

impl UnprocessedPlan {
    /// The next calls will hold back these many items each (then none).
    pub fn hold(&self, per_call: impl IntoIterator<Item = usize>) {
        self.holds.lock().expect("plan lock").extend(per_call);
    }

    fn next(&self) -> usize {
        self.holds
            .lock()
            .expect("plan lock")
            .pop_front()
            .unwrap_or(0)
    }
}

pub use interceptor::UnprocessedItemsInterceptor;

mod interceptor {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;

    use aws_sdk_dynamodb::config::interceptors::{
        BeforeSerializationInterceptorContextMut, FinalizerInterceptorContextMut,
    };
    use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_dynamodb::error::BoxError;
    use aws_sdk_dynamodb::operation::batch_write_item::{
        BatchWriteItemInput, BatchWriteItemOutput,
    };
    use aws_sdk_dynamodb::types::WriteRequest;
    use aws_smithy_types::config_bag::{Storable, StoreReplace};

    use crate::store::fault::UnprocessedPlan;

    /// The requests held back from one call, kept in that call's own config bag so that
    /// concurrent calls never see each other's.
    #[derive(Debug, Clone, Default)]
    struct Held(HashMap<String, Vec<WriteRequest>>);

    impl Storable for Held {
        type Storer = StoreReplace<Held>;
    }

    /// A DynamoDB client interceptor that simulates throttling of BatchWriteItem exactly as
    /// DynamoDB does it: the held-back items are really not written (they are removed from the
    /// request before it is sent) and come back in the response's `UnprocessedItems`.
    #[derive(Debug)]
    pub struct UnprocessedItemsInterceptor {
        plan: UnprocessedPlan,
    }

    impl UnprocessedItemsInterceptor {
        pub fn new(plan: UnprocessedPlan) -> UnprocessedItemsInterceptor {
            UnprocessedItemsInterceptor { plan }
        }
    }

    impl Intercept for UnprocessedItemsInterceptor {
        fn name(&self) -> &'static str {
            "UnprocessedItemsInterceptor"
        }

        fn modify_before_serialization(
            &self,
            context: &mut BeforeSerializationInterceptorContextMut<'_>,
            _rc: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(input) = context.input_mut().downcast_mut::<BatchWriteItemInput>() else {
                return Ok(());
            };
            self.plan.calls.fetch_add(1, Ordering::SeqCst);
            let mut hold = self.plan.next();
            let mut pending = Held::default();
            if let Some(items) = input.request_items.as_mut() {
                for (table, requests) in items.iter_mut() {
                    // Keep at least one request: DynamoDB refuses an empty table entry.
                    let n = hold.min(requests.len().saturating_sub(1));
                    if n == 0 {
                        continue;
                    }
                    let held: Vec<WriteRequest> = requests.split_off(requests.len() - n);
                    hold -= n;
                    self.plan.held.fetch_add(n, Ordering::SeqCst);
                    pending.0.entry(table.clone()).or_default().extend(held);
                }
            }
            cfg.interceptor_state().store_put(pending);
            Ok(())
        }

        fn modify_before_completion(
            &self,
            context: &mut FinalizerInterceptorContextMut<'_>,
            _rc: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let Some(Ok(output)) = context.output_or_error_mut() else {
                return Ok(());
            };
            let Some(output) = output.downcast_mut::<BatchWriteItemOutput>() else {
                return Ok(());
            };
            let Some(held) = cfg.load::<Held>().cloned() else {
                return Ok(());
            };
            if held.0.is_empty() {
                return Ok(());
            }
            let unprocessed = output.unprocessed_items.get_or_insert_with(HashMap::new);
            for (table, requests) in held.0 {
                unprocessed.entry(table).or_default().extend(requests);
            }
            Ok(())
        }
    }
}
