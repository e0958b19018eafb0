//! OpenStack Ceilometer importer: samples of the Atomia counters (seed 002) turned into usage records, gauges by time held and cumulative counters by difference.
//!
//! See the module documentation of [`crate::import`] for how each counter type becomes a
//! quantity.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::document::{read_document, Items, ItemsSeed};
use super::format::{Converted, Format, ImportError};
use super::text::{
    check_quantity, parse_decimal, parse_export_time, raw_number_text, raw_text, record_error,
};
use crate::catalog::{Catalog, MeterRole};
use crate::error::{RecordError, RecordRule, TimeFormat};
use crate::mapping::{CeilometerOptions, CounterKind, CumulativeStart, MeterSelector};
use crate::unit::Unit;
use crate::usage::UsageRecord;

/// The counters this importer rates, as named in seed 002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Counter {
    /// `instance:<flavor>`, or `instance` with the flavor in the metadata (gauge).
    Instance,
    /// `network.incoming.bytes` (cumulative or delta; `.gb` when scaled by a transformer).
    TrafficIn,
    TrafficOut,
    /// `disk.read.requests` (cumulative or delta).
    ReadRequests,
    WriteRequests,
    /// `ip.floating` (gauge).
    FloatingIp,
    /// `volume.size` in GB (gauge), priced per volume type.
    VolumeSize,
    /// The catalog mapping's counter rule at this position (`mappings.ceilometer.counters`).
    Custom(u16),
}

impl Counter {
    fn classify(name: &str) -> Option<Counter> {
        Some(match name {
            "instance" => Counter::Instance,
            n if n.starts_with("instance:") => Counter::Instance,
            "network.incoming.bytes" | "network.incoming.bytes.gb" => Counter::TrafficIn,
            "network.outgoing.bytes" | "network.outgoing.bytes.gb" => Counter::TrafficOut,
            "disk.read.requests" => Counter::ReadRequests,
            "disk.write.requests" => Counter::WriteRequests,
            "ip.floating" => Counter::FloatingIp,
            "volume.size" => Counter::VolumeSize,
            _ => return None,
        })
    }

    fn role(self) -> MeterRole {
        match self {
            Counter::Instance => MeterRole::Running,
            Counter::TrafficIn => MeterRole::TrafficIn,
            Counter::TrafficOut => MeterRole::TrafficOut,
            Counter::ReadRequests => MeterRole::ReadRequests,
            Counter::WriteRequests => MeterRole::WriteRequests,
            Counter::FloatingIp => MeterRole::IpHours,
            Counter::VolumeSize | Counter::Custom(_) => MeterRole::Storage,
        }
    }

    fn is_gauge(self) -> bool {
        matches!(
            self,
            Counter::Instance | Counter::FloatingIp | Counter::VolumeSize
        )
    }
}

const KNOWN_COUNTERS: &str = "instance, instance:<flavor>, network.incoming.bytes, network.outgoing.bytes (or .gb), disk.read.requests, disk.write.requests, ip.floating, volume.size";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Cumulative,
    Delta,
}

/// A sample as Ceilometer's v2 API returns it. Both the `/v2/meters/<name>` field names
/// (`counter_name`...) and the `/v2/samples` ones (`meter`, `type`, `unit`, `volume`, `metadata`,
/// `id`) are accepted.
#[derive(Deserialize)]
struct RawSample<'a> {
    #[serde(borrow, alias = "meter")]
    counter_name: Option<&'a RawValue>,
    #[serde(borrow, alias = "type")]
    counter_type: Option<&'a RawValue>,
    #[serde(borrow, alias = "unit")]
    counter_unit: Option<&'a RawValue>,
    #[serde(borrow, alias = "volume")]
    counter_volume: Option<&'a RawValue>,
    #[serde(borrow)]
    resource_id: Option<&'a RawValue>,
    #[serde(borrow)]
    project_id: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, alias = "id")]
    message_id: Option<&'a RawValue>,
    #[serde(borrow, alias = "metadata")]
    resource_metadata: Option<&'a RawValue>,
}

