//! The rating protocol as plain async functions generic over a [`Store`]: rate a batch exactly once, compute interim invoices, finalize a period.
//!
//! Order of a batch (see the crate docs for the items): validate and aggregate the whole export
//! in memory-bounded form (nothing is written for bad input); return the stored result if the
//! batch is already done; refuse late usage for a closed period; take the lease (waiting for a
//! concurrent delivery of the same batch instead of rating it twice); write the chunks; commit;
//! answer with the invoices of the batch's accounts.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pricing::usage::same_text;
use pricing::{
    AccountBook, Aggregator, BatchErrors, BillingPeriod, Catalog, Invoice, InvoiceKind, PeriodKind,
    RecordError, RecordRule,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dedupe::{self, BatchIds, Bits, InBatch, Settled, IDS_PER_CHUNK};
use crate::error::{RaterError, StoreError};
use crate::import::{read_records, Format, ImportError, DETECT_PREFIX_BYTES};
use crate::limits::{
    BACKOFF_BASE_MS, BACKOFF_CAP_MS, BATCH_ID_BYTES_MAX, COMMIT_ATTEMPTS_MAX,
    FINALIZE_ATTEMPTS_MAX, FINAL_INVOICE_BYTES_MAX, ID_PUT_BYTES, IN_PROGRESS_WAIT_MS_MAX, LEASE_S,
    PAYLOAD_BYTES_MAX,
};
use crate::model::{
    chunk_counts, encode_chunks, BatchSummary, ChunkKind, ConfigKind, Ledger, UsageChunk,
};
use crate::store::{
    invoice_number, Commit, CommitAccount, Finalize, Keep, Lease, LeaseOutcome, Store,
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
    pub clock: Clock,
    account_ids: HashSet<String>,
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
        for a in &accounts.accounts {
            if a.id.is_empty() || a.id.contains('#') {
                return Err(RaterError::Config(format!(
                    "account id `{}` must be non-empty and without `#` (it is part of storage keys)",
                    a.id
                )));
            }
        }
        let account_ids = accounts.accounts.iter().map(|a| a.id.clone()).collect();
        Ok(RaterConfig {
            catalog,
            accounts,
            issuer: issuer.to_string(),
            lease_s: LEASE_S,
            in_progress_wait_ms_max: IN_PROGRESS_WAIT_MS_MAX,
            payload_bytes_max: PAYLOAD_BYTES_MAX,
            id_run_entries: crate::limits::ID_RUN_ENTRIES,
            clock: system_clock(),
            account_ids,
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
    pub invoices: Vec<Invoice>,
}

/// A whole export, validated and folded into usage totals.
#[derive(Debug)]
pub struct Aggregated {
    /// Accounts with usage in the batch, in order.
    pub accounts: Vec<String>,
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
    pub period: BillingPeriod,
    pub format: Format,
    /// The batch's record ids per account, settled (one entry per id); first pass only.
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
    let mut agg: Option<Aggregator<'_>> = period.map(|p| Aggregator::new(&config.catalog, p));
    let mut records = 0u64;
    let mut skipped = 0u64;
    // Record ids come from the first pass only: a pass that skips or describes records is
    // a second one, and collecting them again would hold every id twice.
    let first_pass = pass.skip.is_none() && pass.describe.is_empty();
    let mut ids = BatchIds::with_run_entries(config.id_run_entries);
    let mut described = Vec::new();
    // The last account found in the book: consecutive records usually share it, and a string
    // comparison is cheaper than hashing the id again.
    let mut known_account = String::new();
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
                if !config.account_ids.contains(&rec.account) {
                    return Err(refuse(RecordRule::UnknownAccount));
                }
                known_account.clone_from(&rec.account);
            }
            if let Some(a) = account.filter(|a| *a != rec.account) {
                return Err(refuse(RecordRule::OtherAccount {
                    account: a.to_string(),
                }));
            }
            let at = index as u64;
            if !pass.describe.is_empty() && pass.describe.binary_search(&at).is_ok() {
                described.push((at, rec.record_id.clone()));
            }
            if pass.skip.is_some_and(|s| s.get(at)) {
                skipped += 1;
                return Ok(());
            }
            agg.get_or_insert_with(|| {
                Aggregator::new(
                    &config.catalog,
                    BillingPeriod::containing(PeriodKind::Month, rec.start),
                )
            })
            .add(index, rec)?;
            if first_pass {
                ids.add(index, rec);
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
    let Some(agg) = agg.filter(|_| records > 0) else {
        return Err(RaterError::EmptyBatch);
    };
    let period = agg.period();
    let usage_totals = agg.len() as u64;
    let mut accounts = Vec::new();
    let mut chunks = Vec::new();
    // One account's totals at a time: peak memory is the packed totals plus one account's
    // usage, not a second full copy of the batch.
    agg.for_each_account(|account, usage| {
        accounts.push(account.to_string());
        chunks.extend(encode_chunks("", &period.id(), &usage));
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    let (ids, in_batch) = ids.settle().map_err(RaterError::TempFile)?;
    Ok(Aggregated {
        accounts,
        chunks,
        usage_totals,
        records,
        skipped,
        bytes: reader.bytes,
        sha256: hex(&reader.hasher.finalize()),
        period,
        format,
        ids,
        in_batch,
        described,
    })
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
    let (format, period, account) = (batch.format, batch.period, req.account.as_deref());
    let export = req.export.as_slice();
    let reread = move |pass: &Pass<'_>| {
        aggregate_pass(config, Some(format), export, Some(period), account, pass)
    };
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
    let period_id = batch.period.id();
    if let Some(Ledger::Done(summary)) = store.ledger(&batch_id).await? {
        return replay(store, config, summary, &batch.sha256, account).await;
    }
    // One id with two contents inside the batch: bad input, refused before any write.
    if !batch.in_batch.conflicts.is_empty() {
        let conflicts: Vec<(u64, Option<u64>)> = batch
            .in_batch
            .conflicts
            .iter()
            .map(|&(i, first)| (i, Some(first)))
            .collect();
        return Err(id_conflicts(reread, &batch, &conflicts, &period_id));
    }
    let accounts = batch.accounts.clone();
    // Late usage: refused before anything is written (the commit re-checks it atomically).
    for a in &accounts {
        if let Some(inv) = store.final_invoice(a, &period_id).await? {
            return Err(RaterError::PeriodClosed {
                account: a.clone(),
                period: period_id,
                number: inv.number.unwrap_or_default(),
            });
        }
    }
    // Record ids checked before any write, so that a conflict refuses the batch with nothing
    // written; checked again under the lease only if another batch commits meanwhile.
    let plan = check_ids(store, &batch, reread).await?;
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
                return replay(store, config, summary, &batch.sha256, account).await
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
    let invoices = invoices_of(store, config, &summary, account).await?;
    Ok(RateResponse {
        batch_id,
        replayed: false,
        records: summary.records,
        duplicates_dropped: summary.duplicates_dropped,
        usage_items: summary.usage_items,
        invoices,
    })
}

/// Under the batch's lease: applies the record-id rule against what is committed, writes the
/// chunks and commits them. A commit refused because another batch committed into one of the
/// checked periods meanwhile (`UsageMoved`) checks the ids again, with backoff.
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
    let period_id = first.period.id();
    let accounts = first.accounts.clone();
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
        let IdPlan {
            drops,
            checked,
            new,
            leaving_out,
        } = match plan.take() {
            Some(p) => p,
            None => check_ids(store, &first, reread).await?,
        };
        // `applied` starts empty, so the first pass serves until some record must be left out.
        if drops != applied {
            let again = reread(&Pass {
                skip: Some(&drops),
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
            applied = drops;
            // The first pass's usage is not stored any more: only its ids serve.
            first.chunks = Vec::new();
        }
        let batch = current.as_ref().unwrap_or(&first);
        let chunks = &batch.chunks;
        let part = |account: String, chunks: u32| CommitAccount {
            account,
            chunks,
            id_chunks: 0,
            checked_version: None,
        };
        // Keyed by account: the commit lists each account once, in order.
        let mut parts: BTreeMap<String, CommitAccount> = chunk_counts(chunks)
            .into_iter()
            .map(|(account, n)| (account.clone(), part(account, n)))
            .collect();
        let mut id_items = 0u64;
        for c in checked.iter().filter(|c| c.chunks > 0) {
            let p = parts
                .entry(c.account.clone())
                .or_insert_with(|| part(c.account.clone(), 0));
            p.id_chunks = c.chunks;
            p.checked_version = Some(c.version);
            id_items += u64::from(c.chunks);
        }
        let summary = BatchSummary {
            batch_id: batch_id.to_string(),
            content_sha256: first.sha256.clone(),
            period: period_id.clone(),
            mode,
            accounts: accounts.clone(),
            records: first.records,
            duplicates_dropped: batch.skipped,
            usage_items: chunks.len() as u64 + id_items,
            usage_totals: batch.usage_totals,
            catalog_version: config.catalog.version.clone(),
            accounts_version: config.accounts.version.clone(),
        };
        let commit = Commit {
            batch_id: batch_id.to_string(),
            owner: owner.to_string(),
            period_id: period_id.clone(),
            accounts: parts.into_values().collect(),
            summary: summary.clone(),
        };
        store.put_chunks(chunks).await?;
        put_id_chunks(store, &first.ids, &checked, &new, batch_id, &period_id).await?;
        // An account whose records this attempt leaves out because an earlier batch counted
        // them may have more chunks from an attempt that left out fewer (before a `UsageMoved`
        // retry, or a crashed attempt whose lease this one took over): delete those before
        // the commit, while they are still invisible. Other accounts' chunks are the same on
        // every attempt (committed ids only grow), so they need no look.
        for account in &leaving_out {
            // The commit's parts are in account order (from the map above).
            let p = commit
                .accounts
                .binary_search_by(|p| p.account.cmp(account))
                .ok()
                .map(|i| &commit.accounts[i]);
            store
                .sweep_chunks(&Keep {
                    account: account.clone(),
                    period_id: period_id.clone(),
                    batch_id: batch_id.to_string(),
                    chunks: p.map_or(0, |p| p.chunks),
                    id_chunks: p.map_or(0, |p| p.id_chunks),
                })
                .await?;
        }
        match store.commit(&commit).await {
            Ok(()) => return Ok(summary),
            Err(StoreError::UsageMoved { .. }) if attempt + 1 < COMMIT_ATTEMPTS_MAX => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What the record-id rule decided for a batch against the committed ids.
struct IdPlan {
    /// Positions of the records to leave out, sorted.
    drops: Bits,
    /// Per account with ids, in the order of the batch's settled ids.
    checked: Vec<IdCheck>,
    /// Which of the batch's settled ids the store does not hold yet.
    new: Bits,
    /// Accounts with records left out because an earlier batch counted their ids.
    leaving_out: Vec<String>,
}

/// One account's record ids checked against the store.
struct IdCheck {
    account: String,
    /// The account's settled ids in the batch ([`Settled::accounts`]).
    range: std::ops::Range<u64>,
    /// The period version they were checked against.
    version: u64,
    /// Record-id chunks the fingerprints the batch adds take.
    chunks: u32,
}

/// Applies the record-id rule to a batch's first pass against the committed ids (reads only).
/// Ids committed before with other content refuse the batch, naming the records.
async fn check_ids<S: Store>(
    store: &S,
    first: &Aggregated,
    reread: &Reread<'_>,
) -> Result<IdPlan, RaterError> {
    let period_id = first.period.id();
    let mut drops = first.in_batch.drops.clone();
    let mut conflicts: Vec<(u64, Option<u64>)> = Vec::new();
    let mut checked = Vec::new();
    // One bit per id: the new fingerprints are read again from the settled ids when written,
    // never held as a second copy.
    let mut new = Bits::default();
    let mut leaving_out = Vec::new();
    for (account, range) in first.ids.accounts() {
        let stored = store.record_ids(account, &period_id).await?;
        let against = dedupe::against(&stored.ids, &first.ids, range.clone(), &mut drops, &mut new)
            .map_err(RaterError::TempFile)?;
        if against.dropped > 0 {
            leaving_out.push(account.to_string());
        }
        conflicts.extend(against.conflicts.into_iter().map(|i| (i, None)));
        let chunks = against.new.div_ceil(IDS_PER_CHUNK as u64) as u32;
        checked.push(IdCheck {
            account: account.to_string(),
            range,
            version: stored.version,
            chunks,
        });
    }
    if !conflicts.is_empty() {
        conflicts.sort_unstable();
        return Err(id_conflicts(reread, first, &conflicts, &period_id));
    }
    Ok(IdPlan {
        drops,
        checked,
        new,
        leaving_out,
    })
}

/// Writes the record-id chunks of the fingerprints a batch adds, one account at a time and
/// [`ID_PUT_BYTES`] per store call: for a large export they never sit in memory all at once.
/// They are invisible until the commit counts them (`i:<batch>` on `#COMMITTED`).
async fn put_id_chunks<S: Store>(
    store: &S,
    ids: &Settled,
    checked: &[IdCheck],
    new: &Bits,
    batch_id: &str,
    period_id: &str,
) -> Result<(), RaterError> {
    let mut group: Vec<UsageChunk> = Vec::new();
    let mut group_bytes = 0;
    for IdCheck {
        account,
        range,
        chunks: expected,
        ..
    } in checked.iter().filter(|c| c.chunks > 0)
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
                account: account.to_string(),
                period_id: period_id.to_string(),
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
                "account `{account}`: {n} record-id chunks written, {expected} planned"
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
    conflicts: &[(u64, Option<u64>)],
    period_id: &str,
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
    for &(index, first) in conflicts {
        let id = described
            .iter()
            .find(|(i, _)| *i == index)
            .and_then(|(_, id)| id.clone());
        errors.push(dedupe::conflict_error(index, id, first, period_id));
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
    let invoices = invoices_of(store, config, &summary, account).await?;
    Ok(RateResponse {
        batch_id: summary.batch_id,
        replayed: true,
        records: summary.records,
        duplicates_dropped: summary.duplicates_dropped,
        usage_items: summary.usage_items,
        invoices,
    })
}

/// The invoices a batch answers with: each account's final invoice (issued now if the batch
/// asked for it and a crash interrupted it before), or its interim invoice.
async fn invoices_of<S: Store>(
    store: &S,
    config: &RaterConfig,
    summary: &BatchSummary,
    account: Option<&str>,
) -> Result<Vec<Invoice>, RaterError> {
    let period =
        BillingPeriod::parse(&summary.period).map_err(|e| RaterError::Config(e.to_string()))?;
    let mut out = Vec::new();
    for a in &summary.accounts {
        if account.is_some_and(|only| only != a) {
            continue;
        }
        let inv = match summary.mode {
            Mode::Interim => invoice_for(store, config, a, period).await?,
            Mode::Final => match finalize(store, config, a, period).await {
                Ok(inv) => inv,
                Err(RaterError::AlreadyFinalized { .. }) => {
                    invoice_for(store, config, a, period).await?
                }
                Err(e) => return Err(e),
            },
        };
        out.push(inv);
    }
    Ok(out)
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
