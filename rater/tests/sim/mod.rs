//! The simulator's driver: one seeded run of two or three months of deliveries, payments and closes through faults, with the invariant checks (see `tests/simulator.rs` for the rules).

pub mod chaos;
pub mod gen;
mod month;
mod objects;
pub mod reference;
pub mod rng;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pricing::{Invoice, InvoiceKind, UsageRecord};
use rater::limits::{COMMIT_ACCOUNTS_PER_TRANSACTION_MAX, LEASE_S};
use rater::model::{parse_chunk_sk, Ledger};
use rater::store::fault::FaultyStore;
use rater::store::Store;
use rater::{finalize, invoice_for, rate_batch, BatchRequest, Mode, RateResponse, RaterConfig};
use rater::{EmbeddedStore, RaterError};

pub use backend::{Backend, Item};

pub mod backend;

use chaos::{Chaos, Odds, Stats};
use gen::{Batch, GenOptions, Scenario, ISSUER};
use month::Chain;
use objects::SimObjects;
use reference::DedupeRule;
use rng::Rng;

pub type SimStore<B> = Chaos<FaultyStore<B>>;

/// Calls one client makes for one request before the run is declared stuck. Faults are a few
/// percent per call, so a hundred attempts failing in a row means the system does not progress.
const CLIENT_ATTEMPTS_MAX: u32 = 100;

/// "Held" answers in a row after which the client waits the lease out (moves the clock past it).
const HELD_ANSWERS_BEFORE_WAITING_OUT: u32 = 3;

/// The store faults of a run: a few percent each, so that most requests meet one somewhere
/// while runs still finish in a handful of attempts.
const ODDS: Odds = Odds {
    throttle_pm: 40,
    lost_response_pm: 40,
    cancelled_pm: 50,
    yield_pm: 300,
};

/// A wide scenario's deliveries make a thousand calls or more (a record-id read and two
/// invoice reads per account): faults per call are rarer, so that some attempts finish, and a
/// resumed commit still meets them.
const WIDE_ODDS: Odds = Odds {
    throttle_pm: 1,
    lost_response_pm: 1,
    cancelled_pm: 20,
    yield_pm: 300,
};

/// What one seed did: faults and events by kind, and invariant checks passed by kind.
#[derive(Debug, Default)]
pub struct Outcome {
    pub faults: BTreeMap<&'static str, u64>,
    pub checks: BTreeMap<&'static str, u64>,
}

struct Sim<B: Backend> {
    rng: Rng,
    scen: Scenario,
    store: Arc<SimStore<B>>,
    config: Arc<RaterConfig>,
    clock: Arc<AtomicI64>,
    rule: DedupeRule,
    events: Arc<Stats>,
    checks: Stats,
    /// Batches (indices into `scen.batches`) whose delivery the client saw succeed.
    acked: BTreeSet<usize>,
    /// The model's view of the billing months: closes, payments, final invoices.
    chain: Chain,
    /// The exports bucket and shard queue of sharded deliveries.
    objects: SimObjects,
    /// Batches delivered as a sharded export: the batch ids of their shards.
    sharded: BTreeMap<usize, Vec<String>>,
    /// Where shard messages are handled (see [`ShardRuntime`]).
    shard_rt: ShardRuntime,
    /// Keeps the store's file or server alive for the run.
    _guard: Box<dyn std::any::Any>,
}

/// A multi-threaded runtime for the shard module's calls: a shard is read by a reader that
/// blocks its thread (`block_in_place`, as in the Lambda), which the simulator's
/// current-thread runtime cannot host. The calls run there one at a time, so the store's
/// fault schedule is drawn in the same order; the rater's clock is the simulator's, not
/// tokio's. Shut down without blocking when dropped (inside the simulator's runtime).
struct ShardRuntime(Option<tokio::runtime::Runtime>);

impl ShardRuntime {
    fn new() -> ShardRuntime {
        ShardRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime"),
        ))
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let rt = self.0.as_ref().expect("running");
        rt.spawn(f)
            .await
            .unwrap_or_else(|e| match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(e) => panic!("a shard task: {e}"),
            })
    }
}

