//! What the rater stores: item keys, the batch ledger and summary, and usage chunks (encoding included).

use std::collections::BTreeMap;

use pricing::{Usage, UsageKey, UsageTotal};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::limits::CHUNK_BYTES_MAX;

pub const LEDGER_SK: &str = "LEDGER";
pub const COMMITTED_SK: &str = "#COMMITTED";
pub const FINAL_SK: &str = "FINAL";
pub const COUNTER_SK: &str = "INVOICE";
pub const CURRENT_SK: &str = "CURRENT";
/// Prefix of the `#COMMITTED` attributes that name committed batches (`b:<batch_id>`).
pub const COMMITTED_BATCH_PREFIX: &str = "b:";
/// Prefix of the `#COMMITTED` attributes that count a batch's record-id chunks (`i:<batch_id>`).
pub const COMMITTED_IDS_PREFIX: &str = "i:";
/// Sort-key prefix of record-id chunks. It starts with `#` so that readers of usage chunks
/// ([`parse_chunk_sk`]) pass over them.
pub const IDS_SK_PREFIX: &str = "#ids#";

pub fn ledger_pk(batch_id: &str) -> String {
    format!("BATCH#{batch_id}")
}

pub fn usage_pk(account: &str, period_id: &str) -> String {
    format!("USAGE#{account}#{period_id}")
}

/// Chunk numbers are zero-padded so that a partition lists a batch's chunks in order.
pub fn chunk_sk(batch_id: &str, n: u32) -> String {
    format!("{batch_id}#{n:05}")
}

/// Splits a chunk sort key into its batch id and number; `None` for other items of the
/// partition (their sort keys start with `#`).
pub fn parse_chunk_sk(sk: &str) -> Option<(&str, u32)> {
    if sk.starts_with('#') {
        return None;
    }
    let (batch, n) = sk.rsplit_once('#')?;
    Some((batch, n.parse().ok()?))
}

/// Sort key of a batch's record-id chunk `n`, in the account's usage partition.
pub fn ids_sk(batch_id: &str, n: u32) -> String {
    format!("{IDS_SK_PREFIX}{batch_id}#{n:05}")
}

/// Splits a record-id chunk sort key into its batch id and number.
pub fn parse_ids_sk(sk: &str) -> Option<(&str, u32)> {
    let (batch, n) = sk.strip_prefix(IDS_SK_PREFIX)?.rsplit_once('#')?;
    Some((batch, n.parse().ok()?))
}

/// Bytes DynamoDB counts for a number attribute's value, an upper bound: "about one byte per
/// two significant digits, plus one" (DynamoDB developer guide, item sizes).
pub fn number_bytes(n: u64) -> usize {
    let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    digits.div_ceil(2) + 1
}

/// What committing a batch into a partition adds to its `#COMMITTED` item: the `b:<batch_id>`
/// attribute and, when it adds record ids, `i:<batch_id>`, plus a possible extra digit of
/// `version`.
pub fn committed_growth_bytes(batch_id: &str, chunks: u32, id_chunks: u32) -> usize {
    let b = COMMITTED_BATCH_PREFIX.len() + batch_id.len() + number_bytes(u64::from(chunks));
    let i = if id_chunks > 0 {
        COMMITTED_IDS_PREFIX.len() + batch_id.len() + number_bytes(u64::from(id_chunks))
    } else {
        0
    };
    b + i + 1
}

