//! The one pricing pipeline behind both invoices and estimates: usage totals and subscription
//! charges in, priced sections, discounts, SLA uplift and credits, taxes and totals out.
//!
//! [`build`] runs the phases in order, each a function below: usage lines, subscription lines,
//! SLA uplift, sections, discounts, SLA credits, adjustments of earlier periods, totals, taxes. Invoices (`invoice`) and
//! estimates (`estimate`) only shape their input into [`Groups`] and [`SubscriptionCharge`]s
//! and resolve the customer's [`Settings`] into a [`Context`].
//!
//! Money rules (see ARCHITECTURE.md): a line amount is its exact price rounded once to the
//! currency's minor units with the catalog's mode; a section total is the sum of its rounded
//! lines; discounts and credits are rounded once each, then spread over the lines they came
//! from; tax is rounded per line or once per invoice as the jurisdiction says; every total is
//! the sum of the amounts shown under it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocate::allocate;
use crate::catalog::{
    Catalog, Category, Discount, DiscountScope, DiscountValue, ProductKind, TaxLevel,
};
use crate::error::{CatalogItem, PricingError, TotalsError};
use crate::exact::{self, Overflow};
use crate::money::{Currency, RoundingMode};
use crate::period::midnight;
use crate::settings::Settings;
use crate::unit::ConvertError;
use crate::usage::Usage;

/// Most lines one invoice may have. A readable invoice has tens of lines; past ten thousand the
/// usage should be summarised differently, and the bound keeps an invoice under DynamoDB's
/// 400 KB item limit once compressed and stored.
pub const INVOICE_LINES_MAX: usize = 10_000;

/// Section that subscription fees are listed in.
pub const SUBSCRIPTIONS_SECTION: &str = "Subscriptions";
/// Section of the SLA uplift line.
pub const SLA_SECTION: &str = "Service level";
/// Section of the lines an invoice bills for earlier, closed periods (late usage under the
/// `next_period` policy): always the last section, outside every discount and SLA base.
pub const ADJUSTMENTS_SECTION: &str = "Adjustments";

/// One priced line of an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub category: Category,
    /// Quantity in the meter's unit (exact; displays round it).
    pub quantity: Decimal,
    pub unit: String,
    /// Price per `per` units in the invoice currency (exact).
    pub unit_price: Decimal,
    /// True when the unit price is the line's average (tiered, package, included or minimum);
    /// the average is 0 when there is no quantity, or when it is too large for a decimal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unit_price_is_average: bool,
    /// The quantity the unit price is for (1, or 1,000,000 requests).
    pub per: Decimal,
    /// Subscription lines: the one-time fee charged and the monthly fee, before proration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_fee: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_fee: Option<Decimal>,
    /// Subscription lines: days of the period the plan was held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Decimal>,
    /// The line amount, rounded once.
    pub amount: Decimal,
    /// The share of discounts and SLA credits spread onto this line (negative or zero).
    pub adjustments: Decimal,
    /// Tax on this line when the jurisdiction taxes per line; zero otherwise.
    pub tax: Decimal,
}

impl Line {
    pub fn net(&self) -> Decimal {
        self.amount + self.adjustments
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub name: String,
    pub lines: Vec<Line>,
    /// Sum of `lines[].amount`.
    pub total: Decimal,
}

/// A discount or SLA credit: a negative amount with what it was computed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adjustment {
    pub id: String,
    pub description: String,
    /// The charges it was computed on.
    pub base: Decimal,
    /// Negative.
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxLine {
    pub name: String,
    pub rate_pct: Decimal,
    pub level: TaxLevel,
    pub base: Decimal,
    pub amount: Decimal,
}

/// The priced body shared by invoices and estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    /// Who issues it when not the provider: the reseller's brand name on a reseller customer's
    /// invoice (from its published catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub currency: String,
    pub rounding: RoundingMode,
    pub catalog_id: String,
    pub catalog_version: String,
    pub sections: Vec<Section>,
    /// Sum of section totals.
    pub subtotal: Decimal,
    pub discounts: Vec<Adjustment>,
    pub sla_credits: Vec<Adjustment>,
    /// `subtotal` plus discounts and credits (which are negative).
    pub net: Decimal,
    pub taxes: Vec<TaxLine>,
    /// `net` plus taxes.
    pub total: Decimal,
}

