//! The protocol's entry points: a delivery of an export (a request) rated exactly once, through steps 1 to 4, and its answer.

use std::time::{Duration, Instant};

use pricing::BillingPeriod;

use crate::aggregate::{aggregate_pass, sha256_hex, Aggregated, Pass, Reread};
use crate::commit::{check_closed, check_passed, check_room, partition_keys, store_batch};
use crate::config::{ensure_config_stored, RaterConfig};
use crate::error::{RaterError, StoreError};
use crate::ids::{check_ids, id_conflicts, FirstSeen, IdPlan};
use crate::import::{Format, DETECT_PREFIX_BYTES};
pub use crate::invoices::RateResponse;
use crate::invoices::{answer, replay};
use crate::limits::{BATCH_ID_BYTES_MAX, SUMMARY_PARTITIONS_MAX};
use crate::model::{decode_chunk, BatchSummary, ChunkKind, Ledger, Mode};
use crate::store::{Lease, LeaseOutcome, Store};

impl std::str::FromStr for Mode {
    type Err = RaterError;
    fn from_str(s: &str) -> Result<Mode, RaterError> {
        match s.to_ascii_lowercase().as_str() {
            "interim" => Ok(Mode::Interim),
            "final" => Ok(Mode::Final),
            other => Err(RaterError::BadRequest {
                field: "mode",
                message: format!("`{other}` is not a mode (expected interim or final)"),
            }),
        }
    }
}

/// One delivery of an export.
#[derive(Debug, Clone, Default)]
pub struct BatchRequest {
    /// The idempotency key; the SHA-256 of `export` when absent.
    pub batch_id: Option<String>,
    /// Detected from the content when absent.
    pub format: Option<Format>,
    /// The month of the first record when absent.
    pub period: Option<BillingPeriod>,
    /// When given, every record must belong to this account.
    pub account: Option<String>,
    pub mode: Mode,
    pub export: Vec<u8>,
}

/// Validates a caller's batch id: it becomes part of keys, so it is short printable ASCII and
/// cannot start with `#` (reserved for the usage partition's own items).
pub fn check_batch_id(id: &str) -> Result<(), RaterError> {
    let bad = |message: String| RaterError::BadRequest {
        field: "batch_id",
        message,
    };
    if id.is_empty() || id.len() > BATCH_ID_BYTES_MAX {
        return Err(bad(format!(
            "must be 1 to {BATCH_ID_BYTES_MAX} bytes, got {}",
            id.len()
        )));
    }
    if id.starts_with('#') || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!(
            "`{id}` must be printable ASCII without spaces and must not start with `#`"
        )));
    }
    Ok(())
}

/// Rates one delivery of an export held in memory (a Lambda payload): at most once, whatever
/// the retries, duplicates and crashes. See the module docs for the order of steps.
pub async fn rate_batch<S: Store>(
    store: &S,
    config: &RaterConfig,
    req: BatchRequest,
) -> Result<RateResponse, RaterError> {
    if req.export.len() > config.payload_bytes_max {
        return Err(RaterError::PayloadTooLarge {
            bytes: req.export.len(),
            max: config.payload_bytes_max,
        });
    }
    if req.export.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(RaterError::EmptyBatch);
    }
    if let Some(id) = &req.batch_id {
        check_batch_id(id)?;
    }
    let sha256 = sha256_hex(&req.export);
    let batch_id = req.batch_id.clone().unwrap_or_else(|| sha256.clone());
    // A batch rated before is answered from its ledger without parsing it again, so a replay
    // gives the same answer even if the catalog changed since.
    if let Some(Ledger::Done(summary)) = store.ledger(&batch_id).await? {
        return replay(store, config, summary, &sha256, req.account.as_deref()).await;
    }
    // Ceilometer's cumulative counters start from the readings earlier batches left.
    let format = match req.format {
        Some(f) => Some(f),
        None => {
            crate::import::detect(&req.export[..req.export.len().min(DETECT_PREFIX_BYTES)]).ok()
        }
    };
    let carried = crate::import::carried_readings(store, format).await?;
    let batch = aggregate_pass(
        config,
        format,
        req.export.as_slice(),
        req.period,
        req.account.as_deref(),
        &Pass {
            carried: carried.as_ref(),
            ..Pass::default()
        },
    )?;
    let (format, window, account) = (batch.format, batch.window, req.account.as_deref());
    let export = req.export.as_slice();
    let carried = carried.as_ref();
    let reread = move |pass: &Pass<'_>| {
        let pass = Pass { carried, ..*pass };
        aggregate_pass(config, Some(format), export, window, account, &pass)
    };
    rate_aggregated(
        store,
        config,
        batch,
        Some(batch_id),
        req.mode,
        req.account.as_deref(),
        &reread,
    )
    .await
}

