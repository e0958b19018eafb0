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
//! Memory: bounded, whatever the batch. A record id costs 32 bytes in memory until
//! [`ID_RUN_ENTRIES`] of them are collected; then they are sorted and written to an unnamed
//! temporary file as one run, and the runs are merged at the end (an external sort). The
//! batch's settled ids (one per id and account) stay in that file, read one account at a time;
//! what the store check decides is one bit per record or settled id ([`Bits`]). A Lambda payload
//! (6 MB, about 55,000 records) never touches the disk; a 1 GB export of 9.6 million ids
//! writes about 500 MB of temporary files and holds about 20 MB of ids in memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::ops::Range;

use base64::Engine;
use pricing::usage::same_text;
use pricing::{RecordError, RecordRule, UsageRecord};
use xxhash_rust::xxh3::xxh3_64;

pub use crate::limits::ID_RUN_ENTRIES;

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

const SEEN_BYTES: usize = 24;

impl Seen {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let mut b = [0u8; SEEN_BYTES];
        b[..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..16].copy_from_slice(&self.content.to_le_bytes());
        b[16..].copy_from_slice(&self.index.to_le_bytes());
        out.write_all(&b)
    }

    fn read(input: &mut impl Read) -> io::Result<Seen> {
        let mut b = [0u8; SEEN_BYTES];
        input.read_exact(&mut b)?;
        Ok(Seen {
            id: u64_at(&b, 0),
            content: u64_at(&b, 8),
            index: u64_at(&b, 16),
        })
    }
}

/// A record id as collected: its account's number (in order of first appearance) first, so
/// that sorting groups accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    account: u32,
    seen: Seen,
}

const ENTRY_BYTES: usize = 4 + SEEN_BYTES;

