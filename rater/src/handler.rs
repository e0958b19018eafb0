//! The rating protocol as plain async functions generic over a [`Store`]: rate a batch exactly once, compute interim invoices, finalize a period.
//!
//! Order of a batch (see the crate docs for the items): validate and aggregate the whole export
//! in memory-bounded form (nothing is written for bad input); return the stored result if the
//! batch is already done; refuse late usage for a closed period; take the lease (waiting for a
//! concurrent delivery of the same batch instead of rating it twice); write the chunks; commit;
//! answer with the invoices of the batch's accounts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pricing::usage::same_text;
use pricing::{
    AccountBook, Aggregator, BatchErrors, BillingPeriod, Catalog, Invoice, InvoiceKind, PeriodKind,
    RecordError, RecordRule, UsageRecord,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dedupe::{self, BatchIds, Bits, InBatch, Settled, IDS_PER_CHUNK};
use crate::error::{RaterError, StoreError};
use crate::import::{read_records, Format, ImportError, DETECT_PREFIX_BYTES};
use crate::limits::{
    ACCOUNT_ID_BYTES_MAX, ANSWER_INVOICES_MAX, ANSWER_INVOICE_BYTES_MAX, BACKOFF_BASE_MS,
    BACKOFF_CAP_MS, BATCH_ID_BYTES_MAX, COMMITTED_ITEM_BYTES_MAX,
    COMMIT_ACCOUNTS_PER_TRANSACTION_MAX, COMMIT_ATTEMPTS_MAX, FINALIZE_ATTEMPTS_MAX,
    FINAL_INVOICE_BYTES_MAX, ID_PUT_BYTES, IN_PROGRESS_WAIT_MS_MAX, ISSUER_BYTES_MAX, LEASE_S,
    PAYLOAD_BYTES_MAX, SUMMARY_PARTITIONS_MAX,
};
use crate::model::{
    chunk_counts, committed_growth_bytes, encode_chunks, BatchSummary, ChunkKind, ConfigKind,
    Ledger, Partition, UsageChunk,
};
use crate::store::{
    invoice_number, Commit, CommitAccount, Counts, Finalize, Keep, Lease, LeaseOutcome,
    PartitionState, Store,
};

/// Interim: rate and answer running invoices. Final: rate, then issue the period's numbered
/// invoice for every account in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Interim,
    Final,
}

impl std::str::FromStr for Mode {
    type Err = RaterError;
    fn from_str(s: &str) -> Result<Mode, RaterError> {
        match s.to_ascii_lowercase().as_str() {
            "interim" => Ok(Mode::Interim),
            "final" => Ok(Mode::Final),
            other => Err(RaterError::BadRequest {
                field: "mode",
                message: format!("`{other}` is not a mode (expected interim or final)"),
            }),
        }
    }
}

/// A clock in epoch seconds; injected so that tests can expire leases.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    })
}

/// Everything the handler needs besides the store: loaded once per process.
pub struct RaterConfig {
    pub catalog: Catalog,
    pub accounts: AccountBook,
    /// Who numbers final invoices (`RATECARD_ISSUER`).
    pub issuer: String,
    pub lease_s: i64,
    pub in_progress_wait_ms_max: u64,
    pub payload_bytes_max: usize,
    /// Record ids a batch holds in memory before spilling a sorted run to a temporary file
    /// ([`crate::limits::ID_RUN_ENTRIES`]; tests make it small to exercise the spill).
    pub id_run_entries: usize,
    /// Bytes of a `#COMMITTED` item batches may use ([`COMMITTED_ITEM_BYTES_MAX`]; tests make
    /// it small to fill a partition quickly).
    pub committed_item_bytes_max: usize,
    pub clock: Clock,
    /// Account id -> the kind of its billing periods.
    account_kinds: HashMap<String, PeriodKind>,
    config_stored: AtomicBool,
}

impl RaterConfig {
    /// Checks what the key design relies on: ids that cannot be confused inside a key.
    pub fn new(
        catalog: Catalog,
        accounts: AccountBook,
        issuer: &str,
    ) -> Result<RaterConfig, RaterError> {
        if issuer.is_empty() || issuer.contains('#') {
            return Err(RaterError::Config(format!(
                "issuer `{issuer}` must be non-empty and without `#`"
            )));
        }
        if issuer.len() > ISSUER_BYTES_MAX {
            return Err(RaterError::Config(format!(
                "issuer `{}` ({} bytes) is longer than the {ISSUER_BYTES_MAX} bytes allowed (it prefixes every invoice number)",
                pricing::error::shown(issuer),
                issuer.len()
            )));
        }
        for a in &accounts.accounts {
            if a.id.len() > ACCOUNT_ID_BYTES_MAX {
                return Err(RaterError::Config(format!(
                    "account id `{}` ({} bytes) is longer than the {ACCOUNT_ID_BYTES_MAX} bytes allowed (it is part of storage keys)",
                    pricing::error::shown(&a.id),
                    a.id.len()
                )));
            }
            if a.id.is_empty() || a.id.contains('#') {
                return Err(RaterError::Config(format!(
                    "account id `{}` must be non-empty and without `#` (it is part of storage keys)",
                    a.id
                )));
            }
        }
        let account_kinds = accounts
            .accounts
            .iter()
            .map(|a| (a.id.clone(), a.billing_period))
            .collect();
        Ok(RaterConfig {
            catalog,
            accounts,
            issuer: issuer.to_string(),
            lease_s: LEASE_S,
            in_progress_wait_ms_max: IN_PROGRESS_WAIT_MS_MAX,
            payload_bytes_max: PAYLOAD_BYTES_MAX,
            id_run_entries: crate::limits::ID_RUN_ENTRIES,
            committed_item_bytes_max: COMMITTED_ITEM_BYTES_MAX,
            clock: system_clock(),
            account_kinds,
            config_stored: AtomicBool::new(false),
        })
    }

    /// Parses a catalog and accounts file pair.
    pub fn from_json(
        catalog_json: &str,
        accounts_json: &str,
        issuer: &str,
    ) -> Result<RaterConfig, RaterError> {
        let catalog = Catalog::from_json(catalog_json)
            .map_err(|e| RaterError::Config(format!("catalog: {e}")))?;
        let accounts: AccountBook = pricing::parse_json(accounts_json).map_err(|e| {
            RaterError::Config(
                format!("accounts: {}", e).replace("invalid catalog", "invalid accounts"),
            )
        })?;
        RaterConfig::new(catalog, accounts, issuer)
    }

