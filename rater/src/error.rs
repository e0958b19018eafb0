//! The rater's errors: what went wrong, whether retrying can help, and the HTTP status to answer.

use pricing::{BatchErrors, PricingError};
use thiserror::Error;

/// Why a store call failed. Stores report facts (a condition failed, the service is down); the
/// handler decides what they mean.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The service could not be reached, throttled, or failed on its side: retry later.
    #[error("store unavailable: {message}")]
    Unavailable { message: String },
    /// Another attempt holds or took over the batch's lease.
    #[error("batch `{batch_id}`: the lease is held by another attempt")]
    LeaseLost { batch_id: String },
    /// The account's period was finalized; no usage may be committed into it.
    #[error("period {period} of account `{account}` is closed by final invoice {number}")]
    PeriodClosed {
        account: String,
        period: String,
        number: String,
    },
    /// Another batch committed into the account's period after this one checked its record
    /// ids against it: check again.
    #[error(
        "usage of `{account}` in {period} moved while the batch's record ids were checked; retry"
    )]
    UsageMoved { account: String, period: String },
    /// A final invoice already exists for the account and period.
    #[error("period {period} of account `{account}` already has final invoice {number}")]
    AlreadyFinal {
        account: String,
        period: String,
        number: String,
    },
    /// Finalizing lost a race (the counter moved, or usage was committed meanwhile).
    #[error("finalize of `{account}` {period} raced another write; retry")]
    FinalizeConflict { account: String, period: String },
    /// Issuing a correction lost a race (the note counter, the invoice's corrections or its
    /// late-usage marker moved).
    #[error("a correction of `{account}` {period} raced another write; retry")]
    NoteConflict { account: String, period: String },
    /// A payment reference was recorded before for another payment.
    #[error("payment `{reference}` of account `{account}` was recorded before with other content; use a new reference")]
    PaymentConflict { account: String, reference: String },
    /// A config version was stored before with a different body.
    #[error("{kind} version `{version}` is already stored with different content; publish a new version")]
    ConfigVersionConflict { kind: String, version: String },
    /// An item in the store cannot be read back: a bug or a manual edit, not a transient fault.
    #[error("corrupt item {pk} / {sk}: {message}")]
    Corrupt {
        pk: String,
        sk: String,
        message: String,
    },
    /// The service refused the request itself (missing table, validation): retrying the same
    /// request cannot help.
    #[error("store refused the request: {message}")]
    Rejected { message: String },
    /// A write refused by a fault-injection wrapper (tests and simulators only).
    #[cfg(feature = "testing")]
    #[error("injected fault: {what}")]
    Injected { what: String },
}

impl StoreError {
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. }
            | StoreError::LeaseLost { .. }
            | StoreError::FinalizeConflict { .. }
            | StoreError::NoteConflict { .. }
            | StoreError::UsageMoved { .. } => true,
            #[cfg(feature = "testing")]
            StoreError::Injected { .. } => true,
            StoreError::PeriodClosed { .. }
            | StoreError::AlreadyFinal { .. }
            | StoreError::ConfigVersionConflict { .. }
            | StoreError::PaymentConflict { .. }
            | StoreError::Rejected { .. }
            | StoreError::Corrupt { .. } => false,
        }
    }

    pub(crate) fn corrupt(pk: &str, sk: &str, message: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            pk: pk.to_string(),
            sk: sk.to_string(),
            message: message.to_string(),
        }
    }
}

