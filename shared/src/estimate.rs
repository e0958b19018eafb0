//! Estimates of quotes: a quote becomes the month of usage it stands for, priced by the invoice
//! pipeline (`bill`), then attributed back to its tiers with hourly and yearly figures.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocate::allocate;
use crate::bill::{
    build, day_in_window, Adjustment, Bill, Context, Groups, Line, Priced, Share,
    SubscriptionCharge, TaxLine, SLA_SECTION,
};
use crate::catalog::{Catalog, Category, Discount, DiscountValue, MeterRole, Product, SlaTier};
use crate::error::PricingError;
use crate::exact::{self, Overflow};
use crate::path::{ComponentField, QuotePath, SettingsOwner};
use crate::price::line_quantity_max;
use crate::quote::{Component, Quote, QuoteTier, QUOTE_COMPONENTS_MAX};
use crate::settings::{Settings, SettingsInput};
use crate::unit::{ConvertError, Unit};

/// Account id the estimate's usage is booked under.
pub const QUOTE_ACCOUNT: &str = "quote";

/// A line of the estimate, attributed to one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateLine {
    pub description: String,
    pub product: String,
    pub category: Category,
    pub quantity: Decimal,
    pub unit: String,
    pub unit_price: Decimal,
    pub per: Decimal,
    /// Monthly amount (rounded; the tier's lines add up to the tier's monthly total).
    pub monthly: Decimal,
    pub hourly: Decimal,
    pub yearly: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimateTier {
    pub name: String,
    pub lines: Vec<EstimateLine>,
    pub monthly: Decimal,
    pub hourly: Decimal,
    pub yearly: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryTotal {
    pub category: Category,
    pub monthly: Decimal,
}

/// Scale of hourly amounts: two more digits than the currency, since hourly prices of small
/// VMs are fractions of a cent.
pub const HOURLY_EXTRA_DIGITS: u32 = 2;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub currency: String,
    pub catalog_id: String,
    pub catalog_version: String,
    pub hours_per_month: Decimal,
    pub tiers: Vec<EstimateTier>,
    pub categories: Vec<CategoryTotal>,
    /// Sum of the tiers' monthly amounts.
    pub subtotal: Decimal,
    pub discounts: Vec<Adjustment>,
    pub sla_credits: Vec<Adjustment>,
    pub taxes: Vec<TaxLine>,
    /// What a month of this app costs, tax included: equal to the invoice of a month of
    /// equivalent usage, to the cent.
    pub monthly_total: Decimal,
    pub hourly_total: Decimal,
    /// Twelve monthly invoices (a coupon's or a promotion's discount in the months it is valid
    /// in only).
    pub yearly_total: Decimal,
    /// One-time fees (tax included) on top of the first month.
    pub one_time_total: Decimal,
    /// What the first invoice comes to: `monthly_total + one_time_total`.
    pub first_month_total: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_months: Option<u32>,
    /// The whole commitment: the term's monthly invoices (a coupon's or a promotion's discount
    /// in the months it is valid in only) + one-time fees.
    pub term_total: Decimal,
    /// The month bill the estimate was derived from.
    pub bill: Bill,
}

/// The discount a quote's coupon gives, redeemed at the quote's instant as an account would
/// redeem it (valid for the months it lasts).
fn quote_coupon(
    catalog: &Catalog,
    code: &str,
    at: DateTime<Utc>,
) -> Result<Discount, PricingError> {
    let refuse = |reason: String| PricingError::Coupon {
        code: code.to_string(),
        reason,
    };
    let c = catalog
        .coupons
        .iter()
        .find(|c| c.is(code))
        .ok_or_else(|| refuse("is not in the catalog".into()))?;
    if !c.redeemable_at(at) {
        return Err(refuse("cannot be redeemed at the quote's date".into()));
    }
    Ok(c.discount_from(at))
}

