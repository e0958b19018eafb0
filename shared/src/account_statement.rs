//! Account statements: every final invoice, credit and debit note and payment of an account over a range of days, with the running balance, reconciled against the balance chain the invoices carry.
//!
//! A statement is not a new computation of what is owed: invoices already carry the balance
//! (brought forward, payments of the period, amount due, carried forward) and notes move it
//! between invoices (`Balance::notes_since` in the rater). A statement lays those movements out
//! in time order and checks that they add up to the chain: each invoice brings forward what the
//! one before carried plus the notes issued between them. A statement that does not reconcile
//! is refused, naming the invoice, rather than shown with a balance the invoices contradict.
//!
//! Amounts are the documents' own (already rounded at the currency's minor unit on their
//! documents); the statement only adds them, checked.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::exact::{self, Overflow};
use crate::invoice::Invoice;
use crate::note::NoteKind;

/// What moved the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A final invoice: its amount due (total less prepaid credit) is owed.
    Invoice,
    /// A credit note: its total (negative) is owed back.
    CreditNote,
    /// A debit note: its total is owed.
    DebitNote,
    /// A payment received: its amount is paid off.
    Payment,
    /// Prepaid credit a former issuer still held when the customer moved, set against what
    /// the customer owes that issuer (negative): the balance handed over to it is net of it.
    PrepaidApplied,
}

impl EntryKind {
    pub fn label(self) -> &'static str {
        match self {
            EntryKind::Invoice => "Invoice",
            EntryKind::CreditNote => "Credit note",
            EntryKind::DebitNote => "Debit note",
            EntryKind::Payment => "Payment",
            EntryKind::PrepaidApplied => "Prepaid credit applied",
        }
    }
}

/// A movement of the balance, as the store gives it (the rater reads documents and payments
/// and hands them here in any order).
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub kind: EntryKind,
    /// When it happened, epoch milliseconds: issue of a document, date of a payment. Orders
    /// the statement (ties keep the order given).
    pub at_ms: i64,
    pub date: NaiveDate,
    /// A document's number, a payment's reference (may be empty).
    pub reference: String,
    /// The billing period a document is of (empty for a payment).
    pub period: String,
    /// An invoice's due date.
    pub due: Option<NaiveDate>,
    /// The invoice a note corrects.
    pub corrects: Option<String>,
    /// The change of what is owed: an invoice's amount due, a note's total (negative for a
    /// credit note), minus a payment's amount.
    pub amount: Decimal,
    /// An invoice's balance chain: what it brought forward and what it carried forward.
    pub chain: Option<(Decimal, Decimal)>,
    /// An invoice's period end, epoch milliseconds: a payment from then on is on a later
    /// invoice (a payment is on the invoice of the period its date falls in).
    pub period_end_ms: Option<i64>,
    /// Owed to or paid to an issuer other than the one whose invoice was the account's last
    /// (a note of a former issuer after the customer moved, a payment to it): in the balance
    /// the customer owes, in no invoice's brought-forward.
    pub elsewhere: bool,
    /// An invoice of another issuer than the invoice before it (the customer moved): it may
    /// bring forward nothing of that invoice's balance, which is then handed over to the
    /// former issuer, still owed in the statement's balance, in no later invoice's chain.
    /// When its issuer billed the account before (the customer came back), it brings forward
    /// what the account still owed that issuer from then instead.
    pub new_issuer: bool,
    /// The issuer the movement is of, by the series its documents are numbered in: a
    /// document's issuer, the payee of a payment to a former issuer. Empty when not told (a
    /// payment on the account's own invoices): only a new issuer's invoice and what is owed
    /// elsewhere are told apart by it, to know what each issuer is owed.
    pub issuer: String,
    /// An invoice's prepaid credit left after it (zero for other movements): handed over with
    /// its balance when the next invoice is another issuer's.
    pub prepaid_remaining: Decimal,
    /// An invoice's prepaid credit available to it (zero for other movements): a new issuer's
    /// invoice issued before hand-overs used the former issuer's, which then was not handed
    /// over.
    pub prepaid_available: Decimal,
}

impl Movement {
    /// The movement of a final invoice issued at `at_ms`.
    pub fn invoice(inv: &Invoice, at_ms: i64) -> Movement {
        let date = inv
            .issue_date
            .unwrap_or_else(|| inv.period_end.date_naive());
        Movement {
            kind: EntryKind::Invoice,
            at_ms,
            date,
            reference: inv.number.clone().unwrap_or_default(),
            period: inv.period_id.clone(),
            due: inv.due_date,
            corrects: None,
            amount: inv.amount_due,
            chain: Some((inv.brought_forward, inv.carried_forward)),
            period_end_ms: Some(inv.period_end.timestamp_millis()),
            elsewhere: false,
            new_issuer: false,
            issuer: String::new(),
            prepaid_remaining: inv.prepaid_remaining.unwrap_or_default(),
            prepaid_available: inv.prepaid_available.unwrap_or_default(),
        }
    }

