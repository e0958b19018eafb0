//! Canonical usage records and the aggregator that folds them into persistable usage totals.
//!
//! Rating never holds records: each record is validated against the catalog and added to a
//! total keyed by (account, project, resource, product, meter, region, day, unit, billable).
//! Totals are kept in the record's own unit, so that sums of integers (bytes, requests) stay
//! exact and the result does not depend on record order; conversion to the meter's unit happens
//! once, when a line is priced.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Category};
use crate::error::{BatchErrors, LineQuantity, RecordError, RecordRule};
use crate::exact::{self, Overflow};
use crate::period::{BillingPeriod, PeriodKind};
use crate::unit::Unit;

/// Largest quantity one record may carry, in its own unit. 10^21 holds a petabyte-month in
/// bytes with room to spare, while a million such records still sum far below Decimal's
/// 7.9 x 10^28 ceiling; anything larger is a broken exporter, not usage.
pub fn record_quantity_max() -> Decimal {
    Decimal::from_i128_with_scale(RECORD_QUANTITY_MAX as i128, 0)
}

/// [`record_quantity_max`] as an integer, for the mantissa test in [`exceeds_record_max`].
const RECORD_QUANTITY_MAX: u128 = 1_000_000_000_000_000_000_000;

/// True when `q` is above [`record_quantity_max`]. A value is at most its mantissa, so the
/// usual quantity (a mantissa under 10^21) is answered without a full decimal comparison.
pub(crate) fn exceeds_record_max(q: Decimal) -> bool {
    q.mantissa().unsigned_abs() > RECORD_QUANTITY_MAX && q > record_quantity_max()
}

/// Longest text field of a record (ids, names, region, each tag), in bytes. CloudStack and
/// OpenStack keep names and ids in 255-character columns (at most 1,020 bytes of UTF-8); past
/// that an exporter is broken, and a field this long still fits a storage key (2 KB) and a
/// usage chunk holds hundreds of totals.
pub const TEXT_BYTES_MAX: usize = 1024;

/// Most tags one record may carry: billing tags are a handful per resource.
pub const TAGS_PER_RECORD_MAX: usize = 64;

/// Refuses a record whose text fields are longer than [`TEXT_BYTES_MAX`] (or that has more
/// than [`TAGS_PER_RECORD_MAX`] tags), naming the field. Every importer's records pass here
/// (in [`Aggregator::add`]) before anything is rated or stored.
pub fn check_text_sizes(index: usize, record: &UsageRecord) -> Result<(), RecordError> {
    let too_long = |field: &'static str, value: &str, what: &'static str, len, max| RecordError {
        index,
        record_id: record.record_id.clone(),
        field,
        value: value.to_string(),
        rule: RecordRule::TooLong { what, len, max },
    };
    let fields: [(&'static str, &str); 7] = [
        ("record_id", record.record_id.as_deref().unwrap_or("")),
        ("account", &record.account),
        ("project", record.project.as_deref().unwrap_or("")),
        ("resource", &record.resource),
        ("product", &record.product),
        ("meter", &record.meter),
        ("region", record.region.as_deref().unwrap_or("")),
    ];
    for (field, value) in fields {
        if value.len() > TEXT_BYTES_MAX {
            return Err(too_long(field, value, "bytes", value.len(), TEXT_BYTES_MAX));
        }
    }
    if record.tags.len() > TAGS_PER_RECORD_MAX {
        let all = record.tags.join(";");
        return Err(too_long(
            "tags",
            &all,
            "tags",
            record.tags.len(),
            TAGS_PER_RECORD_MAX,
        ));
    }
    if let Some(t) = record.tags.iter().find(|t| t.len() > TEXT_BYTES_MAX) {
        return Err(too_long("tags", t, "bytes", t.len(), TEXT_BYTES_MAX));
    }
    Ok(())
}

/// One measured use of one meter of one product by one resource, over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// The exporter's own id of the record, when it has one (used to drop duplicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    /// The billed account (CloudStack domain or account, OpenStack project owner).
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The VM, volume, IP... the usage belongs to.
    pub resource: String,
    /// Catalog product id or alias (an offering UUID, a flavor).
    pub product: String,
    pub meter: String,
    pub quantity: Decimal,
    pub unit: Unit,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The key of a usage total, in persistable form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsageKey {
    pub account: String,
    /// Empty when the record had no project.
    pub project: String,
    pub resource: String,
    /// Canonical catalog product id (aliases are resolved when rating).
    pub product: String,
    pub meter: String,
    /// Empty when the record named no region.
    pub region: String,
    /// UTC day of the record's start: the grain of discount windows and persisted aggregates.
    pub day: NaiveDate,
    /// The unit the quantity is summed in (the records' unit).
    pub unit: Unit,
    /// False when a billing tag switched this charge off (the usage is kept, not charged).
    pub billable: bool,
    /// The records' tags (`env:prod`), sorted, without repeats: what reports group by tag.
    /// Records of one resource and day with other tags are another total.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageTotal {
    pub quantity: Decimal,
    pub records: u64,
}

impl UsageTotal {
    /// Adds `other` (checked: on overflow `self` is left as it was).
    fn add(&mut self, other: UsageTotal) -> Result<(), Overflow> {
        let quantity = exact::add(self.quantity, other.quantity, "usage total")?;
        let records = self.records.checked_add(other.records).ok_or(Overflow {
            what: "record count",
        })?;
        *self = UsageTotal { quantity, records };
        Ok(())
    }
}

/// Rated usage: totals by key, in a deterministic order. Merging two `Usage` values gives the
/// same result as rating their records together.
///
/// Serialized as a list of flat entries (JSON maps cannot have struct keys).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<UsageEntry>", into = "Vec<UsageEntry>")]
pub struct Usage {
    pub totals: BTreeMap<UsageKey, UsageTotal>,
}

/// One total in persisted form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEntry {
    pub account: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
    pub resource: String,
    pub product: String,
    pub meter: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub region: String,
    pub day: NaiveDate,
    pub unit: Unit,
    pub billable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub quantity: Decimal,
    pub records: u64,
}