/// Prices a quote. The monthly total is the invoice total of a month of equivalent usage:
/// `count x hours` running hours per VM, `size x hours` GB-hours per volume, and so on.
///
/// # Errors
/// More than [`QUOTE_COMPONENTS_MAX`] components, a setting the catalog does not offer, or a
/// component it cannot price (each with the [`QuotePath`] of the component and field).
pub fn estimate(catalog: &Catalog, quote: &Quote) -> Result<Estimate, PricingError> {
    let components: usize = quote.tiers.iter().map(|t| t.components.len()).sum();
    if components > QUOTE_COMPONENTS_MAX {
        return Err(PricingError::TooManyComponents {
            components,
            max: QUOTE_COMPONENTS_MAX,
        });
    }
    let settings = Settings::resolve(catalog, &settings_input(quote), &SettingsOwner::Quote)?;
    if let Some(r) = settings.region.filter(|r| !r.billed) {
        return Err(PricingError::RegionNotBilled {
            region: r.id.clone(),
        });
    }
    let coupon = match &quote.coupon {
        Some(code) => vec![quote_coupon(catalog, code, quote.at)?],
        None => Vec::new(),
    };
    let (groups, subs) = quote_groups(&settings, quote)?;
    // The quote's plans grant their allowances as an account's would.
    let allowances = crate::bill::plan_allowances(
        catalog,
        subs.iter().map(|s| (s.product.as_str(), s.quantity)),
    )?;
    let ctx = Context {
        discounts: settings.discounts_in_order(&coupon),
        settings,
        availability_pct: None,
        account: QUOTE_ACCOUNT.to_string(),
        span: (quote.at, quote.at),
        cutoff: None,
        month_before: Default::default(),
        prices: Vec::new(),
        allowances,
    };
    let recurring: Vec<SubscriptionCharge> = subs
        .iter()
        .map(|s| SubscriptionCharge {
            one_time: false,
            ..s.clone()
        })
        .collect();
    let has_one_time = subs.iter().any(|s| {
        catalog
            .product(&s.product)
            .and_then(|p| p.fees())
            .is_some_and(|f| !f.one_time.is_zero())
    });
    // The first month's bill (with one-time fees) is priced by the same pipeline, only when
    // there is a one-time fee to add.
    let first = if has_one_time {
        Some(build(&ctx, groups.clone(), &subs, Vec::new())?.bill.total)
    } else {
        None
    };
    // The months of the year and the term: a coupon that runs out, or a catalog promotion
    // that ends or starts within them, prices those months without it or with it.
    let months = ctx.settings.term.map_or(1, |t| t.months).max(12);
    let month_totals = other_months(&ctx, &groups, &recurring, quote.at, months)?;
    let priced = build(&ctx, groups, &recurring, Vec::new())?;
    let first = first.unwrap_or(priced.bill.total);
    let at = |e: Overflow| PricingError::overflow(e, "the quote");
    let tiers = tier_lines(&ctx, quote, &priced).map_err(at)?;
    summarize(&ctx, tiers, priced.bill, first, &month_totals).map_err(at)
}

/// Which of `discounts` each month of the year or term (`months` of them) carries. Month `m`
/// begins `m` months after the quote's date (as a coupon's duration counts); a discount
/// counts for the month when it is valid as the month begins. Month 0 is the monthly estimate
/// itself: its key is what the pipeline applies at the quote's date (a percentage by the
/// usage day, a fixed amount by the instant: `bill::window_fraction`).
#[inline(never)] // One copy in the wasm (the pricing crate builds at opt-level 3).
fn month_keys(discounts: &[Discount], at: DateTime<Utc>, months: u32) -> Vec<Vec<bool>> {
    let mut keys = Vec::with_capacity(months as usize);
    for m in 0..months {
        // Past chrono's last date, every window with an end is over.
        let start = at
            .checked_add_months(chrono::Months::new(m))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        keys.push(
            discounts
                .iter()
                .map(|d| match (m, &d.value) {
                    // As the pipeline prices the quote: a percentage by the usage day.
                    (0, DiscountValue::Percent { .. }) => day_in_window(d, at.date_naive()),
                    _ => {
                        d.valid_from.is_none_or(|f| f <= start)
                            && d.valid_to.is_none_or(|t| start < t)
                    }
                })
                .collect(),
        );
    }
    keys
}

