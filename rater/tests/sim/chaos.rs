//! A store wrapper that injects the faults a network store shows: throttling, lost responses, transactions cancelled by a condition, and task switches between calls.

use std::collections::BTreeMap;
use std::sync::Mutex;

use pricing::Invoice;
use rater::model::{ConfigKind, Ledger, UsageChunk};
use rater::store::{
    Commit, ConfigItem, Finalize, Keep, Lease, LeaseOutcome, PartitionState, PeriodUsage,
    RecordIds, Store,
};
use rater::StoreError;

use super::rng::Rng;

/// Fault counts by kind, printed in the simulator's summary.
#[derive(Debug, Default)]
pub struct Stats(Mutex<BTreeMap<&'static str, u64>>);

impl Stats {
    pub fn bump(&self, kind: &'static str) {
        self.add(kind, 1);
    }
    pub fn add(&self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.0.lock().expect("stats lock").entry(kind).or_default() += n;
        }
    }
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.0.lock().expect("stats lock"))
    }
}

/// Chances of each fault per call, in percent.
#[derive(Debug, Clone, Copy)]
/// Odds in per mille of calls: a wide scenario makes hundreds of calls per delivery, where a
/// few percent per call would leave no delivery a chance to finish.
pub struct Odds {
    /// Any call fails with a retryable `Unavailable` before reaching the store.
    pub throttle_pm: u64,
    /// A write is applied, then its answer is lost (`Unavailable`): the caller cannot tell.
    pub lost_response_pm: u64,
    /// A commit or finalize is cancelled by its condition before it is tried.
    pub cancelled_pm: u64,
    /// The task yields to others before a call, so that concurrent deliveries interleave.
    pub yield_pm: u64,
}

/// Wraps a store (the crash-injecting [`rater::store::fault::FaultyStore`] in the simulator).
/// Its schedule comes from its own seeded stream; with tokio's current-thread runtime and
/// paused time, the same seed gives the same calls in the same order.
pub struct Chaos<S> {
    inner: S,
    rng: Mutex<Rng>,
    odds: Odds,
    pub stats: Stats,
}

impl<S: Store> Chaos<S> {
    pub fn new(inner: S, rng: Rng, odds: Odds) -> Chaos<S> {
        Chaos {
            inner,
            rng: Mutex::new(rng),
            odds,
            stats: Stats::default(),
        }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn roll(&self, per_mille: u64) -> bool {
        self.rng.lock().expect("rng lock").below(1_000) < per_mille
    }

    async fn before(&self, what: &str, write: bool) -> Result<(), StoreError> {
        let switch = self.roll(self.odds.yield_pm);
        if switch {
            tokio::task::yield_now().await;
        }
        if self.roll(self.odds.throttle_pm) {
            self.stats.bump(if write {
                "throttled write"
            } else {
                "throttled read"
            });
            return Err(StoreError::Unavailable {
                message: format!("injected: {what} throttled"),
            });
        }
        Ok(())
    }

    fn after<T>(&self, what: &str, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_ok() && self.roll(self.odds.lost_response_pm) {
            self.stats.bump("lost response");
            return Err(StoreError::Unavailable {
                message: format!("injected: the answer to {what} was lost"),
            });
        }
        r
    }
}

impl<S: Store> Store for Chaos<S> {
    async fn ledger(&self, batch_id: &str) -> Result<Option<Ledger>, StoreError> {
        self.before("ledger", false).await?;
        self.inner.ledger(batch_id).await
    }

    async fn try_lease(&self, lease: &Lease, now_s: i64) -> Result<LeaseOutcome, StoreError> {
        self.before("try_lease", true).await?;
        let r = self.inner.try_lease(lease, now_s).await;
        self.after("try_lease", r)
    }

    async fn release(&self, batch_id: &str, owner: &str) -> Result<(), StoreError> {
        self.before("release", true).await?;
        let r = self.inner.release(batch_id, owner).await;
        self.after("release", r)
    }

    async fn put_chunks(&self, chunks: &[UsageChunk]) -> Result<(), StoreError> {
        self.before("put_chunks", true).await?;
        let r = self.inner.put_chunks(chunks).await;
        self.after("put_chunks", r)
    }

    async fn sweep_chunks(&self, keep: &Keep) -> Result<(), StoreError> {
        self.before("sweep_chunks", true).await?;
        let r = self.inner.sweep_chunks(keep).await;
        self.after("sweep_chunks", r)
    }

    async fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        self.before("commit", true).await?;
        if let Some(part) = commit.accounts.iter().find(|p| p.checked_version.is_some()) {
            if self.roll(self.odds.cancelled_pm) {
                // The condition "no batch committed into the period since the record ids were
                // checked" failed: the handler must check them again.
                self.stats.bump("commit cancelled: usage moved");
                return Err(StoreError::UsageMoved {
                    account: part.account.clone(),
                    period: part.period_id.clone(),
                });
            }
        }
        if self.roll(self.odds.cancelled_pm) {
            // The condition "the lease is still ours" failed (as if another attempt took it).
            self.stats.bump("commit cancelled by condition");
            return Err(StoreError::LeaseLost {
                batch_id: commit.batch_id.clone(),
            });
        }
        let r = self.inner.commit(commit).await;
        self.after("commit", r)
    }

    async fn partitions(
        &self,
        batch_id: &str,
        keys: &[(String, String)],
    ) -> Result<Vec<PartitionState>, StoreError> {
        self.before("partitions", false).await?;
        self.inner.partitions(batch_id, keys).await
    }

