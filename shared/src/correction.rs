//! Credit and debit notes as data, and their arithmetic: standings, notes applied, differences.
//!
//! A bill's [`Standing`] is its figures line by line; notes add to it; the difference between
//! two standings is a note's body.
//!
//! A final invoice is immutable; a correction is a note whose lines are the change, line by
//! line, between what the invoice and its earlier notes say and what the same account period
//! prices to now. `note::note` computes one from invoices; this module knows no invoice, so that
//! an invoice's statement can carry notes too (late usage billed on the next invoice, in its
//! `Adjustments` section).
//!
//! Lines are matched by (section, product, meter, region, description); lines of one bill that
//! share all five (two subscriptions to the same service) are one line here, their figures
//! added. A note line holds the change in quantity, in net amount (the line's amount plus the
//! discounts and credits spread onto it) and in tax. Tax lines are matched by (name, rate,
//! level): a note's tax is the change of each tax line, not its rate applied to the change, so
//! that the final invoice plus its notes equals the invoice of the period now, to the cent,
//! whether the jurisdiction rounds per line or per invoice.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bill::{check_section, check_taxed_total, checked_sum, Bill, SummaryRow, TaxLine};
use crate::catalog::{Category, TaxLevel};
use crate::error::TotalsError;
use crate::exact::{self, Overflow};
use crate::money::RoundingMode;
use crate::period::BillingPeriod;

/// A credit note lowers what was invoiced, a debit note raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    Credit,
    Debit,
}

impl NoteKind {
    /// `Credit` when the total is negative, `Debit` otherwise (a correction that only moves
    /// amounts between lines, total zero, is a debit note of zero).
    pub fn of_total(total: Decimal) -> NoteKind {
        if total.is_sign_negative() && !total.is_zero() {
            NoteKind::Credit
        } else {
            NoteKind::Debit
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NoteKind::Credit => "credit",
            NoteKind::Debit => "debit",
        }
    }
}

/// Why a final invoice is corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteReason {
    /// Usage of the period that arrived after its final invoice.
    LateUsage,
    /// The period re-rated under a corrected catalog version.
    CorrectedCatalog,
    /// The period re-rated under corrected account data (a discount, a subscription).
    CorrectedAccount,
}

impl NoteReason {
    pub fn label(self) -> &'static str {
        match self {
            NoteReason::LateUsage => "late usage",
            NoteReason::CorrectedCatalog => "re-rated under a corrected catalog",
            NoteReason::CorrectedAccount => "re-rated under corrected account data",
        }
    }
}

/// One line of a note: the change of one invoice line (or, in a [`Standing`], the line's
/// figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteLine {
    pub description: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub category: Category,
    /// Change of quantity, in `unit` (exact).
    pub quantity: Decimal,
    pub unit: String,
    /// The quantity the line's unit price is for (1, or 1,000,000 requests).
    pub per: Decimal,
    /// Change of the line's net amount: its amount plus the discounts and SLA credits spread
    /// onto it (in minor units).
    pub amount: Decimal,
    /// Change of the line's tax (line-level jurisdictions; zero otherwise).
    pub tax: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteSection {
    pub name: String,
    pub lines: Vec<NoteLine>,
    /// Sum of `lines[].amount`.
    pub total: Decimal,
}

