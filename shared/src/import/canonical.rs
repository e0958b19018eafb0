//! Canonical usage formats: CSV with a documented header and JSON Lines, read as line streams and written row by row.
//!
//! Both hold [`UsageRecord`]s one per line, so a file of any size streams through a bounded
//! buffer and every error names its line. CSV follows RFC 4180 quoting (a field with `,` or `"`
//! is quoted, quotes doubled) except that a field may not contain a line break: one record per
//! line is what makes line numbers and streaming exact.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Read;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::IntoDeserializer;
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

use super::format::{Format, ImportError, ImportStats, LINE_BYTES_MAX};
use super::text::{
    bytes_equal, check_quantity, parse_decimal, raw_number_text, record_error, shown, Days, Lines,
};
use crate::error::{BatchErrors, RecordError, RecordRule, TimeFormat};
use crate::unit::Unit;
use crate::usage::UsageRecord;

/// The canonical CSV columns, in the order [`write_csv_row`] writes them. Readers accept them in
/// any order; `record_id`, `project`, `tags` and `region` may be left out.
pub const CSV_COLUMNS: [&str; 12] = [
    "record_id",
    "account",
    "project",
    "resource",
    "product",
    "meter",
    "quantity",
    "unit",
    "start",
    "end",
    "tags",
    "region",
];

/// The canonical CSV header line (without its line break).
pub const CSV_HEADER: &str =
    "record_id,account,project,resource,product,meter,quantity,unit,start,end,tags,region";

/// Separates the tags of one record inside the `tags` column (`Billing:noCPU;env:prod`).
pub const TAG_SEPARATOR: char = ';';

/// Columns a canonical CSV file must have.
const CSV_REQUIRED: [Col; 8] = [
    Col::Account,
    Col::Resource,
    Col::Product,
    Col::Meter,
    Col::Quantity,
    Col::Unit,
    Col::Start,
    Col::End,
];

/// The canonical columns, by position in [`CSV_COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    RecordId = 0,
    Account,
    Project,
    Resource,
    Product,
    Meter,
    Quantity,
    Unit,
    Start,
    End,
    Tags,
    Region,
}

impl Col {
    fn name(self) -> &'static str {
        CSV_COLUMNS[self as usize]
    }
}

/// Why a record cannot be written as one canonical CSV row that reads back the same.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CsvWriteError {
    #[error(
        "tag `{tag}` is empty or contains `;` or a line break: it would not read back as one tag"
    )]
    UnrepresentableTag { tag: String },
    #[error("field `{field}` contains a line break: canonical CSV holds one record per line")]
    LineBreak { field: &'static str },
}

/// The serde name of a unit, as the canonical formats write it.
pub fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Seconds => "seconds",
        Unit::Minutes => "minutes",
        Unit::Hours => "hours",
        Unit::Bytes => "bytes",
        Unit::Kilobytes => "kilobytes",
        Unit::Megabytes => "megabytes",
        Unit::Gigabytes => "gigabytes",
        Unit::ByteHours => "byte_hours",
        Unit::GigabyteHours => "gigabyte_hours",
        Unit::GigabyteMonths => "gigabyte_months",
        Unit::Requests => "requests",
        Unit::Units => "units",
    }
}

/// Reads a unit by its serde name or alias (`hours`, `h`, `GB`, `GB.h`...), so that CSV and JSON
/// accept exactly the same spellings.
pub(super) fn parse_unit(text: &str) -> Option<Unit> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        text.into_deserializer();
    Unit::deserialize(de).ok()
}