/// The size of a `#COMMITTED` item as DynamoDB counts it (attribute names plus values), an
/// upper bound. Both stores compute it from the same attributes, so a partition is full at the
/// same batch whichever store holds it.
pub fn committed_item_bytes<'a>(
    pk: &str,
    version: u64,
    closed: Option<&str>,
    batches: impl IntoIterator<Item = (&'a str, u32)>,
    ids: impl IntoIterator<Item = (&'a str, u32)>,
) -> usize {
    let keys = "pk".len() + pk.len() + "sk".len() + COMMITTED_SK.len();
    let version = "version".len() + number_bytes(version);
    let closed = closed.map_or(0, |c| "closed".len() + c.len());
    let attrs = |prefix: &str, it: &mut dyn Iterator<Item = (&'a str, u32)>| -> usize {
        it.map(|(b, n)| prefix.len() + b.len() + number_bytes(u64::from(n)))
            .sum()
    };
    keys + version
        + closed
        + attrs(COMMITTED_BATCH_PREFIX, &mut batches.into_iter())
        + attrs(COMMITTED_IDS_PREFIX, &mut ids.into_iter())
}

/// Sort key of the statement a final invoice was priced with, beside its `FINAL`.
pub const STATEMENT_SK: &str = "STATEMENT";

pub fn invoice_pk(account: &str, period_id: &str) -> String {
    format!("INVOICE#{account}#{period_id}")
}

/// The partition of an account's own items: its balance, payments and document history.
pub fn account_pk(account: &str) -> String {
    format!("ACCOUNT#{account}")
}

/// Sort key of an account's running balance.
pub const BALANCE_SK: &str = "BALANCE";
/// Sort-key prefix of an account's payments (`PAYMENT#<reference>`).
pub const PAYMENT_SK_PREFIX: &str = "PAYMENT#";
/// Sort-key prefix of an account's document history (`DOC#<issued at, ms, 15 digits>#<number>`):
/// a query in descending order lists the newest first.
pub const DOC_SK_PREFIX: &str = "DOC#";

/// Sort-key prefix of an account's late-usage markers (`LATE#<period_id>`): a closed period
/// that took usage after its final invoice, not corrected yet.
pub const LATE_SK_PREFIX: &str = "LATE#";
/// Sort-key prefix of a reseller's own account's markers of customers' late usage
/// (`RESOLD#<period_id>`): a customer took usage into its closed period, which the reseller's
/// statement of that period may have billed at wholesale without.
pub const RESOLD_SK_PREFIX: &str = "RESOLD#";
/// Sort-key prefix of the corrections of a final invoice (`NOTE#<seq, 4 digits>`), in the
/// invoice's own partition beside `FINAL`.
pub const NOTE_SK_PREFIX: &str = "NOTE#";
/// Sort-key prefix of the customers a reseller invoiced for a period (`CUSTOMER#<account>`), in
/// its own account's partition of that period (`invoice_pk`): written by each customer's final
/// invoice numbered in the reseller's series, so that the reseller's statement of the period
/// bills them at wholesale even when the accounts book has moved them to another issuer since.
pub const CUSTOMER_SK_PREFIX: &str = "CUSTOMER#";

pub fn customer_sk(account: &str) -> String {
    format!("{CUSTOMER_SK_PREFIX}{account}")
}

/// Sort key of an issuer's note counter (beside its invoice counter, `INVOICE`).
pub const NOTE_COUNTER_SK: &str = "NOTE";

pub fn late_sk(period_id: &str) -> String {
    format!("{LATE_SK_PREFIX}{period_id}")
}

pub fn resold_sk(period_id: &str) -> String {
    format!("{RESOLD_SK_PREFIX}{period_id}")
}

pub fn note_sk(seq: u32) -> String {
    format!("{NOTE_SK_PREFIX}{seq:04}")
}

/// A note's number: the issuer's own series of notes, gapless, apart from its invoices'.
pub fn note_number(issuer: &str, n: u64) -> String {
    format!("{issuer}-N{n:06}")
}

/// Whether `number` (an invoice's `<issuer>-<n>` or a note's `<issuer>-N<n>`) is in
/// `issuer`'s series: `acme-000001` is Acme's, `acme-eu-000001` is not.
pub fn issued_by(number: &str, issuer: &str) -> bool {
    number
        .strip_prefix(issuer)
        .and_then(|rest| rest.strip_prefix('-'))
        .map(|rest| rest.strip_prefix('N').unwrap_or(rest))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A closed account period that took usage after its final invoice (a late-usage policy let
/// it in) and whose difference is not issued yet: the trigger of a note (policy `note`) or of
/// adjustments on the account's next invoice (`next_period`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateMarker {
    pub period_id: String,
    /// The final invoice the late usage reopens.
    pub number: String,
    /// Bumped by each late commit into the period: clearing the marker is conditional on
    /// the version read, so a late batch committed meanwhile is never left uncorrected.
    pub version: u64,
}

/// A period of a reseller's own account into which one of its customers took late usage
/// (their billing periods are of one kind): the reseller's statement of it, if final, is
/// corrected at wholesale by the account's next finalize, however many statements later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResoldMarker {
    pub period_id: String,
    /// Bumped by each customer's late commit into the period.
    pub version: u64,
    /// The version a finalize last settled (on the condition that the marker was still at it):
    /// pending while `version` is past it. Never deleted, so a bump can never restart at a
    /// version a slower settle read (and clear usage it did not price).
    #[serde(default)]
    pub settled: u64,
}

impl ResoldMarker {
    /// Whether customers' late usage came in since the last settle.
    pub fn pending(&self) -> bool {
        self.version > self.settled
    }
}

/// One correction of a final invoice, as stored: a numbered note (issued on its own), or an
/// unnumbered one billed as adjustments on a later invoice (`billed_on`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredNote {
    /// Position in the invoice's chain of corrections, from 1.
    pub seq: u32,
    pub note: pricing::Note,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_on: Option<String>,
}