/// Why a batch, an invoice or a finalize request failed. Each variant names the broken rule and
/// carries what the caller needs to fix it.
#[derive(Debug, Error)]
pub enum RaterError {
    #[error("payload is {bytes} bytes, more than the limit of {max} bytes (Lambda's 6 MB request limit); split the export into smaller batches")]
    PayloadTooLarge { bytes: usize, max: usize },
    #[error("empty batch: the export holds no usage record")]
    EmptyBatch,
    #[error("bad request: `{field}`: {message}")]
    BadRequest {
        field: &'static str,
        message: String,
    },
    /// The export as a whole cannot be read (not JSON, wrong shape, over a size limit).
    #[error(transparent)]
    Import(pricing::import::ImportError),
    /// Every bad record (up to the display cap) of a batch rejected whole.
    #[error(transparent)]
    BadRecords(#[from] BatchErrors),
    #[error("batch id `{batch_id}` was used before for different content (sha256 {stored_sha256}, now {sha256}); use a new idempotency key")]
    IdempotencyKeyReused {
        batch_id: String,
        stored_sha256: String,
        sha256: String,
    },
    #[error("late usage refused: period {period} of account `{account}` is closed by final invoice {number}; nothing was written (issue a credit or debit note instead)")]
    PeriodClosed {
        account: String,
        period: String,
        number: String,
    },
    /// A batch over more partitions than one transaction commits found, on a retry, that one
    /// of the partitions it had not committed into yet was closed meanwhile: the partitions
    /// committed before stay (they are on their invoices), the rest is refused.
    #[error("batch `{batch_id}`: {committed} of its {partitions} account periods were committed before period {period} of account `{account}` was closed by final invoice {number}; the rest of the batch is refused (bill it with a debit note)")]
    BatchPartlyCommitted {
        batch_id: String,
        committed: usize,
        partitions: usize,
        account: String,
        period: String,
        number: String,
    },
    /// The account's period holds so many batches that its `#COMMITTED` item has no room for
    /// another (see [`crate::limits::COMMITTED_ITEM_BYTES_MAX`]).
    #[error("account `{account}` has {batches} batches in period {period}: one more would pass the limit of {batches_max} batches or make its #COMMITTED item {bytes} bytes, over the limit of {max}; send fewer, larger batches (or shorter idempotency keys)")]
    PartitionFull {
        account: String,
        period: String,
        batches: usize,
        batches_max: usize,
        bytes: usize,
        max: usize,
    },
    /// A `final` batch finalized some of its accounts, then failed on one: the ones finalized
    /// stay final; sending the batch again finalizes the rest.
    #[error("batch `{batch_id}`: {} account(s) finalized, then finalizing `{account}` failed: {cause}", finalized.len())]
    FinalizeIncomplete {
        batch_id: String,
        finalized: Vec<crate::model::Finalized>,
        account: String,
        cause: Box<RaterError>,
    },
    /// A `final` batch names more accounts than its answer can list.
    #[error("a final batch may hold at most {max} accounts, this one holds {accounts}: rate it as interim and close the month (`ratecard close`), which finalizes any number")]
    TooManyAccountsForFinal { accounts: usize, max: usize },
    /// A scheduled close finalized what it could but some accounts failed: the run ends in
    /// error so that the scheduler retries it (and, past its retries, the dead-letter queue
    /// and its alarm show it). A rerun finalizes only the accounts still open.
    #[error("the close of {period} finalized {finalized} account(s) but {failed} failed (first: `{first_account}`: {first_message})")]
    CloseIncomplete {
        period: String,
        finalized: u64,
        failed: u64,
        first_account: String,
        first_message: String,
        retryable: bool,
    },
    /// A correction asked for a period that has no final invoice (an interim invoice changes by
    /// itself; there is nothing to correct).
    #[error("account `{account}` has no final invoice for period {period}: there is nothing to correct (interim invoices follow the usage by themselves)")]
    NoFinalInvoice { account: String, period: String },
    /// Finalizing (or closing) a period that has not ended, without the operator's override.
    #[error("period {period} of account `{account}` ends at {ends_at}: it cannot be finalized before (an operator may override)")]
    PeriodNotEnded {
        account: String,
        period: String,
        ends_at: chrono::DateTime<chrono::Utc>,
    },
    /// The account's balance chain has a later final invoice already: this period's would
    /// bring forward the wrong balance.
    #[error("account `{account}` already has a final invoice for a later period ({later}, {number}): period {period} cannot be finalized after it (correct it with a note)")]
    FinalizedOutOfOrder {
        account: String,
        period: String,
        later: String,
        number: String,
    },
    /// The account's invoice currency changed (an edit of the accounts book) while it carries
    /// amounts in the old one: a balance, prepaid credit, notes since its last final invoice,
    /// or payments recorded for this period. Carried over as they are, they would change value
    /// (500.00 EUR owed brought forward as 500 JPY).
    #[error("account `{account}` is invoiced in {to} now, but carries amounts in {from} from its last final invoice or its recorded payments for {period}: settle or convert them (a credit or debit note) before its currency changes")]
    CurrencyChanged {
        account: String,
        period: String,
        from: String,
        to: String,
    },
    /// An earlier period of the account has something to bill (usage or a payment that came
    /// after its close skipped the account) and no final invoice: finalizing this one first
    /// would leave that on no invoice. A close finalizes both, in order.
    #[error("account `{account}` has period {earlier} to bill before {period} (usage or a payment that came after its close): finalize {earlier} first, or close {period}, which does both in order")]
    EarlierPeriodOpen {
        account: String,
        period: String,
        earlier: String,
    },
    /// A reseller's statement before its customers' invoices: it bills their usage at
    /// wholesale, which may still change while they are open.
    #[error("the statement of reseller account `{account}` for {period} waits for its customer `{customer}`'s final invoice (close the period: customers go first)")]
    CustomerOpen {
        account: String,
        period: String,
        customer: String,
    },
    #[error("payment `{reference}` of account `{account}` was recorded before with other content; use a new reference")]
    PaymentConflict { account: String, reference: String },
    #[error("period {period} of account `{account}` is already finalized (invoice {number}); a final invoice is issued once")]
    AlreadyFinalized {
        account: String,
        period: String,
        number: String,
    },
    #[error("batch `{batch_id}` is being rated by another delivery; retry in {retry_after_s} s")]
    BatchInProgress {
        batch_id: String,
        retry_after_s: u64,
    },
    #[error("account `{account}` is not in the accounts book (version {accounts_version})")]
    UnknownAccount {
        account: String,
        accounts_version: String,
    },
    #[error("final invoice of `{account}` {period} is {bytes} bytes with its statement, more than the {max} bytes one finalize may store")]
    InvoiceTooLarge {
        account: String,
        period: String,
        bytes: usize,
        max: usize,
    },
    #[error("correction of `{account}` {period} is {bytes} bytes, more than the {max} bytes one note may store")]
    NoteTooLarge {
        account: String,
        period: String,
        bytes: usize,
        max: usize,
    },
    /// The caller's role does not allow the action (see `crate::auth`).
    #[error("{principal} may not {action}: it needs {needs}")]
    Forbidden {
        action: &'static str,
        needs: &'static str,
        principal: String,
    },
    /// An invoice that cannot be written as an EN 16931 e-invoice (`crate::einvoice`), naming
    /// the standard's rule it would break.
    #[error("invoice {document} of account {account} cannot be an EN 16931 e-invoice ({rule}): {message}")]
    EInvoice {
        document: String,
        account: String,
        rule: &'static str,
        message: String,
    },
    /// An account statement that cannot be made (`crate::statements`): a reversed range, or
    /// stored documents whose balance chain does not reconcile.
    #[error("statement of account {account}: {error}")]
    Statement {
        account: String,
        error: pricing::account_statement::StatementError,
    },
    /// A PDF document could not be written (`crate::pdf`).
    #[error("PDF document: {0}")]
    Document(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The temporary file holding a large batch's record ids could not be written or read
    /// (disk full, no writable temporary directory): nothing was written to the store.
    #[error("temporary file for the batch's record ids: {0} (set TMPDIR to a writable directory with room)")]
    TempFile(std::io::Error),
    #[error("pricing failed: {0}")]
    Pricing(#[from] PricingError),
    /// A bug: a panic caught while answering the request. The process lives on; the request
    /// wrote nothing visible (a batch interrupted by it is like a crashed one).
    #[error("internal error: {message}")]
    Internal { message: String },
    #[error(transparent)]
    Store(StoreError),
    /// An export kept as an object (S3) could not be read: nothing was written.
    #[error("export {object}: {problem}")]
    Export {
        /// `s3://bucket/key`.
        object: String,
        problem: ExportProblem,
    },
}

/// Why an export kept as an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExportProblem {
    #[error("no such object")]
    Missing,
    #[error("the object was replaced while it was being read (its ETag changed); the new upload is rated on its own")]
    Changed,
    #[error("object storage unavailable: {message}")]
    Unavailable { message: String },
    #[error("object storage refused the request: {message}")]
    Refused { message: String },
    #[error("the {compression} stream is corrupt or cut short (a truncated upload?): {message}")]
    Compression {
        compression: &'static str,
        message: String,
    },
}

impl From<StoreError> for RaterError {
    fn from(e: StoreError) -> RaterError {
        match e {
            StoreError::PeriodClosed {
                account,
                period,
                number,
            } => RaterError::PeriodClosed {
                account,
                period,
                number,
            },
            StoreError::AlreadyFinal {
                account,
                period,
                number,
            } => RaterError::AlreadyFinalized {
                account,
                period,
                number,
            },
            StoreError::PaymentConflict { account, reference } => {
                RaterError::PaymentConflict { account, reference }
            }
            e => RaterError::Store(e),
        }
    }
}

impl RaterError {
    /// True when the same request may succeed later unchanged (Lambda should retry it).
    pub fn retryable(&self) -> bool {
        match self {
            RaterError::BatchInProgress { .. } => true,
            RaterError::FinalizeIncomplete { cause, .. } => cause.retryable(),
            RaterError::CloseIncomplete { retryable, .. } => *retryable,
            RaterError::Store(e) => e.retryable(),
            RaterError::Export {
                problem: ExportProblem::Unavailable { .. },
                ..
            } => true,
            _ => false,
        }
    }

    /// The HTTP status a Function URL answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            RaterError::PayloadTooLarge { .. }
            | RaterError::Import(pricing::import::ImportError::TooLarge { .. }) => 413,
            RaterError::Forbidden { .. } => 403,
            RaterError::NoFinalInvoice { .. } => 404,
            RaterError::EmptyBatch | RaterError::BadRequest { .. } | RaterError::Import(_) => 400,
            RaterError::BadRecords(_)
            | RaterError::IdempotencyKeyReused { .. }
            | RaterError::UnknownAccount { .. }
            | RaterError::PartitionFull { .. }
            | RaterError::PaymentConflict { .. }
            | RaterError::TooManyAccountsForFinal { .. }
            | RaterError::EInvoice { .. } => 422,
            RaterError::FinalizeIncomplete { cause, .. } => cause.http_status(),
            RaterError::PeriodClosed { .. }
            | RaterError::PeriodNotEnded { .. }
            | RaterError::FinalizedOutOfOrder { .. }
            | RaterError::EarlierPeriodOpen { .. }
            | RaterError::CurrencyChanged { .. }
            | RaterError::CustomerOpen { .. }
            | RaterError::BatchPartlyCommitted { .. }
            | RaterError::AlreadyFinalized { .. }
            | RaterError::BatchInProgress { .. } => 409,
            RaterError::Statement { error, .. } => match error {
                pricing::account_statement::StatementError::Range { .. } => 400,
                _ => 500,
            },
            RaterError::InvoiceTooLarge { .. }
            | RaterError::NoteTooLarge { .. }
            | RaterError::CloseIncomplete { .. }
            | RaterError::Internal { .. }
            | RaterError::Config(_)
            | RaterError::Document(_)
            | RaterError::Pricing(_)
            | RaterError::TempFile(_) => 500,
            RaterError::Store(e) if e.retryable() => 503,
            RaterError::Store(_) => 500,
            RaterError::Export { problem, .. } => match problem {
                ExportProblem::Missing => 404,
                ExportProblem::Changed => 409,
                ExportProblem::Unavailable { .. } => 503,
                ExportProblem::Refused { .. } => 500,
                ExportProblem::Compression { .. } => 400,
            },
        }
    }

