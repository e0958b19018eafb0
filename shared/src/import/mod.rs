//! Usage importers: canonical CSV and JSON Lines, CloudStack listUsageRecords, OpenStack Ceilometer samples (pure: bytes in, records out).
//!
//! Architecture invariant: like the rest of the crate, importers do no I/O of their own and read
//! no clock. They take any [`std::io::Read`] (a byte slice in the browser, a file or a request
//! body in the rater) and hand [`UsageRecord`]s to a sink closure, usually
//! [`Aggregator::add`]. They never decide whether a batch is stored: [`import`] returns every bad
//! record (first [`RECORD_ERRORS_SHOWN_MAX`](crate::error::RECORD_ERRORS_SHOWN_MAX) listed, all
//! counted) and the caller rejects the whole batch.
//!
//! ```text
//! bytes --import(format)--> UsageRecord --sink--> Aggregator::add --> Usage --> invoice
//!            |                                          |
//!            +-- RecordError (parse: line, field) ------+-- RecordError (catalog, period)
//!                                  \--> ImportError::Records(BatchErrors): the batch is refused
//! ```
//!
//! # Record numbers
//! `RecordError::index` (also the first argument of the sink) is the 1-based **line number** for
//! CSV and JSON Lines, and the 0-based **position in the array** for CloudStack and Ceilometer
//! documents. Records derived from several inputs carry the index of the input they come from
//! (a stopped-time record: its ALLOCATED_VM record; a cumulative difference: its later sample).
//!
//! # Streaming and limits
//! CSV and JSON Lines are read line by line through a 64 KiB buffer: memory does not grow with
//! the file, so a 1 GB export imports in a few megabytes plus what the sink keeps. A line is at
//! most [`LINE_BYTES_MAX`]. CloudStack and Ceilometer answers are single JSON documents (daily
//! exports), read whole: at most [`DOCUMENT_BYTES_MAX`] bytes and [`DOCUMENT_ITEMS_MAX`] records
//! or samples, both checked before anything is converted.
//!
//! # Canonical CSV
//! Header [`CSV_HEADER`]: `record_id,account,project,resource,product,meter,quantity,unit,start,end,tags,region`.
//! Columns may come in any order; `record_id`, `project`, `tags` and `region` may be left out or
//! empty. `quantity` is a decimal (`12.5`, `1.5e3`; never `NaN` or `inf`), `unit` a [`Unit`] name
//! or alias (`hours`, `h`, `bytes`, `GB`, `byte_hours`, `GB.h`...), `start`/`end` RFC 3339 instants
//! (`2017-02-14T00:00:00Z`), `tags` separated by `;` (`Billing:noCPU;env:prod`). Fields with `,`
//! or `"` are quoted RFC 4180 style; a field may not hold a line break. [`write_csv_row`] writes it.
//!
//! # JSON Lines
//! One [`UsageRecord`] object per line, the same field names. Quantities may be strings
//! (`"12.5"`) or JSON numbers, which are read exactly from their text, never through a float.
//!
//! # CloudStack `listUsageRecords`
//! `{"listusagerecordsresponse": {"count": N, "usagerecord": [...]}}`, or a bare array of
//! usage records. `count`, when present, must equal the number of records (otherwise the
//! document is one page of a paginated answer). Dates may be CloudStack's
//! `2018-09-19'T'03:00:00+00:00`, ISO 8601 with `+0000` or `+00:00`, or `2018-09-19 03:00:00`
//! (UTC). `usagetype` may be a number, a numeric string or the type's name.
//!
//! The default [`CloudStackMapping`] (matching `examples/catalogs/cloudstack.json`):
//!
//! | type | name | product | meter | quantity (unit) |
//! |---|---|---|---|---|
//! | 1 | RUNNING_VM | `offeringid` (service offering alias) | role `running` | rawusage (hours) |
//! | 2 | ALLOCATED_VM | `offeringid` | role `stopped` | rawusage - RUNNING_VM hours of the same VM, offering and period (hours); no record when 0; error when negative |
//! | 3 | IP_ADDRESS | `public-ip` | role `ip_hours` | rawusage (hours) |
//! | 4 | NETWORK_BYTES_SENT | `network` | role `traffic_out` | rawusage (bytes; GB = 1024^3 B when priced) |
//! | 5 | NETWORK_BYTES_RECEIVED | `network` | role `traffic_in` | rawusage (bytes) |
//! | 6 | VOLUME | `offeringid` (disk offering alias) if it is priced for storage, else `root` | role `storage` | size x rawusage (byte_hours) |
//! | 7 | TEMPLATE | `templates` | role `snapshot_storage` | size x rawusage (byte_hours) |
//! | 8 | ISO | `isos` | role `snapshot_storage` | size x rawusage (byte_hours) |
//! | 9 | SNAPSHOT | `snapshots` | role `snapshot_storage` | size x rawusage (byte_hours) |
//! | 10 | SECURITY_GROUP | `security-group` | role `service_hours` | rawusage (hours) |
//! | 11 | LOAD_BALANCER_POLICY | `load-balancer` | role `service_hours` | rawusage (hours) |
//! | 12 | PORT_FORWARDING_RULE | `port-forwarding` | role `service_hours` | rawusage (hours) |
//! | 13 | NETWORK_OFFERING | `offeringid` (network offering alias) | role `service_hours` | rawusage (hours) |
//! | 14 | VPN_USERS | `vpn` | meter `vpn.users` | rawusage (hours) |
//! | 21 | VM_DISK_IO_READ | `disk-io` | role `read_requests` | rawusage (requests) |
//! | 22 | VM_DISK_IO_WRITE | `disk-io` | role `write_requests` | rawusage (requests) |
//! | 23 | VM_DISK_BYTES_READ | `disk-io` | meter `disk.read.bytes` | rawusage (bytes) |
//! | 24 | VM_DISK_BYTES_WRITE | `disk-io` | meter `disk.write.bytes` | rawusage (bytes) |
//! | 25 | VM_SNAPSHOT | `vm-snapshots` | role `snapshot_storage` | size x rawusage (byte_hours) |
//!
//! Any other type (15-20, 26+) is refused with an error on `usagetype` unless a rule is added.
//! Decisions:
//! - **account** = `account` (the account name the seed 000 invoice is addressed to);
//!   [`AccountField`] selects `accountid`, `domain`, `domainid` or `domain/account` instead;
//! - **project** = `projectid`, else `project`; **region** = `zoneid`, resolved through the
//!   catalog's region aliases (unknown zone: error on `zoneid`);
//! - **resource** = `virtualmachineid` for VM records (types 1 and 2), else `usageid` (the
//!   volume, IP, network...), falling back to the other;
//! - **record id** = `cs:<usagetype>:<usageid>:<startdate as RFC 3339 UTC>[:<offeringid>]`:
//!   stable across re-exports and date spellings; the offering keeps apart the two records
//!   CloudStack writes when a VM changes offering inside one aggregation period. A record id
//!   seen twice in one document is refused (a page fetched twice);
//! - **tags**: `{"key": "Billing", "value": "noCPU"}` becomes `Billing:noCPU`; a tag with an
//!   empty value, or a plain string, is its key alone;
//! - `enddate` is kept as written (CloudStack writes inclusive ends such as `23:59:59`).
//!
//! # OpenStack Ceilometer samples
//! A JSON array of samples or `{"samples": [...]}`; fields `counter_name`, `counter_type`,
//! `counter_unit`, `counter_volume`, `resource_id`, `project_id`, `timestamp`, `message_id`,
//! `resource_metadata` (or the `/v2/samples` names `meter`, `type`, `unit`, `volume`, `id`,
//! `metadata`). The product is found by Atomia's counter id used as a catalog alias; the meter
//! by role.
//!
//! | counter | type | product alias | meter role | quantity (unit) |
//! |---|---|---|---|---|
//! | `instance:<flavor>` | gauge | the counter name | `running` | volume x time held (seconds) |
//! | `instance` | gauge | `instance:<flavor>`, flavor from metadata `flavor.name` or `instance_type` | `running` | volume x time held (seconds) |
//! | `ip.floating` | gauge | `ip.floating` | `ip_hours` | volume x time held (seconds) |
//! | `volume.size` | gauge (GB) | `volume.size.filter:<volume_type>` | `storage` | GB x time held (gigabyte_hours) |
//! | `network.incoming.bytes`, `network.outgoing.bytes` (`.gb` scaled) | cumulative or delta | the counter name | `traffic_in` / `traffic_out` | difference (bytes, or GB for `.gb`) |
//! | `disk.read.requests`, `disk.write.requests` | cumulative or delta | the counter name | `read_requests` / `write_requests` | difference (requests) |
//!
//! How each counter type becomes a quantity, per (counter, resource) series ordered by
//! timestamp:
//! - **gauge**: a sample stands for the time until the next sample of the series when that
//!   follows within [`CeilometerOptions::gauge_gap_max_s`] (default 2 h), else for
//!   [`CeilometerOptions::gauge_sample_interval_s`] (default 1 h; the last sample too), cut at
//!   [`CeilometerOptions::window_end`]. Quantity = volume x that time; record = `[timestamp,
//!   timestamp + time)`. Hourly samples of one instance from 00:00 to 23:00 make 24 h.
//! - **cumulative**: quantity = this value minus the previous sample's; a smaller value is a
//!   counter reset and counts from zero (the new value). The first sample is the baseline
//!   ([`CumulativeStart`]); record = `[previous timestamp, timestamp)`.
//! - **delta**: quantity = the volume; record = `[timestamp, timestamp]`.
//!
//! Zero quantities make no record. A repeated `message_id` is dropped (Ceilometer delivers at
//! least once). **account** = `project_id`, or its entry in
//! [`CeilometerOptions::account_by_project`]; **project** = `project_id`; **resource** =
//! `resource_id`; **record id** = `message_id`. Unknown counters are errors on `counter_name`
//! unless [`CeilometerOptions::skip_unknown_counters`].
//!
//! # Errors
//! A batch without a single usage item is [`ImportError::Empty`]. Problems with the input as a
//! whole (not JSON, not the expected shape, over a limit, unreadable) end the import at once;
//! problems with one record are collected and returned together as [`ImportError::Records`].

