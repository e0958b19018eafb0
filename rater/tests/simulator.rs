//! The seeded fault simulator: the real handler over a fault-injecting embedded store, checked against a reference model.
//!
//! # What a run does
//!
//! A seed ([`sim::rng::Rng`], SplitMix64; no clock, no OS randomness) generates a catalog
//! (a currency with 0, 2 or 3 minor units, 1 to 4 products charging per-unit prices on meters in
//! hours, gigabytes fed in bytes, and requests), 1 to 4 accounts with or without one
//! invoice-level tax, and 10 to 80 usage records of one month split into 1 to 6 batches of
//! canonical CSV or JSON Lines, with an idempotency key or identified by content hash. One
//! scenario in twelve is wide: 100 to 300 accounts with two records each in one or two
//! batches, so that a batch spans more accounts than one commit transaction holds (99) and
//! commits in several; its faults are rarer per call (it makes a thousand calls or more).
//! The batches go to [`rater::rate_batch`] in a shuffled order through
//! `Chaos<FaultyStore<EmbeddedStore>>`, meeting:
//!
//! - duplicate deliveries, one after the other and 2 to 4 at once (tokio tasks);
//! - a crash between two commit transactions of a wide batch (the first ones visible, the
//!   ledger still in progress; interim invoices then see it in exactly the accounts it
//!   committed), and
//! - a crash after k writes (k in 0..6) with the retry at once or after later batches, the
//!   crashed attempt's lease left behind and taken over once the client waits it out (the
//!   handler reads time from `RaterConfig::clock`; the simulated client moves that clock past
//!   the lease after three "in progress" answers);
//! - a batch dropped in an exports bucket as an export larger than a shard (`rater::shards`):
//!   cut into 2 to 5 shards whose SQS messages are handled shuffled, some twice, some
//!   crashing after k writes, some failed by the store's faults and handed out again (found
//!   on its first run: a rate message that arrives while the export still says `checking`,
//!   which the protocol allows, was refused);
//! - a batch abandoned for good after writing its lease and chunks (the "ghost");
//! - throttling on any store call, writes applied but their answer lost, commits and finalizes
//!   cancelled by their condition, and task switches between calls; the client retries what
//!   `RaterError::retryable` says is retryable, like a real client;
//! - interim invoices at random moments; every account finalized (sometimes 2 or 3 finalizes at
//!   once), then finalized again; late usage for the closed period; a replay after the close.
//!
//! # Invariants checked
//!
//! - Every batch answer, interim invoice and final invoice equals the reference model's
//!   ([`sim::reference`]) for exactly the batches committed at that moment, to the minor unit.
//!   "Committed" is read from the store's ledgers, and every batch a client saw succeed must be
//!   among them (a lost answer makes the converse false).
//! - Committed usage per account equals the model's totals: every record counted exactly once.
//! - A batch is rated at most once however many deliveries race.
//! - Final invoice numbers are `sim-000001..N` for N accounts (no gap, no duplicate); the counter
//!   is N; a second finalize is refused naming the same number.
//! - Late usage is refused with `PeriodClosed` naming the final invoice, and the store's content
//!   is byte-for-byte unchanged; so is it after a replay.
//! - Nothing half-written is visible: every usage chunk belongs to a committed batch (below its
//!   committed chunk count) or to the abandoned ghost, whose usage no reader sees.
//!
//! # The same record in two batches (decision, and what the simulator found)
//!
//! Records carry ids (`record_id`). A record id counts **once per account and period**: a later
//! copy with identical content is **dropped** (an exporter re-sending an overlapping window is
//! normal at-least-once delivery and must not fail the batch), a later copy with *different*
//! content is **rejected**, whole batch, naming the record (one id meaning two usages is a
//! broken exporter). Records without an id count as delivered. The rule lives in
//! `rater::dedupe`; the reference model implements it as
//! [`sim::reference::DedupeRule::FirstRecordIdWins`] in plain sets.
//!
//! Every run generates overlaps (1 or 2 records of one batch copied into another, often in the
//! other format: CSV one side, JSON Lines the other), records without ids (15 %), and one
//! batch reusing a counted id with another quantity. `SIM_OVERLAP=0` turns the overlaps off.
//!
//! Found by this simulator (first run with overlaps): the rater deduplicated batches only, so
//! a record delivered in two batches was **counted twice**. Fixed by the record-id index
//! (`rater::dedupe`, stored per account and period, checked under the commit's version
//! condition); pinned by `regression_same_record_id_in_two_batches_was_counted_twice` in
//! `tests/handler.rs` and its DynamoDB Local twin.
//!
//! # Running it
//!
//! `cargo test -p rater --test simulator` runs 300 seeds (about 160 s in debug on two
//! shared cores with other tests running, the store on tmpfs when `/dev/shm` exists).
//! `SIM_SEEDS=5000` runs more (nightly); `SEED=n` replays exactly seed n (the same
//! scenario and the same fault schedule: one current-thread runtime with paused time, so tasks
//! interleave the same way on every run). A failure names its seed. Run with `--nocapture` to
//! see the summary line: seeds, faults by kind, checks passed by kind.
//!
//! `simulator_over_dynamodb_local_matches_the_reference_model` runs the same driver over
//! `DynamoStore` on DynamoDB Local (5 seeds by default, `SIM_DYNAMO_SEEDS=n` for more), a new
//! table per seed, with `UnprocessedItemsInterceptor` holding back BatchWriteItem items at the
//! client layer; it uses real time (the SDK's own timeouts would fire at once under paused
//! time), so concurrent interleavings there are not replayed exactly, only the scenario and
//! the fault schedule's draws.
//!
//! Not covered yet: `Mode::Final` batches, a finalize racing a commit of the same account (the
//! real `FinalizeConflict` and late-commit `PeriodClosed` paths; both are only injected here),
//! and more than one period.

