//! The one pricing pipeline behind both invoices and estimates: usage totals and subscription
//! charges in, priced sections, discounts, SLA uplift and credits, taxes and totals out.
//!
//! Money rules (see ARCHITECTURE.md): a line amount is its exact price rounded once to the
//! currency's minor units with the catalog's mode; a section total is the sum of its rounded
//! lines; discounts and credits are rounded once each, then spread over the lines they came
//! from; tax is rounded per line or once per invoice as the jurisdiction says; every total is
//! the sum of the amounts shown under it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocate::allocate;
use crate::catalog::{
    Catalog, Category, Discount, DiscountScope, DiscountValue, ProductKind, SlaTier,
    TaxJurisdiction, TaxLevel,
};
use crate::error::{MoneyError, PricingError};
use crate::money::{Currency, RoundingMode};
use crate::period::midnight;
use crate::usage::Usage;

/// Most lines one invoice may have. A readable invoice has tens of lines; past ten thousand the
/// usage should be summarised differently, and the bound keeps an invoice under DynamoDB's
/// 400 KB item limit once compressed and stored.
pub const INVOICE_LINES_MAX: usize = 10_000;

/// Section that subscription fees are listed in.
pub const SUBSCRIPTIONS_SECTION: &str = "Subscriptions";
/// Section of the SLA uplift line.
pub const SLA_SECTION: &str = "Service level";

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
    /// True when the unit price is the line's average (tiered, package, included or minimum).
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

/// Part of a line's quantity that belongs to one resource on one day (borrowed from the usage
/// or the quote, so that pricing allocates nothing per resource).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Share<'a> {
    pub project: &'a str,
    pub resource: &'a str,
    pub day: NaiveDate,
    pub quantity: Decimal,
}

/// Usage grouped into lines: (product, meter, region) -> the shares of the line's quantity, in
/// the meter's unit.
pub(crate) type Groups<'a> = BTreeMap<(&'a str, &'a str, &'a str), Vec<Share<'a>>>;

/// A priced bill with, for each of its lines (in `Bill::lines` order), the shares behind it.
pub(crate) struct Priced<'a> {
    pub bill: Bill,
    pub shares: Vec<Vec<Share<'a>>>,
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
            .ok_or_else(|| unknown("meter", &k.meter))?;
        let quantity = k
            .unit
            .convert(t.quantity, meter.unit, catalog.hours_per_month)
            .ok_or_else(|| PricingError::InvalidInput {
                path: format!("usage[{}/{}]", k.product, k.meter),
                message: format!(
                    "unit {} does not convert to {}",
                    k.unit.label(),
                    meter.unit.label()
                ),
            })?;
        let region = if k.region.is_empty() {
            default_region
        } else {
            k.region.as_str()
        };
        groups
            .entry((k.product.as_str(), k.meter.as_str(), region))
            .or_default()
            .push(Share {
                project: &k.project,
                resource: &k.resource,
                day: k.day,
                quantity,
            });
    }
    Ok(groups)
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
    /// property suite call this on every bill they build.
    pub fn check_totals(&self) -> Result<(), String> {
        let mut subtotal = Decimal::ZERO;
        for s in &self.sections {
            let sum: Decimal = s.lines.iter().map(|l| l.amount).sum();
            if sum != s.total {
                return Err(format!(
                    "section {} shows {} but its lines add up to {sum}",
                    s.name, s.total
                ));
            }
            subtotal += s.total;
        }
        if subtotal != self.subtotal {
            return Err(format!(
                "subtotal {} != sum of sections {subtotal}",
                self.subtotal
            ));
        }
        let adjustments: Decimal = self
            .discounts
            .iter()
            .chain(&self.sla_credits)
            .map(|a| a.amount)
            .sum();
        if self.subtotal + adjustments != self.net {
            return Err(format!(
                "net {} != subtotal {} + adjustments {adjustments}",
                self.net, self.subtotal
            ));
        }
        let spread: Decimal = self.lines().map(|l| l.adjustments).sum();
        if spread != adjustments {
            return Err(format!(
                "adjustments spread on lines {spread} != adjustments shown {adjustments}"
            ));
        }
        let tax: Decimal = self.taxes.iter().map(|t| t.amount).sum();
        if self.net + tax != self.total {
            return Err(format!(
                "total {} != net {} + tax {tax}",
                self.total, self.net
            ));
        }
        if self.taxes.iter().any(|t| t.level == TaxLevel::Line) {
            let line_tax: Decimal = self.lines().map(|l| l.tax).sum();
            if line_tax != tax {
                return Err(format!("line taxes {line_tax} != tax lines {tax}"));
            }
        }
        Ok(())
    }
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