mod canonical;
mod ceilometer;
mod cloudstack;
mod text;

use std::fmt;
use std::io::Read;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::catalog::Catalog;
use crate::error::{BatchErrors, RecordError};
use crate::period::BillingPeriod;
use crate::usage::{Aggregator, Usage, UsageRecord};

pub use canonical::{
    to_csv_row, unit_name, write_csv_row, write_json_line, CsvWriteError, CSV_COLUMNS, CSV_HEADER,
    TAG_SEPARATOR,
};
pub use ceilometer::{
    CeilometerOptions, CumulativeStart, GAUGE_GAP_MAX_S_DEFAULT, GAUGE_SAMPLE_INTERVAL_S_DEFAULT,
};
pub use cloudstack::{
    usage_type, AccountField, CloudStackMapping, MeterSelector, ProductSource, QuantityKind,
    UsageTypeRule,
};

#[cfg(doc)]
use crate::unit::Unit;

/// Longest line of a CSV or JSON Lines input. A canonical record is about 200 bytes; 64 KiB
/// leaves room for long tag lists while bounding what one line can make the reader hold.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Largest CloudStack or Ceilometer document. These are read whole: 64 MiB holds a daily
/// CloudStack export of about 100,000 records (some 600 bytes each), and parsing borrows from
/// the text, so the import stays near twice the document's size. Larger clouds export per
/// domain or convert to canonical CSV, which streams.
pub const DOCUMENT_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most records (CloudStack) or samples (Ceilometer) in one document: a daily export of
/// 10,000 VMs, each with a few volumes, IPs and network offerings, at one record per resource
/// per usage type per day. Checked while parsing, before any record is converted, so that a
/// document of millions of tiny items cannot make the importer hold millions of entries.
pub const DOCUMENT_ITEMS_MAX: usize = 200_000;

