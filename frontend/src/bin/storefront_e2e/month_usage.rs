//! A month of usage equivalent to a quote: the records a cloud would export if the app ran as
//! configured, and the account that holds its subscriptions. The "estimate equals invoice" test
//! rates these with the rater and compares the invoice with the browser's estimate.

use chrono::Duration;
use pricing::catalog::{Catalog, MeterRole};
use pricing::invoice::{Account, AccountBook, Subscription};
use pricing::period::BillingPeriod;
use pricing::unit::Unit;
use pricing::{Component, Quote, UsageRecord};
use rust_decimal::Decimal;

/// Decimals of each daily record's quantity; the last day takes the remainder, so the month
/// adds up exactly.
const DAILY_DECIMALS: u32 = 4;

/// Why a quote has no equivalent usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthUsageError {
    #[error("{path}: {message}")]
    Component { path: String, message: String },
}

/// The usage records and account of a month of `quote` for account `account_id` in `period`.
///
/// Every VM, volume and IP becomes its own resource with one record per day of the period
/// (quantities split unevenly across days, the last day taking the remainder); traffic and other
/// metered usage likewise; services become subscriptions that started before the period (a
/// full month, no one-time fee, as the estimate's monthly total has none). Resources are
/// grouped in a project named after their tier.
pub fn month_of_usage(
    catalog: &Catalog,
    quote: &Quote,
    account_id: &str,
    period: BillingPeriod,
) -> Result<(Vec<UsageRecord>, Account), MonthUsageError> {
    let hpm = catalog.hours_per_month;
    let days = period.days_in_month();
    let mut records = Vec::new();
    let mut subscriptions = Vec::new();
    for (ti, tier) in quote.tiers.iter().enumerate() {
        for (ci, c) in tier.components.iter().enumerate() {
            let path = format!("tiers[{ti}].components[{ci}]");
            let meter_of = |product: &str, role: MeterRole| {
                catalog
                    .resolve_product(product)
                    .and_then(|p| catalog.meter_for_role(&p.id, role))
                    .map(|m| m.id.clone())
                    .ok_or_else(|| MonthUsageError::Component {
                        path: path.clone(),
                        message: format!("`{product}` has no {} meter", role.name()),
                    })
            };
            let mut emit =
                |resource: String, product: &str, meter: String, total: Decimal, unit| {
                    daily_records(
                        &mut records,
                        period,
                        days,
                        UsageRecord {
                            record_id: None,
                            account: account_id.to_string(),
                            project: Some(tier.name.clone()),
                            resource,
                            product: product.to_string(),
                            meter,
                            quantity: total,
                            unit,
                            start: period.start,
                            end: period.start,
                            tags: Vec::new(),
                            region: None,
                        },
                    )
                };
            let res = |kind: &str, k: u32| format!("{}-{ci}-{kind}{k}", tier.name);
            match c {
                Component::Compute {
                    offering,
                    count,
                    hours_per_month,
                    stopped_hours_per_month,
                } => {
                    for k in 0..*count {
                        let running = meter_of(offering, MeterRole::Running)?;
                        emit(
                            res("vm", k),
                            offering,
                            running,
                            hours_per_month.unwrap_or(hpm),
                            Unit::Hours,
                        );
                        if let Some(stopped) = stopped_hours_per_month {
                            let m = meter_of(offering, MeterRole::Stopped)?;
                            emit(res("vm", k), offering, m, *stopped, Unit::Hours);
                        }
                    }
                }
                Component::Volume {
                    offering,
                    size_gb,
                    count,
                } => {
                    for k in 0..*count {
                        let m = meter_of(offering, MeterRole::Storage)?;
                        emit(
                            res("vol", k),
                            offering,
                            m,
                            *size_gb * hpm,
                            Unit::GigabyteHours,
                        );
                    }
                }
                Component::Traffic {
                    product,
                    gb_in,
                    gb_out,
                } => {
                    let m_in = meter_of(product, MeterRole::TrafficIn)?;
                    let m_out = meter_of(product, MeterRole::TrafficOut)?;
                    emit(res("net", 0), product, m_in, *gb_in, Unit::Gigabytes);
                    emit(res("net", 0), product, m_out, *gb_out, Unit::Gigabytes);
                }
                Component::Ip { product, count } => {
                    for k in 0..*count {
                        let m = meter_of(product, MeterRole::IpHours)?;
                        emit(res("ip", k), product, m, hpm, Unit::Hours);
                    }
                }
                Component::Usage {
                    product,
                    meter,
                    quantity,
                } => {
                    let unit = catalog.meter(meter).map(|m| m.unit).ok_or_else(|| {
                        MonthUsageError::Component {
                            path: path.clone(),
                            message: format!("unknown meter `{meter}`"),
                        }
                    })?;
                    emit(res("use", 0), product, meter.clone(), *quantity, unit);
                }
                Component::Service { product, quantity } => {
                    if *quantity > 0 {
                        subscriptions.push(Subscription {
                            id: format!("{}-{ci}", tier.name),
                            product: product.clone(),
                            quantity: Decimal::from(*quantity),
                            project: Some(tier.name.clone()),
                            // Started before the period: a full month, no one-time fee.
                            start: period.start - Duration::days(31),
                            end: None,
                            changes: Vec::new(),
                        });
                    }
                }
            }
        }
    }
    let account = Account {
        id: account_id.to_string(),
        name: quote.name.clone(),
        address: Vec::new(),
        domain: None,
        country: None,
        vat_id: None,
        currency: quote.currency.clone(),
        region: quote.region.clone(),
        tax_jurisdiction: quote.tax_jurisdiction.clone(),
        sla_tier: quote.sla_tier.clone(),
        availability_pct: None,
        term: quote.term.clone(),
        subscriptions,
        discounts: Vec::new(),
        prices: Vec::new(),
        invoice_blocks: None,
        coupons: Vec::new(),
        cost_codes: Vec::new(),
        prepaid_credit: Decimal::ZERO,
        balance_brought_forward: Decimal::ZERO,
        payments: Vec::new(),
        billing_period: pricing::PeriodKind::Month,
        payment_terms_days: 30,
        late_usage: None,
        reseller: None,
        resells: None,
    };
    Ok((records, account))
}