    pub fn now_s(&self) -> i64 {
        (self.clock)()
    }
}

/// One delivery of an export.
#[derive(Debug, Clone, Default)]
pub struct BatchRequest {
    /// The idempotency key; the SHA-256 of `export` when absent.
    pub batch_id: Option<String>,
    /// Detected from the content when absent.
    pub format: Option<Format>,
    /// The month of the first record when absent.
    pub period: Option<BillingPeriod>,
    /// When given, every record must belong to this account.
    pub account: Option<String>,
    pub mode: Mode,
    pub export: Vec<u8>,
}

/// The answer to a batch: the same on every delivery of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateResponse {
    pub batch_id: String,
    /// True when the batch had been rated before and nothing was written now.
    pub replayed: bool,
    /// Records in the export.
    pub records: u64,
    /// Records not counted because their id was counted before with the same content.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// Usage chunk items the batch stored.
    pub usage_items: u64,
    /// Accounts the batch brought usage for.
    #[serde(default)]
    pub accounts: u64,
    /// Account periods (partitions) the batch brought usage for: one invoice each.
    #[serde(default)]
    pub partitions: u64,
    /// `final` batches: the account periods finalized, with their invoice numbers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalized: Vec<Finalized>,
    /// The invoices of the batch's account periods, when the answer can hold them all: at
    /// most [`ANSWER_INVOICES_MAX`] and [`ANSWER_INVOICE_BYTES_MAX`] bytes of invoices.
    pub invoices: Vec<Invoice>,
    /// Invoices left out of the answer (a batch over many accounts): read each with
    /// `invoice_path`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invoices_omitted: u64,
    /// Where an account's invoice is read when left out: a Function URL `GET` query with
    /// `{account}` and `{period}` to fill in (`ratecard invoice --account ... --period ...`
    /// from the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_path: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An account period finalized by a `final` batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalized {
    pub account: String,
    pub period: String,
    pub number: String,
}

/// A whole export, validated and folded into usage totals.
#[derive(Debug)]
pub struct Aggregated {
    /// Accounts with usage in the batch, in order.
    pub accounts: Vec<String>,
    /// The account periods the batch's records fall in (each record in the period of its
    /// account's kind that holds its start), in order.
    pub partitions: Vec<Partition>,
    /// The batch's usage, already encoded as store chunks one account at a time (their
    /// `batch_id` is set when the batch id is known): the totals are never held twice.
    pub chunks: Vec<UsageChunk>,
    /// Distinct usage totals in the batch.
    pub usage_totals: u64,
    /// Records in the export (dropped duplicates included).
    pub records: u64,
    /// Records this pass left out ([`Pass::skip`]).
    pub skipped: u64,
    pub bytes: u64,
    pub sha256: String,
    /// The period the request limited the records to, if it named one.
    pub window: Option<BillingPeriod>,
    pub format: Format,
    /// The batch's record ids per partition, settled (one entry per id); first pass only.
    pub ids: Settled,
    /// What the record-id rule decided inside the batch.
    pub in_batch: InBatch,
    /// The record ids at the positions [`Pass::describe`] asked for.
    pub described: Vec<(u64, Option<String>)>,
}

/// What one pass over an export leaves out or looks up, by record position (sorted).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pass<'a> {
    /// Records not to count: duplicates of record ids counted before.
    pub skip: Option<&'a Bits>,
    /// Records whose id to report (for error messages).
    pub describe: &'a [u64],
}

/// Reads an export again for a second pass (see [`rate_aggregated`]).
pub type Reread<'a> = dyn Fn(&Pass<'_>) -> Result<Aggregated, RaterError> + Send + Sync + 'a;

impl Aggregated {
    /// The batch's usage decoded back from its chunks, for tests and benchmarks.
    pub fn usage(&self) -> pricing::Usage {
        let mut u = pricing::Usage::default();
        for c in &self.chunks {
            u.merge(
                &crate::model::decode_chunk(&c.account, &c.body).expect("chunks we encoded decode"),
            );
        }
        u
    }
}

/// Hex SHA-256 of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Validates a caller's batch id: it becomes part of keys, so it is short printable ASCII and
/// cannot start with `#` (reserved for the usage partition's own items).
pub fn check_batch_id(id: &str) -> Result<(), RaterError> {
    let bad = |message: String| RaterError::BadRequest {
        field: "batch_id",
        message,
    };
    if id.is_empty() || id.len() > BATCH_ID_BYTES_MAX {
        return Err(bad(format!(
            "must be 1 to {BATCH_ID_BYTES_MAX} bytes, got {}",
            id.len()
        )));
    }
    if id.starts_with('#') || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!(
            "`{id}` must be printable ASCII without spaces and must not start with `#`"
        )));
    }
    Ok(())
}

/// Reads, validates and aggregates a whole export from `input`, holding only totals in memory
/// (record ids beyond [`crate::limits::ID_RUN_ENTRIES`] go to a temporary file). Any bad
/// record rejects the export: the error lists them (record number, field, value, rule).
pub fn aggregate<R: Read>(
    config: &RaterConfig,
    format: Option<Format>,
    input: R,
    period: Option<BillingPeriod>,
    account: Option<&str>,
) -> Result<Aggregated, RaterError> {
    aggregate_pass(config, format, input, period, account, &Pass::default())
}