impl Entry {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.account.to_le_bytes())?;
        self.seen.write(out)
    }

    fn read(input: &mut impl Read) -> io::Result<Entry> {
        let mut a = [0u8; 4];
        input.read_exact(&mut a)?;
        Ok(Entry {
            account: u32::from_le_bytes(a),
            seen: Seen::read(input)?,
        })
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads bytes `pos..end` of a file by offset, so that several readers share one file handle
/// without sharing a cursor.
struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, &mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Read buffer per run while merging (and per account while reading settled ids).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The record ids of one batch, collected while it is aggregated; [`BatchIds::settle`] turns
/// them into one entry per id and account.
#[derive(Debug)]
pub struct BatchIds {
    /// Account ids by number, in order of first appearance.
    names: Vec<String>,
    /// Account id -> number: an export that interleaves accounts (an hourly export of every
    /// resource) changes account every few records, and a search of `names` made that
    /// quadratic in accounts.
    numbers: HashMap<String, u32>,
    /// Number of the last account seen: exports come grouped by account, so this usually hits
    /// without a lookup.
    last: u32,
    /// Reused buffer for the content layout.
    buf: Vec<u8>,
    /// Ids not yet written to a run.
    run: Vec<Entry>,
    run_max: usize,
    /// The temporary file of sorted runs and the byte range of each.
    spill: Option<(BufWriter<File>, Vec<Range<u64>>)>,
    /// Bytes written to the spill file.
    written: u64,
    /// The first error writing a run; reported by [`BatchIds::settle`].
    error: Option<io::Error>,
    len: u64,
}

impl Default for BatchIds {
    fn default() -> BatchIds {
        BatchIds::with_run_entries(ID_RUN_ENTRIES)
    }
}

impl BatchIds {
    /// Collects ids, writing a sorted run to a temporary file every `run_max` of them.
    pub fn with_run_entries(run_max: usize) -> BatchIds {
        BatchIds {
            names: Vec::new(),
            numbers: HashMap::new(),
            last: 0,
            buf: Vec::new(),
            run: Vec::new(),
            run_max: run_max.max(1),
            spill: None,
            written: 0,
            error: None,
            len: 0,
        }
    }

    /// Notes a record's id (records without one are not tracked) in its usage partition
    /// (`partition`: [`crate::model::Partition::key`]; ids count once per partition).
    pub fn add(&mut self, index: usize, rec: &UsageRecord, partition: &str) {
        let Some(id) = rec.record_id.as_deref().filter(|id| !id.is_empty()) else {
            return;
        };
        let content = content_hash(rec, &mut self.buf);
        let account = match self.names.get(self.last as usize) {
            Some(a) if same_text(a, partition) => self.last,
            _ => match self.numbers.get(partition) {
                Some(&i) => i,
                None => {
                    let i = self.names.len() as u32;
                    self.names.push(partition.to_string());
                    self.numbers.insert(partition.to_string(), i);
                    i
                }
            },
        };
        self.last = account;
        self.run.push(Entry {
            account,
            seen: Seen {
                id: id_hash(id),
                content,
                index: index as u64,
            },
        });
        self.len += 1;
        if self.run.len() >= self.run_max {
            if let Err(e) = self.write_run() {
                self.error.get_or_insert(e);
            }
        }
    }

    /// Sorts the ids in memory and appends them to the spill file as one run.
    fn write_run(&mut self) -> io::Result<()> {
        if self.error.is_some() {
            // The batch fails at `settle`; keep memory bounded until then.
            self.run.clear();
            return Ok(());
        }
        self.run.sort_unstable();
        let (out, runs) = match &mut self.spill {
            Some(s) => s,
            None => self.spill.insert((
                BufWriter::with_capacity(READ_BUFFER_BYTES, tempfile::tempfile()?),
                Vec::new(),
            )),
        };
        let start = self.written;
        for e in &self.run {
            e.write(out)?;
        }
        self.written += (self.run.len() * ENTRY_BYTES) as u64;
        runs.push(start..self.written);
        self.run.clear();
        Ok(())
    }

    /// Records with an id.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sorts the ids (merging the runs on disk if there are any) and applies the rule inside
    /// the batch: returns the settled ids (one entry per id and account, holding the position
    /// of its first copy) and the positions of identical later copies (to drop) and of
    /// conflicting ones (same id, other content; each with the position of the first copy).
    pub fn settle(mut self) -> io::Result<(Settled, InBatch)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut walk = Walk::default();
        // A batch that spilled spills its last run too, so that all of it is merged.
        if self.spill.is_some() && !self.run.is_empty() {
            self.write_run()?;
        }
        let kept = match self.spill.take() {
            None => {
                self.run.sort_unstable();
                let mut kept = Vec::new();
                for &e in &self.run {
                    walk.push(e, |s| {
                        kept.push(s);
                        Ok(())
                    })?;
                }
                self.run = Vec::new();
                Kept::Memory(kept)
            }
            Some((out, mut runs)) => {
                self.run = Vec::new();
                let file = out.into_inner().map_err(|e| e.into_error())?;
                let mut kept = BufWriter::with_capacity(READ_BUFFER_BYTES, tempfile::tempfile()?);
                merge_runs(&file, &runs, |e| walk.push(e, |s| s.write(&mut kept)))?;
                runs.clear();
                drop(file);
                let file = kept.into_inner().map_err(|e| e.into_error())?;
                Kept::File(file)
            }
        };
        let Walk {
            mut out,
            ranges,
            kept: total,
            ..
        } = walk;
        let mut accounts: Vec<(String, Range<u64>)> = ranges
            .into_iter()
            .map(|(a, r)| (std::mem::take(&mut self.names[a as usize]), r))
            .collect();
        accounts.sort_by(|a, b| a.0.cmp(&b.0));
        out.conflicts.sort_unstable();
        Ok((
            Settled {
                accounts,
                kept,
                len: total,
            },
            out,
        ))
    }
}

/// Feeds the entries of sorted runs to `f` in sorted order (a k-way merge).
fn merge_runs(
    file: &File,
    runs: &[Range<u64>],
    mut f: impl FnMut(Entry) -> io::Result<()>,
) -> io::Result<()> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut readers: Vec<BufReader<At<'_>>> = runs
        .iter()
        .map(|r| {
            BufReader::with_capacity(
                READ_BUFFER_BYTES,
                At {
                    file,
                    pos: r.start,
                    end: r.end,
                },
            )
        })
        .collect();
    let mut left: Vec<u64> = runs
        .iter()
        .map(|r| (r.end - r.start) / ENTRY_BYTES as u64)
        .collect();
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (i, reader) in readers.iter_mut().enumerate() {
        if left[i] > 0 {
            left[i] -= 1;
            heap.push(Reverse((Entry::read(reader)?, i)));
        }
    }
    while let Some(Reverse((e, i))) = heap.pop() {
        if left[i] > 0 {
            left[i] -= 1;
            heap.push(Reverse((Entry::read(&mut readers[i])?, i)));
        }
        f(e)?;
    }
    Ok(())
}

