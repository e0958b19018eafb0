//! Record ids count once per account and period: fingerprints, the check inside a batch, and the merge against the ids already committed.
//!
//! # The rule
//!
//! A record that carries an id (`record_id`; CloudStack usage ids and Ceilometer message ids
//! always do) is counted once per account and billing period, whichever batch brings it:
//!
//! - a later copy with the **same content** is **dropped**: an exporter re-sending an
//!   overlapping window is normal at-least-once delivery and must neither fail the batch nor
//!   charge twice. The batch's answer counts the copies it dropped (`duplicates_dropped`);
//! - a later copy with **different content** (same id, another quantity, resource, time...) is
//!   **rejected**, and with it the whole batch, naming the record: one id meaning two usages is
//!   a broken exporter, and neither copy can be guessed right.
//!
//! Records without an id are counted as delivered (batch-level idempotency still applies).
//!
//! # Fingerprints
//!
//! The store keeps, per account and period, one 16-byte fingerprint per distinct record id:
//! the XXH3-64 of the id and the XXH3-64 of the record's content (every field but the id and the
//! account, in a fixed length-prefixed layout, the quantity normalized so that `1.50` in CSV and
//! `1.5` in JSON are one value). XXH3 is a frozen, specified algorithm, so fingerprints written
//! today compare with fingerprints written by any later build. What a collision would do: two
//! different ids sharing 64 bits refuse a batch loudly (never a silent loss); a silent drop needs
//! both 64-bit halves to collide for two different records under the same id hash.
//!
//! Memory: 24 bytes per record with an id while a batch is aggregated (fingerprint plus its
//! position), sorted in place, never a hash table.

use base64::Engine;
use pricing::{RecordError, RecordRule, UsageRecord};
use xxhash_rust::xxh3::xxh3_64;

/// The id and content hashes of one record id; the store keeps these, sorted.
pub type Fingerprint = (u64, u64);

/// A fingerprint and where its record is in the batch (0-based position as the importer
/// reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    id: u64,
    content: u64,
    index: u64,
}

/// The record ids of one batch, per account, collected while it is aggregated.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchIds {
    /// Account -> fingerprints in record order (sorted by [`BatchIds::settle`]).
    accounts: Vec<(String, Vec<Seen>)>,
    /// Index into `accounts` of the last account seen: exports come grouped by account, so
    /// this almost always hits without a search.
    last: usize,
    /// Reused buffer for the content layout.
    buf: Vec<u8>,
}

impl BatchIds {
    /// Notes a record's id (records without one are not tracked).
    pub fn add(&mut self, index: usize, rec: &UsageRecord) {
        let Some(id) = rec.record_id.as_deref().filter(|id| !id.is_empty()) else {
            return;
        };
        let content = content_hash(rec, &mut self.buf);
        let slot = match self.accounts.get(self.last) {
            Some((a, _)) if *a == rec.account => self.last,
            _ => match self.accounts.iter().position(|(a, _)| *a == rec.account) {
                Some(i) => i,
                None => {
                    self.accounts.push((rec.account.clone(), Vec::new()));
                    self.accounts.len() - 1
                }
            },
        };
        self.last = slot;
        self.accounts[slot].1.push(Seen {
            id: id_hash(id),
            content,
            index: index as u64,
        });
    }

    /// Records with an id.
    pub fn len(&self) -> usize {
        self.accounts.iter().map(|(_, v)| v.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sorts the fingerprints and applies the rule inside the batch: returns the positions of
    /// identical later copies (to drop) and of conflicting ones (same id, other content; each
    /// with the position of the first copy). What remains is one entry per id and account,
    /// holding the position of its first copy.
    pub fn settle(&mut self) -> InBatch {
        let mut out = InBatch::default();
        for (_, seen) in &mut self.accounts {
            seen.sort_unstable();
            // After sorting by (id, content, index), copies of one id sit together, and the
            // first entry of each id holds the lowest index among its first content.
            let mut kept = 0;
            for i in 0..seen.len() {
                let s = seen[i];
                if kept > 0 && seen[kept - 1].id == s.id {
                    let first = seen[kept - 1];
                    if first.content == s.content {
                        out.drops.push(s.index);
                    } else {
                        out.conflicts
                            .push((first.index.max(s.index), first.index.min(s.index)));
                    }
                    continue;
                }
                seen[kept] = s;
                kept += 1;
            }
            seen.truncate(kept);
            // Vectors grown by doubling hold up to twice what they need until this point.
            seen.shrink_to_fit();
        }
        self.accounts.sort_by(|a, b| a.0.cmp(&b.0));
        out.drops.sort_unstable();
        out.conflicts.sort_unstable();
        out
    }

    /// Accounts with ids, and their settled fingerprints.
    pub fn accounts(&self) -> impl Iterator<Item = (&str, Ids<'_>)> {
        self.accounts.iter().map(|(a, v)| (a.as_str(), Ids(v)))
    }
}

/// One account's settled fingerprints in a batch.
#[derive(Debug, Clone, Copy)]
pub struct Ids<'a>(&'a [Seen]);

/// What the rule decided inside one batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InBatch {
    /// Positions of identical later copies.
    pub drops: Vec<u64>,
    /// (position, position of the first copy) of copies with other content.
    pub conflicts: Vec<(u64, u64)>,
}