impl TryFrom<Vec<UsageEntry>> for Usage {
    type Error = Overflow;

    /// Entries of one key are added up (a stored list never holds a key twice, but a hand-made
    /// one may); a sum that does not fit in a decimal refuses the list.
    fn try_from(entries: Vec<UsageEntry>) -> Result<Usage, Overflow> {
        let mut usage = Usage::default();
        for mut e in entries {
            // Canonical like the aggregator's: one set of tags is one key, in any order.
            e.tags.sort_unstable();
            e.tags.dedup();
            let key = UsageKey {
                account: e.account,
                project: e.project,
                resource: e.resource,
                product: e.product,
                meter: e.meter,
                region: e.region,
                day: e.day,
                unit: e.unit,
                billable: e.billable,
                tags: e.tags,
            };
            let total = UsageTotal {
                quantity: e.quantity,
                records: e.records,
            };
            usage.totals.entry(key).or_default().add(total)?;
        }
        Ok(usage)
    }
}

impl From<Usage> for Vec<UsageEntry> {
    fn from(usage: Usage) -> Vec<UsageEntry> {
        usage
            .totals
            .into_iter()
            .map(|(k, t)| UsageEntry {
                account: k.account,
                project: k.project,
                resource: k.resource,
                product: k.product,
                meter: k.meter,
                region: k.region,
                day: k.day,
                unit: k.unit,
                billable: k.billable,
                tags: k.tags,
                quantity: t.quantity,
                records: t.records,
            })
            .collect()
    }
}

impl Usage {
    /// Adds `other`'s totals to these (rating the records of both together gives the same).
    ///
    /// # Errors
    /// [`Overflow`] when a total would not fit in a decimal; the totals added before it stay.
    pub fn merge(&mut self, other: &Usage) -> Result<(), Overflow> {
        for (k, v) in &other.totals {
            self.totals.entry(k.clone()).or_default().add(*v)?;
        }
        Ok(())
    }

    pub fn records(&self) -> u64 {
        self.totals.values().map(|t| t.records).sum()
    }

