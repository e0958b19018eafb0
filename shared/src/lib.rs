//! Ratecard's pricing engine: catalogs, estimates, rating and invoices, with exact money.
//!
//! Architecture invariant: this crate does no I/O, reads no clock, draws no random numbers,
//! uses no floats and no async. Time comes in as arguments. It builds for
//! `wasm32-unknown-unknown` and gives bit-identical results there, so the storefront's estimate
//! and the rater's invoice are computed by the same code.
//!
//! The data path:
//! - catalog + quote -> [`estimate::estimate`] -> [`estimate::Estimate`]
//! - catalog + usage records -> [`usage::Aggregator`] -> [`usage::Usage`] (persistable totals)
//! - catalog + account + period + usage -> [`invoice::invoice`] -> [`invoice::Invoice`]
//!   (or [`invoice::invoice_with`] and the caller's [`invoice::Statement`])
//! - final invoice + its earlier notes + the period priced now -> [`note::note`] ->
//!   [`note::Note`] (a credit or debit note)
//!
//! Both estimates and invoices are priced by `bill::build`, the single pricing pipeline, with
//! the customer's settings resolved once by [`settings::Settings::resolve`].

// Modules from the bottom layer up; a module uses only modules of lower layers (see
// ARCHITECTURE.md, "Layers of the pricing crate").
pub mod allocate;
pub mod error;
pub mod exact;
pub mod json;
pub mod money;
pub mod path;
pub mod period;
mod shape;
pub mod unit;

pub mod price;
pub mod quote;
pub mod role;

pub mod mapping;

pub mod catalog;
pub mod validate;

pub mod reseller;
pub mod settings;
pub mod usage;

pub mod bill;
pub mod blocks;
pub mod import;

pub mod correction;
pub mod resold;

pub mod estimate;
pub mod invoice;

pub mod note;
pub mod wholesale;

pub mod account_statement;
pub mod report;

pub use bill::{Bill, Line, Section, SummaryRow, INVOICE_LINES_MAX};
pub use catalog::{Catalog, Category, LateUsagePolicy, MeterRole, CATALOG_SCHEMA_VERSION};
pub use error::{
    BatchErrors, CatalogErrors, PricingError, RecordError, RecordRule, TotalsError,
    RECORD_ERRORS_SHOWN_MAX,
};
pub use estimate::{estimate, Estimate};
pub use invoice::{
    invoice, invoice_with, late_usage_policy, Account, AccountBook, Invoice, InvoiceKind, Statement,
};
pub use json::parse_json;
pub use money::{Currency, RoundingMode};
pub use note::{note, Note, NoteKind, NoteReason};
pub use path::{ComponentField, QuotePath, Setting, SettingsOwner};
pub use period::{BillingPeriod, PeriodKind};
pub use price::{Price, PriceModel, Tier};
pub use quote::{Component, Quote, QuoteTier};
pub use reseller::publish;
pub use settings::{Settings, SettingsInput};
pub use unit::Unit;
pub use usage::{rate, Aggregator, Usage, UsageKey, UsageRecord, UsageTotal};
