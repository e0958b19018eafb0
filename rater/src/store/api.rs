//! The storage trait the protocol is written against, and the values that cross it.
//!
//! Every method is one atomic step of the protocol described in the crate docs; both
//! implementations give the same answers to the same calls, and the handler tests run against
//! the embedded one while the integration tests run the same scenarios against DynamoDB Local.

use pricing::import::Readings;
use std::future::Future;

use pricing::{Invoice, Usage};

use crate::dedupe::Fingerprint;
use crate::error::StoreError;
use crate::model::{
    decode_chunk, parse_chunk_sk, parse_ids_sk, Balance, BatchSummary, ConfigKind, DocRef,
    LastFinal, LateMarker, Ledger, RecordedPayment, ResoldMarker, StoredNote, UsageChunk,
    IDS_SK_PREFIX,
};

/// A claim on a batch by one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub batch_id: String,
    /// Random id of the attempt.
    pub owner: String,
    /// Epoch seconds when the claim lapses.
    pub expires_at: i64,
    pub content_sha256: String,
}

/// What taking a lease found.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOutcome {
    /// The batch is ours to rate.
    Acquired,
    /// The batch was rated before.
    Done(Box<BatchSummary>),
    /// Another attempt holds a live lease.
    Held { expires_at: i64 },
    /// The batch id is bound to another content: an attempt with that content holds it, left
    /// it (a crash, its lease not expired from the table yet) or committed part of it
    /// ([`crate::model::Ledger::Partial`]). The idempotency key was reused for another body.
    Reused { content_sha256: String },
}

/// One usage partition's part of a commit: what the batch adds to one account's period.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitAccount {
    pub account: String,
    pub period_id: String,
    /// Usage chunks of the batch for this account.
    pub chunks: u32,
    /// Record-id chunks the batch adds for this account.
    pub id_chunks: u32,
    /// The final invoice number of a closed period this part brings late usage into (the
    /// account's late-usage policy lets it in): the commit then accepts the closed period if
    /// it is still closed by this number, and bumps its late-usage marker.
    pub late: Option<String>,
    /// The period version ([`RecordIds::version`]) this batch's record ids were checked
    /// against, when it has any for the account. The commit is refused with `UsageMoved` if
    /// another batch committed into the period since (unless this batch already is committed
    /// there): two batches racing with one record id can never both count it.
    pub checked_version: Option<u64>,
    /// The accounts whose balance this part marks the period open in, when it is the first
    /// usage of the period (see [`crate::model::Balance::open`]): the commit is refused with
    /// `PeriodClosed` if one of them has a later period final already (the period was
    /// skipped by its close and passed by the account's chain: the usage would be on no
    /// invoice).
    pub opens: Vec<String>,
    /// With `late`: the reseller's own account whose marker of the period
    /// ([`crate::model::ResoldMarker`]) the commit bumps, for a reseller's customer, so the
    /// reseller's statement of the period is corrected at wholesale too.
    pub resold: Option<String>,
}

/// One commit transaction of a rated batch: some of its partitions' chunk counts, and on the
/// batch's last transaction the ledger's `DONE`.
///
/// A batch over more partitions than one transaction holds
/// ([`crate::limits::COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`]) commits in several, in order;
/// each partition's part is atomic, and a retry commits only the partitions that
/// [`Store::partitions`] does not show as committed by the batch (see `crate::commit`).
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub batch_id: String,
    pub owner: String,
    /// At most [`crate::limits::COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`] parts.
    pub accounts: Vec<CommitAccount>,
    /// Set on the batch's last transaction: the ledger becomes `DONE` with this summary.
    pub done: Option<BatchSummary>,
}

impl Commit {
    /// The items its transaction writes besides the ledger's: one per partition, one more
    /// per late-usage marker, per reseller's marker and per balance marking a period open (an
    /// upper bound: a store merges two marks of one item into one).
    pub fn items(&self) -> usize {
        self.accounts.iter().map(CommitAccount::items).sum()
    }