/// The invoice total of each month of the year or term, where its discounts ([`month_keys`])
/// differ from the first month's (`None`: the monthly estimate's), priced by the same pipeline
/// with those discounts.
fn other_months<'a>(
    ctx: &Context<'_>,
    groups: &Groups<'a>,
    recurring: &'a [SubscriptionCharge],
    at: DateTime<Utc>,
    months: u32,
) -> Result<Vec<Option<Decimal>>, PricingError> {
    let keys = month_keys(&ctx.discounts, at, months);
    let mut priced: Vec<(&[bool], Decimal)> = Vec::new();
    let mut out = Vec::with_capacity(keys.len());
    for key in &keys {
        if *key == keys[0] {
            out.push(None);
            continue;
        }
        let total = match priced.iter().find(|(k, _)| *k == key.as_slice()) {
            Some((_, total)) => *total,
            None => {
                let with = Context {
                    discounts: month_discounts(&ctx.discounts, key),
                    settings: ctx.settings.clone(),
                    availability_pct: None,
                    account: QUOTE_ACCOUNT.to_string(),
                    span: ctx.span,
                    cutoff: None,
                    month_before: Default::default(),
                    prices: Vec::new(),
                    allowances: ctx.allowances.clone(),
                };
                let total = build(&with, groups.clone(), recurring, Vec::new())?
                    .bill
                    .total;
                priced.push((key, total));
                total
            }
        };
        out.push(Some(total));
    }
    Ok(out)
}

/// The discounts a month's `key` names, valid for all of the (instant) estimate.
fn month_discounts(discounts: &[Discount], key: &[bool]) -> Vec<Discount> {
    discounts
        .iter()
        .zip(key)
        .filter(|(_, on)| **on)
        .map(|(d, _)| Discount {
            valid_from: None,
            valid_to: None,
            ..d.clone()
        })
        .collect()
}

/// The settings a quote names.
fn settings_input(quote: &Quote) -> SettingsInput<'_> {
    SettingsInput {
        currency: quote.currency.as_deref(),
        region: quote.region.as_deref(),
        tax_jurisdiction: quote.tax_jurisdiction.as_deref(),
        sla_tier: quote.sla_tier.as_deref(),
        term: quote.term.as_deref(),
    }
}

/// The estimate's tiers: each bill line attributed to the tiers by the quantity each tier's
/// resources hold, the SLA uplift by each tier's covered charges.
fn tier_lines(
    ctx: &Context<'_>,
    quote: &Quote,
    priced: &Priced<'_>,
) -> Result<Vec<EstimateTier>, Overflow> {
    let minor_units = ctx.settings.currency.minor_units;
    let tier_index: BTreeMap<&str, usize> = quote
        .tiers
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut tiers: Vec<EstimateTier> = quote
        .tiers
        .iter()
        .map(|t| EstimateTier {
            name: t.name.clone(),
            lines: Vec::new(),
            monthly: Decimal::ZERO,
            hourly: Decimal::ZERO,
            yearly: Decimal::ZERO,
        })
        .collect();
    let mut uplift_lines: Vec<&Line> = Vec::new();
    let mut line_shares = priced.shares.iter();
    for section in &priced.bill.sections {
        for line in &section.lines {
            let shares = line_shares.next().map(Vec::as_slice).unwrap_or_default();
            if section.name == SLA_SECTION {
                uplift_lines.push(line);
                continue;
            }
            attribute_line(&mut tiers, &tier_index, line, shares, minor_units)?;
        }
    }
    for line in uplift_lines {
        attribute_uplift(&mut tiers, line, ctx.settings.sla, minor_units)?;
    }
    Ok(tiers)
}