pub fn payment_sk(reference: &str) -> String {
    format!("{PAYMENT_SK_PREFIX}{reference}")
}

pub fn doc_sk(doc: &DocRef) -> String {
    format!(
        "{DOC_SK_PREFIX}{:015}#{}",
        doc.issued_at_ms.max(0),
        doc.number
    )
}

/// What the last final invoice of an account left: the start of the next one's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastFinal {
    pub period: String,
    pub number: String,
    /// Owed after that invoice (brought forward by the next one).
    pub carried_forward: Decimal,
    /// Prepaid credit not consumed yet (the next invoice may use it; none is used twice).
    pub prepaid_remaining: Decimal,
    /// The currency of those amounts (the invoice's). `None` in balances written before it
    /// was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// An account's running balance: moved by each final invoice and each payment, in the
/// account's own item, so that a payment and a finalize of the same account never pass each
/// other unseen (each bumps `version`, each is conditional on the version it read).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub version: u64,
    /// `None` before the account's first final invoice: the accounts book's opening balance
    /// and prepaid credit apply.
    pub last: Option<LastFinal>,
    /// The totals of the credit and debit notes issued since the last final invoice: the next
    /// one brings them forward with its carried-forward (a debit note is owed, a credit note
    /// is owed back), and starts again from zero.
    #[serde(default)]
    pub notes_since: Decimal,
    /// Owed to an issuer that no longer bills the account, by issuer (its series): the
    /// balance the new issuer's first final invoice handed over to it
    /// (`invoices::handed_over`), the notes it issued after another issuer's final invoice
    /// became the account's last (its corrections of the periods it billed), less the payments
    /// recorded to it. Never brought forward by another issuer: the account's current issuer
    /// cannot ask for another's money. When the book moves the customer back to an issuer it
    /// owes, that issuer's next final invoice brings its entry forward and zeroes it
    /// (`invoices::brought_back`). Zero entries are kept (a history, not a debt).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub owed_elsewhere: std::collections::BTreeMap<String, Decimal>,
    /// The periods with usage committed and no final invoice yet (on a reseller's own
    /// account, also its customers' such periods): marked by the commit that first brings
    /// usage into a period, cleared by that period's final invoice. A close finalizes the
    /// marked periods before its own, in order, so usage that came after an earlier close
    /// skipped the account is billed rather than left on no invoice.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub open: std::collections::BTreeSet<String>,
}

impl Balance {
    /// What the next final invoice brings forward (`None` before the first final).
    pub fn brought_forward(&self) -> Option<Decimal> {
        let last = self.last.as_ref()?;
        // Both sides are bounded far below Decimal's range (balances by
        // `pricing::invoice::balance_max`, notes by the line amount bounds): saturating is
        // never reached, and the statement's own checks refuse a balance beyond its bound.
        Some(last.carried_forward.saturating_add(self.notes_since))
    }