/// A validated sample, ready to be ordered within its resource's series.
struct Sample {
    index: usize,
    counter: Counter,
    kind: Kind,
    product: String,
    meter: String,
    unit: Unit,
    resource: String,
    project: String,
    at: DateTime<Utc>,
    volume: Decimal,
    message_id: Option<String>,
}

enum Outcome {
    Sample(Box<Sample>),
    /// A counter the catalog does not price, dropped on request.
    Skipped,
}

/// Reads a JSON array of samples, or `{"samples": [...]}`, from `reader` one sample at a time:
/// each is validated and filed in its series as it is read, so memory grows with the samples
/// kept (a few hundred bytes each), not with the document's bytes (metadata, whitespace). A
/// cumulative counter needs its whole series before any difference is taken, so the records
/// are made at the end. A document of more than `max_samples` samples
/// ([`DOCUMENT_ITEMS_MAX`](super::DOCUMENT_ITEMS_MAX)) is refused at its end (past the limit
/// samples are only counted); nothing has been stored by then.
pub(super) fn stream<R: Read>(
    reader: R,
    catalog: &Catalog,
    options: &CeilometerOptions,
    max_samples: usize,
) -> Result<Converted, ImportError> {
    let mut out = Converted::default();
    let mut filing = Filing {
        catalog,
        options,
        products: HashMap::new(),
        seen_messages: HashSet::new(),
        series: BTreeMap::new(),
        max_samples: max_samples as u64,
        out: &mut out,
    };
    let found = read_document(
        reader,
        Format::Ceilometer,
        TopSeed {
            filing: &mut filing,
        },
    )?;
    if !found {
        return Err(ImportError::Shape {
            format: Format::Ceilometer,
            message: "expected a JSON array of samples or an object with `samples`".into(),
        });
    }
    if filing.out.items > filing.max_samples {
        return Err(ImportError::TooLarge {
            format: Format::Ceilometer,
            what: "records per document",
            max: filing.max_samples,
        });
    }
    for samples in filing.finish() {
        series_records(samples, options, &mut out);
    }
    Ok(out)
}

/// Samples filed in their series as the document is read; bad samples, repeats and skipped
/// counters go to `out`.
struct Filing<'c, 'o> {
    catalog: &'c Catalog,
    options: &'c CeilometerOptions,
    products: HashMap<String, Result<(String, String), RecordRule>>,
    seen_messages: HashSet<String>,
    /// Series are per counter, resource and unit: `instance:<flavor>` samples of one server
    /// form one series even when a resize changes the flavor between them, while bytes and GB
    /// of the same traffic are never subtracted from each other.
    series: BTreeMap<(Counter, String, u8), Vec<Sample>>,
    max_samples: u64,
    out: &'o mut Converted,
}

impl Filing<'_, '_> {
    /// The next sample of the document (past `max_samples`, only counted).
    fn sample(&mut self, raw: &RawValue) {
        let index = self.out.items as usize;
        self.out.items += 1;
        match parse_sample(index, raw, self.catalog, self.options, &mut self.products) {
            Ok(Outcome::Skipped) => self.out.skipped += 1,
            Ok(Outcome::Sample(s)) => {
                if let Some(id) = &s.message_id {
                    // Ceilometer delivers at least once: a repeated message id is a repeat.
                    if !self.seen_messages.insert(id.clone()) {
                        self.out.skipped += 1;
                        return;
                    }
                }
                let key = (s.counter, s.resource.clone(), unit_fineness(s.unit));
                self.series.entry(key).or_default().push(*s);
            }
            Err(e) => self.out.errors.push(e),
        }
    }

