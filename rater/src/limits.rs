//! The rater's named limits, each with the reason for its number.

/// Largest export one request may carry, in bytes. Lambda refuses synchronous invocation
/// payloads (and Function URL request bodies) above 6 MB = 6,291,456 bytes; checking it here
/// gives the same clear error in the CLI and the handler instead of a runtime failure.
pub const PAYLOAD_BYTES_MAX: usize = 6 * 1024 * 1024;

/// Largest serialized usage chunk, in bytes. DynamoDB items are limited to 400 KB including
/// attribute names; half of that leaves room for keys and keeps one BatchWriteItem call
/// (25 items) well under its 16 MB request limit.
pub const CHUNK_BYTES_MAX: usize = 200 * 1024;

/// How long a batch lease lasts, in seconds. It must outlast the Lambda timeout (300 s) so that
/// an attempt whose lease expired is certainly dead before another takes the batch over.
pub const LEASE_S: i64 = 600;

/// Longest batch id (idempotency key), in bytes. Keys are limited to 2048 (pk) and 1024 (sk)
/// bytes; the id appears in both with prefixes, and in two attributes of every `#COMMITTED`
/// item it commits into (see [`COMMITTED_ITEM_BYTES_MAX`]).
pub const BATCH_ID_BYTES_MAX: usize = 128;

/// DynamoDB's largest item, in bytes (attribute names and values together).
pub const DYNAMODB_ITEM_BYTES_MAX: usize = 400 * 1024;

/// Bytes of a `#COMMITTED` item that committing batches may use. The item grows by two
/// attributes per batch (`b:<batch_id>`, `i:<batch_id>`: about 2 x (2 + id + 2) bytes), so the
/// number of batches it holds depends on their ids: about 2,900 batches named by a SHA-256
/// (64 bytes), about 1,500 by the longest id allowed. That is an hourly export for a whole
/// month either way. What is left of DynamoDB's 400 KB is kept for the `closed` attribute a
/// final invoice adds (`closed` + an invoice number of at most [`ISSUER_BYTES_MAX`] + 21
/// bytes), so a full partition can still be finalized. A batch that would go past it is
/// refused before its lease, naming the account, period and limit
/// (`RaterError::PartitionFull`).
pub const COMMITTED_ITEM_BYTES_MAX: usize = DYNAMODB_ITEM_BYTES_MAX - 256;

/// Most batches one account period may commit, whatever their ids' length. With
/// [`COMMITTED_ITEM_BYTES_MAX`] it bounds `#COMMITTED`; it also bounds what a period's line can
/// add up to: each batch may bring at most [`batch_line_quantity_max`] of one product's meter,
/// so no stored period holds a line too large to price. 2,000 is an hourly export for a whole
/// month, twice over (or an export every 20 minutes).
pub const COMMITTED_BATCHES_MAX: usize = 2_000;

/// The most one batch may bring of one product's meter for one account period, in the
/// meter's unit: `pricing::price::line_quantity_max()` (10^16) shared by
/// [`COMMITTED_BATCHES_MAX`] batches, 5 x 10^12. That is 5 x 10^12 GB-hours (six exabytes held
/// for a month) or VM-hours, or requests, in one export of one account: no real export comes
/// near it, and an exporter that sends more is broken.
pub fn batch_line_quantity_max() -> rust_decimal::Decimal {
    pricing::price::line_quantity_max() / rust_decimal::Decimal::from(COMMITTED_BATCHES_MAX)
}

/// Longest issuer name (`RATECARD_ISSUER`), in bytes: it prefixes every invoice number and
/// keys the counter item.
pub const ISSUER_BYTES_MAX: usize = 64;

/// Longest account id in the accounts book, in bytes: it is part of every usage, invoice and
/// partition key, and listed in batch summaries.
pub const ACCOUNT_ID_BYTES_MAX: usize = 128;

/// Accounts committed per TransactWriteItems call: DynamoDB allows 100 items per transaction
/// and one is taken by the ledger (its condition check or its DONE update).
pub const COMMIT_ACCOUNTS_PER_TRANSACTION_MAX: usize = 99;

/// Keys per BatchGetItem call: DynamoDB's own limit.
pub const BATCH_GET_KEYS_MAX: usize = 100;

/// Items per BatchWriteItem call: DynamoDB's own limit.
pub const BATCH_WRITE_ITEMS_MAX: usize = 25;

/// Attempts of one BatchWriteItem group before giving up with a retryable error. With the
/// backoff below that is about 15 s of trying, enough to ride out a throttling burst while
/// leaving the Lambda most of its timeout.
pub const BATCH_WRITE_ATTEMPTS_MAX: u32 = 10;