    /// The last final invoice when it is of a period after `period_id` (ids of one period kind
    /// sort in time order): the chain has passed that period, so nothing more can be billed
    /// into it.
    pub fn later_final(&self, period_id: &str) -> Option<&LastFinal> {
        self.last.as_ref().filter(|l| l.period.as_str() > period_id)
    }
}

/// A payment received, as recorded (idempotent by its reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPayment {
    pub reference: String,
    pub date: chrono::DateTime<chrono::Utc>,
    pub amount: Decimal,
    pub currency: String,
    /// Paid to an issuer that no longer bills the account (its series): settles
    /// [`Balance::owed_elsewhere`], is on none of the account's invoices. `None`: paid on the
    /// account's chain, taken by the invoice of the period its date falls in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<String>,
}

impl RecordedPayment {
    /// Whether the account's own invoices take this payment (not one to a former issuer).
    pub fn on_chain(&self) -> bool {
        self.payee.is_none()
    }
}

/// The series of a document number: `acme-eu` of `acme-eu-000001` and of `acme-eu-N000001`.
pub fn series_of(number: &str) -> &str {
    number.rsplit_once('-').map_or(number, |(series, _)| series)
}

/// What kind of document a history entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Invoice,
    CreditNote,
    DebitNote,
}

/// One entry of an account's document history: a final invoice or a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocRef {
    pub kind: DocKind,
    pub number: String,
    pub period: String,
    /// Epoch milliseconds of issue (orders the history).
    pub issued_at_ms: i64,
    pub total: Decimal,
    pub currency: String,
    /// The invoice a note corrects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
}

pub fn counter_pk(issuer: &str) -> String {
    format!("COUNTER#{issuer}")
}

/// The two kinds of versioned configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigKind {
    Catalog,
    Accounts,
}

impl ConfigKind {
    pub fn name(self) -> &'static str {
        match self {
            ConfigKind::Catalog => "catalog",
            ConfigKind::Accounts => "accounts",
        }
    }
}

/// The partition of a fanned-out export's status document (`crate::shards`): one item.
pub fn fanout_pk(batch_id: &str) -> String {
    format!("FANOUT#{batch_id}")
}

/// The sort key of a fanned-out export's status document.
pub const FANOUT_SK: &str = "STATUS";

/// The partition of the cumulative counters' carried readings (Ceilometer): one item per shard.
pub const READINGS_PK: &str = "READINGS";

/// Shards the carried readings are spread over, by series: each item stays far below
/// DynamoDB's 400 KB (64 x [`READINGS_ITEM_BYTES_MAX`] holds some 40,000 series at
/// `pricing::import::READINGS_KEPT` readings each, 160,000 at one).
pub const READINGS_SHARDS: u64 = 64;

/// Largest body of one readings item: past it, each series of the shard keeps only its
/// latest reading; past it again, the write is refused (more series than one table's
/// readings hold).
pub const READINGS_ITEM_BYTES_MAX: usize = 350 * 1024;

/// The sort key of readings shard `n`.
pub fn readings_sk(shard: u64) -> String {
    format!("SHARD#{shard:02}")
}

/// The shard of a series (FNV-1a of its key: stable across builds and machines).
pub fn readings_shard(series: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in series.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h % READINGS_SHARDS
}

/// `readings` split by shard.
pub fn readings_by_shard(
    readings: &pricing::import::Readings,
) -> std::collections::BTreeMap<u64, pricing::import::Readings> {
    let mut out: std::collections::BTreeMap<u64, pricing::import::Readings> = Default::default();
    for (series, r) in readings {
        out.entry(readings_shard(series))
            .or_default()
            .insert(series.clone(), r.clone());
    }
    out
}

pub fn config_pk(kind: ConfigKind) -> String {
    format!("CONFIG#{}", kind.name())
}

pub fn config_sk(version: &str) -> String {
    format!("v#{version}")
}

/// One usage partition: an account's billing period (the period of the account's kind that
/// holds a record's start). Everything the rater stores about usage is per partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Partition {
    pub account: String,
    /// The period's id (`2017-02`, `2017-W07`, `2017-02-14`, `2017-02-14T09`).
    pub period: String,
}

impl Partition {
    pub fn new(account: impl Into<String>, period: impl Into<String>) -> Partition {
        Partition {
            account: account.into(),
            period: period.into(),
        }
    }