impl Bill {
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.sections.iter().flat_map(|s| s.lines.iter())
    }

    /// Checks that every shown total is the sum of the amounts shown under it. Tests and the
    /// property suite call this on every bill they build (and `build` in debug builds).
    ///
    /// # Errors
    /// The first total that is not the sum of its parts.
    pub fn check_totals(&self) -> Result<(), TotalsError> {
        let mut subtotal = Decimal::ZERO;
        for s in &self.sections {
            check_section(&s.name, s.total, s.lines.iter().map(|l| l.amount))?;
            subtotal = checked_sum([subtotal, s.total])?;
        }
        if subtotal != self.subtotal {
            return Err(TotalsError::Subtotal {
                shown: self.subtotal,
                sum: subtotal,
            });
        }
        let adjustments = checked_sum(
            self.discounts
                .iter()
                .chain(&self.sla_credits)
                .map(|a| a.amount),
        )?;
        if checked_sum([self.subtotal, adjustments])? != self.net {
            return Err(TotalsError::Net {
                net: self.net,
                subtotal: self.subtotal,
                adjustments,
            });
        }
        let spread = checked_sum(self.lines().map(|l| l.adjustments))?;
        if spread != adjustments {
            return Err(TotalsError::Spread {
                spread,
                shown: adjustments,
            });
        }
        let tax = check_taxed_total(self.net, &self.taxes, self.total)?;
        if self.taxes.iter().any(|t| t.level == TaxLevel::Line) {
            let line_tax = checked_sum(self.lines().map(|l| l.tax))?;
            if line_tax != tax {
                return Err(TotalsError::LineTax { line_tax, tax });
            }
        }
        Ok(())
    }

    /// The rows under the sections, in reading order: subtotal, discounts, SLA credits, net
    /// (only when there are discounts or credits: otherwise it equals the subtotal), taxes,
    /// total. Every renderer (the rater's table and CSV, the storefront's estimate and
    /// invoice preview) shows these, choosing only its words and which rows it leaves out.
    pub fn summary_rows(&self) -> Vec<SummaryRow<'_>> {
        let mut rows = vec![SummaryRow::Subtotal(self.subtotal)];
        rows.extend(self.discounts.iter().map(SummaryRow::Discount));
        rows.extend(self.sla_credits.iter().map(SummaryRow::SlaCredit));
        if !self.discounts.is_empty() || !self.sla_credits.is_empty() {
            rows.push(SummaryRow::Net(self.net));
        }
        rows.extend(self.taxes.iter().map(SummaryRow::Tax));
        rows.push(SummaryRow::Total(self.total));
        rows
    }
}

/// A sum for a totals check: an overflow means the amounts were not made by this engine (a
/// check reports it, never panics).
/// Checks that a section's shown total is the sum of the amounts of its lines.
pub(crate) fn check_section(
    name: &str,
    shown: Decimal,
    amounts: impl IntoIterator<Item = Decimal>,
) -> Result<(), TotalsError> {
    let sum = checked_sum(amounts)?;
    if sum != shown {
        return Err(TotalsError::Section {
            section: name.to_string(),
            shown,
            sum,
        });
    }
    Ok(())
}

/// Checks that the shown `total` is `net` plus the tax lines, and gives the tax lines' sum.
pub(crate) fn check_taxed_total(
    net: Decimal,
    taxes: &[TaxLine],
    total: Decimal,
) -> Result<Decimal, TotalsError> {
    let tax = checked_sum(taxes.iter().map(|t| t.amount))?;
    if checked_sum([net, tax])? != total {
        return Err(TotalsError::Total { total, net, tax });
    }
    Ok(tax)
}

pub(crate) fn checked_sum(
    values: impl IntoIterator<Item = Decimal>,
) -> Result<Decimal, TotalsError> {
    exact::sum(values, "shown amounts").map_err(|e| TotalsError::Overflow { what: e.what })
}

/// One row of a bill's summary (see [`Bill::summary_rows`]; an invoice adds its account rows,
/// see `Invoice::summary_rows`). Amounts are signed as they add up: discounts, credits, credit
/// applied and payments are negative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SummaryRow<'b> {
    /// The sum of the section totals.
    Subtotal(Decimal),
    Discount(&'b Adjustment),
    SlaCredit(&'b Adjustment),
    /// The subtotal after discounts and SLA credits.
    Net(Decimal),
    Tax(&'b TaxLine),
    /// Net plus taxes: what the bill comes to.
    Total(Decimal),
    /// Prepaid credit used against the total (negative).
    CreditsApplied(Decimal),
    AmountDue(Decimal),
    /// The balance statement: owed from before the period...
    BroughtForward(Decimal),
    /// ...less each payment received in the period (negative)...
    Payment {
        date: DateTime<Utc>,
        reference: &'b str,
        amount: Decimal,
    },
    /// ...all of them together (negative)...
    Payments(Decimal),
    /// ...plus this period's amount due...
    DueThisPeriod(Decimal),
    /// ...is what is owed after the period.
    CarriedForward(Decimal),
    /// Prepaid credit left after this invoice, for the next one (an issued invoice's, see
    /// `invoice::Statement`). Not part of the balance: it adds up with nothing above it.
    PrepaidRemaining(Decimal),
}

impl SummaryRow<'_> {
    /// The row's amount, signed as it adds up.
    pub fn amount(&self) -> Decimal {
        match *self {
            SummaryRow::Discount(a) | SummaryRow::SlaCredit(a) => a.amount,
            SummaryRow::Tax(t) => t.amount,
            SummaryRow::Payment { amount, .. } => amount,
            SummaryRow::Subtotal(a)
            | SummaryRow::Net(a)
            | SummaryRow::Total(a)
            | SummaryRow::CreditsApplied(a)
            | SummaryRow::AmountDue(a)
            | SummaryRow::BroughtForward(a)
            | SummaryRow::Payments(a)
            | SummaryRow::DueThisPeriod(a)
            | SummaryRow::CarriedForward(a)
            | SummaryRow::PrepaidRemaining(a) => a,
        }
    }
}

/// Part of a line's quantity that belongs to one resource on one day (borrowed from the usage
/// or the quote, so that pricing allocates nothing per resource).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Share<'a> {
    pub project: &'a str,
    pub resource: &'a str,
    pub day: NaiveDate,
    pub quantity: Decimal,
    /// The usage's tags (none for a subscription).
    pub tags: &'a [String],
}

/// Usage grouped into lines: (product, meter, region) -> the shares of the line's quantity, in
/// the meter's unit.
pub(crate) type Groups<'a> = BTreeMap<(&'a str, &'a str, &'a str), Vec<Share<'a>>>;

/// A priced bill with, for each of its lines (in `Bill::lines` order), the shares behind it.
pub(crate) struct Priced<'a> {
    pub bill: Bill,
    pub shares: Vec<Vec<Share<'a>>>,
}