/// Appends `record` to `out` as one canonical CSV row, line break included.
///
/// Errors when the record could not be read back unchanged: a tag that is empty or holds the
/// tag separator, or any field with a line break. Empty optional fields read back as absent.
pub fn write_csv_row(record: &UsageRecord, out: &mut String) -> Result<(), CsvWriteError> {
    for tag in &record.tags {
        if tag.is_empty() || tag.contains([TAG_SEPARATOR, '\n', '\r']) {
            return Err(CsvWriteError::UnrepresentableTag { tag: tag.clone() });
        }
    }
    let opt = |o: &Option<String>| -> String { o.clone().unwrap_or_default() };
    let tags = record.tags.join(";");
    let fields: [(&'static str, Cow<'_, str>); 12] = [
        ("record_id", Cow::Owned(opt(&record.record_id))),
        ("account", Cow::Borrowed(&record.account)),
        ("project", Cow::Owned(opt(&record.project))),
        ("resource", Cow::Borrowed(&record.resource)),
        ("product", Cow::Borrowed(&record.product)),
        ("meter", Cow::Borrowed(&record.meter)),
        ("quantity", Cow::Owned(record.quantity.to_string())),
        ("unit", Cow::Borrowed(unit_name(record.unit))),
        ("start", Cow::Owned(time_text(record.start))),
        ("end", Cow::Owned(time_text(record.end))),
        ("tags", Cow::Owned(tags)),
        ("region", Cow::Owned(opt(&record.region))),
    ];
    for (i, (name, value)) in fields.iter().enumerate() {
        if value.contains(['\n', '\r']) {
            return Err(CsvWriteError::LineBreak { field: name });
        }
        if i > 0 {
            out.push(',');
        }
        if value.contains([',', '"']) {
            out.push('"');
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(value);
        }
    }
    out.push('\n');
    Ok(())
}

