//! Reseller billing: a reseller's customer priced at wholesale, the provider's statement to the reseller (one section per customer), and the margin report that traces each retail line to its wholesale cost.
//!
//! The model (seed 000: resellers white-label the store and bill their own customers):
//! - a reseller's customer is invoiced with the reseller's published catalog
//!   ([`crate::publish`]), the catalog its storefront estimates with;
//! - the provider bills the reseller through the reseller's own account (the account that
//!   `resells` it), in the reseller's currency: each period, a statement holding every customer's
//!   usage and subscriptions at wholesale prices, one section per customer, each line at its net
//!   (after the wholesale promotions and SLA credits that customer earns), taxed at the
//!   reseller account's jurisdiction;
//! - the margin of a line is the customer's net price minus its wholesale cost, both in the
//!   reseller's currency. Because the statement's customer sections are those same wholesale
//!   lines, the sum of the customers' nets equals the statement's resold total plus the total
//!   margin, to the cent, by construction (no second conversion, no second rounding).

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::bill::Line;
use crate::catalog::Catalog;
use crate::error::PricingError;
use crate::exact::{self, Overflow};
use crate::invoice::{invoice_with, Account, Invoice, Statement};
use crate::period::BillingPeriod;
pub use crate::resold::Resold;
use crate::usage::Usage;

/// How the provider sees a reseller's `customer` when it bills the reseller (`billed`, the
/// reseller's own account): the customer's usage, subscriptions, region, SLA tier, availability
/// and term, in the reseller account's currency and jurisdiction; none of the customer's own
/// discounts, credit, balance or payments (those are the reseller's business with its customer).
pub fn wholesale_view(customer: &Account, billed: &Account) -> Account {
    Account {
        id: customer.id.clone(),
        name: customer.name.clone(),
        address: Vec::new(),
        domain: None,
        country: None,
        vat_id: None,
        currency: billed.currency.clone(),
        region: customer.region.clone(),
        tax_jurisdiction: billed.tax_jurisdiction.clone(),
        sla_tier: customer.sla_tier.clone(),
        availability_pct: customer.availability_pct,
        term: customer.term.clone(),
        subscriptions: customer.subscriptions.clone(),
        discounts: Vec::new(),
        prices: Vec::new(),
        invoice_blocks: None,
        coupons: Vec::new(),
        cost_codes: Vec::new(),
        prepaid_credit: Decimal::ZERO,
        balance_brought_forward: Decimal::ZERO,
        payments: Vec::new(),
        billing_period: customer.billing_period,
        payment_terms_days: billed.payment_terms_days,
        late_usage: customer.late_usage,
        reseller: None,
        resells: None,
    }
}

/// `customer`'s `usage` of `period` at the wholesale `catalog`'s prices, as the provider bills
/// it to the reseller whose account is `billed`: each line at its net. For a period shorter
/// than a month, `month_before` is the customer's usage in the month's earlier periods
/// ([`Statement::month_before`]): monthly allowances and minimums are granted once a month at
/// wholesale too, as on the customer's own invoices, not once per period.
///
/// # Errors
/// Those of [`invoice_with`] for the wholesale view ([`wholesale_view`]).
pub fn resold(
    catalog: &Catalog,
    customer: &Account,
    billed: &Account,
    period: BillingPeriod,
    usage: &Usage,
    month_before: Option<&Usage>,
) -> Result<Resold, PricingError> {
    let view = wholesale_view(customer, billed);
    let statement = Statement {
        month_before: month_before.cloned(),
        ..Statement::from_book(&view, period)
    };
    let inv = invoice_with(catalog, &view, period, usage, &statement)?;
    let fx_rate = fx_rate(catalog, &inv.bill.currency);
    let lines = inv
        .bill
        .sections
        .into_iter()
        .flat_map(|s| s.lines)
        .map(|l| {
            let net = exact::add(l.amount, l.adjustments, "wholesale line net")
                .map_err(|e| PricingError::overflow(e, format!("account {}", customer.id)))?;
            Ok(Line {
                amount: net,
                adjustments: Decimal::ZERO,
                tax: Decimal::ZERO,
                ..l
            })
        })
        .collect::<Result<Vec<Line>, PricingError>>()?;
    Ok(Resold {
        account: customer.id.clone(),
        name: customer.name.clone(),
        fx_rate,
        lines,
    })
}

