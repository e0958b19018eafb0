//! Step 1, aggregation: one pass over an export's bytes validates every record (nothing is written for bad input) and folds it into usage totals per account period, encoded as store chunks, with the batch's SHA-256 and its record ids collected for step 2.

use std::collections::BTreeSet;
use std::io::Read;

use chrono::{DateTime, Utc};
use pricing::usage::same_text;
use pricing::{
    Aggregator, BillingPeriod, Catalog, PeriodKind, RecordError, RecordRule, UsageRecord,
};
use sha2::{Digest, Sha256};

use crate::config::RaterConfig;
use crate::dedupe::{BatchIds, Bits, InBatch, Settled};
use crate::error::RaterError;
use crate::import::{read_records, Format, ImportError, DETECT_PREFIX_BYTES};
use crate::limits::batch_line_quantity_max;
use crate::model::{encode_chunks, Partition, UsageChunk};

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
    /// The last reading of each cumulative counter series in the window (Ceilometer), for the
    /// next batch: merged into the store's carried readings before the batch is stored.
    pub readings: pricing::import::Readings,
}

/// What one pass over an export leaves out or looks up, by record position (sorted).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pass<'a> {
    /// Records not to count: duplicates of record ids counted before.
    pub skip: Option<&'a Bits>,
    /// Records whose id to report (for error messages).
    pub describe: &'a [u64],
    /// Readings of cumulative counters carried from earlier batches (Ceilometer): every pass
    /// over one export must read it with the same ones, so that it makes the same records.
    pub carried: Option<&'a std::sync::Arc<pricing::import::Readings>>,
}

/// Reads an export again for a second pass (see [`crate::batch::rate_aggregated`]).
pub type Reread<'a> = dyn Fn(&Pass<'_>) -> Result<Aggregated, RaterError> + Send + Sync + 'a;

impl Aggregated {
    /// The batch's usage decoded back from its chunks, for tests and benchmarks.
    pub fn usage(&self) -> pricing::Usage {
        let mut u = pricing::Usage::default();
        for c in &self.chunks {
            u.merge(
                &crate::model::decode_chunk(&c.account, &c.body).expect("chunks we encoded decode"),
            )
            .expect("a batch's own totals add up: they were checked when aggregated");
        }
        u
    }
}

/// Hex SHA-256 of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
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

/// [`aggregate()`], leaving out the records at `pass.skip`.
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
    let mut fold = Fold::new(config, period, account, pass);
    let imported = read_records(
        format,
        &mut reader,
        &config.catalog,
        period,
        pass.carried,
        |index, rec| fold.record(index, rec),
    );
    let readings = match imported {
        Ok((_, readings)) => readings,
        Err(ImportError::Records(errors)) => return Err(RaterError::BadRecords(errors)),
        Err(ImportError::Empty { .. }) => return Err(RaterError::EmptyBatch),
        Err(e) => return Err(RaterError::Import(e)),
    };
    if fold.records == 0 {
        return Err(RaterError::EmptyBatch);
    }
    // No account period's line may grow past what can be priced, however many batches bring
    // it: each batch brings at most its share (refused here, before anything is written).
    fold.periods.check_lines(batch_line_quantity_max())?;
    let usage_totals = fold.periods.totals() as u64;
    let (partitions, chunks) = fold.periods.into_chunks();
    let accounts: Vec<String> = partitions
        .iter()
        .map(|p| p.account.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (ids, in_batch) = fold.ids.settle().map_err(RaterError::TempFile)?;
    Ok(Aggregated {
        accounts,
        partitions,
        chunks,
        usage_totals,
        records: fold.records,
        skipped: fold.skipped,
        bytes: reader.bytes,
        sha256: hex(&reader.hasher.finalize()),
        window: period,
        format,
        ids,
        in_batch,
        described: fold.described,
        readings,
    })
}

/// One pass's state while the importer hands it records: the account checks, the periods'
/// aggregators and the record ids.
struct Fold<'a, 'c> {
    config: &'c RaterConfig,
    /// When given, every record must belong to this account.
    account: Option<&'a str>,
    pass: &'a Pass<'a>,
    periods: Periods<'c>,
    records: u64,
    skipped: u64,
    /// Record ids come from the first pass only: a pass that skips or describes records is
    /// a second one, and collecting them again would hold every id twice.
    first_pass: bool,
    ids: BatchIds,
    described: Vec<(u64, Option<String>)>,
    /// The last account found in the book and its period kind: consecutive records usually
    /// share them, and a string comparison is cheaper than hashing the id again.
    known_account: String,
    known_kind: PeriodKind,
    /// The known account's reseller when it is a reseller's customer with hidden products.
    known_reseller: Option<&'c pricing::catalog::ResellerOverlay>,
    /// The last record's partition key (`account#period`), for the record-id rule.
    partition: String,
    partition_of: Option<BillingPeriod>,
}

