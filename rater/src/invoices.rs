//! Step 4, invoices: a batch's answer (interim invoices, or the final ones it asked for), an account period's invoice on demand, and finalizing: one numbered, immutable invoice per account period, gapless per issuer.

use pricing::{Account, BillingPeriod, Invoice, InvoiceKind};
use serde::{Deserialize, Serialize};

use crate::config::{ensure_config_stored, RaterConfig};
use crate::error::{RaterError, StoreError};
use crate::limits::{
    ANSWER_INVOICES_MAX, ANSWER_INVOICE_BYTES_MAX, FINALIZE_ATTEMPTS_MAX, FINAL_INVOICE_BYTES_MAX,
};
use crate::model::{
    Balance, BatchSummary, DocKind, DocRef, Finalized, LastFinal, Mode, Partition, RecordedPayment,
};
use crate::retry::backoff;
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
    })
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
    let period_id = period.id();
    if let Some(inv) = store.final_invoice(account, &period_id).await? {
        return Ok(inv);
    }
    let acc = known_account(config, account)?;
    let pu = store.period_usage(account, &period_id).await?;
    let balance = store.balance(account).await?;
    let payments = store.payments(account).await?;
    let (inv, _) = priced(config, acc, period, &pu.usage, &balance, &payments)?;
    Ok(inv)
}

fn known_account<'c>(config: &'c RaterConfig, account: &str) -> Result<&'c Account, RaterError> {
    config
        .account(account)
        .ok_or_else(|| RaterError::UnknownAccount {
            account: account.to_string(),
            accounts_version: config.accounts.version.clone(),
        })
}

/// The invoice of `acc`'s `period` with its statement: brought forward and prepaid credit from
/// the account's last final invoice (the accounts book's opening balance and credit before the
/// first one), payments from the store and the book dated in the period. Returns it with the
/// prepaid credit left after it (what the next invoice may use).
fn priced(
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    usage: &pricing::Usage,
    balance: &Balance,
    payments: &[RecordedPayment],
) -> Result<(Invoice, rust_decimal::Decimal), RaterError> {
    let mut stated = acc.clone();
    if let Some(last) = &balance.last {
        stated.balance_brought_forward = last.carried_forward;
        stated.prepaid_credit = last.prepaid_remaining;
    }
    // The book's payments, and the store's (a reference in both is the store's).
    stated
        .payments
        .retain(|b| !payments.iter().any(|p| p.reference == b.reference));
    stated
        .payments
        .extend(payments.iter().map(|p| pricing::invoice::Payment {
            date: p.date,
            amount: p.amount,
            reference: p.reference.clone(),
        }));
    stated
        .payments
        .sort_by(|a, b| a.date.cmp(&b.date).then(a.reference.cmp(&b.reference)));
    let mut inv = pricing::invoice(&config.catalog, &stated, period, usage)?;
    inv.accounts_version = Some(config.accounts.version.clone());
    let prepaid_left = (stated.prepaid_credit.max(rust_decimal::Decimal::ZERO)
        - inv.credits_applied)
        .max(rust_decimal::Decimal::ZERO);
    Ok((inv, prepaid_left))
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
    let acc = known_account(config, account)?;
    if !how.before_period_end && config.now_s() < period.end().timestamp() {
        return Err(RaterError::PeriodNotEnded {
            account: account.to_string(),
            period: period_id,
            ends_at: period.end(),
        });
    }
    ensure_config_stored(store, config).await?;
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
    if let Some(last) = balance
        .last
        .as_ref()
        .filter(|l| l.period.as_str() > period_id.as_str())
    {
        return Err(RaterError::FinalizedOutOfOrder {
            account: acc.id.clone(),
            period: period_id,
            later: last.period.clone(),
            number: last.number.clone(),
        });
    }
    let pu = store.period_usage(&acc.id, &period_id).await?;
    let payments = store.payments(&acc.id).await?;
    let counter = store.counter(&config.issuer).await?;
    let number = invoice_number(&config.issuer, counter + 1);
    let (mut inv, prepaid_remaining) = priced(config, acc, period, &pu.usage, &balance, &payments)?;
    inv.kind = InvoiceKind::Final;
    inv.number = Some(number.clone());
    let bytes = serde_json::to_vec(&inv).expect("invoices serialize").len();
    if bytes > FINAL_INVOICE_BYTES_MAX {
        return Err(RaterError::InvoiceTooLarge {
            account: acc.id.clone(),
            period: period_id,
            bytes,
            max: FINAL_INVOICE_BYTES_MAX,
        });
    }
    Ok(Finalize {
        issuer: config.issuer.clone(),
        expected_counter: counter,
        account: acc.id.clone(),
        period_id: period_id.clone(),
        usage_version: pu.version,
        number: number.clone(),
        balance_version: balance.version,
        last: LastFinal {
            period: period_id.clone(),
            number: number.clone(),
            carried_forward: inv.carried_forward,
            prepaid_remaining,
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
    })
}
