//! Step 4, invoices: a batch's answer (interim invoices, or the final ones it asked for), an account period's invoice on demand, and finalizing: one numbered, immutable invoice per account period, gapless per issuer.

use pricing::{BillingPeriod, Invoice, InvoiceKind};
use serde::{Deserialize, Serialize};

use crate::config::{ensure_config_stored, RaterConfig};
use crate::error::{RaterError, StoreError};
use crate::limits::{
    ANSWER_INVOICES_MAX, ANSWER_INVOICE_BYTES_MAX, FINALIZE_ATTEMPTS_MAX, FINAL_INVOICE_BYTES_MAX,
};
use crate::model::{BatchSummary, Finalized, Mode, Partition};
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
/// computed now from committed usage (not stored, not numbered).
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
    let acc = config
        .accounts
        .account(account)
        .ok_or_else(|| RaterError::UnknownAccount {
            account: account.to_string(),
            accounts_version: config.accounts.version.clone(),
        })?;
    let pu = store.period_usage(account, &period_id).await?;
    let mut inv = pricing::invoice(&config.catalog, acc, period, &pu.usage)?;
    inv.accounts_version = Some(config.accounts.version.clone());
    Ok(inv)
}

/// Issues the final, numbered invoice of an account's period: gapless numbers per issuer, every
/// committed batch on it, once. Finalizing again is refused with `AlreadyFinalized`.
pub async fn finalize<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
) -> Result<Invoice, RaterError> {
    let period_id = period.id();
    let acc = config
        .accounts
        .account(account)
        .ok_or_else(|| RaterError::UnknownAccount {
            account: account.to_string(),
            accounts_version: config.accounts.version.clone(),
        })?;
    ensure_config_stored(store, config).await?;
    for attempt in 0..FINALIZE_ATTEMPTS_MAX {
        if let Some(existing) = store.final_invoice(account, &period_id).await? {
            return Err(RaterError::AlreadyFinalized {
                account: account.to_string(),
                period: period_id,
                number: existing.number.unwrap_or_default(),
            });
        }
        let pu = store.period_usage(account, &period_id).await?;
        let counter = store.counter(&config.issuer).await?;
        let number = invoice_number(&config.issuer, counter + 1);
        let mut inv = pricing::invoice(&config.catalog, acc, period, &pu.usage)?;
        inv.kind = InvoiceKind::Final;
        inv.number = Some(number.clone());
        inv.accounts_version = Some(config.accounts.version.clone());
        let bytes = serde_json::to_vec(&inv).expect("invoices serialize").len();
        if bytes > FINAL_INVOICE_BYTES_MAX {
            return Err(RaterError::InvoiceTooLarge {
                account: account.to_string(),
                period: period_id,
                bytes,
                max: FINAL_INVOICE_BYTES_MAX,
            });
        }
        let f = Finalize {
            issuer: config.issuer.clone(),
            expected_counter: counter,
            account: account.to_string(),
            period_id: period_id.clone(),
            usage_version: pu.version,
            number,
            invoice: inv.clone(),
        };
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