/// What the rule decided for one account against the ids already committed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Against {
    /// Positions of records whose id and content were committed before.
    pub drops: Vec<u64>,
    /// Positions of records whose id was committed before with other content.
    pub conflicts: Vec<u64>,
    /// Fingerprints this batch adds, sorted.
    pub new: Vec<Fingerprint>,
}

/// Merges a batch's settled ids of one account with the sorted fingerprints committed before.
pub fn against(stored: &[Fingerprint], batch: Ids<'_>) -> Against {
    let mut out = Against::default();
    let mut j = 0;
    for s in batch.0 {
        while j < stored.len() && stored[j].0 < s.id {
            j += 1;
        }
        if j < stored.len() && stored[j].0 == s.id {
            // One id can be stored once only, but tolerate repeats: any equal content drops.
            let same = stored[j..]
                .iter()
                .take_while(|f| f.0 == s.id)
                .any(|f| f.1 == s.content);
            if same {
                out.drops.push(s.index);
            } else {
                out.conflicts.push(s.index);
            }
        } else {
            out.new.push((s.id, s.content));
        }
    }
    out.drops.sort_unstable();
    out.conflicts.sort_unstable();
    out
}

/// The record errors for conflicting copies, given each position's record id (read back by a
/// second pass over the export).
pub fn conflict_error(
    index: u64,
    record_id: Option<String>,
    first: Option<u64>,
    period_id: &str,
) -> RecordError {
    let first = match first {
        Some(i) => format!("first as record {i} of this batch"),
        None => format!("by an earlier batch of period {period_id}"),
    };
    RecordError {
        index: index as usize,
        value: record_id.clone().unwrap_or_default(),
        record_id,
        field: "record_id",
        rule: RecordRule::RecordIdReused { first },
    }
}

/// XXH3-64 of a record id.
pub fn id_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// XXH3-64 of everything a record says except its id and account, in a fixed layout: each
/// text length-prefixed (so that field boundaries cannot shift), the quantity normalized, times
/// as seconds and nanoseconds.
pub fn content_hash(rec: &UsageRecord, buf: &mut Vec<u8>) -> u64 {
    fn text(buf: &mut Vec<u8>, s: &str) {
        buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
    }
    fn opt(buf: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => buf.push(0),
            Some(s) => {
                buf.push(1);
                text(buf, s);
            }
        }
    }
    buf.clear();
    opt(buf, rec.project.as_deref());
    text(buf, &rec.resource);
    text(buf, &rec.product);
    text(buf, &rec.meter);
    buf.extend_from_slice(&rec.quantity.normalize().serialize());
    text(buf, rec.unit.label());
    for t in [rec.start, rec.end] {
        buf.extend_from_slice(&t.timestamp().to_le_bytes());
        buf.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
    }
    buf.extend_from_slice(&(rec.tags.len() as u32).to_le_bytes());
    for t in &rec.tags {
        text(buf, t);
    }
    opt(buf, rec.region.as_deref());
    xxh3_64(buf)
}

/// Fingerprints per stored item: 16 bytes each, base64 (4/3), under the chunk limit.
pub const IDS_PER_CHUNK: usize = crate::limits::CHUNK_BYTES_MAX * 3 / 4 / 16 - 64;

/// Splits sorted fingerprints into item bodies: base64 of big-endian (id, content) pairs.
pub fn encode_ids(ids: &[Fingerprint]) -> Vec<String> {
    ids.chunks(IDS_PER_CHUNK)
        .map(|part| {
            let mut bytes = Vec::with_capacity(part.len() * 16);
            for (a, b) in part {
                bytes.extend_from_slice(&a.to_be_bytes());
                bytes.extend_from_slice(&b.to_be_bytes());
            }
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
        })
        .collect()
}

