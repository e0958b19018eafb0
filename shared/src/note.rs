//! Credit and debit notes against final invoices, from the invoice their period has now.
//!
//! A note is the difference, line by line, between what a final invoice and its earlier notes
//! say and the invoice the same account period would have now.
//!
//! A final invoice is immutable. When late usage arrives for its period (late-usage policy
//! `note`), or the period is re-rated under a corrected catalog or corrected account data, the
//! caller prices the period again (`invoice::invoice` or `invoice_with`, the same statement)
//! and [`note`] gives what changed, as a [`Note`]: a credit note when it lowers the total, a
//! debit note when it raises it, nothing when no amount changes. The caller numbers it (a
//! gapless series per issuer, like invoices) and stores it; notes are immutable once numbered.
//! Under the `next_period` policy the caller bills the same unnumbered note on the account's
//! next invoice instead (`invoice::Statement::adjustments`).
//!
//! Several notes may correct one invoice: each is the difference from the invoice plus every
//! earlier one ([`standing`]), so a second re-rate issues only what changed since the first.
//! Pass every earlier correction of the invoice, those billed on later invoices included.

use chrono::NaiveDate;

use crate::correction::difference;
use crate::error::{CorrectionRule, NoteField, PricingError};
use crate::exact::Overflow;
use crate::invoice::{Invoice, InvoiceKind};
use crate::money::minor_units;

pub use crate::correction::{Note, NoteKind, NoteLine, NoteReason, NoteSection, Standing};

/// The note that takes `final_invoice`, with its `earlier` notes, to `corrected` (the same
/// account period priced now: with late usage, or under a corrected catalog or account data),
/// for `reason`, dated `issue_date` (the caller's clock). Unnumbered: the caller sets
/// `number`. `None` when no amount changes (a re-rate that changes nothing issues nothing).
///
/// Only the priced bills are compared (the balance statement is not corrected by a note), so
/// price `corrected` with the final invoice's statement adjustments, if it billed any: without
/// them the note would reverse them.
///
/// Lines are matched by (section, product, meter, region, description); each note line holds
/// the change of quantity, net amount (amount plus spread discounts and credits) and tax. The
/// note's taxes are the changes of each tax line, so the final invoice plus its notes equals
/// `corrected` exactly in every line's net and tax, the net, each tax and the total.
///
/// # Errors
/// [`PricingError::Correction`] when `final_invoice` is not a numbered final invoice, when
/// `corrected` is of another account, period or currency or an invoice to date, or an earlier
/// note corrects another invoice; [`PricingError::BrokenTotals`] when an input's totals do not add up;
/// [`PricingError::Overflow`] when a change does not fit in a decimal.
pub fn note(
    final_invoice: &Invoice,
    earlier: &[Note],
    corrected: &Invoice,
    reason: NoteReason,
    issue_date: NaiveDate,
) -> Result<Option<Note>, PricingError> {
    let before = standing(final_invoice, earlier)?;
    let number = final_invoice.number.clone().unwrap_or_default();
    let refuse = |rule| PricingError::Correction {
        invoice: number.clone(),
        rule,
    };
    if corrected.account != final_invoice.account {
        return Err(refuse(CorrectionRule::OtherAccount {
            other: corrected.account.clone(),
        }));
    }
    if corrected.period != final_invoice.period {
        return Err(refuse(CorrectionRule::OtherPeriod {
            other: corrected.period_id.clone(),
        }));
    }
    if corrected.as_of.is_some() {
        return Err(refuse(CorrectionRule::CorrectedToDate));
    }
    let currency = &final_invoice.bill.currency;
    if corrected.bill.currency != *currency {
        return Err(refuse(CorrectionRule::OtherCurrency {
            other: corrected.bill.currency.clone(),
            currency: currency.clone(),
        }));
    }
    corrected
        .check_totals()
        .map_err(|error| PricingError::BrokenTotals {
            what: "corrected invoice of period",
            id: corrected.period_id.clone(),
            error,
        })?;
    let at = |e: Overflow| PricingError::overflow(e, format!("note against invoice {number}"));
    let after = Standing::of(&corrected.bill).map_err(at)?;
    let scale = minor_units(currency).ok_or_else(|| crate::error::MoneyError::UnknownCurrency {
        code: currency.clone(),
    })?;
    let change = difference(&before, &after, scale).map_err(at)?;
    if change.changes_no_amount() {
        return Ok(None);
    }
    let note = Note {
        kind: NoteKind::of_total(change.total),
        number: None,
        corrects: number.clone(),
        reason,
        account: final_invoice.account.clone(),
        account_name: corrected.account_name.clone(),
        address: corrected.address.clone(),
        period: final_invoice.period,
        period_id: final_invoice.period_id.clone(),
        issue_date,
        currency: currency.clone(),
        rounding: corrected.bill.rounding,
        catalog_id: corrected.bill.catalog_id.clone(),
        catalog_version: corrected.bill.catalog_version.clone(),
        accounts_version: corrected.accounts_version.clone(),
        sections: change.sections,
        net: change.net,
        taxes: change.taxes,
        total: change.total,
    };
    debug_assert_eq!(note.check_totals(), Ok(()));
    Ok(Some(note))
}

/// What `final_invoice` stands at after `notes` (its earlier corrections, issued or billed on
/// later invoices): the figures [`note`] computes the next difference from, and what a
/// statement of the period shows as invoiced so far.
///
/// # Errors
/// [`PricingError::Correction`] when the invoice is not a numbered final one or a note
/// corrects another invoice; [`PricingError::BrokenTotals`] when the invoice's or a note's
/// totals do not add up; [`PricingError::Overflow`] when a sum does not fit in a decimal.
pub fn standing(final_invoice: &Invoice, notes: &[Note]) -> Result<Standing, PricingError> {
    let number = match (&final_invoice.kind, &final_invoice.number) {
        (InvoiceKind::Final, Some(n)) => n.clone(),
        _ => {
            return Err(PricingError::Correction {
                invoice: final_invoice.number.clone().unwrap_or_default(),
                rule: CorrectionRule::NotFinal,
            })
        }
    };
    final_invoice
        .check_totals()
        .map_err(|error| PricingError::BrokenTotals {
            what: "invoice",
            id: number.clone(),
            error,
        })?;
    let at = |e: Overflow| PricingError::overflow(e, format!("invoice {number} and its notes"));
    let mut standing = Standing::of(&final_invoice.bill).map_err(at)?;
    for n in notes {
        let differs = [
            (n.corrects != number, NoteField::Invoice),
            (n.account != final_invoice.account, NoteField::Account),
            (n.period != final_invoice.period, NoteField::Period),
            (
                n.currency != final_invoice.bill.currency,
                NoteField::Currency,
            ),
        ]
        .into_iter()
        .find_map(|(differs, field)| differs.then_some(field));
        if let Some(differs) = differs {
            return Err(PricingError::Correction {
                invoice: number.clone(),
                rule: CorrectionRule::NoteOfAnotherInvoice {
                    note: n.number.clone().unwrap_or_default(),
                    differs,
                },
            });
        }
        n.check_totals()
            .map_err(|error| PricingError::BrokenTotals {
                what: "note",
                id: n.number.clone().unwrap_or_else(|| n.corrects.clone()),
                error,
            })?;
        standing.apply(n).map_err(at)?;
    }
    Ok(standing)
}
