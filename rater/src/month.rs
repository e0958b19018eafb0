//! The billing month: the close that finalizes every account period with something to bill, payments received, and an account's history.
//!
//! A close of period P (run by the schedule after P ends plus a grace period, or by an
//! operator) walks the accounts book: every account billed by periods of P's kind whose P has
//! usage, a subscription, a balance or a payment gets its final invoice; the others are
//! skipped, each with its reason. An account's earlier periods that took usage or a payment
//! after their own close skipped it are finalized first, in order (the balance chain cannot
//! go back once P is final, so they would otherwise be on no invoice). It is idempotent and
//! resumable because finalizing is: an account already final counts as such, a rerun or a
//! concurrent close finalizes each account once, with the issuer's gapless numbers (the
//! counter's condition orders them).

use chrono::{DateTime, Duration, Utc};
use pricing::{Account, BillingPeriod, PeriodKind};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::invoices::{finalize_with, Finalizing};
use crate::limits::{CLOSE_LISTED_MAX, PAYMENT_REFERENCE_BYTES_MAX};
use crate::model::{DocRef, RecordedPayment};
use crate::notes::settle_late;
use crate::store::{PaymentOutcome, PaymentWrite, Store};

/// What a close did, account by account (lists cut at [`CLOSE_LISTED_MAX`], counts whole).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CloseReport {
    pub period: String,
    /// Accounts billed by periods of this kind.
    pub accounts: u64,
    pub finalized: u64,
    pub already_final: u64,
    pub skipped: u64,
    pub failed: u64,
    /// The invoices issued now, in account order.
    pub issued: Vec<Closed>,
    /// Accounts with nothing to bill in the period.
    pub skipped_accounts: Vec<String>,
    /// Accounts whose finalize failed, with why: a rerun retries them.
    pub failures: Vec<CloseFailure>,
}

/// An account period finalized by a close: the closed period, or an earlier one of the
/// account finalized first (see [`close`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub account: String,
    pub period: String,
    pub number: String,
}

/// An account period a close could not finalize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseFailure {
    pub account: String,
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// The period a scheduled close at `time` closes: the last period of `kind` whose end plus
/// `grace` has passed (the grace leaves late exports of the period time to arrive).
pub fn period_to_close(time: DateTime<Utc>, grace: Duration, kind: PeriodKind) -> BillingPeriod {
    let current = BillingPeriod::containing(kind, time - grace);
    // The period holding `time - grace` has not ended plus grace yet: the one before it has.
    let mut p = BillingPeriod::containing(kind, current.start - Duration::seconds(1));
    while p.end() + grace > time {
        p = BillingPeriod::containing(kind, p.start - Duration::seconds(1));
    }
    p
}

/// Finalizes every account period of `period` that has something to bill. `how` carries the
/// operator's override for a period that has not ended (otherwise the close is refused whole
/// with `PeriodNotEnded` before any account is touched).
pub async fn close<S: Store>(
    store: &S,
    config: &RaterConfig,
    period: BillingPeriod,
    how: Finalizing,
) -> Result<CloseReport, RaterError> {
    if !how.before_period_end && config.now_s() < period.end().timestamp() {
        return Err(RaterError::PeriodNotEnded {
            account: "*".to_string(),
            period: period.id(),
            ends_at: period.end(),
        });
    }
    let period_id = period.id();
    let mut accounts: Vec<&Account> = config
        .accounts
        .accounts
        .iter()
        .filter(|a| a.billing_period == period.kind)
        .collect();
    // Resellers' own accounts last: their statements bill their customers' usage of the period,
    // after the customers' own invoices are out.
    accounts.sort_by_key(|a| (config.billed_reseller(&a.id).is_some(), a.id.clone()));
    let keys: Vec<(String, String)> = accounts
        .iter()
        .map(|a| (a.id.clone(), period_id.clone()))
        .collect();
    let states = store.partitions("", &keys).await?;
    let mut report = CloseReport {
        period: period_id,
        accounts: accounts.len() as u64,
        ..CloseReport::default()
    };
    for (acc, state) in accounts.into_iter().zip(states) {
        match close_account(store, config, acc, period, &state, how, &mut report).await {
            Ok(AccountClose::Finalized(number)) => {
                report.finalized += 1;
                push_listed(
                    &mut report.issued,
                    Closed {
                        account: acc.id.clone(),
                        period: report.period.clone(),
                        number,
                    },
                );
            }
            Ok(AccountClose::AlreadyFinal) => report.already_final += 1,
            Ok(AccountClose::Skipped) => {
                report.skipped += 1;
                push_listed(&mut report.skipped_accounts, acc.id.clone());
            }
            Err(e) => {
                report.failed += 1;
                push_listed(
                    &mut report.failures,
                    CloseFailure {
                        account: acc.id.clone(),
                        code: e.code().to_string(),
                        message: e.public_message(),
                        retryable: e.retryable(),
                    },
                );
            }
        }
    }
    Ok(report)
}

