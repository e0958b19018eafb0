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
//! most [`LINE_BYTES_MAX`]. CloudStack answers are single JSON documents read one usage record
//! at a time: any size, at most [`CLOUDSTACK_RECORDS_MAX`] records (memory grows with the record
//! ids and the VMs, not with the bytes). Ceilometer answers are read one sample at a time too:
//! any size, at most [`DOCUMENT_ITEMS_MAX`] samples, each kept (validated, a few hundred bytes)
//! until the end, because a cumulative counter is billed by differences within its series.
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
//!
//! **Resource prices** (seed 001 prices CPU, RAM and OS images apart): a usage type may have
//! several rules, each making its own record from the same CloudStack record, such as
//! RUNNING_VM as `cpu_hours` (rawusage x `cpunumber`) of a vCPU product, `memory_gb_hours`
//! (rawusage x `memory` MB / 1024) of a RAM product and `hours` of the product its `templateid`
//! names (`"product": "template"`). The first rule's record has the record's id, the n-th
//! next one `<id>#<n>`. Each record carries the record's tags, and its product's category
//! decides which billing tag switches it off: with CPU in category `cpu` and RAM in `memory`,
//! `Billing:noCPU` no longer switches the RAM off. Stopped time pairs with the raw hours of the
//! RUNNING_VM record, whatever its rules bill.
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
//! How each counter type becomes a quantity, per (counter, resource, unit) series ordered by
//! timestamp:
//! - **gauge**: a sample stands for the time until the next sample of the series when that
//!   follows within [`CeilometerOptions::gauge_gap_max_s`] plus
//!   [`CeilometerOptions::gauge_jitter_s`] (default 2 h + 6 min: one lost poll, even a late
//!   one, never loses an hour), else for [`CeilometerOptions::gauge_sample_interval_s`] (default
//!   1 h; the last sample too). That time is cut to the batch's window (below) and split at
//!   every UTC midnight: one record per day it touches, so that each lies in one period of every
//!   kind but hours. Quantity = volume x the record's time. Hourly samples of one instance from
//!   00:00 to 23:00 make 24 h. The record on the sample's own day has the sample's id; a later
//!   day's is `<id>@<its start>`, the same whichever export it comes from.
//! - **cumulative**: quantity = this value minus the previous sample's; a smaller value is a
//!   counter reset and counts from zero (the new value). The first sample is the baseline
//!   ([`CumulativeStart`]). A counted quantity belongs to the time it was **read**: record =
//!   `[previous timestamp, timestamp]` cut to the reading's UTC day (a reading at midnight is a
//!   point on the new day).
//! - **delta**: quantity = the volume; record = `[timestamp, timestamp]`.
//!
//! **Windows and overlapping exports.** A batch rated into a period has that period as its
//! window ([`ImportOptions::for_batch`]). Each export should start with the previous window's
//! last sample of every series (an overlap of one sample). Then every quantity is billed once,
//! in the window it belongs to: a gauge's time before the window's start is the previous
//! window's (the export before billed it, up to its window's end), and a counted sample read
//! outside the window is only the baseline of the next one. Cutting a month of samples into any
//! sequence of such exports bills what one export of the month bills (a property test), as long
//! as each series is polled at least once per interval around the cuts: a poll lost right at a
//! cut loses the rest of that interval, for the export before cannot know the resource lived on.
//! Without a window (a batch rated into the periods its records fall in), nothing is cut.
//!
//! **One quantity, one series.** A pipeline that publishes a counter in two units (raw
//! `network.incoming.bytes` and a transformer's `network.incoming.bytes.gb`) measures one
//! traffic twice: for each counter and resource, the series in the finest unit (bytes) wins and
//! the others are skipped, never billed a second time.
//!
//! Zero quantities make no record. A repeated `message_id` is dropped (Ceilometer delivers at
//! least once). **account** = `project_id`, or its entry in
//! [`CeilometerOptions::account_by_project`]; **project** = `project_id`; **resource** =
//! `resource_id`; **record id** = `message_id`. Unknown counters are errors on `counter_name`
//! unless [`CeilometerOptions::skip_unknown_counters`].
//!
//! # Mappings in the catalog
//! Every setting above but the window comes from the catalog's `mappings` (the same for the
//! rater, the CLI and the storefront's invoice preview): `mappings.cloudstack` is a
//! [`CloudStackMapping`] (`account`, `rules`), `mappings.ceilometer` a [`CeilometerOptions`]
//! (`gauge_sample_interval_s`, `gauge_gap_max_s`, `gauge_jitter_s`, `cumulative_start`,
//! `skip_unknown_counters`, `account_by_project`, `region`, and `counters`: rules for counters
//! of one's own or that win over the built-in ones, each with a metadata filter, type, product,
//! meter, unit and scale, tried in order before the table above). Each field may be left out for its
//! default; unknown fields and bad values are refused when the catalog loads, naming their path.

//! # Errors
//! A batch without a single usage item is [`ImportError::Empty`]. Problems with the input as a
//! whole (not JSON, not the expected shape, over a limit, unreadable) end the import at once;
//! problems with one record are collected and returned together as [`ImportError::Records`].

mod canonical;
mod ceilometer;
mod cloudstack;
mod detect;
mod document;
mod format;
mod text;

use std::io::Read;