    /// The series in a deterministic order. One quantity is billed once: a pipeline that
    /// publishes a counter in two units (the raw `network.incoming.bytes` and a transformer's
    /// `network.incoming.bytes.gb`) measures the same traffic twice. The finest unit wins, for
    /// it is the untransformed, exact reading; the other series of that counter and resource
    /// are dropped (counted as skipped).
    fn finish(self) -> Vec<Vec<Sample>> {
        let mut kept: Vec<Vec<Sample>> = Vec::with_capacity(self.series.len());
        let mut last: Option<(Counter, String)> = None;
        for ((counter, resource, _), samples) in self.series {
            if last.as_ref() == Some(&(counter, resource.clone())) {
                self.out.skipped += samples.len() as u64;
                continue;
            }
            last = Some((counter, resource));
            kept.push(samples);
        }
        kept
    }
}

/// The document's top level: an array of samples, or an object whose `samples` is read.
/// Answers whether samples were found (an object without `samples` is not a sample list).
struct TopSeed<'a, 'c, 'o> {
    filing: &'a mut Filing<'c, 'o>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of samples or an object with `samples`")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        ItemsSeed {
            items: self.filing,
            expecting: SAMPLES,
        }
        .visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "samples" && !found {
                found = map.next_value_seed(ItemsSeed {
                    items: &mut *self.filing,
                    expecting: SAMPLES,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// What a Ceilometer document's items are; see [`ItemsSeed`].
const SAMPLES: &str = "an array of samples";

impl Items for Filing<'_, '_> {
    fn read(&self) -> u64 {
        self.out.items
    }
    fn limit(&self) -> u64 {
        self.max_samples
    }
    fn take(&mut self, raw: &RawValue) {
        self.sample(raw);
    }
    fn count(&mut self) {
        self.out.items += 1;
    }
}

/// Orders the units one counter may come in, finest first.
fn unit_fineness(unit: Unit) -> u8 {
    match unit {
        Unit::Kilobytes => 1,
        Unit::Megabytes => 2,
        Unit::Gigabytes => 3,
        _ => 0,
    }
}

/// The records of one series, by timestamp: each gauge sample for the time it stands for,
/// each delta as it is, each cumulative sample as the difference from the one before.
fn series_records(mut samples: Vec<Sample>, options: &CeilometerOptions, out: &mut Converted) {
    let interval = Duration::seconds(i64::from(options.gauge_sample_interval_s.max(1)));
    let gap_max =
        Duration::seconds(i64::from(options.gauge_gap_max_s) + i64::from(options.gauge_jitter_s));
    samples.sort_by_key(|s| (s.at, s.index));
    let Some(first) = samples.first() else {
        return;
    };
    let series = series_key(first, options);
    // A counter's first sample here is measured from the reading carried from the batch of
    // the window just before this one (`until` is this window's start), when it is at most
    // one lost poll before it (the gauges' continuity rule): the same difference an export
    // overlapping by that sample gives, with the same record id. Only the adjacent window's
    // reading, and only across one poll gap, so that an export rated out of order (its
    // predecessor missing, or rated later) bridges nothing: its first interval is not billed,
    // rather than billed again by the predecessor's own records.
    let mut previous: Option<(DateTime<Utc>, Decimal)> = match options.window_start {
        Some(start) => options
            .carried
            .as_ref()
            .and_then(|c| c.get(&series))
            .and_then(|readings| readings.iter().rev().find(|r| r.at < first.at))
            .filter(|r| r.until == Some(start) && first.at - r.at <= gap_max)
            .map(|r| (r.at, r.volume)),
        None => None,
    };
    // The last cumulative reading of the window, for the next batch (a reading after the
    // window belongs to the next window's export, which carries it itself). Only a batch
    // with a window leaves one: carrying needs to know which window comes next.
    if let (Some(until), Some(last)) = (
        options.window_end,
        samples
            .iter()
            .rev()
            .find(|s| s.kind == Kind::Cumulative && options.window_end.is_none_or(|w| s.at < w)),
    ) {
        out.readings.insert(
            series,
            vec![crate::mapping::Reading {
                at: last.at,
                volume: last.volume,
                until: Some(until),
            }],
        );
    }
    for k in 0..samples.len() {
        let s = &samples[k];
        match s.kind {
            Kind::Gauge => {
                let next = samples.get(k + 1).map(|n| n.at);
                gauge_records(s, next, interval, gap_max, options, out);
            }
            Kind::Delta => {
                let counted = read_in_window(s.at, options).then_some((s.at, s.volume));
                counted_record(s, counted, options, out);
            }
            Kind::Cumulative => {
                let difference = match previous {
                    None => match options.cumulative_start {
                        CumulativeStart::Baseline => None,
                        CumulativeStart::FromZero => Some((s.at, s.volume)),
                    },
                    // A smaller value means the counter restarted (reboot, migration): it
                    // counted from zero up to its new value.
                    Some((at, v)) if s.volume >= v => Some((at, s.volume - v)),
                    Some((at, _)) => Some((at, s.volume)),
                };
                previous = Some((s.at, s.volume));
                // A sample read outside the window is the baseline of the next one only.
                let counted = difference.filter(|_| read_in_window(s.at, options));
                counted_record(s, counted, options, out);
            }
        }
    }
}

/// Whether a counted sample (cumulative or delta) read at `at` is billed by this batch: a
/// counted quantity belongs to the window it was read in, so the sample a window's export
/// shares with the previous one (the overlap) is that window's baseline, never billed twice.
fn read_in_window(at: DateTime<Utc>, options: &CeilometerOptions) -> bool {
    options.window_start.is_none_or(|w| at >= w) && options.window_end.is_none_or(|w| at < w)
}

/// The record of a counted quantity read at `s.at` since `since`: `[since, s.at]`, cut to the
/// UTC day of the reading (a reading at midnight is a point) so that it lies in the period of
/// every kind that holds the reading; no record for nothing.
fn counted_record(
    s: &Sample,
    counted: Option<(DateTime<Utc>, Decimal)>,
    options: &CeilometerOptions,
    out: &mut Converted,
) {
    match counted {
        Some((since, quantity)) if !quantity.is_zero() => {
            let day = crate::period::midnight(s.at.date_naive());
            let start = since.max(day);
            let id = record_id(s, s.at);
            out.records
                .push((s.index, record(s, id, start, s.at, quantity, options)));
        }
        _ => out.skipped += 1,
    }
}

/// The records of the time a gauge sample stands for: until the next sample when that follows
/// within `gap_max` (the gap limit plus the jitter), else one sampling interval; cut to the
/// window; one record per UTC day it touches, so that each lies in one period of every kind but
/// hours. The part on the sample's own day keeps the sample's id; a later day's part is
/// `<id>@<its start>`, the same whichever export it comes from.
fn gauge_records(
    s: &Sample,
    next: Option<DateTime<Utc>>,
    interval: Duration,
    gap_max: Duration,
    options: &CeilometerOptions,
    out: &mut Converted,
) {
    let held = match next {
        Some(n) if n - s.at <= gap_max => n - s.at,
        _ => interval,
    };
    let mut start = s.at;
    let mut end = s.at + held;
    if let Some(w) = options.window_end {
        if s.at < w && end > w {
            end = w;
        }
    }
    if let Some(w) = options.window_start {
        start = start.max(w);
    }
    if start >= end {
        out.skipped += 1;
        return;
    }
    while start < end {
        let part_end = start
            .date_naive()
            .succ_opt()
            .map_or(end, |d| end.min(crate::period::midnight(d)));
        match gauge_quantity(s, start, part_end) {
            Ok(quantity) if !quantity.is_zero() => {
                let id = record_id(s, start);
                out.records
                    .push((s.index, record(s, id, start, part_end, quantity, options)));
            }
            Ok(_) => out.skipped += 1,
            Err(e) => {
                out.errors.push(e);
                return;
            }
        }
        start = part_end;
    }
}

/// Volume x the seconds of `[start, end)`: in GB-hours for volume sizes, seconds otherwise.
fn gauge_quantity(
    s: &Sample,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Decimal, RecordError> {
    let too_large = || {
        record_error(
            s.index,
            s.message_id.as_deref(),
            "counter_volume",
            &s.volume.to_string(),
            RecordRule::QuantityTooLarge {
                max: crate::usage::record_quantity_max().to_string(),
            },
        )
    };
    let micros = (end - start).num_microseconds().ok_or_else(too_large)?;
    // Exact to the microsecond; normalized so that whole hours read `48`, not `48.000000`.
    let seconds = Decimal::new(micros, 6).normalize();
    let mut quantity = s.volume.checked_mul(seconds).ok_or_else(too_large)?;
    if s.unit == Unit::GigabyteHours {
        // GB x seconds -> GB-hours; the only division here, exact for whole minutes of 36 s
        // multiples and cut at Decimal's 28 digits otherwise, the same on every target.
        quantity /= Decimal::from(3600);
    }
    check_quantity(quantity).map_err(|_| too_large())
}

/// The series a sample belongs to, as carried readings name it: `<counter> <unit> <resource>`,
/// with the counter's own name (a mapped counter's rule name, never its position in the
/// catalog, which a new catalog version may change) and the unit's.
fn series_key(s: &Sample, options: &CeilometerOptions) -> String {
    let counter = match s.counter {
        Counter::Instance => "instance",
        Counter::TrafficIn => "network.incoming.bytes",
        Counter::TrafficOut => "network.outgoing.bytes",
        Counter::ReadRequests => "disk.read.requests",
        Counter::WriteRequests => "disk.write.requests",
        Counter::FloatingIp => "ip.floating",
        Counter::VolumeSize => "volume.size",
        Counter::Custom(i) => options
            .counters
            .get(usize::from(i))
            .map_or("custom", |r| r.name.as_str()),
    };
    format!(
        "{counter} {} {}",
        super::canonical::unit_name(s.unit),
        s.resource
    )
}

/// The id of the record of a sample's usage from `start`: the sample's message id (or a
/// synthetic id from its counter, resource and time) when `start` is the sample's own time,
/// else that id with `@<start>` appended.
fn record_id(s: &Sample, start: DateTime<Utc>) -> String {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let base = s
        .message_id
        .clone()
        .unwrap_or_else(|| format!("ceilometer:{:?}:{}:{}", s.counter, s.resource, time(s.at)));
    if start == s.at {
        base
    } else {
        format!("{base}@{}", time(start))
    }
}

fn record(
    s: &Sample,
    record_id: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    quantity: Decimal,
    options: &CeilometerOptions,
) -> UsageRecord {
    UsageRecord {
        record_id: Some(record_id),
        account: options
            .account_by_project
            .get(&s.project)
            .cloned()
            .unwrap_or_else(|| s.project.clone()),
        project: Some(s.project.clone()),
        resource: s.resource.clone(),
        product: s.product.clone(),
        meter: s.meter.clone(),
        quantity,
        unit: s.unit,
        start,
        end,
        tags: Vec::new(),
        region: options.region.clone(),
    }
}

fn parse_sample(
    index: usize,
    raw: &RawValue,
    catalog: &Catalog,
    options: &CeilometerOptions,
    products: &mut HashMap<String, Result<(String, String), RecordRule>>,
) -> Result<Outcome, RecordError> {
    let s: RawSample<'_> = serde_json::from_str(raw.get()).map_err(|e| {
        let rule = RecordRule::NotARecord {
            expected: "Ceilometer sample object",
            message: e.to_string(),
        };
        record_error(index, None, "$", raw.get(), rule)
    })?;
    let message_id = raw_text(s.message_id)
        .ok()
        .flatten()
        .filter(|m| !m.is_empty());
    let at = At {
        index,
        id: message_id.as_deref(),
    };
    let name = at.text("counter_name", s.counter_name)?;
    let custom = options.counters.iter().position(|rule| {
        rule.name == name
            && rule
                .filter
                .iter()
                .all(|(k, v)| metadata_str(s.resource_metadata, &[k]).as_deref() == Some(v))
    });
    if let Some(i) = custom {
        return custom_sample(index, &at, &s, catalog, options, i, message_id.clone());
    }
    let Some(counter) = Counter::classify(&name) else {
        if options.skip_unknown_counters {
            return Ok(Outcome::Skipped);
        }
        let rule = RecordRule::UnknownCounter {
            known: KNOWN_COUNTERS,
        };
        return Err(at.err("counter_name", &name, rule));
    };
    let kind = counter_kind(&at, &s, counter, &name)?;
    let unit_text = raw_text(s.counter_unit).ok().flatten().unwrap_or_default();
    let unit = sample_unit(counter, &name, &unit_text).ok_or_else(|| {
        let rule = RecordRule::UnknownCounterUnit {
            counter: name.clone(),
        };
        at.err("counter_unit", &unit_text, rule)
    })?;
    let resource = at.text("resource_id", s.resource_id)?;
    let project = at.text("project_id", s.project_id)?;
    let time = at.time(s.timestamp)?;
    let volume = volume(&at, &s)?;
    let (key, key_field) = product_key(&at, &s, counter, &name)?;
    let resolved = products
        .entry(key.clone())
        .or_insert_with(|| {
            let p = catalog
                .resolve_product(&key)
                .ok_or(RecordRule::UnknownProduct)?;
            let m = catalog
                .meter_for_role(&p.id, counter.role())
                .ok_or(RecordRule::UnknownMeter)?;
            Ok((p.id.clone(), m.id.clone()))
        })
        .clone();
    let (product, meter) = resolved.map_err(|rule| at.err(key_field, &key, rule))?;
    Ok(Outcome::Sample(Box::new(Sample {
        index,
        counter,
        kind,
        product,
        meter,
        unit,
        resource,
        project,
        at: time,
        volume,
        message_id,
    })))
}

/// A sample of a counter the catalog's mapping names (rule `i`): its type must be the rule's,
/// its volume is scaled, its product and meter are the rule's.
fn custom_sample(
    index: usize,
    at: &At<'_>,
    s: &RawSample<'_>,
    catalog: &Catalog,
    options: &CeilometerOptions,
    i: usize,
    message_id: Option<String>,
) -> Result<Outcome, RecordError> {
    let rule = &options.counters[i];
    let type_text = at.text("counter_type", s.counter_type)?;
    let kind = match (type_text.as_str(), rule.kind) {
        ("gauge", CounterKind::Gauge) => Kind::Gauge,
        ("cumulative", CounterKind::Cumulative) => Kind::Cumulative,
        ("delta", CounterKind::Delta) => Kind::Delta,
        _ => {
            let expected = match rule.kind {
                CounterKind::Gauge => "gauge",
                CounterKind::Cumulative => "cumulative",
                CounterKind::Delta => "delta",
            };
            let rule = RecordRule::WrongCounterType {
                counter: rule.name.clone(),
                expected,
            };
            return Err(at.err("counter_type", &type_text, rule));
        }
    };
    let volume = volume(at, s)?;
    let too_large = || {
        let max = crate::usage::record_quantity_max().to_string();
        at.err(
            "counter_volume",
            &volume.to_string(),
            RecordRule::QuantityTooLarge { max },
        )
    };
    let volume = volume.checked_mul(rule.scale).ok_or_else(too_large)?;
    let volume = check_quantity(volume).map_err(|_| too_large())?;
    let product = catalog
        .resolve_product(&rule.product)
        .ok_or_else(|| at.err("counter_name", &rule.name, RecordRule::UnknownProduct))?;
    let meter = match &rule.meter {
        MeterSelector::Role(role) => catalog.meter_for_role(&product.id, *role).map(|m| &m.id),
        MeterSelector::Id(id) => product
            .charges
            .iter()
            .find(|c| &c.meter == id)
            .map(|c| &c.meter),
    }
    .ok_or_else(|| at.err("counter_name", &rule.name, RecordRule::UnknownMeter))?;
    let time = at.time(s.timestamp)?;
    Ok(Outcome::Sample(Box::new(Sample {
        index,
        counter: Counter::Custom(i as u16),
        kind,
        product: product.id.clone(),
        meter: meter.clone(),
        unit: rule.unit,
        resource: at.text("resource_id", s.resource_id)?,
        project: at.text("project_id", s.project_id)?,
        at: time,
        volume,
        message_id,
    })))
}

/// Where a sample's errors point: its position and its message id.
struct At<'a> {
    index: usize,
    id: Option<&'a str>,
}

impl At<'_> {
    fn err(&self, field: &'static str, value: &str, rule: RecordRule) -> RecordError {
        record_error(self.index, self.id, field, value, rule)
    }

    /// The sample's `timestamp`, required.
    fn time(&self, v: Option<&RawValue>) -> Result<DateTime<Utc>, RecordError> {
        let text = self.text("timestamp", v)?;
        parse_export_time(&text).ok_or_else(|| {
            let rule = RecordRule::NotATime {
                format: TimeFormat::Ceilometer,
            };
            self.err("timestamp", &text, rule)
        })
    }

    /// A required text field: present and not empty.
    fn text(&self, field: &'static str, v: Option<&RawValue>) -> Result<String, RecordError> {
        match raw_text(v) {
            Ok(Some(t)) if !t.is_empty() => Ok(t),
            Ok(_) => Err(self.err(field, "", RecordRule::MissingField { why: None })),
            Err(rule) => Err(self.err(field, v.map_or("", |v| v.get()), rule)),
        }
    }
}

