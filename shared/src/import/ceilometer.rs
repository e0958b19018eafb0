//! OpenStack Ceilometer importer: samples of the Atomia counters (seed 002) turned into usage records, gauges by time held and cumulative counters by difference.
//!
//! See the module documentation of [`crate::import`] for how each counter type becomes a
//! quantity.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::document::{json_document_error, parse_items, Items};
use super::format::{Converted, Format, ImportError};
use super::text::{
    check_quantity, parse_decimal, parse_export_time, raw_number_text, raw_text, record_error,
};
use crate::catalog::{Catalog, MeterRole};
use crate::error::{RecordError, RecordRule, TimeFormat};
use crate::unit::Unit;
use crate::usage::UsageRecord;

/// Default time one gauge sample stands for when no later sample follows it: an hour, the
/// collection interval of Atomia's UsageDataScheduledEventHandler and of the hourly polling the
/// example exports use. Set it to the `interval` of your `polling.yaml`.
pub const GAUGE_SAMPLE_INTERVAL_S_DEFAULT: u32 = 3600;

/// Default longest gap between two gauge samples of one resource that still counts as
/// continuous use: two polling intervals, so that one lost or late poll does not lose an hour,
/// while a resource that vanished for longer (stopped, shelved, deleted and recreated with the
/// same id) is not billed for the gap.
pub const GAUGE_GAP_MAX_S_DEFAULT: u32 = 2 * GAUGE_SAMPLE_INTERVAL_S_DEFAULT;

/// What the first sample of a cumulative counter in a document counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CumulativeStart {
    /// Nothing: it is the baseline later samples are measured from. Exports should overlap by
    /// one sample (include the previous window's last sample) so that nothing is lost between
    /// documents; without the overlap, usage between two documents is not billed rather than
    /// billed twice.
    #[default]
    Baseline,
    /// Its whole value: for resources created inside the window, whose counters started at 0.
    FromZero,
}

/// How Ceilometer samples become usage records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeilometerOptions {
    /// Seconds a gauge sample stands for when no later sample of the resource follows it within
    /// `gauge_gap_max_s`.
    pub gauge_sample_interval_s: u32,
    /// Longest gap, in seconds, between two gauge samples that is billed as continuous use.
    pub gauge_gap_max_s: u32,
    /// The end of the export window (the billing period's end): no gauge sample's time runs past
    /// it. [`import_and_rate`](crate::import::import_and_rate) sets it to the period's end when it is `None`.
    pub window_end: Option<DateTime<Utc>>,
    pub cumulative_start: CumulativeStart,
    /// Drop samples of counters the catalog does not price (`cpu`, `memory.usage`...) instead
    /// of refusing the batch. Off by default: an unknown counter is usually a missing price.
    pub skip_unknown_counters: bool,
    /// The billed account of a project id; a project without an entry is its own account.
    pub account_by_project: BTreeMap<String, String>,
    /// Region of every record (Ceilometer samples do not name one); the account's region when
    /// `None`.
    pub region: Option<String>,
}

impl Default for CeilometerOptions {
    fn default() -> Self {
        CeilometerOptions {
            gauge_sample_interval_s: GAUGE_SAMPLE_INTERVAL_S_DEFAULT,
            gauge_gap_max_s: GAUGE_GAP_MAX_S_DEFAULT,
            window_end: None,
            cumulative_start: CumulativeStart::Baseline,
            skip_unknown_counters: false,
            account_by_project: BTreeMap::new(),
            region: None,
        }
    }
}

/// The counters this importer rates, as named in seed 002.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
            Counter::VolumeSize => MeterRole::Storage,
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

#[derive(Deserialize)]
struct SamplesDoc<'a> {
    #[serde(borrow)]
    samples: Option<Items<'a>>,
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

/// Converts a JSON array of samples, or `{"samples": [...]}`.
pub(super) fn convert(
    text: &str,
    catalog: &Catalog,
    options: &CeilometerOptions,
) -> Result<Converted, ImportError> {
    let items = match text.trim_start().as_bytes().first() {
        Some(b'{') => {
            let doc: SamplesDoc<'_> = serde_json::from_str(text)
                .map_err(|e| json_document_error(Format::Ceilometer, &e))?;
            doc.samples
                .ok_or_else(|| ImportError::Shape {
                    format: Format::Ceilometer,
                    message: "expected a JSON array of samples or an object with `samples`".into(),
                })?
                .check_limit(Format::Ceilometer)?
        }
        _ => parse_items(text, Format::Ceilometer)?,
    };
    let mut out = Converted {
        items: items.len() as u64,
        ..Converted::default()
    };
    for samples in series(&items, catalog, options, &mut out) {
        series_records(samples, options, &mut out);
    }
    Ok(out)
}

