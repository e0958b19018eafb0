//! Ratecard rater: imports usage exports, rates them with `pricing`, stores results exactly once and returns invoices.
//!
//! # Architecture
//!
//! The protocol, one file per step, each depending only on the steps before it (no file
//! imports one that imports it back; `tests/tests/layering.rs` checks):
//!
//! 0. [`config`]: the catalog, accounts book, issuer, limits and clock ([`RaterConfig`]),
//!    loaded once per process; the versions that price anything are stored first.
//! 1. [`mod@aggregate`]: one pass over the export's bytes (through [`import`], the seam over
//!    `pricing::import` that the storefront shares) validates every record and folds it into
//!    usage totals per account period, encoded as store chunks. Bad input stops here.
//! 2. [`ids`]: the record-id rule against what the store holds (identical copies left out, the
//!    same id with other content refused); the fingerprints a batch adds.
//! 3. [`commit`]: under the batch's lease, chunks written, then made to count, one transaction
//!    per 99 account periods, resumably.
//! 4. [`invoices`]: the batch's answer, invoices on demand, finalizing.
//!
//! [`batch`] ties them together for one delivery (`rate_batch`, `rate_aggregated`: checks
//! that can refuse before the lease, the lease, steps 3 and 4). Beneath them: [`model`] (what
//! is stored: keys, ledger, summaries, chunks, partitions), [`store`] (the trait and its two
//! implementations with the same semantics, [`store::DynamoStore`] and
//! [`store::EmbeddedStore`], a redb file and the CLI's default), [`dedupe`] (fingerprints and
//! their external sort), [`retry`] (backoff), [`error`] and [`limits`]. [`exports`] rates an
//! export dropped in S3; [`shards`] cuts one larger than a shard and hands its shards to
//! parallel invocations through SQS (a check round, then a rate round). Above them: [`event`]
//! (Lambda events to handler calls and back, one log line per request) and [`render`]
//! (invoices as a table shaped like a CloudStack billing invoice, or CSV). The binaries,
//! `rater` (the Lambda function) and `ratecard` (the CLI), are glue only. Test support (a
//! store that crashes after k writes, an UnprocessedItems interceptor) is `store::fault`,
//! behind the `testing` feature.
//!
//! Architecture invariant: the library knows nothing of Lambda's runtime or of the terminal;
//! pricing is never re-implemented here (every amount comes from `pricing::invoice`); a store
//! never decides anything, it only applies conditional writes the protocol asks for.
//!
//! # Storage key design
//!
//! One table, string `pk` / `sk`, TTL attribute `expires_at` (infra/table.json). Usage is kept
//! per account period (a partition): the period of the account's kind (hour, day, week or
//! month; `billing_period` in the accounts book) that holds a record's start.
//!
//! | item | pk | sk | holds |
//! | --- | --- | --- | --- |
//! | batch ledger | `BATCH#<batch_id>` | `LEDGER` | `IN_PROGRESS` with a lease (`owner`, `lease_until`; TTL `expires_at` until the first commit), `PARTIAL`, or `DONE` with the batch summary |
//! | usage chunk | `USAGE#<account>#<period>` | `<batch_id>#<n>` | part `n` of one batch's usage totals for the account, at most [`limits::CHUNK_BYTES_MAX`] |
//! | record ids | `USAGE#<account>#<period>` | `#ids#<batch_id>#<n>` | part `n` of the record-id fingerprints the batch added |
//! | committed batches | `USAGE#<account>#<period>` | `#COMMITTED` | `b:<batch_id>` = chunk count and `i:<batch_id>` = record-id chunk count per committed batch, a `version` bumped by each commit, and `closed` = the final invoice number once finalized; at most [`limits::COMMITTED_ITEM_BYTES_MAX`] bytes |
//! | final invoice | `INVOICE#<account>#<period>` | `FINAL` | the numbered, immutable invoice |
//! | invoice counter | `COUNTER#<issuer>` | `INVOICE` | the last number issued |
//! | config | `CONFIG#catalog` / `CONFIG#accounts` | `v#<version>`, `v#<version>#<sha>#p<n>` and `CURRENT` | each published version's JSON (in parts of [`limits::CONFIG_PART_BYTES_MAX`] when larger, named by its SHA-256), and which one is current |
//!
//! A batch is identified by its idempotency key, or else by the SHA-256 of its content.
//! Rating a batch: take the lease (a conditional put: no ledger, or an expired lease), write the
//! chunks with idempotent puts (the same bytes on every attempt), then commit: one
//! TransactWriteItems per up to 99 account periods adds `b:<batch_id>` to each one's
//! `#COMMITTED` item (refused once the period is closed) with a condition that the lease is
//! still ours; the first one also binds the ledger to the batch's content (removes its TTL
//! attribute), the last one marks it `DONE`. Readers merge only the chunks of
//! committed batches (`n` below the committed chunk count), so a crash after k writes leaves
//! nothing visible in the account periods not committed yet, and a retry commits exactly those
//! ([`commit`]: the partitions the batch already committed into are left as they are, and its
//! own record ids never count against it). A batch over more than 99 account periods is
//! visible in the committed ones between its transactions; each account period is always
//! whole. The lease
//! ([`limits::LEASE_S`]) outlasts the Lambda timeout, so an attempt that lost its lease is dead
//! before anyone takes it over.
//!
//! Interim invoices are computed on demand from committed usage and never stored. Finalizing
//! one account's period is one TransactWriteItems: the issuer counter moves from n to n + 1
//! (condition: still n), the `FINAL` invoice is put (condition: none yet) and `#COMMITTED` gets
//! `closed` (condition: its `version` is the one the invoice was computed from, and not closed).
//! Numbers are therefore gapless per issuer, a final invoice contains every committed batch, and
//! finalizing twice is refused ([`error::RaterError::AlreadyFinalized`]).
//!
//! # Late usage
//!
//! Usage for an account whose period is already finalized is **rejected**, whole batch, with
//! [`error::RaterError::PeriodClosed`] (HTTP 409) naming the account, the period and the final
//! invoice number; nothing is written. The commit transaction enforces it too, so a batch racing
//! a finalize either lands before the invoice (and is on it) or is refused. A final invoice is
//! immutable and the pricing crate cannot yet price an "Adjustments" section on a later invoice,
//! so correcting a closed period is an explicit operator action (a credit or debit note), never
//! a silent change. Replays of a batch that was committed before the period closed still succeed
//! and return the final invoice.
//!
//! # Configuration
//!
//! A catalog or accounts version, once stored under `CONFIG#...`, is immutable: storing a
//! different body under an existing version is refused, so every invoice's
//! `catalog_version` / `accounts_version` names exactly the data that priced it. The handler
//! stores the versions it uses before rating.

pub mod aggregate;
pub mod auth;
pub mod batch;
pub mod commit;
pub mod config;
pub mod dedupe;
pub mod documents;
pub mod einvoice;
pub mod error;
pub mod event;
pub mod exports;
pub mod ids;
pub mod import;
pub mod invoices;
pub mod limits;
pub mod logo;
pub mod margin;
pub mod model;
pub mod month;
pub mod notes;
pub mod objects;
pub mod pdf;
pub mod render;
pub mod reports;
pub mod resellers;
pub mod retry;
pub mod shards;
pub mod statements;
pub mod store;
pub mod xlsx;

pub use aggregate::{aggregate, aggregate_pass, sha256_hex, Aggregated, Pass};
pub use batch::{rate_aggregated, rate_batch, BatchRequest, RateResponse};
pub use config::RaterConfig;
pub use error::{RaterError, StoreError};
pub use import::{read_records, Format};
pub use invoices::{finalize, invoice_for};
pub use model::Mode;
pub use store::{DynamoStore, EmbeddedStore, Store};