/// Longest value quoted in an error message, in characters.
pub const ERROR_VALUE_CHARS_MAX: usize = 200;

/// How many leading bytes [`detect`] needs to recognise every format.
pub const DETECT_PREFIX_BYTES: usize = 4096;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// Canonical CSV ([`CSV_HEADER`]).
    #[serde(rename = "csv")]
    Csv,
    /// One [`UsageRecord`] JSON object per line.
    #[serde(rename = "jsonl")]
    JsonLines,
    /// A CloudStack `listUsageRecords` response.
    #[serde(rename = "cloudstack")]
    CloudStack,
    /// OpenStack Ceilometer samples.
    #[serde(rename = "ceilometer")]
    Ceilometer,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Csv,
        Format::JsonLines,
        Format::CloudStack,
        Format::Ceilometer,
    ];

    /// The name [`FromStr`] reads: `csv`, `jsonl`, `cloudstack`, `ceilometer`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::CloudStack => "cloudstack",
            Format::Ceilometer => "ceilometer",
        }
    }

    /// See [`detect`].
    pub fn detect(prefix: &[u8]) -> Option<Format> {
        detect(prefix)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of `csv`, `jsonl`, `cloudstack`, `ceilometer`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown import format `{0}` (expected csv, jsonl, cloudstack or ceilometer)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json-lines" | "jsonlines" => Ok(Format::JsonLines),
            "cloudstack" => Ok(Format::CloudStack),
            "ceilometer" | "openstack" => Ok(Format::Ceilometer),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

/// Guesses the format of an input from its first bytes ([`DETECT_PREFIX_BYTES`] are enough),
/// or `None` when they do not look like any format.
///
/// JSON is told apart by the keys it holds: `listusagerecordsresponse` or `usagetype`
/// (CloudStack), `counter_name`/`counter_volume` or `samples` (Ceilometer), `quantity` and
/// `meter` on an object (JSON Lines). CSV is recognised by a header naming only canonical
/// columns, `account` and `quantity` among them.
pub fn detect(prefix: &[u8]) -> Option<Format> {
    let p = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let start = p.iter().position(|b| !b.is_ascii_whitespace())?;
    let p = &p[start..];
    let has = |key: &[u8]| p.windows(key.len()).any(|w| w == key);
    match p[0] {
        b'{' | b'[' => {
            if has(b"\"listusagerecordsresponse\"") || has(b"\"usagetype\"") {
                Some(Format::CloudStack)
            } else if has(b"\"counter_name\"")
                || has(b"\"counter_volume\"")
                || (p[0] == b'{' && has(b"\"samples\""))
                || (has(b"\"resource_id\"") && has(b"\"volume\"") && has(b"\"meter\""))
            {
                Some(Format::Ceilometer)
            } else if p[0] == b'{' && has(b"\"quantity\"") && has(b"\"meter\"") {
                Some(Format::JsonLines)
            } else {
                None
            }
        }
        _ => {
            let line_end = p.iter().position(|&b| b == b'\n').unwrap_or(p.len());
            let line = std::str::from_utf8(&p[..line_end]).ok()?;
            let names: Vec<&str> = line
                .trim_end_matches('\r')
                .split(',')
                .map(|c| c.trim().trim_matches('"'))
                .collect();
            let all_known = names.iter().all(|n| CSV_COLUMNS.contains(n));
            (all_known && names.contains(&"account") && names.contains(&"quantity"))
                .then_some(Format::Csv)
        }
    }
}

/// Settings of the importers that need them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    #[serde(default)]
    pub cloudstack: CloudStackMapping,
    #[serde(default)]
    pub ceilometer: CeilometerOptions,
}