/// A subscription fee to bill: a plan held for part of a month.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SubscriptionCharge {
    pub subscription: String,
    pub project: String,
    pub product: String,
    pub quantity: Decimal,
    /// Days the plan was held in the period and the days of the month it prorates against.
    pub days: Decimal,
    pub month_days: Decimal,
    pub one_time: bool,
    pub day: NaiveDate,
}

/// Everything about the customer that changes prices: the resolved settings, and what only an
/// invoice has (measured availability, the account's discounts) or only an estimate (an
/// instant instead of a period).
pub(crate) struct Context<'c> {
    pub settings: Settings<'c>,
    pub availability_pct: Option<Decimal>,
    /// Discounts in the order they apply, each with the window of the bill it is valid in.
    pub discounts: Vec<Discount>,
    pub account: String,
    /// The bill's span: discounts valid for part of it apply to the usage days inside their
    /// window, and fixed amounts are prorated by the part of the span they cover.
    pub span: (DateTime<Utc>, DateTime<Utc>),
    /// An interim invoice "to date" charges the span only up to here (the end of the UTC day
    /// holding its `as_of`): fixed discounts count their window up to it, still prorated
    /// against the whole span, as subscription fees are. `None` bills the whole span.
    pub cutoff: Option<DateTime<Utc>>,
    /// Quantities (in the meter's unit) of each line already billed by the earlier periods of
    /// the same month, for a period shorter than a month: a line bills
    /// `amount(before + quantity) - amount(before)`, so that included quantities and minimums
    /// are granted once per month. Empty for months and estimates.
    pub month_before: BTreeMap<LineKey, Decimal>,
    /// The account's contract prices, over the region's and the catalog's (none for
    /// estimates).
    pub prices: Vec<crate::catalog::PriceOverride>,
    /// The allowances of the plans held, by meter ([`plan_allowances`]).
    pub allowances: BTreeMap<String, PlanAllowance>,
}

/// A usage line's identity: product, meter and region.
pub(crate) type LineKey = (String, String, String);

impl Context<'_> {
    fn catalog(&self) -> &Catalog {
        self.settings.catalog
    }

    fn currency(&self) -> &Currency {
        &self.settings.currency
    }
}

/// Groups an account's billable usage totals into lines, converting quantities to the meters'
/// units; usage that names no region is billed in `default_region`.
pub(crate) fn usage_groups<'a>(
    catalog: &Catalog,
    usage: &'a Usage,
    account: &str,
    default_region: &'a str,
) -> Result<Groups<'a>, PricingError> {
    let mut groups: Groups<'a> = BTreeMap::new();
    for (k, t) in &usage.totals {
        if !k.billable || k.account != account {
            continue;
        }
        let meter = catalog
            .meter(&k.meter)
            .ok_or_else(|| not_in_catalog(CatalogItem::Meter, &k.meter))?;
        let quantity = match k
            .unit
            .convert(t.quantity, meter.unit, catalog.hours_per_month)
        {
            Ok(q) => q,
            Err(ConvertError::Dimension) => {
                return Err(PricingError::UsageUnitMismatch {
                    product: k.product.clone(),
                    meter: k.meter.clone(),
                    unit: k.unit,
                    expected: meter.unit,
                })
            }
            Err(ConvertError::Overflow) => {
                return Err(PricingError::Overflow {
                    what: "quantity in the meter's unit",
                    at: format!("usage {}/{}", k.product, k.meter),
                })
            }
        };
        let region = if k.region.is_empty() {
            default_region
        } else {
            k.region.as_str()
        };
        // A datacenter the provider does not bill (Abiquo's datacenter filtering): its usage
        // is stored, and billed by no invoice.
        if catalog.region(region).is_some_and(|r| !r.billed) {
            continue;
        }
        groups
            .entry((k.product.as_str(), k.meter.as_str(), region))
            .or_default()
            .push(Share {
                project: &k.project,
                resource: &k.resource,
                day: k.day,
                quantity,
                tags: &k.tags,
            });
    }
    Ok(groups)
}

/// Lines by section name, each with the shares behind it, before sections are ordered.
type BySection<'a> = BTreeMap<String, Vec<(Line, Vec<Share<'a>>)>>;

/// Prices grouped usage and subscription charges into a bill: the pipeline, phase by phase.
///
/// Every operation on an amount or a quantity is checked ([`crate::exact`]): an input too
/// large to price is [`PricingError::Overflow`], naming what and where, never a panic. The
/// checks follow the order of the plain arithmetic, so results are the same to the last digit.
///
/// `priced` are sections of lines priced elsewhere, at their net amounts: a reseller's customers
/// at wholesale prices, and last the lines billed for earlier, closed periods
/// ([`ADJUSTMENTS_SECTION`]). They go after the discounts and SLA credits are computed, so no
/// discount, uplift or credit of this bill applies to them; its taxes do (they are pre-tax
/// amounts, taxed once, here).
pub(crate) fn build<'a>(
    ctx: &Context<'_>,
    groups: Groups<'a>,
    subscriptions: &'a [SubscriptionCharge],
    priced: Vec<Section>,
) -> Result<Priced<'a>, PricingError> {
    let mut by_section = usage_lines(ctx, groups)?;
    subscription_lines(ctx, subscriptions, &mut by_section)?;
    sla_uplift(ctx, &mut by_section)?;
    let (mut sections, mut shares) = sections(ctx.catalog(), by_section)?;
    let discounts = discounts(ctx, &mut sections, &shares)?;
    let sla_credits = sla_credits(ctx, &mut sections)?;
    priced_sections(&mut sections, &mut shares, priced)?;
    let (subtotal, net) = totals(ctx.currency(), &mut sections, &discounts, &sla_credits)?;
    let taxes = taxes(ctx, &mut sections, net)?;
    let cur = ctx.currency();
    let total = try_sum(
        cur,
        std::iter::once(net).chain(taxes.iter().map(|t| t.amount)),
    )
    .map_err(|e| at_bill(e, "total"))?;
    for l in sections.iter_mut().flat_map(|s| s.lines.iter_mut()) {
        l.tax.rescale(cur.minor_units);
    }
    let catalog = ctx.catalog();
    let bill = Bill {
        issuer: None,
        currency: cur.code.clone(),
        rounding: cur.rounding,
        catalog_id: catalog.id.clone(),
        catalog_version: catalog.version.clone(),
        sections,
        subtotal,
        discounts,
        sla_credits,
        net,
        taxes,
        total,
    };
    debug_assert_eq!(bill.check_totals(), Ok(()));
    Ok(Priced { bill, shares })
}