use crate::catalog::Catalog;
use crate::error::{BatchErrors, CatalogErrors, RecordError};
use crate::period::BillingPeriod;
use crate::usage::{Aggregator, Usage, UsageRecord};

pub use crate::mapping::{
    merge_readings, usage_type, AccountField, CeilometerOptions, CloudStackMapping,
    CumulativeStart, ImportOptions, MeterSelector, ProductSource, QuantityKind, Reading, Readings,
    UsageTypeRule, GAUGE_GAP_MAX_S_DEFAULT, GAUGE_JITTER_S_DEFAULT,
    GAUGE_SAMPLE_INTERVAL_S_DEFAULT, GAUGE_SAMPLE_INTERVAL_S_MAX, READINGS_KEPT,
};
pub use canonical::{
    to_csv_row, unit_name, write_csv_row, write_json_line, CsvWriteError, CSV_COLUMNS, CSV_HEADER,
    TAG_SEPARATOR,
};
pub use detect::{detect, DETECT_PREFIX_BYTES};
pub use format::{
    Format, ImportError, ImportStats, UnknownFormat, CLOUDSTACK_RECORDS_MAX, DOCUMENT_ITEMS_MAX,
    ERROR_VALUE_CHARS_MAX, LINE_BYTES_MAX,
};

#[cfg(doc)]
use crate::unit::Unit;

impl ImportOptions {
    /// The catalog's `mappings`, parsed and checked: every problem at its JSON path
    /// (`$.mappings.ceilometer.gauge_jitter_s`). The defaults when the catalog has none. The
    /// rater checks them when it loads its catalog; the storefront only in its preview worker.
    ///
    /// # Errors
    /// [`CatalogErrors`] listing each problem.
    pub fn of_catalog(catalog: &Catalog) -> Result<ImportOptions, CatalogErrors> {
        let options: ImportOptions = match &catalog.mappings {
            None => ImportOptions::default(),
            Some(value) => serde_path_to_error::deserialize(value).map_err(|e| {
                let mut errors = CatalogErrors::parse(e);
                for err in &mut errors.0 {
                    err.path = err.path.replacen('$', "$.mappings", 1);
                }
                errors
            })?,
        };
        let errors = crate::validate::mapping_errors(catalog, &options);
        if errors.is_empty() {
            Ok(options)
        } else {
            Err(CatalogErrors(errors))
        }
    }

    /// These options for a batch rated into `period`: Ceilometer's window is the period.
    pub fn in_window(mut self, period: Option<BillingPeriod>) -> ImportOptions {
        if let Some(p) = period {
            self.ceilometer.window_start = Some(p.start);
            self.ceilometer.window_end = Some(p.end());
        }
        self
    }

    /// [`ImportOptions::of_catalog`] for a batch rated into `period`.
    ///
    /// # Errors
    /// Those of [`ImportOptions::of_catalog`].
    pub fn for_batch(
        catalog: &Catalog,
        period: Option<BillingPeriod>,
    ) -> Result<ImportOptions, CatalogErrors> {
        Ok(ImportOptions::of_catalog(catalog)?.in_window(period))
    }
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
    sink: F,
) -> Result<ImportStats, ImportError>
where
    R: Read,
    F: FnMut(usize, &UsageRecord) -> Result<(), RecordError>,
{
    import_reading(format, reader, catalog, options, sink).map(|(stats, _)| stats)
}

/// [`import_each`], also answering the last reading of each cumulative counter series the
/// export read in its window (Ceilometer; empty for other formats): what the rater carries to
/// the next batch (`CeilometerOptions::carried`).
pub fn import_reading<R, F>(
    format: Format,
    reader: R,
    catalog: &Catalog,
    options: &ImportOptions,
    mut sink: F,
) -> Result<(ImportStats, Readings), ImportError>
where
    R: Read,
    F: FnMut(usize, &UsageRecord) -> Result<(), RecordError>,
{
    let mut readings = Readings::new();
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
        Format::CloudStack => {
            // Bad records go straight to the batch's errors (which keep the first ones shown and
            // count the rest), nearly in record order: the stopped hours, which need the whole
            // document, come last.
            let shared = std::cell::RefCell::new(&mut errors);
            let mut records = 0u64;
            let (items, skipped) = cloudstack::stream(
                reader,
                catalog,
                &options.cloudstack,
                CLOUDSTACK_RECORDS_MAX,
                &mut |i, r| {
                    records += 1;
                    if let Err(e) = sink(i, &r) {
                        shared.borrow_mut().push(e);
                    }
                },
                &mut |e| shared.borrow_mut().push(e),
            )?;
            stats.items = items;
            stats.skipped = skipped;
            stats.records = records;
        }
        Format::Ceilometer => {
            let mut converted =
                ceilometer::stream(reader, catalog, &options.ceilometer, DOCUMENT_ITEMS_MAX)?;
            stats.items = converted.items;
            stats.skipped = converted.skipped;
            readings = std::mem::take(&mut converted.readings);
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
    Ok((stats, readings))
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
    let c = &options.ceilometer;
    let options =
        if format == Format::Ceilometer && (c.window_start.is_none() || c.window_end.is_none()) {
            options_for_period = options.clone();
            let c = &mut options_for_period.ceilometer;
            c.window_start = c.window_start.or(Some(period.start));
            c.window_end = c.window_end.or(Some(period.end()));
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
