//! The rater's one seam between export bytes and canonical usage records ([`read_records`]), over `pricing::import`.
//!
//! The importers themselves (canonical CSV and JSON Lines, CloudStack `listUsageRecords`,
//! OpenStack Ceilometer, detection) live in the pure pricing crate so that the storefront runs
//! the same code; the rater only chooses options and maps their errors.

use std::io::Read;

use pricing::{BillingPeriod, Catalog, RecordError, UsageRecord};

pub use pricing::import::{
    Format, ImportError, ImportOptions, ImportStats, Readings, DETECT_PREFIX_BYTES,
};

use crate::error::RaterError;

/// Parses a user's `--format` / `?format=`: `None`, empty or `auto` mean "detect".
pub fn parse_format_arg(s: Option<&str>) -> Result<Option<Format>, RaterError> {
    match s.map(str::trim) {
        None => Ok(None),
        Some(s) if s.is_empty() || s.eq_ignore_ascii_case("auto") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e: pricing::import::UnknownFormat| RaterError::BadRequest {
                field: "format",
                message: format!("{e}, or auto"),
            }),
    }
}

/// The format of an export from its first bytes.
pub fn detect(head: &[u8]) -> Result<Format, RaterError> {
    pricing::import::detect(head).ok_or_else(|| RaterError::BadRequest {
        field: "format",
        message: "cannot tell the export's format from its first bytes; give it (csv, jsonl, cloudstack or ceilometer)".into(),
    })
}

/// Reads every record of an export, handing each to `sink` with its record number (the
/// 1-based line for CSV and JSON Lines, the 0-based array position for CloudStack and
/// Ceilometer documents). Every record is read even after errors; the importer's errors and the
/// sink's are returned together as `ImportError::Records`, and the caller rejects the batch.
///
/// The catalog's `mappings` configure the importers; `period`, when known, is Ceilometer's
/// window (gauge time cut to it, counted samples read outside it used as baselines only);
/// `carried` are the readings earlier batches left ([`carried_readings`]). Answers the
/// export's own last readings with the statistics.
pub fn read_records<R: Read>(
    format: Format,
    input: R,
    catalog: &Catalog,
    period: Option<BillingPeriod>,
    carried: Option<&std::sync::Arc<Readings>>,
    sink: impl FnMut(usize, &UsageRecord) -> Result<(), RecordError>,
) -> Result<(ImportStats, Readings), ImportError> {
    // Checked when the configuration loaded (`RaterConfig::new`); a catalog built otherwise
    // with bad mappings refuses the batch, naming them.
    let mut options =
        ImportOptions::for_batch(catalog, period).map_err(|e| ImportError::Shape {
            format,
            message: format!("the catalog's mappings: {e}"),
        })?;
    options.ceilometer.carried = carried.cloned();
    // The borrowed-record path: streaming formats reuse one record buffer, no allocation per row.
    pricing::import::import_reading(format, input, catalog, &options, sink)
}

/// The readings carried from earlier batches that an export of `format` (`None`: not known
/// yet) may need: Ceilometer's cumulative counters. `None` for the other formats, which
/// carry nothing (no store read).
pub async fn carried_readings<S: crate::store::Store>(
    store: &S,
    format: Option<Format>,
) -> Result<Option<std::sync::Arc<Readings>>, RaterError> {
    match format {
        Some(Format::Ceilometer) | None => {
            let r = store.readings().await?;
            Ok((!r.is_empty()).then(|| std::sync::Arc::new(r)))
        }
        Some(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_args() {
        assert_eq!(parse_format_arg(Some("auto")).unwrap(), None);
        assert_eq!(parse_format_arg(None).unwrap(), None);
        assert_eq!(
            parse_format_arg(Some("JSONL")).unwrap(),
            Some(Format::JsonLines)
        );
        assert_eq!(
            parse_format_arg(Some("cloudstack")).unwrap(),
            Some(Format::CloudStack)
        );
        assert!(matches!(
            parse_format_arg(Some("xml")),
            Err(RaterError::BadRequest {
                field: "format",
                ..
            })
        ));
    }
}