/// One canonical CSV row for `record`, line break included. See [`write_csv_row`].
pub fn to_csv_row(record: &UsageRecord) -> Result<String, CsvWriteError> {
    let mut out = String::with_capacity(160);
    write_csv_row(record, &mut out)?;
    Ok(out)
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A CSV line split into fields: unquoted fields point into the line, quoted ones into
/// `scratch`, unescaped. Reused from line to line so that the hot loop does not allocate.
#[derive(Default)]
struct Fields {
    spans: Vec<(usize, usize, bool)>,
    scratch: String,
}

impl Fields {
    /// Splits in one pass over the bytes. Slicing the `&str` at `,` and `"` (ASCII) always
    /// lands on character boundaries, so the line is checked for UTF-8 once, not per field.
    ///
    /// A line without quotes, nearly every line, is split eight bytes at a time: the commas of
    /// a word come out as the bits of one mask. The first quote hands the line to
    /// [`Fields::split_quoted`].
    fn split(&mut self, line: &str) -> Result<(), RecordRule> {
        self.spans.clear();
        let b = line.as_bytes();
        let mut start = 0;
        let mut base = 0;
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            let word = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            if bytes_equal(word, b'"') != 0 {
                return self.split_quoted(line);
            }
            let mut commas = bytes_equal(word, b',');
            while commas != 0 {
                let at = base + (commas.trailing_zeros() / 8) as usize;
                self.spans.push((start, at, false));
                start = at + 1;
                commas &= commas - 1;
            }
            base += 8;
        }
        for (i, &c) in words.remainder().iter().enumerate() {
            match c {
                b'"' => return self.split_quoted(line),
                b',' => {
                    self.spans.push((start, base + i, false));
                    start = base + i + 1;
                }
                _ => {}
            }
        }
        self.spans.push((start, b.len(), false));
        Ok(())
    }

    /// [`Fields::split`] for a line with quotes: byte by byte, unescaping into `scratch`.
    fn split_quoted(&mut self, line: &str) -> Result<(), RecordRule> {
        self.spans.clear();
        self.scratch.clear();
        let b = line.as_bytes();
        let n = b.len();
        let mut i = 0;
        loop {
            if i < n && b[i] == b'"' {
                let start = self.scratch.len();
                i += 1;
                loop {
                    let Some(p) = b[i..].iter().position(|&c| c == b'"') else {
                        return Err(RecordRule::UnterminatedQuote);
                    };
                    self.scratch.push_str(&line[i..i + p]);
                    i += p + 1;
                    if i < n && b[i] == b'"' {
                        self.scratch.push('"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                self.spans.push((start, self.scratch.len(), true));
                if i == n {
                    return Ok(());
                }
                if b[i] != b',' {
                    return Err(RecordRule::TextAfterQuote);
                }
                i += 1;
            } else {
                let mut end = i;
                while end < n {
                    match b[end] {
                        b',' => break,
                        b'"' => return Err(RecordRule::QuoteInUnquotedField),
                        _ => end += 1,
                    }
                }
                self.spans.push((i, end, false));
                if end == n {
                    return Ok(());
                }
                i = end + 1;
            }
        }
    }

    fn get<'a>(&'a self, line: &'a str, k: usize) -> &'a str {
        match self.spans.get(k) {
            Some(&(s, e, true)) => &self.scratch[s..e],
            Some(&(s, e, false)) => &line[s..e],
            None => "",
        }
    }
}

/// Reads canonical CSV, streaming: one line in memory at a time.
pub(super) fn import_csv<R: Read, F>(
    reader: R,
    sink: &mut F,
    errors: &mut BatchErrors,
    stats: &mut ImportStats,
) -> Result<(), ImportError>
where
    F: FnMut(usize, &UsageRecord) -> Result<(), RecordError>,
{
    let mut lines = Lines::new(reader, LINE_BYTES_MAX, Format::Csv);
    // One record buffer for the whole file: its strings keep their capacity from row to row,
    // so a steady stream of rows allocates nothing (this is most of the import's speed).
    let mut record = UsageRecord {
        record_id: None,
        account: String::new(),
        project: None,
        resource: String::new(),
        product: String::new(),
        meter: String::new(),
        quantity: rust_decimal::Decimal::ZERO,
        unit: Unit::Units,
        start: DateTime::<Utc>::UNIX_EPOCH,
        end: DateTime::<Utc>::UNIX_EPOCH,
        tags: Vec::new(),
        region: None,
    };
    let mut fields = Fields::default();
    let mut days = Days::default();
    // Column k of the file holds canonical column `columns[k]`.
    let columns: Vec<Col> = loop {
        let Some((_, line)) = lines.next_line()? else {
            return Err(ImportError::Empty {
                format: Format::Csv,
            });
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        break csv_header(line, &mut fields)?;
    };
    while let Some((line_no, line)) = lines.next_line()? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.items += 1;
        match csv_record(line_no, line, &columns, &mut fields, &mut days, &mut record) {
            Ok(()) => {
                stats.records += 1;
                if let Err(e) = sink(line_no, &record) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Ok(())
}

fn csv_header(line: &[u8], fields: &mut Fields) -> Result<Vec<Col>, ImportError> {
    let shape = |message: String| ImportError::Shape {
        format: Format::Csv,
        message: format!("{message} (expected the header `{CSV_HEADER}`)"),
    };
    let line = String::from_utf8_lossy(line);
    fields
        .split(&line)
        .map_err(|e| shape(format!("the header is not a CSV line: {e}")))?;
    let mut columns = Vec::with_capacity(fields.spans.len());
    for k in 0..fields.spans.len() {
        let name = fields.get(&line, k).trim();
        let Some(pos) = CSV_COLUMNS.iter().position(|c| *c == name) else {
            return Err(shape(format!(
                "unknown column `{}` at position {}",
                shown(name),
                k + 1
            )));
        };
        let col = COLS[pos];
        if columns.contains(&col) {
            return Err(shape(format!("column `{name}` appears twice")));
        }
        columns.push(col);
    }
    for required in CSV_REQUIRED {
        if !columns.contains(&required) {
            return Err(shape(format!("missing column `{}`", required.name())));
        }
    }
    Ok(columns)
}

const COLS: [Col; 12] = [
    Col::RecordId,
    Col::Account,
    Col::Project,
    Col::Resource,
    Col::Product,
    Col::Meter,
    Col::Quantity,
    Col::Unit,
    Col::Start,
    Col::End,
    Col::Tags,
    Col::Region,
];

/// Parses one CSV row into `out`, reusing its strings' capacity. On error `out` holds a mix of
/// old and new fields and must not be used.
fn csv_record(
    line_no: usize,
    bytes: &[u8],
    columns: &[Col],
    fields: &mut Fields,
    days: &mut Days,
    out: &mut UsageRecord,
) -> Result<(), RecordError> {
    let line = match std::str::from_utf8(bytes) {
        Ok(line) => line,
        Err(_) => return Err(not_utf8(line_no, bytes, columns, fields)),
    };
    let whole = |rule: RecordRule| record_error(line_no, None, "$", line, rule);
    if let Err(rule) = fields.split(line) {
        return Err(whole(rule));
    }
    if fields.spans.len() != columns.len() {
        return Err(whole(RecordRule::FieldCount {
            fields: fields.spans.len(),
            header: columns.len(),
        }));
    }
    // This row's text of each canonical column; a column the file lacks reads as empty.
    let mut texts = [""; 12];
    for (k, c) in columns.iter().enumerate() {
        texts[*c as usize] = fields.get(line, k);
    }
    let text = |c: Col| -> &str { texts[c as usize] };
    let record_id = Some(text(Col::RecordId)).filter(|s| !s.is_empty());
    let err = |c: Col, value: &str, rule: RecordRule| {
        record_error(line_no, record_id, c.name(), value, rule)
    };
    let required = |c: Col| -> Result<&str, RecordError> {
        let t = text(c);
        if t.is_empty() {
            return Err(err(c, t, RecordRule::Empty));
        }
        Ok(t)
    };
    let account = required(Col::Account)?;
    let resource = required(Col::Resource)?;
    let product = required(Col::Product)?;
    let meter = required(Col::Meter)?;
    let quantity_text = required(Col::Quantity)?;
    let quantity = parse_decimal(quantity_text)
        .map_err(|e| err(Col::Quantity, quantity_text, e.rule()))
        .and_then(|q| check_quantity(q).map_err(|r| err(Col::Quantity, quantity_text, r)))?;
    let unit_text = required(Col::Unit)?;
    let unit =
        parse_unit(unit_text).ok_or_else(|| err(Col::Unit, unit_text, RecordRule::UnknownUnit))?;
    let start = rfc3339(days, required(Col::Start)?).map_err(|(v, r)| err(Col::Start, &v, r))?;
    let end = rfc3339(days, required(Col::End)?).map_err(|(v, r)| err(Col::End, &v, r))?;
    if end < start {
        return Err(err(Col::End, &time_text(end), RecordRule::EndBeforeStart));
    }
    set_optional(&mut out.record_id, record_id.unwrap_or_default());
    set(&mut out.account, account);
    set_optional(&mut out.project, text(Col::Project));
    set(&mut out.resource, resource);
    set(&mut out.product, product);
    set(&mut out.meter, meter);
    out.quantity = quantity;
    out.unit = unit;
    out.start = start;
    out.end = end;
    out.tags.clear();
    out.tags.extend(
        text(Col::Tags)
            .split(TAG_SEPARATOR)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    );
    set_optional(&mut out.region, text(Col::Region));
    Ok(())
}

/// Overwrites `slot` with `text`, keeping its allocation.
fn set(slot: &mut String, text: &str) {
    slot.clear();
    slot.push_str(text);
}

/// An optional field: empty text is `None`; the old string's allocation is reused when it can be.
fn set_optional(slot: &mut Option<String>, text: &str) {
    if text.is_empty() {
        *slot = None;
    } else if let Some(s) = slot {
        set(s, text);
    } else {
        *slot = Some(text.to_string());
    }
}

/// The error for a row that is not UTF-8, on the field that holds the bad bytes.
fn not_utf8(line_no: usize, bytes: &[u8], columns: &[Col], fields: &mut Fields) -> RecordError {
    let lossy = String::from_utf8_lossy(bytes);
    let mut field = "$";
    let mut value = lossy.as_ref();
    if fields.split(&lossy).is_ok() {
        if let Some(k) =
            (0..fields.spans.len()).find(|&k| fields.get(&lossy, k).contains('\u{FFFD}'))
        {
            if let Some(c) = columns.get(k) {
                field = c.name();
                value = fields.get(&lossy, k);
            }
        }
    }
    record_error(line_no, None, field, value, RecordRule::NotUtf8)
}

fn rfc3339(days: &mut Days, text: &str) -> Result<DateTime<Utc>, (String, RecordRule)> {
    days.parse_rfc3339(text).ok_or_else(|| {
        (
            text.to_string(),
            RecordRule::NotATime {
                format: TimeFormat::Rfc3339,
            },
        )
    })
}

/// One JSON Lines record as written: the fields of [`UsageRecord`], with the quantity kept as
/// its JSON text so that `3600.5` is read exactly, not through a float.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRecord<'a> {
    record_id: Option<String>,
    account: Option<String>,
    project: Option<String>,
    resource: Option<String>,
    product: Option<String>,
    meter: Option<String>,
    #[serde(borrow)]
    quantity: Option<&'a RawValue>,
    unit: Option<String>,
    start: Option<String>,
    end: Option<String>,
    tags: Option<Vec<String>>,
    region: Option<String>,
}

/// Field names of a JSON Lines record, for errors that must name a `&'static str` field.
const JSON_FIELDS: [&str; 12] = CSV_COLUMNS;

/// The static name of the field a serde error is about, or `$` for the whole record.
pub(super) fn static_field(path: &str, message: &str, known: &[&'static str]) -> &'static str {
    let head = path.split(['.', '[']).next().unwrap_or("");
    if let Some(f) = known.iter().find(|f| **f == head) {
        return f;
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.split('`').next() {
            if let Some(f) = known.iter().find(|f| **f == name) {
                return f;
            }
        }
    }
    "$"
}

/// Reads JSON Lines (one [`UsageRecord`] object per line), streaming.
pub(super) fn import_jsonl<R: Read, F>(
    reader: R,
    sink: &mut F,
    errors: &mut BatchErrors,
    stats: &mut ImportStats,
) -> Result<(), ImportError>
where
    F: FnMut(usize, &UsageRecord) -> Result<(), RecordError>,
{
    let mut lines = Lines::new(reader, LINE_BYTES_MAX, Format::JsonLines);
    let mut days = Days::default();
    while let Some((line_no, line)) = lines.next_line()? {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.items += 1;
        match json_record(line_no, line, &mut days) {
            Ok(record) => {
                stats.records += 1;
                if let Err(e) = sink(line_no, &record) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if stats.items == 0 {
        return Err(ImportError::Empty {
            format: Format::JsonLines,
        });
    }
    Ok(())
}

fn json_record(line_no: usize, line: &[u8], days: &mut Days) -> Result<UsageRecord, RecordError> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let parsed: Result<JsonRecord<'_>, _> = serde_path_to_error::deserialize(&mut de);
    let r = match parsed.map_err(|e| (e.path().to_string(), e.into_inner())) {
        Ok(r) => match de.end() {
            Ok(()) => r,
            Err(e) => return Err(json_syntax(line_no, line, "$", &e.to_string())),
        },
        Err((path, e)) => {
            let message = e.to_string();
            let field = static_field(&path, &message, &JSON_FIELDS);
            return Err(json_syntax(line_no, line, field, &message));
        }
    };
    let record_id = r.record_id.filter(|s| !s.is_empty());
    let err = |field: &'static str, value: &str, rule: RecordRule| {
        record_error(line_no, record_id.as_deref(), field, value, rule)
    };
    let required = |field: &'static str, v: Option<String>| -> Result<String, RecordError> {
        match v {
            None => Err(err(field, "", RecordRule::MissingField { why: None })),
            Some(s) if s.is_empty() => Err(err(field, "", RecordRule::Empty)),
            Some(s) => Ok(s),
        }
    };
    let account = required("account", r.account)?;
    let resource = required("resource", r.resource)?;
    let product = required("product", r.product)?;
    let meter = required("meter", r.meter)?;
    let Some(raw_quantity) = r.quantity else {
        return Err(err("quantity", "", RecordRule::MissingField { why: None }));
    };
    let quantity_text =
        raw_number_text(raw_quantity).map_err(|rule| err("quantity", raw_quantity.get(), rule))?;
    let quantity = parse_decimal(&quantity_text)
        .map_err(|e| err("quantity", &quantity_text, e.rule()))
        .and_then(|q| check_quantity(q).map_err(|rule| err("quantity", &quantity_text, rule)))?;
    let unit_text = required("unit", r.unit)?;
    let unit =
        parse_unit(&unit_text).ok_or_else(|| err("unit", &unit_text, RecordRule::UnknownUnit))?;
    let start_text = required("start", r.start)?;
    let start = rfc3339(days, &start_text).map_err(|(v, rule)| err("start", &v, rule))?;
    let end_text = required("end", r.end)?;
    let end = rfc3339(days, &end_text).map_err(|(v, rule)| err("end", &v, rule))?;
    if end < start {
        return Err(err("end", &end_text, RecordRule::EndBeforeStart));
    }
    let tags = r.tags.unwrap_or_default();
    if tags.iter().any(String::is_empty) {
        return Err(err("tags", "", RecordRule::Empty));
    }
    Ok(UsageRecord {
        record_id,
        account,
        project: r.project.filter(|s| !s.is_empty()),
        resource,
        product,
        meter,
        quantity,
        unit,
        start,
        end,
        tags,
        region: r.region.filter(|s| !s.is_empty()),
    })
}

fn json_syntax(line_no: usize, line: &[u8], field: &'static str, message: &str) -> RecordError {
    record_error(
        line_no,
        None,
        field,
        &String::from_utf8_lossy(line),
        RecordRule::NotARecord {
            expected: "usage record",
            message: message.to_string(),
        },
    )
}

/// Writes `record` as one JSON Lines line (line break included), quantity as a string.
pub fn write_json_line(record: &UsageRecord, out: &mut String) {
    // A UsageRecord is plain strings, a Decimal (serialized as a string) and RFC 3339 times:
    // serializing it cannot fail.
    if let Ok(json) = serde_json::to_string(record) {
        let _ = writeln!(out, "{json}");
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::text::tests::lcg;
    use super::*;

    /// The word-at-a-time split must cut exactly where the byte-by-byte one does: every line
    /// over an alphabet of commas, quotes and other bytes (including `-`, the byte right after
    /// `,` that a borrowing zero test would flag), every length up to 19 (two words and a tail).
    #[test]
    fn fast_split_agrees_with_the_byte_by_byte_split() {
        let alphabet = [b',', b'-', b'a', b'"', b'+'];
        let (mut fast, mut slow) = (Fields::default(), Fields::default());
        let mut lines = 0;
        for len in 0..=19usize {
            // A sample of the 5^len lines: a linear congruential walk through them.
            let mut state = len as u64 * 7919 + 1;
            for _ in 0..2_000 {
                let line: String = (0..len)
                    .map(|_| alphabet[lcg(&mut state) % alphabet.len()] as char)
                    .collect();
                let got = fast.split(&line);
                let want = slow.split_quoted(&line);
                assert_eq!(got, want, "{line:?}");
                if got.is_ok() {
                    let fields = |f: &Fields| -> Vec<String> {
                        (0..f.spans.len())
                            .map(|k| f.get(&line, k).to_string())
                            .collect()
                    };
                    assert_eq!(fields(&fast), fields(&slow), "{line:?}");
                }
                lines += 1;
            }
        }
        assert_eq!(lines, 20 * 2_000);
    }

    #[test]
    fn unit_names_agree_with_serde() {
        for unit in [
            Unit::Seconds,
            Unit::Minutes,
            Unit::Hours,
            Unit::Bytes,
            Unit::Kilobytes,
            Unit::Megabytes,
            Unit::Gigabytes,
            Unit::ByteHours,
            Unit::GigabyteHours,
            Unit::GigabyteMonths,
            Unit::Requests,
            Unit::Units,
        ] {
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(json, format!("\"{}\"", unit_name(unit)));
            assert_eq!(parse_unit(unit_name(unit)), Some(unit));
        }
        assert_eq!(parse_unit("GB.h"), Some(Unit::GigabyteHours));
        assert_eq!(parse_unit("h"), Some(Unit::Hours));
        assert_eq!(parse_unit("parsecs"), None);
    }

    #[test]
    fn csv_fields_split_like_rfc_4180() {
        let mut f = Fields::default();
        let cases: [(&str, &[&str]); 5] = [
            ("a,b,c", &["a", "b", "c"]),
            ("a,,", &["a", "", ""]),
            ("\"x,y\",\"say \"\"hi\"\"\",z", &["x,y", "say \"hi\"", "z"]),
            ("\"\"", &[""]),
            ("", &[""]),
        ];
        for (line, want) in cases {
            f.split(line).unwrap();
            let got: Vec<String> = (0..f.spans.len())
                .map(|k| f.get(line, k).to_string())
                .collect();
            assert_eq!(got, want, "{line}");
        }
        for bad in ["\"open", "\"a\"b,c", "a\"b"] {
            assert!(f.split(bad).is_err(), "{bad}");
        }
    }
}
