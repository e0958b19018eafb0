//! Quotes (multi-tier apps as the storefront builds them) and their estimates, priced by the
//! invoice pipeline on a month of equivalent usage.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocate::allocate;
use crate::bill::{
    build, Adjustment, Bill, Context, Groups, Line, Share, SubscriptionCharge, TaxLine, SLA_SECTION,
};
use crate::catalog::{Catalog, Category, MeterRole};
use crate::error::PricingError;
use crate::invoice::discounts_in_order;
use crate::unit::Unit;

/// Most components one quote may have. The storefront's largest apps have a few hundred lines;
/// the bound keeps a shared link and an estimate's recompute small.
pub const QUOTE_COMPONENTS_MAX: usize = 2_000;

/// Account id the estimate's usage is booked under.
pub const QUOTE_ACCOUNT: &str = "quote";

/// An app as the storefront builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    #[serde(default)]
    pub name: String,
    /// The instant prices and promotions are taken at (the caller's clock, never ours).
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_jurisdiction: Option<String>,
    pub tiers: Vec<QuoteTier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteTier {
    pub name: String,
    pub components: Vec<Component>,
}

/// One thing in a tier. Hours default to the catalog's month (24/7).
///
/// JSON: the `type` tag beside the variant's fields (`{"type": "ip", "product": "ip", "count": 2}`);
/// read through [`ComponentShape`] (internally tagged enums buffer in serde's `Content`, see
/// `crate::shape`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "ComponentShape"
)]
pub enum Component {
    Compute {
        offering: String,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hours_per_month: Option<Decimal>,
        /// Hours a month the VMs are stopped (priced at the stopped rate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped_hours_per_month: Option<Decimal>,
    },
    Volume {
        offering: String,
        size_gb: Decimal,
        count: u32,
    },
    Traffic {
        product: String,
        #[serde(default)]
        gb_in: Decimal,
        #[serde(default)]
        gb_out: Decimal,
    },
    Ip {
        product: String,
        count: u32,
    },
    /// A service or package subscription.
    Service {
        product: String,
        quantity: u32,
    },
    /// Any meter of any product, by quantity in the meter's unit.
    Usage {
        product: String,
        meter: String,
        quantity: Decimal,
    },
}

/// Every field a [`Component`] may have in JSON, read in one pass; [`Component::try_from`]
/// checks that only the tagged variant's fields are given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentShape {
    #[serde(rename = "type")]
    kind: ComponentTag,
    offering: Option<String>,
    product: Option<String>,
    meter: Option<String>,
    count: Option<u32>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    hours_per_month: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    stopped_hours_per_month: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    size_gb: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    gb_in: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    gb_out: Option<Decimal>,
    quantity: Option<QuantityValue>,
}

/// The `type` tag of a [`Component`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ComponentTag {
    Compute,
    Volume,
    Traffic,
    Ip,
    Service,
    Usage,
}

/// `quantity` is a `u32` for a service and a `Decimal` for usage, and the tag may come after
/// it: a JSON unsigned integer is kept as such, a string or a negative integer is read by
/// `Decimal`'s own impl, and a number with a fraction is refused (see `crate::shape::Exact`).
enum QuantityValue {
    Whole(u64),
    Exact(Decimal),
}