impl<'a, 'c> Fold<'a, 'c> {
    fn new(
        config: &'c RaterConfig,
        window: Option<BillingPeriod>,
        account: Option<&'a str>,
        pass: &'a Pass<'a>,
    ) -> Fold<'a, 'c> {
        Fold {
            config,
            account,
            pass,
            periods: Periods::new(&config.catalog, window),
            records: 0,
            skipped: 0,
            first_pass: pass.skip.is_none() && pass.describe.is_empty(),
            ids: BatchIds::with_run_entries(config.id_run_entries),
            described: Vec::new(),
            known_account: String::new(),
            known_kind: PeriodKind::Month,
            known_reseller: None,
            partition: String::new(),
            partition_of: None,
        }
    }

    /// Checks one record's account, then rates it into its period (unless this pass leaves
    /// it out) and notes its id.
    fn record(&mut self, index: usize, rec: &UsageRecord) -> Result<(), RecordError> {
        self.records += 1;
        let refuse = |rule: RecordRule| RecordError {
            index,
            record_id: rec.record_id.clone(),
            field: "account",
            value: rec.account.clone(),
            rule,
        };
        if self.known_account.is_empty() || !same_text(&self.known_account, &rec.account) {
            let Some(kind) = self.config.account_kinds.get(&rec.account) else {
                return Err(refuse(RecordRule::UnknownAccount));
            };
            self.known_account.clone_from(&rec.account);
            self.known_kind = *kind;
            self.partition_of = None;
            self.known_reseller = self
                .config
                .account(&rec.account)
                .and_then(|a| a.reseller.as_deref())
                .and_then(|r| self.config.catalog.reseller(r))
                .filter(|r| !r.hidden_products.is_empty());
        }
        if let Some(r) = self.known_reseller {
            // A reseller's customer is invoiced with the reseller's catalog, which does not
            // have the products it hides: refused here, naming the record, not at pricing.
            let id = self
                .config
                .catalog
                .resolve_product(&rec.product)
                .map_or(rec.product.as_str(), |p| p.id.as_str());
            if r.hidden_products.iter().any(|h| h == id) {
                return Err(RecordError {
                    index,
                    record_id: rec.record_id.clone(),
                    field: "product",
                    value: rec.product.clone(),
                    rule: RecordRule::NotSoldByReseller {
                        reseller: r.id.clone(),
                    },
                });
            }
        }
        if let Some(a) = self.account.filter(|a| *a != rec.account) {
            return Err(refuse(RecordRule::OtherAccount {
                account: a.to_string(),
            }));
        }
        let at = index as u64;
        if !self.pass.describe.is_empty() && self.pass.describe.binary_search(&at).is_ok() {
            self.described.push((at, rec.record_id.clone()));
        }
        if self.pass.skip.is_some_and(|s| s.get(at)) {
            self.skipped += 1;
            return Ok(());
        }
        let billed_in = self.periods.add(index, rec, self.known_kind)?;
        if self.first_pass && rec.record_id.is_some() {
            if self.partition_of != Some(billed_in) {
                self.partition = Partition::new(rec.account.as_str(), billed_in.id()).key();
                self.partition_of = Some(billed_in);
            }
            self.ids.add(index, rec, &self.partition);
        }
        Ok(())
    }
}

/// A batch's aggregators, one per billing period its records fall in: each record is rated
/// into the period of its account's kind that holds its start (and must end inside it).
pub(crate) struct Periods<'c> {
    catalog: &'c Catalog,
    /// The period the request limited the records to, with its end computed once: a month's
    /// end is calendar arithmetic, and every record is checked against it.
    window: Option<(BillingPeriod, DateTime<Utc>)>,
    aggs: Vec<Aggregator<'c>>,
    /// The last record's aggregator: the next record's too, nearly always.
    last: usize,
}

impl<'c> Periods<'c> {
    fn new(catalog: &'c Catalog, window: Option<BillingPeriod>) -> Periods<'c> {
        Periods {
            catalog,
            window: window.map(|w| (w, w.end())),
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
        if let Some((w, w_end)) = self.window {
            let outside = |field: &'static str, at: DateTime<Utc>| RecordError {
                index,
                record_id: rec.record_id.clone(),
                field,
                value: at.to_rfc3339(),
                rule: RecordRule::OutsidePeriod { period: w.id() },
            };
            // `BillingPeriod::contains`, with the end computed once.
            if !(w.start <= rec.start && rec.start < w_end) {
                return Err(outside("start", rec.start));
            }
            if rec.end > w_end {
                return Err(outside("end", rec.end));
            }
        }
        let hit = |a: &Aggregator<'_>| a.holds(kind, rec.start);
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

    /// Refuses the batch when one of its periods' lines is larger than `max`.
    fn check_lines(&self, max: rust_decimal::Decimal) -> Result<(), RaterError> {
        for agg in &self.aggs {
            if let Err(e) = agg.check_lines(max) {
                let mut errors = pricing::BatchErrors::new();
                errors.push(e);
                return Err(RaterError::BadRecords(errors));
            }
        }
        Ok(())
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