/// Everything about the customer that changes prices.
pub(crate) struct Context<'c> {
    pub catalog: &'c Catalog,
    pub currency: Currency,
    /// Units of the bill currency per unit of catalog currency.
    pub fx: Decimal,
    pub default_region: String,
    pub sla: Option<&'c SlaTier>,
    pub availability_pct: Option<Decimal>,
    pub tax: Option<&'c TaxJurisdiction>,
    /// Discounts in the order they apply, each with the window of the bill it is valid in.
    pub discounts: Vec<Discount>,
    pub account: String,
    /// The bill's span: discounts valid for part of it apply to the usage days inside their
    /// window, and fixed amounts are prorated by the part of the span they cover.
    pub span: (DateTime<Utc>, DateTime<Utc>),
}

impl<'c> Context<'c> {
    /// The currency and exchange rate for a bill in `code` (the catalog's when `None`).
    pub fn currency_for(
        catalog: &Catalog,
        code: Option<&str>,
    ) -> Result<(Currency, Decimal), PricingError> {
        let base = &catalog.currency.code;
        let code = code.unwrap_or(base);
        let currency = Currency::new(code, catalog.currency.rounding)?;
        if code == base {
            return Ok((currency, Decimal::ONE));
        }
        let rate =
            catalog
                .fx_rates
                .get(code)
                .copied()
                .ok_or_else(|| MoneyError::NoExchangeRate {
                    from: base.clone(),
                    to: code.to_string(),
                })?;
        Ok((currency, rate))
    }
}