    /// Refuses a commit over [`crate::limits::COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`] items.
    pub(crate) fn check_size(&self) -> Result<(), StoreError> {
        let max = crate::limits::COMMIT_ACCOUNTS_PER_TRANSACTION_MAX;
        if self.items() > max {
            return Err(StoreError::Rejected {
                message: format!(
                    "a commit transaction holds at most {max} partition, marker and balance items, got {}",
                    self.items()
                ),
            });
        }
        Ok(())
    }
}

impl CommitAccount {
    /// The items this part writes in its commit transaction.
    pub fn items(&self) -> usize {
        1 + usize::from(self.late.is_some()) + usize::from(self.resold.is_some()) + self.opens.len()
    }
}

/// A batch's chunk counts in one partition, as committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub chunks: u32,
    pub id_chunks: u32,
}

/// The state of one usage partition's `#COMMITTED` item as one batch sees it: read before
/// the lease (closed periods, size) and before each commit (what an earlier attempt already
/// committed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PartitionState {
    pub account: String,
    pub period_id: String,
    /// The batch's own counts when it is committed there already.
    pub own: Option<Counts>,
    /// Batches committed into the partition.
    pub batches: usize,
    /// Size of the `#COMMITTED` item as DynamoDB counts it, an upper bound
    /// ([`crate::model::committed_item_bytes`]).
    pub item_bytes: usize,
    /// The final invoice number once the period is closed.
    pub closed: Option<String>,
}

/// Which of a batch's chunks in one account's period are its own: the numbers below these
/// counts. [`Store::sweep_chunks`] deletes the others (left by an attempt that left out fewer
/// records).
#[derive(Debug, Clone, PartialEq)]
pub struct Keep {
    pub account: String,
    pub period_id: String,
    pub batch_id: String,
    pub chunks: u32,
    pub id_chunks: u32,
}

impl Keep {
    /// The sort-key prefixes of the batch's usage and record-id chunks.
    pub(crate) fn prefixes(&self) -> [String; 2] {
        [
            format!("{}#", self.batch_id),
            format!("{IDS_SK_PREFIX}{}#", self.batch_id),
        ]
    }
}

/// Which sort keys of a partition a read covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SkRange<'a> {
    Prefix(&'a str),
    Below(&'a str),
    From(&'a str),
}

impl SkRange<'_> {
    /// The first sort key the range can hold.
    pub(crate) fn start(&self) -> &str {
        match *self {
            SkRange::Prefix(p) | SkRange::From(p) => p,
            SkRange::Below(_) => "",
        }
    }

    pub(crate) fn contains(&self, sk: &str) -> bool {
        match *self {
            SkRange::Prefix(p) => sk.starts_with(p),
            SkRange::Below(b) => sk < b,
            SkRange::From(f) => sk >= f,
        }
    }
}

/// Where a usage partition's chunks are: their keys start with a batch id, which never starts
/// with `#`, while the partition's own items (`#COMMITTED`, record-id chunks of 200 KB each)
/// all do, so reading usage skips them.
pub(crate) const USAGE_CHUNKS: [SkRange<'static>; 2] = [SkRange::Below("#"), SkRange::From("$")];

/// The record ids committed into one account's period.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordIds {
    /// Sorted fingerprints of every committed batch.
    pub ids: Vec<Fingerprint>,
    /// [`PeriodUsage::version`] at the moment they were read.
    pub version: u64,
}

/// The committed usage of one account and period.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeriodUsage {
    pub usage: Usage,
    /// Bumped by each commit into the period: a finalize computed from version v is refused
    /// if it is no longer v.
    pub version: u64,
    /// The final invoice number once the period is closed.
    pub closed: Option<String>,
    /// Batches committed into the period.
    pub batches: usize,
}