impl Drop for ShardRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs one seed on its own current-thread runtime with paused time.
pub fn run_seed(seed: u64, opts: GenOptions, rule: DedupeRule) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        // tmpfs when there is one: redb syncs every commit, and the simulator commits a lot.
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")
        } else {
            tempfile::tempdir()
        }
        .expect("a temporary directory");
        let embedded = EmbeddedStore::open(&dir.path().join("sim.redb")).expect("a store");
        Sim::new(seed, opts, rule, embedded, Box::new(dir))
            .outcome()
            .await
    })
}

/// Runs one seed over another backend (DynamoDB Local) on a current-thread runtime with real
/// time: a network client's own timeouts would fire at once under paused time.
pub fn run_seed_on<B: Backend, F: std::future::Future<Output = B>>(
    seed: u64,
    backend: impl FnOnce() -> F,
) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let b = backend().await;
        Sim::new(
            seed,
            GenOptions::default(),
            DedupeRule::FirstRecordIdWins,
            b,
            Box::new(()),
        )
        .outcome()
        .await
    })
}

/// A client's delivery: retries what the rater says is retryable; waits a held lease out.
async fn deliver<S: Store>(
    store: &S,
    config: &RaterConfig,
    clock: &AtomicI64,
    events: &Stats,
    req: BatchRequest,
) -> Result<RateResponse, RaterError> {
    let mut held = 0;
    for _ in 0..CLIENT_ATTEMPTS_MAX {
        match rate_batch(store, config, req.clone()).await {
            Ok(r) => return Ok(r),
            Err(RaterError::BatchInProgress { .. }) => {
                held += 1;
                if held >= HELD_ANSWERS_BEFORE_WAITING_OUT {
                    clock.fetch_add(LEASE_S + 1, Ordering::SeqCst);
                    events.bump("lease waited out (clock moved past it)");
                    held = 0;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) if e.retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => return Err(e),
        }
    }
    panic!("a delivery made no progress in {CLIENT_ATTEMPTS_MAX} attempts");
}

async fn finalize_client<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: pricing::BillingPeriod,
) -> Result<Invoice, RaterError> {
    for _ in 0..CLIENT_ATTEMPTS_MAX {
        match finalize(store, config, account, period).await {
            Err(e) if e.retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
            r => return r,
        }
    }
    panic!("finalizing {account} made no progress in {CLIENT_ATTEMPTS_MAX} attempts");
}

async fn invoice_client<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: pricing::BillingPeriod,
) -> Invoice {
    for _ in 0..CLIENT_ATTEMPTS_MAX {
        match invoice_for(store, config, account, period).await {
            Ok(inv) => return inv,
            Err(e) if e.retryable() => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("invoice of {account}: {e}"),
        }
    }
    panic!("the invoice of {account} made no progress in {CLIENT_ATTEMPTS_MAX} attempts");
}

fn request(b: &Batch, period: pricing::BillingPeriod) -> BatchRequest {
    BatchRequest {
        batch_id: b.key.clone(),
        format: Some(b.format),
        period: Some(period),
        account: None,
        mode: Mode::Interim,
        export: b.bytes.clone(),
    }
}

impl<B: Backend> Sim<B> {
    fn new(
        seed: u64,
        opts: GenOptions,
        rule: DedupeRule,
        backend: B,
        guard: Box<dyn std::any::Any>,
    ) -> Sim<B> {
        let mut rng = Rng::new(seed);
        let scen = gen::scenario(seed, &mut rng, opts);
        let odds = if scen.wide { WIDE_ODDS } else { ODDS };
        let store = Arc::new(Chaos::new(FaultyStore::new(backend), rng.fork(), odds));
        let clock = Arc::new(AtomicI64::new(scen.period(0).start.timestamp() + 86_400));
        let mut config = RaterConfig::from_json(&scen.catalog_json, &scen.accounts_json, ISSUER)
            .unwrap_or_else(|e| panic!("seed {seed}: generated config refused: {e}"));
        let c = clock.clone();
        config.clock = Arc::new(move || c.load(Ordering::SeqCst));
        // Answer "in progress" at once: the simulated client decides when to retry.
        config.in_progress_wait_ms_max = 0;
        // Every other seed sorts record ids through temporary files, in runs of 1 to 8 ids, so
        // the external sort meets every fault the store injects.
        if seed % 2 == 0 {
            config.id_run_entries = 1 + (seed / 2 % 8) as usize;
        }
        Sim {
            rng,
            scen,
            store,
            config: Arc::new(config),
            clock,
            rule,
            events: Arc::new(Stats::default()),
            checks: Stats::default(),
            acked: BTreeSet::new(),
            chain: Chain::default(),
            objects: SimObjects::default(),
            sharded: BTreeMap::new(),
            shard_rt: ShardRuntime::new(),
            _guard: guard,
        }
    }