/// What an import read and produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportStats {
    pub format: Format,
    /// Rows, records or samples read (blank lines and headers excluded).
    pub items: u64,
    /// Usage records produced and handed to the sink (including any the sink refused).
    pub records: u64,
    /// Items that made no record without being wrong: a VM stopped for 0 h, a cumulative
    /// baseline, a zero difference, a repeated sample, a counter skipped on request.
    pub skipped: u64,
}

/// Why an import produced no usable batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ImportError {
    /// The input holds no usage items. An empty batch is refused rather than rated as nothing:
    /// it is almost always a failed export, and an empty invoice would hide it.
    #[error("empty batch: the {format} input holds no usage records")]
    Empty { format: Format },
    /// The input is over a size limit; nothing was converted.
    #[error("{format} input is over the limit of {max} {what}")]
    TooLarge {
        format: Format,
        what: &'static str,
        max: u64,
    },
    /// The document is not valid JSON (or not UTF-8).
    #[error("{format} input is not valid JSON at line {line}, column {column}: {message}")]
    Syntax {
        format: Format,
        line: usize,
        column: usize,
        message: String,
    },
    /// The document parses but is not of the expected shape (a CSV header with unknown
    /// columns, a CloudStack error response, a paginated answer's single page...).
    #[error("{format} input is not a usage export: {message}")]
    Shape { format: Format, message: String },
    /// The reader failed (only possible with a reader that does I/O).
    #[error("reading the input failed: {message}")]
    Read { message: String },
    /// Some records are bad: the whole batch is refused.
    #[error(transparent)]
    Records(BatchErrors),
}

