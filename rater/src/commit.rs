//! Step 3, the commit: under the batch's lease, write its chunks and make them count, one transaction per 99 account periods, resumably (what an earlier attempt committed is left as it is).

use std::collections::BTreeMap;

use crate::aggregate::{Aggregated, Pass, Reread};
use crate::config::RaterConfig;
use crate::dedupe::Bits;
use crate::error::{RaterError, StoreError};
use crate::ids::{check_ids, put_id_chunks, IdCheck, IdPlan};
use crate::limits::{
    COMMITTED_BATCHES_MAX, COMMIT_ACCOUNTS_PER_TRANSACTION_MAX, COMMIT_ATTEMPTS_MAX,
    SUMMARY_PARTITIONS_MAX,
};
use crate::model::{
    chunk_counts, committed_growth_bytes, BatchSummary, Mode, Partition, UsageChunk,
};
use crate::retry::backoff;
use crate::store::{Commit, CommitAccount, Counts, Keep, PartitionState, Store};

/// The usage partitions (account, period) a batch writes into, in order.
pub(crate) fn partition_keys(batch: &Aggregated) -> Vec<(String, String)> {
    batch
        .partitions
        .iter()
        .map(|p| (p.account.clone(), p.period.clone()))
        .collect()
}

/// Whether the account's late-usage policy lets usage into its closed periods (`note` or
/// `next_period`; `refuse` does not).
pub(crate) fn takes_late_usage(config: &RaterConfig, account: &str) -> bool {
    config.account(account).is_some_and(|acc| {
        pricing::late_usage_policy(config.catalog_for(acc), acc) != pricing::LateUsagePolicy::Refuse
    })
}

/// Refuses a batch, before its lease or before its commit, when one of the partitions it has
/// not committed into yet is closed (late usage) and the account's late-usage policy is
/// `refuse`.
pub(crate) fn check_closed(
    config: &RaterConfig,
    states: &[PartitionState],
    batch_id: &str,
) -> Result<(), RaterError> {
    let Some((s, number)) = states
        .iter()
        .filter(|s| s.own.is_none() && !takes_late_usage(config, &s.account))
        .find_map(|s| s.closed.as_ref().map(|n| (s, n)))
    else {
        return Ok(());
    };
    Err(closed_refusal(states, s, number, batch_id))
}

/// The refusal of a batch for partition `s`, closed (or passed) by final invoice `number`:
/// `PeriodClosed` when nothing of the batch is committed yet, else `BatchPartlyCommitted`.
fn closed_refusal(
    states: &[PartitionState],
    s: &PartitionState,
    number: &str,
    batch_id: &str,
) -> RaterError {
    let committed = states.iter().filter(|s| s.own.is_some()).count();
    if committed > 0 {
        RaterError::BatchPartlyCommitted {
            batch_id: batch_id.to_string(),
            committed,
            partitions: states.len(),
            account: s.account.clone(),
            period: s.period_id.clone(),
            number: number.to_string(),
        }
    } else {
        RaterError::PeriodClosed {
            account: s.account.clone(),
            period: s.period_id.clone(),
            number: number.to_string(),
        }
    }
}

/// Refuses a batch before its lease when it brings the first usage into a period that an
/// account's balance chain has passed: a later period of the account (or of its reseller's
/// own account, which bills it at wholesale) is final, because the period's close skipped it.
/// The usage would be on no invoice. Before the lease (`every` false), read only for periods
/// that ended a whole period before now (only then can a later one have closed unforced):
/// the commit re-checks every first usage atomically, so this is the early, write-nothing
/// answer, not the guard. After a commit refused by that guard (`every` true), every one, so
/// that the refusal is named rather than retried.
pub(crate) async fn check_passed<S: Store>(
    store: &S,
    config: &RaterConfig,
    states: &[PartitionState],
    batch_id: &str,
    every: bool,
) -> Result<(), RaterError> {
    let now = config.now_s();
    let mut balances: BTreeMap<String, crate::model::Balance> = BTreeMap::new();
    for s in states
        .iter()
        .filter(|s| s.own.is_none() && s.closed.is_none() && s.batches == 0)
    {
        let Ok(q) = pricing::BillingPeriod::parse(&s.period_id) else {
            continue;
        };
        let next = pricing::BillingPeriod::containing(q.kind, q.end());
        if !every && next.end().timestamp() > now {
            continue;
        }
        for owner in config.open_marked(&s.account) {
            if !balances.contains_key(&owner) {
                let b = store.balance(&owner).await?;
                balances.insert(owner.clone(), b);
            }
            if let Some(later) = balances[&owner].later_final(&s.period_id) {
                return Err(closed_refusal(states, s, &later.number, batch_id));
            }
        }
    }
    Ok(())
}

