//! The export formats, the limits every importer keeps, and what an import reports: its statistics and its errors.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::{BatchErrors, RecordError};
use crate::usage::UsageRecord;

/// Longest line of a CSV or JSON Lines input. A canonical record is about 200 bytes; 64 KiB
/// leaves room for long tag lists while bounding what one line can make the reader hold.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Most samples in one Ceilometer document (CloudStack: [`CLOUDSTACK_RECORDS_MAX`]): a daily export of
/// 10,000 VMs, each with a few volumes, IPs and network offerings, at one record per resource
/// per usage type per day. Ceilometer documents are read one sample at a time (their size in
/// bytes is not limited), but every sample is kept until the end, since a cumulative counter is
/// billed by differences within its whole series: past the limit samples are only counted and
/// the document is refused at its end.
pub const DOCUMENT_ITEMS_MAX: usize = 200_000;

/// Most usage records in one CloudStack document. CloudStack documents are read one record at
/// a time (their size in bytes is not limited); what the importer holds grows with the record
/// ids (a record id seen twice is a page fetched twice), about 80 bytes each, and with the
/// ALLOCATED_VM records held until the end: 2 million records, two nights of a 10,000-VM
/// cloud, keep it to a few hundred megabytes at most.
pub const CLOUDSTACK_RECORDS_MAX: usize = 2_000_000;

/// Longest value quoted in an error message, in characters.
pub const ERROR_VALUE_CHARS_MAX: usize = 200;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// Canonical CSV (`CSV_HEADER`).
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
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub records: Vec<(usize, UsageRecord)>,
    pub errors: Vec<RecordError>,
    pub items: u64,
    pub skipped: u64,
    /// The last reading of each cumulative series read in the window (Ceilometer).
    pub readings: crate::mapping::Readings,
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