/// Stores an aggregated batch exactly once and answers its invoices (the second half of
/// [`rate_batch`], also used by the CLI, which streams files of any size into [`aggregate()`](crate::aggregate::aggregate)).
///
/// `batch` is the first pass over the export (made with no [`Pass`]). `reread` reads the same
/// export again; it is called only when the batch holds record ids already counted (to
/// aggregate it without those copies) or conflicting ones (to name them).
pub async fn rate_aggregated<S: Store>(
    store: &S,
    config: &RaterConfig,
    mut batch: Aggregated,
    batch_id: Option<String>,
    mode: Mode,
    account: Option<&str>,
    reread: &Reread<'_>,
) -> Result<RateResponse, RaterError> {
    let batch_id = match batch_id {
        Some(id) => {
            check_batch_id(&id)?;
            id
        }
        None => batch.sha256.clone(),
    };
    match store.ledger(&batch_id).await? {
        Some(Ledger::Done(summary)) => {
            return replay(store, config, summary, &batch.sha256, account).await
        }
        // Bound to another content (see `LeaseOutcome::Reused`): said before any check.
        Some(ledger) => match ledger.bound_to(config.now_s()) {
            Some(sha) if sha != batch.sha256 => {
                return Err(RaterError::IdempotencyKeyReused {
                    batch_id,
                    stored_sha256: sha.to_string(),
                    sha256: batch.sha256.clone(),
                })
            }
            _ => {}
        },
        None => {}
    }
    let owner = format!("{:016x}", fastrand::u64(..));
    let plan = check_before_writing(store, config, &batch, &batch_id, mode, reread).await?;
    ensure_config_stored(store, config).await?;
    if let Some(summary) = take_lease(store, config, &batch_id, &owner, &batch.sha256).await? {
        return replay(store, config, summary, &batch.sha256, account).await;
    }
    // The export's last readings are facts whatever happens next (the checks that refuse a
    // batch are behind us): merged before the batch is stored, so that a retry after a
    // failure finds them too, and the next batch can start from them.
    let readings = std::mem::take(&mut batch.readings);
    let merged = match readings.is_empty() {
        true => Ok(()),
        false => store.merge_readings(&readings).await,
    };
    let stored = match merged {
        Ok(()) => store_batch(store, config, batch, plan, &batch_id, &owner, mode, reread).await,
        Err(e) => Err(e.into()),
    };
    let summary = match stored {
        Ok(summary) => summary,
        Err(e) => {
            // Best effort: a retry need not wait for the lease to expire. If this fails too,
            // the lease expires by itself; the chunks written are invisible until a commit.
            // Partitions committed before the failure stay billed: their commit bound the
            // ledger to this content, and the release keeps it so.
            let _ = store.release(&batch_id, &owner).await;
            return Err(match e {
                RaterError::Store(StoreError::LeaseLost { batch_id }) => {
                    RaterError::BatchInProgress {
                        batch_id,
                        retry_after_s: 1,
                    }
                }
                e => e,
            });
        }
    };
    answer(store, config, &summary, account, false).await
}

/// Everything that can refuse a batch, checked before its lease so that a refusal writes
/// nothing: record ids repeated with other content (in the batch or against the store), a
/// `final` batch too large to list, late usage, partitions with no room left.
pub(crate) async fn check_before_writing<S: Store>(
    store: &S,
    config: &RaterConfig,
    batch: &Aggregated,
    batch_id: &str,
    mode: Mode,
    reread: &Reread<'_>,
) -> Result<IdPlan, RaterError> {
    if !batch.in_batch.conflicts.is_empty() {
        let conflicts: Vec<(u64, FirstSeen)> = batch
            .in_batch
            .conflicts
            .iter()
            .map(|&(i, first)| (i, FirstSeen::InBatch(first)))
            .collect();
        return Err(id_conflicts(reread, batch, &conflicts));
    }
    if mode == Mode::Final && batch.partitions.len() > SUMMARY_PARTITIONS_MAX {
        return Err(RaterError::TooManyAccountsForFinal {
            accounts: batch.partitions.len(),
            max: SUMMARY_PARTITIONS_MAX,
        });
    }
    price_own_usage(config, batch)?;
    if mode == Mode::Final {
        check_finalizable(store, config, batch).await?;
    }
    // The commit re-checks closed periods atomically.
    let states = store.partitions(batch_id, &partition_keys(batch)).await?;
    check_closed(config, &states, batch_id)?;
    check_passed(store, config, &states, batch_id, false).await?;
    // Checked again under the lease only if another batch commits meanwhile.
    let plan = check_ids(store, batch, reread, batch_id).await?;
    check_room(
        &states,
        batch,
        &plan,
        batch_id,
        config.committed_item_bytes_max,
    )?;
    Ok(plan)
}