/// Phase 1, usage lines: each (product, meter, region) group priced on its whole quantity,
/// converted with the fixed rate and rounded once.
fn usage_lines<'a>(ctx: &Context<'_>, groups: Groups<'a>) -> Result<BySection<'a>, PricingError> {
    let regions_used: BTreeSet<&str> = groups.keys().map(|(_, _, r)| *r).collect();
    let many_regions = regions_used.len() > 1;
    let mut by_section: BySection<'a> = BTreeMap::new();
    // What is left of each meter's plan allowance: the lines of a meter use it up in turn.
    let mut left: BTreeMap<&str, Decimal> = ctx
        .allowances
        .iter()
        .map(|(m, a)| (m.as_str(), a.included))
        .collect();
    for ((product, meter, region), shares) in groups {
        let plan = ctx.allowances.get(meter).map(|a| Plan {
            left: left.get(meter).copied().unwrap_or_default(),
            overage: a.overage.as_ref(),
            name: &a.plans,
        });
        let (section, line, used) =
            usage_line(ctx, product, meter, region, &shares, many_regions, plan)?;
        if let Some(l) = left.get_mut(meter) {
            *l = (*l - used).max(Decimal::ZERO);
        }
        by_section.entry(section).or_default().push((line, shares));
    }
    Ok(by_section)
}

/// A meter's plan allowance as one line meets it: what is left of it, and the over-usage price.
#[derive(Clone, Copy)]
struct Plan<'p> {
    left: Decimal,
    overage: Option<&'p crate::price::Price>,
    name: &'p str,
}

/// The allowance of a meter the account's plans grant (seed 004): summed over the plans held
/// at the end of the period, with the over-usage price of the first plan that sets one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanAllowance {
    pub included: Decimal,
    pub overage: Option<crate::price::Price>,
    /// The plans' names, for the line's description.
    pub plans: String,
}

/// The allowances of `plans` (product id and subscribed quantity), by meter.
pub(crate) fn plan_allowances<'p>(
    catalog: &Catalog,
    plans: impl Iterator<Item = (&'p str, Decimal)>,
) -> Result<BTreeMap<String, PlanAllowance>, PricingError> {
    let mut out: BTreeMap<String, PlanAllowance> = BTreeMap::new();
    for (id, quantity) in plans {
        let Some(product) = catalog.product(id) else {
            continue;
        };
        for a in &product.allowances {
            let at = |e: Overflow| PricingError::overflow(e, format!("allowance of {id}"));
            let granted = exact::mul(a.included, quantity, "allowance").map_err(at)?;
            let entry = out.entry(a.meter.clone()).or_insert_with(|| PlanAllowance {
                included: Decimal::ZERO,
                overage: None,
                plans: String::new(),
            });
            entry.included = exact::add(entry.included, granted, "allowance").map_err(at)?;
            if entry.overage.is_none() {
                entry.overage = a.overage.clone();
            }
            if !entry.plans.split(", ").any(|n| n == product.name) {
                if !entry.plans.is_empty() {
                    entry.plans.push_str(", ");
                }
                entry.plans.push_str(&product.name);
            }
        }
    }
    Ok(out)
}