/// The rule inside a batch, applied to its ids in sorted order.
#[derive(Default)]
struct Walk {
    out: InBatch,
    /// The first copy of the current id (sorted by id, content, position, so it holds the
    /// lowest position among its first content).
    first: Option<Entry>,
    /// Per account number, the range of its settled ids.
    ranges: Vec<(u32, Range<u64>)>,
    kept: u64,
}

impl Walk {
    fn push(&mut self, e: Entry, keep: impl FnOnce(Seen) -> io::Result<()>) -> io::Result<()> {
        if let Some(first) = self.first {
            if first.account == e.account && first.seen.id == e.seen.id {
                let (f, s) = (first.seen, e.seen);
                if f.content == s.content {
                    self.out.drops.set(s.index);
                } else {
                    self.out
                        .conflicts
                        .push((f.index.max(s.index), f.index.min(s.index)));
                }
                return Ok(());
            }
        }
        self.first = Some(e);
        match self.ranges.last_mut() {
            Some((a, r)) if *a == e.account => r.end += 1,
            _ => self.ranges.push((e.account, self.kept..self.kept + 1)),
        }
        self.kept += 1;
        keep(e.seen)
    }
}

/// Where settled ids are: in memory for small batches, in a temporary file for large ones.
#[derive(Debug)]
enum Kept {
    Memory(Vec<Seen>),
    File(File),
}

/// A batch's settled record ids: one entry per id and account, sorted per account, each
/// numbered by its position (`0..len`) across all accounts.
#[derive(Debug)]
pub struct Settled {
    /// Accounts in order, with the positions of their ids.
    accounts: Vec<(String, Range<u64>)>,
    kept: Kept,
    len: u64,
}

impl Default for Settled {
    fn default() -> Settled {
        Settled {
            accounts: Vec::new(),
            kept: Kept::Memory(Vec::new()),
            len: 0,
        }
    }
}

impl Settled {
    /// Accounts with ids, in order, and the positions of their settled ids.
    pub fn accounts(&self) -> impl Iterator<Item = (&str, Range<u64>)> {
        self.accounts.iter().map(|(a, r)| (a.as_str(), r.clone()))
    }

    /// Settled ids in all.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the ids live in a temporary file.
    pub fn spilled(&self) -> bool {
        matches!(self.kept, Kept::File(_))
    }

    /// The settled ids at `range` (one account's, from [`Settled::accounts`]), in order.
    fn ids(&self, range: Range<u64>) -> Box<dyn Iterator<Item = io::Result<Seen>> + Send + '_> {
        match &self.kept {
            Kept::Memory(v) => Box::new(
                v[range.start as usize..range.end as usize]
                    .iter()
                    .map(|s| Ok(*s)),
            ),
            Kept::File(file) => {
                let mut r = BufReader::with_capacity(
                    READ_BUFFER_BYTES,
                    At {
                        file,
                        pos: range.start * SEEN_BYTES as u64,
                        end: range.end * SEEN_BYTES as u64,
                    },
                );
                Box::new(range.map(move |_| Seen::read(&mut r)))
            }
        }
    }

    /// The fingerprints at `range` that `new` marks, in order: what the batch adds to the store.
    pub fn new_ids<'a>(
        &'a self,
        range: Range<u64>,
        new: &'a Bits,
    ) -> impl Iterator<Item = io::Result<Fingerprint>> + 'a {
        let start = range.start;
        self.ids(range)
            .enumerate()
            .filter(move |(i, _)| new.get(start + *i as u64))
            .map(|(_, s)| s.map(|s| (s.id, s.content)))
    }
}

