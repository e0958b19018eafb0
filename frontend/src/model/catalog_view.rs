//! The catalog browser: products filtered by text, category and region, with their prices per
//! hour and per month in the chosen currency and their units spelled out.

use pricing::catalog::{Catalog, Category, Meter, Product, ProductKind};
use pricing::price::{Price, PriceModel};
use pricing::unit::Unit;
use rust_decimal::Decimal;

use super::format;

/// Longest search text used; longer input is cut (it cannot match a longer product text anyway).
pub const QUERY_LEN_MAX: usize = 100;

/// What the customer filters by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub query: String,
    pub category: Option<Category>,
}

/// One price of a product (one meter, or its fees), written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceText {
    /// What is charged (`Running time`, `Monthly fee`).
    pub what: String,
    /// Price per hour of use, for time-based meters.
    pub per_hour: Option<String>,
    /// Price for a month of use (the catalog's month), for time-based meters and fees.
    pub per_month: Option<String>,
    /// The full rule with its unit: `£2.20 per hour`, `£0.05 per 1,000,000 requests`.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: Category,
    /// What the product is: `1 vCPU · 512 MB RAM · 2,400 MHz`.
    pub specs: String,
    pub prices: Vec<PriceText>,
}

/// The products shown and how many the region hides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub rows: Vec<ProductRow>,
    pub hidden_by_region: usize,
    pub currency: String,
}

/// Categories that have at least one product, in the catalog's category order.
pub fn categories(catalog: &Catalog) -> Vec<Category> {
    Category::ALL
        .into_iter()
        .filter(|c| catalog.products.iter().any(|p| p.category == *c))
        .collect()
}

/// Lists the products of `catalog` sold in `region` that match `filter`, priced in `currency`
/// (the catalog's own when `None` or when there is no rate for it).
pub fn listing(
    catalog: &Catalog,
    region: Option<&str>,
    currency: Option<&str>,
    filter: &Filter,
) -> Listing {
    let (code, fx) = currency_and_rate(catalog, currency);
    let unavailable = region
        .and_then(|r| catalog.region(r))
        .map(|r| r.unavailable.as_slice())
        .unwrap_or_default();
    // ASCII case folding: Unicode's tables would add kilobytes to the app for product names
    // that are ASCII in practice; other letters still match exactly.
    let query: String = filter
        .query
        .trim()
        .to_ascii_lowercase()
        .chars()
        .take(QUERY_LEN_MAX)
        .collect();
    let mut hidden_by_region = 0;
    let mut rows = Vec::new();
    for p in &catalog.products {
        if filter.category.is_some_and(|c| c != p.category) {
            continue;
        }
        let specs = specs(p);
        if !query.is_empty() {
            let hay = format!(
                "{} {} {} {} {}",
                p.id,
                p.name,
                p.description,
                p.category.label(),
                specs
            )
            .to_ascii_lowercase();
            if !query.split_whitespace().all(|w| hay.contains(w)) {
                continue;
            }
        }
        if unavailable.contains(&p.id) {
            hidden_by_region += 1;
            continue;
        }
        rows.push(ProductRow {
            id: p.id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            category: p.category,
            specs,
            prices: prices(catalog, region, p, &code, fx),
        });
    }
    Listing {
        rows,
        hidden_by_region,
        currency: code,
    }
}

/// The currency prices are shown in and its rate from the catalog currency: `currency` when the
/// catalog has a fixed rate for it (the engine's rule, `pricing::settings::exchange`), else the
/// catalog's own.
fn currency_and_rate(catalog: &Catalog, currency: Option<&str>) -> (String, Decimal) {
    match pricing::settings::exchange(catalog, currency) {
        Ok((c, fx)) => (c.code, fx),
        Err(_) => (catalog.currency.code.clone(), Decimal::ONE),
    }
}

fn specs(p: &Product) -> String {
    match &p.kind {
        ProductKind::Compute {
            vcpu,
            ram_mb,
            cpu_mhz,
        } => {
            let ram = if ram_mb % 1024 == 0 {
                format!("{} GB RAM", ram_mb / 1024)
            } else {
                format!("{ram_mb} MB RAM")
            };
            let mut s = format!("{vcpu} vCPU · {ram}");
            if let Some(mhz) = cpu_mhz {
                s.push_str(&format!(" · {} MHz", format::quantity(Decimal::from(*mhz))));
            }
            s
        }
        ProductKind::Storage { tier, size_gb } => {
            let mut parts = Vec::new();
            if let Some(size) = size_gb {
                parts.push(format!("{} GB", format::quantity(*size)));
            }
            if let Some(t) = tier {
                parts.push(format::uppercase(t));
            }
            parts.join(" · ")
        }
        ProductKind::Package { services, .. } => format!("Includes {}", services.join(", ")),
        _ => String::new(),
    }
}