    /// The partition as one text (`<account>#<period>`; account ids hold no `#`), the key the
    /// record-id rule groups a batch's ids by.
    pub fn key(&self) -> String {
        format!("{}#{}", self.account, self.period)
    }

    /// Reads [`Partition::key`] back.
    pub fn from_key(key: &str) -> Option<Partition> {
        let (account, period) = key.split_once('#')?;
        Some(Partition::new(account, period))
    }
}

/// What a finished batch did: kept in its ledger item and returned on replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSummary {
    pub batch_id: String,
    /// SHA-256 (hex) of the export bytes: a replay under the same id must carry the same bytes.
    pub content_sha256: String,
    /// The period of the batch's first partition (summaries written before partitions held
    /// one period: `accounts` x `period`).
    pub period: String,
    pub mode: Mode,
    /// The batch's accounts, when there are at most [`crate::limits::SUMMARY_PARTITIONS_MAX`]
    /// partitions (the summary lives in one item); empty above that.
    pub accounts: Vec<String>,
    /// How many accounts the batch brought usage for (0 in summaries written before it
    /// existed: then `accounts` is the whole list).
    #[serde(default)]
    pub accounts_total: u64,
    /// The usage partitions the batch committed into, when at most
    /// [`crate::limits::SUMMARY_PARTITIONS_MAX`]; empty above that (and in summaries written
    /// before: then `accounts` x `period`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<Partition>,
    #[serde(default)]
    pub partitions_total: u64,
    /// The closed partitions the batch brought late usage into (its account's policy let it
    /// in), when the summary lists partitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<Partition>,
    pub records: u64,
    /// Records not counted: their id was counted before with the same content.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// Usage and record-id chunk items written (what storing the batch cost).
    pub usage_items: u64,
    /// Usage totals inside those items.
    pub usage_totals: u64,
    pub catalog_version: String,
    pub accounts_version: String,
}

impl BatchSummary {
    /// How many accounts the batch brought usage for.
    pub fn accounts_total(&self) -> u64 {
        self.accounts_total.max(self.accounts.len() as u64)
    }

    /// The partitions the batch committed into, as far as the summary lists them.
    pub fn partitions(&self) -> Vec<Partition> {
        if !self.partitions.is_empty() {
            return self.partitions.clone();
        }
        self.accounts
            .iter()
            .map(|a| Partition::new(a.clone(), self.period.clone()))
            .collect()
    }

    /// How many partitions the batch committed into.
    pub fn partitions_total(&self) -> u64 {
        self.partitions_total
            .max(self.partitions.len() as u64)
            .max(self.accounts_total())
    }
}

/// The state of a batch's ledger item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Ledger {
    InProgress {
        owner: String,
        /// Epoch seconds after which another attempt may take the batch over.
        expires_at: i64,
        content_sha256: String,
        /// Some of the batch's partitions are committed: set by the batch's first commit
        /// transaction, atomically with what it commits. A bound ledger is kept for good (in
        /// DynamoDB it loses the table's TTL attribute) and takes only its content. An
        /// unbound one committed nothing: once its lease expired it is free for any content,
        /// as TTL would delete it.
        #[serde(default)]
        bound: bool,
    },
    /// An attempt that failed (a handled error, its lease given up) after some of the batch's
    /// partitions were committed: those stay billed, so the batch id stays bound to the content
    /// that committed them. Only that content may take the batch again (and commit the rest);
    /// another body under the same idempotency key is refused, never merged with them. Kept
    /// with no lease expiry, so the table's TTL never removes it.
    Partial {
        content_sha256: String,
    },
    Done(BatchSummary),
}

impl Ledger {
    /// The content the batch id takes at `now_s`, if it is bound to one: a done or partly
    /// committed batch's, or a live lease's (a concurrent attempt). `None`: free for any
    /// content (an unbound lease that expired committed nothing).
    pub fn bound_to(&self, now_s: i64) -> Option<&str> {
        match self {
            Ledger::Done(summary) => Some(&summary.content_sha256),
            Ledger::Partial { content_sha256 } => Some(content_sha256),
            Ledger::InProgress {
                content_sha256,
                bound,
                expires_at,
                ..
            } => (*bound || *expires_at > now_s).then_some(content_sha256.as_str()),
        }
    }