/// A set of positions (records of a batch, or its settled ids) as one bit each: 1.2 MB for
/// ten million, where a list of positions would take 80 MB.
#[derive(Debug, Clone, Default)]
pub struct Bits {
    words: Vec<u64>,
    ones: u64,
}

impl Bits {
    /// Adds a position (the set grows as needed).
    pub fn set(&mut self, at: u64) {
        let (w, b) = ((at / 64) as usize, at % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        if self.words[w] & (1 << b) == 0 {
            self.words[w] |= 1 << b;
            self.ones += 1;
        }
    }

    pub fn get(&self, at: u64) -> bool {
        self.words
            .get((at / 64) as usize)
            .is_some_and(|w| w & (1 << (at % 64)) != 0)
    }

    /// Positions in the set.
    pub fn len(&self) -> u64 {
        self.ones
    }

    pub fn is_empty(&self) -> bool {
        self.ones == 0
    }

    /// The positions in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            (0..64u64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i as u64 * 64 + b)
        })
    }
}

/// Equal when they hold the same positions (however far each has grown).
impl PartialEq for Bits {
    fn eq(&self, other: &Bits) -> bool {
        let n = self.words.len().max(other.words.len());
        let word = |b: &Bits, i: usize| b.words.get(i).copied().unwrap_or(0);
        self.ones == other.ones && (0..n).all(|i| word(self, i) == word(other, i))
    }
}

/// What the rule decided inside one batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InBatch {
    /// Positions of identical later copies.
    pub drops: Bits,
    /// (position, position of the first copy) of copies with other content.
    pub conflicts: Vec<(u64, u64)>,
}

/// What the rule decided for one account against the ids already committed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Against {
    /// Records whose id and content were committed before (marked in the drops given).
    pub dropped: u64,
    /// Positions of records whose id was committed before with other content.
    pub conflicts: Vec<u64>,
    /// Fingerprints this batch adds (marked in the new ids given).
    pub new: u64,
}

/// Merges one account's settled ids (`range` of `batch`) with the sorted fingerprints
/// committed before: marks in `drops` the positions of records committed before with the
/// same content, and in `new` the settled ids the store does not hold.
pub fn against(
    stored: &[Fingerprint],
    batch: &Settled,
    range: Range<u64>,
    drops: &mut Bits,
    new: &mut Bits,
) -> io::Result<Against> {
    let mut out = Against::default();
    let mut j = 0;
    let start = range.start;
    for (i, s) in batch.ids(range).enumerate() {
        let s = s?;
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
                drops.set(s.index);
                out.dropped += 1;
            } else {
                out.conflicts.push(s.index);
            }
        } else {
            new.set(start + i as u64);
            out.new += 1;
        }
    }
    out.conflicts.sort_unstable();
    Ok(out)
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

/// Splits sorted fingerprints into item bodies (see [`encode_id_chunk`]).
pub fn encode_ids(ids: &[Fingerprint]) -> Vec<String> {
    ids.chunks(IDS_PER_CHUNK).map(encode_id_chunk).collect()
}