fn prices(
    catalog: &Catalog,
    region: Option<&str>,
    p: &Product,
    currency: &str,
    fx: Decimal,
) -> Vec<PriceText> {
    let mut out = Vec::new();
    if let Some(f) = p.fees() {
        let monthly = format::money_scaled(f.monthly * fx, currency);
        let mut detail = format!("{monthly} per month");
        if !f.one_time.is_zero() {
            detail.push_str(&format!(
                " + {} once",
                format::money_scaled(f.one_time * fx, currency)
            ));
        }
        out.push(PriceText {
            what: "Subscription".into(),
            per_hour: None,
            per_month: Some(monthly),
            detail,
        });
    }
    for ch in &p.charges {
        let (Some(meter), Some(price)) = (
            catalog.meter(&ch.meter),
            catalog.price_of(region, &p.id, &ch.meter),
        ) else {
            continue;
        };
        out.push(price_text(catalog, meter, price, currency, fx));
    }
    out
}

/// The unit a price is "per", spelled for people: `hour`, `GB·hour`, `1,000,000 requests`.
fn per_unit_label(meter: &Meter) -> String {
    let unit = match (meter.unit, meter.unit_name.as_deref()) {
        (_, Some(name)) if name != meter.unit.label() => name.to_string(),
        (Unit::Hours, _) => "hour".into(),
        (Unit::GigabyteHours, _) => "GB·hour".into(),
        (Unit::GigabyteMonths, _) => "GB·month".into(),
        (Unit::Gigabytes, _) => "GB".into(),
        (u, _) => u.label().to_string(),
    };
    if meter.measurement_unit == Decimal::ONE {
        unit
    } else {
        format!("{} {unit}", format::quantity(meter.measurement_unit))
    }
}