fn push_listed<T>(list: &mut Vec<T>, item: T) {
    if list.len() < CLOSE_LISTED_MAX {
        list.push(item);
    }
}

/// What a close did to one account.
enum AccountClose {
    Finalized(String),
    AlreadyFinal,
    Skipped,
}

/// Closes one account's period: first the notes a crash left unissued (policy `note`), then
/// the account's earlier periods that something came into after their own close skipped it
/// (usage of a late export, a payment dated there; listed in `report` as they are issued), in
/// order, then its final invoice when it has something to bill (usage, a subscription, a
/// balance, a payment, earlier periods' late usage to bill as adjustments, or on a reseller's
/// own account its customers' usage at wholesale).
async fn close_account<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    state: &crate::store::PartitionState,
    how: Finalizing,
    report: &mut CloseReport,
) -> Result<AccountClose, RaterError> {
    settle_late(store, config, acc).await?;
    let balance = store.balance(&acc.id).await?;
    let payments = crate::store::chain_payments(store, &acc.id).await?;
    for earlier in crate::invoices::unbilled_before(acc, &balance, &payments, period) {
        match finalize_with(store, config, &acc.id, earlier, how).await {
            Ok(inv) => {
                report.finalized += 1;
                push_listed(
                    &mut report.issued,
                    Closed {
                        account: acc.id.clone(),
                        period: earlier.id(),
                        number: inv.number.unwrap_or_default(),
                    },
                );
            }
            // A concurrent close issued it.
            Err(RaterError::AlreadyFinalized { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let active = state.batches > 0
        || state.closed.is_some()
        || has_subscription(acc, period)
        || has_payment(store, acc, period).await?
        || carries_into(store, config, acc, period).await?
        || !crate::resellers::resold(store, config, acc, period)
            .await?
            .is_empty();
    if !active {
        // A reseller with nothing to bill this period still owes the wholesale of its
        // customers' late usage in its earlier statements: issued now, not at a statement
        // that may never come.
        if config.billed_reseller(&acc.id).is_some() {
            let markers = store.resold_markers(&acc.id).await?;
            if !markers.is_empty() {
                let balance = store.balance(&acc.id).await?;
                crate::invoices::resold_marks_final(store, config, acc, &balance, period).await?;
                crate::notes::settle_marked(store, config, acc, period, &markers).await?;
            }
        }
        return Ok(AccountClose::Skipped);
    }
    match finalize_with(store, config, &acc.id, period, how).await {
        Ok(inv) => Ok(AccountClose::Finalized(inv.number.unwrap_or_default())),
        Err(RaterError::AlreadyFinalized { .. }) => Ok(AccountClose::AlreadyFinal),
        Err(e) => Err(e),
    }
}

/// Whether one of the account's subscriptions is held during some of `period`.
fn has_subscription(acc: &Account, period: BillingPeriod) -> bool {
    acc.subscriptions
        .iter()
        .any(|s| s.start < period.end() && s.end.is_none_or(|e| e > period.start))
}

/// Whether the account brings something into `period`: a balance owed either way (from its
/// last final invoice, when its issuer's, or, before its first one, the accounts file), or late usage of closed
/// periods to bill as adjustments. Not when a later period of the account is final already
/// (a rerun of an earlier close, or a dead-lettered one replayed): that balance and that late
/// usage belong to the later chain. Usage, a subscription or a payment of `period` still make
/// it active then, and finalizing it fails loudly (`finalized_out_of_order`): that would be
/// money no invoice holds.
async fn carries_into<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
) -> Result<bool, RaterError> {
    let issuer = config.issuer_for(acc);
    let balance = store.balance(&acc.id).await?;
    if balance.later_final(&period.id()).is_some() {
        return Ok(false);
    }
    let owed = match (&balance.last, balance.brought_forward()) {
        // Another issuer's balance is not brought forward (`invoices::handed_over`): no
        // reason for the new issuer to invoice, unless the account still owes it from an
        // earlier time it billed the account (`invoices::brought_back`).
        (Some(last), _) if !crate::model::issued_by(&last.number, issuer) => {
            crate::invoices::brought_back(&balance, issuer).is_some()
        }
        (_, Some(brought)) => !brought.is_zero(),
        (_, None) => !acc.balance_brought_forward.is_zero(),
    };
    Ok(owed || !store.late_markers(&acc.id).await?.is_empty())
}

/// Whether the account received a payment dated in `period` (in the accounts file or recorded).
async fn has_payment<S: Store>(
    store: &S,
    acc: &Account,
    period: BillingPeriod,
) -> Result<bool, RaterError> {
    if acc.payments.iter().any(|p| period.contains(p.date)) {
        return Ok(true);
    }
    let payments = crate::store::chain_payments(store, &acc.id).await?;
    Ok(payments.iter().any(|p| period.contains(p.date)))
}

/// A payment received, as an operator or a bank feed reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    pub account: String,
    pub date: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: String,
    /// The bank's or the payment provider's reference: recording the same payment twice is a
    /// no-op, another payment under the same reference is refused.
    pub reference: String,
    /// Paid to an issuer that no longer bills the account (its series, as its documents are
    /// numbered): settles what the account owes it (`Balance::owed_elsewhere`: the balance
    /// handed over to it when the account moved, and its notes since), and is on none of the
    /// account's own invoices. Omitted,
    /// or the issuer that bills the account now: the account's own payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<String>,
}

/// Records a payment against the account period its date falls in (refused once that period
/// is final, or a later period of the account is: it would be on no invoice). Checked first:
/// the account exists, the amount is positive and in the account's invoice currency, the
/// reference is short printable text.
pub async fn record_payment<S: Store>(
    store: &S,
    config: &RaterConfig,
    p: &PaymentInput,
) -> Result<PaymentOutcome, RaterError> {
    let acc = config.known_account(&p.account)?;
    let bad = |field: &'static str, message: String| RaterError::BadRequest { field, message };
    if let Some(payee) = p.payee.as_deref() {
        if let Some(outcome) = record_payment_elsewhere(store, config, acc, p, payee).await? {
            return Ok(outcome);
        }
    }
    // The invoice's currency: a reseller's customer pays in its reseller's.
    let currency = config.invoice_currency(acc);
    if p.currency != currency {
        return Err(bad(
            "currency",
            format!(
                "account `{}` is invoiced in {currency}, not {}",
                p.account, p.currency
            ),
        ));
    }
    payment_shape(p, &currency)?;
    let period = BillingPeriod::containing(acc.billing_period, p.date);
    // The book's payment of the same reference is this payment: recorded, it replaces the
    // book's copy (a statement leaves out a book payment whose reference is recorded). Once
    // the book copy's period is final, that invoice has credited it: recorded in another
    // period, it would be credited twice.
    if let Some(b) = acc.payments.iter().find(|b| b.reference == p.reference) {
        let listed = BillingPeriod::containing(acc.billing_period, b.date);
        if listed != period
            && store
                .final_invoice(&p.account, &listed.id())
                .await?
                .is_some()
        {
            return Err(bad(
                "date",
                format!(
                    "the accounts book lists payment `{}` of account `{}` dated {}, credited on its final invoice of {}: recorded again dated {} (period {}), it would be credited twice",
                    p.reference,
                    p.account,
                    b.date.to_rfc3339(),
                    listed.id(),
                    p.date.to_rfc3339(),
                    period.id()
                ),
            ));
        }
    }
    let write = PaymentWrite {
        account: p.account.clone(),
        period_id: period.id(),
        payment: RecordedPayment {
            reference: p.reference.clone(),
            date: p.date,
            amount: p.amount,
            currency,
            payee: None,
        },
    };
    Ok(store.record_payment(&write).await?)
}

/// The checks of [`record_payment`] that do not depend on who is paid: a positive amount with
/// no more decimals than `currency` has, a date in years 0001-9999, a short printable
/// reference.
fn payment_shape(p: &PaymentInput, currency: &str) -> Result<(), RaterError> {
    let bad = |field: &'static str, message: String| RaterError::BadRequest { field, message };
    if p.amount <= Decimal::ZERO || p.amount > pricing::invoice::balance_max() {
        return Err(bad(
            "amount",
            format!(
                "{} is not a payment (more than 0, at most {})",
                p.amount,
                pricing::invoice::balance_max()
            ),
        ));
    }
    let minor = pricing::money::minor_units(currency).unwrap_or(2);
    if p.amount.normalize().scale() > minor {
        return Err(bad(
            "amount",
            format!(
                "{} has more decimals than {currency} has ({minor})",
                p.amount
            ),
        ));
    }
    if !pricing::period::supported(p.date) {
        return Err(bad(
            "date",
            format!("{} is not in years 0001-9999", p.date.to_rfc3339()),
        ));
    }
    if p.reference.is_empty()
        || p.reference.len() > PAYMENT_REFERENCE_BYTES_MAX
        || !p
            .reference
            .chars()
            .all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(bad(
            "reference",
            format!("must be 1 to {PAYMENT_REFERENCE_BYTES_MAX} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// [`record_payment`] of a payment to `payee`, an issuer that no longer bills the account:
/// it settles what the account owes that issuer (`Balance::owed_elsewhere`: its last final
/// invoice's balance, which the new issuer's first invoice hands over to it, and its notes
/// after that), on none of the account's invoices. Refused unless `payee` issued documents to
/// the account in the payment's currency. A payment to the issuer that bills the account now,
/// in the account's invoice currency, is the account's own: `None`, recorded as such by the
/// caller. In another currency, while the account still owes that issuer from an earlier time
/// it billed the account, it settles that (its invoices in the new currency wait for it to be
/// settled: `currency_changed`).
async fn record_payment_elsewhere<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    p: &PaymentInput,
    payee: &str,
) -> Result<Option<PaymentOutcome>, RaterError> {
    let bad = |field: &'static str, message: String| RaterError::BadRequest { field, message };
    if payee == config.issuer_for(acc) {
        let owed_from_before = p.currency != config.invoice_currency(acc)
            && store
                .balance(&acc.id)
                .await?
                .owed_elsewhere
                .get(payee)
                .is_some_and(|o| !o.is_zero());
        if !owed_from_before {
            return Ok(None);
        }
    }
    let history = store.history(&p.account).await?;
    // Newest first: the payee's latest document says the currency what is owed to it is in
    // (an issuer billing the account again in a new currency has its invoices refused while
    // it is owed in the old one, so its latest is still of the old).
    let Some(latest) = history
        .iter()
        .find(|d| crate::model::series_of(&d.number) == payee)
    else {
        return Err(bad(
            "payee",
            format!(
                "`{payee}` issued no document to account `{}`: a payee is a former issuer of the account (the series its documents are numbered in)",
                p.account
            ),
        ));
    };
    if p.currency != latest.currency {
        return Err(bad(
            "currency",
            format!(
                "`{payee}` billed account `{}` in {}, not {}",
                p.account, latest.currency, p.currency
            ),
        ));
    }
    payment_shape(p, &latest.currency)?;
    if acc.payments.iter().any(|b| b.reference == p.reference) {
        return Err(bad(
            "reference",
            format!(
                "the accounts book lists payment `{}` of account `{}` on its own invoices: a payment to `{payee}` takes another reference",
                p.reference, p.account
            ),
        ));
    }
    let write = PaymentWrite {
        account: p.account.clone(),
        period_id: String::new(),
        payment: RecordedPayment {
            reference: p.reference.clone(),
            date: p.date,
            amount: p.amount,
            currency: p.currency.clone(),
            payee: Some(payee.to_string()),
        },
    };
    Ok(Some(store.record_payment(&write).await?))
}

/// An account's final invoices and notes, newest first.
pub async fn history<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
) -> Result<Vec<DocRef>, RaterError> {
    config.known_account(account)?;
    Ok(store.history(account).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_scheduled_close_closes_the_last_period_past_its_grace() {
        let grace = Duration::hours(72);
        let cases = [
            // (event time, kind, period closed)
            ("2017-03-04T00:00:00Z", PeriodKind::Month, "2017-02"),
            ("2017-03-03T23:59:59Z", PeriodKind::Month, "2017-01"),
            ("2017-03-31T12:00:00Z", PeriodKind::Month, "2017-02"),
            ("2017-02-18T01:00:00Z", PeriodKind::Day, "2017-02-14"),
            ("2017-02-16T00:00:00Z", PeriodKind::Week, "2017-W06"),
        ];
        for (time, kind, want) in cases {
            assert_eq!(
                period_to_close(t(time), grace, kind).id(),
                want,
                "{time} {kind:?}"
            );
        }
        assert_eq!(
            period_to_close(
                t("2017-03-01T00:00:00Z"),
                Duration::zero(),
                PeriodKind::Month
            )
            .id(),
            "2017-02"
        );
    }
}
