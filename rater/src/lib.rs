//! Ratecard rater: imports usage exports, rates them with `pricing`, stores results exactly once and returns invoices.
//!
//! # Architecture
//!
//! - [`import`]: the one seam between export bytes and [`pricing::UsageRecord`]s (over
//!   `pricing::import`, which the storefront shares).
//! - [`handler`]: the whole rating protocol (ledger, lease, aggregates, commit, invoices,
//!   finalizing), as plain async functions generic over a [`store::Store`].
//! - [`store`]: the storage trait and its two implementations with the same semantics,
//!   [`store::DynamoStore`] (AWS) and [`store::EmbeddedStore`] (a redb file, the CLI's default),
//!   plus [`store::fault`], fault-injection wrappers for tests and simulators.
//! - [`event`]: Lambda events (Function URL requests, scheduled invocations) to and from
//!   handler calls; pure, no I/O.
//! - [`render`]: invoices as a readable table (shaped like a CloudStack billing invoice) or CSV.
//! - binaries: `rater` (the Lambda function) and `ratecard` (the CLI) are glue only.
//!
//! Architecture invariant: the library knows nothing of Lambda's runtime or of the terminal;
//! pricing is never re-implemented here (every amount comes from `pricing::invoice`); a store
//! never decides anything, it only applies conditional writes the handler asks for.
//!
//! # Storage key design
//!
//! One table, string `pk` / `sk`, TTL attribute `expires_at` (infra/table.json):
//!
//! | item | pk | sk | holds |
//! | --- | --- | --- | --- |
//! | batch ledger | `BATCH#<batch_id>` | `LEDGER` | `IN_PROGRESS` with a lease (`owner`, `expires_at`) or `DONE` with the batch summary |
//! | usage chunk | `USAGE#<account>#<period>` | `<batch_id>#<n>` | part `n` of one batch's usage totals for the account, at most [`limits::CHUNK_BYTES_MAX`] |
//! | committed batches | `USAGE#<account>#<period>` | `#COMMITTED` | one attribute `b:<batch_id>` = chunk count per committed batch, a `version` bumped by each commit, and `closed` = the final invoice number once finalized |
//! | final invoice | `INVOICE#<account>#<period>` | `FINAL` | the numbered, immutable invoice |
//! | invoice counter | `COUNTER#<issuer>` | `INVOICE` | the last number issued |
//! | config | `CONFIG#catalog` / `CONFIG#accounts` | `v#<version>` and `CURRENT` | each published version's JSON, and which one is current |
//!
//! A batch is identified by its idempotency key, or else by the SHA-256 of its content.
//! Rating a batch: take the lease (a conditional put: no ledger, or an expired lease), write the
//! chunks with idempotent puts (the same bytes on every attempt), then commit: one
//! TransactWriteItems per up to 99 accounts adds `b:<batch_id>` to each account's
//! `#COMMITTED` item (refused once the period is closed) with a condition check that the lease is
//! still ours; the last one also marks the ledger `DONE`. Readers merge only the chunks of
//! committed batches (`n` below the committed chunk count), so a crash after k writes leaves
//! nothing visible, and a retry overwrites the same chunks and commits once. The lease
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

pub mod dedupe;
pub mod error;
pub mod event;
pub mod handler;
pub mod import;
pub mod limits;
pub mod model;
pub mod render;
pub mod store;

pub use error::{RaterError, StoreError};
pub use handler::{
    finalize, invoice_for, rate_batch, BatchRequest, Mode, RateResponse, RaterConfig,
};
pub use import::{read_records, Format};
pub use store::{DynamoStore, EmbeddedStore, Store};