/// A credit or debit note: the change to a final invoice, numbered by the caller in the
/// issuer's own gapless series of notes, immutable once numbered. Amounts are signed as they
/// add to the invoice (negative on a credit note). Unnumbered, a note is a correction billed
/// on a later invoice instead (`invoice::Statement::adjustments`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub kind: NoteKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The number of the final invoice it corrects.
    pub corrects: String,
    pub reason: NoteReason,
    pub account: String,
    pub account_name: String,
    /// Postal address lines printed under the name.
    #[serde(default)]
    pub address: Vec<String>,
    pub period: BillingPeriod,
    pub period_id: String,
    pub issue_date: NaiveDate,
    pub currency: String,
    pub rounding: RoundingMode,
    pub catalog_id: String,
    /// The catalog version the period is priced with now (the corrected invoice's).
    pub catalog_version: String,
    /// Version of the accounts data behind the corrected invoice (set by the rater).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_version: Option<String>,
    pub sections: Vec<NoteSection>,
    /// Sum of section totals: the change of the invoice's net.
    pub net: Decimal,
    /// The change of each tax line (`base` and `amount`).
    pub taxes: Vec<TaxLine>,
    /// `net` plus taxes: the change of the invoice's total.
    pub total: Decimal,
}

impl Note {
    pub fn lines(&self) -> impl Iterator<Item = &NoteLine> {
        self.sections.iter().flat_map(|s| s.lines.iter())
    }

    /// Checks that every shown total is the sum of the amounts under it (section totals, net,
    /// total, line taxes against line-level tax lines) and that the kind is the total's sign.
    ///
    /// # Errors
    /// The first total that is not the sum of its parts.
    pub fn check_totals(&self) -> Result<(), TotalsError> {
        let mut net = Decimal::ZERO;
        for s in &self.sections {
            check_section(&s.name, s.total, s.lines.iter().map(|l| l.amount))?;
            net = checked_sum([net, s.total])?;
        }
        if net != self.net {
            return Err(TotalsError::NoteNet {
                shown: self.net,
                sum: net,
            });
        }
        check_taxed_total(self.net, &self.taxes, self.total)?;
        let line_tax = checked_sum(self.lines().map(|l| l.tax))?;
        let line_level = checked_sum(
            self.taxes
                .iter()
                .filter(|t| t.level == TaxLevel::Line)
                .map(|t| t.amount),
        )?;
        if line_tax != line_level {
            return Err(TotalsError::LineTax {
                line_tax,
                tax: line_level,
            });
        }
        if NoteKind::of_total(self.total) != self.kind {
            return Err(TotalsError::NoteKind {
                kind: self.kind.label(),
                total: self.total,
            });
        }
        Ok(())
    }

    /// The rows under the sections: the net (the sum of the sections), each tax line's change,
    /// the total. Renderers choose their words, never the amounts.
    pub fn summary_rows(&self) -> Vec<SummaryRow<'_>> {
        let mut rows = vec![SummaryRow::Net(self.net)];
        rows.extend(self.taxes.iter().map(SummaryRow::Tax));
        rows.push(SummaryRow::Total(self.total));
        rows
    }
}

/// (section, product, meter, region, description): what matches a line across bills.
type LineKey = (String, String, Option<String>, String, String);

fn line_key(section: &str, l: &NoteLine) -> LineKey {
    (
        section.to_string(),
        l.product.clone(),
        l.meter.clone(),
        l.region.clone(),
        l.description.clone(),
    )
}

/// (name, rate, level): what matches a tax line across bills. A corrected rate is the old tax
/// line reversed and the new one charged.
fn same_tax(a: &TaxLine, b: &TaxLine) -> bool {
    a.name == b.name && a.rate_pct == b.rate_pct && a.level == b.level
}

/// What a bill stands at, line by line: each line's quantity, net amount and tax (in first-seen
/// order, with its section), each tax line, the net and the total. A final invoice's standing
/// with its notes applied is what the period was invoiced at so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Standing {
    lines: Vec<(String, NoteLine)>,
    index: BTreeMap<LineKey, usize>,
    taxes: Vec<TaxLine>,
    pub net: Decimal,
    pub total: Decimal,
}