/// Reads an item body back; `None` when it is not one [`encode_ids`] wrote.
pub fn decode_ids(body: &str) -> Option<Vec<Fingerprint>> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(body)
        .ok()?;
    if bytes.len() % 16 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(16)
            .map(|c| {
                let (a, b) = c.split_at(8);
                (
                    u64::from_be_bytes(a.try_into().expect("8 bytes")),
                    u64::from_be_bytes(b.try_into().expect("8 bytes")),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pricing::Unit;
    use rust_decimal::Decimal;

    fn rec(id: &str, account: &str, qty: &str) -> UsageRecord {
        UsageRecord {
            record_id: Some(id.into()),
            account: account.into(),
            project: None,
            resource: "vm-1".into(),
            product: "small".into(),
            meter: "vm.running".into(),
            quantity: qty.parse().unwrap(),
            unit: Unit::Hours,
            start: "2017-02-01T00:00:00Z".parse().unwrap(),
            end: "2017-02-01T01:00:00Z".parse().unwrap(),
            tags: vec![],
            region: None,
        }
    }

    #[test]
    fn content_ignores_scale_and_the_id_but_not_the_quantity() {
        let mut buf = Vec::new();
        let a = content_hash(&rec("r1", "a", "1.50"), &mut buf);
        assert_eq!(a, content_hash(&rec("r2", "a", "1.5"), &mut buf));
        assert_ne!(a, content_hash(&rec("r1", "a", "1.51"), &mut buf));
        let mut moved = rec("r1", "a", "1.5");
        moved.resource = "vm-2".into();
        assert_ne!(a, content_hash(&moved, &mut buf));
        // Field boundaries cannot shift: "ab" + "c" differs from "a" + "bc".
        let (mut x, mut y) = (rec("r", "a", "1"), rec("r", "a", "1"));
        (x.resource, x.product) = ("ab".into(), "c".into());
        (y.resource, y.product) = ("a".into(), "bc".into());
        assert_ne!(content_hash(&x, &mut buf), content_hash(&y, &mut buf));
        assert_eq!(
            Decimal::new(15, 1).normalize(),
            Decimal::new(150, 2).normalize()
        );
    }

    #[test]
    fn in_a_batch_identical_copies_drop_and_different_ones_conflict() {
        let mut ids = BatchIds::default();
        ids.add(0, &rec("r1", "a", "1"));
        ids.add(1, &rec("r2", "a", "1"));
        ids.add(2, &rec("r1", "a", "1")); // identical copy
        ids.add(3, &rec("r2", "a", "2")); // same id, other content
        ids.add(4, &rec("r1", "b", "1")); // another account: its own id space
        let mut no_id = rec("", "a", "1");
        no_id.record_id = None;
        ids.add(5, &no_id);
        assert_eq!(ids.len(), 5);
        let inb = ids.settle();
        assert_eq!(inb.drops, vec![2]);
        assert_eq!(inb.conflicts.len(), 1);
        assert_eq!(inb.conflicts[0], (3, 1));
        let counts: Vec<(&str, usize)> = ids.accounts().map(|(a, v)| (a, v.0.len())).collect();
        assert_eq!(counts, vec![("a", 2), ("b", 1)]);
    }

    #[test]
    fn against_the_store_drops_identical_and_flags_different() {
        let mut buf = Vec::new();
        let stored_rec = rec("r1", "a", "1");
        let mut stored = vec![(id_hash("r1"), content_hash(&stored_rec, &mut buf))];
        stored.sort_unstable();
        let mut ids = BatchIds::default();
        ids.add(0, &rec("r1", "a", "1"));
        ids.add(1, &rec("r9", "a", "1"));
        let mut other = BatchIds::default();
        other.add(7, &rec("r1", "a", "3"));
        ids.settle();
        other.settle();
        let (_, a) = ids.accounts().next().unwrap();
        let got = against(&stored, a);
        assert_eq!(got.drops, vec![0]);
        assert!(got.conflicts.is_empty());
        assert_eq!(got.new.len(), 1);
        let (_, o) = other.accounts().next().unwrap();
        assert_eq!(against(&stored, o).conflicts, vec![7]);
    }

    #[test]
    fn id_chunks_round_trip_and_fit() {
        let ids: Vec<Fingerprint> = (0..IDS_PER_CHUNK as u64 * 2 + 3)
            .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), !i))
            .collect();
        let bodies = encode_ids(&ids);
        assert_eq!(bodies.len(), 3);
        assert!(bodies
            .iter()
            .all(|b| b.len() < crate::limits::CHUNK_BYTES_MAX));
        let back: Vec<Fingerprint> = bodies.iter().flat_map(|b| decode_ids(b).unwrap()).collect();
        assert_eq!(back, ids);
        assert_eq!(decode_ids("not base64!"), None);
    }

    /// Fingerprints are persisted: their values must never change between builds.
    #[test]
    fn fingerprints_are_frozen() {
        let mut buf = Vec::new();
        assert_eq!(format!("{:016x}", id_hash("r1")), FROZEN_ID_HASH);
        let h = content_hash(&rec("r1", "a", "1.5"), &mut buf);
        assert_eq!(h, content_hash(&rec("r1", "a", "1.50"), &mut buf));
        assert_eq!(format!("{h:016x}"), FROZEN_CONTENT_HASH);
    }

    /// Recorded from the first build; a change here means stored ids no longer match.
    const FROZEN_CONTENT_HASH: &str = "deb957eb9e829fb8";
    const FROZEN_ID_HASH: &str = "c082ff223c116753";
}