    /// Some of the batch's partitions are committed but not all (its id is bound).
    pub fn partly_committed(&self) -> bool {
        matches!(
            self,
            Ledger::Partial { .. } | Ledger::InProgress { bound: true, .. }
        )
    }
}

/// What a chunk holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// Usage totals: a JSON array of rows (see [`encode_chunks`]).
    Usage,
    /// Record-id fingerprints the batch added (see [`crate::dedupe::encode_id_chunk`]).
    RecordIds,
}

/// One chunk of one batch's usage totals (or record ids) for one account and period.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageChunk {
    pub account: String,
    pub period_id: String,
    pub batch_id: String,
    pub n: u32,
    pub kind: ChunkKind,
    pub body: String,
}

impl UsageChunk {
    pub fn pk(&self) -> String {
        usage_pk(&self.account, &self.period_id)
    }
    pub fn sk(&self) -> String {
        match self.kind {
            ChunkKind::Usage => chunk_sk(&self.batch_id, self.n),
            ChunkKind::RecordIds => ids_sk(&self.batch_id, self.n),
        }
    }
}

/// One persisted total, without the account (the partition names it), written as a JSON array
/// (about 100 bytes per total instead of 250 with field names): project, resource, product,
/// meter, region, day, unit, billable, quantity, records, and the tags as an eleventh element
/// when there are any (rows written before tags were kept have ten, and read as untagged).
struct RowOut<'a>(&'a UsageKey, &'a UsageTotal);

impl Serialize for RowOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let RowOut(k, t) = self;
        let mut row = s.serialize_tuple(if k.tags.is_empty() { 10 } else { 11 })?;
        row.serialize_element(&k.project)?;
        row.serialize_element(&k.resource)?;
        row.serialize_element(&k.product)?;
        row.serialize_element(&k.meter)?;
        row.serialize_element(&k.region)?;
        row.serialize_element(&k.day)?;
        row.serialize_element(&k.unit)?;
        row.serialize_element(&k.billable)?;
        row.serialize_element(&t.quantity)?;
        row.serialize_element(&t.records)?;
        if !k.tags.is_empty() {
            row.serialize_element(&k.tags)?;
        }
        row.end()
    }
}

/// A row read back ([`RowOut`]'s layout).
struct Row {
    key: UsageKey,
    total: UsageTotal,
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a usage row: an array of 10 or 11 elements")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Row, A::Error> {
                macro_rules! next {
                    ($i:expr) => {
                        a.next_element()?
                            .ok_or_else(|| serde::de::Error::invalid_length($i, &self))?
                    };
                }
                let key = UsageKey {
                    // Set by the caller: the partition names it.
                    account: String::new(),
                    project: next!(0),
                    resource: next!(1),
                    product: next!(2),
                    meter: next!(3),
                    region: next!(4),
                    day: next!(5),
                    unit: next!(6),
                    billable: next!(7),
                    tags: Vec::new(),
                };
                let total = UsageTotal {
                    quantity: next!(8),
                    records: next!(9),
                };
                let tags: Vec<String> = a.next_element()?.unwrap_or_default();
                if a.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(12, &self));
                }
                Ok(Row {
                    key: UsageKey { tags, ..key },
                    total,
                })
            }
        }
        d.deserialize_seq(Fields)
    }
}

