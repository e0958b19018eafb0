//! The reference model: a deliberately simple rater for the pricing subset the simulator generates, the truth the real invoices must match to the cent.
//!
//! Scope (and nothing else): per-unit prices with `measurement_unit` 1, one currency (0, 2 or 3
//! minor units, rounding half-up), meters in hours, gigabytes (records in bytes) or requests,
//! no regions, no subscriptions, no discounts, no SLA, at most one invoice-level tax rate per
//! account. It keeps a plain list of records: no aggregation into keys, no storage, no chunks;
//! it sums, multiplies, rounds once per line, adds, taxes once.
//!
//! The balance chain ([`Link`], [`statement`]) is counted in whole minor units (`i128`), not
//! in decimals as the pricing crate does: the book's figures are rounded once to the minor
//! unit on the way in, and from there on everything is integer addition and `min`.

use std::collections::{BTreeMap, BTreeSet};

use pricing::{Invoice, Unit, UsageRecord};
use rust_decimal::prelude::ToPrimitive;
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
    /// Account -> its opening figures in the accounts book.
    pub books: BTreeMap<String, ModelBook>,
}

/// What the accounts book says of an account before its first final invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBook {
    /// Prepaid credit (negative: none), possibly with a digit below the minor unit.
    pub prepaid: Decimal,
    /// Owed from before (negative: in the customer's favour), possibly with a digit below the
    /// minor unit.
    pub brought_forward: Decimal,
    /// Days from the issue date to the due date.
    pub terms_days: u32,
}

/// What one final invoice leaves the next one, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub carried_forward: i128,
    pub prepaid_remaining: i128,
}

/// The account summary of one invoice, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatement {
    pub brought_forward: i128,
    pub payments_total: i128,
    pub credits_applied: i128,
    pub amount_due: i128,
    pub carried_forward: i128,
    /// An issued invoice's prepaid credit: (available, remaining). `None` on an interim one.
    pub prepaid: Option<(i128, i128)>,
}

impl ModelStatement {
    /// What this invoice, once final, leaves the next one.
    pub fn link(&self) -> Link {
        let (available, remaining) = self.prepaid.expect("only an issued invoice links");
        debug_assert!(available >= remaining);
        Link {
            carried_forward: self.carried_forward,
            prepaid_remaining: remaining,
        }
    }
}

/// `x` in whole minor units, rounded half away from zero once.
pub fn minor(x: Decimal, minor_units: u32) -> i128 {
    let scaled = round_half_up(x, minor_units) * Decimal::from(10i64.pow(minor_units));
    assert!(scaled.fract().is_zero(), "{x} is not in minor units");
    scaled.to_i128().expect("a figure far below 10^28")
}

/// Whether the close must finalize an account's month: it has usage there, or a payment
/// dated in it, or owes or is owed something (the book's opening balance as written, before
/// its first final invoice).
pub fn active(
    cat: &ModelCatalog,
    account: &str,
    before: Option<Link>,
    records: usize,
    payments: usize,
) -> bool {
    let owed = match before {
        Some(l) => l.carried_forward != 0,
        None => !cat.books[account].brought_forward.is_zero(),
    };
    records > 0 || payments > 0 || owed
}

