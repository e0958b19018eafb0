//! Step 2, record ids: a batch's ids checked against those its account periods hold (an identical copy is left out, the same id with other content refuses the batch), and the fingerprints it adds written beside its chunks.

use pricing::BatchErrors;

use crate::aggregate::{Aggregated, Pass, Reread};
use crate::dedupe::{self, Bits, Settled, IDS_PER_CHUNK};
use crate::error::RaterError;
use crate::limits::ID_PUT_BYTES;
use crate::model::{ChunkKind, Partition, UsageChunk};
use crate::store::Store;

/// What the record-id rule decided for a batch against the committed ids.
pub(crate) struct IdPlan {
    /// Positions of the records to leave out, sorted.
    pub(crate) drops: Bits,
    /// Per partition with ids, in the order of the batch's settled ids.
    pub(crate) checked: Vec<IdCheck>,
    /// Which of the batch's settled ids the store does not hold yet.
    pub(crate) new: Bits,
    /// Partitions with records left out because an earlier batch counted their ids.
    pub(crate) leaving_out: Vec<Partition>,
}

/// One partition's record ids checked against the store.
pub(crate) struct IdCheck {
    pub(crate) partition: Partition,
    /// The partition's settled ids in the batch ([`Settled::accounts`]).
    pub(crate) range: std::ops::Range<u64>,
    /// The period version they were checked against.
    pub(crate) version: u64,
    /// Record-id chunks the fingerprints the batch adds take.
    pub(crate) chunks: u32,
}

/// Where a conflicting record id was first counted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FirstSeen {
    /// As this record of the batch.
    InBatch(u64),
    /// By an earlier batch of this period.
    Earlier(String),
}

/// Applies the record-id rule to a batch's first pass against the committed ids (reads only).
/// Ids committed before with other content refuse the batch, naming the records.
pub(crate) async fn check_ids<S: Store>(
    store: &S,
    first: &Aggregated,
    reread: &Reread<'_>,
    batch_id: &str,
) -> Result<IdPlan, RaterError> {
    let mut drops = first.in_batch.drops.clone();
    let mut conflicts: Vec<(u64, FirstSeen)> = Vec::new();
    let mut checked = Vec::new();
    // One bit per id: the new fingerprints are read again from the settled ids when written,
    // never held as a second copy.
    let mut new = Bits::default();
    let mut leaving_out = Vec::new();
    for (key, range) in first.ids.accounts() {
        let partition = Partition::from_key(key).ok_or_else(|| {
            RaterError::TempFile(std::io::Error::other(format!("bad partition key `{key}`")))
        })?;
        let stored = store
            .record_ids(&partition.account, &partition.period, batch_id)
            .await?;
        let against = dedupe::against(&stored.ids, &first.ids, range.clone(), &mut drops, &mut new)
            .map_err(RaterError::TempFile)?;
        if against.dropped > 0 {
            leaving_out.push(partition.clone());
        }
        conflicts.extend(
            against
                .conflicts
                .into_iter()
                .map(|i| (i, FirstSeen::Earlier(partition.period.clone()))),
        );
        let chunks = against.new.div_ceil(IDS_PER_CHUNK as u64) as u32;
        checked.push(IdCheck {
            partition,
            range,
            version: stored.version,
            chunks,
        });
    }
    if !conflicts.is_empty() {
        conflicts.sort_unstable();
        return Err(id_conflicts(reread, first, &conflicts));
    }
    Ok(IdPlan {
        drops,
        checked,
        new,
        leaving_out,
    })
}

/// Writes the record-id chunks of the fingerprints a batch adds, one partition at a time and
/// [`ID_PUT_BYTES`] per store call: for a large export they never sit in memory all at once.
/// They are invisible until the commit counts them (`i:<batch>` on `#COMMITTED`).
pub(crate) async fn put_id_chunks<S: Store>(
    store: &S,
    ids: &Settled,
    checked: &[&IdCheck],
    new: &Bits,
    batch_id: &str,
) -> Result<(), RaterError> {
    let mut group: Vec<UsageChunk> = Vec::new();
    let mut group_bytes = 0;
    for IdCheck {
        partition,
        range,
        chunks: expected,
        ..
    } in checked.iter().copied().filter(|c| c.chunks > 0)
    {
        let mut n = 0u32;
        let mut part =
            Vec::with_capacity(IDS_PER_CHUNK.min(range.end as usize - range.start as usize));
        let mut fingerprints = ids.new_ids(range.clone(), new).peekable();
        while let Some(f) = fingerprints.next() {
            part.push(f.map_err(RaterError::TempFile)?);
            if part.len() < IDS_PER_CHUNK && fingerprints.peek().is_some() {
                continue;
            }
            let body = dedupe::encode_id_chunk(&part);
            part.clear();
            group_bytes += body.len();
            group.push(UsageChunk {
                account: partition.account.clone(),
                period_id: partition.period.clone(),
                batch_id: batch_id.to_string(),
                n,
                kind: ChunkKind::RecordIds,
                body,
            });
            n += 1;
            if group_bytes >= ID_PUT_BYTES {
                store.put_chunks(&group).await?;
                group.clear();
                group_bytes = 0;
            }
        }
        // The commit counts what the check planned; the same bits produced these chunks.
        if n != *expected {
            return Err(RaterError::TempFile(std::io::Error::other(format!(
                "account `{}` {}: {n} record-id chunks written, {expected} planned",
                partition.account, partition.period
            ))));
        }
    }
    if !group.is_empty() {
        store.put_chunks(&group).await?;
    }
    Ok(())
}

/// The error for records whose id was counted before with other content, naming each (a
/// second pass reads their ids).
pub(crate) fn id_conflicts(
    reread: &Reread<'_>,
    batch: &Aggregated,
    conflicts: &[(u64, FirstSeen)],
) -> RaterError {
    let shown: Vec<u64> = {
        let mut v: Vec<u64> = conflicts
            .iter()
            .take(pricing::RECORD_ERRORS_SHOWN_MAX)
            .map(|c| c.0)
            .collect();
        v.sort_unstable();
        v
    };
    let described = match reread(&Pass {
        skip: None,
        describe: &shown,
        // The reread closure reads with the first pass's carried readings.
        carried: None,
    }) {
        Ok(again) if again.sha256 == batch.sha256 => again.described,
        _ => Vec::new(),
    };
    let mut errors = BatchErrors::new();
    for (index, first) in conflicts {
        let id = described
            .iter()
            .find(|(i, _)| i == index)
            .and_then(|(_, id)| id.clone());
        let (first, period) = match first {
            FirstSeen::InBatch(i) => (Some(*i), ""),
            FirstSeen::Earlier(p) => (None, p.as_str()),
        };
        errors.push(dedupe::conflict_error(*index, id, first, period));
    }
    RaterError::BadRecords(errors)
}