/// Splits a batch's usage into chunks of at most [`CHUNK_BYTES_MAX`] bytes, per account, in
/// key order. The result depends only on `usage`, so every attempt at a batch writes the same
/// items, byte for byte.
pub fn encode_chunks(batch_id: &str, period_id: &str, usage: &Usage) -> Vec<UsageChunk> {
    let mut chunks: Vec<UsageChunk> = Vec::new();
    let mut current: Option<UsageChunk> = None;
    for (k, t) in &usage.totals {
        let text = serde_json::to_string(&RowOut(k, t)).expect("rows serialize");
        let fits = current.as_ref().is_some_and(|c| {
            c.account == k.account && c.body.len() + 1 + text.len() < CHUNK_BYTES_MAX
        });
        if !fits {
            let n = match &current {
                Some(c) if c.account == k.account => c.n + 1,
                _ => 0,
            };
            if let Some(mut c) = current.take() {
                c.body.push(']');
                // Grown by doubling: up to a quarter of a chunk would be slack until stored.
                c.body.shrink_to_fit();
                chunks.push(c);
            }
            current = Some(UsageChunk {
                account: k.account.clone(),
                period_id: period_id.to_string(),
                batch_id: batch_id.to_string(),
                n,
                kind: ChunkKind::Usage,
                body: String::from("["),
            });
        }
        let c = current.as_mut().expect("a current chunk");
        if c.body.len() > 1 {
            c.body.push(',');
        }
        c.body.push_str(&text);
    }
    if let Some(mut c) = current.take() {
        c.body.push(']');
        chunks.push(c);
    }
    chunks
}

/// Reads a chunk back into usage totals of `account`.
pub fn decode_chunk(account: &str, body: &str) -> Result<Usage, serde_json::Error> {
    let rows: Vec<Row> = serde_json::from_str(body)?;
    let mut usage = Usage::default();
    for Row { key, total } in rows {
        let key = UsageKey {
            account: account.to_string(),
            ..key
        };
        let UsageTotal { quantity, records } = total;
        // One key per row in what `encode_chunks` writes; a hand-edited chunk with a key twice
        // whose sum does not fit is refused, not a panic.
        let t = usage.totals.entry(key).or_default();
        let sum = t
            .quantity
            .checked_add(quantity)
            .zip(t.records.checked_add(records));
        let Some((quantity, records)) = sum else {
            return Err(serde::de::Error::custom(
                "a total repeated in the chunk does not fit in a decimal",
            ));
        };
        *t = UsageTotal { quantity, records };
    }
    Ok(usage)
}

/// Usage chunk counts per partition of a batch.
pub fn chunk_counts(chunks: &[UsageChunk]) -> BTreeMap<Partition, u32> {
    let mut out: BTreeMap<Partition, u32> = BTreeMap::new();
    let mut last: Option<(&str, &str, u32)> = None;
    for c in chunks.iter().filter(|c| c.kind == ChunkKind::Usage) {
        // Chunks come grouped by partition: count a run, then store it once.
        match &mut last {
            Some((a, p, n)) if *a == c.account && *p == c.period_id => *n = (*n).max(c.n + 1),
            _ => {
                if let Some((a, p, n)) = last.take() {
                    let e = out.entry(Partition::new(a, p)).or_default();
                    *e = (*e).max(n);
                }
                last = Some((&c.account, &c.period_id, c.n + 1));
            }
        }
    }
    if let Some((a, p, n)) = last {
        let e = out.entry(Partition::new(a, p)).or_default();
        *e = (*e).max(n);
    }
    out
}

/// Interim: rate and answer running invoices. Final: rate, then issue the period's numbered
/// invoice for every account in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Interim,
    Final,
}