    /// The movement of a note of `total` (negative for a credit note).
    pub fn note(
        kind: NoteKind,
        number: &str,
        period: &str,
        corrects: &str,
        total: Decimal,
        at_ms: i64,
        date: NaiveDate,
    ) -> Movement {
        Movement {
            kind: match kind {
                NoteKind::Credit => EntryKind::CreditNote,
                NoteKind::Debit => EntryKind::DebitNote,
            },
            at_ms,
            date,
            reference: number.to_string(),
            period: period.to_string(),
            due: None,
            corrects: Some(corrects.to_string()),
            amount: total,
            chain: None,
            period_end_ms: None,
            elsewhere: false,
            new_issuer: false,
            issuer: String::new(),
            prepaid_remaining: Decimal::ZERO,
            prepaid_available: Decimal::ZERO,
        }
    }

    /// This invoice, of another issuer than the invoice before it ([`Movement::new_issuer`]).
    pub fn of_new_issuer(mut self) -> Movement {
        self.new_issuer = true;
        self
    }

    /// This movement, of the issuer numbering its documents in `series` ([`Movement::issuer`]).
    pub fn of_issuer(mut self, series: &str) -> Movement {
        self.issuer = series.to_string();
        self
    }

    /// This movement, owed or paid to another issuer than the account's last invoice's
    /// ([`Movement::elsewhere`]).
    pub fn owed_elsewhere(mut self) -> Movement {
        self.elsewhere = true;
        self
    }

    /// The former issuer's `prepaid` credit left after its invoice `number` (of `period`), set
    /// against what the account owes it when the balance was handed over at `at_ms`
    /// ([`EntryKind::PrepaidApplied`]; mark it [`Movement::owed_elsewhere`] of that issuer).
    pub fn prepaid_applied(
        number: &str,
        period: &str,
        prepaid: Decimal,
        at_ms: i64,
        date: NaiveDate,
    ) -> Movement {
        Movement {
            kind: EntryKind::PrepaidApplied,
            reference: number.to_string(),
            period: period.to_string(),
            ..Movement::payment("", prepaid, at_ms, date)
        }
    }

    /// The movement of a payment of `amount` received at `at_ms`.
    pub fn payment(reference: &str, amount: Decimal, at_ms: i64, date: NaiveDate) -> Movement {
        Movement {
            kind: EntryKind::Payment,
            at_ms,
            date,
            reference: reference.to_string(),
            period: String::new(),
            due: None,
            corrects: None,
            amount: -amount,
            chain: None,
            period_end_ms: None,
            elsewhere: false,
            new_issuer: false,
            issuer: String::new(),
            prepaid_remaining: Decimal::ZERO,
            prepaid_available: Decimal::ZERO,
        }
    }
}

/// One line of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEntry {
    pub date: NaiveDate,
    pub kind: EntryKind,
    pub reference: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub period: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
    /// The change of the balance (positive: owed; negative: paid or credited).
    pub amount: Decimal,
    /// The balance after it.
    pub balance: Decimal,
    /// Owed to, or paid to, an issuer that no longer bills the account (by its series): a
    /// former issuer's note after the customer moved, a payment to it. In the balance the
    /// customer owes, in none of the account's invoices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owed_to: Option<String>,
}

/// An account's statement over `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatement {
    pub account: String,
    pub account_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<String>,
    pub currency: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The balance at the start of `from`.
    pub opening: Decimal,
    pub entries: Vec<StatementEntry>,
    /// Sums of the entries by kind (credited is negative, paid is what was received, positive).
    pub invoiced: Decimal,
    pub credited: Decimal,
    pub debited: Decimal,
    pub paid: Decimal,
    /// Sum of the [`EntryKind::PrepaidApplied`] entries (negative).
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub applied: Decimal,
    /// `opening + invoiced + credited + debited + applied - paid`: the balance at the end of
    /// `to`.
    pub closing: Decimal,
    /// The other currencies the account has documents or payments in, which are not on this
    /// statement (a statement adds amounts of one currency): each has its own, what the
    /// customer owes in it (an issuer's in another currency, before the customer moved).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_currencies: Vec<String>,
}

/// Why a statement cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StatementError {
    #[error("to: {to} is before from {from}")]
    Range { from: NaiveDate, to: NaiveDate },
    /// An invoice whose brought-forward is not the previous invoice's carried-forward plus the
    /// notes issued between them: the stored documents contradict each other.
    #[error(
        "invoice {number} brings forward {found}, but the invoice before it carried forward \
         {carried} and the notes issued since add {notes} (expected {expected}): the stored \
         balance chain does not reconcile"
    )]
    Chain {
        number: String,
        found: Decimal,
        carried: Decimal,
        notes: Decimal,
        expected: Decimal,
    },
    #[error("{0}")]
    Overflow(Overflow),
}