mod sim;

use std::collections::BTreeMap;
use std::time::Instant;

use sim::gen::GenOptions;
use sim::reference::DedupeRule;

const SEEDS_DEFAULT: u64 = 300;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got `{v}`"))
    })
}

fn run(opts: GenOptions, rule: DedupeRule) {
    let seeds: Vec<u64> = match env_u64("SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect(),
    };
    let started = Instant::now();
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut checks: BTreeMap<&'static str, u64> = BTreeMap::new();
    let trace = std::env::var("SIM_TRACE").is_ok_and(|v| v == "1");
    for &seed in &seeds {
        let at = Instant::now();
        let outcome = std::panic::catch_unwind(|| sim::run_seed(seed, opts, rule))
            .unwrap_or_else(|_| panic!("simulator seed {seed} failed (see the message above); replay it with SEED={seed}"));
        if trace {
            // One line per seed: its time and everything it counted, so that two runs of a seed
            // can be compared (`SEED=n` replays the same counts).
            println!(
                "seed {seed}: {:.2} s; {:?}; {:?}",
                at.elapsed().as_secs_f64(),
                outcome.faults,
                outcome.checks
            );
        }
        for (k, n) in outcome.faults {
            *faults.entry(k).or_default() += n;
        }
        for (k, n) in outcome.checks {
            *checks.entry(k).or_default() += n;
        }
    }
    let list = |m: &BTreeMap<&str, u64>| {
        m.iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "simulator: {} seeds in {:.1} s; faults and events: {}; checks passed: {}",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        list(&faults),
        list(&checks)
    );
}

#[test]
fn simulator_counts_every_record_once_and_matches_the_reference_model() {
    let overlap = !std::env::var("SIM_OVERLAP").is_ok_and(|v| v == "0");
    run(GenOptions { overlap }, DedupeRule::FirstRecordIdWins);
}

/// The same simulator over DynamoDB Local (the real AWS jar, started by the `e2e` harness), a
/// new table per seed, with BatchWriteItem UnprocessedItems injected at the client layer on top
/// of the store faults. 5 seeds by default (`SIM_DYNAMO_SEEDS=n` for more); `SEED=n` replays one.
#[test]
fn simulator_over_dynamodb_local_matches_the_reference_model() {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use rater::store::fault::{UnprocessedItemsInterceptor, UnprocessedPlan};

    let seeds: Vec<u64> = match env_u64("SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("SIM_DYNAMO_SEEDS").unwrap_or(5)).collect(),
    };
    let server = e2e::DynamoLocal::shared();
    let started = Instant::now();
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut checks = 0u64;
    for &seed in &seeds {
        let plan = UnprocessedPlan::default();
        // Hold back items from the first BatchWriteItem calls of the run, as throttling does.
        plan.hold(
            [1, 0, 2, 0, 0, 1, 3]
                .into_iter()
                .cycle()
                .skip(seed as usize % 7)
                .take(12),
        );
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(server.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "sim"))
            .interceptor(UnprocessedItemsInterceptor::new(plan.clone()))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sim::run_seed_on(seed, || async move {
                let store = rater::DynamoStore::new(client, format!("ratecard-sim-{seed}"));
                store.create_table().await.expect("create the table");
                store
            })
        }))
        .unwrap_or_else(|_| {
            panic!("DynamoDB simulator seed {seed} failed (see above); replay it with SEED={seed}")
        });
        for (k, n) in outcome.faults {
            *faults.entry(k).or_default() += n;
        }
        *faults.entry("UnprocessedItems held back").or_default() +=
            plan.held.load(std::sync::atomic::Ordering::SeqCst) as u64;
        checks += outcome.checks.values().sum::<u64>();
    }
    println!(
        "simulator over DynamoDB Local: {} seeds in {:.1} s; faults and events: {faults:?}; {checks} checks passed",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
}