/// [`aggregate`], leaving out the records at `pass.skip`.
pub fn aggregate_pass<R: Read>(
    config: &RaterConfig,
    format: Option<Format>,
    input: R,
    period: Option<BillingPeriod>,
    account: Option<&str>,
    pass: &Pass<'_>,
) -> Result<Aggregated, RaterError> {
    // Detection needs the first bytes; they are read once and put back in front of the rest.
    let mut input = input;
    let mut head = Vec::with_capacity(DETECT_PREFIX_BYTES);
    Read::take(&mut input, DETECT_PREFIX_BYTES as u64).read_to_end(&mut head)?;
    let format = match format {
        Some(f) => f,
        None => crate::import::detect(&head)?,
    };
    let mut reader = HashingReader {
        inner: std::io::Cursor::new(head).chain(input),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut periods = Periods::new(&config.catalog, period);
    let mut records = 0u64;
    let mut skipped = 0u64;
    // Record ids come from the first pass only: a pass that skips or describes records is
    // a second one, and collecting them again would hold every id twice.
    let first_pass = pass.skip.is_none() && pass.describe.is_empty();
    let mut ids = BatchIds::with_run_entries(config.id_run_entries);
    let mut described = Vec::new();
    // The last account found in the book and its period kind: consecutive records usually
    // share them, and a string comparison is cheaper than hashing the id again.
    let mut known_account = String::new();
    let mut known_kind = PeriodKind::Month;
    // The last record's partition key (`account#period`), for the record-id rule.
    let mut partition = String::new();
    let mut partition_of: Option<BillingPeriod> = None;
    let imported = read_records(
        format,
        &mut reader,
        &config.catalog,
        period,
        |index, rec| {
            records += 1;
            let refuse = |rule: RecordRule| RecordError {
                index,
                record_id: rec.record_id.clone(),
                field: "account",
                value: rec.account.clone(),
                rule,
            };
            if known_account.is_empty() || !same_text(&known_account, &rec.account) {
                let Some(kind) = config.account_kinds.get(&rec.account) else {
                    return Err(refuse(RecordRule::UnknownAccount));
                };
                known_account.clone_from(&rec.account);
                known_kind = *kind;
                partition_of = None;
            }
            if let Some(a) = account.filter(|a| *a != rec.account) {
                return Err(refuse(RecordRule::Malformed(format!(
                    "the batch was sent for account `{a}` only"
                ))));
            }
            let at = index as u64;
            if !pass.describe.is_empty() && pass.describe.binary_search(&at).is_ok() {
                described.push((at, rec.record_id.clone()));
            }
            if pass.skip.is_some_and(|s| s.get(at)) {
                skipped += 1;
                return Ok(());
            }
            let billed_in = periods.add(index, rec, known_kind)?;
            if first_pass && rec.record_id.is_some() {
                if partition_of != Some(billed_in) {
                    partition = Partition::new(rec.account.as_str(), billed_in.id()).key();
                    partition_of = Some(billed_in);
                }
                ids.add(index, rec, &partition);
            }
            Ok(())
        },
    );
    match imported {
        Ok(_) => {}
        Err(ImportError::Records(errors)) => return Err(RaterError::BadRecords(errors)),
        Err(ImportError::Empty { .. }) => return Err(RaterError::EmptyBatch),
        Err(e) => return Err(RaterError::Import(e)),
    }
    if records == 0 {
        return Err(RaterError::EmptyBatch);
    }
    let usage_totals = periods.totals() as u64;
    let (partitions, chunks) = periods.into_chunks();
    let accounts: Vec<String> = partitions
        .iter()
        .map(|p| p.account.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (ids, in_batch) = ids.settle().map_err(RaterError::TempFile)?;
    Ok(Aggregated {
        accounts,
        partitions,
        chunks,
        usage_totals,
        records,
        skipped,
        bytes: reader.bytes,
        sha256: hex(&reader.hasher.finalize()),
        window: period,
        format,
        ids,
        in_batch,
        described,
    })
}

/// A batch's aggregators, one per billing period its records fall in: each record is rated
/// into the period of its account's kind that holds its start (and must end inside it).
struct Periods<'c> {
    catalog: &'c Catalog,
    /// The period the request limited the records to.
    window: Option<BillingPeriod>,
    aggs: Vec<Aggregator<'c>>,
    /// The last record's aggregator: the next record's too, nearly always.
    last: usize,
}

impl<'c> Periods<'c> {
    fn new(catalog: &'c Catalog, window: Option<BillingPeriod>) -> Periods<'c> {
        Periods {
            catalog,
            window,
            aggs: Vec::new(),
            last: usize::MAX,
        }
    }

    /// Rates `rec` (of an account billed by periods of `kind`) into its period; returns it.
    fn add(
        &mut self,
        index: usize,
        rec: &UsageRecord,
        kind: PeriodKind,
    ) -> Result<BillingPeriod, RecordError> {
        if let Some(w) = self.window {
            let outside = |field: &'static str, at: chrono::DateTime<chrono::Utc>| RecordError {
                index,
                record_id: rec.record_id.clone(),
                field,
                value: at.to_rfc3339(),
                rule: RecordRule::OutsidePeriod { period: w.id() },
            };
            if !w.contains(rec.start) {
                return Err(outside("start", rec.start));
            }
            if rec.end > w.end() {
                return Err(outside("end", rec.end));
            }
        }
        let hit = |a: &Aggregator<'_>| {
            let p = a.period();
            p.kind == kind && p.contains(rec.start)
        };
        let at = match self.aggs.get(self.last) {
            Some(a) if hit(a) => self.last,
            _ => match self.aggs.iter().position(hit) {
                Some(i) => i,
                None => {
                    let p = BillingPeriod::containing(kind, rec.start);
                    self.aggs.push(Aggregator::new(self.catalog, p));
                    self.aggs.len() - 1
                }
            },
        };
        self.last = at;
        self.aggs[at].add(index, rec)?;
        Ok(self.aggs[at].period())
    }

    /// Distinct usage totals over every period.
    fn totals(&self) -> usize {
        self.aggs.iter().map(Aggregator::len).sum()
    }

    /// The partitions and their usage chunks, in partition order. One account's totals at a
    /// time: peak memory is the packed totals plus one account's usage, not a second full
    /// copy of the batch.
    fn into_chunks(mut self) -> (Vec<Partition>, Vec<UsageChunk>) {
        self.aggs.sort_by_key(|a| a.period());
        let mut parts: Vec<(Partition, Vec<UsageChunk>)> = Vec::new();
        for agg in self.aggs {
            let period_id = agg.period().id();
            agg.for_each_account(|account, usage| {
                let chunks = encode_chunks("", &period_id, &usage);
                parts.push((Partition::new(account, period_id.as_str()), chunks));
                Ok::<(), std::convert::Infallible>(())
            })
            .unwrap_or_else(|never| match never {});
        }
        // Partitions in (account, period) order: the order commits and answers list them.
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut partitions = Vec::with_capacity(parts.len());
        let mut chunks = Vec::new();
        for (p, c) in parts {
            partitions.push(p);
            chunks.extend(c);
        }
        (partitions, chunks)
    }
}