/// An account period finalized by a `final` batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalized {
    pub account: String,
    pub period: String,
    pub number: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use pricing::Unit;

    #[test]
    fn a_number_is_in_one_issuers_series() {
        for (number, issuer, yes) in [
            ("acme-000001", "acme", true),
            ("acme-N000012", "acme", true),
            ("acme-eu-000001", "acme", false),
            ("acme-eu-000001", "acme-eu", true),
            ("acme-", "acme", false),
            ("acme-N", "acme", false),
            ("acme000001", "acme", false),
            ("nimbus-000001", "acme", false),
        ] {
            assert_eq!(issued_by(number, issuer), yes, "{number} by {issuer}");
        }
        assert!(issued_by(&note_number("acme", 7), "acme"));
        assert!(issued_by(&crate::store::invoice_number("acme", 7), "acme"));
        // Both kinds of one issuer's documents are of one series, and only of it.
        for issuer in ["acme", "acme-eu", "ratecard"] {
            for number in [
                note_number(issuer, 3),
                crate::store::invoice_number(issuer, 41),
            ] {
                assert_eq!(series_of(&number), issuer, "{number}");
                assert!(issued_by(&number, series_of(&number)), "{number}");
            }
        }
    }

    fn usage(accounts: &[&str], per_account: usize) -> Usage {
        let mut u = Usage::default();
        for a in accounts {
            for i in 0..per_account {
                u.totals.insert(
                    UsageKey {
                        account: a.to_string(),
                        project: String::new(),
                        resource: format!("vm-{i:06}"),
                        product: "copper".into(),
                        meter: "vm.running".into(),
                        region: String::new(),
                        day: NaiveDate::from_ymd_opt(2017, 2, 1 + (i % 28) as u32).unwrap(),
                        unit: Unit::Hours,
                        billable: i % 7 != 0,
                        tags: if i % 3 == 0 {
                            vec!["env:prod".into(), "team:web".into()]
                        } else {
                            Vec::new()
                        },
                    },
                    UsageTotal {
                        quantity: Decimal::new(i as i64 * 1234, 3),
                        records: 1 + i as u64,
                    },
                );
            }
        }
        u
    }

    #[test]
    fn rows_without_tags_are_ten_elements_as_before_and_tags_an_eleventh() {
        let u = usage(&["a"], 4);
        let body = &encode_chunks("b", "2017-02", &u)[0].body;
        let rows: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
        let lens: Vec<usize> = rows.iter().map(|r| r.as_array().unwrap().len()).collect();
        // Key order: vm-000000 (tagged), vm-000001, vm-000002, vm-000003 (tagged).
        assert_eq!(lens, vec![11, 10, 10, 11]);
        assert_eq!(rows[0][10], serde_json::json!(["env:prod", "team:web"]));
        // A row stored before tags were kept reads as untagged.
        let old = r#"[["","vm-1","copper","vm.running","","2017-02-03","hours",true,"1.5",2]]"#;
        let back = decode_chunk("a", old).unwrap();
        let (k, t) = back.totals.iter().next().unwrap();
        assert!(k.tags.is_empty());
        assert_eq!((k.resource.as_str(), t.records), ("vm-1", 2));
        for bad in [
            r#"[["","vm-1","copper","vm.running","","2017-02-03","hours",true,"1.5"]]"#,
            r#"[["","vm-1","copper","vm.running","","2017-02-03","hours",true,"1.5",2,[],0]]"#,
        ] {
            assert!(decode_chunk("a", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_round_trip_and_stay_under_the_limit() {
        let u = usage(&["a", "b"], 5_000);
        let chunks = encode_chunks("batch-1", "2017-02", &u);
        assert!(
            chunks.len() > 2,
            "5,000 totals per account need several chunks"
        );
        assert!(chunks.iter().all(|c| c.body.len() < CHUNK_BYTES_MAX));
        let mut back = Usage::default();
        for c in &chunks {
            back.merge(&decode_chunk(&c.account, &c.body).unwrap())
                .unwrap();
        }
        assert_eq!(back, u);
        assert_eq!(
            chunk_counts(&chunks),
            BTreeMap::from([
                (
                    Partition::new("a", "2017-02"),
                    chunks.iter().filter(|c| c.account == "a").count() as u32
                ),
                (
                    Partition::new("b", "2017-02"),
                    chunks.iter().filter(|c| c.account == "b").count() as u32
                )
            ])
        );
        // Deterministic: the same usage gives the same bytes.
        assert_eq!(encode_chunks("batch-1", "2017-02", &u), chunks);
    }

    #[test]
    fn chunk_sort_keys_parse() {
        assert_eq!(
            parse_chunk_sk(&chunk_sk("abc#def", 7)),
            Some(("abc#def", 7))
        );
        assert_eq!(parse_chunk_sk(COMMITTED_SK), None);
        assert_eq!(parse_chunk_sk(&ids_sk("abc#def", 7)), None);
        assert_eq!(parse_ids_sk(&ids_sk("abc#def", 7)), Some(("abc#def", 7)));
        assert_eq!(parse_ids_sk(&chunk_sk("abc", 7)), None);
        assert_eq!(parse_chunk_sk("nonumber"), None);
    }
}
