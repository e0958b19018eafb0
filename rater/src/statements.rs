//! Account statements from the store: the account's final invoices, notes and payments over a range of days, laid out and reconciled by `pricing::account_statement`.
//!
//! Reads are bounded by the range, not the account's age: the history (one query) says which
//! invoices were issued when, and only the last invoice issued before the range (whose
//! carried-forward stands for everything before it) and those issued within it are read. An
//! account moved between issuers is read whole: a new issuer's first invoice hands the balance
//! before it over to the former issuer, and the statement finds that amount from the invoices
//! around the hand-over. A statement is of one currency, the account's invoice currency now
//! unless another is asked for: documents and payments in another belong to another chain (a
//! move to an issuer in another currency leaves that balance with the former issuer), which
//! its own statement shows; the statement names those currencies.

use chrono::{DateTime, NaiveDate, Utc};
use pricing::account_statement::{
    account_statement, AccountStatement, Movement, StatementError, StatementParty,
};
use pricing::report::{REPORT_YEAR_MAX, REPORT_YEAR_MIN};

use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::model::DocKind;
use crate::store::Store;

/// The range of a statement from its text parameters: days (`2017-02-01`) or months
/// (`2017-02`: its first day for `from`, its last for `to`); `to` defaults to `from`'s.
///
/// # Errors
/// [`RaterError::BadRequest`] naming the parameter.
pub fn parse_range(from: &str, to: Option<&str>) -> Result<(NaiveDate, NaiveDate), RaterError> {
    let bad = crate::reports::bad_query;
    let f = pricing::report::day_of("from", from, false).map_err(bad)?;
    let t = pricing::report::day_of("to", to.unwrap_or(from), true).map_err(bad)?;
    Ok((f, t))
}