/// Issuing one final invoice, all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalize {
    pub issuer: String,
    /// The counter value read before numbering: the invoice takes `expected_counter + 1`.
    pub expected_counter: u64,
    pub account: String,
    pub period_id: String,
    /// [`PeriodUsage::version`] the invoice was computed from.
    pub usage_version: u64,
    pub number: String,
    pub invoice: Invoice,
    /// The account's [`Balance::version`] the invoice's statement was read at (0: no balance
    /// item yet): refused with `FinalizeConflict` if a payment or another finalize moved it.
    pub balance_version: u64,
    /// What this invoice leaves for the next one.
    pub last: LastFinal,
    /// The first final invoice of a new issuer: the former issuer's series and what the
    /// account owes it, added to `Balance::owed_elsewhere` (`invoices::handed_over`).
    pub handed_over: Option<(String, rust_decimal::Decimal)>,
    /// The first final invoice of an issuer billing the account again (the customer came
    /// back): its own series and what the account still owed it, which the invoice brings
    /// forward, taken off `Balance::owed_elsewhere` (`invoices::brought_back`).
    pub brought_back: Option<(String, rust_decimal::Decimal)>,
    /// A reseller's customer's invoice: the reseller's own account whose statement of the
    /// period bills the customer at wholesale, where the customer is recorded as invoiced
    /// ([`Store::billed_customers`]).
    pub resold_by: Option<String>,
    /// That reseller's statement of the period was final already when read (the customer was
    /// invoiced after it, e.g. moved to the reseller since): the reseller's marker of the
    /// period is bumped, so its next finalize corrects that statement with the customer
    /// (`notes::settle_resold`), however many statements later. The write is conditional on
    /// the statement being (or not being) final still (`FinalizeConflict` otherwise).
    pub resold_late: bool,
    /// The balance's open periods (as read at `balance_version`) this invoice closes: its own
    /// and, on a reseller's account, earlier ones its customers' usage marked there although
    /// its statement of them was final already (that usage is settled by notes).
    pub cleared_open: Vec<String>,
    /// The invoice's entry in the account's history.
    pub doc: DocRef,
    /// The statement it was priced with (kept to re-price the period for its corrections).
    pub statement: pricing::Statement,
    /// Earlier periods' late usage billed on it (policy `next_period`).
    pub adjustments: Vec<AdjustmentWrite>,
}

/// What clearing a late-usage marker is conditional on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerCheck {
    /// No marker was read: none may have appeared (a late batch committing meanwhile would be
    /// missed by the correction).
    Absent,
    /// The marker was read at this version: it is deleted if still there.
    Version(u64),
}

/// Issuing a correction of one final invoice, all or nothing: the note (numbered from the
/// issuer's note counter, or none when the period's usage now prices as it stands), and the
/// period's late-usage marker cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteWrite {
    pub issuer: String,
    pub account: String,
    pub period_id: String,
    /// The note, with its `seq` the next in the invoice's chain; `None` only clears the marker.
    pub note: Option<StoredNote>,
    /// The note counter read before numbering (the note takes the next number).
    pub expected_counter: u64,
    pub marker: MarkerCheck,
    /// The note's entry in the account's history.
    pub doc: Option<DocRef>,
    /// Where the note's total goes in the account's balance.
    pub into: NoteInto,
    /// The account's [`Balance::version`] `into` was decided at: the condition on a DynamoDB
    /// balance written before it kept its last final invoice's period apart (`last_period`),
    /// which `into` cannot be checked against.
    pub balance_version: u64,
}

/// Where a note's total goes in its account's balance ([`crate::model::Balance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteInto {
    /// `notes_since`, provided the account's last final invoice is still of `last_period`
    /// (`None`: none yet): the account's next final invoice brings it forward, unless another
    /// issuer's first invoice lands first and makes the note owed elsewhere (the book moved
    /// the customer: a process on an older book does not know).
    ChainAt { last_period: Option<String> },
    /// `owed_elsewhere[issuer]`, provided the last final invoice is still of `last_period`:
    /// another issuer's final invoice is the account's last, and it cannot bring this one's
    /// note forward.
    Elsewhere { last_period: String },
}