/// Refuses a batch, before its lease or before its commit, when one of the partitions it has
/// not committed into yet has no room left in its `#COMMITTED` item for it
/// ([`COMMITTED_ITEM_BYTES_MAX`]).
pub(crate) fn check_room(
    states: &[PartitionState],
    batch: &Aggregated,
    plan: &IdPlan,
    batch_id: &str,
    max: usize,
) -> Result<(), RaterError> {
    let chunks = chunk_counts(&batch.chunks);
    let id_chunks: BTreeMap<&Partition, u32> = plan
        .checked
        .iter()
        .map(|c| (&c.partition, c.chunks))
        .collect();
    for s in states.iter().filter(|s| s.own.is_none()) {
        let p = Partition::new(s.account.as_str(), s.period_id.as_str());
        let growth = committed_growth_bytes(
            batch_id,
            chunks.get(&p).copied().unwrap_or(0),
            id_chunks.get(&p).copied().unwrap_or(0),
        );
        if s.item_bytes + growth > max || s.batches >= COMMITTED_BATCHES_MAX {
            return Err(RaterError::PartitionFull {
                account: s.account.clone(),
                period: s.period_id.clone(),
                batches: s.batches,
                batches_max: COMMITTED_BATCHES_MAX,
                bytes: s.item_bytes + growth,
                max,
            });
        }
    }
    Ok(())
}

