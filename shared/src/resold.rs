//! A reseller's customer at wholesale prices, as data: what the provider's statement to the reseller carries (`Statement::resold`) and bills as one section; priced by `wholesale::resold`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bill::{Line, Section};

/// How a reseller's statement names each customer's section: `Resold to <name> (<account>)`.
pub const RESOLD_SECTION_PREFIX: &str = "Resold to ";

/// One customer of a reseller at wholesale prices: what the provider's statement to the
/// reseller bills for it, as priced when the statement was issued (kept in the statement, so a
/// report or a note reads the same figures later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resold {
    /// The customer's account id and name.
    pub account: String,
    pub name: String,
    /// The wholesale catalog's rate from its currency to the statement's (1 when the same):
    /// the rate frozen when the statement was priced.
    pub fx_rate: Decimal,
    /// Wholesale lines in the statement's currency, each at its net (`adjustments` zero).
    pub lines: Vec<Line>,
}

impl Resold {
    /// The name of the customer's section on the reseller's statement.
    pub fn section_name(&self) -> String {
        format!("{RESOLD_SECTION_PREFIX}{} ({})", self.name, self.account)
    }

    /// The statement section of this customer.
    pub fn section(&self) -> Section {
        Section {
            name: self.section_name(),
            lines: self.lines.clone(),
            total: Decimal::ZERO,
        }
    }
}