    /// The part of the usage that belongs to one account.
    pub fn for_account(&self, account: &str) -> Usage {
        Usage {
            totals: self
                .totals
                .iter()
                .filter(|(k, _)| k.account == account)
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    pub fn accounts(&self) -> Vec<String> {
        let mut a: Vec<String> = self.totals.keys().map(|k| k.account.clone()).collect();
        a.dedup();
        a.sort();
        a.dedup();
        a
    }
}

/// FxHash (rustc's hasher): fast on short keys; the aggregator's keys are internal integers, so
/// HashDoS resistance buys nothing here.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Whole 8-byte words are loaded directly; the tail is assembled byte by byte (a
        // `copy_from_slice` of a variable length calls memcpy, which dominated the profile).
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.write_u64(u64::from_le_bytes(w.try_into().expect("8-byte chunk")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let v = tail
                .iter()
                .enumerate()
                .fold(0u64, |v, (i, &b)| v | (u64::from(b) << (8 * i)));
            self.write_u64(v);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_i32(&mut self, i: i32) {
        self.write_u64(i as u32 as u64);
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

/// Strings seen while rating, numbered so that keys are small integers.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32, FxBuild>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }
    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// `id(s)`, answered from `last` when `s` is the same string as last time. Exports come
    /// sorted by account and resource, so most records repeat the previous record's strings and
    /// a comparison is cheaper than a hash lookup.
    fn id_cached(&mut self, last: &mut u32, s: &str) -> u32 {
        if *last != u32::MAX && same_text(&self.names[*last as usize], s) {
            return *last;
        }
        *last = self.id(s);
        *last
    }
}

/// `a == b` for the short texts of a record (ids, names, up to 16 bytes) without a call to
/// `memcmp`: six such comparisons per record made the library call a tenth of rating time.
/// Public so that the rater's per-record checks use it too; it is not part of the pricing API.
#[doc(hidden)]
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    match n {
        // Two overlapping words cover 8 to 16 bytes.
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        0..=7 => a.iter().zip(b).all(|(x, y)| x == y),
        _ => a == b,
    }
}

/// The ids of the previous record's strings (`u32::MAX`: none yet).
struct LastIds {
    account: u32,
    project: u32,
    resource: u32,
    region: u32,
    /// The previous record's product and meter text and the charge they resolved to.
    product: String,
    meter: String,
    charge: u32,
}

impl Default for LastIds {
    fn default() -> Self {
        LastIds {
            account: u32::MAX,
            project: u32::MAX,
            resource: u32::MAX,
            region: u32::MAX,
            product: String::new(),
            meter: String::new(),
            charge: u32::MAX,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PackedKey {
    account: u32,
    project: u32,
    resource: u32,
    charge: u32,
    region: u32,
    /// The record's tag set ([`TagSets`]); 0 is no tag.
    tags: u32,
    day: i32,
    unit: Unit,
    billable: bool,
}

/// Tag sets by id, sorted and without repeats; id 0 is the empty set.
struct TagSets {
    ids: HashMap<Vec<String>, u32, FxBuild>,
    sets: Vec<Vec<String>>,
    /// The previous record's tags as given, and their set's id: exports repeat a resource's
    /// tags record after record, so one comparison usually answers.
    last_raw: Vec<String>,
    last_id: u32,
}

impl Default for TagSets {
    fn default() -> Self {
        let mut ids: HashMap<Vec<String>, u32, FxBuild> = HashMap::default();
        ids.insert(Vec::new(), 0);
        TagSets {
            ids,
            sets: vec![Vec::new()],
            last_raw: Vec::new(),
            last_id: 0,
        }
    }
}

impl TagSets {
    /// The id of a canonical (sorted, deduplicated) set.
    fn id(&mut self, set: &[String]) -> u32 {
        if let Some(&id) = self.ids.get(set) {
            return id;
        }
        let id = self.sets.len() as u32;
        self.sets.push(set.to_vec());
        self.ids.insert(set.to_vec(), id);
        id
    }

    /// The id of a record's tags, in any order and with repeats.
    #[inline]
    fn of_record(&mut self, tags: &[String]) -> u32 {
        if tags.is_empty() {
            return 0;
        }
        if self.last_raw == tags {
            return self.last_id;
        }
        let mut set = tags.to_vec();
        set.sort_unstable();
        set.dedup();
        let id = self.id(&set);
        self.last_raw = tags.to_vec();
        self.last_id = id;
        id
    }

    fn set(&self, id: u32) -> &[String] {
        &self.sets[id as usize]
    }
}

/// What the aggregator knows about one (product, meter) charge.
struct ChargeInfo {
    product: String,
    meter: String,
    meter_unit: Unit,
    category: Category,
}

/// Folds validated records into usage totals for one billing period.
///
/// `add` validates one record and either adds it or returns why not; nothing is half-added.
pub struct Aggregator<'c> {
    catalog: &'c Catalog,
    period: BillingPeriod,
    period_end: DateTime<Utc>,
    /// product id or alias -> (meter -> charge index)
    charges_by_product: HashMap<String, Vec<(String, u32)>, FxBuild>,
    charges: Vec<ChargeInfo>,
    /// billing tag -> categories it switches off
    tags_off: HashMap<String, Vec<Category>, FxBuild>,
    /// region id or alias -> canonical id
    regions: HashMap<String, String, FxBuild>,
    strings: Interner,
    tag_sets: TagSets,
    last: LastIds,
    /// The totals in first-seen order. Exports list their records in an order that repeats
    /// (every resource's meters, hour after hour), so the next record's total is usually found
    /// by a guess next to the previous one: see [`Aggregator::slot`].
    totals: Vec<(PackedKey, UsageTotal)>,
    /// Key -> position in `totals`, for records whose total the guesses miss.
    index: HashMap<PackedKey, u32, FxBuild>,
    /// Position of the previous record's total (`u32::MAX`: none yet).
    last_slot: u32,
    /// Per charge, the position of the last total it added to (`u32::MAX`: none yet).
    charge_slot: Vec<u32>,
    /// Per total (in `totals` order), the position of the first record that added to it:
    /// what a refusal of the line names (see [`Aggregator::check_lines`]).
    firsts: Vec<u64>,
    /// The position of the record being added.
    first: u64,
}

impl<'c> Aggregator<'c> {
    pub fn new(catalog: &'c Catalog, period: BillingPeriod) -> Aggregator<'c> {
        let mut charges = Vec::new();
        let mut charges_by_product: HashMap<String, Vec<(String, u32)>, FxBuild> =
            HashMap::default();
        for p in &catalog.products {
            let mut meters = Vec::new();
            for c in &p.charges {
                let Some(meter) = catalog.meter(&c.meter) else {
                    continue;
                };
                meters.push((c.meter.clone(), charges.len() as u32));
                charges.push(ChargeInfo {
                    product: p.id.clone(),
                    meter: c.meter.clone(),
                    meter_unit: meter.unit,
                    category: c.category.unwrap_or(p.category),
                });
            }
            for key in std::iter::once(&p.id).chain(p.aliases.iter()) {
                charges_by_product
                    .entry(key.clone())
                    .or_insert_with(|| meters.clone());
            }
        }
        let tags_off = catalog
            .billing_tags
            .iter()
            .map(|t| (t.tag.clone(), t.categories.clone()))
            .collect();
        let mut regions: HashMap<String, String, FxBuild> = HashMap::default();
        for r in &catalog.regions {
            regions.insert(r.id.clone(), r.id.clone());
            for a in &r.aliases {
                regions.insert(a.clone(), r.id.clone());
            }
        }
        let charge_slot = vec![u32::MAX; charges.len()];
        Aggregator {
            catalog,
            period,
            period_end: period.end(),
            charges_by_product,
            charges,
            tags_off,
            regions,
            strings: Interner::default(),
            tag_sets: TagSets::default(),
            last: LastIds::default(),
            totals: Vec::new(),
            index: HashMap::default(),
            last_slot: u32::MAX,
            charge_slot,
            firsts: Vec::new(),
            first: 0,
        }
    }

    pub fn period(&self) -> BillingPeriod {
        self.period
    }

    /// Whether this aggregator's period is of `kind` and holds the instant `at`: the
    /// per-record question of which aggregator a record goes to, answered with the period's
    /// end computed once (a month's end is calendar arithmetic).
    pub fn holds(&self, kind: PeriodKind, at: DateTime<Utc>) -> bool {
        self.period.kind == kind && self.period.start <= at && at < self.period_end
    }

    /// Validates `record` (number `index` in its batch) and adds it to the totals.
    pub fn add(&mut self, index: usize, record: &UsageRecord) -> Result<(), RecordError> {
        let refuse = |(field, value, rule): Refusal| RecordError {
            index,
            record_id: record.record_id.clone(),
            field,
            value,
            rule,
        };
        check_text_sizes(index, record)?;
        if record.account.is_empty() {
            return Err(refuse(("account", String::new(), RecordRule::Empty)));
        }
        if record.resource.is_empty() {
            return Err(refuse(("resource", String::new(), RecordRule::Empty)));
        }
        let charge_idx = self.charge_of(record).map_err(refuse)?;
        let charge = &self.charges[charge_idx as usize];
        check_record(record, charge.meter_unit, self.period, self.period_end).map_err(refuse)?;
        let region =
            region_of(record, &charge.product, &self.regions, self.catalog).map_err(refuse)?;
        let billable = record.tags.is_empty()
            || !record.tags.iter().any(|t| {
                self.tags_off
                    .get(t.as_str())
                    .is_some_and(|cats| cats.contains(&charge.category))
            });
        let key = PackedKey {
            account: self
                .strings
                .id_cached(&mut self.last.account, &record.account),
            project: self.strings.id_cached(
                &mut self.last.project,
                record.project.as_deref().unwrap_or(""),
            ),
            resource: self
                .strings
                .id_cached(&mut self.last.resource, &record.resource),
            charge: charge_idx,
            region: self.strings.id_cached(&mut self.last.region, region),
            tags: self.tag_sets.of_record(&record.tags),
            day: chrono::Datelike::num_days_from_ce(&record.start.date_naive()),
            unit: record.unit,
            billable,
        };
        self.first = index as u64;
        let slot = self.slot(key);
        let total = &mut self.totals[slot as usize].1;
        // A record whose quantity would take its total past a decimal is refused; the total is
        // left as it was (a new total starts at zero, and one record is under its cap).
        total
            .add(UsageTotal {
                quantity: record.quantity,
                records: 1,
            })
            .map_err(|_| {
                refuse((
                    "quantity",
                    record.quantity.to_string(),
                    RecordRule::TotalOverflow,
                ))
            })
    }

    /// The charge a record's product and meter name: the previous record's when they are the
    /// same (exports repeat them), else looked up and remembered.
    #[inline]
    fn charge_of(&mut self, record: &UsageRecord) -> Result<u32, Refusal> {
        if self.last.charge != u32::MAX
            && same_text(&self.last.product, &record.product)
            && same_text(&self.last.meter, &record.meter)
        {
            return Ok(self.last.charge);
        }
        let Some(meters) = self.charges_by_product.get(record.product.as_str()) else {
            return Err((
                "product",
                record.product.clone(),
                RecordRule::UnknownProduct,
            ));
        };
        let Some(&(_, idx)) = meters.iter().find(|(m, _)| *m == record.meter) else {
            return Err(("meter", record.meter.clone(), RecordRule::UnknownMeter));
        };
        self.last.product.clear();
        self.last.product.push_str(&record.product);
        self.last.meter.clear();
        self.last.meter.push_str(&record.meter);
        self.last.charge = idx;
        Ok(idx)
    }

    /// The position of `key`'s total, added (empty) if it is new.
    ///
    /// Before the hash lookup, three guesses are tried, each one comparison of a key that is
    /// likely already in cache:
    /// - the previous record's total: a resource's records in a row (hourly records of a day);
    /// - the total after it: the same walk over resources and meters as the hour before (an
    ///   hourly export of every resource lists them in the same order each hour);
    /// - the last total of this record's charge: one resource's meters interleaved.
    ///
    /// With 80,000 totals the map no longer fits the core's cache, and a miss there costs more
    /// than the rest of rating a record: a guess turns that random access into a sequential one.
    /// A record the guesses miss costs one hash lookup, as every record did before, plus those
    /// comparisons. (Before, a run of records with the same key skipped even that; the first
    /// guess now covers such runs.)
    fn slot(&mut self, key: PackedKey) -> u32 {
        let hit = |totals: &[(PackedKey, UsageTotal)], at: u32| {
            totals.get(at as usize).is_some_and(|(k, _)| *k == key)
        };
        let charge = key.charge as usize;
        let by_charge = self.charge_slot[charge];
        let slot = if hit(&self.totals, self.last_slot) {
            self.last_slot
        } else if hit(&self.totals, self.last_slot.wrapping_add(1)) {
            self.last_slot.wrapping_add(1)
        } else if hit(&self.totals, by_charge) {
            by_charge
        } else {
            let next = self.totals.len() as u32;
            let slot = *self.index.entry(key).or_insert(next);
            if slot == next {
                self.totals.push((key, UsageTotal::default()));
                self.firsts.push(self.first);
            }
            slot
        };
        self.last_slot = slot;
        self.charge_slot[charge] = slot;
        slot
    }

    /// Adds a whole batch or nothing: on any bad record the totals are left as they were and
    /// every bad record (up to the display cap) is reported.
    pub fn add_batch<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r UsageRecord>,
    ) -> Result<u64, BatchErrors> {
        let mut staged = Aggregator::new(self.catalog, self.period);
        let mut errors = BatchErrors::new();
        let mut n = 0u64;
        for (i, r) in records.into_iter().enumerate() {
            match staged.add(i, r) {
                Ok(()) => n += 1,
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Err(e) = self.absorb(staged) {
            errors.push(e);
            return Err(errors);
        }
        Ok(n)
    }

    /// Adds a staged aggregator's totals to these, all or none: a sum that would not fit in a
    /// decimal refuses the whole stage with the first record of that total.
    fn absorb(&mut self, other: Aggregator<'_>) -> Result<(), RecordError> {
        // `other`'s tag set ids in this aggregator's: once per set, not per total.
        let tag_ids: Vec<u32> = other
            .tag_sets
            .sets
            .iter()
            .map(|set| self.tag_sets.id(set))
            .collect();
        // The packed keys of `other`, renumbered into this aggregator's strings.
        let keys: Vec<PackedKey> = other
            .totals
            .iter()
            .map(|(k, _)| PackedKey {
                account: self.strings.id(other.strings.name(k.account)),
                project: self.strings.id(other.strings.name(k.project)),
                resource: self.strings.id(other.strings.name(k.resource)),
                region: self.strings.id(other.strings.name(k.region)),
                tags: tag_ids[k.tags as usize],
                ..*k
            })
            .collect();
        for ((key, (_, v)), first) in keys.iter().zip(&other.totals).zip(&other.firsts) {
            let mut sum = self
                .index
                .get(key)
                .map(|&i| self.totals[i as usize].1)
                .unwrap_or_default();
            if sum.add(*v).is_err() {
                return Err(RecordError {
                    index: *first as usize,
                    record_id: None,
                    field: "quantity",
                    value: v.quantity.to_string(),
                    rule: RecordRule::TotalOverflow,
                });
            }
        }
        for ((k, v), first) in keys
            .into_iter()
            .zip(other.totals.into_iter().map(|(_, v)| v))
            .zip(other.firsts)
        {
            self.first = first;
            let slot = self.slot(k);
            // Checked above: it fits.
            let _ = self.totals[slot as usize].1.add(v);
        }
        Ok(())
    }

    /// Refuses the batch when its billable usage of one product's meter, for one account,
    /// adds up (in the meter's unit) to more than `max`, naming the first record of that
    /// usage. Regions are added together: a line is at most that.
    ///
    /// # Errors
    /// The [`RecordError`] of the largest such line (`RecordRule::LineQuantityTooLarge`).
    pub fn check_lines(&self, max: Decimal) -> Result<(), RecordError> {
        let hpm = self.catalog.hours_per_month;
        // (account, charge) -> (quantity in the meter's unit, first record)
        let mut lines: HashMap<(u32, u32), (Option<Decimal>, u64), FxBuild> = HashMap::default();
        for ((k, t), first) in self.totals.iter().zip(&self.firsts) {
            if !k.billable {
                continue;
            }
            let charge = &self.charges[k.charge as usize];
            let q = k.unit.convert(t.quantity, charge.meter_unit, hpm).ok();
            let line = lines
                .entry((k.account, k.charge))
                .or_insert((Some(Decimal::ZERO), *first));
            line.0 = match (line.0, q) {
                (Some(a), Some(b)) => a.checked_add(b),
                _ => None,
            };
            line.1 = line.1.min(*first);
        }
        let over = lines
            .into_iter()
            .filter(|(_, (q, _))| q.is_none_or(|q| q > max))
            .max_by_key(|(_, (q, first))| (q.unwrap_or(Decimal::MAX), std::cmp::Reverse(*first)));
        let Some(((_, charge), (total, first))) = over else {
            return Ok(());
        };
        let charge = &self.charges[charge as usize];
        let total = total.unwrap_or(Decimal::MAX);
        Err(RecordError {
            index: first as usize,
            record_id: None,
            field: "quantity",
            value: total.to_string(),
            rule: RecordRule::LineQuantityTooLarge(Box::new(LineQuantity {
                product: charge.product.clone(),
                meter: charge.meter.clone(),
                total,
                max,
                unit: charge.meter_unit.label(),
            })),
        })
    }

    /// Number of distinct totals held (what persisting them costs).
    pub fn len(&self) -> usize {
        self.totals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }

    fn usage_key(&self, k: &PackedKey) -> UsageKey {
        let charge = &self.charges[k.charge as usize];
        UsageKey {
            account: self.strings.name(k.account).to_string(),
            project: self.strings.name(k.project).to_string(),
            resource: self.strings.name(k.resource).to_string(),
            product: charge.product.clone(),
            meter: charge.meter.clone(),
            region: self.strings.name(k.region).to_string(),
            day: NaiveDate::from_num_days_from_ce_opt(k.day).expect("day from a valid date"),
            unit: k.unit,
            billable: k.billable,
            tags: self.tag_sets.set(k.tags).to_vec(),
        }
    }

    /// The totals in persistable, deterministic form.
    pub fn to_usage(&self) -> Usage {
        Usage {
            totals: self.usage_totals(&self.totals),
        }
    }

    /// Totals keyed by name. Collecting into the tree sorts once and bulk-loads it: inserting
    /// 80,000 string keys one by one was a tenth of an import's time.
    ///
    /// Collecting keeps one value per key, so it is only right when distinct packed keys name
    /// distinct keys. A validated catalog guarantees that (no product id twice, no meter priced
    /// twice in a product, no alias naming another product), but `Catalog`'s fields are public
    /// and a caller may skip validation: if two totals did share a name, they are added up one
    /// by one instead, as before.
    fn usage_totals(&self, packed: &[(PackedKey, UsageTotal)]) -> BTreeMap<UsageKey, UsageTotal> {
        let totals: BTreeMap<UsageKey, UsageTotal> = packed
            .iter()
            .map(|(k, v)| (self.usage_key(k), *v))
            .collect();
        if totals.len() == packed.len() {
            return totals;
        }
        let mut added: BTreeMap<UsageKey, UsageTotal> = BTreeMap::new();
        for (k, v) in packed {
            // Only a catalog that skipped validation names two totals alike; keep the first
            // on an overflow rather than panic.
            let _ = added.entry(self.usage_key(k)).or_default().add(*v);
        }
        added
    }

    /// Hands the totals over one account at a time, in account order, consuming the
    /// aggregator: peak memory is the packed totals plus one account's [`Usage`], not a second
    /// copy of everything (what lets the rater stream a 1 GB export in bounded memory).
    pub fn for_each_account<E>(
        mut self,
        mut f: impl FnMut(&str, Usage) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut keys = std::mem::take(&mut self.totals);
        self.index = HashMap::default();
        // Group by account name (ids are in first-seen order, names give a stable order).
        keys.sort_unstable_by(|(a, _), (b, _)| {
            self.strings
                .name(a.account)
                .cmp(self.strings.name(b.account))
        });
        let mut start = 0;
        while start < keys.len() {
            let account = keys[start].0.account;
            let end = start
                + keys[start..]
                    .iter()
                    .position(|(k, _)| k.account != account)
                    .unwrap_or(keys.len() - start);
            let usage = Usage {
                totals: self.usage_totals(&keys[start..end]),
            };
            f(self.strings.name(account), usage)?;
            start = end;
        }
        Ok(())
    }
}

/// Why [`Aggregator::add`] refuses a record: the field, its value and the rule.
type Refusal = (&'static str, String, RecordRule);

/// The record's unit, quantity and times: a unit that converts to the meter's, a quantity
/// neither negative nor absurd, an end after the start, both inside the period.
#[inline]
fn check_record(
    record: &UsageRecord,
    meter_unit: Unit,
    period: BillingPeriod,
    period_end: DateTime<Utc>,
) -> Result<(), Refusal> {
    if !record.unit.converts_to(meter_unit) {
        let rule = RecordRule::UnitMismatch {
            unit: record.unit.label().to_string(),
            expected: meter_unit.label().to_string(),
        };
        return Err(("unit", record.unit.label().to_string(), rule));
    }
    if record.quantity.is_sign_negative() && !record.quantity.is_zero() {
        let value = record.quantity.to_string();
        return Err(("quantity", value, RecordRule::NegativeQuantity));
    }
    if exceeds_record_max(record.quantity) {
        let rule = RecordRule::QuantityTooLarge {
            max: record_quantity_max().to_string(),
        };
        return Err(("quantity", record.quantity.to_string(), rule));
    }
    if record.end < record.start {
        return Err(("end", record.end.to_rfc3339(), RecordRule::EndBeforeStart));
    }
    let outside = || RecordRule::OutsidePeriod {
        period: period.id(),
    };
    if record.start < period.start || record.start >= period_end {
        return Err(("start", record.start.to_rfc3339(), outside()));
    }
    if record.end > period_end {
        return Err(("end", record.end.to_rfc3339(), outside()));
    }
    Ok(())
}

/// The canonical id of the record's region (empty: none named), which must sell `product`.
#[inline]
fn region_of<'a>(
    record: &UsageRecord,
    product: &str,
    regions: &'a HashMap<String, String, FxBuild>,
    catalog: &Catalog,
) -> Result<&'a str, Refusal> {
    match &record.region {
        None => Ok(""),
        Some(r) if r.is_empty() => Ok(""),
        Some(r) => match regions.get(r.as_str()) {
            Some(canonical) => {
                let region = catalog.region(canonical).expect("indexed region");
                if region.unavailable.iter().any(|p| p == product) {
                    return Err(("region", r.clone(), RecordRule::NotInRegion));
                }
                Ok(canonical.as_str())
            }
            None => Err(("region", r.clone(), RecordRule::UnknownRegion)),
        },
    }
}

/// Rates a batch of records for one period: all or nothing.
pub fn rate(
    catalog: &Catalog,
    period: BillingPeriod,
    records: &[UsageRecord],
) -> Result<Usage, BatchErrors> {
    let mut agg = Aggregator::new(catalog, period);
    let mut errors = BatchErrors::new();
    for (i, r) in records.iter().enumerate() {
        if let Err(e) = agg.add(i, r) {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(agg.to_usage())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    /// A catalog that skipped validation may list one product id twice; records reaching both
    /// copies (one through an alias) name the same total, which must hold both quantities.
    #[test]
    fn totals_named_alike_add_up_even_with_an_unvalidated_catalog() {
        let mut catalog =
            Catalog::from_json(include_str!("../../examples/catalogs/cloudstack.json")).unwrap();
        let mut copy = catalog.product("copper").unwrap().clone();
        copy.aliases = vec!["copper-alias".into()];
        catalog.products.push(copy);
        let period = BillingPeriod::month(2017, 2).unwrap();
        let start: DateTime<Utc> = "2017-02-01T00:00:00Z".parse().unwrap();
        let record = |product: &str, quantity: i64| UsageRecord {
            record_id: None,
            account: "a".into(),
            project: None,
            resource: "vm-1".into(),
            product: product.into(),
            meter: "vm.running".into(),
            quantity: Decimal::from(quantity),
            unit: Unit::Hours,
            start,
            end: start + chrono::Duration::hours(1),
            tags: Vec::new(),
            region: None,
        };
        let usage = rate(
            &catalog,
            period,
            &[record("copper", 1), record("copper-alias", 2)],
        )
        .unwrap();
        let totals: Vec<UsageTotal> = usage.totals.values().copied().collect();
        assert_eq!(
            totals,
            vec![UsageTotal {
                quantity: Decimal::from(3),
                records: 2
            }]
        );
    }

    /// `holds` is `BillingPeriod::contains` plus the kind: half-open at the month's end
    /// (February 2016 has 29 days, checked here by hand, not by the code under test).
    #[test]
    fn holds_is_the_periods_half_open_interval_and_kind() {
        let catalog =
            Catalog::from_json(include_str!("../../examples/catalogs/cloudstack.json")).unwrap();
        let agg = Aggregator::new(&catalog, BillingPeriod::month(2016, 2).unwrap());
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(agg.holds(PeriodKind::Month, at("2016-02-01T00:00:00Z")));
        assert!(agg.holds(PeriodKind::Month, at("2016-02-29T23:59:59Z")));
        assert!(!agg.holds(PeriodKind::Month, at("2016-03-01T00:00:00Z")));
        assert!(!agg.holds(PeriodKind::Month, at("2016-01-31T23:59:59Z")));
        assert!(!agg.holds(PeriodKind::Day, at("2016-02-01T00:00:00Z")));
    }

    /// Every length up to 20, every position of a single differing byte, and texts that differ
    /// only in length.
    #[test]
    fn same_text_is_string_equality() {
        for n in 0..=20usize {
            let a: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            assert!(same_text(&a, &a.clone()), "{a}");
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same_text(&a, &b), "{a} {b}");
            }
            let longer = format!("{a}x");
            assert!(!same_text(&a, &longer) && !same_text(&longer, &a), "{a}");
        }
    }
}