impl From<std::io::Error> for RaterError {
    fn from(e: std::io::Error) -> RaterError {
        RaterError::Import(ImportError::Read {
            message: e.to_string(),
        })
    }
}

/// Rates one delivery of an export held in memory (a Lambda payload): at most once, whatever
/// the retries, duplicates and crashes. See the module docs for the order of steps.
pub async fn rate_batch<S: Store>(
    store: &S,
    config: &RaterConfig,
    req: BatchRequest,
) -> Result<RateResponse, RaterError> {
    if req.export.len() > config.payload_bytes_max {
        return Err(RaterError::PayloadTooLarge {
            bytes: req.export.len(),
            max: config.payload_bytes_max,
        });
    }
    if req.export.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(RaterError::EmptyBatch);
    }
    if let Some(id) = &req.batch_id {
        check_batch_id(id)?;
    }
    let sha256 = sha256_hex(&req.export);
    let batch_id = req.batch_id.clone().unwrap_or_else(|| sha256.clone());
    // A batch rated before is answered from its ledger without parsing it again, so a replay
    // gives the same answer even if the catalog changed since.
    if let Some(Ledger::Done(summary)) = store.ledger(&batch_id).await? {
        return replay(store, config, summary, &sha256, req.account.as_deref()).await;
    }
    let batch = aggregate(
        config,
        req.format,
        req.export.as_slice(),
        req.period,
        req.account.as_deref(),
    )?;
    let (format, window, account) = (batch.format, batch.window, req.account.as_deref());
    let export = req.export.as_slice();
    let reread =
        move |pass: &Pass<'_>| aggregate_pass(config, Some(format), export, window, account, pass);
    rate_aggregated(
        store,
        config,
        batch,
        Some(batch_id),
        req.mode,
        req.account.as_deref(),
        &reread,
    )
    .await
}

/// Stores an aggregated batch exactly once and answers its invoices (the second half of
/// [`rate_batch`], also used by the CLI, which streams files of any size into [`aggregate`]).
///
/// `batch` is the first pass over the export (made with no [`Pass`]). `reread` reads the same
/// export again; it is called only when the batch holds record ids already counted (to
/// aggregate it without those copies) or conflicting ones (to name them).
pub async fn rate_aggregated<S: Store>(
    store: &S,
    config: &RaterConfig,
    batch: Aggregated,
    batch_id: Option<String>,
    mode: Mode,
    account: Option<&str>,
    reread: &Reread<'_>,
) -> Result<RateResponse, RaterError> {
    let batch_id = match batch_id {
        Some(id) => {
            check_batch_id(&id)?;
            id
        }
        None => batch.sha256.clone(),
    };
    if let Some(Ledger::Done(summary)) = store.ledger(&batch_id).await? {
        return replay(store, config, summary, &batch.sha256, account).await;
    }
    // One id with two contents inside the batch: bad input, refused before any write.
    if !batch.in_batch.conflicts.is_empty() {
        let conflicts: Vec<(u64, FirstSeen)> = batch
            .in_batch
            .conflicts
            .iter()
            .map(|&(i, first)| (i, FirstSeen::InBatch(first)))
            .collect();
        return Err(id_conflicts(reread, &batch, &conflicts));
    }
    if mode == Mode::Final && batch.partitions.len() > SUMMARY_PARTITIONS_MAX {
        return Err(RaterError::TooManyAccountsForFinal {
            accounts: batch.partitions.len(),
            max: SUMMARY_PARTITIONS_MAX,
        });
    }
    // Late usage and full partitions: refused before anything is written (the commit
    // re-checks closed periods atomically).
    let states = store.partitions(&batch_id, &partition_keys(&batch)).await?;
    check_closed(&states, &batch_id)?;
    // Record ids checked before any write, so that a conflict refuses the batch with nothing
    // written; checked again under the lease only if another batch commits meanwhile.
    let plan = check_ids(store, &batch, reread, &batch_id).await?;
    check_room(
        &states,
        &batch,
        &plan,
        &batch_id,
        config.committed_item_bytes_max,
    )?;
    ensure_config_stored(store, config).await?;

    let owner = format!("{:016x}", fastrand::u64(..));
    let started = Instant::now();
    let mut poll_ms = 50u64;
    loop {
        let now = config.now_s();
        let lease = Lease {
            batch_id: batch_id.clone(),
            owner: owner.clone(),
            expires_at: now + config.lease_s,
            content_sha256: batch.sha256.clone(),
        };
        match store.try_lease(&lease, now).await? {
            LeaseOutcome::Acquired => break,
            LeaseOutcome::Done(summary) => {
                return replay(store, config, *summary, &batch.sha256, account).await
            }
            LeaseOutcome::Held { expires_at } => {
                if started.elapsed() >= Duration::from_millis(config.in_progress_wait_ms_max) {
                    return Err(RaterError::BatchInProgress {
                        batch_id,
                        retry_after_s: (expires_at - now).clamp(1, config.lease_s) as u64,
                    });
                }
                tokio::time::sleep(Duration::from_millis(poll_ms)).await;
                poll_ms = (poll_ms * 2).min(1_000);
            }
        }
    }

    let stored = store_batch(store, config, batch, plan, &batch_id, &owner, mode, reread).await;
    let summary = match stored {
        Ok(summary) => summary,
        Err(e) => {
            // Best effort: a retry need not wait for the lease to expire. If this fails too,
            // the lease expires by itself; the chunks written are invisible until a commit.
            let _ = store.release(&batch_id, &owner).await;
            return Err(match e {
                RaterError::Store(StoreError::LeaseLost { batch_id }) => {
                    RaterError::BatchInProgress {
                        batch_id,
                        retry_after_s: 1,
                    }
                }
                e => e,
            });
        }
    };
    answer(store, config, &summary, account, false).await
}

/// The usage partitions (account, period) a batch writes into, in order.
fn partition_keys(batch: &Aggregated) -> Vec<(String, String)> {
    batch
        .partitions
        .iter()
        .map(|p| (p.account.clone(), p.period.clone()))
        .collect()
}