/// Prices grouped usage and subscription charges into a bill.
pub(crate) fn build<'a>(
    ctx: &Context<'_>,
    groups: Groups<'a>,
    subscriptions: &'a [SubscriptionCharge],
) -> Result<Priced<'a>, PricingError> {
    let catalog = ctx.catalog;
    let cur = &ctx.currency;

    let regions_used: std::collections::BTreeSet<&str> =
        groups.keys().map(|(_, _, r)| *r).collect();
    let many_regions = regions_used.len() > 1;

    let mut by_section: BTreeMap<String, Vec<(Line, Vec<Share<'a>>)>> = BTreeMap::new();
    for ((product_id, meter_id, region), shares) in groups {
        let product = catalog
            .product(product_id)
            .ok_or_else(|| unknown("product", product_id))?;
        let meter = catalog
            .meter(meter_id)
            .ok_or_else(|| unknown("meter", meter_id))?;
        let region_opt = (!region.is_empty()).then_some(region);
        let price = catalog
            .price_of(region_opt, product_id, meter_id)
            .ok_or_else(|| unknown("price", &format!("{product_id}/{meter_id}")))?;
        let quantity: Decimal = shares.iter().map(|s| s.quantity).sum();
        let exact = price.amount(quantity, meter.measurement_unit) * ctx.fx;
        let amount = cur.round(exact);
        let (unit_price, average) = match price.list_unit_price() {
            Some(p) => (p * ctx.fx, false),
            None if quantity.is_zero() => (Decimal::ZERO, true),
            None => (
                (exact / quantity * meter.measurement_unit).round_dp(6),
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
        by_section.entry(meter.section.clone()).or_default().push((
            Line {
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
                amount,
                adjustments: Decimal::ZERO,
                tax: Decimal::ZERO,
            },
            shares,
        ));
    }

    // 2. Subscription lines: monthly fee prorated by days held, plus the one-time fee once.
    for s in subscriptions {
        let product = catalog
            .product(&s.product)
            .ok_or_else(|| unknown("product", &s.product))?;
        let fees = product.fees().ok_or_else(|| PricingError::InvalidInput {
            path: format!("subscriptions[{}].product", s.subscription),
            message: format!("product `{}` is not a service or package", s.product),
        })?;
        let one_time = if s.one_time {
            fees.one_time
        } else {
            Decimal::ZERO
        };
        let exact = (one_time + fees.monthly * s.days / s.month_days) * s.quantity * ctx.fx;
        by_section
            .entry(SUBSCRIPTIONS_SECTION.to_string())
            .or_default()
            .push((
                Line {
                    description: product.name.clone(),
                    product: product.id.clone(),
                    meter: None,
                    region: String::new(),
                    category: product.category,
                    quantity: s.quantity,
                    unit: "month".into(),
                    unit_price: (fees.monthly * ctx.fx).normalize(),
                    unit_price_is_average: false,
                    per: Decimal::ONE,
                    one_time_fee: s.one_time.then_some(fees.one_time * ctx.fx),
                    monthly_fee: Some(fees.monthly * ctx.fx),
                    days: Some(s.days),
                    amount: cur.round(exact),
                    adjustments: Decimal::ZERO,
                    tax: Decimal::ZERO,
                },
                vec![Share {
                    project: &s.project,
                    resource: &s.subscription,
                    day: s.day,
                    quantity: s.quantity,
                }],
            ));
    }

    // 3. SLA uplift on the covered categories, one line rounded once.
    if let Some(sla) = ctx.sla {
        if !sla.uplift_pct.is_zero() {
            let base: Decimal = by_section
                .values()
                .flatten()
                .filter(|(l, _)| sla.covers.contains(&l.category))
                .map(|(l, _)| l.amount)
                .sum();
            if !base.is_zero() {
                by_section
                    .entry(SLA_SECTION.to_string())
                    .or_default()
                    .push((
                        Line {
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
                            unit_price: cur.round(base * sla.uplift_pct / Decimal::ONE_HUNDRED),
                            unit_price_is_average: false,
                            per: Decimal::ONE,
                            one_time_fee: None,
                            monthly_fee: None,
                            days: None,
                            amount: cur.round(base * sla.uplift_pct / Decimal::ONE_HUNDRED),
                            adjustments: Decimal::ZERO,
                            tax: Decimal::ZERO,
                        },
                        Vec::new(),
                    ));
            }
        }
    }

    // Section order: the catalog's, then subscriptions, then the SLA section.
    let mut order = catalog.section_order();
    for extra in [SUBSCRIPTIONS_SECTION, SLA_SECTION] {
        if !order.iter().any(|s| s == extra) {
            order.push(extra.to_string());
        }
    }
    let mut sections = Vec::new();
    // The shares of every line, in `Bill::lines` order.
    let mut all_shares: Vec<Vec<Share<'a>>> = Vec::new();
    for name in order {
        if let Some(mut lines) = by_section.remove(&name) {
            lines.sort_by(|(a, _), (b, _)| {
                a.description
                    .cmp(&b.description)
                    .then(a.product.cmp(&b.product))
            });
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

    // 4. Discounts, in order, each on what earlier ones left; then SLA credits.
    let mut discounts = Vec::new();
    for d in &ctx.discounts {
        let bases: Vec<Decimal> = sections
            .iter()
            .flat_map(|s| s.lines.iter())
            .zip(&all_shares)
            .map(|(l, sh)| in_scope_fraction(d, l, sh, ctx) * l.net().max(Decimal::ZERO))
            .collect();
        let base = cur.round(bases.iter().copied().sum());
        if base <= Decimal::ZERO {
            continue;
        }
        let amount = match &d.value {
            DiscountValue::Percent { pct } => cur.round(base * *pct / Decimal::ONE_HUNDRED),
            DiscountValue::Fixed { amount } => cur
                .round(*amount * ctx.fx * window_fraction(d, ctx.span))
                .min(base),
        };
        if amount.is_zero() {
            continue;
        }
        spread(&mut sections, -amount, &bases, cur.minor_units);
        discounts.push(Adjustment {
            id: d.id.clone(),
            description: d.name.clone(),
            base,
            amount: -amount,
        });
    }
    let mut sla_credits = Vec::new();
    if let (Some(sla), Some(availability)) = (ctx.sla, ctx.availability_pct) {
        let mut steps: Vec<_> = sla
            .credits
            .iter()
            .filter(|c| availability < c.below_pct)
            .collect();
        steps.sort_by_key(|s| s.below_pct);
        if let Some(step) = steps.first() {
            let bases: Vec<Decimal> = sections
                .iter()
                .flat_map(|s| s.lines.iter())
                .map(|l| {
                    let covered =
                        sla.covers.contains(&l.category) || l.product == format!("sla:{}", sla.id);
                    if covered {
                        l.net().max(Decimal::ZERO)
                    } else {
                        Decimal::ZERO
                    }
                })
                .collect();
            let base = cur.round(bases.iter().copied().sum());
            let amount = cur
                .round(base * step.credit_pct / Decimal::ONE_HUNDRED)
                .min(base);
            if amount > Decimal::ZERO {
                spread(&mut sections, -amount, &bases, cur.minor_units);
                sla_credits.push(Adjustment {
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
                });
            }
        }
    }

    for s in &mut sections {
        s.total = cur.sum(s.lines.iter().map(|l| l.amount));
        for l in &mut s.lines {
            l.adjustments.rescale(cur.minor_units);
        }
    }
    let subtotal = cur.sum(sections.iter().map(|s| s.total));
    let net = cur.sum(
        std::iter::once(subtotal)
            .chain(discounts.iter().map(|a| a.amount))
            .chain(sla_credits.iter().map(|a| a.amount)),
    );

    // 5. Taxes at the jurisdiction's level.
    let mut taxes = Vec::new();
    if let Some(j) = ctx.tax {
        for rate in &j.taxes {
            let amount = match j.level {
                TaxLevel::Invoice => cur.round(net * rate.rate_pct / Decimal::ONE_HUNDRED),
                TaxLevel::Line => {
                    let mut taxes = Vec::new();
                    for l in sections.iter_mut().flat_map(|s| s.lines.iter_mut()) {
                        let t = cur.round(l.net() * rate.rate_pct / Decimal::ONE_HUNDRED);
                        l.tax = cur.sum([l.tax, t]);
                        taxes.push(t);
                    }
                    cur.sum(taxes)
                }
            };
            taxes.push(TaxLine {
                name: rate.name.clone(),
                rate_pct: rate.rate_pct,
                level: j.level,
                base: net,
                amount,
            });
        }
    }
    let total = cur.sum(std::iter::once(net).chain(taxes.iter().map(|t| t.amount)));
    for l in sections.iter_mut().flat_map(|s| s.lines.iter_mut()) {
        l.tax.rescale(cur.minor_units);
    }
    let bill = Bill {
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
    Ok(Priced {
        bill,
        shares: all_shares,
    })
}

fn unknown(what: &'static str, id: &str) -> PricingError {
    PricingError::UnknownReference {
        what,
        id: id.to_string(),
        path: "catalog".into(),
    }
}

/// Spreads a rounded adjustment over the lines in proportion to `bases` (one per line, in
/// section order), so that line nets stay exact and add up to the bill's net.
fn spread(sections: &mut [Section], amount: Decimal, bases: &[Decimal], scale: u32) {
    let parts = allocate(amount, bases, scale);
    for (line, part) in sections
        .iter_mut()
        .flat_map(|s| s.lines.iter_mut())
        .zip(parts)
    {
        line.adjustments += part;
    }
}

/// The fraction of a line's quantity a discount applies to: the shares in its scope whose day
/// lies in its validity window.
fn in_scope_fraction(
    d: &Discount,
    line: &Line,
    shares: &[Share<'_>],
    ctx: &Context<'_>,
) -> Decimal {
    let line_matches = match &d.scope {
        DiscountScope::All => true,
        DiscountScope::Account(a) => *a == ctx.account,
        DiscountScope::Product(p) => *p == line.product,
        DiscountScope::Category(c) => *c == line.category,
        DiscountScope::Project(_) | DiscountScope::Resource(_) => true,
    };
    if !line_matches {
        return Decimal::ZERO;
    }
    if shares.is_empty() {
        // The SLA uplift line has no resources: it follows account-wide discounts only.
        return match &d.scope {
            DiscountScope::All | DiscountScope::Account(_) | DiscountScope::Category(_) => {
                Decimal::ONE
            }
            _ => Decimal::ZERO,
        };
    }
    let total: Decimal = shares.iter().map(|s| s.quantity).sum();
    let in_scope: Decimal = shares
        .iter()
        .filter(|s| match &d.scope {
            DiscountScope::Project(p) => s.project == p,
            DiscountScope::Resource(r) => s.resource == r,
            _ => true,
        })
        // Percentages apply to the usage days inside the window; fixed amounts are prorated by
        // the window instead (see `window_fraction`), so any in-scope usage counts toward the cap.
        .filter(|s| matches!(d.value, DiscountValue::Fixed { .. }) || day_in_window(d, s.day))
        .map(|s| s.quantity)
        .sum();
    if total.is_zero() {
        // A zero-quantity line (a free subscription) counts as fully in scope if any share is.
        return if shares.iter().any(|s| day_in_window(d, s.day)) {
            Decimal::ONE
        } else {
            Decimal::ZERO
        };
    }
    in_scope / total
}

fn day_in_window(d: &Discount, day: NaiveDate) -> bool {
    d.valid_from.is_none_or(|f| day >= f.date_naive())
        && d.valid_to.is_none_or(|t| midnight(day) < t)
}

/// The part of the bill's span a discount window covers (for fixed amounts).
fn window_fraction(d: &Discount, span: (DateTime<Utc>, DateTime<Utc>)) -> Decimal {
    let (s, e) = span;
    if e <= s {
        // An estimate is priced at one instant: the discount applies whole or not at all.
        let valid = d.valid_from.is_none_or(|f| f <= s) && d.valid_to.is_none_or(|t| s < t);
        return if valid { Decimal::ONE } else { Decimal::ZERO };
    }
    let from = d.valid_from.map_or(s, |f| f.max(s));
    let to = d.valid_to.map_or(e, |t| t.min(e));
    if to <= from {
        return Decimal::ZERO;
    }
    let whole = (e - s).num_seconds();
    Decimal::from((to - from).num_seconds()) / Decimal::from(whole)
}