/// Backoff between BatchWriteItem retries: full jitter over `min(cap, base * 2^attempt)`.
pub const BACKOFF_BASE_MS: u64 = 25;
/// Cap of one backoff sleep: long enough for a partition to recover, short enough to retry
/// several times within a Lambda invocation.
pub const BACKOFF_CAP_MS: u64 = 2_000;

/// Earlier periods whose late usage one final invoice bills as adjustments (policy
/// `next_period`): each adds two items to the finalize transaction (its marker and its stored
/// correction) and a section's worth of lines to the invoice; 12 (a year of months) keeps the
/// transaction at 30 items. More wait for the next invoice.
pub const ADJUSTED_PERIODS_MAX: usize = 12;

/// Times finalizing retries after losing a race (another invoice took the counter value, or a
/// batch committed while the invoice was being computed) before reporting a retryable error.
pub const FINALIZE_ATTEMPTS_MAX: u32 = 16;

/// Longest an attempt waits for a concurrent delivery of the same batch to finish before
/// answering "in progress" (retryable), in milliseconds. Long enough for a typical batch to be
/// rated; short enough that a caller is not held for a crashed attempt's whole lease.
pub const IN_PROGRESS_WAIT_MS_MAX: u64 = 30_000;

/// Largest final invoice stored with its statement, in bytes of JSON. DynamoDB stores each in
/// parts of [`FINAL_PART_BYTES_MAX`] (one item holds 400 KB) within the finalize transaction,
/// whose 4 MB limit this leaves a megabyte of room under for its other items. That is about
/// 13,000 lines on a direct customer's invoice (about 6,500 on a reseller's statement, whose
/// customer sections the statement repeats). Larger is refused rather than truncated. A credit
/// or debit note is held to the same size and stored in the same parts.
pub const FINAL_INVOICE_BYTES_MAX: usize = 3 * 1024 * 1024;

/// Largest part of a stored final invoice, statement or note body, in bytes: DynamoDB's 400 KB item
/// limit less room for keys and attribute names.
pub const FINAL_PART_BYTES_MAX: usize = 350 * 1024;

/// Attempts at committing a batch whose record ids must be checked again because another batch
/// committed into the same account's period meanwhile (each attempt backs off first).
pub const COMMIT_ATTEMPTS_MAX: u32 = 16;

/// Record ids a batch holds in memory before it writes them, sorted, to a temporary file (32
/// bytes each in memory, so 16 MiB). Large enough that a Lambda payload (6 MB, about 55,000
/// records) never spills; small enough that a 1 GB export stays within the CLI's 100 MB.
pub const ID_RUN_ENTRIES: usize = 512 * 1024;

/// Bytes of record-id chunks sent to the store per call while a batch is written: they are
/// encoded one account at a time and never all held at once.
pub const ID_PUT_BYTES: usize = 4 * 1024 * 1024;

/// Most partitions (account periods) a batch summary lists. The summary is kept in the
/// batch's ledger item (400 KB); 1,000 partitions with account ids of at most
/// [`ACCOUNT_ID_BYTES_MAX`] bytes take about 180 KB, the accounts list as much again at most.
/// A larger batch keeps only its counts, and cannot be a `final` batch (the month's close
/// finalizes any number of accounts).
pub const SUMMARY_PARTITIONS_MAX: usize = 1_000;

/// Most invoices a batch answer holds inline (one per account period). Past a hundred a
/// caller reads the invoices it needs one at a time (`invoice_path`), rather than getting
/// megabytes it will not read.
pub const ANSWER_INVOICES_MAX: usize = 100;

/// Most bytes of invoices a batch answer holds inline: a Function URL answer is at most 6 MB,
/// and the rest of the answer (and CSV rendering) needs room.
pub const ANSWER_INVOICE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Largest part of a stored configuration body, in bytes. A catalog the validator accepts
/// can be megabytes (10,000 products); DynamoDB holds 400 KB per item, so a larger body is
/// stored in parts of this size beside a head item naming their count and hash.
pub const CONFIG_PART_BYTES_MAX: usize = 300 * 1024;

/// Most accounts a close's answer lists under each outcome (the counts are whole): its log line
/// and answer stay readable for an accounts book of any size.
pub const CLOSE_LISTED_MAX: usize = 1_000;

/// Longest payment reference, in bytes: it is part of the payment's storage key; bank and
/// payment-provider references are tens of characters.
pub const PAYMENT_REFERENCE_BYTES_MAX: usize = 128;

/// How long, by default, the scheduled close waits after a period ends before finalizing it:
/// three days for nightly exports that arrive late or are re-sent (seed 004's providers close
/// the month within the first days of the next).
pub const CLOSE_GRACE_HOURS: i64 = 72;
