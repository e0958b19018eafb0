//! The reference model: a deliberately simple rater for the pricing subset the simulator generates, the truth the real invoices must match to the cent.
//!
//! Scope (and nothing else): per-unit prices with `measurement_unit` 1, one currency (0, 2 or 3
//! minor units, rounding half-up), meters in hours, gigabytes (records in bytes) or requests,
//! no regions, no subscriptions, no discounts, no SLA, no credits, at most one invoice-level
//! tax rate per account. It keeps a plain list of records: no aggregation into keys, no
//! storage, no chunks; it sums, multiplies, rounds once per line, adds, taxes once.

use std::collections::{BTreeMap, BTreeSet};

use pricing::{Invoice, Unit, UsageRecord};
use rust_decimal::{Decimal, RoundingStrategy};

/// The prices the model knows, drawn by the generator from the same random numbers as the
/// JSON catalog the real rater loads (but never read back from it).
#[derive(Debug, Clone)]
pub struct ModelCatalog {
    pub minor_units: u32,
    /// Meter id -> the unit it is priced in.
    pub meter_units: BTreeMap<String, Unit>,
    /// (product, meter) -> price per one meter unit.
    pub prices: BTreeMap<(String, String), Decimal>,
    /// Account -> its invoice-level tax rate in percent, if it is taxed.
    pub tax_pct: BTreeMap<String, Option<Decimal>>,
}

/// Which copies of a record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupeRule {
    /// A record id counts once per account and period: a later identical copy is dropped;
    /// records without an id count as delivered. The rater's rule (`rater::dedupe`).
    FirstRecordIdWins,
}

/// One invoice as the model computes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelInvoice {
    /// (product, meter) -> (quantity in the meter's unit, rounded amount).
    pub lines: BTreeMap<(String, String), (Decimal, Decimal)>,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub total: Decimal,
    pub records: u64,
}

/// Usage totals as the model counts them, in the records' own units:
/// (product, meter) -> (quantity, records).
pub type ModelUsage = BTreeMap<(String, String), (Decimal, u64)>;

fn round_half_up(x: Decimal, dp: u32) -> Decimal {
    x.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Converts a record quantity into the meter's unit. Only the conversions the generator uses;
/// bytes are generated in whole MiB so that the quotient is exact.
fn to_meter_unit(q: Decimal, from: Unit, to: Unit) -> Decimal {
    match (from, to) {
        (a, b) if a == b => q,
        (Unit::Bytes, Unit::Gigabytes) => q / Decimal::from(1024u64 * 1024 * 1024),
        _ => panic!("the reference model does not convert {from:?} to {to:?}"),
    }
}

/// The records that count for `account`, in delivery order, by `rule`.
pub fn counted<'a>(
    records: impl IntoIterator<Item = &'a UsageRecord>,
    account: &str,
    rule: DedupeRule,
) -> Vec<&'a UsageRecord> {
    let mut seen = BTreeSet::new();
    records
        .into_iter()
        .filter(|r| r.account == account)
        .filter(|r| match (rule, &r.record_id) {
            (DedupeRule::FirstRecordIdWins, Some(id)) => seen.insert(id.clone()),
            _ => true,
        })
        .collect()
}

pub fn usage(records: &[&UsageRecord]) -> ModelUsage {
    let mut out = ModelUsage::new();
    for r in records {
        let e = out
            .entry((r.product.clone(), r.meter.clone()))
            .or_insert((Decimal::ZERO, 0));
        e.0 += r.quantity;
        e.1 += 1;
    }
    out
}

pub fn invoice(cat: &ModelCatalog, account: &str, records: &[&UsageRecord]) -> ModelInvoice {
    let mut qty: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for r in records {
        let unit = cat.meter_units[&r.meter];
        *qty.entry((r.product.clone(), r.meter.clone())).or_default() +=
            to_meter_unit(r.quantity, r.unit, unit);
    }
    let mut inv = ModelInvoice {
        records: records.len() as u64,
        ..ModelInvoice::default()
    };
    for (key, q) in qty {
        let amount = round_half_up(q * cat.prices[&key], cat.minor_units);
        inv.subtotal += amount;
        inv.lines.insert(key, (q, amount));
    }
    inv.tax = match cat.tax_pct[account] {
        Some(pct) => round_half_up(inv.subtotal * pct / Decimal::ONE_HUNDRED, cat.minor_units),
        None => Decimal::ZERO,
    };
    inv.total = inv.subtotal + inv.tax;
    inv
}

/// Compares a real invoice with the model's, to the last minor unit. Decimal equality ignores
/// scale, so `12` and `12.00` are equal; the scale is checked separately.
pub fn compare(real: &Invoice, model: &ModelInvoice, minor_units: u32) -> Result<(), String> {
    real.check_totals()
        .map_err(|e| format!("invoice totals do not add up: {e}"))?;
    let mut lines = BTreeMap::new();
    for l in real.bill.sections.iter().flat_map(|s| s.lines.iter()) {
        let meter = l.meter.clone().ok_or("a usage line without a meter")?;
        if lines
            .insert((l.product.clone(), meter), (l.quantity, l.amount))
            .is_some()
        {
            return Err(format!("two lines for {}", l.product));
        }
        if l.amount.scale() != minor_units {
            return Err(format!("line amount {} has the wrong scale", l.amount));
        }
    }
    if lines != model.lines {
        return Err(format!(
            "lines differ:\n real:  {lines:?}\n model: {:?}",
            model.lines
        ));
    }
    let tax: Decimal = real.bill.taxes.iter().map(|t| t.amount).sum();
    let got = (real.bill.subtotal, tax, real.bill.total, real.records);
    let want = (model.subtotal, model.tax, model.total, model.records);
    if got != want {
        return Err(format!(
            "(subtotal, tax, total, records) real {got:?} != model {want:?}"
        ));
    }
    if real.bill.total.scale() != minor_units {
        return Err(format!("total {} has the wrong scale", real.bill.total));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up_at_the_currency_scale() {
        assert_eq!(round_half_up(Decimal::new(125, 3), 2), Decimal::new(13, 2));
        assert_eq!(round_half_up(Decimal::new(5, 1), 0), Decimal::ONE);
        assert_eq!(
            round_half_up(Decimal::new(12345, 4), 3),
            Decimal::new(1235, 3)
        );
    }
}