/// One item body: base64 of big-endian (id, content) pairs, at most [`IDS_PER_CHUNK`] of them.
pub fn encode_id_chunk(part: &[Fingerprint]) -> String {
    let mut bytes = Vec::with_capacity(part.len() * 16);
    for (a, b) in part {
        bytes.extend_from_slice(&a.to_be_bytes());
        bytes.extend_from_slice(&b.to_be_bytes());
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
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

    /// Settled ids per account, read back.
    fn settled(ids: &Settled) -> Vec<(String, Vec<Seen>)> {
        ids.accounts()
            .map(|(a, r)| (a.to_string(), ids.ids(r).map(|s| s.unwrap()).collect()))
            .collect()
    }

    #[test]
    fn in_a_batch_identical_copies_drop_and_different_ones_conflict() {
        let mut ids = BatchIds::default();
        ids.add(0, &rec("r1", "a", "1"), "a");
        ids.add(1, &rec("r2", "a", "1"), "a");
        ids.add(2, &rec("r1", "a", "1"), "a"); // identical copy
        ids.add(3, &rec("r2", "a", "2"), "a"); // same id, other content
        ids.add(4, &rec("r1", "b", "1"), "b"); // another account: its own id space
        let mut no_id = rec("", "a", "1");
        no_id.record_id = None;
        ids.add(5, &no_id, "a");
        assert_eq!(ids.len(), 5);
        let (ids, inb) = ids.settle().unwrap();
        assert!(!ids.spilled());
        assert_eq!(inb.drops.iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(inb.conflicts.len(), 1);
        assert_eq!(inb.conflicts[0], (3, 1));
        let counts: Vec<(String, usize)> = settled(&ids)
            .into_iter()
            .map(|(a, v)| (a, v.len()))
            .collect();
        assert_eq!(counts, vec![("a".into(), 2), ("b".into(), 1)]);
        assert_eq!(ids.len(), 3);
    }

    /// The external sort decides exactly what the in-memory sort decides: same drops, same
    /// conflicts, same settled ids per account, whatever the run size.
    #[test]
    fn spilled_runs_settle_like_memory() {
        // 3 accounts interleaved in blocks (as exports group them, with returns), ids reused
        // within and across blocks, some with other content.
        let mut recs = Vec::new();
        for i in 0..500u64 {
            let account = ["a", "b", "c"][((i / 37) % 3) as usize];
            let id = format!("r{}", (i * 7919) % 311);
            let qty = if i % 97 == 0 { "2" } else { "1" };
            recs.push(rec(&id, account, qty));
        }
        let settle = |run: usize| {
            let mut ids = BatchIds::with_run_entries(run);
            for (i, r) in recs.iter().enumerate() {
                ids.add(i, r, &r.account);
            }
            let (ids, inb) = ids.settle().unwrap();
            (ids.spilled(), settled(&ids), ids.len(), inb)
        };
        let (spilled, want, len, inb) = settle(ID_RUN_ENTRIES);
        assert!(!spilled);
        assert!(!inb.drops.is_empty() && !inb.conflicts.is_empty());
        assert_eq!(inb.drops.len(), inb.drops.iter().count() as u64);
        for run in [1, 2, 7, 64, 499, 500] {
            let (spilled, got, got_len, got_inb) = settle(run);
            assert!(spilled, "run of {run}");
            assert_eq!(got, want, "run of {run}");
            assert_eq!((got_len, &got_inb), (len, &inb), "run of {run}");
        }
    }

    #[test]
    fn against_the_store_drops_identical_and_flags_different() {
        let mut buf = Vec::new();
        let stored_rec = rec("r1", "a", "1");
        let mut stored = vec![(id_hash("r1"), content_hash(&stored_rec, &mut buf))];
        stored.sort_unstable();
        for run in [1, ID_RUN_ENTRIES] {
            let mut ids = BatchIds::with_run_entries(run);
            ids.add(0, &rec("r1", "a", "1"), "a");
            ids.add(1, &rec("r9", "a", "1"), "a");
            let mut other = BatchIds::with_run_entries(run);
            other.add(7, &rec("r1", "a", "3"), "a");
            let (ids, _) = ids.settle().unwrap();
            let (other, _) = other.settle().unwrap();
            let (_, range) = ids.accounts().next().unwrap();
            let (mut drops, mut new) = (Bits::default(), Bits::default());
            let got = against(&stored, &ids, range.clone(), &mut drops, &mut new).unwrap();
            assert_eq!(
                (got.dropped, drops.iter().collect::<Vec<_>>()),
                (1, vec![0])
            );
            assert!(got.conflicts.is_empty());
            assert_eq!(got.new, 1);
            let added: Vec<Fingerprint> = ids.new_ids(range, &new).map(|f| f.unwrap()).collect();
            assert_eq!(
                added,
                vec![(id_hash("r9"), content_hash(&rec("r9", "a", "1"), &mut buf))]
            );
            let (_, o) = other.accounts().next().unwrap();
            let (mut d, mut n) = (Bits::default(), Bits::default());
            let got = against(&stored, &other, o, &mut d, &mut n).unwrap();
            assert_eq!((got.conflicts, d.len(), n.len()), (vec![7], 0, 0));
        }
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