/// The account summary of an invoice of `total` (already in minor units), with the payments
/// dated in its month, after the final invoice `before` (the book's figures when there is
/// none). Issued invoices show the prepaid credit available and remaining.
///
/// The rules, in the model's own words: what was owed is brought forward; the prepaid credit
/// pays as much of the invoice as it can (never below zero, never more than the invoice);
/// what the credit did not pay is due; what is carried is what was owed, less what was paid,
/// plus what is due.
pub fn statement(
    cat: &ModelCatalog,
    account: &str,
    before: Option<Link>,
    payments: &[Decimal],
    total: Decimal,
    issued: bool,
) -> ModelStatement {
    let mu = cat.minor_units;
    let book = &cat.books[account];
    let (brought_forward, credit) = match before {
        Some(l) => (l.carried_forward, l.prepaid_remaining),
        None => (
            minor(book.brought_forward, mu),
            minor(book.prepaid, mu).max(0),
        ),
    };
    let total = minor(total, mu);
    let payments_total: i128 = payments.iter().map(|&p| minor(p, mu)).sum();
    let credits_applied = credit.min(total.max(0));
    let amount_due = total - credits_applied;
    ModelStatement {
        brought_forward,
        payments_total,
        credits_applied,
        amount_due,
        carried_forward: brought_forward - payments_total + amount_due,
        prepaid: issued.then_some((credit, credit - credits_applied)),
    }
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

/// The payments the model expects on an invoice: (reference, amount).
pub type ModelPayments = Vec<(String, Decimal)>;

/// Compares a real invoice's account summary with the model's, to the minor unit: brought
/// forward, the payments one by one and their total, credit applied, amount due, carried
/// forward, and on an issued invoice the prepaid credit available and remaining.
pub fn compare_statement(
    real: &Invoice,
    model: &ModelStatement,
    payments: &ModelPayments,
    minor_units: u32,
) -> Result<(), String> {
    let m = |x: Decimal| -> Result<i128, String> {
        let scaled = x * Decimal::from(10i64.pow(minor_units));
        if !scaled.fract().is_zero() {
            return Err(format!("{x} is not in minor units"));
        }
        Ok(minor(x, minor_units))
    };
    let shown: ModelPayments = real
        .payments
        .iter()
        .map(|p| (p.reference.clone(), p.amount))
        .collect();
    let mut want = payments.clone();
    want.sort();
    let mut got = shown.clone();
    got.sort();
    if got != want {
        return Err(format!("payments real {shown:?} != model {payments:?}"));
    }
    let prepaid = match (real.prepaid_available, real.prepaid_remaining) {
        (Some(a), Some(r)) => Some((m(a)?, m(r)?)),
        (None, None) => None,
        other => return Err(format!("prepaid available and remaining: {other:?}")),
    };
    let got = ModelStatement {
        brought_forward: m(real.brought_forward)?,
        payments_total: m(real.payments_total)?,
        credits_applied: m(real.credits_applied)?,
        amount_due: m(real.amount_due)?,
        carried_forward: m(real.carried_forward)?,
        prepaid,
    };
    if &got != model {
        return Err(format!(
            "account summary differs:\n real:  {got:?}\n model: {model:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(prepaid: &str, brought_forward: &str) -> ModelCatalog {
        ModelCatalog {
            minor_units: 2,
            meter_units: BTreeMap::new(),
            prices: BTreeMap::new(),
            tax_pct: BTreeMap::new(),
            books: [(
                "a".to_string(),
                ModelBook {
                    prepaid: prepaid.parse().unwrap(),
                    brought_forward: brought_forward.parse().unwrap(),
                    terms_days: 30,
                },
            )]
            .into(),
        }
    }

    /// The chain of `billing_month` (tests/common), figured by the model: 30.00 of credit
    /// pays February's 22.00 and 8.00 of March's 11.00.
    #[test]
    fn the_chain_uses_prepaid_credit_once_across_two_invoices() {
        let c = cat("30.00", "0");
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let feb = statement(&c, "a", None, &[], d("22.00"), true);
        assert_eq!(
            (
                feb.credits_applied,
                feb.amount_due,
                feb.carried_forward,
                feb.prepaid
            ),
            (2200, 0, 0, Some((3000, 800)))
        );
        let mar = statement(&c, "a", Some(feb.link()), &[], d("11.00"), true);
        assert_eq!(
            (
                mar.credits_applied,
                mar.amount_due,
                mar.carried_forward,
                mar.prepaid
            ),
            (800, 300, 300, Some((800, 0)))
        );
        // Paying what is carried leaves nothing owed, and nothing to close next month.
        let apr = statement(&c, "a", Some(mar.link()), &[d("3")], d("0.00"), true);
        assert_eq!(apr.carried_forward, 0);
        assert!(!active(&c, "a", Some(apr.link()), 0, 0));
    }

    #[test]
    fn book_figures_are_rounded_once_and_a_negative_credit_is_none() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let st = statement(&cat("10.005", "-0.005"), "a", None, &[], d("20.00"), true);
        assert_eq!((st.brought_forward, st.credits_applied), (-1, 1001));
        let st = statement(&cat("-5.00", "0.004"), "a", None, &[], d("1.00"), false);
        assert_eq!(
            (st.brought_forward, st.credits_applied, st.prepaid),
            (0, 0, None)
        );
        // Owed as the book writes it: 0.004 makes the account active, though it rounds to 0.
        assert!(active(&cat("0", "0.004"), "a", None, 0, 0));
    }

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