/// The samples grouped in series, in a deterministic order; bad samples and repeats go to `out`.
fn series(
    items: &[&RawValue],
    catalog: &Catalog,
    options: &CeilometerOptions,
    out: &mut Converted,
) -> Vec<Vec<Sample>> {
    let mut products: HashMap<String, Result<(String, String), RecordRule>> = HashMap::new();
    let mut seen_messages: HashSet<String> = HashSet::new();
    // (counter name, resource) -> samples.
    let mut series: BTreeMap<(String, String), Vec<Sample>> = BTreeMap::new();
    for (index, raw) in items.iter().enumerate() {
        match parse_sample(index, raw, catalog, options, &mut products) {
            Ok(Outcome::Skipped) => out.skipped += 1,
            Ok(Outcome::Sample(s)) => {
                if let Some(id) = &s.message_id {
                    // Ceilometer delivers at least once: a repeated message id is a repeat.
                    if !seen_messages.insert(id.clone()) {
                        out.skipped += 1;
                        continue;
                    }
                }
                let name = counter_series_name(&s);
                series
                    .entry((name, s.resource.clone()))
                    .or_default()
                    .push(*s);
            }
            Err(e) => out.errors.push(e),
        }
    }
    series.into_values().collect()
}

/// The records of one series, by timestamp: each gauge sample for the time it stands for,
/// each delta as it is, each cumulative sample as the difference from the one before.
fn series_records(mut samples: Vec<Sample>, options: &CeilometerOptions, out: &mut Converted) {
    let interval = Duration::seconds(i64::from(options.gauge_sample_interval_s.max(1)));
    let gap_max = Duration::seconds(i64::from(options.gauge_gap_max_s));
    samples.sort_by_key(|s| (s.at, s.index));
    let mut previous: Option<(DateTime<Utc>, Decimal)> = None;
    for k in 0..samples.len() {
        let s = &samples[k];
        let produced = match s.kind {
            Kind::Gauge => {
                let next = samples.get(k + 1).map(|n| n.at);
                gauge_record(s, next, interval, gap_max, options)
            }
            Kind::Delta => Ok(Some((s.at, s.at, s.volume))),
            Kind::Cumulative => {
                let r = match previous {
                    None => match options.cumulative_start {
                        CumulativeStart::Baseline => None,
                        CumulativeStart::FromZero => Some((s.at, s.at, s.volume)),
                    },
                    // A smaller value means the counter restarted (reboot, migration): it
                    // counted from zero up to its new value.
                    Some((at, v)) if s.volume >= v => Some((at, s.at, s.volume - v)),
                    Some((at, _)) => Some((at, s.at, s.volume)),
                };
                previous = Some((s.at, s.volume));
                Ok(r)
            }
        };
        match produced {
            Ok(Some((start, end, quantity))) if !quantity.is_zero() => {
                out.records
                    .push((s.index, record(s, start, end, quantity, options)));
            }
            Ok(_) => out.skipped += 1,
            Err(e) => out.errors.push(e),
        }
    }
}

/// Series are per counter, unit and resource: `instance:<flavor>` samples of one server form
/// one series even when a resize changes the flavor between them, while bytes and GB of the same
/// traffic never get subtracted from each other.
fn counter_series_name(s: &Sample) -> String {
    format!("{:?}/{:?}", s.counter, s.unit)
}

/// A record's `[start, end)` and quantity.
type Measured = (DateTime<Utc>, DateTime<Utc>, Decimal);

/// The time a gauge sample stands for and its quantity: until the next sample when it follows
/// within `gap_max`, else one sampling interval; never past the window's end.
fn gauge_record(
    s: &Sample,
    next: Option<DateTime<Utc>>,
    interval: Duration,
    gap_max: Duration,
    options: &CeilometerOptions,
) -> Result<Option<Measured>, RecordError> {
    let held = match next {
        Some(n) if n - s.at <= gap_max => n - s.at,
        _ => interval,
    };
    let mut end = s.at + held;
    if let Some(w) = options.window_end {
        if s.at < w && end > w {
            end = w;
        }
    }
    let Some(micros) = (end - s.at).num_microseconds() else {
        return Ok(None);
    };
    if micros <= 0 {
        return Ok(None);
    }
    // Exact to the microsecond; normalized so that whole hours read `48`, not `48.000000`.
    let seconds = Decimal::new(micros, 6).normalize();
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
    let mut quantity = s.volume.checked_mul(seconds).ok_or_else(too_large)?;
    if s.unit == Unit::GigabyteHours {
        // GB x seconds -> GB-hours; the only division here, exact for whole minutes of 36 s
        // multiples and cut at Decimal's 28 digits otherwise, the same on every target.
        quantity /= Decimal::from(3600);
    }
    let quantity = check_quantity(quantity).map_err(|_| too_large())?;
    Ok(Some((s.at, end, quantity)))
}

fn record(
    s: &Sample,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    quantity: Decimal,
    options: &CeilometerOptions,
) -> UsageRecord {
    UsageRecord {
        record_id: Some(s.message_id.clone().unwrap_or_else(|| {
            format!(
                "ceilometer:{:?}:{}:{}",
                s.counter,
                s.resource,
                s.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )
        })),
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
    let at_text = at.text("timestamp", s.timestamp)?;
    let time = parse_export_time(&at_text).ok_or_else(|| {
        let rule = RecordRule::NotATime {
            format: TimeFormat::Ceilometer,
        };
        at.err("timestamp", &at_text, rule)
    })?;
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

/// Where a sample's errors point: its position and its message id.
struct At<'a> {
    index: usize,
    id: Option<&'a str>,
}

impl At<'_> {
    fn err(&self, field: &'static str, value: &str, rule: RecordRule) -> RecordError {
        record_error(self.index, self.id, field, value, rule)
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