/// The sample's counter type, which must be the counter's: gauges for what is held, cumulative
/// or delta for what is counted.
fn counter_kind(
    at: &At<'_>,
    s: &RawSample<'_>,
    counter: Counter,
    name: &str,
) -> Result<Kind, RecordError> {
    let type_text = at.text("counter_type", s.counter_type)?;
    match (type_text.as_str(), counter.is_gauge()) {
        ("gauge", true) => Ok(Kind::Gauge),
        ("cumulative", false) => Ok(Kind::Cumulative),
        ("delta", false) => Ok(Kind::Delta),
        _ => {
            let expected = if counter.is_gauge() {
                "gauge"
            } else {
                "cumulative or delta"
            };
            let rule = RecordRule::WrongCounterType {
                counter: name.to_string(),
                expected,
            };
            Err(at.err("counter_type", &type_text, rule))
        }
    }
}

/// The sample's volume, read exactly from its text.
fn volume(at: &At<'_>, s: &RawSample<'_>) -> Result<Decimal, RecordError> {
    let Some(raw_volume) = s.counter_volume else {
        return Err(at.err("counter_volume", "", RecordRule::MissingField { why: None }));
    };
    let volume_text = raw_number_text(raw_volume)
        .map_err(|rule| at.err("counter_volume", raw_volume.get(), rule))?;
    parse_decimal(&volume_text)
        .map_err(|e| at.err("counter_volume", &volume_text, e.rule()))
        .and_then(|v| {
            check_quantity(v).map_err(|rule| at.err("counter_volume", &volume_text, rule))
        })
}

