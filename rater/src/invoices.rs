//! Step 4, invoices: a batch's answer (interim invoices, or the final ones it asked for), an account period's invoice on demand, and finalizing: one numbered, immutable invoice per account period, gapless per issuer.

use pricing::error::shown;
use pricing::{Account, BillingPeriod, Invoice, InvoiceKind, Statement};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::{ensure_config_stored, RaterConfig};
use crate::error::{RaterError, StoreError};
use crate::limits::{
    ANSWER_INVOICES_MAX, ANSWER_INVOICE_BYTES_MAX, FINALIZE_ATTEMPTS_MAX, FINAL_INVOICE_BYTES_MAX,
};
use crate::model::{
    Balance, BatchSummary, DocKind, DocRef, Finalized, LastFinal, Mode, Partition, RecordedPayment,
};
use crate::notes::{notes_of, pending_adjustments, settle_late, LatePartition};
use crate::retry::backoff;
use crate::store::month_before;
use crate::store::{invoice_number, Finalize, Store};

/// The answer to a batch: the same on every delivery of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateResponse {
    pub batch_id: String,
    /// True when the batch had been rated before and nothing was written now.
    pub replayed: bool,
    /// Records in the export.
    pub records: u64,
    /// Records not counted because their id was counted before with the same content.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// Usage chunk items the batch stored.
    pub usage_items: u64,
    /// Accounts the batch brought usage for.
    #[serde(default)]
    pub accounts: u64,
    /// Account periods (partitions) the batch brought usage for: one invoice each.
    #[serde(default)]
    pub partitions: u64,
    /// `final` batches: the account periods finalized, with their invoice numbers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalized: Vec<Finalized>,
    /// The invoices of the batch's account periods, when the answer can hold them all: at
    /// most [`ANSWER_INVOICES_MAX`] and [`ANSWER_INVOICE_BYTES_MAX`] bytes of invoices.
    pub invoices: Vec<Invoice>,
    /// Invoices left out of the answer (a batch over many accounts): read each with
    /// `invoice_path`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invoices_omitted: u64,
    /// Where an account's invoice is read when left out: a Function URL `GET` query with
    /// `{account}` and `{period}` to fill in (`ratecard invoice --account ... --period ...`
    /// from the CLI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_path: Option<String>,
    /// The closed periods the batch brought late usage into, and what became of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<LatePartition>,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The answer to a batch that was rated before.
pub(crate) async fn replay<S: Store>(
    store: &S,
    config: &RaterConfig,
    summary: BatchSummary,
    sha256: &str,
    account: Option<&str>,
) -> Result<RateResponse, RaterError> {
    if summary.content_sha256 != sha256 {
        return Err(RaterError::IdempotencyKeyReused {
            batch_id: summary.batch_id,
            stored_sha256: summary.content_sha256,
            sha256: sha256.to_string(),
        });
    }
    answer(store, config, &summary, account, true).await
}