/// The wholesale `catalog`'s fixed rate from its currency to `currency` (1 for its own, and for
/// one it has no rate for: pricing in it has been refused before a rate is shown).
pub fn fx_rate(catalog: &Catalog, currency: &str) -> Decimal {
    if currency == catalog.currency.code {
        return Decimal::ONE;
    }
    catalog
        .fx_rates
        .get(currency)
        .copied()
        .unwrap_or(Decimal::ONE)
        .normalize()
}

/// A margin: the reseller's price, its wholesale cost, the difference and its share of the
/// price in percent (rounded half-even to 0.01 on each row; none when the price is zero).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Margin {
    pub retail: Decimal,
    pub wholesale: Decimal,
    pub margin: Decimal,
    pub margin_pct: Option<Decimal>,
}

impl Margin {
    fn of(retail: Decimal, wholesale: Decimal) -> Result<Margin, Overflow> {
        let margin = exact::sub(retail, wholesale, "margin")?;
        let margin_pct = if retail.is_zero() {
            None
        } else {
            Some(
                exact::mul_div(margin, Decimal::ONE_HUNDRED, retail, "margin percent")?
                    .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven),
            )
        };
        Ok(Margin {
            retail,
            wholesale,
            margin,
            margin_pct,
        })
    }

    fn sum<'m>(rows: impl IntoIterator<Item = &'m Margin>) -> Result<Margin, Overflow> {
        let (mut r, mut w) = (Decimal::ZERO, Decimal::ZERO);
        for m in rows {
            r = exact::add(r, m.retail, "retail total")?;
            w = exact::add(w, m.wholesale, "wholesale total")?;
        }
        Margin::of(r, w)
    }
}

/// One retail line next to its wholesale cost. A line the other side does not have (a retail
/// line billing an earlier period's late usage) shows zero there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginLine {
    pub description: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub quantity: Decimal,
    pub unit: String,
    #[serde(flatten)]
    pub margin: Margin,
}

/// One customer's lines and totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMargin {
    pub account: String,
    pub name: String,
    /// The customer's invoice the retail figures come from (none while it is interim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    pub lines: Vec<MarginLine>,
    #[serde(flatten)]
    pub total: Margin,
}

/// One product over all customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductMargin {
    pub product: String,
    #[serde(flatten)]
    pub total: Margin,
}

/// A reseller's margin for a period: per customer, per line and per product, in the reseller's
/// currency. `total.retail` is the sum of the customers' invoice nets, `total.wholesale` the
/// resold total of the provider's statement, `total.margin` their difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginReport {
    pub reseller: String,
    pub period_id: String,
    pub currency: String,
    /// The wholesale catalog's currency and the rate it was converted at (frozen in the
    /// statement when it was priced).
    pub wholesale_currency: String,
    pub fx_rate: Decimal,
    /// The provider's statement to the reseller (none while it is interim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    pub customers: Vec<CustomerMargin>,
    pub products: Vec<ProductMargin>,
    #[serde(flatten)]
    pub total: Margin,
}

/// The key that pairs a retail line with its wholesale twin: both are priced from the same
/// usage and subscriptions, so they share product, meter, region and category; descriptions
/// differ (a reseller renames products), so they are not part of it. The n-th line with a key
/// on one side pairs with the n-th on the other.
type LineKey = (String, Option<String>, String, crate::catalog::Category);

fn key(l: &Line) -> LineKey {
    (
        l.product.clone(),
        l.meter.clone(),
        l.region.clone(),
        l.category,
    )
}