/// Splits a line's amount over the tiers whose resources it holds, by quantity.
fn attribute_line(
    tiers: &mut [EstimateTier],
    tier_index: &BTreeMap<&str, usize>,
    line: &Line,
    shares: &[Share<'_>],
    minor_units: u32,
) -> Result<(), Overflow> {
    let mut per_tier: BTreeMap<usize, Decimal> = BTreeMap::new();
    for s in shares {
        let idx = tier_index.get(s.project).copied().unwrap_or(0);
        let q = per_tier.entry(idx).or_default();
        *q = exact::add(*q, s.quantity, "tier quantity")?;
    }
    let idxs: Vec<usize> = per_tier.keys().copied().collect();
    let weights: Vec<Decimal> = per_tier.values().copied().collect();
    let parts = allocate(line.amount, &weights, minor_units);
    for ((idx, q), monthly) in idxs.into_iter().zip(weights).zip(parts) {
        tiers[idx].lines.push(EstimateLine {
            description: line.description.clone(),
            product: line.product.clone(),
            category: line.category,
            quantity: q,
            unit: line.unit.clone(),
            unit_price: line.unit_price,
            per: line.per,
            monthly,
            hourly: Decimal::ZERO,
            yearly: exact::mul(monthly, Decimal::from(12), "yearly amount")?,
        });
    }
    Ok(())
}

/// Splits the SLA uplift over the tiers in proportion to their covered charges.
fn attribute_uplift(
    tiers: &mut [EstimateTier],
    line: &Line,
    sla: Option<&SlaTier>,
    minor_units: u32,
) -> Result<(), Overflow> {
    let covered = tiers
        .iter()
        .map(|t| {
            exact::sum(
                t.lines
                    .iter()
                    .filter(|l| sla.is_some_and(|s| s.covers.contains(&l.category)))
                    .map(|l| l.monthly),
                "covered charges",
            )
        })
        .collect::<Result<Vec<Decimal>, Overflow>>()?;
    let parts = allocate(line.amount, &covered, minor_units);
    for (t, monthly) in tiers.iter_mut().zip(parts) {
        if !monthly.is_zero() {
            t.lines.push(EstimateLine {
                description: line.description.clone(),
                product: line.product.clone(),
                category: line.category,
                quantity: Decimal::ONE,
                unit: line.unit.clone(),
                unit_price: monthly,
                per: Decimal::ONE,
                monthly,
                hourly: Decimal::ZERO,
                yearly: exact::mul(monthly, Decimal::from(12), "yearly amount")?,
            });
        }
    }
    Ok(())
}

/// The estimate's figures from its tiers and month bill: hourly amounts (the subtotal's hourly
/// rate spread over lines by their monthly amounts, so that hourly columns add up too), tier
/// and category totals, yearly and term totals. `first` is the first month's bill total.
fn summarize(
    ctx: &Context<'_>,
    mut tiers: Vec<EstimateTier>,
    bill: Bill,
    first: Decimal,
    month_totals: &[Option<Decimal>],
) -> Result<Estimate, Overflow> {
    let catalog = ctx.settings.catalog;
    let currency = &ctx.settings.currency;
    let hpm = catalog.hours_per_month;
    let hourly_scale = currency.minor_units + HOURLY_EXTRA_DIGITS;
    let subtotal = bill.subtotal;
    // Per hour: finer than the minor unit, rounded in the catalog's own mode (as every amount).
    let hourly_subtotal =
        currency.round_to(exact::div(subtotal, hpm, "hourly amount")?, hourly_scale);
    let all_monthly: Vec<Decimal> = tiers
        .iter()
        .flat_map(|t| t.lines.iter().map(|l| l.monthly))
        .collect();
    let mut hourly_parts = allocate(hourly_subtotal, &all_monthly, hourly_scale).into_iter();
    let mut categories: BTreeMap<Category, Decimal> = BTreeMap::new();
    for t in &mut tiers {
        for l in &mut t.lines {
            l.hourly = hourly_parts.next().unwrap_or_default();
            let c = categories.entry(l.category).or_default();
            *c = exact::add(*c, l.monthly, "category total")?;
        }
        t.monthly = exact::sum(t.lines.iter().map(|l| l.monthly), "tier total")?;
        t.hourly = exact::sum(t.lines.iter().map(|l| l.hourly), "tier total")?;
        t.yearly = exact::sum(t.lines.iter().map(|l| l.yearly), "tier total")?;
    }
    let months = ctx.settings.term.map(|t| t.months);
    let monthly_total = bill.total;
    let one_time_total = exact::sub(first, bill.total, "one-time fees")?;
    // Every month's invoice total (the first without its one-time fees), over the year and
    // the term: each month's own, so that a coupon or promotion counts only while valid.
    let term_months = months.unwrap_or(1) as usize;
    let (mut yearly, mut term) = (Decimal::ZERO, Decimal::ZERO);
    for (m, total) in month_totals.iter().enumerate() {
        let total = total.unwrap_or(monthly_total);
        if m < 12 {
            yearly = exact::add(yearly, total, "months total")?;
        }
        if m < term_months {
            term = exact::add(term, total, "months total")?;
        }
    }
    Ok(Estimate {
        currency: currency.code.clone(),
        catalog_id: catalog.id.clone(),
        catalog_version: catalog.version.clone(),
        hours_per_month: hpm,
        tiers,
        categories: categories
            .into_iter()
            .map(|(category, monthly)| CategoryTotal { category, monthly })
            .collect(),
        subtotal,
        discounts: bill.discounts.clone(),
        sla_credits: bill.sla_credits.clone(),
        taxes: bill.taxes.clone(),
        monthly_total,
        hourly_total: currency.round_to(
            exact::div(monthly_total, hpm, "hourly amount")?,
            hourly_scale,
        ),
        yearly_total: yearly,
        one_time_total,
        first_month_total: first,
        term_months: months,
        term_total: exact::add(term, one_time_total, "term total")?,
        bill,
    })
}

/// The month of usage a quote stands for, grouped into lines as an invoice groups usage: one
/// share per component, its project the tier's name; services become subscription charges.
fn quote_groups<'a>(
    settings: &Settings<'a>,
    quote: &'a Quote,
) -> Result<(Groups<'a>, Vec<SubscriptionCharge>), PricingError> {
    let mut month = QuoteMonth {
        catalog: settings.catalog,
        region: settings.default_region(),
        unavailable: settings.region.map(|r| r.unavailable.as_slice()),
        day: quote.at.date_naive(),
        groups: BTreeMap::new(),
        subs: Vec::new(),
    };
    for (tier_no, tier) in quote.tiers.iter().enumerate() {
        for (component_no, c) in tier.components.iter().enumerate() {
            let path = QuotePath {
                tier: tier_no,
                component: component_no,
                field: None,
            };
            month.component(tier, path, c)?;
        }
    }
    Ok((month.groups, month.subs))
}