/// The answer to a batch, from its summary: its accounts' invoices when they fit, otherwise a
/// pointer to read each. A `final` batch first finalizes every account not finalized yet (a
/// crash may have stopped an earlier attempt half-way: finalizing is idempotent per account).
pub(crate) async fn answer<S: Store>(
    store: &S,
    config: &RaterConfig,
    summary: &BatchSummary,
    account: Option<&str>,
    replayed: bool,
) -> Result<RateResponse, RaterError> {
    let partitions: Vec<(Partition, BillingPeriod)> = summary
        .partitions()
        .into_iter()
        .filter(|p| account.is_none_or(|only| only == p.account))
        .map(|p| {
            let period =
                BillingPeriod::parse(&p.period).map_err(|e| RaterError::Config(e.to_string()))?;
            Ok((p, period))
        })
        .collect::<Result<_, RaterError>>()?;
    let finalized = match summary.mode {
        Mode::Interim => Vec::new(),
        Mode::Final => finalize_each(store, config, &summary.batch_id, &partitions).await?,
    };
    let total = summary.partitions_total();
    let mut invoices = Vec::new();
    let mut bytes = 0usize;
    let mut omitted = if total > ANSWER_INVOICES_MAX as u64 {
        total
    } else {
        0
    };
    if omitted == 0 {
        for (p, period) in &partitions {
            let inv = invoice_for(store, config, &p.account, *period).await?;
            bytes += serde_json::to_vec(&inv).map_or(0, |v| v.len());
            if bytes > ANSWER_INVOICE_BYTES_MAX {
                omitted = (partitions.len() - invoices.len()) as u64;
                break;
            }
            invoices.push(inv);
        }
    }
    let late = late_outcomes(store, config, summary, account).await?;
    Ok(RateResponse {
        batch_id: summary.batch_id.clone(),
        replayed,
        records: summary.records,
        duplicates_dropped: summary.duplicates_dropped,
        usage_items: summary.usage_items,
        accounts: summary.accounts_total(),
        partitions: total,
        finalized,
        invoices,
        invoices_omitted: omitted,
        invoice_path: (omitted > 0).then(|| "?account={account}&period={period}".to_string()),
        late,
    })
}

/// The late partitions of a batch: under policy `note` their notes are issued now (a replay
/// issues what a crash left, then lists the same notes); under `next_period` they wait for
/// the account's next invoice.
async fn late_outcomes<S: Store>(
    store: &S,
    config: &RaterConfig,
    summary: &BatchSummary,
    account: Option<&str>,
) -> Result<Vec<LatePartition>, RaterError> {
    let mut out = Vec::new();
    let mut settled: Vec<&str> = Vec::new();
    for p in summary
        .late
        .iter()
        .filter(|p| account.is_none_or(|only| only == p.account))
    {
        let acc = config.known_account(&p.account)?;
        if !settled.contains(&p.account.as_str()) {
            settle_late(store, config, acc).await?;
            settled.push(&p.account);
        }
        let final_invoice = store.final_invoice(&p.account, &p.period).await?;
        // A period another issuer billed (the customer moved since) is corrected by its notes.
        let elsewhere = final_invoice.as_ref().is_some_and(|i| {
            crate::config::reseller_of_catalog(&i.bill.catalog_id) != acc.reseller.as_deref()
        });
        let policy = match elsewhere {
            true => pricing::LateUsagePolicy::Note,
            false => crate::notes::policy(config, acc),
        };
        let invoice = final_invoice.and_then(|i| i.number).unwrap_or_default();
        let mut later_notes = Vec::new();
        if policy == pricing::LateUsagePolicy::Note {
            let period = BillingPeriod::parse(&p.period).map_err(|e| RaterError::Internal {
                message: format!("a late partition's period does not parse: {e}"),
            })?;
            for q in crate::notes::later_in_month(store, &p.account, period).await? {
                later_notes.extend(notes_of(store, &p.account, &q.id()).await?);
            }
        }
        out.push(LatePartition {
            account: p.account.clone(),
            period: p.period.clone(),
            invoice,
            policy,
            notes: notes_of(store, &p.account, &p.period).await?,
            later_notes,
        });
    }
    Ok(out)
}

/// Finalizes each account period of a `final` batch (those finalized before are read back),
/// in order. A failure part-way names the ones finalized so far and the one that failed; a
/// retry of the batch finalizes the rest.
pub(crate) async fn finalize_each<S: Store>(
    store: &S,
    config: &RaterConfig,
    batch_id: &str,
    partitions: &[(Partition, BillingPeriod)],
) -> Result<Vec<Finalized>, RaterError> {
    let mut done = Vec::new();
    for (p, period) in partitions {
        let inv = match finalize(store, config, &p.account, *period).await {
            Ok(inv) => Ok(inv),
            Err(RaterError::AlreadyFinalized { .. }) => {
                invoice_for(store, config, &p.account, *period).await
            }
            Err(e) => Err(e),
        };
        match inv {
            Ok(inv) => done.push(Finalized {
                account: p.account.clone(),
                period: p.period.clone(),
                number: inv.number.unwrap_or_default(),
            }),
            Err(e) => {
                return Err(RaterError::FinalizeIncomplete {
                    batch_id: batch_id.to_string(),
                    finalized: done,
                    account: p.account.clone(),
                    cause: Box::new(e),
                })
            }
        }
    }
    Ok(done)
}