impl<'de> Deserialize<'de> for QuantityValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<QuantityValue, D::Error> {
        use crate::shape::{exact, FLOAT_REFUSED};
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = QuantityValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<QuantityValue, E> {
                Ok(QuantityValue::Whole(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<QuantityValue, E> {
                Ok(QuantityValue::Exact(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<QuantityValue, E> {
                Err(E::custom(FLOAT_REFUSED))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<QuantityValue, E> {
                exact(v).map(|e| QuantityValue::Exact(e.0))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl TryFrom<ComponentShape> for Component {
    type Error = String;

    fn try_from(s: ComponentShape) -> Result<Component, String> {
        use crate::shape::{only, required};
        let fields = [
            ("offering", s.offering.is_some()),
            ("product", s.product.is_some()),
            ("meter", s.meter.is_some()),
            ("count", s.count.is_some()),
            ("hours_per_month", s.hours_per_month.is_some()),
            (
                "stopped_hours_per_month",
                s.stopped_hours_per_month.is_some(),
            ),
            ("size_gb", s.size_gb.is_some()),
            ("gb_in", s.gb_in.is_some()),
            ("gb_out", s.gb_out.is_some()),
            ("quantity", s.quantity.is_some()),
        ];
        Ok(match s.kind {
            ComponentTag::Compute => {
                only(
                    &fields,
                    &[
                        "offering",
                        "count",
                        "hours_per_month",
                        "stopped_hours_per_month",
                    ],
                )?;
                Component::Compute {
                    offering: required(s.offering, "offering")?,
                    count: required(s.count, "count")?,
                    hours_per_month: s.hours_per_month,
                    stopped_hours_per_month: s.stopped_hours_per_month,
                }
            }
            ComponentTag::Volume => {
                only(&fields, &["offering", "size_gb", "count"])?;
                Component::Volume {
                    offering: required(s.offering, "offering")?,
                    size_gb: required(s.size_gb, "size_gb")?,
                    count: required(s.count, "count")?,
                }
            }
            ComponentTag::Traffic => {
                only(&fields, &["product", "gb_in", "gb_out"])?;
                Component::Traffic {
                    product: required(s.product, "product")?,
                    gb_in: s.gb_in.unwrap_or_default(),
                    gb_out: s.gb_out.unwrap_or_default(),
                }
            }
            ComponentTag::Ip => {
                only(&fields, &["product", "count"])?;
                Component::Ip {
                    product: required(s.product, "product")?,
                    count: required(s.count, "count")?,
                }
            }
            ComponentTag::Service => {
                only(&fields, &["product", "quantity"])?;
                let quantity = match required(s.quantity, "quantity")? {
                    QuantityValue::Whole(n) => u32::try_from(n).ok(),
                    QuantityValue::Exact(_) => None,
                };
                Component::Service {
                    product: required(s.product, "product")?,
                    quantity: quantity.ok_or("invalid type for `quantity`, expected u32")?,
                }
            }
            ComponentTag::Usage => {
                only(&fields, &["product", "meter", "quantity"])?;
                let quantity = match required(s.quantity, "quantity")? {
                    QuantityValue::Whole(n) => Decimal::from(n),
                    QuantityValue::Exact(d) => d,
                };
                Component::Usage {
                    product: required(s.product, "product")?,
                    meter: required(s.meter, "meter")?,
                    quantity,
                }
            }
        })
    }
}

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
    /// Twelve monthly invoices.
    pub yearly_total: Decimal,
    /// One-time fees (tax included) on top of the first month.
    pub one_time_total: Decimal,
    /// What the first invoice comes to: `monthly_total + one_time_total`.
    pub first_month_total: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_months: Option<u32>,
    /// The whole commitment: monthly total x term months + one-time fees.
    pub term_total: Decimal,
    /// The month bill the estimate was derived from.
    pub bill: Bill,
}

/// Prices a quote. The monthly total is the invoice total of a month of equivalent usage:
/// `count x hours` running hours per VM, `size x hours` GB-hours per volume, and so on.
pub fn estimate(catalog: &Catalog, quote: &Quote) -> Result<Estimate, PricingError> {
    let components: usize = quote.tiers.iter().map(|t| t.components.len()).sum();
    if components > QUOTE_COMPONENTS_MAX {
        return Err(PricingError::InvalidInput {
            path: "quote.tiers".into(),
            message: format!(
                "{components} components, more than the limit of {QUOTE_COMPONENTS_MAX}"
            ),
        });
    }
    let (currency, fx) = Context::currency_for(catalog, quote.currency.as_deref())?;
    let check = |what: &'static str, found: bool, id: &Option<String>, path: &str| match id {
        Some(id) if !found => Err(PricingError::UnknownReference {
            what,
            id: id.clone(),
            path: format!("quote.{path}"),
        }),
        _ => Ok(()),
    };
    let region = quote.region.as_deref().and_then(|r| catalog.region(r));
    check("region", region.is_some(), &quote.region, "region")?;
    let sla = quote.sla_tier.as_deref().and_then(|s| catalog.sla_tier(s));
    check("SLA tier", sla.is_some(), &quote.sla_tier, "sla_tier")?;
    let tax = quote
        .tax_jurisdiction
        .as_deref()
        .and_then(|t| catalog.tax_jurisdiction(t));
    check(
        "tax jurisdiction",
        tax.is_some(),
        &quote.tax_jurisdiction,
        "tax_jurisdiction",
    )?;
    let term = quote.term.as_deref().and_then(|t| catalog.term(t));
    check("term", term.is_some(), &quote.term, "term")?;

    let (groups, subs) = quote_groups(catalog, quote)?;
    let ctx = Context {
        catalog,
        currency: currency.clone(),
        fx,
        default_region: region.map(|r| r.id.clone()).unwrap_or_default(),
        sla,
        availability_pct: None,
        tax,
        discounts: discounts_in_order(catalog, quote.term.as_deref(), &[]),
        account: QUOTE_ACCOUNT.to_string(),
        span: (quote.at, quote.at),
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
        Some(build(&ctx, groups.clone(), &subs)?.bill.total)
    } else {
        None
    };
    let priced = build(&ctx, groups, &recurring)?;
    let bill = priced.bill;
    let first = first.unwrap_or(bill.total);

    let hpm = catalog.hours_per_month;
    let hourly_scale = currency.minor_units + HOURLY_EXTRA_DIGITS;
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

    // Attribute each bill line to tiers by the quantity each tier's resources hold.
    let mut uplift_lines: Vec<&Line> = Vec::new();
    let mut line_shares = priced.shares.iter();
    for section in &bill.sections {
        for line in &section.lines {
            let shares = line_shares.next().map(Vec::as_slice).unwrap_or_default();
            if section.name == SLA_SECTION {
                uplift_lines.push(line);
                continue;
            }
            let mut per_tier: BTreeMap<usize, Decimal> = BTreeMap::new();
            for s in shares {
                let idx = tier_index.get(s.project).copied().unwrap_or(0);
                *per_tier.entry(idx).or_default() += s.quantity;
            }
            let idxs: Vec<usize> = per_tier.keys().copied().collect();
            let weights: Vec<Decimal> = per_tier.values().copied().collect();
            let parts = allocate(line.amount, &weights, currency.minor_units);
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
                    yearly: monthly * Decimal::from(12),
                });
            }
        }
    }
    // The SLA uplift goes to tiers in proportion to their covered charges.
    for line in uplift_lines {
        let covered: Vec<Decimal> = tiers
            .iter()
            .map(|t| {
                t.lines
                    .iter()
                    .filter(|l| sla.is_some_and(|s| s.covers.contains(&l.category)))
                    .map(|l| l.monthly)
                    .sum()
            })
            .collect();
        let parts = allocate(line.amount, &covered, currency.minor_units);
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
                    yearly: monthly * Decimal::from(12),
                });
            }
        }
    }
    // Hourly amounts: the subtotal's hourly rate, spread over lines by their monthly amounts,
    // so that hourly columns add up too.
    let subtotal = bill.subtotal;
    let hourly_subtotal = (subtotal / hpm).round_dp(hourly_scale);
    let all_monthly: Vec<Decimal> = tiers
        .iter()
        .flat_map(|t| t.lines.iter().map(|l| l.monthly))
        .collect();
    let mut hourly_parts = allocate(hourly_subtotal, &all_monthly, hourly_scale).into_iter();
    let mut categories: BTreeMap<Category, Decimal> = BTreeMap::new();
    for t in &mut tiers {
        for l in &mut t.lines {
            l.hourly = hourly_parts.next().unwrap_or_default();
            *categories.entry(l.category).or_default() += l.monthly;
        }
        t.monthly = t.lines.iter().map(|l| l.monthly).sum();
        t.hourly = t.lines.iter().map(|l| l.hourly).sum();
        t.yearly = t.lines.iter().map(|l| l.yearly).sum();
    }
    let months = term.map(|t| t.months);
    let monthly_total = bill.total;
    let one_time_total = first - bill.total;
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
        hourly_total: (monthly_total / hpm).round_dp(hourly_scale),
        yearly_total: monthly_total * Decimal::from(12),
        one_time_total,
        first_month_total: first,
        term_months: months,
        term_total: monthly_total * Decimal::from(months.unwrap_or(1)) + one_time_total,
        bill,
    })
}