    async fn record_ids(
        &self,
        account: &str,
        period_id: &str,
        except_batch: &str,
    ) -> Result<RecordIds, StoreError> {
        self.before("record_ids", false).await?;
        self.inner
            .record_ids(account, period_id, except_batch)
            .await
    }

    async fn period_usage(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<PeriodUsage, StoreError> {
        self.before("period_usage", false).await?;
        self.inner.period_usage(account, period_id).await
    }

    async fn final_invoice(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<Invoice>, StoreError> {
        self.before("final_invoice", false).await?;
        self.inner.final_invoice(account, period_id).await
    }

    async fn counter(&self, issuer: &str) -> Result<u64, StoreError> {
        self.before("counter", false).await?;
        self.inner.counter(issuer).await
    }

    async fn finalize(&self, f: &Finalize) -> Result<(), StoreError> {
        self.before("finalize", true).await?;
        if self.roll(self.odds.cancelled_pm) {
            // The counter or usage-version condition failed (as if another writer moved it).
            self.stats.bump("finalize cancelled by condition");
            return Err(StoreError::FinalizeConflict {
                account: f.account.clone(),
                period: f.period_id.clone(),
            });
        }
        let r = self.inner.finalize(f).await;
        self.after("finalize", r)
    }

    async fn balance(&self, account: &str) -> Result<rater::model::Balance, StoreError> {
        self.before("balance", false).await?;
        self.inner.balance(account).await
    }

    async fn final_statement(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Option<pricing::Statement>, StoreError> {
        self.before("final_statement", false).await?;
        self.inner.final_statement(account, period_id).await
    }

    async fn corrections(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<rater::model::StoredNote>, StoreError> {
        self.before("corrections", false).await?;
        self.inner.corrections(account, period_id).await
    }

    async fn late_markers(
        &self,
        account: &str,
    ) -> Result<Vec<rater::model::LateMarker>, StoreError> {
        self.before("late_markers", false).await?;
        self.inner.late_markers(account).await
    }

    async fn billed_customers(
        &self,
        account: &str,
        period_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.before("billed_customers", false).await?;
        self.inner.billed_customers(account, period_id).await
    }
    async fn resold_markers(
        &self,
        account: &str,
    ) -> Result<Vec<rater::model::ResoldMarker>, StoreError> {
        self.before("resold_markers", false).await?;
        self.inner.resold_markers(account).await
    }
    async fn clear_resold_marker(
        &self,
        account: &str,
        period_id: &str,
        version: u64,
    ) -> Result<bool, StoreError> {
        self.before("clear_resold_marker", true).await?;
        let r = self
            .inner
            .clear_resold_marker(account, period_id, version)
            .await;
        self.after("clear_resold_marker", r)
    }

    async fn note_counter(&self, issuer: &str) -> Result<u64, StoreError> {
        self.before("note_counter", false).await?;
        self.inner.note_counter(issuer).await
    }

    async fn issue_note(&self, w: &rater::store::NoteWrite) -> Result<(), StoreError> {
        self.before("issue_note", true).await?;
        if self.roll(self.odds.cancelled_pm) {
            self.stats.bump("note cancelled by condition");
            return Err(StoreError::NoteConflict {
                account: w.account.clone(),
                period: w.period_id.clone(),
            });
        }
        let r = self.inner.issue_note(w).await;
        self.after("issue_note", r)
    }

    async fn record_payment(
        &self,
        p: &rater::store::PaymentWrite,
    ) -> Result<rater::store::PaymentOutcome, StoreError> {
        self.before("record_payment", true).await?;
        let r = self.inner.record_payment(p).await;
        self.after("record_payment", r)
    }

    async fn payments(
        &self,
        account: &str,
    ) -> Result<Vec<rater::model::RecordedPayment>, StoreError> {
        self.before("payments", false).await?;
        self.inner.payments(account).await
    }

    async fn history(&self, account: &str) -> Result<Vec<rater::model::DocRef>, StoreError> {
        self.before("history", false).await?;
        self.inner.history(account).await
    }

    async fn put_config(
        &self,
        kind: ConfigKind,
        version: &str,
        body: &str,
        make_current: bool,
    ) -> Result<(), StoreError> {
        self.before("put_config", true).await?;
        let r = self
            .inner
            .put_config(kind, version, body, make_current)
            .await;
        self.after("put_config", r)
    }

    async fn config(
        &self,
        kind: ConfigKind,
        version: Option<&str>,
    ) -> Result<Option<ConfigItem>, StoreError> {
        self.before("config", false).await?;
        self.inner.config(kind, version).await
    }

    async fn readings(&self) -> Result<pricing::import::Readings, StoreError> {
        self.before("readings", false).await?;
        self.inner.readings().await
    }

    async fn merge_readings(&self, r: &pricing::import::Readings) -> Result<(), StoreError> {
        self.before("merge_readings", true).await?;
        self.inner.merge_readings(r).await
    }

    async fn fanout(&self, b: &str) -> Result<Option<(u64, String)>, StoreError> {
        self.before("fanout", false).await?;
        self.inner.fanout(b).await
    }

    async fn put_fanout(
        &self,
        b: &str,
        expected: Option<u64>,
        body: &str,
    ) -> Result<bool, StoreError> {
        self.before("put_fanout", true).await?;
        self.inner.put_fanout(b, expected, body).await
    }
}