/// Refuses a batch, before its lease or before its commit, when one of the partitions it has
/// not committed into yet is closed (late usage).
fn check_closed(states: &[PartitionState], batch_id: &str) -> Result<(), RaterError> {
    let committed = states.iter().filter(|s| s.own.is_some()).count();
    let Some((s, number)) = states
        .iter()
        .filter(|s| s.own.is_none())
        .find_map(|s| s.closed.as_ref().map(|n| (s, n)))
    else {
        return Ok(());
    };
    Err(if committed > 0 {
        RaterError::BatchPartlyCommitted {
            batch_id: batch_id.to_string(),
            committed,
            partitions: states.len(),
            account: s.account.clone(),
            period: s.period_id.clone(),
            number: number.clone(),
        }
    } else {
        RaterError::PeriodClosed {
            account: s.account.clone(),
            period: s.period_id.clone(),
            number: number.clone(),
        }
    })
}

/// Refuses a batch, before its lease or before its commit, when one of the partitions it has
/// not committed into yet has no room left in its `#COMMITTED` item for it
/// ([`COMMITTED_ITEM_BYTES_MAX`]).
fn check_room(
    states: &[PartitionState],
    batch: &Aggregated,
    plan: &IdPlan,
    batch_id: &str,
    max: usize,
) -> Result<(), RaterError> {
    let chunks = chunk_counts(&batch.chunks);
    let id_chunks: BTreeMap<&Partition, u32> = plan
        .checked
        .iter()
        .map(|c| (&c.partition, c.chunks))
        .collect();
    for s in states.iter().filter(|s| s.own.is_none()) {
        let p = Partition::new(s.account.as_str(), s.period_id.as_str());
        let growth = committed_growth_bytes(
            batch_id,
            chunks.get(&p).copied().unwrap_or(0),
            id_chunks.get(&p).copied().unwrap_or(0),
        );
        if s.item_bytes + growth > max {
            return Err(RaterError::PartitionFull {
                account: s.account.clone(),
                period: s.period_id.clone(),
                batches: s.batches,
                bytes: s.item_bytes + growth,
                max,
            });
        }
    }
    Ok(())
}