impl Standing {
    /// The figures of a priced bill.
    ///
    /// # Errors
    /// [`Overflow`] when a line's net (or a sum of matched lines) does not fit in a decimal:
    /// the bill was not made by this engine.
    pub fn of(bill: &Bill) -> Result<Standing, Overflow> {
        let mut s = Standing {
            net: bill.net,
            total: bill.total,
            ..Standing::default()
        };
        for section in &bill.sections {
            for l in &section.lines {
                let line = NoteLine {
                    description: l.description.clone(),
                    product: l.product.clone(),
                    meter: l.meter.clone(),
                    region: l.region.clone(),
                    category: l.category,
                    quantity: l.quantity,
                    unit: l.unit.clone(),
                    per: l.per,
                    amount: exact::add(l.amount, l.adjustments, "line net")?,
                    tax: l.tax,
                };
                s.add_line(&section.name, &line)?;
            }
        }
        for t in &bill.taxes {
            s.add_tax(t)?;
        }
        Ok(s)
    }

    /// Adds a note's changes (the caller checks that it corrects this bill).
    ///
    /// # Errors
    /// [`Overflow`] when a sum does not fit in a decimal.
    pub fn apply(&mut self, note: &Note) -> Result<(), Overflow> {
        for section in &note.sections {
            for l in &section.lines {
                self.add_line(&section.name, l)?;
            }
        }
        for t in &note.taxes {
            self.add_tax(t)?;
        }
        self.net = exact::add(self.net, note.net, "net")?;
        self.total = exact::add(self.total, note.total, "total")?;
        Ok(())
    }

    /// Every line with its section, in first-seen order.
    pub fn lines(&self) -> impl Iterator<Item = (&str, &NoteLine)> {
        self.lines.iter().map(|(s, l)| (s.as_str(), l))
    }

    pub fn taxes(&self) -> &[TaxLine] {
        &self.taxes
    }

    fn add_line(&mut self, section: &str, l: &NoteLine) -> Result<(), Overflow> {
        let key = line_key(section, l);
        match self.index.get(&key) {
            Some(&i) => {
                let have = &mut self.lines[i].1;
                have.quantity = exact::add(have.quantity, l.quantity, "line quantity")?;
                have.amount = exact::add(have.amount, l.amount, "line net")?;
                have.tax = exact::add(have.tax, l.tax, "line tax")?;
            }
            None => {
                self.index.insert(key, self.lines.len());
                self.lines.push((section.to_string(), l.clone()));
            }
        }
        Ok(())
    }

    fn add_tax(&mut self, t: &TaxLine) -> Result<(), Overflow> {
        match self.taxes.iter_mut().find(|have| same_tax(have, t)) {
            Some(have) => {
                have.base = exact::add(have.base, t.base, "tax base")?;
                have.amount = exact::add(have.amount, t.amount, "tax")?;
            }
            None => self.taxes.push(t.clone()),
        }
        Ok(())
    }
}

/// The change from one standing to another: a note's body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Difference {
    pub sections: Vec<NoteSection>,
    pub net: Decimal,
    pub taxes: Vec<TaxLine>,
    pub total: Decimal,
}

impl Difference {
    /// True when no amount changes (quantities alone, on lines that cost nothing, make no
    /// note: a note is a money document).
    pub fn changes_no_amount(&self) -> bool {
        self.sections
            .iter()
            .flat_map(|s| &s.lines)
            .all(|l| l.amount.is_zero() && l.tax.is_zero())
            && self.taxes.iter().all(|t| t.amount.is_zero())
    }
}