/// Splits `template.quantity` into one record per day: day `d` gets between half and one and a
/// half times the daily average (deterministic), the last day the exact remainder.
fn daily_records(
    out: &mut Vec<UsageRecord>,
    period: BillingPeriod,
    days: u32,
    template: UsageRecord,
) {
    let total = template.quantity;
    if total.is_zero() {
        return;
    }
    let average = total / Decimal::from(days);
    let mut left = total;
    for d in 0..days {
        let q = if d + 1 == days {
            left
        } else {
            // Weights 0.5, 1.0, 1.5, 0.5... keep every part positive and the sum under the total
            // until the last day.
            let w = Decimal::new(i64::from(d % 3) * 5 + 5, 1);
            (average * w).round_dp(DAILY_DECIMALS).min(left)
        };
        left -= q;
        if q.is_zero() {
            continue;
        }
        let start = period.start + Duration::days(i64::from(d));
        out.push(UsageRecord {
            record_id: Some(format!("{}-{}-{d}", template.resource, template.meter)),
            quantity: q,
            start,
            end: start + Duration::days(1),
            ..template.clone()
        });
    }
}

/// The records as canonical CSV (header first).
pub fn to_canonical_csv(records: &[UsageRecord]) -> Result<String, pricing::import::CsvWriteError> {
    let mut out = String::with_capacity(records.len() * 160);
    out.push_str(pricing::import::CSV_HEADER);
    out.push('\n');
    for r in records {
        pricing::import::write_csv_row(r, &mut out)?;
    }
    Ok(out)
}