/// The invoice of an account for a period: the final one once issued, else an interim one
/// computed now from committed usage and the account's statement (not stored, not numbered).
pub async fn invoice_for<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
) -> Result<Invoice, RaterError> {
    invoice_as(store, config, account, period, Pricing::Interim).await
}

/// [`invoice_for`], interim for the whole period or to date (`how`).
pub async fn invoice_as<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
    how: Pricing,
) -> Result<Invoice, RaterError> {
    let period_id = period.id();
    if let Some(inv) = store.final_invoice(account, &period_id).await? {
        return Ok(inv);
    }
    let pu = store.period_usage(account, &period_id).await?;
    interim(store, config, account, period, how, &pu.usage).await
}

/// [`invoice_for`] with the period's committed usage, read once (what a report spreads the
/// invoice over; the interim invoice is priced from the same read).
pub async fn invoice_and_usage<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
) -> Result<(Invoice, pricing::Usage), RaterError> {
    let period_id = period.id();
    let usage = store.period_usage(account, &period_id).await?.usage;
    let inv = match store.final_invoice(account, &period_id).await? {
        Some(inv) => inv,
        None => interim(store, config, account, period, Pricing::Interim, &usage).await?,
    };
    Ok((inv, usage))
}

/// The interim invoice of `account`'s open `period` priced now from `usage`.
async fn interim<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
    how: Pricing,
    usage: &pricing::Usage,
) -> Result<Invoice, RaterError> {
    let acc = config.known_account(account)?;
    let balance = store.balance(account).await?;
    let payments = crate::store::chain_payments(store, account).await?;
    let issuer = config.issuer_for(acc);
    let back = brought_back(&balance, issuer);
    let mut st = statement(acc, period, &balance, &payments, how, issuer, back.as_ref());
    // Earlier periods' late usage this period's final invoice will bill, as it stands now.
    let today = crate::notes::day_of(config.now_s());
    st.adjustments = pending_adjustments(store, config, acc, period, today)
        .await?
        .into_iter()
        .filter_map(|a| a.note.map(|n| n.note))
        .collect();
    st.resold = crate::resellers::resold(store, config, acc, period).await?;
    st.month_before = month_before(store, account, period).await?;
    priced(config, acc, period, usage, &st)
}

/// How an invoice of an open period is priced: issued (a final invoice, with its issue date)
/// or interim, for the whole period or "to date" up to an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    /// An interim invoice of the whole period (usage so far, subscriptions for the month).
    Interim,
    /// An interim invoice up to an instant inside the period (StratosLive's "from the last
    /// invoice to this moment"): subscriptions and fixed fees prorated to it.
    ToDate(chrono::DateTime<chrono::Utc>),
    /// The final invoice, issued on this day.
    Issued(chrono::NaiveDate),
}

impl Pricing {
    /// The interim pricing a request asks for: `None` for the whole period; `now` or an
    /// RFC 3339 instant for "to date" (`now` after the period's end is the whole period; an
    /// instant outside the period is refused naming `as_of`).
    pub fn interim(
        as_of: Option<&str>,
        period: BillingPeriod,
        now_s: i64,
    ) -> Result<Pricing, RaterError> {
        let Some(text) = as_of.map(str::trim) else {
            return Ok(Pricing::Interim);
        };
        let bad = |message: String| RaterError::BadRequest {
            field: "as_of",
            message,
        };
        let at = if text == "now" {
            let now = chrono::DateTime::from_timestamp(now_s, 0).unwrap_or_default();
            if now >= period.end() {
                return Ok(Pricing::Interim);
            }
            now
        } else {
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    bad(format!(
                        "`{}`: not an RFC 3339 instant or `now`: {e}",
                        shown(text)
                    ))
                })?
                .with_timezone(&chrono::Utc)
        };
        if at < period.start || at > period.end() {
            return Err(bad(format!(
                "{at} is outside period {} ({} to {})",
                period.id(),
                period.start,
                period.end()
            )));
        }
        Ok(Pricing::ToDate(at))
    }
}