/// The line of one group, with the section it prints in: its quantity, amount, unit price
/// (the list price, or the average when the price model has none) and description.
fn usage_line(
    ctx: &Context<'_>,
    product_id: &str,
    meter_id: &str,
    region: &str,
    shares: &[Share<'_>],
    many_regions: bool,
    plan: Option<Plan<'_>>,
) -> Result<(String, Line, Decimal), PricingError> {
    let catalog = ctx.catalog();
    let product = catalog
        .product(product_id)
        .ok_or_else(|| not_in_catalog(CatalogItem::Product, product_id))?;
    let meter = catalog
        .meter(meter_id)
        .ok_or_else(|| not_in_catalog(CatalogItem::Meter, meter_id))?;
    let region_opt = (!region.is_empty()).then_some(region);
    let contract = ctx
        .prices
        .iter()
        .find(|o| o.product == product_id && o.meter == meter_id);
    let price = match (plan.and_then(|p| p.overage), contract) {
        // A plan's over-usage price, then the contract's, the region's, the catalog's.
        (Some(overage), _) => overage,
        (None, Some(o)) => &o.price,
        (None, None) => catalog
            .price_of(region_opt, product_id, meter_id)
            .ok_or_else(|| {
                not_in_catalog(CatalogItem::Price, &format!("{product_id}/{meter_id}"))
            })?,
    };
    let granted = plan.map_or(Decimal::ZERO, |p| p.left);
    let at = |e: Overflow| PricingError::overflow(e, format!("line {product_id}/{meter_id}"));
    let fx = ctx.settings.fx;
    let quantity = exact::sum(shares.iter().map(|s| s.quantity), "line quantity").map_err(at)?;
    let key = (
        product_id.to_string(),
        meter_id.to_string(),
        region.to_string(),
    );
    // The price of a month's quantity of this line, beyond what the plan grants.
    let priced = |q: Decimal| -> Result<Decimal, PricingError> {
        let beyond = exact::sub(q, granted, "over-usage").map_err(at)?;
        price
            .amount(beyond.max(Decimal::ZERO), meter.measurement_unit)
            .map_err(at)
    };
    let before = ctx.month_before.get(&key).copied();
    let to_date =
        exact::add(before.unwrap_or_default(), quantity, "month's quantity").map_err(at)?;
    let amount = match before {
        // The month's allowance and minimum are granted once: this period bills what it adds
        // to the month's price.
        Some(before) => exact::sub(priced(to_date)?, priced(before)?, "line amount").map_err(at)?,
        None => priced(quantity)?,
    };
    let used = granted.min(to_date);
    let exact = exact::mul(amount, fx, "line amount").map_err(at)?;
    let (unit_price, average) = match price.list_unit_price() {
        Some(p) => (exact::mul(p, fx, "unit price").map_err(at)?, false),
        None if quantity.is_zero() => (Decimal::ZERO, true),
        // An average too large for a decimal (a minimum charge on a vanishing quantity) is
        // shown as 0, like the average of no quantity: it prices nothing.
        None => (
            exact::div(exact, quantity, "unit price")
                .and_then(|a| exact::mul(a, meter.measurement_unit, "unit price"))
                .map_or(Decimal::ZERO, |a| a.round_dp(6)),
            true,
        ),
    };
    // A product with several charges in one section (network in and out) names the meter,
    // as the seed invoice does ("Bytes sent"); otherwise the product name says it all.
    let shares_section = product.charges.iter().any(|c| {
        c.meter != meter_id
            && catalog
                .meter(&c.meter)
                .is_some_and(|m| m.section == meter.section)
    });
    let mut description = match (&product.kind, shares_section) {
        (_, false) => product.name.clone(),
        (ProductKind::Network, true) => meter.name.clone(),
        (_, true) => format!("{} - {}", product.name, meter.name),
    };
    if many_regions {
        if let Some(r) = catalog.region(region) {
            description = format!("{description} ({})", r.name);
        }
    }
    if let Some(p) = plan.filter(|_| !used.is_zero()) {
        let shown = crate::unit::shown_quantity(used);
        description = format!(
            "{description}, {shown} {} included in {}",
            meter.unit_label(),
            p.name
        );
    }
    let line = Line {
        description,
        product: product_id.to_string(),
        meter: Some(meter_id.to_string()),
        region: region.to_string(),
        category: catalog
            .charge_category(product_id, meter_id)
            .unwrap_or(product.category),
        quantity,
        unit: meter.unit_label().to_string(),
        unit_price: unit_price.normalize(),
        unit_price_is_average: average,
        per: meter.measurement_unit,
        one_time_fee: None,
        monthly_fee: None,
        days: None,
        amount: ctx.currency().round(exact),
        adjustments: Decimal::ZERO,
        tax: Decimal::ZERO,
    };
    Ok((meter.section.clone(), line, used))
}

/// Phase 2, subscription lines: the monthly fee prorated by days held, plus the one-time fee
/// once.
fn subscription_lines<'a>(
    ctx: &Context<'_>,
    subscriptions: &'a [SubscriptionCharge],
    by_section: &mut BySection<'a>,
) -> Result<(), PricingError> {
    let fx = ctx.settings.fx;
    for s in subscriptions {
        let product = ctx
            .catalog()
            .product(&s.product)
            .ok_or_else(|| not_in_catalog(CatalogItem::Product, &s.product))?;
        let fees = product
            .fees()
            .ok_or_else(|| PricingError::SubscriptionNotAService {
                subscription: s.subscription.clone(),
                product: s.product.clone(),
            })?;
        let one_time = if s.one_time {
            fees.one_time
        } else {
            Decimal::ZERO
        };
        let at =
            |e: Overflow| PricingError::overflow(e, format!("subscription {}", s.subscription));
        const WHAT: &str = "subscription amount";
        let prorated = exact::div(
            exact::mul(fees.monthly, s.days, WHAT).map_err(at)?,
            s.month_days,
            WHAT,
        )
        .map_err(at)?;
        let exact = exact::mul(
            exact::mul(
                exact::add(one_time, prorated, WHAT).map_err(at)?,
                s.quantity,
                WHAT,
            )
            .map_err(at)?,
            fx,
            WHAT,
        )
        .map_err(at)?;
        let monthly = exact::mul(fees.monthly, fx, "monthly fee").map_err(at)?;
        let line = Line {
            description: product.name.clone(),
            product: product.id.clone(),
            meter: None,
            region: String::new(),
            category: product.category,
            quantity: s.quantity,
            unit: "month".into(),
            unit_price: monthly.normalize(),
            unit_price_is_average: false,
            per: Decimal::ONE,
            one_time_fee: if s.one_time {
                Some(exact::mul(fees.one_time, fx, "one-time fee").map_err(at)?)
            } else {
                None
            },
            monthly_fee: Some(monthly),
            days: Some(s.days),
            amount: ctx.currency().round(exact),
            adjustments: Decimal::ZERO,
            tax: Decimal::ZERO,
        };
        let share = Share {
            project: &s.project,
            resource: &s.subscription,
            day: s.day,
            quantity: s.quantity,
            tags: &[],
        };
        by_section
            .entry(SUBSCRIPTIONS_SECTION.to_string())
            .or_default()
            .push((line, vec![share]));
    }
    Ok(())
}