/// Records converted from a whole document, before they reach the sink.
#[derive(Default)]
pub(crate) struct Converted {
    pub records: Vec<(usize, UsageRecord)>,
    pub errors: Vec<RecordError>,
    pub items: u64,
    pub skipped: u64,
}

/// Reads `reader` as `format` and hands each usage record to `sink` with its record number
/// (line number for CSV and JSON Lines, array position for documents).
///
/// Every record is read even after errors, so that one answer lists all bad records: both the
/// importer's (syntax, missing fields, unknown offerings...) and the sink's (an
/// [`Aggregator::add`] refusal). The sink has seen the good records by then; a caller that must
/// be all-or-nothing discards what the sink built when this returns an error.
///
/// # Errors
/// [`ImportError::Records`] with every bad record; [`ImportError::Empty`] when the input holds
/// no usage; [`ImportError::TooLarge`], [`ImportError::Syntax`], [`ImportError::Shape`] or
/// [`ImportError::Read`] when the input as a whole cannot be read.
pub fn import<R, F>(
    format: Format,
    reader: R,
    catalog: &Catalog,
    options: &ImportOptions,
    mut sink: F,
) -> Result<ImportStats, ImportError>
where
    R: Read,
    F: FnMut(usize, UsageRecord) -> Result<(), RecordError>,
{
    import_each(format, reader, catalog, options, |i, r| sink(i, r.clone()))
}

/// [`import`] with a sink that borrows each record instead of owning it: the streaming formats
/// then reuse one record buffer and allocate nothing per row. This is the fast path that
/// [`import_and_rate`] and the rater use.
pub fn import_each<R, F>(
    format: Format,
    reader: R,
    catalog: &Catalog,
    options: &ImportOptions,
    mut sink: F,
) -> Result<ImportStats, ImportError>
where
    R: Read,
    F: FnMut(usize, &UsageRecord) -> Result<(), RecordError>,
{
    let mut stats = ImportStats {
        format,
        items: 0,
        records: 0,
        skipped: 0,
    };
    let mut errors = BatchErrors::new();
    match format {
        Format::Csv => canonical::import_csv(reader, &mut sink, &mut errors, &mut stats)?,
        Format::JsonLines => canonical::import_jsonl(reader, &mut sink, &mut errors, &mut stats)?,
        Format::CloudStack | Format::Ceilometer => {
            let bytes = text::read_document(reader, DOCUMENT_BYTES_MAX, format)?;
            let text = document_text(&bytes, format)?;
            let mut converted = match format {
                Format::CloudStack => cloudstack::convert(text, catalog, &options.cloudstack)?,
                _ => ceilometer::convert(text, catalog, &options.ceilometer)?,
            };
            stats.items = converted.items;
            stats.skipped = converted.skipped;
            stats.records = converted.records.len() as u64;
            converted.records.sort_by_key(|(i, _)| *i);
            for (i, r) in converted.records {
                if let Err(e) = sink(i, &r) {
                    converted.errors.push(e);
                }
            }
            converted.errors.sort_by_key(|e| e.index);
            for e in converted.errors {
                errors.push(e);
            }
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Records(errors));
    }
    if stats.items == 0 {
        return Err(ImportError::Empty { format });
    }
    Ok(stats)
}