/// An account book holding one account, as the rater reads it.
pub fn account_book(account: Account, version: &str) -> AccountBook {
    AccountBook {
        schema_version: 1,
        version: version.to_string(),
        accounts: vec![account],
        issuers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use frontend::model::config::AppConfig;

    // The library's fixtures (`model::testing`) are compiled for its own tests only.
    fn cloudstack() -> Catalog {
        Catalog::from_json(include_str!(
            "../../../../examples/catalogs/cloudstack.json"
        ))
        .expect("the example catalog is valid")
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a test date")
    }

    /// The storefront's own promise, natively: every template, in every setting, invoices to
    /// the estimate's monthly total to the cent when its month of usage is rated.
    #[test]
    fn every_template_invoices_to_its_estimate() {
        let cat = cloudstack();
        let acme = pricing::publish(&cat, "acme").unwrap();
        let feb = BillingPeriod::month(2017, 2).unwrap();
        for catalog in [&cat, &acme] {
            for t in &catalog.templates {
                for (currency, sla, term, tax, region) in [
                    (None, None, None, None, None),
                    (Some("USD"), Some("gold"), Some("1y"), None, Some("gva1")),
                    (
                        Some("JPY"),
                        Some("standard"),
                        Some("3y"),
                        None,
                        Some("lon1"),
                    ),
                ] {
                    let mut c = AppConfig::empty(catalog, day("2017-02-15"));
                    assert!(c.apply_template(catalog, &t.id));
                    // A reseller's storefront quotes in its own currency only (its customers
                    // are invoiced in it): another currency is the storefront's there.
                    let offered = frontend::model::config::currency_choices(catalog);
                    c.currency = currency
                        .filter(|x| offered.iter().any(|o| o == x))
                        .map(String::from);
                    c.sla_tier = sla.map(String::from);
                    c.term = term.map(String::from);
                    c.region = region.map(String::from);
                    c.tax_jurisdiction = tax
                        .or(catalog.tax_jurisdictions.first().map(|j| j.id.as_str()))
                        .map(String::from);
                    let quote = c.validate(catalog).quote.unwrap();
                    let e = pricing::estimate(catalog, &quote).unwrap();
                    let (records, account) = month_of_usage(catalog, &quote, "cust", feb).unwrap();
                    let csv = to_canonical_csv(&records).unwrap();
                    let back = pricing::import::import_all(
                        pricing::import::Format::Csv,
                        csv.as_bytes(),
                        catalog,
                        &Default::default(),
                    )
                    .unwrap();
                    assert_eq!(back, records);
                    let usage = pricing::rate(catalog, feb, &records).unwrap();
                    let inv = pricing::invoice(catalog, &account, feb, &usage).unwrap();
                    assert_eq!(
                        inv.bill.total, e.monthly_total,
                        "{} {} {currency:?} {sla:?} {term:?} {region:?}",
                        catalog.id, t.id
                    );
                }
            }
        }
    }

    #[test]
    fn daily_records_add_up_exactly() {
        let feb = BillingPeriod::month(2017, 2).unwrap();
        let mut out = Vec::new();
        let template = UsageRecord {
            record_id: None,
            account: "a".into(),
            project: None,
            resource: "r".into(),
            product: "copper".into(),
            meter: "vm.running".into(),
            quantity: Decimal::new(7301, 1),
            unit: Unit::Hours,
            start: feb.start,
            end: feb.start,
            tags: vec![],
            region: None,
        };
        daily_records(&mut out, feb, 28, template);
        assert_eq!(out.len(), 28);
        assert_eq!(
            out.iter().map(|r| r.quantity).sum::<Decimal>(),
            Decimal::new(7301, 1)
        );
        assert!(out
            .iter()
            .all(|r| r.quantity > Decimal::ZERO && feb.contains(r.start)));
        assert_eq!(out.last().unwrap().end, feb.end());
    }
}
