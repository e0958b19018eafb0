//! Canonical CSV and JSON Lines importers, format detection, batch-level errors and properties (no panic on any bytes, CSV round trip).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::io::Read;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use pricing::error::{TimeFormat, RECORD_ERRORS_SHOWN_MAX};
use pricing::import::{
    detect, import, import_all, import_and_rate, to_csv_row, write_csv_row, write_json_line,
    CsvWriteError, Format, ImportError, ImportOptions, CSV_HEADER, LINE_BYTES_MAX,
};
use pricing::{BillingPeriod, Catalog, RecordError, RecordRule, Unit, UsageRecord};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn catalog() -> Catalog {
    // Embedded rather than read from disk, so that the suite also runs as wasm.
    Catalog::from_json(include_str!("../../examples/catalogs/cloudstack.json")).unwrap()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn run(format: Format, text: &str) -> Result<Vec<UsageRecord>, ImportError> {
    import_all(
        format,
        text.as_bytes(),
        &catalog(),
        &ImportOptions::default(),
    )
}

fn record_errors(r: Result<Vec<UsageRecord>, ImportError>) -> (Vec<RecordError>, usize) {
    match r {
        Err(ImportError::Records(b)) => (b.errors, b.total),
        other => panic!("expected record errors, got {other:?}"),
    }
}

const ROW: &str = "r1,acme,shop,vm-1,copper,vm.running,24,hours,2017-02-14T00:00:00Z,2017-02-15T00:00:00Z,Billing:noCPU;env:prod,lon1";

fn expected_row() -> UsageRecord {
    UsageRecord {
        record_id: Some("r1".into()),
        account: "acme".into(),
        project: Some("shop".into()),
        resource: "vm-1".into(),
        product: "copper".into(),
        meter: "vm.running".into(),
        quantity: d("24"),
        unit: Unit::Hours,
        start: t("2017-02-14T00:00:00Z"),
        end: t("2017-02-15T00:00:00Z"),
        tags: vec!["Billing:noCPU".into(), "env:prod".into()],
        region: Some("lon1".into()),
    }
}

#[test]
fn csv_reads_the_documented_header() {
    let cases: Vec<(&str, String)> = vec![
        ("documented header", format!("{CSV_HEADER}\n{ROW}\n")),
        ("no final line break", format!("{CSV_HEADER}\n{ROW}")),
        ("CRLF and a byte order mark", format!("\u{feff}{CSV_HEADER}\r\n{ROW}\r\n")),
        ("blank lines", format!("\n{CSV_HEADER}\n\n{ROW}\n\n")),
        (
            "columns in another order",
            "quantity,unit,account,resource,product,meter,start,end,record_id,project,tags,region\n24,h,acme,vm-1,copper,vm.running,2017-02-14T00:00:00Z,2017-02-15T01:00:00+01:00,r1,shop,Billing:noCPU;env:prod,lon1\n".into(),
        ),
        (
            "quoted fields",
            format!("{CSV_HEADER}\n\"r1\",acme,\"shop\",vm-1,copper,vm.running,\"24\",hours,2017-02-14T00:00:00Z,2017-02-15T00:00:00Z,\"Billing:noCPU;env:prod\",lon1\n"),
        ),
    ];
    for (name, text) in cases {
        let r = run(Format::Csv, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r, vec![expected_row()], "{name}");
    }
    // Optional columns may be left out; empty optional fields are absent.
    let r = run(
        Format::Csv,
        "account,resource,product,meter,quantity,unit,start,end\nacme,vm-1,copper,vm.running,1.5e1,GB.h,2017-02-14T00:00:00Z,2017-02-14T00:00:00Z\n",
    )
    .unwrap();
    assert_eq!(
        (
            r[0].record_id.clone(),
            r[0].project.clone(),
            r[0].region.clone()
        ),
        (None, None, None)
    );
    assert_eq!((r[0].quantity, r[0].unit), (d("15"), Unit::GigabyteHours));
    let r = run(Format::Csv, &format!("{CSV_HEADER}\n,acme,,vm-1,copper,vm.running,1,h,2017-02-14T00:00:00Z,2017-02-14T01:00:00Z,,\n")).unwrap();
    assert!(r[0].tags.is_empty() && r[0].record_id.is_none() && r[0].project.is_none());
}

#[test]
fn jsonl_reads_usage_records_with_exact_quantities() {
    let line = |q: &str| {
        format!(
            r#"{{"record_id":"r1","account":"acme","project":"shop","resource":"vm-1","product":"copper","meter":"vm.running","quantity":{q},"unit":"hours","start":"2017-02-14T00:00:00Z","end":"2017-02-15T00:00:00Z","tags":["Billing:noCPU","env:prod"],"region":"lon1"}}"#
        )
    };
    for (q, want) in [
        ("24", "24"),
        ("\"24\"", "24"),
        ("3600.5", "3600.5"),
        ("0.1", "0.1"),
        ("\"1e2\"", "100"),
        ("2.5E1", "25"),
    ] {
        let r = run(Format::JsonLines, &format!("\n{}\r\n\n", line(q)))
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let mut want_row = expected_row();
        want_row.quantity = d(want);
        assert_eq!(r, vec![want_row], "{q}");
    }
    let minimal = r#"{"account":"a","resource":"r","product":"copper","meter":"vm.running","quantity":1,"unit":"h","start":"2017-02-14T00:00:00Z","end":"2017-02-14T01:00:00Z"}"#;
    assert_eq!(run(Format::JsonLines, minimal).unwrap().len(), 1);
}

/// Rule constructors, so that the tables below read like the rules (only the variant is
/// compared, not the fields).
fn missing() -> RecordRule {
    RecordRule::MissingField { why: None }
}

fn not_a_record() -> RecordRule {
    RecordRule::NotARecord {
        expected: "",
        message: String::new(),
    }
}

fn not_a_time() -> RecordRule {
    RecordRule::NotATime {
        format: TimeFormat::Rfc3339,
    }
}

fn field_count() -> RecordRule {
    RecordRule::FieldCount {
        fields: 0,
        header: 0,
    }
}

/// A CSV row with one field replaced: (column position, value).
fn row_with(col: usize, value: &str) -> String {
    let mut fields: Vec<String> = ROW.split(',').map(str::to_string).collect();
    fields[col] = value.to_string();
    fields.join(",")
}

#[test]
fn bad_csv_rows_name_their_line_field_and_rule() {
    let too_many_digits = "1".repeat(40);
    let cases: Vec<(String, &str, RecordRule)> = vec![
        (row_with(6, "NaN"), "quantity", RecordRule::NotADecimal),
        (row_with(6, "inf"), "quantity", RecordRule::NotADecimal),
        (
            row_with(6, "-Infinity"),
            "quantity",
            RecordRule::NotADecimal,
        ),
        (row_with(6, "twelve"), "quantity", RecordRule::NotADecimal),
        (row_with(6, "1 000"), "quantity", RecordRule::NotADecimal),
        (row_with(6, "-1"), "quantity", RecordRule::NegativeQuantity),
        (
            row_with(6, "1e30"),
            "quantity",
            RecordRule::QuantityTooLarge { max: String::new() },
        ),
        (
            row_with(6, "1e22"),
            "quantity",
            RecordRule::QuantityTooLarge { max: String::new() },
        ),
        (
            row_with(6, &too_many_digits),
            "quantity",
            RecordRule::QuantityTooLarge { max: String::new() },
        ),
        (row_with(6, ""), "quantity", RecordRule::Empty),
        (row_with(7, "parsecs"), "unit", RecordRule::UnknownUnit),
        (row_with(8, "2017-02-14"), "start", not_a_time()),
        (row_with(8, "2017-02-14 00:00:00"), "start", not_a_time()),
        (
            row_with(9, "2017-02-13T00:00:00Z"),
            "end",
            RecordRule::EndBeforeStart,
        ),
        (row_with(1, ""), "account", RecordRule::Empty),
        (row_with(3, ""), "resource", RecordRule::Empty),
        (row_with(4, ""), "product", RecordRule::Empty),
        (row_with(5, ""), "meter", RecordRule::Empty),
        ("a,b,c".into(), "$", field_count()),
        (format!("{ROW},extra"), "$", field_count()),
        (
            row_with(3, "\"unterminated"),
            "$",
            RecordRule::UnterminatedQuote,
        ),
        (row_with(3, "vm\"1"), "$", RecordRule::QuoteInUnquotedField),
    ];
    for (row, field, rule) in cases {
        // Header on line 1, a good row on line 2, a blank line 3, the bad row on line 4.
        let text = format!("{CSV_HEADER}\n{ROW}\n\n{row}\n");
        let (errs, total) = record_errors(run(Format::Csv, &text));
        assert_eq!(total, 1, "{row}");
        let e = &errs[0];
        assert_eq!((e.index, e.field), (4, field), "{row}: {e}");
        assert_eq!(
            std::mem::discriminant(&e.rule),
            std::mem::discriminant(&rule),
            "{row}: {e}"
        );
        assert!(
            e.value.chars().count() <= 203,
            "values in errors are shortened"
        );
    }
    // Not UTF-8.
    let mut bytes = format!("{CSV_HEADER}\n").into_bytes();
    bytes.extend_from_slice(b"r1,acme,shop,vm-\xff,copper,vm.running,24,h,2017-02-14T00:00:00Z,2017-02-15T00:00:00Z,,\n");
    let e = import_all(
        Format::Csv,
        bytes.as_slice(),
        &catalog(),
        &ImportOptions::default(),
    )
    .unwrap_err();
    let ImportError::Records(b) = e else {
        panic!("{e}")
    };
    assert_eq!((b.errors[0].index, b.errors[0].field), (2, "resource"));
}

#[test]
fn bad_jsonl_lines_name_their_line_field_and_rule() {
    let good = r#"{"account":"a","resource":"r","product":"copper","meter":"vm.running","quantity":"1","unit":"h","start":"2017-02-14T00:00:00Z","end":"2017-02-14T01:00:00Z"}"#;
    let with = |field: &str, value: &str| {
        let mut v: serde_json::Value = serde_json::from_str(good).unwrap();
        if value == "<remove>" {
            v.as_object_mut().unwrap().remove(field);
        } else {
            v[field] = serde_json::from_str(value).unwrap();
        }
        v.to_string()
    };
    let cases: Vec<(String, &str, RecordRule)> = vec![
        // Cut short while reading `account`: the error names the field it was in.
        ("{\"account\": ".into(), "account", not_a_record()),
        ("not json".into(), "$", not_a_record()),
        (format!("{good} trailing"), "$", not_a_record()),
        (with("colour", "\"red\""), "$", not_a_record()),
        (with("account", "5"), "account", not_a_record()),
        (with("account", "<remove>"), "account", missing()),
        (with("account", "\"\""), "account", RecordRule::Empty),
        (with("quantity", "<remove>"), "quantity", missing()),
        (
            with("quantity", "\"NaN\""),
            "quantity",
            RecordRule::NotADecimal,
        ),
        (
            with("quantity", "\"inf\""),
            "quantity",
            RecordRule::NotADecimal,
        ),
        (
            with("quantity", "true"),
            "quantity",
            RecordRule::ExpectedNumber,
        ),
        (
            with("quantity", "-0.5"),
            "quantity",
            RecordRule::NegativeQuantity,
        ),
        (
            with("quantity", "1e40"),
            "quantity",
            RecordRule::QuantityTooLarge { max: String::new() },
        ),
        (
            with("unit", "\"furlongs\""),
            "unit",
            RecordRule::UnknownUnit,
        ),
        (with("start", "\"2017-02-14\""), "start", not_a_time()),
        (
            with("end", "\"2017-02-13T00:00:00Z\""),
            "end",
            RecordRule::EndBeforeStart,
        ),
        (with("tags", "[\"\"]"), "tags", RecordRule::Empty),
        (with("tags", "\"Billing:noCPU\""), "tags", not_a_record()),
        ("[1,2]".into(), "$", not_a_record()),
    ];
    for (line, field, rule) in cases {
        let text = format!("{good}\n\n{line}\n");
        let (errs, _) = record_errors(run(Format::JsonLines, &text));
        let e = &errs[0];
        assert_eq!((e.index, e.field), (3, field), "{line}: {e}");
        assert_eq!(
            std::mem::discriminant(&e.rule),
            std::mem::discriminant(&rule),
            "{line}: {e}"
        );
    }
}

#[test]
fn csv_headers_that_are_not_canonical_are_refused_whole() {
    let cases = [
        "account,resource,product,meter,quantiy,unit,start,end",
        "account,resource,product,meter,unit,start,end",
        "account,account,resource,product,meter,quantity,unit,start,end",
        "\"unterminated",
    ];
    for header in cases {
        let e = run(Format::Csv, &format!("{header}\n{ROW}\n")).unwrap_err();
        assert!(
            matches!(
                e,
                ImportError::Shape {
                    format: Format::Csv,
                    ..
                }
            ),
            "{header}: {e}"
        );
    }
}

#[test]
fn empty_batches_are_refused_in_every_format() {
    let cases = [
        (Format::Csv, ""),
        (Format::Csv, "\n\n"),
        (Format::Csv, CSV_HEADER),
        (Format::Csv, "record_id,account,project,resource,product,meter,quantity,unit,start,end,tags,region\n\n"),
        (Format::JsonLines, ""),
        (Format::JsonLines, "\n  \n"),
        (Format::CloudStack, "{\"listusagerecordsresponse\": {}}"),
        (Format::Ceilometer, "[]"),
    ];
    for (format, text) in cases {
        let e = run(format, text).unwrap_err();
        assert_eq!(e, ImportError::Empty { format }, "{format}: {text:?}");
        assert!(e.to_string().contains("empty batch"));
    }
}

#[test]
fn a_line_over_the_limit_ends_the_import() {
    for format in [Format::Csv, Format::JsonLines] {
        let text = format!("{CSV_HEADER}\n{}\n", "x".repeat(LINE_BYTES_MAX + 1));
        let e = run(format, &text).unwrap_err();
        assert!(
            matches!(
                e,
                ImportError::TooLarge {
                    what: "line bytes",
                    ..
                }
            ),
            "{format}: {e}"
        );
    }
    // Exactly at the limit is fine (and then just a bad row).
    let text = format!("{CSV_HEADER}\n{}\n", "x".repeat(LINE_BYTES_MAX));
    assert!(matches!(
        run(Format::Csv, &text),
        Err(ImportError::Records(_))
    ));
}

#[test]
fn sink_errors_join_the_importers_own_in_one_answer() {
    // Line 2 is fine; line 3 fails in the importer; line 4 names an unknown product and line 5
    // is outside February: the aggregator (the sink) refuses those.
    let text = format!(
        "{CSV_HEADER}\n{ROW}\n{}\n{}\n{}\n",
        row_with(6, "NaN"),
        row_with(4, "platinum"),
        row_with(8, "2017-03-01T00:00:00Z").replace("2017-02-15T00:00:00Z", "2017-03-02T00:00:00Z")
    );
    let e = import_and_rate(
        Format::Csv,
        text.as_bytes(),
        &catalog(),
        &ImportOptions::default(),
        BillingPeriod::month(2017, 2).unwrap(),
    )
    .unwrap_err();
    let ImportError::Records(b) = e else {
        panic!("{e}")
    };
    let at: Vec<(usize, &str, String)> = b
        .errors
        .iter()
        .map(|e| {
            (
                e.index,
                e.field,
                format!("{:?}", std::mem::discriminant(&e.rule)),
            )
        })
        .collect();
    assert_eq!(at.len(), 3);
    assert_eq!((at[0].0, at[0].1), (3, "quantity"));
    assert_eq!((at[1].0, at[1].1), (4, "product"));
    assert!(matches!(b.errors[1].rule, RecordRule::UnknownProduct));
    assert_eq!((at[2].0, at[2].1), (5, "start"));
    assert!(matches!(b.errors[2].rule, RecordRule::OutsidePeriod { .. }));
}

#[test]
fn a_million_bad_rows_list_the_first_fifty_and_count_the_rest() {
    let mut text = format!("{CSV_HEADER}\n");
    for _ in 0..(RECORD_ERRORS_SHOWN_MAX + 25) {
        text.push_str(&row_with(6, "NaN"));
        text.push('\n');
    }
    let (errs, total) = record_errors(run(Format::Csv, &text));
    assert_eq!(
        (errs.len(), total),
        (RECORD_ERRORS_SHOWN_MAX, RECORD_ERRORS_SHOWN_MAX + 25)
    );
    let shown = ImportError::Records(pricing::BatchErrors {
        errors: errs,
        total,
    })
    .to_string();
    assert!(shown.contains("and 25 more"), "{shown}");
}

/// A reader that makes canonical CSV rows on the fly, so that an import can be driven far past
/// what a test would want to hold in memory.
struct GeneratedCsv {
    rows_left: usize,
    pending: Vec<u8>,
    at: usize,
}

impl Read for GeneratedCsv {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            if self.rows_left == 0 {
                return Ok(0);
            }
            self.rows_left -= 1;
            self.pending = ROW
                .replace("vm-1", &format!("vm-{}", self.rows_left % 97))
                .into_bytes();
            self.pending.push(b'\n');
            self.at = 0;
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn csv_streams_row_by_row() {
    let rows = 50_000;
    let reader = std::io::Cursor::new(format!("{CSV_HEADER}\n")).chain(GeneratedCsv {
        rows_left: rows,
        pending: Vec::new(),
        at: 0,
    });
    let mut seen = 0usize;
    let mut last_line = 0usize;
    let stats = import(
        Format::Csv,
        reader,
        &catalog(),
        &ImportOptions::default(),
        |line, r| {
            seen += 1;
            assert_eq!(line, last_line.max(1) + 1, "line numbers are consecutive");
            last_line = line;
            assert_eq!(r.quantity, d("24"));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(
        (seen, stats.items as usize, stats.records as usize),
        (rows, rows, rows)
    );
}

#[test]
fn formats_are_detected_from_their_first_bytes() {
    let cases: Vec<(&[u8], Option<Format>)> = vec![
        (b"record_id,account,project,resource,product,meter,quantity,unit,start,end,tags,region\n", Some(Format::Csv)),
        (b"\xEF\xBB\xBFaccount,resource,product,meter,quantity,unit,start,end\r\nacme", Some(Format::Csv)),
        (b"\"account\",\"quantity\",\"resource\",\"product\",\"meter\",\"unit\",\"start\",\"end\"\n", Some(Format::Csv)),
        (b"{\"account\":\"a\",\"resource\":\"r\",\"product\":\"p\",\"meter\":\"m\",\"quantity\":\"1\"}\n{", Some(Format::JsonLines)),
        (b"  {\"listusagerecordsresponse\": {\"count\": 2, \"usagerecord\": [", Some(Format::CloudStack)),
        (b"[{\"account\":\"bu1user1\",\"usagetype\":1,\"rawusage\":\"24\"}]", Some(Format::CloudStack)),
        (b"[{\"counter_name\":\"instance:m1.tiny\",\"counter_type\":\"gauge\"}]", Some(Format::Ceilometer)),
        (b"{\"samples\": [{\"meter\": \"ip.floating\"", Some(Format::Ceilometer)),
        (b"[{\"meter\":\"ip.floating\",\"resource_id\":\"x\",\"volume\":1}]", Some(Format::Ceilometer)),
        (b"", None),
        (b"   \n", None),
        (b"hello world", None),
        (b"name,price\nx,1\n", None),
        (b"{\"unrelated\": true}", None),
        (b"\xff\xfe\x00", None),
    ];
    for (prefix, want) in cases {
        assert_eq!(detect(prefix), want, "{}", String::from_utf8_lossy(prefix));
        assert_eq!(Format::detect(prefix), want);
    }
}

#[test]
fn format_names_parse() {
    for (name, want) in [
        ("csv", Format::Csv),
        ("JSONL", Format::JsonLines),
        ("ndjson", Format::JsonLines),
        ("cloudstack", Format::CloudStack),
        ("ceilometer", Format::Ceilometer),
    ] {
        assert_eq!(name.parse::<Format>(), Ok(want), "{name}");
    }
    let e = "parquet".parse::<Format>().unwrap_err();
    assert!(e
        .to_string()
        .contains("csv, jsonl, cloudstack or ceilometer"));
}

#[test]
fn csv_writer_refuses_what_would_not_read_back() {
    let mut r = expected_row();
    r.tags = vec!["a;b".into()];
    assert_eq!(
        to_csv_row(&r),
        Err(CsvWriteError::UnrepresentableTag { tag: "a;b".into() })
    );
    r.tags = vec![String::new()];
    assert!(to_csv_row(&r).is_err());
    r.tags = vec![];
    r.resource = "line\nbreak".into();
    assert_eq!(
        to_csv_row(&r),
        Err(CsvWriteError::LineBreak { field: "resource" })
    );
    r.resource = "quote \" and, comma".into();
    assert_eq!(
        to_csv_row(&r).unwrap().split(',').nth(3),
        Some("\"quote \"\" and")
    );
}

#[test]
fn csv_writer_writes_the_documented_row() {
    assert_eq!(to_csv_row(&expected_row()).unwrap(), format!("{ROW}\n"));
}

fn arb_text() -> impl Strategy<Value = String> {
    // Printable text including CSV's special characters, but no line breaks or `;`.
    proptest::string::string_regex("[a-zA-Z0-9 ,\"'._:/é-]{1,12}").unwrap()
}

fn arb_record() -> impl Strategy<Value = UsageRecord> {
    let opt = || proptest::option::of(arb_text());
    (
        (opt(), arb_text(), opt(), arb_text(), arb_text(), arb_text()),
        (any::<i64>(), 0u32..=12, 0usize..12),
        (0i64..4_000_000_000, 0i64..10_000_000, 0u32..1_000_000_000),
        (proptest::collection::vec(arb_text(), 0..4), opt()),
    )
        .prop_map(
            |(
                (id, account, project, resource, product, meter),
                (q, scale, unit),
                (start_s, len_s, nanos),
                (tags, region),
            )| {
                let units = [
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
                ];
                let start = Utc.timestamp_opt(start_s, nanos).unwrap();
                UsageRecord {
                    record_id: id,
                    account,
                    project,
                    resource,
                    product,
                    meter,
                    quantity: Decimal::new((q / 2).abs(), scale),
                    unit: units[unit],
                    start,
                    end: start + chrono::Duration::seconds(len_s),
                    tags,
                    region,
                }
            },
        )
}

/// The example exports, embedded so that the suite also runs as wasm.
const EXPORTS: [(Format, &[u8]); 4] = [
    (
        Format::CloudStack,
        include_bytes!("../../examples/exports/cloudstack-nightly-2017-02-14.json"),
    ),
    (
        Format::Ceilometer,
        include_bytes!("../../examples/exports/ceilometer-2026-11.json"),
    ),
    (
        Format::Csv,
        include_bytes!("../../examples/exports/canonical-2017-02.csv"),
    ),
    (
        Format::JsonLines,
        include_bytes!("../../examples/exports/canonical-2017-02.jsonl"),
    ),
];

/// Cases per property: 256 in the test suite; `FUZZ_CASES=n` for a long fuzzing campaign.
fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn csv_write_then_read_gives_the_same_records(records in proptest::collection::vec(arb_record(), 1..8)) {
        let mut text = format!("{CSV_HEADER}\n");
        for r in &records {
            write_csv_row(r, &mut text).unwrap();
        }
        let back = run(Format::Csv, &text).unwrap();
        prop_assert_eq!(back, records);
    }

    #[test]
    fn jsonl_write_then_read_gives_the_same_records(records in proptest::collection::vec(arb_record(), 1..8)) {
        let mut text = String::new();
        for r in &records {
            write_json_line(r, &mut text);
        }
        let back = run(Format::JsonLines, &text).unwrap();
        prop_assert_eq!(back, records);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let catalog = catalog();
        for format in Format::ALL {
            let _ = import_all(format, bytes.as_slice(), &catalog, &ImportOptions::default());
        }
        let _ = detect(&bytes);
    }

    #[test]
    fn json_like_inputs_never_panic(text in "[\\[\\]{}\",:0-9a-z_. eE+-]{0,400}") {
        let catalog = catalog();
        for format in Format::ALL {
            let _ = import_all(format, text.as_bytes(), &catalog, &ImportOptions::default());
        }
    }

    #[test]
    fn mangled_exports_never_panic(cut in 0usize..4000, flip in 0usize..4000, byte in any::<u8>()) {
        // Real exports, cut short or with one byte changed: close to valid, so deep in the parsers.
        let catalog = catalog();
        for (format, export) in EXPORTS {
            let mut bytes = export[..export.len().min(4000)].to_vec();
            let i = flip % bytes.len();
            bytes[i] = byte;
            let _ = import_all(format, &bytes[..cut.min(bytes.len())], &catalog, &ImportOptions::default());
            let _ = import_all(format, bytes.as_slice(), &catalog, &ImportOptions::default());
        }
    }
}