/// `a x b` for a component's quantity, or the quantity is too large for one line.
fn times(a: Decimal, b: Decimal, path: QuotePath) -> Result<Decimal, PricingError> {
    exact::mul(a, b, "quantity").map_err(|_| PricingError::QuantityTooLarge {
        quantity: a,
        max: line_quantity_max(),
        path,
    })
}

/// What a component's usage is measured by: the product's meter with a role (a VM's running
/// hours), or a meter named by the component.
#[derive(Clone, Copy)]
enum Measured<'q> {
    Role(MeterRole, Unit),
    Meter(&'q str),
}

/// A quote's month of usage as it is built, component by component.
struct QuoteMonth<'a> {
    catalog: &'a Catalog,
    region: &'a str,
    /// The products the quote's region does not sell.
    unavailable: Option<&'a [String]>,
    day: chrono::NaiveDate,
    groups: Groups<'a>,
    subs: Vec<SubscriptionCharge>,
}

impl<'a> QuoteMonth<'a> {
    fn component(
        &mut self,
        tier: &'a QuoteTier,
        path: QuotePath,
        c: &'a Component,
    ) -> Result<(), PricingError> {
        use ComponentField as F;
        use MeterRole as R;
        let hpm = self.catalog.hours_per_month;
        match c {
            Component::Compute {
                offering,
                count,
                hours_per_month,
                stopped_hours_per_month,
            } => {
                let n = Decimal::from(*count);
                let hours = times(n, hours_per_month.unwrap_or(hpm), path.at(F::Offering))?;
                let running = Measured::Role(R::Running, Unit::Hours);
                self.usage(tier, path, F::Offering, offering, running, hours)?;
                if let Some(stopped) = stopped_hours_per_month {
                    let m = Measured::Role(R::Stopped, Unit::Hours);
                    self.usage(
                        tier,
                        path,
                        F::StoppedHoursPerMonth,
                        offering,
                        m,
                        times(n, *stopped, path.at(F::StoppedHoursPerMonth))?,
                    )?;
                }
            }
            Component::Volume {
                offering,
                size_gb,
                count,
            } => {
                let at = path.at(F::Offering);
                let gb_hours = times(times(*size_gb, Decimal::from(*count), at)?, hpm, at)?;
                let storage = Measured::Role(R::Storage, Unit::GigabyteHours);
                self.usage(tier, path, F::Offering, offering, storage, gb_hours)?;
            }
            Component::Traffic {
                product,
                gb_in,
                gb_out,
            } => {
                let m = Measured::Role(R::TrafficIn, Unit::Gigabytes);
                self.usage(tier, path, F::GbIn, product, m, *gb_in)?;
                let m = Measured::Role(R::TrafficOut, Unit::Gigabytes);
                self.usage(tier, path, F::GbOut, product, m, *gb_out)?;
            }
            Component::Ip { product, count } => {
                let hours = times(Decimal::from(*count), hpm, path.at(F::Product))?;
                let m = Measured::Role(R::IpHours, Unit::Hours);
                self.usage(tier, path, F::Product, product, m, hours)?;
            }
            Component::Usage {
                product,
                meter,
                quantity,
            } => {
                let m = Measured::Meter(meter);
                self.usage(tier, path, F::Meter, product, m, *quantity)?;
            }
            Component::Service { product, quantity } => {
                self.service(tier, path, product, *quantity)?;
            }
        }
        Ok(())
    }