/// Each retail line of `invoice` (in `Bill::lines` order) with its wholesale twin in `resold`,
/// if any, and the wholesale lines left without one (in key order).
pub fn paired<'r>(invoice: &Invoice, resold: &'r Resold) -> (Vec<Option<&'r Line>>, Vec<&'r Line>) {
    let mut wholesale: BTreeMap<LineKey, std::collections::VecDeque<&Line>> = BTreeMap::new();
    for l in &resold.lines {
        wholesale.entry(key(l)).or_default().push_back(l);
    }
    let costs = invoice
        .bill
        .lines()
        .map(|l| wholesale.get_mut(&key(l)).and_then(|q| q.pop_front()))
        .collect();
    (costs, wholesale.into_values().flatten().collect())
}

/// The margin of one customer: its retail `invoice` (priced with the reseller's catalog) line
/// by line against its wholesale lines (`resold`).
///
/// # Errors
/// [`PricingError::Overflow`] for figures too large for a decimal; [`PricingError::Statement`]
/// is never returned here.
pub fn customer_margin(invoice: &Invoice, resold: &Resold) -> Result<CustomerMargin, PricingError> {
    let at = |e: Overflow| PricingError::overflow(e, format!("account {}", invoice.account));
    let (costs, unpaired) = paired(invoice, resold);
    let mut lines = Vec::new();
    for (l, cost) in invoice.bill.lines().zip(costs) {
        let retail = exact::add(l.amount, l.adjustments, "retail line net").map_err(at)?;
        lines.push(MarginLine {
            description: l.description.clone(),
            product: l.product.clone(),
            meter: l.meter.clone(),
            region: l.region.clone(),
            quantity: l.quantity,
            unit: l.unit.clone(),
            margin: Margin::of(retail, cost.map_or(Decimal::ZERO, |c| c.amount)).map_err(at)?,
        });
    }
    // Wholesale lines without a retail twin still cost the reseller.
    for l in unpaired {
        lines.push(MarginLine {
            description: l.description.clone(),
            product: l.product.clone(),
            meter: l.meter.clone(),
            region: l.region.clone(),
            quantity: l.quantity,
            unit: l.unit.clone(),
            margin: Margin::of(Decimal::ZERO, l.amount).map_err(at)?,
        });
    }
    let total = Margin::sum(lines.iter().map(|l| &l.margin)).map_err(at)?;
    Ok(CustomerMargin {
        account: invoice.account.clone(),
        name: invoice.account_name.clone(),
        invoice: invoice.number.clone(),
        lines,
        total,
    })
}

/// The margin report of `reseller` for a period from its customers' margins.
///
/// # Errors
/// [`PricingError::Overflow`] for totals too large for a decimal.
pub fn report(
    reseller: &str,
    period_id: &str,
    currency: &str,
    wholesale_currency: &str,
    fx_rate: Decimal,
    statement: Option<String>,
    customers: Vec<CustomerMargin>,
) -> Result<MarginReport, PricingError> {
    let at = |e: Overflow| PricingError::overflow(e, format!("reseller {reseller}"));
    let mut by_product: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    for l in customers.iter().flat_map(|c| &c.lines) {
        let e = by_product.entry(&l.product).or_default();
        e.0 = exact::add(e.0, l.margin.retail, "product retail").map_err(at)?;
        e.1 = exact::add(e.1, l.margin.wholesale, "product wholesale").map_err(at)?;
    }
    let products = by_product
        .into_iter()
        .map(|(p, (r, w))| {
            Ok(ProductMargin {
                product: p.to_string(),
                total: Margin::of(r, w).map_err(at)?,
            })
        })
        .collect::<Result<Vec<_>, PricingError>>()?;
    let total = Margin::sum(customers.iter().map(|c| &c.total)).map_err(at)?;
    Ok(MarginReport {
        reseller: reseller.to_string(),
        period_id: period_id.to_string(),
        currency: currency.to_string(),
        wholesale_currency: wholesale_currency.to_string(),
        fx_rate,
        statement,
        customers,
        products,
        total,
    })
}