/// Phase 3, SLA uplift: a percentage of the covered categories' charges, one line rounded once.
fn sla_uplift(ctx: &Context<'_>, by_section: &mut BySection<'_>) -> Result<(), PricingError> {
    let Some(sla) = ctx.settings.sla else {
        return Ok(());
    };
    if sla.uplift_pct.is_zero() {
        return Ok(());
    }
    let at = |e: Overflow| at_bill(e, "SLA uplift");
    let base = exact::sum(
        by_section
            .values()
            .flatten()
            .filter(|(l, _)| sla.covers.contains(&l.category))
            .map(|(l, _)| l.amount),
        "SLA uplift base",
    )
    .map_err(at)?;
    if base.is_zero() {
        return Ok(());
    }
    let amount = ctx
        .currency()
        .round(percent(base, sla.uplift_pct, "SLA uplift").map_err(at)?);
    let line = Line {
        description: format!(
            "{} SLA uplift ({}% of covered charges)",
            sla.name,
            sla.uplift_pct.normalize()
        ),
        product: format!("sla:{}", sla.id),
        meter: None,
        region: String::new(),
        category: Category::Support,
        quantity: Decimal::ONE,
        unit: "month".into(),
        unit_price: amount,
        unit_price_is_average: false,
        per: Decimal::ONE,
        one_time_fee: None,
        monthly_fee: None,
        days: None,
        amount,
        adjustments: Decimal::ZERO,
        tax: Decimal::ZERO,
    };
    by_section
        .entry(SLA_SECTION.to_string())
        .or_default()
        .push((line, Vec::new()));
    Ok(())
}

/// Phase 4, sections: in the catalog's order, then subscriptions, then the SLA section; lines
/// by description. Returns the shares of every line in `Bill::lines` order.
fn sections<'a>(
    catalog: &Catalog,
    mut by_section: BySection<'a>,
) -> Result<(Vec<Section>, Vec<Vec<Share<'a>>>), PricingError> {
    let mut order = catalog.section_order();
    for extra in [SUBSCRIPTIONS_SECTION, SLA_SECTION] {
        if !order.iter().any(|s| s == extra) {
            order.push(extra.to_string());
        }
    }
    // Lines print in the catalog's order, as a price list reads (seed 000: Copper, Silver,
    // Bronze): by product, then by the product's charges, then by region; the description
    // only breaks ties (subscription segments, SLA uplifts).
    let product_rank: BTreeMap<&str, usize> = catalog
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let region_rank: BTreeMap<&str, usize> = catalog
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i + 1))
        .collect();
    let rank = |l: &Line| {
        let product = product_rank.get(l.product.as_str()).copied();
        let meter = product.and_then(|i| {
            catalog.products[i]
                .charges
                .iter()
                .position(|c| Some(c.meter.as_str()) == l.meter.as_deref())
        });
        (
            product.unwrap_or(usize::MAX),
            meter.unwrap_or(usize::MAX),
            region_rank.get(l.region.as_str()).copied().unwrap_or(0),
            l.description.clone(),
        )
    };
    let mut sections = Vec::new();
    let mut all_shares: Vec<Vec<Share<'a>>> = Vec::new();
    for name in order {
        if let Some(mut lines) = by_section.remove(&name) {
            // Each line's rank computed once (a catalog may hold thousands of products).
            lines.sort_by_cached_key(|(l, _)| rank(l));
            let (lines, shares): (Vec<Line>, Vec<Vec<Share<'a>>>) = lines.into_iter().unzip();
            all_shares.extend(shares);
            sections.push(Section {
                name,
                total: Decimal::ZERO,
                lines,
            });
        }
    }
    let line_count: usize = sections.iter().map(|s| s.lines.len()).sum();
    if line_count > INVOICE_LINES_MAX {
        return Err(PricingError::TooManyLines {
            lines: line_count,
            max: INVOICE_LINES_MAX,
        });
    }
    Ok((sections, all_shares))
}