    /// What a caller is told: the error's text, except for the store's own errors and
    /// internal ones, whose details (AWS messages with table ARNs and keys, a panic's message)
    /// belong in the function's log, not in answers.
    pub fn public_message(&self) -> String {
        match self {
            RaterError::Store(e) if e.retryable() => {
                "the billing store is unavailable right now; retry later".to_string()
            }
            RaterError::Store(StoreError::Corrupt { .. }) | RaterError::Store(_) => {
                "the billing store refused the request; the operator finds the details in the rater's log".to_string()
            }
            RaterError::Internal { .. } => {
                "internal error; nothing was written; the operator finds the details in the rater's log".to_string()
            }
            RaterError::Export {
                object,
                problem: ExportProblem::Refused { .. } | ExportProblem::Unavailable { .. },
            } => format!(
                "export {object}: object storage did not serve it; nothing was written; the operator finds the details in the rater's log"
            ),
            e => e.to_string(),
        }
    }

    /// The JSON body of an error: what failed, whether to retry, and every bad record (also
    /// the body of an export's rejection report).
    pub fn to_json(&self) -> serde_json::Value {
        let e = self;
        let mut err = serde_json::json!({
            "code": e.code(),
            "message": e.public_message(),
            "retryable": e.retryable(),
        });
        if let RaterError::FinalizeIncomplete {
            finalized, account, ..
        } = e
        {
            err["finalized"] = serde_json::json!(finalized);
            err["failed_account"] = serde_json::json!(account);
        }
        if let RaterError::BadRecords(b) = e {
            err["total"] = serde_json::json!(b.total);
            err["records"] = serde_json::Value::Array(
                b.errors
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "index": r.index,
                            "record_id": r.record_id.as_deref().map(pricing::error::shown),
                            "field": r.field,
                            "value": pricing::error::shown(&r.value),
                            "rule": r.rule.to_string(),
                        })
                    })
                    .collect(),
            );
        }
        serde_json::json!({ "error": err })
    }

    /// A stable, machine-readable name of the rule that failed.
    pub fn code(&self) -> &'static str {
        match self {
            RaterError::PayloadTooLarge { .. } => "payload_too_large",
            RaterError::EmptyBatch => "empty_batch",
            RaterError::BadRequest { .. } => "bad_request",
            RaterError::Import(_) => "import",
            RaterError::BadRecords(_) => "bad_records",
            RaterError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            RaterError::PeriodClosed { .. } => "period_closed",
            RaterError::BatchPartlyCommitted { .. } => "batch_partly_committed",
            RaterError::PeriodNotEnded { .. } => "period_not_ended",
            RaterError::FinalizedOutOfOrder { .. } => "finalized_out_of_order",
            RaterError::EarlierPeriodOpen { .. } => "earlier_period_open",
            RaterError::CurrencyChanged { .. } => "currency_changed",
            RaterError::CustomerOpen { .. } => "customer_open",
            RaterError::PartitionFull { .. } => "partition_full",
            RaterError::PaymentConflict { .. } => "payment_conflict",
            RaterError::FinalizeIncomplete { .. } => "finalize_incomplete",
            RaterError::CloseIncomplete { .. } => "close_incomplete",
            RaterError::TooManyAccountsForFinal { .. } => "too_many_accounts_for_final",
            RaterError::AlreadyFinalized { .. } => "already_finalized",
            RaterError::BatchInProgress { .. } => "batch_in_progress",
            RaterError::UnknownAccount { .. } => "unknown_account",
            RaterError::NoFinalInvoice { .. } => "no_final_invoice",
            RaterError::InvoiceTooLarge { .. } => "invoice_too_large",
            RaterError::NoteTooLarge { .. } => "note_too_large",
            RaterError::Forbidden { .. } => "forbidden",
            RaterError::Config(_) => "config",
            RaterError::EInvoice { .. } => "not_an_einvoice",
            RaterError::Statement { error, .. } => match error {
                pricing::account_statement::StatementError::Range { .. } => "bad_request",
                pricing::account_statement::StatementError::Chain { .. } => {
                    "statement_unreconciled"
                }
                pricing::account_statement::StatementError::Overflow(_) => "overflow",
            },
            RaterError::Document(_) => "document",
            RaterError::TempFile(_) => "temp_file",
            RaterError::Pricing(_) => "pricing",
            RaterError::Internal { .. } => "internal",
            RaterError::Store(e) if e.retryable() => "store_unavailable",
            RaterError::Store(_) => "store",
            RaterError::Export { problem, .. } => match problem {
                ExportProblem::Missing => "export_missing",
                ExportProblem::Changed => "export_changed",
                ExportProblem::Unavailable { .. } => "export_unavailable",
                ExportProblem::Refused { .. } => "export_refused",
                ExportProblem::Compression { .. } => "export_compression",
            },
        }
    }
}
