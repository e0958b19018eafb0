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
//!
//! Both estimates and invoices are priced by `bill::build`, the single pricing pipeline.

pub mod allocate;
pub mod bill;
pub mod catalog;
pub mod error;
pub mod estimate;
pub mod import;
pub mod invoice;
pub mod money;
pub mod period;
pub mod price;
pub mod reseller;
mod shape;
pub mod unit;
pub mod usage;
pub mod validate;

pub use bill::{Bill, Line, Section, INVOICE_LINES_MAX};
pub use catalog::{Catalog, Category, MeterRole, CATALOG_SCHEMA_VERSION};
pub use error::{
    BatchErrors, CatalogErrors, PricingError, RecordError, RecordRule, RECORD_ERRORS_SHOWN_MAX,
};
pub use estimate::{estimate, Component, Estimate, Quote, QuoteTier};
pub use invoice::{invoice, Account, AccountBook, Invoice, InvoiceKind};
pub use money::{Currency, Money, RoundingMode};
pub use period::{BillingPeriod, PeriodKind};
pub use price::{Price, PriceModel, Tier};
pub use reseller::publish;
pub use unit::Unit;
pub use usage::{rate, Aggregator, Usage, UsageKey, UsageRecord, UsageTotal};

/// Parses JSON input (catalog, accounts, quote) strictly: decimals with a fraction must be
/// strings, and a shape error names the path of the bad field.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, CatalogErrors> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        CatalogErrors(vec![error::CatalogError {
            path: "$".into(),
            rule: error::CatalogRule::Syntax,
            message: e.to_string(),
        }])
    })?;
    let mut errors = Vec::new();
    validate::reject_float_numbers(&value, &mut "$".to_string(), &mut errors);
    if !errors.is_empty() {
        return Err(CatalogErrors(errors));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(CatalogErrors::parse)
}