    /// The product a component names (an id or an alias), refused as rating would refuse it
    /// when the quote's region does not sell it.
    fn product(&self, key: &str, path: QuotePath) -> Result<&'a Product, PricingError> {
        let p = self
            .catalog
            .resolve_product(key)
            .ok_or_else(|| PricingError::UnknownProduct {
                id: key.to_string(),
                path,
            })?;
        if self.unavailable.is_some_and(|u| u.contains(&p.id)) {
            return Err(PricingError::NotSoldInRegion {
                product: p.id.clone(),
                region: self.region.to_string(),
                path,
            });
        }
        Ok(p)
    }

    /// Adds `quantity` of `product`'s `measured` meter, in the unit the component gives it in
    /// (a named meter's quantity is in the meter's own unit).
    fn usage(
        &mut self,
        tier: &'a QuoteTier,
        path: QuotePath,
        field: ComponentField,
        product: &str,
        measured: Measured<'_>,
        quantity: Decimal,
    ) -> Result<(), PricingError> {
        let at = path.at(field);
        let p = self.product(product, at)?;
        let meter = match measured {
            Measured::Role(role, _) => self.catalog.meter_for_role(&p.id, role),
            Measured::Meter(m) => p
                .charges
                .iter()
                .find(|c| c.meter == m)
                .and_then(|c| self.catalog.meter(&c.meter)),
        };
        let m = meter.ok_or_else(|| PricingError::NoPrice {
            product: p.id.clone(),
            needed: match measured {
                Measured::Role(role, _) => role.name().to_string(),
                Measured::Meter(m) => m.to_string(),
            },
            path: at,
        })?;
        if quantity.is_sign_negative() && !quantity.is_zero() {
            return Err(PricingError::NegativeQuantity { path });
        }
        if quantity.is_zero() {
            return Ok(());
        }
        let unit = match measured {
            Measured::Role(_, unit) => unit,
            Measured::Meter(_) => m.unit,
        };
        let quantity = match unit.convert(quantity, m.unit, self.catalog.hours_per_month) {
            Ok(q) if q <= line_quantity_max() => q,
            Ok(_) | Err(ConvertError::Overflow) => {
                return Err(PricingError::QuantityTooLarge {
                    quantity,
                    max: line_quantity_max(),
                    path: at,
                })
            }
            Err(ConvertError::Dimension) => {
                return Err(PricingError::UnitMismatch {
                    meter: m.id.clone(),
                    unit,
                    expected: m.unit,
                    path: at,
                })
            }
        };
        self.groups
            .entry((p.id.as_str(), m.id.as_str(), self.region))
            .or_default()
            .push(Share {
                project: &tier.name,
                resource: &tier.name,
                day: self.day,
                quantity,
                tags: &[],
            });
        Ok(())
    }

    /// A service or package subscription, for the whole month with its one-time fee.
    fn service(
        &mut self,
        tier: &QuoteTier,
        path: QuotePath,
        product: &str,
        quantity: u32,
    ) -> Result<(), PricingError> {
        let at = path.at(ComponentField::Product);
        let p = self.product(product, at)?;
        if p.fees().is_none() {
            return Err(PricingError::NotAService {
                product: p.id.clone(),
                path: at,
            });
        }
        if quantity > 0 {
            self.subs.push(SubscriptionCharge {
                subscription: format!("{}/{}", tier.name, path.component),
                project: tier.name.clone(),
                product: p.id.clone(),
                quantity: Decimal::from(quantity),
                days: Decimal::ONE,
                month_days: Decimal::ONE,
                one_time: true,
                day: self.day,
            });
        }
        Ok(())
    }
}