/// Phase 5, discounts: in order, each on what the earlier ones left of the lines in its scope
/// and window, rounded once and spread over those lines.
fn discounts(
    ctx: &Context<'_>,
    sections: &mut [Section],
    shares: &[Vec<Share<'_>>],
) -> Result<Vec<Adjustment>, PricingError> {
    let cur = ctx.currency();
    let mut out = Vec::new();
    for d in &ctx.discounts {
        let at = |e: Overflow| PricingError::overflow(e, format!("discount {}", d.id));
        let bases = sections
            .iter()
            .flat_map(|s| s.lines.iter())
            .zip(shares)
            .map(|(l, sh)| {
                let fraction = in_scope_fraction(d, l, sh, ctx)?;
                exact::mul(fraction, net_of(l)?.max(Decimal::ZERO), "discount base")
            })
            .collect::<Result<Vec<Decimal>, Overflow>>()
            .map_err(at)?;
        let base = cur.round(exact::sum(bases.iter().copied(), "discount base").map_err(at)?);
        if base <= Decimal::ZERO {
            continue;
        }
        let amount = match &d.value {
            DiscountValue::Percent { pct } => {
                cur.round(percent(base, *pct, "discount").map_err(at)?)
            }
            DiscountValue::Fixed { amount } => {
                let fx = exact::mul(*amount, ctx.settings.fx, "discount").map_err(at)?;
                let prorated = exact::mul(fx, window_fraction(d, ctx.span, ctx.cutoff), "discount")
                    .map_err(at)?;
                cur.round(prorated).min(base)
            }
        };
        if amount.is_zero() {
            continue;
        }
        spread(sections, -amount, &bases, cur.minor_units).map_err(at)?;
        out.push(Adjustment {
            id: d.id.clone(),
            description: d.name.clone(),
            base,
            amount: -amount,
        });
    }
    Ok(out)
}

/// Phase 6, SLA credits: the most severe step the measured availability falls below, on the
/// covered charges (uplift included) after discounts.
fn sla_credits(
    ctx: &Context<'_>,
    sections: &mut [Section],
) -> Result<Vec<Adjustment>, PricingError> {
    let (Some(sla), Some(availability)) = (ctx.settings.sla, ctx.availability_pct) else {
        return Ok(Vec::new());
    };
    let mut steps: Vec<_> = sla
        .credits
        .iter()
        .filter(|c| availability < c.below_pct)
        .collect();
    steps.sort_by_key(|s| s.below_pct);
    let Some(step) = steps.first() else {
        return Ok(Vec::new());
    };
    let at = |e: Overflow| at_bill(e, "SLA credit");
    let uplift_product = format!("sla:{}", sla.id);
    let bases = sections
        .iter()
        .flat_map(|s| s.lines.iter())
        .map(|l| {
            let covered = sla.covers.contains(&l.category) || l.product == uplift_product;
            Ok(if covered {
                net_of(l)?.max(Decimal::ZERO)
            } else {
                Decimal::ZERO
            })
        })
        .collect::<Result<Vec<Decimal>, Overflow>>()
        .map_err(at)?;
    let cur = ctx.currency();
    let base = cur.round(exact::sum(bases.iter().copied(), "SLA credit base").map_err(at)?);
    let amount = cur
        .round(percent(base, step.credit_pct, "SLA credit").map_err(at)?)
        .min(base);
    if amount <= Decimal::ZERO {
        return Ok(Vec::new());
    }
    spread(sections, -amount, &bases, cur.minor_units).map_err(at)?;
    Ok(vec![Adjustment {
        id: format!("sla-credit:{}", sla.id),
        description: format!(
            "{} SLA credit: availability {}% below {}% ({}% credit)",
            sla.name,
            availability.normalize(),
            step.below_pct.normalize(),
            step.credit_pct.normalize()
        ),
        base,
        amount: -amount,
    }])
}

/// Phase 6b, sections priced elsewhere (resold customers at wholesale, adjustments of earlier
/// periods): their lines, as given, after this bill's sections, empty ones left out. They come
/// after discounts and SLA credits so that none of this bill's applies to them; the line limit
/// counts them.
fn priced_sections(
    sections: &mut Vec<Section>,
    shares: &mut Vec<Vec<Share<'_>>>,
    priced: Vec<Section>,
) -> Result<(), PricingError> {
    let line_count = sections
        .iter()
        .chain(&priced)
        .map(|s| s.lines.len())
        .sum::<usize>();
    if line_count > INVOICE_LINES_MAX {
        return Err(PricingError::TooManyLines {
            lines: line_count,
            max: INVOICE_LINES_MAX,
        });
    }
    for s in priced.into_iter().filter(|s| !s.lines.is_empty()) {
        shares.extend(s.lines.iter().map(|_| Vec::new()));
        sections.push(Section {
            total: Decimal::ZERO,
            ..s
        });
    }
    Ok(())
}

/// Phase 7, totals: section totals, the subtotal and the net (subtotal plus the negative
/// discounts and credits), at the currency's scale.
fn totals(
    cur: &Currency,
    sections: &mut [Section],
    discounts: &[Adjustment],
    sla_credits: &[Adjustment],
) -> Result<(Decimal, Decimal), PricingError> {
    for s in sections.iter_mut() {
        s.total = try_sum(cur, s.lines.iter().map(|l| l.amount))
            .map_err(|e| PricingError::overflow(e, format!("section {}", s.name)))?;
        for l in &mut s.lines {
            l.adjustments.rescale(cur.minor_units);
        }
    }
    let subtotal =
        try_sum(cur, sections.iter().map(|s| s.total)).map_err(|e| at_bill(e, "subtotal"))?;
    let net = try_sum(
        cur,
        std::iter::once(subtotal)
            .chain(discounts.iter().map(|a| a.amount))
            .chain(sla_credits.iter().map(|a| a.amount)),
    )
    .map_err(|e| at_bill(e, "net"))?;
    Ok((subtotal, net))
}

/// Phase 8, taxes: each rate of the jurisdiction on the net, rounded once per invoice or on
/// each line's net and summed, as the jurisdiction's level says.
fn taxes(
    ctx: &Context<'_>,
    sections: &mut [Section],
    net: Decimal,
) -> Result<Vec<TaxLine>, PricingError> {
    let Some(j) = ctx.settings.tax else {
        return Ok(Vec::new());
    };
    let cur = ctx.currency();
    let mut out = Vec::new();
    for rate in &j.taxes {
        let at = |e: Overflow| PricingError::overflow(e, format!("tax {}", rate.name));
        let amount = match j.level {
            TaxLevel::Invoice => cur.round(percent(net, rate.rate_pct, "tax").map_err(at)?),
            TaxLevel::Line => {
                let mut line_taxes = Vec::new();
                for l in sections.iter_mut().flat_map(|s| s.lines.iter_mut()) {
                    let t = cur
                        .round(percent(net_of(l).map_err(at)?, rate.rate_pct, "tax").map_err(at)?);
                    l.tax = try_sum(cur, [l.tax, t]).map_err(at)?;
                    line_taxes.push(t);
                }
                try_sum(cur, line_taxes).map_err(at)?
            }
        };
        out.push(TaxLine {
            name: rate.name.clone(),
            rate_pct: rate.rate_pct,
            level: j.level,
            base: net,
            amount,
        });
    }
    Ok(out)
}

fn not_in_catalog(what: CatalogItem, id: &str) -> PricingError {
    PricingError::NotInCatalog {
        what,
        id: id.to_string(),
    }
}

/// An overflow of one of the bill's own figures (subtotal, net, total...).
fn at_bill(e: Overflow, figure: &str) -> PricingError {
    PricingError::overflow(e, format!("the bill's {figure}"))
}

/// `pct` percent of `amount`, exact.
fn percent(amount: Decimal, pct: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    exact::div(exact::mul(amount, pct, what)?, Decimal::ONE_HUNDRED, what)
}

/// A line's amount after the adjustments spread on it so far.
fn net_of(l: &Line) -> Result<Decimal, Overflow> {
    exact::add(l.amount, l.adjustments, "line net")
}

/// Rounded amounts added up at the currency's scale ([`Currency::sum`], checked).
fn try_sum(
    cur: &Currency,
    amounts: impl IntoIterator<Item = Decimal>,
) -> Result<Decimal, Overflow> {
    let mut total = exact::sum(amounts, "total")?;
    total.rescale(cur.minor_units);
    Ok(total)
}

/// Spreads a rounded adjustment over the lines in proportion to `bases` (one per line, in
/// section order), so that line nets stay exact and add up to the bill's net.
fn spread(
    sections: &mut [Section],
    amount: Decimal,
    bases: &[Decimal],
    scale: u32,
) -> Result<(), Overflow> {
    let parts = allocate(amount, bases, scale);
    for (line, part) in sections
        .iter_mut()
        .flat_map(|s| s.lines.iter_mut())
        .zip(parts)
    {
        line.adjustments = exact::add(line.adjustments, part, "line adjustments")?;
    }
    Ok(())
}

/// The fraction of a line's quantity a discount applies to: the shares in its scope whose day
/// lies in its validity window.
fn in_scope_fraction(
    d: &Discount,
    line: &Line,
    shares: &[Share<'_>],
    ctx: &Context<'_>,
) -> Result<Decimal, Overflow> {
    let line_matches = match &d.scope {
        DiscountScope::All => true,
        DiscountScope::Account(a) => *a == ctx.account,
        DiscountScope::Product(p) => *p == line.product,
        DiscountScope::Category(c) => *c == line.category,
        DiscountScope::Project(_) | DiscountScope::Resource(_) => true,
    };
    if !line_matches {
        return Ok(Decimal::ZERO);
    }
    if shares.is_empty() {
        // The SLA uplift line has no resources or days: it follows account-wide discounts
        // only, a percentage for the part of the bill's span its window covers (a coupon
        // redeemed mid-month, or expired, discounts that part of the uplift only). Fixed
        // amounts are prorated by the window already; the whole line counts toward their cap.
        return Ok(match &d.scope {
            DiscountScope::All | DiscountScope::Account(_) | DiscountScope::Category(_) => {
                match d.value {
                    DiscountValue::Percent { .. } => window_fraction(d, ctx.span, ctx.cutoff),
                    DiscountValue::Fixed { .. } => Decimal::ONE,
                }
            }
            _ => Decimal::ZERO,
        });
    }
    let total = exact::sum(shares.iter().map(|s| s.quantity), "line quantity")?;
    let in_scope = exact::sum(
        shares
            .iter()
            .filter(|s| match &d.scope {
                DiscountScope::Project(p) => s.project == p,
                DiscountScope::Resource(r) => s.resource == r,
                _ => true,
            })
            // Percentages apply to the usage days inside the window; fixed amounts are prorated
            // by the window instead (see `window_fraction`), so any in-scope usage counts toward
            // the cap.
            .filter(|s| matches!(d.value, DiscountValue::Fixed { .. }) || day_in_window(d, s.day))
            .map(|s| s.quantity),
        "line quantity",
    )?;
    if total.is_zero() {
        // A zero-quantity line (a free subscription) counts as fully in scope if any share is.
        return Ok(if shares.iter().any(|s| day_in_window(d, s.day)) {
            Decimal::ONE
        } else {
            Decimal::ZERO
        });
    }
    exact::div(in_scope, total, "discount scope")
}

pub(crate) fn day_in_window(d: &Discount, day: NaiveDate) -> bool {
    d.valid_from.is_none_or(|f| day >= f.date_naive())
        && d.valid_to.is_none_or(|t| midnight(day) < t)
}

/// The part of the bill's span a discount window covers (for fixed amounts), counting the
/// window only up to the `cutoff` of an invoice to date.
fn window_fraction(
    d: &Discount,
    span: (DateTime<Utc>, DateTime<Utc>),
    cutoff: Option<DateTime<Utc>>,
) -> Decimal {
    let (s, e) = span;
    if e <= s {
        // An estimate is priced at one instant: the discount applies whole or not at all.
        let valid = d.valid_from.is_none_or(|f| f <= s) && d.valid_to.is_none_or(|t| s < t);
        return if valid { Decimal::ONE } else { Decimal::ZERO };
    }
    let from = d.valid_from.map_or(s, |f| f.max(s));
    let to = d.valid_to.map_or(e, |t| t.min(e)).min(cutoff.unwrap_or(e));
    if to <= from {
        return Decimal::ZERO;
    }
    let whole = (e - s).num_seconds();
    Decimal::from((to - from).num_seconds()) / Decimal::from(whole)
}