/// Under the batch's lease: applies the record-id rule against what is committed, writes the
/// chunks and commits them, one transaction per [`COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`]
/// partitions, the last one marking the ledger `DONE`.
///
/// Resumable: each pass first reads which partitions the batch is already committed into (by
/// an earlier transaction of this attempt before a `UsageMoved`, or of a crashed attempt whose
/// lease this one took over) and leaves them exactly as they are: their chunks are neither
/// rewritten nor swept, and the batch's own record ids never count as duplicates of itself.
/// A commit refused because another batch committed into one of the checked periods
/// meanwhile (`UsageMoved`) checks the ids again, with backoff.
#[allow(clippy::too_many_arguments)]
async fn store_batch<S: Store>(
    store: &S,
    config: &RaterConfig,
    mut first: Aggregated,
    plan: IdPlan,
    batch_id: &str,
    owner: &str,
    mode: Mode,
    reread: &Reread<'_>,
) -> Result<BatchSummary, RaterError> {
    let keys = partition_keys(&first);
    // Chunks are stored as they are (a large batch's usage is tens of MB: never copied).
    let name = |chunks: &mut Vec<UsageChunk>| {
        for c in chunks {
            c.batch_id = batch_id.to_string();
        }
    };
    name(&mut first.chunks);
    // The pass the chunks come from, and the records it left out.
    let mut current: Option<Aggregated> = None;
    let mut applied = Bits::default();
    let mut attempt = 0u32;
    let mut plan = Some(plan);
    loop {
        let plan = match plan.take() {
            Some(p) => p,
            None => check_ids(store, &first, reread, batch_id).await?,
        };
        let states = store.partitions(batch_id, &keys).await?;
        check_closed(&states, batch_id)?;
        check_room(
            &states,
            current.as_ref().unwrap_or(&first),
            &plan,
            batch_id,
            config.committed_item_bytes_max,
        )?;
        // `applied` starts empty, so the first pass serves until some record must be left out.
        if plan.drops != applied {
            let again = reread(&Pass {
                skip: Some(&plan.drops),
                describe: &[],
            })?;
            if again.sha256 != first.sha256 {
                return Err(RaterError::BadRequest {
                    field: "export",
                    message: "the export changed while it was being rated; send it again".into(),
                });
            }
            let mut again = again;
            name(&mut again.chunks);
            current = Some(again);
            applied = plan.drops.clone();
            // The first pass's usage is not stored any more: only its ids serve.
            first.chunks = Vec::new();
        }
        let batch = current.as_ref().unwrap_or(&first);
        let parts = commit_parts(&batch.chunks, &plan);
        // Partitions an earlier transaction of the batch committed are done: left alone.
        let done: BTreeMap<Partition, Counts> = states
            .iter()
            .filter_map(|s| {
                let p = Partition::new(s.account.as_str(), s.period_id.as_str());
                s.own.map(|c| (p, c))
            })
            .collect();
        let summary = summarize(config, &first, batch, &parts, &done, batch_id, mode);
        let todo: Vec<CommitAccount> = parts
            .into_iter()
            .filter(|p| !done.contains_key(&part_of(p)))
            .collect();
        write_chunks(store, batch, &first, &plan, &done, &todo, batch_id).await?;
        match commit_in_groups(store, batch_id, owner, todo, &summary).await {
            Ok(()) => return Ok(summary),
            Err(StoreError::UsageMoved { .. }) if attempt + 1 < COMMIT_ATTEMPTS_MAX => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The partition a commit part writes into.
fn part_of(p: &CommitAccount) -> Partition {
    Partition::new(p.account.as_str(), p.period_id.as_str())
}

/// What the batch did, for its ledger (bounded: partitions and accounts are listed up to
/// [`SUMMARY_PARTITIONS_MAX`]). Partitions committed before count with their own counts.
fn summarize(
    config: &RaterConfig,
    first: &Aggregated,
    batch: &Aggregated,
    parts: &[CommitAccount],
    done: &BTreeMap<Partition, Counts>,
    batch_id: &str,
    mode: Mode,
) -> BatchSummary {
    let listed = first.partitions.len() <= SUMMARY_PARTITIONS_MAX;
    BatchSummary {
        batch_id: batch_id.to_string(),
        content_sha256: first.sha256.clone(),
        period: first
            .partitions
            .first()
            .map(|p| p.period.clone())
            .unwrap_or_default(),
        mode,
        accounts: if listed {
            first.accounts.clone()
        } else {
            Vec::new()
        },
        accounts_total: first.accounts.len() as u64,
        partitions: if listed {
            first.partitions.clone()
        } else {
            Vec::new()
        },
        partitions_total: first.partitions.len() as u64,
        records: first.records,
        duplicates_dropped: batch.skipped,
        usage_items: parts
            .iter()
            .map(|p| match done.get(&part_of(p)) {
                Some(c) => u64::from(c.chunks) + u64::from(c.id_chunks),
                None => u64::from(p.chunks) + u64::from(p.id_chunks),
            })
            .sum(),
        usage_totals: batch.usage_totals,
        catalog_version: config.catalog.version.clone(),
        accounts_version: config.accounts.version.clone(),
    }
}

/// Each partition's part of the commit (chunk counts, and for partitions with record ids the
/// record-id chunks and the version they were checked against), in partition order.
fn commit_parts(chunks: &[UsageChunk], plan: &IdPlan) -> Vec<CommitAccount> {
    let part = |p: &Partition, chunks: u32| CommitAccount {
        account: p.account.clone(),
        period_id: p.period.clone(),
        chunks,
        id_chunks: 0,
        checked_version: None,
    };
    // Keyed by partition: the commit lists each once, in order.
    let mut parts: BTreeMap<Partition, CommitAccount> = chunk_counts(chunks)
        .into_iter()
        .map(|(p, n)| {
            let c = part(&p, n);
            (p, c)
        })
        .collect();
    for c in plan.checked.iter().filter(|c| c.chunks > 0) {
        let p = parts
            .entry(c.partition.clone())
            .or_insert_with(|| part(&c.partition, 0));
        p.id_chunks = c.chunks;
        p.checked_version = Some(c.version);
    }
    parts.into_values().collect()
}

/// Writes the usage and record-id chunks of the partitions still to commit (`todo`), then
/// deletes the chunks an earlier attempt wrote beyond what this one keeps. Partitions the
/// batch already committed (`done`) are not touched.
async fn write_chunks<S: Store>(
    store: &S,
    batch: &Aggregated,
    first: &Aggregated,
    plan: &IdPlan,
    done: &BTreeMap<Partition, Counts>,
    todo: &[CommitAccount],
    batch_id: &str,
) -> Result<(), RaterError> {
    let is_done = |account: &str, period: &str| done.contains_key(&Partition::new(account, period));
    if done.is_empty() {
        store.put_chunks(&batch.chunks).await?;
    } else {
        // A resumed commit: rare, so copying the remaining partitions' chunks is fine.
        let left: Vec<UsageChunk> = batch
            .chunks
            .iter()
            .filter(|c| !is_done(&c.account, &c.period_id))
            .cloned()
            .collect();
        store.put_chunks(&left).await?;
    }
    let checked: Vec<&IdCheck> = plan
        .checked
        .iter()
        .filter(|c| !done.contains_key(&c.partition))
        .collect();
    put_id_chunks(store, &first.ids, &checked, &plan.new, batch_id).await?;
    // A partition whose records this attempt leaves out because an earlier batch counted
    // them may have more chunks from an attempt that left out fewer (before a `UsageMoved`
    // retry, or a crashed attempt whose lease this one took over): delete those before the
    // commit, while they are still invisible. Other partitions' chunks are the same on every
    // attempt (committed ids only grow), so they need no look.
    for left_out in plan.leaving_out.iter().filter(|p| !done.contains_key(*p)) {
        let p = todo
            .binary_search_by(|p| part_of(p).cmp(left_out))
            .ok()
            .map(|i| &todo[i]);
        store
            .sweep_chunks(&Keep {
                account: left_out.account.clone(),
                period_id: left_out.period.clone(),
                batch_id: batch_id.to_string(),
                chunks: p.map_or(0, |p| p.chunks),
                id_chunks: p.map_or(0, |p| p.id_chunks),
            })
            .await?;
    }
    Ok(())
}

/// Commits the partitions left, [`COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`] per transaction in
/// order; the last transaction (alone, when nothing is left) marks the ledger `DONE`.
async fn commit_in_groups<S: Store>(
    store: &S,
    batch_id: &str,
    owner: &str,
    todo: Vec<CommitAccount>,
    summary: &BatchSummary,
) -> Result<(), StoreError> {
    let groups = todo
        .len()
        .div_ceil(COMMIT_ACCOUNTS_PER_TRANSACTION_MAX)
        .max(1);
    let mut parts = todo.into_iter();
    for g in 0..groups {
        let commit = Commit {
            batch_id: batch_id.to_string(),
            owner: owner.to_string(),
            accounts: parts
                .by_ref()
                .take(COMMIT_ACCOUNTS_PER_TRANSACTION_MAX)
                .collect(),
            done: (g + 1 == groups).then(|| summary.clone()),
        };
        store.commit(&commit).await?;
    }
    Ok(())
}

/// What the record-id rule decided for a batch against the committed ids.
struct IdPlan {
    /// Positions of the records to leave out, sorted.
    drops: Bits,
    /// Per partition with ids, in the order of the batch's settled ids.
    checked: Vec<IdCheck>,
    /// Which of the batch's settled ids the store does not hold yet.
    new: Bits,
    /// Partitions with records left out because an earlier batch counted their ids.
    leaving_out: Vec<Partition>,
}

/// One partition's record ids checked against the store.
struct IdCheck {
    partition: Partition,
    /// The partition's settled ids in the batch ([`Settled::accounts`]).
    range: std::ops::Range<u64>,
    /// The period version they were checked against.
    version: u64,
    /// Record-id chunks the fingerprints the batch adds take.
    chunks: u32,
}

/// Where a conflicting record id was first counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum FirstSeen {
    /// As this record of the batch.
    InBatch(u64),
    /// By an earlier batch of this period.
    Earlier(String),
}

/// Applies the record-id rule to a batch's first pass against the committed ids (reads only).
/// Ids committed before with other content refuse the batch, naming the records.
async fn check_ids<S: Store>(
    store: &S,
    first: &Aggregated,
    reread: &Reread<'_>,
    batch_id: &str,
) -> Result<IdPlan, RaterError> {
    let mut drops = first.in_batch.drops.clone();
    let mut conflicts: Vec<(u64, FirstSeen)> = Vec::new();
    let mut checked = Vec::new();
    // One bit per id: the new fingerprints are read again from the settled ids when written,
    // never held as a second copy.
    let mut new = Bits::default();
    let mut leaving_out = Vec::new();
    for (key, range) in first.ids.accounts() {
        let partition = Partition::from_key(key).ok_or_else(|| {
            RaterError::TempFile(std::io::Error::other(format!("bad partition key `{key}`")))
        })?;
        let stored = store
            .record_ids(&partition.account, &partition.period, batch_id)
            .await?;
        let against = dedupe::against(&stored.ids, &first.ids, range.clone(), &mut drops, &mut new)
            .map_err(RaterError::TempFile)?;
        if against.dropped > 0 {
            leaving_out.push(partition.clone());
        }
        conflicts.extend(
            against
                .conflicts
                .into_iter()
                .map(|i| (i, FirstSeen::Earlier(partition.period.clone()))),
        );
        let chunks = against.new.div_ceil(IDS_PER_CHUNK as u64) as u32;
        checked.push(IdCheck {
            partition,
            range,
            version: stored.version,
            chunks,
        });
    }
    if !conflicts.is_empty() {
        conflicts.sort_unstable();
        return Err(id_conflicts(reread, first, &conflicts));
    }
    Ok(IdPlan {
        drops,
        checked,
        new,
        leaving_out,
    })
}

/// Writes the record-id chunks of the fingerprints a batch adds, one partition at a time and
/// [`ID_PUT_BYTES`] per store call: for a large export they never sit in memory all at once.
/// They are invisible until the commit counts them (`i:<batch>` on `#COMMITTED`).
async fn put_id_chunks<S: Store>(
    store: &S,
    ids: &Settled,
    checked: &[&IdCheck],
    new: &Bits,
    batch_id: &str,
) -> Result<(), RaterError> {
    let mut group: Vec<UsageChunk> = Vec::new();
    let mut group_bytes = 0;
    for IdCheck {
        partition,
        range,
        chunks: expected,
        ..
    } in checked.iter().copied().filter(|c| c.chunks > 0)
    {
        let mut n = 0u32;
        let mut part =
            Vec::with_capacity(IDS_PER_CHUNK.min(range.end as usize - range.start as usize));
        let mut fingerprints = ids.new_ids(range.clone(), new).peekable();
        while let Some(f) = fingerprints.next() {
            part.push(f.map_err(RaterError::TempFile)?);
            if part.len() < IDS_PER_CHUNK && fingerprints.peek().is_some() {
                continue;
            }
            let body = dedupe::encode_id_chunk(&part);
            part.clear();
            group_bytes += body.len();
            group.push(UsageChunk {
                account: partition.account.clone(),
                period_id: partition.period.clone(),
                batch_id: batch_id.to_string(),
                n,
                kind: ChunkKind::RecordIds,
                body,
            });
            n += 1;
            if group_bytes >= ID_PUT_BYTES {
                store.put_chunks(&group).await?;
                group.clear();
                group_bytes = 0;
            }
        }
        // The commit counts what the check planned; the same bits produced these chunks.
        if n != *expected {
            return Err(RaterError::TempFile(std::io::Error::other(format!(
                "account `{}` {}: {n} record-id chunks written, {expected} planned",
                partition.account, partition.period
            ))));
        }
    }
    if !group.is_empty() {
        store.put_chunks(&group).await?;
    }
    Ok(())
}

/// The error for records whose id was counted before with other content, naming each (a
/// second pass reads their ids).
fn id_conflicts(
    reread: &Reread<'_>,
    batch: &Aggregated,
    conflicts: &[(u64, FirstSeen)],
) -> RaterError {
    let shown: Vec<u64> = {
        let mut v: Vec<u64> = conflicts
            .iter()
            .take(pricing::RECORD_ERRORS_SHOWN_MAX)
            .map(|c| c.0)
            .collect();
        v.sort_unstable();
        v
    };
    let described = match reread(&Pass {
        skip: None,
        describe: &shown,
    }) {
        Ok(again) if again.sha256 == batch.sha256 => again.described,
        _ => Vec::new(),
    };
    let mut errors = BatchErrors::new();
    for (index, first) in conflicts {
        let id = described
            .iter()
            .find(|(i, _)| i == index)
            .and_then(|(_, id)| id.clone());
        let (first, period) = match first {
            FirstSeen::InBatch(i) => (Some(*i), ""),
            FirstSeen::Earlier(p) => (None, p.as_str()),
        };
        errors.push(dedupe::conflict_error(*index, id, first, period));
    }
    RaterError::BadRecords(errors)
}

/// The answer to a batch that was rated before.
async fn replay<S: Store>(
    store: &S,
    config: &RaterConfig,
    summary: BatchSummary,
    sha256: &str,
    account: Option<&str>,
) -> Result<RateResponse, RaterError> {
    if summary.content_sha256 != sha256 {
        return Err(RaterError::IdempotencyKeyReused {
            batch_id: summary.batch_id,
            stored_sha256: summary.content_sha256,
            sha256: sha256.to_string(),
        });
    }
    answer(store, config, &summary, account, true).await
}

/// The answer to a batch, from its summary: its accounts' invoices when they fit, otherwise a
/// pointer to read each. A `final` batch first finalizes every account not finalized yet (a
/// crash may have stopped an earlier attempt half-way: finalizing is idempotent per account).
async fn answer<S: Store>(
    store: &S,
    config: &RaterConfig,
    summary: &BatchSummary,
    account: Option<&str>,
    replayed: bool,
) -> Result<RateResponse, RaterError> {
    let partitions: Vec<(Partition, BillingPeriod)> = summary
        .partitions()
        .into_iter()
        .filter(|p| account.is_none_or(|only| only == p.account))
        .map(|p| {
            let period =
                BillingPeriod::parse(&p.period).map_err(|e| RaterError::Config(e.to_string()))?;
            Ok((p, period))
        })
        .collect::<Result<_, RaterError>>()?;
    let finalized = match summary.mode {
        Mode::Interim => Vec::new(),
        Mode::Final => finalize_each(store, config, &summary.batch_id, &partitions).await?,
    };
    let total = summary.partitions_total();
    let mut invoices = Vec::new();
    let mut bytes = 0usize;
    let mut omitted = if total > ANSWER_INVOICES_MAX as u64 {
        total
    } else {
        0
    };
    if omitted == 0 {
        for (p, period) in &partitions {
            let inv = invoice_for(store, config, &p.account, *period).await?;
            bytes += serde_json::to_vec(&inv).map_or(0, |v| v.len());
            if bytes > ANSWER_INVOICE_BYTES_MAX {
                omitted = (partitions.len() - invoices.len()) as u64;
                break;
            }
            invoices.push(inv);
        }
    }
    Ok(RateResponse {
        batch_id: summary.batch_id.clone(),
        replayed,
        records: summary.records,
        duplicates_dropped: summary.duplicates_dropped,
        usage_items: summary.usage_items,
        accounts: summary.accounts_total(),
        partitions: total,
        finalized,
        invoices,
        invoices_omitted: omitted,
        invoice_path: (omitted > 0).then(|| "?account={account}&period={period}".to_string()),
    })
}

/// Finalizes each account period of a `final` batch (those finalized before are read back),
/// in order. A failure part-way names the ones finalized so far and the one that failed; a
/// retry of the batch finalizes the rest.
async fn finalize_each<S: Store>(
    store: &S,
    config: &RaterConfig,
    batch_id: &str,
    partitions: &[(Partition, BillingPeriod)],
) -> Result<Vec<Finalized>, RaterError> {
    let mut done = Vec::new();
    for (p, period) in partitions {
        let inv = match finalize(store, config, &p.account, *period).await {
            Ok(inv) => Ok(inv),
            Err(RaterError::AlreadyFinalized { .. }) => {
                invoice_for(store, config, &p.account, *period).await
            }
            Err(e) => Err(e),
        };
        match inv {
            Ok(inv) => done.push(Finalized {
                account: p.account.clone(),
                period: p.period.clone(),
                number: inv.number.unwrap_or_default(),
            }),
            Err(e) => {
                return Err(RaterError::FinalizeIncomplete {
                    batch_id: batch_id.to_string(),
                    finalized: done,
                    account: p.account.clone(),
                    cause: Box::new(e),
                })
            }
        }
    }
    Ok(done)
}

/// The invoice of an account for a period: the final one once issued, else an interim one
/// computed now from committed usage (not stored, not numbered).
pub async fn invoice_for<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
) -> Result<Invoice, RaterError> {
    let period_id = period.id();
    if let Some(inv) = store.final_invoice(account, &period_id).await? {
        return Ok(inv);
    }
    let acc = config
        .accounts
        .account(account)
        .ok_or_else(|| RaterError::UnknownAccount {
            account: account.to_string(),
            accounts_version: config.accounts.version.clone(),
        })?;
    let pu = store.period_usage(account, &period_id).await?;
    let mut inv = pricing::invoice(&config.catalog, acc, period, &pu.usage)?;
    inv.accounts_version = Some(config.accounts.version.clone());
    Ok(inv)
}

/// Issues the final, numbered invoice of an account's period: gapless numbers per issuer, every
/// committed batch on it, once. Finalizing again is refused with `AlreadyFinalized`.
pub async fn finalize<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
) -> Result<Invoice, RaterError> {
    let period_id = period.id();
    let acc = config
        .accounts
        .account(account)
        .ok_or_else(|| RaterError::UnknownAccount {
            account: account.to_string(),
            accounts_version: config.accounts.version.clone(),
        })?;
    ensure_config_stored(store, config).await?;
    for attempt in 0..FINALIZE_ATTEMPTS_MAX {
        if let Some(existing) = store.final_invoice(account, &period_id).await? {
            return Err(RaterError::AlreadyFinalized {
                account: account.to_string(),
                period: period_id,
                number: existing.number.unwrap_or_default(),
            });
        }
        let pu = store.period_usage(account, &period_id).await?;
        let counter = store.counter(&config.issuer).await?;
        let number = invoice_number(&config.issuer, counter + 1);
        let mut inv = pricing::invoice(&config.catalog, acc, period, &pu.usage)?;
        inv.kind = InvoiceKind::Final;
        inv.number = Some(number.clone());
        inv.accounts_version = Some(config.accounts.version.clone());
        let bytes = serde_json::to_vec(&inv).expect("invoices serialize").len();
        if bytes > FINAL_INVOICE_BYTES_MAX {
            return Err(RaterError::InvoiceTooLarge {
                account: account.to_string(),
                period: period_id,
                bytes,
                max: FINAL_INVOICE_BYTES_MAX,
            });
        }
        let f = Finalize {
            issuer: config.issuer.clone(),
            expected_counter: counter,
            account: account.to_string(),
            period_id: period_id.clone(),
            usage_version: pu.version,
            number,
            invoice: inv.clone(),
        };
        match store.finalize(&f).await {
            Ok(()) => return Ok(inv),
            Err(StoreError::FinalizeConflict { .. }) => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(RaterError::Store(StoreError::FinalizeConflict {
        account: account.to_string(),
        period: period_id,
    }))
}

/// Exponential backoff with full jitter: a random sleep in `[0, min(cap, base * 2^attempt)]`,
/// so that racing writers spread out instead of colliding again in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE_MS
        .saturating_mul(1u64 << attempt.min(20))
        .min(BACKOFF_CAP_MS);
    Duration::from_millis(fastrand::u64(0..=ceiling))
}

/// Stores the catalog and accounts versions this process prices with (once per process), so
/// that every invoice names a version that can be read back; refused if a version was stored
/// before with other content.
pub async fn ensure_config_stored<S: Store>(
    store: &S,
    config: &RaterConfig,
) -> Result<(), RaterError> {
    if config.config_stored.load(Ordering::Acquire) {
        return Ok(());
    }
    let accounts = serde_json::to_string(&config.accounts).expect("accounts serialize");
    store
        .put_config(
            ConfigKind::Catalog,
            &config.catalog.version,
            &config.catalog.to_json(),
            false,
        )
        .await?;
    store
        .put_config(
            ConfigKind::Accounts,
            &config.accounts.version,
            &accounts,
            false,
        )
        .await?;
    config.config_stored.store(true, Ordering::Release);
    Ok(())
}