/// The catalog alias that names the sample's product (Atomia's counter id), and the field it
/// comes from: the counter name, or for `instance` and `volume.size` the metadata's flavor or
/// volume type.
fn product_key(
    at: &At<'_>,
    s: &RawSample<'_>,
    counter: Counter,
    name: &str,
) -> Result<(String, &'static str), RecordError> {
    let metadata = || s.resource_metadata.map_or("", |m| m.get());
    match counter {
        Counter::Instance if name == "instance" => {
            let flavor = metadata_str(
                s.resource_metadata,
                &["flavor.name", "flavor", "instance_type", "flavor_name"],
            )
            .ok_or_else(|| at.err("resource_metadata", metadata(), RecordRule::MissingFlavor))?;
            Ok((format!("instance:{flavor}"), "resource_metadata"))
        }
        Counter::VolumeSize => {
            let volume_type =
                metadata_str(s.resource_metadata, &["volume_type"]).ok_or_else(|| {
                    at.err(
                        "resource_metadata",
                        metadata(),
                        RecordRule::MissingVolumeType,
                    )
                })?;
            Ok((
                format!("volume.size.filter:{volume_type}"),
                "resource_metadata",
            ))
        }
        _ => Ok((name.to_string(), "counter_name")),
    }
}

/// The unit of the record a sample produces: time for counted gauges (instances, IPs), GB-hours
/// for volume sizes, the counter's own unit for traffic and requests.
fn sample_unit(counter: Counter, name: &str, unit: &str) -> Option<Unit> {
    match counter {
        Counter::Instance | Counter::FloatingIp => Some(Unit::Seconds),
        Counter::VolumeSize => {
            matches!(unit, "" | "GB" | "gb" | "GiB").then_some(Unit::GigabyteHours)
        }
        // A mapping's counter has its rule's unit (`custom_sample`).
        Counter::Custom(_) => None,
        Counter::ReadRequests | Counter::WriteRequests => {
            matches!(unit, "" | "request" | "requests").then_some(Unit::Requests)
        }
        Counter::TrafficIn | Counter::TrafficOut => match unit {
            "" if name.ends_with(".gb") => Some(Unit::Gigabytes),
            "" | "B" | "byte" | "bytes" => Some(Unit::Bytes),
            "KB" | "kB" | "KiB" => Some(Unit::Kilobytes),
            "MB" | "MiB" => Some(Unit::Megabytes),
            "GB" | "gb" | "GiB" => Some(Unit::Gigabytes),
            _ => None,
        },
    }
}