/// Imports every record into memory. For small batches, previews and tests; the rater streams
/// through [`import`] or [`import_and_rate`] instead.
pub fn import_all<R: Read>(
    format: Format,
    reader: R,
    catalog: &Catalog,
    options: &ImportOptions,
) -> Result<Vec<UsageRecord>, ImportError> {
    let mut records = Vec::new();
    import(format, reader, catalog, options, |_, r| {
        records.push(r);
        Ok(())
    })?;
    Ok(records)
}

/// The usage of an imported batch, rated for one period.
#[derive(Debug, Clone, PartialEq)]
pub struct RatedImport {
    pub usage: Usage,
    pub stats: ImportStats,
}

/// Imports and rates a batch for `period`, all or nothing: any bad record, in the export or
/// against the catalog and period, refuses the whole batch with every error listed. Memory
/// holds the aggregates, not the records. A Ceilometer window without an end is cut at the
/// period's end.
pub fn import_and_rate<R: Read>(
    format: Format,
    reader: R,
    catalog: &Catalog,
    options: &ImportOptions,
    period: BillingPeriod,
) -> Result<RatedImport, ImportError> {
    let mut options_for_period;
    let options = if format == Format::Ceilometer && options.ceilometer.window_end.is_none() {
        options_for_period = options.clone();
        options_for_period.ceilometer.window_end = Some(period.end());
        &options_for_period
    } else {
        options
    };
    let mut aggregator = Aggregator::new(catalog, period);
    let stats = import_each(format, reader, catalog, options, |i, r| {
        aggregator.add(i, r)
    })?;
    Ok(RatedImport {
        usage: aggregator.to_usage(),
        stats,
    })
}

/// The document as UTF-8 text; JSON must be UTF-8, and a bad byte is reported where it is.
fn document_text(bytes: &[u8], format: Format) -> Result<&str, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        ImportError::Syntax {
            format,
            line,
            column,
            message: "invalid UTF-8".into(),
        }
    })
}

/// A serde_json error on a whole document, as an import error.
pub(crate) fn json_document_error(format: Format, e: &serde_json::Error) -> ImportError {
    if e.is_data() {
        ImportError::Shape {
            format,
            message: e.to_string(),
        }
    } else {
        ImportError::Syntax {
            format,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// The elements of a JSON array, kept as raw text; past [`DOCUMENT_ITEMS_MAX`] they are only
/// counted, so that the limit is enforced without holding the excess.
#[derive(Default)]
pub(crate) struct Items<'a> {
    items: Vec<&'a RawValue>,
    total: usize,
}

impl<'a> Items<'a> {
    fn check_limit(self, format: Format) -> Result<Vec<&'a RawValue>, ImportError> {
        if self.total > DOCUMENT_ITEMS_MAX {
            return Err(ImportError::TooLarge {
                format,
                what: "records per document",
                max: DOCUMENT_ITEMS_MAX as u64,
            });
        }
        Ok(self.items)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ItemsVisitor<'a> {
            type Value = Items<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'a>, A::Error> {
                let mut out = Items::default();
                loop {
                    if out.items.len() < DOCUMENT_ITEMS_MAX {
                        match seq.next_element::<&'de RawValue>()? {
                            Some(v) => out.items.push(v),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    out.total += 1;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(ItemsVisitor(PhantomData))
    }
}

/// A top-level JSON array of records or samples.
pub(crate) fn parse_items(text: &str, format: Format) -> Result<Vec<&RawValue>, ImportError> {
    let items: Items<'_> =
        serde_json::from_str(text).map_err(|e| json_document_error(format, &e))?;
    items.check_limit(format)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.name())
            );
        }
        assert!("xml".parse::<Format>().is_err());
    }
}