/// `after - before`, line by line: the lines of `after` in its order (those that changed),
/// then the lines only `before` has, reversed; tax lines likewise. Section totals, the net and
/// the total are sums of what is shown, at `minor_units`.
///
/// # Errors
/// [`Overflow`] when a change or a sum does not fit in a decimal.
pub(crate) fn difference(
    before: &Standing,
    after: &Standing,
    minor_units: u32,
) -> Result<Difference, Overflow> {
    let mut sections: Vec<NoteSection> = Vec::new();
    for (section, a) in &after.lines {
        let b = before
            .index
            .get(&line_key(section, a))
            .map(|&i| &before.lines[i].1);
        push_change(&mut sections, section, line_change(b, Some(a))?);
    }
    for (section, b) in &before.lines {
        if !after.index.contains_key(&line_key(section, b)) {
            push_change(&mut sections, section, line_change(Some(b), None)?);
        }
    }
    let mut taxes = Vec::new();
    for a in &after.taxes {
        let b = before.taxes.iter().find(|b| same_tax(a, b));
        taxes.push(tax_change(b, a, false)?);
    }
    for b in &before.taxes {
        if !after.taxes.iter().any(|a| same_tax(a, b)) {
            taxes.push(tax_change(None, b, true)?);
        }
    }
    taxes.retain(|t| !t.amount.is_zero() || !t.base.is_zero());
    // Shown at the currency's scale at least (padded, never rounded: every figure here is a
    // difference or a sum of amounts already rounded).
    let scaled = |mut d: Decimal| {
        if d.scale() < minor_units {
            d.rescale(minor_units);
        }
        d
    };
    for s in &mut sections {
        for l in &mut s.lines {
            l.amount = scaled(l.amount);
            l.tax = scaled(l.tax);
        }
        s.total = scaled(exact::sum(s.lines.iter().map(|l| l.amount), "section")?);
    }
    for t in &mut taxes {
        t.base = scaled(t.base);
        t.amount = scaled(t.amount);
    }
    let net = scaled(exact::sum(sections.iter().map(|s| s.total), "net")?);
    let total = scaled(exact::sum(
        std::iter::once(net).chain(taxes.iter().map(|t| t.amount)),
        "total",
    )?);
    Ok(Difference {
        sections,
        net,
        taxes,
        total,
    })
}

/// `after - before` of one line (either may be absent, not both); `None` when nothing of it
/// changes.
fn line_change(
    before: Option<&NoteLine>,
    after: Option<&NoteLine>,
) -> Result<Option<NoteLine>, Overflow> {
    let Some(like) = after.or(before) else {
        return Ok(None);
    };
    let figure = |l: Option<&NoteLine>, f: fn(&NoteLine) -> Decimal| l.map_or(Decimal::ZERO, f);
    let change = |f: fn(&NoteLine) -> Decimal, what: &'static str| {
        exact::sub(figure(after, f), figure(before, f), what)
    };
    let line = NoteLine {
        quantity: change(|l| l.quantity, "quantity change")?,
        amount: change(|l| l.amount, "net change")?,
        tax: change(|l| l.tax, "tax change")?,
        ..like.clone()
    };
    let unchanged = line.quantity.is_zero() && line.amount.is_zero() && line.tax.is_zero();
    Ok((!unchanged).then_some(line))
}

/// The change of a tax line: `after - before`, or the line reversed when `reversed`.
fn tax_change(
    before: Option<&TaxLine>,
    after: &TaxLine,
    reversed: bool,
) -> Result<TaxLine, Overflow> {
    let (base_before, amount_before) =
        before.map_or((Decimal::ZERO, Decimal::ZERO), |b| (b.base, b.amount));
    let (base, amount) = if reversed {
        (
            exact::sub(Decimal::ZERO, after.base, "tax base change")?,
            exact::sub(Decimal::ZERO, after.amount, "tax change")?,
        )
    } else {
        (
            exact::sub(after.base, base_before, "tax base change")?,
            exact::sub(after.amount, amount_before, "tax change")?,
        )
    };
    Ok(TaxLine {
        base,
        amount,
        ..after.clone()
    })
}

/// Appends a changed line to its section (created in first-seen order).
fn push_change(sections: &mut Vec<NoteSection>, section: &str, line: Option<NoteLine>) {
    let Some(line) = line else {
        return;
    };
    match sections.iter_mut().find(|s| s.name == section) {
        Some(s) => s.lines.push(line),
        None => sections.push(NoteSection {
            name: section.to_string(),
            lines: vec![line],
            total: Decimal::ZERO,
        }),
    }
}