/// The statement of `account` from `from` to `to` (both included), in `currency` (the
/// account's invoice currency when `None`).
///
/// # Errors
/// [`RaterError::UnknownAccount`]; [`RaterError::BadRequest`] for dates outside the years a
/// statement covers, or a currency other than the invoice currency that the account has no
/// document or payment in; [`RaterError::Statement`] for a reversed range or documents that do
/// not reconcile; store errors.
pub async fn statement<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    from: NaiveDate,
    to: NaiveDate,
    currency: Option<&str>,
) -> Result<AccountStatement, RaterError> {
    let acc = config.known_account(account)?;
    for (field, d) in [("from", from), ("to", to)] {
        if !(REPORT_YEAR_MIN..=REPORT_YEAR_MAX).contains(&chrono::Datelike::year(&d)) {
            return Err(RaterError::BadRequest {
                field,
                message: format!(
                    "{d} is outside the years {REPORT_YEAR_MIN} to {REPORT_YEAR_MAX} a statement covers"
                ),
            });
        }
    }
    let refused = |error: StatementError| RaterError::Statement {
        account: account.to_string(),
        error,
    };
    if to < from {
        return Err(refused(StatementError::Range { from, to }));
    }
    let now = config.invoice_currency(acc);
    let currency = currency.map_or_else(|| now.clone(), str::to_ascii_uppercase);
    let day_of =
        |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).map_or(from, |t| t.date_naive());
    let mut docs = store.history(account).await?;
    let mut stored = store.payments(account).await?;
    // A statement is of one currency. Documents in another are of another chain (the account
    // changed currency with a zero balance, or moved to an issuer in another currency, which
    // left its balance with the former issuer): not in this one's balance, named instead.
    let mut others: std::collections::BTreeSet<String> = docs
        .iter()
        .map(|d| d.currency.clone())
        .chain(stored.iter().map(|p| p.currency.clone()))
        .collect();
    let known = others.remove(&currency);
    if currency != now {
        if !known {
            return Err(RaterError::BadRequest {
                field: "currency",
                message: format!(
                    "account `{account}` has no document or payment in {currency} (it is invoiced in {now}{})",
                    others
                        .iter()
                        .filter(|c| **c != now)
                        .map(|c| format!(", and has documents in {c}"))
                        .collect::<String>()
                ),
            });
        }
        // The accounts book's payments and opening balance are of the invoice currency.
        if !acc.payments.is_empty() || !acc.balance_brought_forward.is_zero() {
            others.insert(now.clone());
        }
    }
    // Oldest first; the store's order (newest first) breaks ties of the same millisecond.
    docs.reverse();
    docs.sort_by_key(|d| d.issued_at_ms);
    // Where this currency's chain was handed over to an issuer in another currency: that
    // issuer's first invoice, after this chain's last (its issuer's prepaid credit then is set
    // against what was handed over, which no invoice of this currency shows).
    let handed_abroad = {
        let invoices: Vec<&crate::model::DocRef> =
            docs.iter().filter(|d| d.kind == DocKind::Invoice).collect();
        invoices
            .windows(2)
            .filter(|w| w[0].currency == currency && w[1].currency != currency)
            .filter(|w| {
                crate::model::series_of(&w[0].number) != crate::model::series_of(&w[1].number)
            })
            .map(|w| (w[0].number.clone(), w[1].issued_at_ms))
            .collect::<Vec<_>>()
    };
    docs.retain(|d| d.currency == currency);
    stored.retain(|p| p.currency == currency);
    let anchor = docs
        .iter()
        .rposition(|d| d.kind == DocKind::Invoice && day_of(d.issued_at_ms) < from);
    // A new issuer's invoice up to the anchor may have handed the balance before it over to
    // the former issuer (`invoices::handed_over`): the anchor's carried-forward does not hold
    // that, and the statement finds it from the invoices around the hand-over. Such an account
    // (moved between issuers) is read whole.
    let moved_before = |a: usize| {
        docs[..=a]
            .iter()
            .filter(|d| d.kind == DocKind::Invoice)
            .map(|d| crate::model::series_of(&d.number))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1
    };
    let anchor = anchor.filter(|a| !moved_before(*a));
    let mut movements = Vec::new();
    // Payments are the invoices' own up to the last period a read invoice covers (what the
    // balance chain was made of), then the store's and the book's not yet on an invoice.
    let mut covered_until_ms = i64::MIN;
    // The series of the last invoice before each document: a note of another series was
    // owed to its issuer (`Balance::owed_elsewhere`), in no invoice's brought-forward.
    let mut last_series: Option<&str> = None;
    for (i, d) in docs.iter().enumerate() {
        let day = day_of(d.issued_at_ms);
        let other_series = last_series.is_some_and(|s| s != crate::model::series_of(&d.number));
        let elsewhere = d.kind != DocKind::Invoice && other_series;
        let new_issuer = d.kind == DocKind::Invoice && other_series;
        if d.kind == DocKind::Invoice {
            last_series = Some(crate::model::series_of(&d.number));
        }
        // Documents before the anchor are in its carried-forward (but those owed elsewhere);
        // after `to`, not shown.
        if (anchor.is_some_and(|a| i < a) && !elsewhere) || day > to {
            continue;
        }
        match d.kind {
            DocKind::Invoice => {
                let inv = store
                    .final_invoice(account, &d.period)
                    .await?
                    .ok_or_else(|| RaterError::NoFinalInvoice {
                        account: account.to_string(),
                        period: d.period.clone(),
                    })?;
                covered_until_ms = covered_until_ms.max(inv.period_end.timestamp_millis());
                for p in &inv.payments {
                    movements.push(Movement::payment(
                        &p.reference,
                        p.amount,
                        p.date.timestamp_millis(),
                        p.date.date_naive(),
                    ));
                }
                let series = crate::model::series_of(&d.number);
                let prepaid = inv.prepaid_remaining.unwrap_or_default();
                if let Some((_, at_ms)) = handed_abroad.iter().find(|(n, _)| *n == d.number) {
                    if !prepaid.is_zero() {
                        movements.push(
                            Movement::prepaid_applied(
                                &d.number,
                                &d.period,
                                prepaid,
                                *at_ms,
                                day_of(*at_ms),
                            )
                            .of_issuer(series)
                            .owed_elsewhere(),
                        );
                    }
                }
                let invoice = Movement::invoice(&inv, d.issued_at_ms).of_issuer(series);
                movements.push(if new_issuer {
                    invoice.of_new_issuer()
                } else {
                    invoice
                });
            }
            DocKind::CreditNote | DocKind::DebitNote => {
                let note = Movement::note(
                    if d.kind == DocKind::CreditNote {
                        pricing::NoteKind::Credit
                    } else {
                        pricing::NoteKind::Debit
                    },
                    &d.number,
                    &d.period,
                    d.corrects.as_deref().unwrap_or_default(),
                    d.total,
                    d.issued_at_ms,
                    day,
                )
                .of_issuer(crate::model::series_of(&d.number));
                movements.push(if elsewhere {
                    note.owed_elsewhere()
                } else {
                    note
                });
            }
        }
    }
    // As an invoice takes them: the store's, and the book's whose reference the store's own
    // lack (`invoices::statement`: a payment to a former issuer under the same reference does
    // not stand for the book's); and those to a former issuer (its payee), which no invoice
    // takes.
    let open = stored
        .iter()
        .map(|p| (p.reference.as_str(), p.amount, p.date, p.payee.as_deref()))
        .chain(
            acc.payments
                .iter()
                .filter(|_| currency == now)
                .filter(|b| {
                    !stored
                        .iter()
                        .any(|p| p.on_chain() && p.reference == b.reference)
                })
                .map(|b| (b.reference.as_str(), b.amount, b.date, None)),
        )
        .filter(|(_, _, date, payee)| {
            payee.is_some() || date.timestamp_millis() >= covered_until_ms
        });
    for (reference, amount, date, payee) in open {
        let payment = Movement::payment(
            reference,
            amount,
            date.timestamp_millis(),
            date.date_naive(),
        );
        movements.push(match payee {
            Some(payee) => payment.of_issuer(payee).owed_elsewhere(),
            None => payment,
        });
    }
    let opening_balance = match currency == now {
        true => acc.balance_brought_forward,
        // Another currency's chain starts at its first invoice's brought-forward.
        false => rust_decimal::Decimal::ZERO,
    };
    let party = StatementParty {
        account: acc.id.clone(),
        account_name: acc.name.clone(),
        address: acc.address.clone(),
        currency,
        opening_balance,
    };
    let mut st = account_statement(&party, from, to, movements).map_err(refused)?;
    st.other_currencies = others.into_iter().collect();
    Ok(st)
}