/// Under the batch's lease: applies the record-id rule against what is committed, writes the
/// chunks and commits them, one transaction per [`COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`]
/// partitions, the last one marking the ledger `DONE`.
///
/// Resumable: each pass first reads which partitions the batch is already committed into (by
/// an earlier transaction of this attempt before a `UsageMoved`, or of a crashed attempt whose
/// lease this one took over) and leaves them exactly as they are: their chunks are neither
/// rewritten nor swept, and the batch's own record ids never count as duplicates of itself.
/// A commit refused because another batch committed into one of the checked periods
/// meanwhile (`UsageMoved`) checks the ids again, with backoff.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store_batch<S: Store>(
    store: &S,
    config: &RaterConfig,
    mut first: Aggregated,
    plan: IdPlan,
    batch_id: &str,
    owner: &str,
    mode: Mode,
    reread: &Reread<'_>,
) -> Result<BatchSummary, RaterError> {
    let keys = partition_keys(&first);
    // Chunks are stored as they are (a large batch's usage is tens of MB: never copied).
    let name = |chunks: &mut Vec<UsageChunk>| {
        for c in chunks {
            c.batch_id = batch_id.to_string();
        }
    };
    name(&mut first.chunks);
    // The pass the chunks come from, and the records it left out.
    let mut current: Option<Aggregated> = None;
    let mut applied = Bits::default();
    let mut attempt = 0u32;
    let mut passed = false;
    let mut plan = Some(plan);
    loop {
        let plan = match plan.take() {
            Some(p) => p,
            None => check_ids(store, &first, reread, batch_id).await?,
        };
        let states = store.partitions(batch_id, &keys).await?;
        check_closed(config, &states, batch_id)?;
        if passed {
            check_passed(store, config, &states, batch_id, true).await?;
        }
        check_room(
            &states,
            current.as_ref().unwrap_or(&first),
            &plan,
            batch_id,
            config.committed_item_bytes_max,
        )?;
        // `applied` starts empty, so the first pass serves until some record must be left out.
        if plan.drops != applied {
            let again = reread(&Pass {
                skip: Some(&plan.drops),
                describe: &[],
                // The reread closure reads with the first pass's carried readings.
                carried: None,
            })?;
            if again.sha256 != first.sha256 {
                return Err(RaterError::BadRequest {
                    field: "export",
                    message: "the export changed while it was being rated; send it again".into(),
                });
            }
            let mut again = again;
            name(&mut again.chunks);
            current = Some(again);
            applied = plan.drops.clone();
            // The first pass's usage is not stored any more: only its ids serve.
            first.chunks = Vec::new();
        }
        let batch = current.as_ref().unwrap_or(&first);
        let parts = commit_parts(config, &batch.chunks, &plan, &states);
        // Partitions an earlier transaction of the batch committed are done: left alone.
        let done: BTreeMap<Partition, Counts> = states
            .iter()
            .filter_map(|s| {
                let p = Partition::new(s.account.as_str(), s.period_id.as_str());
                s.own.map(|c| (p, c))
            })
            .collect();
        let summary = summarize(config, &first, batch, &parts, &done, batch_id, mode);
        let todo: Vec<CommitAccount> = parts
            .into_iter()
            .filter(|p| !done.contains_key(&part_of(p)))
            .collect();
        write_chunks(store, batch, &first, &plan, &done, &todo, batch_id).await?;
        match commit_in_groups(store, batch_id, owner, todo, &summary).await {
            Ok(()) => return Ok(summary),
            // Another batch committed into a checked period, or a period was finalized since
            // the states were read and the account takes late usage: read them again.
            Err(StoreError::UsageMoved { .. }) if attempt + 1 < COMMIT_ATTEMPTS_MAX => {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(StoreError::PeriodClosed { account, .. })
                if attempt + 1 < COMMIT_ATTEMPTS_MAX && takes_late_usage(config, &account) =>
            {
                // Closed by a final since the states were read, or passed (a first usage whose
                // balance condition failed): the next attempt names the latter.
                passed = true;
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The partition a commit part writes into.
pub(crate) fn part_of(p: &CommitAccount) -> Partition {
    Partition::new(p.account.as_str(), p.period_id.as_str())
}

/// What the batch did, for its ledger (bounded: partitions and accounts are listed up to
/// [`SUMMARY_PARTITIONS_MAX`]). Partitions committed before count with their own counts.
pub(crate) fn summarize(
    config: &RaterConfig,
    first: &Aggregated,
    batch: &Aggregated,
    parts: &[CommitAccount],
    done: &BTreeMap<Partition, Counts>,
    batch_id: &str,
    mode: Mode,
) -> BatchSummary {
    let listed = first.partitions.len() <= SUMMARY_PARTITIONS_MAX;
    BatchSummary {
        batch_id: batch_id.to_string(),
        content_sha256: first.sha256.clone(),
        period: first
            .partitions
            .first()
            .map(|p| p.period.clone())
            .unwrap_or_default(),
        mode,
        accounts: if listed {
            first.accounts.clone()
        } else {
            Vec::new()
        },
        accounts_total: first.accounts.len() as u64,
        partitions: if listed {
            first.partitions.clone()
        } else {
            Vec::new()
        },
        partitions_total: first.partitions.len() as u64,
        late: if listed {
            parts
                .iter()
                .filter(|p| p.late.is_some())
                .map(part_of)
                .collect()
        } else {
            Vec::new()
        },
        records: first.records,
        duplicates_dropped: batch.skipped,
        usage_items: parts
            .iter()
            .map(|p| match done.get(&part_of(p)) {
                Some(c) => u64::from(c.chunks) + u64::from(c.id_chunks),
                None => u64::from(p.chunks) + u64::from(p.id_chunks),
            })
            .sum(),
        usage_totals: batch.usage_totals,
        catalog_version: config.catalog.version.clone(),
        accounts_version: config.accounts.version.clone(),
    }
}

/// Each partition's part of the commit (chunk counts, and for partitions with record ids the
/// record-id chunks and the version they were checked against; for closed periods, which
/// [`check_closed`] let through, the final invoice the late usage reopens; for periods no
/// batch committed into yet, the balances that mark them open), in partition order.
pub(crate) fn commit_parts(
    config: &RaterConfig,
    chunks: &[UsageChunk],
    plan: &IdPlan,
    states: &[PartitionState],
) -> Vec<CommitAccount> {
    let first: std::collections::BTreeSet<Partition> = states
        .iter()
        .filter(|s| s.own.is_none() && s.closed.is_none() && s.batches == 0)
        .map(|s| Partition::new(s.account.as_str(), s.period_id.as_str()))
        .collect();
    let closed: BTreeMap<Partition, &String> = states
        .iter()
        .filter(|s| s.own.is_none())
        .filter_map(|s| {
            let p = Partition::new(s.account.as_str(), s.period_id.as_str());
            s.closed.as_ref().map(|n| (p, n))
        })
        .collect();
    let part = |p: &Partition, chunks: u32| CommitAccount {
        account: p.account.clone(),
        period_id: p.period.clone(),
        chunks,
        id_chunks: 0,
        late: closed.get(p).map(|n| (*n).clone()),
        checked_version: None,
        opens: if first.contains(p) {
            config.open_marked(&p.account)
        } else {
            Vec::new()
        },
        // The reseller's own account (billed by the same kind of period) whose statement of
        // the period bills this late usage at wholesale: of the reseller that issued the
        // final invoice (its number's series), which the book may have moved the customer
        // away from since; by the period's own kind, which the book may have changed too.
        resold: closed.get(p).and_then(|number| {
            let kind = pricing::BillingPeriod::parse(&p.period).ok()?.kind;
            config.statement_owner(config.reseller_of_number(number), kind)
        }),
    };
    // Keyed by partition: the commit lists each once, in order.
    let mut parts: BTreeMap<Partition, CommitAccount> = chunk_counts(chunks)
        .into_iter()
        .map(|(p, n)| {
            let c = part(&p, n);
            (p, c)
        })
        .collect();
    for c in plan.checked.iter().filter(|c| c.chunks > 0) {
        let p = parts
            .entry(c.partition.clone())
            .or_insert_with(|| part(&c.partition, 0));
        p.id_chunks = c.chunks;
        p.checked_version = Some(c.version);
    }
    parts.into_values().collect()
}

/// Writes the usage and record-id chunks of the partitions still to commit (`todo`), then
/// deletes the chunks an earlier attempt wrote beyond what this one keeps. Partitions the
/// batch already committed (`done`) are not touched.
pub(crate) async fn write_chunks<S: Store>(
    store: &S,
    batch: &Aggregated,
    first: &Aggregated,
    plan: &IdPlan,
    done: &BTreeMap<Partition, Counts>,
    todo: &[CommitAccount],
    batch_id: &str,
) -> Result<(), RaterError> {
    let is_done = |account: &str, period: &str| done.contains_key(&Partition::new(account, period));
    if done.is_empty() {
        store.put_chunks(&batch.chunks).await?;
    } else {
        // A resumed commit: rare, so copying the remaining partitions' chunks is fine.
        let left: Vec<UsageChunk> = batch
            .chunks
            .iter()
            .filter(|c| !is_done(&c.account, &c.period_id))
            .cloned()
            .collect();
        store.put_chunks(&left).await?;
    }
    let checked: Vec<&IdCheck> = plan
        .checked
        .iter()
        .filter(|c| !done.contains_key(&c.partition))
        .collect();
    put_id_chunks(store, &first.ids, &checked, &plan.new, batch_id).await?;
    // A partition whose records this attempt leaves out because an earlier batch counted
    // them may have more chunks from an attempt that left out fewer (before a `UsageMoved`
    // retry, or a crashed attempt whose lease this one took over): delete those before the
    // commit, while they are still invisible. Other partitions' chunks are the same on every
    // attempt (committed ids only grow), so they need no look.
    for left_out in plan.leaving_out.iter().filter(|p| !done.contains_key(*p)) {
        let p = todo
            .binary_search_by(|p| part_of(p).cmp(left_out))
            .ok()
            .map(|i| &todo[i]);
        store
            .sweep_chunks(&Keep {
                account: left_out.account.clone(),
                period_id: left_out.period.clone(),
                batch_id: batch_id.to_string(),
                chunks: p.map_or(0, |p| p.chunks),
                id_chunks: p.map_or(0, |p| p.id_chunks),
            })
            .await?;
    }
    Ok(())
}

/// Commits the partitions left, in order, as many per transaction as fit
/// [`COMMIT_ACCOUNTS_PER_TRANSACTION_MAX`] items (a late partition writes two: its
/// `#COMMITTED` and its marker, three for a reseller's customer: its reseller's marker too);
/// the last transaction (alone, when nothing is left) marks the
/// ledger `DONE`.
pub(crate) async fn commit_in_groups<S: Store>(
    store: &S,
    batch_id: &str,
    owner: &str,
    todo: Vec<CommitAccount>,
    summary: &BatchSummary,
) -> Result<(), StoreError> {
    let mut groups: Vec<Vec<CommitAccount>> = vec![Vec::new()];
    let mut items = 0;
    for part in todo {
        if items + part.items() > COMMIT_ACCOUNTS_PER_TRANSACTION_MAX {
            groups.push(Vec::new());
            items = 0;
        }
        items += part.items();
        groups.last_mut().expect("one group at least").push(part);
    }
    let last = groups.len() - 1;
    for (g, accounts) in groups.into_iter().enumerate() {
        let commit = Commit {
            batch_id: batch_id.to_string(),
            owner: owner.to_string(),
            accounts,
            done: (g == last).then(|| summary.clone()),
        };
        store.commit(&commit).await?;
    }
    Ok(())
}