    async fn outcome(mut self) -> Outcome {
        if self.scen.wide {
            let widest = self
                .scen
                .batches
                .iter()
                .map(|b| {
                    let accounts: BTreeSet<&str> = b
                        .records
                        .iter()
                        .map(|&r| self.scen.records[r].account.as_str())
                        .collect();
                    accounts.len()
                })
                .max()
                .unwrap_or(0);
            if widest > rater::limits::COMMIT_ACCOUNTS_PER_TRANSACTION_MAX {
                self.events
                    .bump("scenarios with a batch over more than 99 accounts");
            }
        }
        self.run().await;
        let mut faults = self.store.stats.take();
        faults.extend(self.events.take());
        Outcome {
            faults,
            checks: self.checks.take(),
        }
    }

    /// The store under the faults: the checks read its true state.
    fn embedded(&self) -> &B {
        self.store.inner().inner()
    }

    /// Batches committed now, from the store's ledgers (not from what clients saw: a lost
    /// answer leaves a committed batch that its client believes failed).
    async fn committed(&self) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for (i, b) in self.scen.batches.iter().enumerate() {
            let ids = match self.sharded.get(&i) {
                Some(shards) => shards.clone(),
                None => vec![b.id.clone()],
            };
            let mut done = true;
            for id in &ids {
                done &= matches!(
                    self.embedded().ledger(id).await.expect("ledger"),
                    Some(Ledger::Done(_))
                );
            }
            if done {
                out.insert(i);
            }
        }
        assert!(
            self.acked.is_subset(&out),
            "a batch acknowledged to its client is not committed: acked {:?}, committed {out:?}",
            self.acked
        );
        out
    }

    fn records_of(&self, batches: &BTreeSet<usize>) -> Vec<&UsageRecord> {
        batches
            .iter()
            .flat_map(|&b| self.scen.batches[b].records.iter())
            .map(|&r| &self.scen.records[r])
            .collect()
    }

    /// The month (index into `scen.months`) of a period id.
    fn month_of(&self, period_id: &str) -> usize {
        self.scen
            .months
            .iter()
            .position(|m| m.period.id() == period_id)
            .unwrap_or_else(|| panic!("period {period_id} is not one of the scenario's"))
    }

    /// The model's invoice of `account`'s `month` for the `committed` batches (of any month:
    /// only the month's count).
    fn model_invoice(
        &self,
        committed: &BTreeSet<usize>,
        account: &str,
        month: usize,
    ) -> reference::ModelInvoice {
        let of_month: BTreeSet<usize> = committed
            .iter()
            .copied()
            .filter(|&b| self.scen.batches[b].month == month)
            .collect();
        let all = self.records_of(&of_month);
        let counted = reference::counted(all.iter().copied(), account, self.rule);
        reference::invoice(&self.scen.model, account, &counted)
    }

    /// An invoice equals the model's: a final one the model's final of its month (figured when
    /// it was issued), an interim one the model's for the `committed` batches, with the account
    /// summary of the balance chain and payments as they are now.
    fn check_invoice(&self, what: &'static str, inv: &Invoice, committed: &BTreeSet<usize>) {
        let month = self.month_of(&inv.period_id);
        if inv.kind == InvoiceKind::Final {
            self.check_final(what, inv, month);
            return;
        }
        let model = self.model_invoice(committed, &inv.account, month);
        let minor_units = self.scen.model.minor_units;
        let (statement, payments) = self.model_statement(&inv.account, month, model.total, false);
        let r = reference::compare(inv, &model, minor_units)
            .and_then(|()| reference::compare_statement(inv, &statement, &payments, minor_units));
        if let Err(e) = r {
            panic!("{what} of {} {} differs from the reference model (committed batches {committed:?}): {e}", inv.account, inv.period_id);
        }
        self.checks.bump(what);
    }

    async fn check_response(&self, r: &RateResponse) {
        if !r.replayed {
            self.events
                .add("records dropped as repeated ids", r.duplicates_dropped);
        }
        for inv in &r.invoices {
            // Per account: a batch a crash left between two commit transactions is visible in
            // the accounts it committed.
            let month = self.month_of(&inv.period_id);
            let committed = self.committed_for(&inv.account, month).await;
            self.check_invoice("batch answer = model", inv, &committed);
        }
    }

    async fn deliver(&mut self, b: usize) -> RateResponse {
        let req = self.request(b);
        let r = deliver(&self.store, &self.config, &self.clock, &self.events, req)
            .await
            .unwrap_or_else(|e| panic!("batch {b} refused: {e}"));
        self.acked.insert(b);
        r
    }

    fn request(&self, b: usize) -> BatchRequest {
        let batch = &self.scen.batches[b];
        request(batch, self.scen.period(batch.month))
    }

    /// The months one after the other: each one's deliveries (with some of the next month's
    /// arriving early) and payments, then its close; then the checks of the whole run.
    async fn run(&mut self) {
        let mut early: BTreeSet<usize> = BTreeSet::new();
        for m in 0..self.scen.months.len() {
            let start = self.scen.period(m).start.timestamp() + 86_400;
            self.clock.fetch_max(start, Ordering::SeqCst);
            let mut order: Vec<usize> = self.scen.months[m]
                .batches
                .iter()
                .copied()
                .filter(|b| !early.contains(b))
                .collect();
            if let Some(next) = self.scen.months.get(m + 1) {
                // Usage of the next month arriving before this one is closed.
                for &b in &next.batches {
                    if self.rng.chance(15) {
                        early.insert(b);
                        order.push(b);
                        self.events
                            .bump("batches of the next month before the close");
                    }
                }
            }
            self.deliveries(m, order).await;
            let of_month: BTreeSet<usize> = self.scen.months[m].batches.iter().copied().collect();
            let all = self.committed().await;
            assert!(
                of_month.is_subset(&all),
                "every batch of month {m} is committed before its close"
            );
            self.check_storage(m, &all).await;
            if self.scen.conflict.as_ref().is_some_and(|c| c.month == m) {
                self.conflicting_record_id().await;
            }
            self.close_month(m).await;
            self.after_close(m).await;
        }
        let all = self.committed().await;
        assert_eq!(
            all.len(),
            self.scen.batches.len(),
            "every batch is committed in the end"
        );
        for m in 0..self.scen.months.len() {
            self.check_storage(m, &all).await;
        }
        self.end_of_run().await;
    }

    /// Month `m`'s deliveries in a shuffled order, meeting every fault, with its payments,
    /// the ghost (in its month) and interim invoices between them.
    async fn deliveries(&mut self, m: usize, mut order: Vec<usize>) {
        self.rng.shuffle(&mut order);
        if order.windows(2).any(|w| w[0] > w[1]) {
            self.events.bump("batches delivered out of order");
        }
        let mut payments = self.scen.months[m].payments.clone().into_iter();
        let mut deferred: Vec<usize> = Vec::new();
        let mut ghost_due = self.scen.ghost.as_ref().is_some_and(|g| g.month == m);
        for &b in &order {
            let action = self.rng.below(100);
            if action < 20 {
                self.crash_then_retry(b, &mut deferred).await;
            } else if action < 35 {
                self.concurrent_duplicates(b).await;
            } else if action < 50 && self.shardable(b) {
                self.sharded_delivery(b).await;
            } else {
                let first = self.deliver(b).await;
                self.check_response(&first).await;
                if self.rng.chance(25) {
                    let again = self.deliver(b).await;
                    self.events.bump("duplicate delivery (sequential)");
                    assert!(again.replayed, "a second delivery rated batch {b} again");
                    assert_eq!(again.invoices.len(), first.invoices.len());
                    self.check_response(&again).await;
                }
            }
            if ghost_due && !self.acked.is_empty() && self.rng.chance(50) {
                self.ghost(m).await;
                ghost_due = false;
            }
            if !deferred.is_empty() && self.rng.chance(30) {
                let d = deferred.remove(0);
                let r = self.deliver(d).await;
                self.events.bump("crashed batch retried later");
                self.check_response(&r).await;
            }
            if self.rng.chance(50) {
                if let Some(p) = payments.next() {
                    self.pay(&p).await;
                }
            }
            if self.rng.chance(40) {
                self.interim_check(m).await;
            }
        }
        for d in std::mem::take(&mut deferred) {
            let r = self.deliver(d).await;
            self.events.bump("crashed batch retried later");
            self.check_response(&r).await;
        }
        if ghost_due {
            self.ghost(m).await;
        }
        for p in payments {
            self.pay(&p).await;
            if self.rng.chance(30) {
                self.interim_check(m).await;
            }
        }
    }

    /// A delivery that crashes after k writes, then a retry now or later.
    async fn crash_then_retry(&mut self, b: usize, deferred: &mut Vec<usize>) {
        let groups = self
            .accounts_of(b)
            .len()
            .div_ceil(COMMIT_ACCOUNTS_PER_TRANSACTION_MAX);
        if groups > 1 && self.rng.chance(50) {
            // Between two commit transactions: the first ones are visible, the rest is not.
            let j = self.rng.range(1, groups as u64 - 1) as usize;
            self.store.inner().crash_after_commits(j);
            self.events.bump("crash between commit transactions");
        } else {
            let k = self.rng.below(6) as usize;
            self.store.inner().crash_after(k);
        }
        let req = self.request(b);
        let r = rate_batch(&*self.store, &self.config, req).await;
        self.store.inner().heal();
        match r {
            Ok(r) => {
                // k was enough for the whole batch.
                self.acked.insert(b);
                self.check_response(&r).await;
            }
            Err(e) => {
                assert!(e.retryable(), "a crash must be retryable: {e}");
                self.events.bump("crash after k writes");
                if self.rng.chance(50) {
                    deferred.push(b);
                    // Meanwhile the half-done batch must be invisible.
                    self.interim_check(self.scen.batches[b].month).await;
                } else {
                    let r = self.deliver(b).await;
                    self.events.bump("crashed batch retried at once");
                    self.check_response(&r).await;
                }
            }
        }
    }

    /// The key a batch is dropped under as an export: its file name names the batch's period
    /// (the window its records must lie in, as the request's `period` does).
    fn export_key(&self, b: usize) -> String {
        let batch = &self.scen.batches[b];
        let ext = match batch.format {
            rater::Format::Csv => "csv",
            _ => "jsonl",
        };
        format!(
            "exports/sim/{} b{b}.{ext}",
            self.scen.period(batch.month).id()
        )
    }

    /// Whether a batch can go as a sharded export: canonical text of at least two lines after
    /// its header, and a key that names its period.
    fn shardable(&self, b: usize) -> bool {
        let batch = &self.scen.batches[b];
        matches!(batch.format, rater::Format::Csv | rater::Format::JsonLines)
            && batch.records.len() >= 4
            && rater::exports::window_of_key(&self.export_key(b))
                == Some(self.scen.period(batch.month))
    }

    /// A batch dropped in the bucket as an export larger than a shard: cut into 2 to 5 shards,
    /// whose messages are handled in a shuffled order, some twice, some crashing after k
    /// writes and delivered again (now or after the others), the store's faults failing some
    /// (handed out again, as SQS does). The export ends rated; every shard exactly once.
    async fn sharded_delivery(&mut self, b: usize) {
        let bytes = self.scen.batches[b].bytes.clone();
        let pieces = self.rng.range(2, 5);
        self.objects
            .set_shard_bytes((bytes.len() as u64).div_ceil(pieces).max(1));
        let key = self.export_key(b);
        self.objects.put_export(&key, &bytes);
        let loc = rater::objects::ObjectLoc {
            bucket: "sim".into(),
            key: key.clone(),
            version_id: None,
        };
        let event: rater::exports::S3Event =
            serde_json::from_value(serde_json::json!({"Records": [{
                "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "sim"}, "object": {"key": key.replace(' ', "+")}}
            }]}))
            .expect("an S3 event");
        // The trigger, retried (as Lambda retries an asynchronous event) until it answers.
        let mut sharded = None;
        for _ in 0..CLIENT_ATTEMPTS_MAX {
            let (store, config, objects, event) = (
                self.store.clone(),
                self.config.clone(),
                self.objects.clone(),
                event.clone(),
            );
            let r = self
                .shard_rt
                .run(async move {
                    rater::shards::handle_s3_event(&*store, &config, &objects, event).await
                })
                .await;
            match r {
                Ok(out) => {
                    sharded = Some(out[0].clone());
                    break;
                }
                Err(e) if e.retryable() => self.events.bump("shard trigger retried"),
                Err(e) => panic!("batch {b} as an export: {e}"),
            }
        }
        let out = sharded.expect("the trigger answered");
        let Some(batch_id) = out.batch_id.clone().filter(|_| out.status == "sharded") else {
            // Too small to cut after all (a single line past the header): rated whole, under
            // the object's batch id, which `committed` does not know: rate it as the client
            // would instead. (Generated batches are cut; this is a guard.)
            panic!("batch {b} was not cut: {out:?}");
        };
        let shards = out.shards.expect("a sharded outcome names its shards");
        self.sharded.insert(
            b,
            (0..shards)
                .map(|n| rater::shards::shard_batch_id(&batch_id, n))
                .collect(),
        );
        self.events.bump("sharded deliveries");
        let mut held = 0;
        for _ in 0..CLIENT_ATTEMPTS_MAX * 4 {
            let mut messages = self.objects.take_messages();
            if messages.is_empty() {
                break;
            }
            self.rng.shuffle(&mut messages);
            for m in messages {
                let msg: rater::shards::ShardMessage =
                    serde_json::from_str(&m).expect("a shard message");
                let crash = msg.step == rater::shards::Step::Rate && self.rng.chance(20);
                if crash {
                    self.store.inner().crash_after(self.rng.below(6) as usize);
                }
                let times = if !crash && self.rng.chance(20) { 2 } else { 1 };
                let mut failed = false;
                for _ in 0..times {
                    let (store, config, objects, sent) = (
                        self.store.clone(),
                        self.config.clone(),
                        self.objects.clone(),
                        msg.clone(),
                    );
                    let r = self
                        .shard_rt
                        .run(async move {
                            rater::shards::handle(&*store, &config, &objects, &sent).await
                        })
                        .await;
                    match r {
                        Ok(_) if times == 2 => self.events.bump("shard message delivered twice"),
                        Ok(_) => {}
                        Err(RaterError::BatchInProgress { .. }) => {
                            failed = true;
                            held += 1;
                            if held >= HELD_ANSWERS_BEFORE_WAITING_OUT {
                                self.clock.fetch_add(LEASE_S + 1, Ordering::SeqCst);
                                self.events.bump("lease waited out (clock moved past it)");
                                held = 0;
                            }
                        }
                        Err(e) if e.retryable() => failed = true,
                        Err(e) => panic!("batch {b}, shard {} {:?}: {e}", msg.shard, msg.step),
                    }
                }
                if crash {
                    self.store.inner().heal();
                    if failed {
                        self.events
                            .bump("shard crashed after k writes, delivered again");
                    }
                }
                if failed {
                    self.objects.requeue(m);
                }
            }
        }
        let status = {
            let (store, objects, loc) = (self.store.clone(), self.objects.clone(), loc.clone());
            let mut answer = None;
            for _ in 0..CLIENT_ATTEMPTS_MAX {
                let (store, objects, loc) = (store.clone(), objects.clone(), loc.clone());
                let now_s = self.config.now_s();
                match self
                    .shard_rt
                    .run(async move { rater::shards::status(&*store, &objects, &loc, now_s).await })
                    .await
                {
                    Ok(v) => {
                        answer = Some(v);
                        break;
                    }
                    Err(e) if e.retryable() => continue,
                    Err(e) => panic!("status of batch {b}'s export: {e}"),
                }
            }
            answer.expect("a status")
        };
        assert_eq!(status["status"], "rated", "batch {b} as shards: {status}");
        self.acked.insert(b);
        self.checks.bump("sharded export rated, each shard once");
        self.interim_check(self.scen.batches[b].month).await;
    }

    /// 2 to 4 deliveries of one batch at once.
    async fn concurrent_duplicates(&mut self, b: usize) {
        let n = self.rng.range(2, 4);
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (store, config, clock, events) = (
                self.store.clone(),
                self.config.clone(),
                self.clock.clone(),
                self.events.clone(),
            );
            let req = self.request(b);
            tasks.push(tokio::spawn(async move {
                deliver(&store, &config, &clock, &events, req).await
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(
                t.await
                    .expect("task")
                    .unwrap_or_else(|e| panic!("batch {b}: {e}")),
            );
        }
        self.events.bump("duplicate deliveries (concurrent)");
        self.acked.insert(b);
        // A rated answer may have been lost, so every answer can be a replay; never two ratings.
        assert!(
            answers.iter().filter(|a| !a.replayed).count() <= 1,
            "batch {b} was rated twice"
        );
        for a in &answers {
            self.check_response(a).await;
        }
        self.checks.bump("concurrent deliveries rate once");
    }

    /// A batch that crashes after its lease and chunks and is never retried.
    async fn ghost(&mut self, m: usize) {
        let Some(g) = self.scen.ghost.clone() else {
            return;
        };
        // Lease + one chunk per account (small batches): the commit never gets a write.
        let accounts: BTreeSet<&str> = g
            .records
            .iter()
            .map(|&r| self.scen.records[r].account.as_str())
            .collect();
        self.store.inner().crash_after(1 + accounts.len());
        let r = rate_batch(&*self.store, &self.config, request(&g, self.scen.period(m))).await;
        self.store.inner().heal();
        assert!(
            r.is_err(),
            "the ghost batch committed although it could not write its commit"
        );
        self.events
            .bump("batch abandoned after a crash (never retried)");
        self.interim_check(m).await;
    }

    /// An interim invoice of a random account in an open month (`m`, or the next one) equals
    /// the model's.
    async fn interim_check(&mut self, m: usize) {
        let account = self.rng.pick(&self.scen.accounts).clone();
        let month = if m + 1 < self.scen.months.len() && self.rng.chance(20) {
            m + 1
        } else {
            m
        };
        assert!(month >= self.chain.closed, "month {month} is closed");
        let inv =
            invoice_client(&self.store, &self.config, &account, self.scen.period(month)).await;
        let committed = self.committed_for(&account, month).await;
        self.check_invoice("interim invoice = model", &inv, &committed);
    }

    /// The accounts batch `b` brings records of.
    fn accounts_of(&self, b: usize) -> BTreeSet<&str> {
        self.scen.batches[b]
            .records
            .iter()
            .map(|&r| self.scen.records[r].account.as_str())
            .collect()
    }

    /// Batches committed into `account`'s `month` now: those done, and those a crash left
    /// between two commit transactions after committing this account's part (their other
    /// accounts may not see them yet; a retry completes them).
    async fn committed_for(&self, account: &str, month: usize) -> BTreeSet<usize> {
        let mut out = self.committed().await;
        let key = [(account.to_string(), self.scen.period(month).id())];
        for (i, b) in self.scen.batches.iter().enumerate() {
            if b.month != month || out.contains(&i) {
                continue;
            }
            let ids = match self.sharded.get(&i) {
                Some(shards) => shards.clone(),
                None => vec![b.id.clone()],
            };
            for id in &ids {
                let states = self
                    .embedded()
                    .partitions(id, &key)
                    .await
                    .expect("partitions");
                if states[0].own.is_some() {
                    out.insert(i);
                }
            }
        }
        out
    }

    /// Committed usage of month `m` equals the model's, and every chunk belongs to a committed
    /// batch or to the abandoned ghost (whose chunks no reader sees).
    async fn check_storage(&self, m: usize, committed: &BTreeSet<usize>) {
        let store = self.embedded();
        let period_id = self.scen.period(m).id();
        let committed: BTreeSet<usize> = committed
            .iter()
            .copied()
            .filter(|&b| self.scen.batches[b].month == m)
            .collect();
        let committed = &committed;
        let records = self.records_of(committed);
        for account in &self.scen.accounts {
            let pu = store
                .period_usage(account, &period_id)
                .await
                .expect("usage");
            let mut got = reference::ModelUsage::new();
            for (k, t) in &pu.usage.totals {
                assert_eq!(&k.account, account);
                let e = got.entry((k.product.clone(), k.meter.clone())).or_default();
                e.0 += t.quantity;
                e.1 += t.records;
            }
            let counted = reference::counted(records.iter().copied(), account, self.rule);
            let want = reference::usage(&counted);
            assert_eq!(
                got, want,
                "committed usage of {account} in {period_id}: every record exactly once"
            );
            // A batch counts in the account's period when it brought a record of the account
            // (at most), and surely when it brought one no other committed batch also holds
            // (a batch whose records were all dropped as duplicates commits nothing there).
            let of_account = |b: usize| -> Vec<usize> {
                self.scen.batches[b]
                    .records
                    .iter()
                    .copied()
                    .filter(|&r| &self.scen.records[r].account == account)
                    .collect()
            };
            // A sharded batch is one stored batch per shard.
            let most = committed
                .iter()
                .filter(|&&b| !of_account(b).is_empty())
                .map(|b| self.sharded.get(b).map_or(1, Vec::len))
                .sum::<usize>();
            let least = committed
                .iter()
                .filter(|&&b| {
                    of_account(b).iter().any(|r| {
                        committed
                            .iter()
                            .filter(|&&o| o != b)
                            .all(|&o| !self.scen.batches[o].records.contains(r))
                    })
                })
                .count();
            assert!(
                (least..=most).contains(&pu.batches),
                "committed batches of {account} in {period_id}: {} not in {least}..={most}",
                pu.batches
            );
        }
        self.checks.bump("committed usage = model");
        let ghost = self.scen.ghost.as_ref().map(|g| g.id.as_str());
        let items = store.items().await;
        for Item { pk, sk, .. } in &items {
            if !pk.starts_with("USAGE#") {
                continue;
            }
            let Some((batch, n)) = parse_chunk_sk(sk) else {
                continue;
            };
            match store.ledger(batch).await.expect("ledger") {
                Some(Ledger::Done(_)) => {
                    let count = items
                        .iter()
                        .find(|i| i.pk == *pk && i.sk == "#COMMITTED")
                        .and_then(|c| c.committed.get(batch).copied())
                        .unwrap_or_else(|| {
                            panic!("chunk {pk} / {sk} of a done batch is not committed")
                        });
                    assert!(
                        u64::from(n) < count,
                        "chunk {pk} / {sk} beyond the committed count {count}"
                    );
                }
                _ => assert_eq!(
                    Some(batch),
                    ghost,
                    "chunk {pk} / {sk} of an uncommitted batch other than the abandoned one"
                ),
            }
        }
        self.checks.bump("no half-written batch visible");
    }

    /// Delivers a batch that must be refused, and proves the store is byte-for-byte unchanged.
    async fn deliver_refused(&self, batch: &Batch, what: &str) -> RaterError {
        let before = self.embedded().items().await;
        let r = deliver(
            &self.store,
            &self.config,
            &self.clock,
            &self.events,
            request(batch, self.scen.period(batch.month)),
        )
        .await;
        let err = match r {
            Err(e) => e,
            Ok(ok) => panic!("{what} was not refused: {ok:?}"),
        };
        assert_eq!(
            self.embedded().items().await,
            before,
            "refused {what} wrote something"
        );
        err
    }

    /// A record id already counted, sent again with another quantity: the batch is refused
    /// whole, naming the record, and nothing is written.
    async fn conflicting_record_id(&mut self) {
        let Some(bad) = self.scen.conflict.clone() else {
            return;
        };
        let id = self.scen.records[bad.records[0]].record_id.clone();
        match self
            .deliver_refused(&bad, "a record id reused with other content")
            .await
        {
            RaterError::BadRecords(e) => {
                assert_eq!(e.total, 1, "{e}");
                assert_eq!(e.errors[0].record_id, id);
                assert_eq!(e.errors[0].field, "record_id");
                assert!(matches!(
                    e.errors[0].rule,
                    pricing::RecordRule::RecordIdReused { .. }
                ));
            }
            other => panic!("a record id reused with other content: wrong error {other:?}"),
        }
        self.events.bump("same record id with other content");
        self.checks
            .bump("conflicting record id refused, nothing written");
    }
}