impl From<Overflow> for StatementError {
    fn from(o: Overflow) -> Self {
        StatementError::Overflow(o)
    }
}

/// Who the statement is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementParty {
    pub account: String,
    pub account_name: String,
    pub address: Vec<String>,
    pub currency: String,
    /// The balance before the account's first final invoice (the accounts book's opening
    /// balance): used when no invoice says otherwise.
    pub opening_balance: Decimal,
}

/// The statement of `party` over `from..=to` from its `movements`: every final invoice and
/// note issued, and every payment recorded, up to `to` (earlier ones set the opening balance;
/// the caller may leave out invoices issued before the last one before `from`, and the
/// payments and notes before that invoice: that invoice's carried-forward stands for them).
///
/// # Errors
/// [`StatementError::Range`] for `to < from`; [`StatementError::Chain`] when an invoice's
/// brought-forward contradicts the invoice before it; [`StatementError::Overflow`] for sums
/// past a decimal.
pub fn account_statement(
    party: &StatementParty,
    from: NaiveDate,
    to: NaiveDate,
    mut movements: Vec<Movement>,
) -> Result<AccountStatement, StatementError> {
    if to < from {
        return Err(StatementError::Range { from, to });
    }
    movements.retain(|m| m.date <= to);
    // Stable: documents issued in the same millisecond keep the store's order.
    movements.sort_by_key(|m| m.at_ms);
    let (handed_over, applied) = check_chain(&movements)?;
    // Each right after the invoice that handed the balance over.
    movements.extend(applied);
    movements.sort_by_key(|m| m.at_ms);
    let invoices: Vec<&Movement> = movements
        .iter()
        .filter(|m| m.kind == EntryKind::Invoice)
        .collect();

    // The balance at the start of `from`: the carried-forward of the last invoice issued
    // before it, plus the notes issued after that invoice and the payments not on it or an
    // earlier one (dated after its period), up to `from`.
    let anchor = invoices.iter().rev().find(|m| m.date < from);
    let mut opening = match anchor {
        Some(a) => a.chain.map_or(Decimal::ZERO, |c| c.1),
        None => invoices
            .first()
            .and_then(|m| m.chain)
            .map_or(party.opening_balance, |c| c.0),
    };
    for m in movements.iter().filter(|m| m.date < from) {
        let after_anchor = match (anchor, m.kind) {
            // On no invoice: the anchor's carried-forward does not hold it.
            _ if m.elsewhere => true,
            (None, EntryKind::Payment) => true,
            (None, _) => false,
            (Some(a), EntryKind::Payment) => m.at_ms >= a.period_end_ms.unwrap_or(i64::MAX),
            (Some(a), EntryKind::CreditNote | EntryKind::DebitNote) => m.at_ms > a.at_ms,
            (Some(_), EntryKind::Invoice | EntryKind::PrepaidApplied) => false,
        };
        if after_anchor {
            opening = exact::add(opening, m.amount, "statement opening balance")?;
        }
    }
    // A former issuer's balance handed over at or before the anchor: not in its
    // carried-forward, still owed (less what an issuer billing the account again brought back
    // into the chain: in the carried-forward now).
    if let Some(a) = anchor {
        for (at_ms, owed) in &handed_over {
            if *at_ms <= a.at_ms {
                opening = exact::add(opening, *owed, "statement opening balance")?;
            }
        }
    }

    let mut balance = opening;
    let (mut invoiced, mut credited, mut debited, mut paid, mut applied) = (
        Decimal::ZERO,
        Decimal::ZERO,
        Decimal::ZERO,
        Decimal::ZERO,
        Decimal::ZERO,
    );
    let mut entries = Vec::new();
    for m in movements.into_iter().filter(|m| m.date >= from) {
        balance = exact::add(balance, m.amount, "statement balance")?;
        let sum = match m.kind {
            EntryKind::Invoice => &mut invoiced,
            EntryKind::CreditNote => &mut credited,
            EntryKind::DebitNote => &mut debited,
            EntryKind::Payment => &mut paid,
            EntryKind::PrepaidApplied => &mut applied,
        };
        *sum = exact::add(*sum, m.amount, "statement total")?;
        entries.push(StatementEntry {
            date: m.date,
            kind: m.kind,
            reference: m.reference,
            period: m.period,
            due: m.due,
            corrects: m.corrects,
            amount: m.amount,
            balance,
            owed_to: Some(m.issuer).filter(|i| m.elsewhere && !i.is_empty()),
        });
    }
    Ok(AccountStatement {
        account: party.account.clone(),
        account_name: party.account_name.clone(),
        address: party.address.clone(),
        currency: party.currency.clone(),
        from,
        to,
        opening,
        entries,
        invoiced,
        credited,
        debited,
        paid: -paid,
        applied,
        closing: balance,
        other_currencies: Vec::new(),
    })
}