/// Refuses a `final` batch (`EarlierPeriodOpen`) when one of its accounts has an earlier
/// period, not in the batch, with something to bill and no final invoice: the batch's finals
/// would be refused after its usage is committed, on every replay. The finalize checks again.
async fn check_finalizable<S: Store>(
    store: &S,
    config: &RaterConfig,
    batch: &Aggregated,
) -> Result<(), RaterError> {
    let mut i = 0;
    while i < batch.partitions.len() {
        let account = &batch.partitions[i].account;
        let own: Vec<&str> = batch.partitions[i..]
            .iter()
            .take_while(|p| &p.account == account)
            .map(|p| p.period.as_str())
            .collect();
        i += own.len();
        let (Some(acc), Ok(first)) = (config.account(account), BillingPeriod::parse(own[0])) else {
            continue;
        };
        let balance = store.balance(account).await?;
        let payments = crate::store::chain_payments(store, account).await?;
        let last = own
            .last()
            .and_then(|p| BillingPeriod::parse(p).ok())
            .unwrap_or(first);
        if let Some(earlier) = crate::invoices::unbilled_before(acc, &balance, &payments, last)
            .into_iter()
            .find(|q| !own.contains(&q.id().as_str()))
        {
            return Err(RaterError::EarlierPeriodOpen {
                account: account.clone(),
                period: first.id(),
                earlier: earlier.id(),
            });
        }
    }
    Ok(())
}

/// Prices each account period's usage in the batch alone, as its invoice will be priced once
/// committed: what cannot be priced alone (an account setting the catalog lacks, a line whose
/// figures do not fit) cannot be priced with the period's other usage either, so the batch is
/// refused now, before anything is written, instead of committed and then unanswerable. (The
/// period's usage together stays priceable: every batch's lines are bounded, see
/// `limits::batch_line_quantity_max`.) One account period's usage is decoded at a time.
fn price_own_usage(config: &RaterConfig, batch: &Aggregated) -> Result<(), RaterError> {
    let mut start = 0;
    while start < batch.chunks.len() {
        let (account, period_id) = (&batch.chunks[start].account, &batch.chunks[start].period_id);
        let end = start
            + batch.chunks[start..]
                .iter()
                .position(|c| &c.account != account || &c.period_id != period_id)
                .unwrap_or(batch.chunks.len() - start);
        let mut usage = pricing::Usage::default();
        for c in batch.chunks[start..end]
            .iter()
            .filter(|c| c.kind == ChunkKind::Usage)
        {
            let part = decode_chunk(&c.account, &c.body).map_err(|e| RaterError::Internal {
                message: format!("a chunk just encoded does not decode: {e}"),
            })?;
            usage.merge(&part).map_err(|e| {
                RaterError::Pricing(pricing::PricingError::overflow(
                    e,
                    format!("account {account}"),
                ))
            })?;
        }
        let acc = config.known_account(account)?;
        let period = BillingPeriod::parse(period_id).map_err(|e| RaterError::Internal {
            message: format!("a partition's period does not parse: {e}"),
        })?;
        pricing::invoice(config.catalog_for(acc), acc, period, &usage)?;
        start = end;
    }
    Ok(())
}

/// Takes the batch's lease, waiting (up to `in_progress_wait_ms_max`) for a concurrent
/// delivery of the same batch instead of rating it twice. `Some(summary)`: the batch was
/// done meanwhile.
async fn take_lease<S: Store>(
    store: &S,
    config: &RaterConfig,
    batch_id: &str,
    owner: &str,
    sha256: &str,
) -> Result<Option<BatchSummary>, RaterError> {
    let started = Instant::now();
    let mut poll_ms = 50u64;
    loop {
        let now = config.now_s();
        let lease = Lease {
            batch_id: batch_id.to_string(),
            owner: owner.to_string(),
            expires_at: now + config.lease_s,
            content_sha256: sha256.to_string(),
        };
        match store.try_lease(&lease, now).await? {
            LeaseOutcome::Acquired => return Ok(None),
            LeaseOutcome::Done(summary) => return Ok(Some(*summary)),
            LeaseOutcome::Reused { content_sha256 } => {
                return Err(RaterError::IdempotencyKeyReused {
                    batch_id: batch_id.to_string(),
                    stored_sha256: content_sha256,
                    sha256: sha256.to_string(),
                })
            }
            LeaseOutcome::Held { expires_at } => {
                if started.elapsed() >= Duration::from_millis(config.in_progress_wait_ms_max) {
                    return Err(RaterError::BatchInProgress {
                        batch_id: batch_id.to_string(),
                        retry_after_s: (expires_at - now).clamp(1, config.lease_s) as u64,
                    });
                }
                tokio::time::sleep(Duration::from_millis(poll_ms)).await;
                poll_ms = (poll_ms * 2).min(1_000);
            }
        }
    }
}