/// A string in the sample's metadata: the first of `keys` present, where `a.b` also finds a
/// nested `{"a": {"b": ...}}` (Ceilometer flattens nested metadata in some API versions).
fn metadata_str(metadata: Option<&RawValue>, keys: &[&str]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(metadata?.get()).ok()?;
    for key in keys {
        let found = value.get(*key).or_else(|| {
            let (a, b) = key.split_once('.')?;
            value.get(a)?.get(b)
        });
        if let Some(s) = found.and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
            return Some(s.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_json(include_str!("../../../examples/catalogs/openstack.json")).unwrap()
    }

    #[test]
    fn past_the_sample_limit_a_document_is_refused_and_the_excess_only_counted() {
        let items = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
        let options = CeilometerOptions::default();
        // At the limit: read (every `{}` is a bad sample, none is dropped unseen).
        let out = stream(items(10).as_bytes(), &catalog(), &options, 10).unwrap();
        assert_eq!((out.items, out.errors.len()), (10, 10));
        for doc in [items(11), format!(r#"{{"samples": {}}}"#, items(11))] {
            let e = stream(doc.as_bytes(), &catalog(), &options, 10).unwrap_err();
            assert!(
                matches!(
                    e,
                    ImportError::TooLarge {
                        what: "records per document",
                        max: 10,
                        ..
                    }
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn a_reader_failing_half_way_is_a_read_error_not_a_syntax_error() {
        let doc = br#"{"samples": [{}, {}]}"#;
        let cut = doc.iter().position(|&b| b == b',').unwrap() + 1;
        let e = stream(
            super::super::document::FailingReader(&doc[..cut]),
            &catalog(),
            &CeilometerOptions::default(),
            10,
        )
        .unwrap_err();
        assert!(
            matches!(&e, ImportError::Read { message } if message.contains("reset")),
            "{e}"
        );
    }
}