/// A balance moved out of the chain by a new issuer's invoice: its time (epoch ms) and the
/// amount (handed over less brought back).
type HandOver = (i64, Decimal);

/// Each invoice brings forward what the invoice before it carried plus the notes issued
/// between them (`movements` in time order), but those owed to another issuer
/// ([`Movement::elsewhere`]).
///
/// An invoice of a new issuer ([`Movement::new_issuer`]) brings forward that, or what the
/// account still owed its own issuer from an earlier time it billed the account (nothing, for
/// an issuer new to the account): then the chain's balance is handed over to the former issuer,
/// net of the prepaid credit it still held, and what was owed to the new one is back in the
/// chain. Returns those moves out of the chain (the new issuer's invoice's time and the amount
/// handed over less the amount brought back), and the prepaid credit each hand-over set
/// against the balance, as movements ([`EntryKind::PrepaidApplied`], owed elsewhere).
fn check_chain(movements: &[Movement]) -> Result<(Vec<HandOver>, Vec<Movement>), StatementError> {
    let mut handed_over = Vec::new();
    let mut applied = Vec::new();
    // What the account owes each issuer off the chain, by series.
    let mut owed: std::collections::BTreeMap<&str, Decimal> = std::collections::BTreeMap::new();
    let mut last: Option<&Movement> = None;
    let mut notes = Decimal::ZERO;
    for m in movements {
        match (m.kind, m.chain) {
            // Not the next invoice's to bring forward: owed to (or paid to) its issuer.
            _ if m.elsewhere => {
                let o = owed.entry(m.issuer.as_str()).or_default();
                *o = exact::add(*o, m.amount, "owed to a former issuer")?;
            }
            (EntryKind::CreditNote | EntryKind::DebitNote, _) => {
                notes = exact::add(notes, m.amount, "notes between invoices")?;
            }
            (EntryKind::Invoice, Some((brought, _))) => {
                if let Some((former, c)) = last.and_then(|l| Some((l, l.chain?.1))) {
                    let expected = exact::add(c, notes, "expected brought forward")?;
                    let back = owed.get(m.issuer.as_str()).copied().unwrap_or_default();
                    if m.new_issuer && brought == back {
                        // (Unless this invoice used it, as before hand-overs.)
                        let prepaid = match m.prepaid_available.is_zero() {
                            true => former.prepaid_remaining,
                            false => Decimal::ZERO,
                        };
                        let net = exact::sub(expected, prepaid, "balance handed over")?;
                        let o = owed.entry(former.issuer.as_str()).or_default();
                        *o = exact::add(*o, net, "owed to a former issuer")?;
                        owed.remove(m.issuer.as_str());
                        let moved = exact::sub(expected, back, "balance handed over")?;
                        if !moved.is_zero() {
                            handed_over.push((m.at_ms, moved));
                        }
                        if !prepaid.is_zero() {
                            applied.push(
                                Movement::prepaid_applied(
                                    &former.reference,
                                    &former.period,
                                    prepaid,
                                    m.at_ms,
                                    m.date,
                                )
                                .of_issuer(&former.issuer)
                                .owed_elsewhere(),
                            );
                        }
                    } else if expected != brought {
                        // (A new issuer's invoice bringing the former balance forward, as
                        // they did before hand-overs, reconciles as any other.)
                        return Err(StatementError::Chain {
                            number: m.reference.clone(),
                            found: brought,
                            carried: c,
                            notes,
                            expected,
                        });
                    }
                }
                last = Some(m);
                notes = Decimal::ZERO;
            }
            _ => {}
        }
    }
    Ok((handed_over, applied))
}

impl AccountStatement {
    /// The shown figures add up: each entry's balance is the one before plus its amount, the
    /// sums by kind are their entries', and the closing balance is the opening plus them.
    ///
    /// # Errors
    /// [`StatementError::Overflow`] for a sum past a decimal; `Ok(false)` when a figure is not
    /// the sum of its parts.
    pub fn adds_up(&self) -> Result<bool, StatementError> {
        let mut b = self.opening;
        for e in &self.entries {
            b = exact::add(b, e.amount, "statement check")?;
            if b != e.balance {
                return Ok(false);
            }
        }
        let by_kind = exact::add(
            exact::add(self.invoiced, self.credited, "statement check")?,
            exact::add(
                exact::sub(self.debited, self.paid, "statement check")?,
                self.applied,
                "statement check",
            )?,
            "statement check",
        )?;
        Ok(b == self.closing
            && exact::add(self.opening, by_kind, "statement check")? == self.closing)
    }
}