fn price_text(
    catalog: &Catalog,
    meter: &Meter,
    price: &Price,
    currency: &str,
    fx: Decimal,
) -> PriceText {
    let per = per_unit_label(meter);
    let money = |d: Decimal| format::unit_price(d * fx, currency);
    // A month of a time-based price is an amount the invoice bills (730 h of it): rounded as
    // the engine rounds a line, in the catalog's mode (0.0345 x 730 = 25.185 is 25.18 in a
    // half-even catalog, not 25.19).
    let month =
        |d: Decimal| match pricing::money::Currency::new(currency, catalog.currency.rounding) {
            Ok(c) => format::money(c.round(d), currency),
            Err(_) => format::money_scaled(d, currency),
        };
    let hpm = catalog.hours_per_month;
    let mut detail = match &price.model {
        PriceModel::PerUnit { unit_price } => format!("{} per {per}", money(*unit_price)),
        PriceModel::Graduated { tiers } | PriceModel::Volume { tiers } => {
            let mut from = Decimal::ZERO;
            let parts: Vec<String> = tiers
                .iter()
                .map(|t| {
                    let p = format!("{} per {per}", money(t.unit_price));
                    let s = match t.up_to {
                        Some(up) => format!("{p} up to {}", format::quantity(up)),
                        None if from.is_zero() => p,
                        None => format!("{p} above {}", format::quantity(from)),
                    };
                    from = t.up_to.unwrap_or(from);
                    s
                })
                .collect();
            let kind = if matches!(price.model, PriceModel::Volume { .. }) {
                "volume pricing"
            } else {
                "graduated"
            };
            format!("{} ({kind})", parts.join("; "))
        }
        PriceModel::Package {
            block_size,
            block_price,
        } => format!(
            "{} per block of {} {}",
            money(*block_price),
            format::quantity(*block_size),
            meter.unit_label()
        ),
    };
    if !price.included.is_zero() {
        detail.push_str(&format!(
            "; first {} {} a month included",
            format::quantity(price.included),
            meter.unit_label()
        ));
    }
    if let Some(min) = price.minimum {
        detail.push_str(&format!("; at least {} a month", money(min)));
    }
    // Per-hour and per-month columns only where they are exact: a plain per-unit price of a
    // time-based meter.
    let (per_hour, per_month) = match (&price.model, price.minimum, meter.unit) {
        (PriceModel::PerUnit { unit_price }, None, Unit::Hours | Unit::GigabyteHours)
            if price.included.is_zero() && meter.measurement_unit == Decimal::ONE =>
        {
            let suffix = if meter.unit == Unit::GigabyteHours {
                " per GB"
            } else {
                ""
            };
            (
                Some(format!("{}{suffix}", money(*unit_price))),
                Some(format!("{}{suffix}", month(*unit_price * fx * hpm))),
            )
        }
        (PriceModel::PerUnit { unit_price }, None, Unit::GigabyteMonths)
            if price.included.is_zero() && meter.measurement_unit == Decimal::ONE =>
        {
            (
                Some(format!("{} per GB", money(*unit_price / hpm))),
                Some(format!("{} per GB", month(*unit_price * fx))),
            )
        }
        _ => (None, None),
    };
    PriceText {
        what: meter.name.clone(),
        per_hour,
        per_month,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::cloudstack;

    fn names(l: &Listing) -> Vec<&str> {
        l.rows.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn filters() {
        let c = cloudstack();
        let all = listing(&c, Some("lon1"), None, &Filter::default());
        assert_eq!(all.rows.len(), c.products.len());
        let f = Filter {
            query: "  SATA  disk ".into(),
            category: None,
        };
        assert_eq!(
            names(&listing(&c, None, None, &f)),
            ["small-disk", "medium-disk", "large-disk"]
        );
        let f = Filter {
            query: String::new(),
            category: Some(Category::Service),
        };
        let gva = listing(&c, Some("gva1"), None, &f);
        assert_eq!(names(&gva), ["daily-backup", "monitoring"]);
        assert_eq!(gva.hidden_by_region, 1);
        assert_eq!(categories(&c).len(), 9, "{:?}", categories(&c));
    }

    /// A month of 0.0345/h is 730 x 0.0345 = 25.185: the invoice's line in a half-even catalog
    /// is 25.18 (to the even cent), in a half-up one 25.19; the price list shows what the
    /// invoice bills.
    #[test]
    fn a_month_of_a_price_is_rounded_in_the_catalogs_mode() {
        for (mode, shown) in [
            (pricing::money::RoundingMode::HalfEven, "£25.18"),
            (pricing::money::RoundingMode::HalfUp, "£25.19"),
        ] {
            let mut c = cloudstack();
            c.currency.rounding = mode;
            let copper = c.products.iter_mut().find(|p| p.id == "copper").unwrap();
            copper.charges[0].price.model = PriceModel::PerUnit {
                unit_price: "0.0345".parse().unwrap(),
            };
            let l = listing(&c, Some("lon1"), None, &Filter::default());
            let copper = l.rows.iter().find(|r| r.id == "copper").unwrap();
            assert_eq!(
                copper.prices[0].per_month.as_deref(),
                Some(shown),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn prices_with_units_in_the_chosen_currency() {
        let c = cloudstack();
        let l = listing(&c, Some("lon1"), None, &Filter::default());
        let row = |id: &str| l.rows.iter().find(|r| r.id == id).unwrap();
        let copper = row("copper");
        assert_eq!(copper.specs, "1 vCPU · 512 MB RAM · 2,400 MHz");
        assert_eq!(copper.prices[0].per_hour.as_deref(), Some("£2.20"));
        assert_eq!(copper.prices[0].per_month.as_deref(), Some("£1,606.00"));
        assert_eq!(copper.prices[0].detail, "£2.20 per hour");
        let disk = row("medium-disk");
        assert_eq!(disk.prices[0].per_hour.as_deref(), Some("£0.0036 per GB"));
        assert_eq!(disk.prices[0].per_month.as_deref(), Some("£2.63 per GB"));
        assert_eq!(row("network").prices[0].detail, "£2.20 per GB");
        assert_eq!(row("network").prices[0].per_hour, None);
        assert_eq!(
            row("disk-io").prices[0].detail,
            "£0.00 per 1,000,000 requests up to 10,000,000; £0.04 per 1,000,000 requests above 10,000,000 (graduated)"
        );
        assert_eq!(row("vpn").prices[0].detail, "£0.01 per user.h");
        assert_eq!(
            row("monitoring").prices[0].detail,
            "£8.00 per month + £25.00 once"
        );
        assert_eq!(
            row("gold-package").specs,
            "Includes daily-backup, monitoring"
        );

        let eur = listing(&c, Some("gva1"), Some("EUR"), &Filter::default());
        let copper = eur.rows.iter().find(|r| r.id == "copper").unwrap();
        // Geneva's own price (2.40), converted at 1.17.
        assert_eq!(copper.prices[0].per_hour.as_deref(), Some("€2.808"));
        assert_eq!(eur.currency, "EUR");
        // An unknown currency falls back to the catalog's own.
        assert_eq!(
            listing(&c, None, Some("XXX"), &Filter::default()).currency,
            "GBP"
        );
    }
}