/// The statement of `acc`'s `period`: brought forward and prepaid credit from the account's
/// last final invoice, with the notes issued since (the accounts book's opening balance and
/// credit before the first one),
/// and the payments (from the store, and the book's not in the store) dated in the period.
pub(crate) fn statement(
    acc: &Account,
    period: BillingPeriod,
    balance: &Balance,
    payments: &[RecordedPayment],
    how: Pricing,
    issuer: &str,
    back: Option<&(String, Decimal)>,
) -> Statement {
    let mut st = Statement::from_book(acc, period);
    match (&balance.last, balance.brought_forward()) {
        (Some(last), Some(brought)) if crate::model::issued_by(&last.number, issuer) => {
            st.brought_forward = brought;
            st.prepaid_available = last.prepaid_remaining;
        }
        // Another issuer's: left owed to it ([`handed_over`]); this issuer's chain starts
        // again from what the account still owed it when it billed the account before
        // ([`brought_back`]), or from zero (not from the accounts book's opening balance,
        // which the first issuer's first invoice took).
        (Some(_), _) => {
            st.brought_forward = back.map_or(Decimal::ZERO, |b| b.1);
            st.prepaid_available = Decimal::ZERO;
        }
        (None, _) => {}
    }
    st.payments
        .retain(|b| !payments.iter().any(|p| p.reference == b.reference));
    st.payments.extend(
        payments
            .iter()
            .filter(|p| period.contains(p.date))
            .map(|p| pricing::invoice::Payment {
                date: p.date,
                amount: p.amount,
                reference: p.reference.clone(),
            }),
    );
    st.payments
        .sort_by(|a, b| a.date.cmp(&b.date).then(a.reference.cmp(&b.reference)));
    match how {
        Pricing::Interim => {}
        Pricing::ToDate(t) => st.as_of = Some(t),
        Pricing::Issued(day) => st.issue_date = Some(day),
    }
    st
}

/// `acc`'s invoice of `period` under `statement`, priced by the deployment's catalog.
fn priced(
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    usage: &pricing::Usage,
    statement: &Statement,
) -> Result<Invoice, RaterError> {
    let mut inv = pricing::invoice_with(config.catalog_for(acc), acc, period, usage, statement)?;
    inv.accounts_version = Some(config.accounts.version.clone());
    Ok(inv)
}

/// Whether finalizing may close a period that has not ended yet: only an operator's explicit
/// override (which the request's log line records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Finalizing {
    pub before_period_end: bool,
}

/// Issues the final, numbered invoice of an account's period: gapless numbers per issuer, every
/// committed batch on it, once. Finalizing again is refused with `AlreadyFinalized`; a period
/// that has not ended is refused with `PeriodNotEnded` (see [`finalize_with`] for the
/// operator's override).
pub async fn finalize<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
) -> Result<Invoice, RaterError> {
    finalize_with(store, config, account, period, Finalizing::default()).await
}