/// The month of usage a quote stands for, grouped into lines as an invoice groups usage: one
/// share per component, its project the tier's name.
pub(crate) fn quote_groups<'a>(
    catalog: &'a Catalog,
    quote: &'a Quote,
) -> Result<(Groups<'a>, Vec<SubscriptionCharge>), PricingError> {
    let hpm = catalog.hours_per_month;
    let day = quote.at.date_naive();
    let region = quote.region.as_deref().unwrap_or_default();
    let mut groups: Groups<'a> = BTreeMap::new();
    let mut subs = Vec::new();
    for (ti, tier) in quote.tiers.iter().enumerate() {
        for (ci, c) in tier.components.iter().enumerate() {
            let path = || format!("quote.tiers[{ti}].components[{ci}]");
            let mut add = |product: &str,
                           role: Option<MeterRole>,
                           meter: Option<&str>,
                           quantity: Decimal,
                           unit: Unit,
                           field: &str|
             -> Result<(), PricingError> {
                let p = catalog.resolve_product(product).ok_or_else(|| {
                    PricingError::UnknownReference {
                        what: "product",
                        id: product.to_string(),
                        path: format!("{}.{field}", path()),
                    }
                })?;
                // The same rule rating applies: a product not sold in the region is refused.
                if catalog
                    .region(region)
                    .is_some_and(|r| r.unavailable.contains(&p.id))
                {
                    return Err(PricingError::InvalidInput {
                        path: format!("{}.{field}", path()),
                        message: format!("product `{}` is not sold in region `{region}`", p.id),
                    });
                }
                let m = match (role, meter) {
                    (Some(role), _) => catalog.meter_for_role(&p.id, role),
                    (None, Some(m)) => p
                        .charges
                        .iter()
                        .find(|c| c.meter == m)
                        .and_then(|c| catalog.meter(&c.meter)),
                    (None, None) => None,
                }
                .ok_or_else(|| PricingError::InvalidInput {
                    path: format!("{}.{field}", path()),
                    message: format!(
                        "product `{}` has no price for {}",
                        p.id,
                        role.map_or(meter.unwrap_or_default().to_string(), |r| r
                            .name()
                            .to_string())
                    ),
                })?;
                if quantity.is_sign_negative() && !quantity.is_zero() {
                    return Err(PricingError::InvalidInput {
                        path: path(),
                        message: "quantities cannot be negative".into(),
                    });
                }
                if quantity.is_zero() {
                    return Ok(());
                }
                let unit = if role.is_none() { m.unit } else { unit };
                let quantity = unit.convert(quantity, m.unit, hpm).ok_or_else(|| {
                    PricingError::InvalidInput {
                        path: format!("{}.{field}", path()),
                        message: format!(
                            "meter `{}` is measured in {}, not {}",
                            m.id,
                            m.unit.label(),
                            unit.label()
                        ),
                    }
                })?;
                groups
                    .entry((p.id.as_str(), m.id.as_str(), region))
                    .or_default()
                    .push(Share {
                        project: &tier.name,
                        resource: &tier.name,
                        day,
                        quantity,
                    });
                Ok(())
            };
            match c {
                Component::Compute {
                    offering,
                    count,
                    hours_per_month,
                    stopped_hours_per_month,
                } => {
                    let n = Decimal::from(*count);
                    add(
                        offering,
                        Some(MeterRole::Running),
                        None,
                        n * hours_per_month.unwrap_or(hpm),
                        Unit::Hours,
                        "offering",
                    )?;
                    if let Some(stopped) = stopped_hours_per_month {
                        add(
                            offering,
                            Some(MeterRole::Stopped),
                            None,
                            n * *stopped,
                            Unit::Hours,
                            "stopped_hours_per_month",
                        )?;
                    }
                }
                Component::Volume {
                    offering,
                    size_gb,
                    count,
                } => {
                    add(
                        offering,
                        Some(MeterRole::Storage),
                        None,
                        *size_gb * Decimal::from(*count) * hpm,
                        Unit::GigabyteHours,
                        "offering",
                    )?;
                }
                Component::Traffic {
                    product,
                    gb_in,
                    gb_out,
                } => {
                    add(
                        product,
                        Some(MeterRole::TrafficIn),
                        None,
                        *gb_in,
                        Unit::Gigabytes,
                        "gb_in",
                    )?;
                    add(
                        product,
                        Some(MeterRole::TrafficOut),
                        None,
                        *gb_out,
                        Unit::Gigabytes,
                        "gb_out",
                    )?;
                }
                Component::Ip { product, count } => {
                    add(
                        product,
                        Some(MeterRole::IpHours),
                        None,
                        Decimal::from(*count) * hpm,
                        Unit::Hours,
                        "product",
                    )?;
                }
                Component::Usage {
                    product,
                    meter,
                    quantity,
                } => {
                    add(product, None, Some(meter), *quantity, Unit::Units, "meter")?;
                }
                Component::Service { product, quantity } => {
                    let p = catalog.resolve_product(product).ok_or_else(|| {
                        PricingError::UnknownReference {
                            what: "product",
                            id: product.clone(),
                            path: format!("{}.product", path()),
                        }
                    })?;
                    if catalog
                        .region(region)
                        .is_some_and(|r| r.unavailable.contains(&p.id))
                    {
                        return Err(PricingError::InvalidInput {
                            path: format!("{}.product", path()),
                            message: format!("product `{}` is not sold in region `{region}`", p.id),
                        });
                    }
                    if p.fees().is_none() {
                        return Err(PricingError::InvalidInput {
                            path: format!("{}.product", path()),
                            message: format!("product `{}` is not a service or package", p.id),
                        });
                    }
                    if *quantity > 0 {
                        subs.push(SubscriptionCharge {
                            subscription: format!("{}/{ci}", tier.name),
                            project: tier.name.clone(),
                            product: p.id.clone(),
                            quantity: Decimal::from(*quantity),
                            days: Decimal::ONE,
                            month_days: Decimal::ONE,
                            one_time: true,
                            day,
                        });
                    }
                }
            }
        }
    }
    Ok((groups, subs))
}