/// One earlier period's difference billed on a final invoice as adjustments: stored as an
/// unnumbered note of that period's invoice, its marker cleared if still at the version read.
#[derive(Debug, Clone, PartialEq)]
pub struct AdjustmentWrite {
    pub period_id: String,
    /// `None` when the late usage changed no amount: only the marker is cleared.
    pub note: Option<StoredNote>,
    /// The period's late-usage marker as read: cleared if still at that version, or (a later
    /// period of a month whose earlier period took late usage, re-priced with it) absent.
    pub marker: MarkerCheck,
}

/// Recording a payment: its account, the account period its date falls in (refused once that
/// period is final), and the payment.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentWrite {
    pub account: String,
    pub period_id: String,
    pub payment: RecordedPayment,
}

/// What recording a payment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    Recorded,
    /// The same payment (reference and content) was recorded before: nothing changed.
    AlreadyRecorded,
}

/// A stored configuration version.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    pub version: String,
    pub body: String,
}

/// The rater's storage. Methods are async and `Send` so that one store serves concurrent
/// invocations; implementations are cheap to share behind `&` or `Arc`.
pub trait Store: Send + Sync {
    /// The ledger item of a batch, if any.
    fn ledger(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<Option<Ledger>, StoreError>> + Send;

    /// Claims a batch: succeeds when it has no ledger, when its lease expired by `now_s`, or
    /// when `lease.owner` already holds it; and then, when the ledger is bound to a content
    /// ([`crate::model::Ledger::bound_to`]), only for that content (`Reused` otherwise: an
    /// attempt with another body under the same batch id committed partitions that this one
    /// would take for its own). A bound ledger stays bound under the new lease.
    fn try_lease(
        &self,
        lease: &Lease,
        now_s: i64,
    ) -> impl Future<Output = Result<LeaseOutcome, StoreError>> + Send;

    /// Gives up a lease still held by `owner` (after a handled failure), so that a retry need
    /// not wait for it to expire. A crashed attempt never calls this; its lease expires. A
    /// ledger bound by a commit (some partitions committed) becomes
    /// [`crate::model::Ledger::Partial`], still bound to its content; an unbound one is
    /// deleted.
    fn release(
        &self,
        batch_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes chunks with plain puts (a retry writes the same bytes again).
    fn put_chunks(
        &self,
        chunks: &[UsageChunk],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the batch's usage and record-id chunks in the account's period that `keep`
    /// does not count (always invisible: no commit counts them). Called under the lease before
    /// the commit, when the batch leaves out records another attempt may have written.
    fn sweep_chunks(&self, keep: &Keep) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies one commit transaction while `owner` still holds the batch's lease: all of it
    /// or nothing. Errors: `LeaseLost`, `PeriodClosed` (for an account whose period was
    /// finalized before this batch committed there), `UsageMoved` (a checked version moved),
    /// `Rejected` (more parts than one transaction holds).
    fn commit(&self, commit: &Commit) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The `#COMMITTED` state of each `(account, period_id)` partition, as `batch_id` sees it,
    /// in the order asked.
    fn partitions(
        &self,
        batch_id: &str,
        keys: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<PartitionState>, StoreError>> + Send;

    /// The record-id fingerprints committed into `account`'s period by batches other than
    /// `except_batch` (a batch's own ids never count against itself), with the version they
    /// are consistent with.
    fn record_ids(
        &self,
        account: &str,
        period_id: &str,
        except_batch: &str,
    ) -> impl Future<Output = Result<RecordIds, StoreError>> + Send;

    /// The merged usage of every committed batch of `account` in `period_id`.
    fn period_usage(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<PeriodUsage, StoreError>> + Send;

    fn final_invoice(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Option<Invoice>, StoreError>> + Send;

    /// The last invoice number issued by `issuer` (0 before the first).
    fn counter(&self, issuer: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Issues a final invoice. Errors: `AlreadyFinal` when the period has one,
    /// `FinalizeConflict` when the counter or the usage moved since they were read.
    fn finalize(&self, f: &Finalize) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The account's running balance (the default, version 0, when it has none yet).
    fn balance(&self, account: &str) -> impl Future<Output = Result<Balance, StoreError>> + Send;

    /// The customers whose final invoice of `period_id` a reseller issued, on its own
    /// `account` ([`Finalize::resold_by`]), in account-id order.
    fn billed_customers(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The statement a final invoice was priced with (`None` without a final invoice).
    fn final_statement(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Option<pricing::Statement>, StoreError>> + Send;

    /// The corrections of the final invoice of `account`'s period, in their order.
    fn corrections(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Vec<StoredNote>, StoreError>> + Send;

    /// The account's late-usage markers, oldest period first.
    fn late_markers(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<LateMarker>, StoreError>> + Send;

    /// The reseller's own account's pending markers of its customers' late usage
    /// ([`ResoldMarker::pending`]), oldest first.
    fn resold_markers(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<ResoldMarker>, StoreError>> + Send;

    /// Marks the reseller's marker of `period_id` settled at `version` if it is still at
    /// `version`; `false` (nothing written) when a customer's late commit moved it since.
    fn clear_resold_marker(
        &self,
        account: &str,
        period_id: &str,
        version: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The last note number issued by `issuer` (0 before the first).
    fn note_counter(&self, issuer: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Issues a correction. Errors: `NoteConflict` when the note counter, the invoice's chain
    /// of corrections or the marker moved since they were read.
    fn issue_note(&self, w: &NoteWrite) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records a payment, atomically with a bump of the account's balance version, unless the
    /// account period its date falls in is closed, or the account's balance chain has passed
    /// it (a later period is final: the payment would be on no invoice). Idempotent by
    /// reference. Errors: `PaymentConflict` (the reference names another payment),
    /// `PeriodClosed` (naming the period's final invoice, or the later one).
    fn record_payment(
        &self,
        p: &PaymentWrite,
    ) -> impl Future<Output = Result<PaymentOutcome, StoreError>> + Send;

    /// Every payment recorded for the account.
    fn payments(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<RecordedPayment>, StoreError>> + Send;

    /// The account's final invoices and notes, newest first.
    fn history(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<DocRef>, StoreError>> + Send;

    /// Stores a config version (a no-op when stored before with the same body; refused with
    /// `ConfigVersionConflict` when with another), and makes it current if asked.
    fn put_config(
        &self,
        kind: ConfigKind,
        version: &str,
        body: &str,
        make_current: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A config version, or the current one when `version` is `None`.
    fn config(
        &self,
        kind: ConfigKind,
        version: Option<&str>,
    ) -> impl Future<Output = Result<Option<ConfigItem>, StoreError>> + Send;

    /// The readings of cumulative counters carried between batches (every shard).
    fn readings(&self) -> impl Future<Output = Result<Readings, StoreError>> + Send;

    /// Merges `readings` into the carried ones (`pricing::import::merge_readings`), each shard
    /// atomically: concurrent batches lose none of each other's readings.
    fn merge_readings(
        &self,
        readings: &Readings,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The status document of an export fanned out in shards (`crate::shards`): its body and
    /// version, or `None`.
    fn fanout(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<Option<(u64, String)>, StoreError>> + Send;

    /// Writes the status document of a fanned-out export if its version is still `expected`
    /// (`None`: only if there is none yet); the new version is `expected + 1` (or 1). `false`
    /// when another writer moved it first (read it again and reapply).
    fn put_fanout(
        &self,
        batch_id: &str,
        expected: Option<u64>,
        body: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Stores shared behind an `Arc` are stores too (concurrent tests and the Lambda share one).
impl<S: Store> Store for std::sync::Arc<S> {
    fn ledger(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<Option<Ledger>, StoreError>> + Send {
        (**self).ledger(batch_id)
    }
    fn try_lease(
        &self,
        lease: &Lease,
        now_s: i64,
    ) -> impl Future<Output = Result<LeaseOutcome, StoreError>> + Send {
        (**self).try_lease(lease, now_s)
    }
    fn release(
        &self,
        batch_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(batch_id, owner)
    }
    fn put_chunks(
        &self,
        chunks: &[UsageChunk],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_chunks(chunks)
    }
    fn sweep_chunks(&self, keep: &Keep) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).sweep_chunks(keep)
    }
    fn commit(&self, commit: &Commit) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).commit(commit)
    }
    fn partitions(
        &self,
        batch_id: &str,
        keys: &[(String, String)],
    ) -> impl Future<Output = Result<Vec<PartitionState>, StoreError>> + Send {
        (**self).partitions(batch_id, keys)
    }
    fn record_ids(
        &self,
        account: &str,
        period_id: &str,
        except_batch: &str,
    ) -> impl Future<Output = Result<RecordIds, StoreError>> + Send {
        (**self).record_ids(account, period_id, except_batch)
    }
    fn period_usage(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<PeriodUsage, StoreError>> + Send {
        (**self).period_usage(account, period_id)
    }
    fn final_statement(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Option<pricing::Statement>, StoreError>> + Send {
        (**self).final_statement(account, period_id)
    }
    fn corrections(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Vec<StoredNote>, StoreError>> + Send {
        (**self).corrections(account, period_id)
    }
    fn late_markers(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<LateMarker>, StoreError>> + Send {
        (**self).late_markers(account)
    }
    fn billed_customers(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).billed_customers(account, period_id)
    }
    fn resold_markers(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<ResoldMarker>, StoreError>> + Send {
        (**self).resold_markers(account)
    }
    fn clear_resold_marker(
        &self,
        account: &str,
        period_id: &str,
        version: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).clear_resold_marker(account, period_id, version)
    }
    fn note_counter(&self, issuer: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).note_counter(issuer)
    }
    fn issue_note(&self, w: &NoteWrite) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).issue_note(w)
    }
    fn final_invoice(
        &self,
        account: &str,
        period_id: &str,
    ) -> impl Future<Output = Result<Option<Invoice>, StoreError>> + Send {
        (**self).final_invoice(account, period_id)
    }
    fn counter(&self, issuer: &str) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).counter(issuer)
    }
    fn finalize(&self, f: &Finalize) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).finalize(f)
    }
    fn balance(&self, account: &str) -> impl Future<Output = Result<Balance, StoreError>> + Send {
        (**self).balance(account)
    }
    fn record_payment(
        &self,
        p: &PaymentWrite,
    ) -> impl Future<Output = Result<PaymentOutcome, StoreError>> + Send {
        (**self).record_payment(p)
    }
    fn payments(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<RecordedPayment>, StoreError>> + Send {
        (**self).payments(account)
    }
    fn history(
        &self,
        account: &str,
    ) -> impl Future<Output = Result<Vec<DocRef>, StoreError>> + Send {
        (**self).history(account)
    }
    fn put_config(
        &self,
        kind: ConfigKind,
        version: &str,
        body: &str,
        make_current: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).put_config(kind, version, body, make_current)
    }
    fn config(
        &self,
        kind: ConfigKind,
        version: Option<&str>,
    ) -> impl Future<Output = Result<Option<ConfigItem>, StoreError>> + Send {
        (**self).config(kind, version)
    }
    fn readings(&self) -> impl Future<Output = Result<Readings, StoreError>> + Send {
        (**self).readings()
    }
    fn merge_readings(
        &self,
        readings: &Readings,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).merge_readings(readings)
    }
    fn fanout(
        &self,
        batch_id: &str,
    ) -> impl Future<Output = Result<Option<(u64, String)>, StoreError>> + Send {
        (**self).fanout(batch_id)
    }
    fn put_fanout(
        &self,
        batch_id: &str,
        expected: Option<u64>,
        body: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).put_fanout(batch_id, expected, body)
    }
}

/// True when `sk` names a usage or record-id chunk of `keep`'s batch that `keep` does not
/// count (see [`Store::sweep_chunks`]).
pub fn swept(sk: &str, keep: &Keep) -> bool {
    match parse_ids_sk(sk) {
        Some((batch, n)) => batch == keep.batch_id && n >= keep.id_chunks,
        None => {
            parse_chunk_sk(sk).is_some_and(|(batch, n)| batch == keep.batch_id && n >= keep.chunks)
        }
    }
}

/// The usage of a stored chunk of `account` when it counts: its batch is committed with more
/// chunks than its number (`committed` gives a batch's committed chunk count). Other items are
/// `None`; a chunk that counts but cannot be read is corrupt.
pub fn committed_usage_chunk(
    account: &str,
    pk: &str,
    sk: &str,
    body: Option<&str>,
    committed: impl Fn(&str) -> Option<u32>,
) -> Result<Option<Usage>, StoreError> {
    let Some((batch, n)) = parse_chunk_sk(sk) else {
        return Ok(None);
    };
    if committed(batch).is_none_or(|count| n >= count) {
        return Ok(None);
    }
    let body = body.ok_or_else(|| StoreError::corrupt(pk, sk, "no text body"))?;
    decode_chunk(account, body)
        .map(Some)
        .map_err(|e| StoreError::corrupt(pk, sk, e))
}

/// The fingerprints of a stored record-id chunk when it counts: its batch is committed with more
/// chunks than its number (`committed` gives a batch's committed record-id chunk count). Other
/// items (a crashed attempt's leftovers) are `None`; a chunk that counts but cannot be read is
/// corrupt.
pub fn committed_id_chunk(
    pk: &str,
    sk: &str,
    body: Option<&str>,
    committed: impl Fn(&str) -> Option<u32>,
) -> Result<Option<Vec<crate::dedupe::Fingerprint>>, StoreError> {
    let Some((batch, n)) = parse_ids_sk(sk) else {
        return Ok(None);
    };
    if committed(batch).is_none_or(|count| n >= count) {
        return Ok(None);
    }
    body.and_then(crate::dedupe::decode_ids)
        .map(Some)
        .ok_or_else(|| StoreError::corrupt(pk, sk, "not a record-id chunk"))
}

/// The body of a readings item after merging `add` into `old`: JSON, trimmed to each series'
/// latest reading when the item would pass [`crate::model::READINGS_ITEM_BYTES_MAX`].
///
/// # Errors
/// `Rejected` when even one reading per series does not fit.
pub(crate) fn merged_readings_body(
    old: Option<&[u8]>,
    add: &pricing::import::Readings,
    pk: &str,
    sk: &str,
) -> Result<Vec<u8>, StoreError> {
    let mut merged: pricing::import::Readings = match old {
        Some(b) => serde_json::from_slice(b).map_err(|e| StoreError::corrupt(pk, sk, e))?,
        None => Default::default(),
    };
    pricing::import::merge_readings(&mut merged, add);
    let mut body = serde_json::to_vec(&merged).expect("readings serialize");
    if body.len() > crate::model::READINGS_ITEM_BYTES_MAX {
        for r in merged.values_mut() {
            let n = r.len();
            r.drain(..n.saturating_sub(1));
        }
        body = serde_json::to_vec(&merged).expect("readings serialize");
    }
    if body.len() > crate::model::READINGS_ITEM_BYTES_MAX {
        return Err(StoreError::Rejected {
            message: format!(
                "carried readings of shard {sk}: {} bytes with one reading per series, more than the {} an item holds",
                body.len(),
                crate::model::READINGS_ITEM_BYTES_MAX
            ),
        });
    }
    Ok(body)
}

/// Committed usage of a partition whose totals do not add up inside a decimal: the rater never
/// commits such usage (each batch's lines are bounded), so it can only come from outside.
pub(crate) fn overflowed(pk: &str, e: pricing::exact::Overflow) -> StoreError {
    StoreError::corrupt(pk, COMMITTED_SK_FOR_ERRORS, format!("committed usage: {e}"))
}

const COMMITTED_SK_FOR_ERRORS: &str = "#COMMITTED";

/// Invoice numbers: the issuer, then the counter value zero-padded so that numbers sort.
pub fn invoice_number(issuer: &str, n: u64) -> String {
    format!("{issuer}-{n:06}")
}