/// [`finalize`], with the operator's override of the period's end.
pub async fn finalize_with<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
    how: Finalizing,
) -> Result<Invoice, RaterError> {
    let period_id = period.id();
    let acc = config.known_account(account)?;
    if !how.before_period_end && config.now_s() < period.end().timestamp() {
        return Err(RaterError::PeriodNotEnded {
            account: account.to_string(),
            period: period_id,
            ends_at: period.end(),
        });
    }
    ensure_config_stored(store, config).await?;
    // Notes a crash left unissued (policy `note`) go out before the next invoice; on a
    // reseller's account, the wholesale note of its customers' late usage too.
    settle_late(store, config, acc).await?;
    // Before any wholesale note: one note once the customers are final, not one per attempt.
    let balance = store.balance(&acc.id).await?;
    resold_marks_final(store, config, acc, &balance, period).await?;
    crate::notes::settle_resold(store, config, acc, period).await?;
    for attempt in 0..FINALIZE_ATTEMPTS_MAX {
        if let Some(existing) = store.final_invoice(account, &period_id).await? {
            return Err(RaterError::AlreadyFinalized {
                account: account.to_string(),
                period: period_id,
                number: existing.number.unwrap_or_default(),
            });
        }
        let f = finalization(store, config, acc, period).await?;
        let inv = f.invoice.clone();
        match store.finalize(&f).await {
            Ok(()) => return Ok(inv),
            Err(StoreError::FinalizeConflict { .. }) => {
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(RaterError::Store(StoreError::FinalizeConflict {
        account: account.to_string(),
        period: period_id,
    }))
}

/// On a reseller's own account, refuses (`CustomerOpen`) while a mark of a period before
/// `period` (one its statement already billed: a customer's usage that came after that
/// statement) has customers whose invoices are not final. The mark is cleared by the next
/// statement, so it must wait until that usage can grow no more but as the customers' late
/// usage: else more of it could reach no statement.
pub(crate) async fn resold_marks_final<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    balance: &Balance,
    period: BillingPeriod,
) -> Result<(), RaterError> {
    if config.billed_reseller(&acc.id).is_none() {
        return Ok(());
    }
    let period_id = period.id();
    for q in balance
        .open
        .iter()
        .filter(|q| q.as_str() < period_id.as_str())
    {
        if let Ok(q) = BillingPeriod::parse(q) {
            let customers = crate::resellers::resold(store, config, acc, q).await?;
            crate::resellers::customers_final(store, acc, q, &customers).await?;
        }
    }
    Ok(())
}

/// Refuses (`CurrencyChanged`) a final invoice in `currency` when the account carries amounts
/// in another: its last final invoice's balance, prepaid credit or the notes since it, or a
/// payment recorded for `period`. The statement adds them as numbers; only amounts of one
/// currency add up. (A balance written before the currency was kept is not checked.)
fn same_currency(
    acc: &Account,
    period: BillingPeriod,
    balance: &Balance,
    payments: &[RecordedPayment],
    currency: &str,
    issuer: &str,
) -> Result<(), RaterError> {
    // Another issuer's balance is handed over to it, not brought forward ([`handed_over`]).
    let own = balance
        .last
        .as_ref()
        .filter(|l| crate::model::issued_by(&l.number, issuer));
    let carried = own.and_then(|last| {
        let owes = !last.carried_forward.is_zero()
            || !last.prepaid_remaining.is_zero()
            || !balance.notes_since.is_zero();
        last.currency.as_deref().filter(|c| owes && *c != currency)
    });
    let paid = payments
        .iter()
        .find(|p| period.contains(p.date) && p.currency != currency)
        .map(|p| p.currency.as_str());
    match carried.or(paid) {
        Some(from) => Err(RaterError::CurrencyChanged {
            account: acc.id.clone(),
            period: period.id(),
            from: from.to_string(),
            to: currency.to_string(),
        }),
        None => Ok(()),
    }
}

/// When the account's last final invoice is another issuer's than `issuer` (the book moved the
/// customer to another reseller, or to or from the provider): that issuer's series and what
/// the account owes it, its carried-forward and the notes since, less the prepaid credit it
/// still holds. The new issuer's first final invoice hands this over to
/// [`Balance::owed_elsewhere`] and starts its own chain from zero: it never asks for another
/// issuer's money, nor gives away another's credit, and the former issuer's debt never holds
/// up the new issuer's invoicing (or its currency). A payment to the former issuer names it
/// (`payee`) and settles the same total.
pub(crate) fn handed_over(balance: &Balance, issuer: &str) -> Option<(String, Decimal)> {
    let last = balance
        .last
        .as_ref()
        .filter(|l| !crate::model::issued_by(&l.number, issuer))?;
    // Bounded far below Decimal's range, as `Balance::brought_forward` says.
    let owed = last
        .carried_forward
        .saturating_add(balance.notes_since)
        .saturating_sub(last.prepaid_remaining);
    Some((crate::model::series_of(&last.number).to_string(), owed))
}

/// When the account's last final invoice is another issuer's than `issuer` and the account
/// still owes `issuer` from an earlier time it billed the account (the book moved the customer
/// away and back: the balance its invoices left, handed over by the other issuer's first
/// invoice, and its notes and less the payments to it since): `issuer`'s series and that
/// amount, which its next final invoice brings forward and takes off
/// [`Balance::owed_elsewhere`]. Back on its own invoices, it is asked for, and paid, as any
/// other balance (a payment naming the issuer that bills the account is the account's own).
/// Negative when that issuer owes the customer (prepaid credit it held): brought forward as a
/// credit.
pub(crate) fn brought_back(balance: &Balance, issuer: &str) -> Option<(String, Decimal)> {
    balance
        .last
        .as_ref()
        .filter(|l| !crate::model::issued_by(&l.number, issuer))?;
    let owed = balance.owed_elsewhere.get(issuer)?;
    Some((issuer.to_string(), *owed)).filter(|(_, o)| !o.is_zero())
}

/// The account's periods before `period`, after its last final invoice, that have something
/// to bill and no final invoice, in order: usage committed into them (their balance marks,
/// [`Balance::open`]) or a recorded payment dated in them, that came after their close skipped
/// the account. Each must be finalized before `period`, or it would be on no invoice. (The
/// accounts book's own payments are the operator's, as before: billed in the period they are
/// dated in when it is finalized, never a reason to finalize one.)
pub(crate) fn unbilled_before(
    acc: &Account,
    balance: &Balance,
    payments: &[RecordedPayment],
    period: BillingPeriod,
) -> Vec<BillingPeriod> {
    let last = balance.last.as_ref().map(|l| l.period.as_str());
    let mut out: Vec<BillingPeriod> = balance
        .open
        .iter()
        .filter_map(|id| BillingPeriod::parse(id).ok())
        .chain(
            payments
                .iter()
                .map(|p| BillingPeriod::containing(acc.billing_period, p.date)),
        )
        .filter(|q| q.kind == acc.billing_period && q.start < period.start)
        .filter(|q| last.is_none_or(|l| q.id().as_str() > l))
        .collect();
    out.sort_by_key(|q| q.start);
    out.dedup();
    out
}

/// The write that finalizes `acc`'s `period`, from what the store holds now: the invoice with
/// its statement, numbered next in the issuer's series, and what it leaves the next one.
async fn finalization<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
) -> Result<Finalize, RaterError> {
    let period_id = period.id();
    let balance = store.balance(&acc.id).await?;
    if let Some(last) = balance.later_final(&period_id) {
        return Err(RaterError::FinalizedOutOfOrder {
            account: acc.id.clone(),
            period: period_id,
            later: last.period.clone(),
            number: last.number.clone(),
        });
    }
    let payments = crate::store::chain_payments(store, &acc.id).await?;
    if let Some(earlier) = unbilled_before(acc, &balance, &payments, period).first() {
        return Err(RaterError::EarlierPeriodOpen {
            account: acc.id.clone(),
            period: period_id,
            earlier: earlier.id(),
        });
    }
    let pu = store.period_usage(&acc.id, &period_id).await?;
    let issuer = config.issuer_for(acc);
    let counter = store.counter(issuer).await?;
    let number = invoice_number(issuer, counter + 1);
    let issued = chrono::DateTime::from_timestamp(config.now_s(), 0)
        .unwrap_or_default()
        .date_naive();
    let back = brought_back(&balance, issuer);
    let mut st = statement(
        acc,
        period,
        &balance,
        &payments,
        Pricing::Issued(issued),
        issuer,
        back.as_ref(),
    );
    let mut adjustments = pending_adjustments(store, config, acc, period, issued).await?;
    st.adjustments = adjustments
        .iter()
        .filter_map(|a| a.note.as_ref().map(|n| n.note.clone()))
        .collect();
    for a in &mut adjustments {
        if let Some(n) = &mut a.note {
            n.billed_on = Some(number.clone());
        }
    }
    st.resold = crate::resellers::resold(store, config, acc, period).await?;
    crate::resellers::customers_final(store, acc, period, &st.resold).await?;
    resold_marks_final(store, config, acc, &balance, period).await?;
    // Priced with the month's earlier usage; stored without it (a note recomputes it from the
    // store as it stands then).
    let pricing_st = Statement {
        month_before: month_before(store, &acc.id, period).await?,
        ..st.clone()
    };
    let mut inv = priced(config, acc, period, &pu.usage, &pricing_st)?;
    same_currency(acc, period, &balance, &payments, &inv.bill.currency, issuer)?;
    let resold_by = acc
        .reseller
        .as_deref()
        .and_then(|r| config.statement_owner(Some(r), acc.billing_period));
    let resold_late = match &resold_by {
        Some(owner) => store.final_invoice(owner, &period_id).await?.is_some(),
        None => false,
    };
    if back.is_some() {
        // What the account still owed `issuer` is in the currency its documents were then: a
        // payment naming the issuer in that currency (`month::record_payment`), or a note,
        // settles it first; added to another currency's amounts it would be wrong.
        let history = store.history(&acc.id).await?;
        if let Some(then) = history
            .iter()
            .find(|d| crate::model::series_of(&d.number) == issuer)
            .filter(|d| d.currency != inv.bill.currency)
        {
            return Err(RaterError::CurrencyChanged {
                account: acc.id.clone(),
                period: period_id,
                from: then.currency.clone(),
                to: inv.bill.currency.clone(),
            });
        }
    }
    let prepaid_remaining = inv.prepaid_remaining.unwrap_or_default();
    inv.kind = InvoiceKind::Final;
    inv.number = Some(number.clone());
    // The invoice and its statement are kept together (the statement re-prices the period
    // for its corrections): both count against the item's size.
    // The notes of the adjustments are written in the same transaction as well.
    let bytes = serde_json::to_vec(&inv).expect("invoices serialize").len()
        + serde_json::to_vec(&st).expect("statements serialize").len()
        + adjustments
            .iter()
            .filter_map(|a| a.note.as_ref())
            .map(|n| serde_json::to_vec(n).expect("notes serialize").len())
            .sum::<usize>();
    if bytes > FINAL_INVOICE_BYTES_MAX {
        return Err(RaterError::InvoiceTooLarge {
            account: acc.id.clone(),
            period: period_id,
            bytes,
            max: FINAL_INVOICE_BYTES_MAX,
        });
    }
    Ok(Finalize {
        issuer: issuer.to_string(),
        expected_counter: counter,
        account: acc.id.clone(),
        period_id: period_id.clone(),
        usage_version: pu.version,
        number: number.clone(),
        balance_version: balance.version,
        handed_over: handed_over(&balance, issuer),
        brought_back: back,
        resold_by,
        resold_late,
        cleared_open: balance
            .open
            .iter()
            .filter(|p| p.as_str() <= period_id.as_str())
            .cloned()
            .collect(),
        last: LastFinal {
            period: period_id.clone(),
            number: number.clone(),
            carried_forward: inv.carried_forward,
            prepaid_remaining,
            currency: Some(inv.bill.currency.clone()),
        },
        doc: DocRef {
            kind: DocKind::Invoice,
            number,
            period: period_id,
            issued_at_ms: config.now_s().saturating_mul(1000),
            total: inv.bill.total,
            currency: inv.bill.currency.clone(),
            corrects: None,
        },
        invoice: inv,
        statement: st,
        adjustments,
    })
}
