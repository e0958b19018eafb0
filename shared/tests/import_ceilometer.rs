//! Ceilometer samples importer: gauge hours, cumulative differences with resets, volume-type filters, counters and bad input.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use pricing::error::TimeFormat;
use pricing::import::{
    import_all, import_and_rate, CumulativeStart, Format, ImportError, ImportOptions,
};
use pricing::{BillingPeriod, Catalog, RecordRule, Unit, UsageRecord};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// A test of the error a whole document gets.
type Check = fn(&ImportError) -> bool;

fn catalog() -> Catalog {
    // Embedded rather than read from disk, so that the suite also runs as wasm.
    Catalog::from_json(include_str!("../../examples/catalogs/openstack.json")).unwrap()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A sample of `counter` at `time` (`HH:MM` on 2 November 2026).
fn sample(
    counter: &str,
    kind: &str,
    unit: &str,
    volume: Value,
    resource: &str,
    time: &str,
) -> Value {
    json!({
        "counter_name": counter, "counter_type": kind, "counter_unit": unit, "counter_volume": volume,
        "resource_id": resource, "project_id": "tenant-acme", "user_id": "u1",
        "timestamp": format!("2026-11-02T{time}:00"),
        "message_id": format!("{counter}/{resource}/{time}"),
        "resource_metadata": {}
    })
}

fn with(mut v: Value, extra: Value) -> Value {
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn import_with(
    samples: &[Value],
    options: &ImportOptions,
) -> Result<Vec<UsageRecord>, ImportError> {
    let text = Value::Array(samples.to_vec()).to_string();
    import_all(Format::Ceilometer, text.as_bytes(), &catalog(), options)
}

fn import(samples: &[Value]) -> Vec<UsageRecord> {
    import_with(samples, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// (start, end, quantity) of each record, in import order.
fn spans(records: &[UsageRecord]) -> Vec<(String, String, Decimal)> {
    records
        .iter()
        .map(|r| {
            (
                r.start.format("%H:%M").to_string(),
                r.end.format("%d %H:%M").to_string(),
                r.quantity,
            )
        })
        .collect()
}

fn tiny(time: &str) -> Value {
    sample(
        "instance:m1.tiny",
        "gauge",
        "instance",
        json!(1),
        "vm-1",
        time,
    )
}

#[test]
fn gauge_samples_stand_for_the_time_to_the_next_sample() {
    let hour = d("3600");
    // (case, samples, records as (start, end, quantity))
    type Case<'a> = (&'a str, Vec<Value>, Vec<(&'a str, &'a str, Decimal)>);
    let cases: Vec<Case> = vec![
        (
            "hourly samples: one hour each, the last one a sampling interval",
            vec![tiny("10:00"), tiny("11:00"), tiny("12:00")],
            vec![
                ("10:00", "02 11:00", hour),
                ("11:00", "02 12:00", hour),
                ("12:00", "02 13:00", hour),
            ],
        ),
        (
            "order in the export does not matter",
            vec![tiny("12:00"), tiny("10:00"), tiny("11:00")],
            vec![
                ("12:00", "02 13:00", hour),
                ("10:00", "02 11:00", hour),
                ("11:00", "02 12:00", hour),
            ],
        ),
        (
            "a late poll within the gap limit counts whole",
            vec![tiny("10:00"), tiny("11:30")],
            vec![
                ("10:00", "02 11:30", d("5400")),
                ("11:30", "02 12:30", hour),
            ],
        ),
        (
            "a gap over two hours: the VM was gone, one interval is billed",
            vec![tiny("10:00"), tiny("15:00")],
            vec![("10:00", "02 11:00", hour), ("15:00", "02 16:00", hour)],
        ),
        (
            "two samples at one instant: the first stands for nothing",
            vec![
                tiny("10:00"),
                with(tiny("10:00"), json!({ "message_id": "other" })),
            ],
            vec![("10:00", "02 11:00", hour)],
        ),
    ];
    for (name, samples, want) in cases {
        let got = spans(&import(&samples));
        let want: Vec<(String, String, Decimal)> = want
            .into_iter()
            .map(|(a, b, q)| (a.into(), b.into(), q))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    let r = &import(&[tiny("10:00")])[0];
    assert_eq!(
        (r.product.as_str(), r.meter.as_str(), r.unit),
        ("m1.tiny", "instance", Unit::Seconds)
    );
    assert_eq!(
        (
            r.account.as_str(),
            r.project.as_deref(),
            r.resource.as_str()
        ),
        ("tenant-acme", Some("tenant-acme"), "vm-1")
    );
    assert_eq!(r.record_id.as_deref(), Some("instance:m1.tiny/vm-1/10:00"));
}

#[test]
fn gauge_time_is_cut_at_the_window_end_and_configurable() {
    let mut options = ImportOptions::default();
    options.ceilometer.window_end = Some(t("2026-11-02T10:30:00Z"));
    let r = import_with(&[tiny("10:00")], &options).unwrap();
    assert_eq!(
        spans(&r),
        vec![("10:00".into(), "02 10:30".into(), d("1800"))]
    );

    let mut options = ImportOptions::default();
    options.ceilometer.gauge_sample_interval_s = 600;
    options.ceilometer.gauge_gap_max_s = 900;
    let r = import_with(&[tiny("10:00"), tiny("10:10"), tiny("11:00")], &options).unwrap();
    assert_eq!(
        spans(&r),
        vec![
            ("10:00".into(), "02 10:10".into(), d("600")),
            ("10:10".into(), "02 10:20".into(), d("600")),
            ("11:00".into(), "02 11:10".into(), d("600")),
        ]
    );
}

#[test]
fn import_and_rate_cuts_gauges_at_the_period_end() {
    let last = with(tiny("00:00"), json!({ "timestamp": "2026-11-30T23:30:00" }));
    let rated = import_and_rate(
        Format::Ceilometer,
        Value::Array(vec![last]).to_string().as_bytes(),
        &catalog(),
        &ImportOptions::default(),
        BillingPeriod::month(2026, 11).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let total = rated.usage.totals.values().next().unwrap();
    assert_eq!(total.quantity, d("1800"));
}

fn out(volume: i64, time: &str) -> Value {
    sample(
        "network.outgoing.bytes",
        "cumulative",
        "B",
        json!(volume),
        "tap-1",
        time,
    )
}

#[test]
fn cumulative_counters_bill_differences_and_survive_resets() {
    let samples = [
        out(100, "10:00"),
        out(250, "11:00"),
        out(40, "12:00"),
        out(90, "13:00"),
        out(90, "14:00"),
    ];
    let records = import(&samples);
    assert_eq!(
        spans(&records),
        vec![
            ("10:00".into(), "02 11:00".into(), d("150")),
            // Reset: the counter restarted and counted 40 from zero.
            ("11:00".into(), "02 12:00".into(), d("40")),
            ("12:00".into(), "02 13:00".into(), d("50")),
            // No change in the last hour: no record.
        ]
    );
    assert!(records.iter().all(|r| r.unit == Unit::Bytes
        && r.meter == "network.outgoing.bytes"
        && r.product == "network"));

    let mut options = ImportOptions::default();
    options.ceilometer.cumulative_start = CumulativeStart::FromZero;
    let from_zero = import_with(&samples, &options).unwrap();
    let total: Decimal = from_zero.iter().map(|r| r.quantity).sum();
    assert_eq!(total, d("340"));
}

#[test]
fn every_counter_maps_to_its_product_meter_and_unit() {
    let cases: Vec<(Vec<Value>, &str, &str, Unit, Decimal)> = vec![
        (
            vec![tiny("10:00")],
            "m1.tiny",
            "instance",
            Unit::Seconds,
            d("3600"),
        ),
        (
            vec![with(
                sample("instance", "gauge", "instance", json!(1), "vm-2", "10:00"),
                json!({ "resource_metadata": { "flavor": { "name": "m1.large", "id": "4" } } }),
            )],
            "m1.large",
            "instance",
            Unit::Seconds,
            d("3600"),
        ),
        (
            vec![with(
                sample("instance", "gauge", "instance", json!(1), "vm-2", "10:00"),
                json!({ "resource_metadata": { "instance_type": "m1.small" } }),
            )],
            "m1.small",
            "instance",
            Unit::Seconds,
            d("3600"),
        ),
        (
            vec![with(
                sample("instance", "gauge", "instance", json!(1), "vm-2", "10:00"),
                json!({ "resource_metadata": { "flavor.name": "m1.medium" } }),
            )],
            "m1.medium",
            "instance",
            Unit::Seconds,
            d("3600"),
        ),
        (
            vec![sample(
                "ip.floating",
                "gauge",
                "ip",
                json!(1),
                "fip-1",
                "10:00",
            )],
            "floating-ip",
            "ip.floating",
            Unit::Seconds,
            d("3600"),
        ),
        (
            vec![with(
                sample("volume.size", "gauge", "GB", json!(80), "vol-1", "10:00"),
                json!({ "resource_metadata": { "volume_type": "ssd" } }),
            )],
            "volume-ssd",
            "volume.size",
            Unit::GigabyteHours,
            d("80"),
        ),
        (
            vec![with(
                sample("volume.size", "gauge", "GB", json!(30), "vol-2", "10:00"),
                json!({ "resource_metadata": { "volume_type": "standard" } }),
            )],
            "volume-standard",
            "volume.size",
            Unit::GigabyteHours,
            d("30"),
        ),
        (
            vec![
                sample(
                    "network.incoming.bytes",
                    "cumulative",
                    "B",
                    json!(10),
                    "tap",
                    "10:00",
                ),
                sample(
                    "network.incoming.bytes",
                    "cumulative",
                    "B",
                    json!(1010),
                    "tap",
                    "11:00",
                ),
            ],
            "network",
            "network.incoming.bytes",
            Unit::Bytes,
            d("1000"),
        ),
        (
            vec![
                sample(
                    "network.outgoing.bytes.gb",
                    "cumulative",
                    "gb",
                    json!(1.5),
                    "tap",
                    "10:00",
                ),
                sample(
                    "network.outgoing.bytes.gb",
                    "cumulative",
                    "gb",
                    json!(4.25),
                    "tap",
                    "11:00",
                ),
            ],
            "network",
            "network.outgoing.bytes",
            Unit::Gigabytes,
            d("2.75"),
        ),
        (
            vec![
                sample(
                    "disk.read.requests",
                    "cumulative",
                    "request",
                    json!(1000),
                    "vm-1",
                    "10:00",
                ),
                sample(
                    "disk.read.requests",
                    "cumulative",
                    "request",
                    json!(51000),
                    "vm-1",
                    "11:00",
                ),
            ],
            "disk-io",
            "disk.read.requests",
            Unit::Requests,
            d("50000"),
        ),
        (
            vec![sample(
                "disk.write.requests",
                "delta",
                "request",
                json!(777),
                "vm-1",
                "10:00",
            )],
            "disk-io",
            "disk.write.requests",
            Unit::Requests,
            d("777"),
        ),
    ];
    for (samples, product, meter, unit, quantity) in cases {
        let r = import(&samples);
        assert_eq!(r.len(), 1, "{samples:?}");
        assert_eq!(
            (
                r[0].product.as_str(),
                r[0].meter.as_str(),
                r[0].unit,
                r[0].quantity
            ),
            (product, meter, unit, quantity),
            "{samples:?}"
        );
    }
}

#[test]
fn counter_volumes_are_read_exactly_from_their_text() {
    let v = |volume: Value| {
        sample(
            "disk.write.requests",
            "delta",
            "request",
            volume,
            "vm-1",
            "10:00",
        )
    };
    for (volume, want) in [
        (json!(3600.5), "3600.5"),
        (json!("3600.5"), "3600.5"),
        (serde_json::from_str::<Value>("0.1").unwrap(), "0.1"),
        (json!(1e3), "1000"),
    ] {
        assert_eq!(
            import(&[v(volume.clone())])[0].quantity,
            d(want),
            "{volume}"
        );
    }
    // 0.1 + 0.2 through f64 is 0.30000000000000004; exactly it is 0.3.
    let text = r#"[
      {"counter_name":"disk.write.requests","counter_type":"delta","counter_volume":0.1,"resource_id":"r","project_id":"p","timestamp":"2026-11-02T10:00:00","message_id":"a"},
      {"counter_name":"disk.write.requests","counter_type":"delta","counter_volume":0.2,"resource_id":"r","project_id":"p","timestamp":"2026-11-02T11:00:00","message_id":"b"}
    ]"#;
    let r = import_all(
        Format::Ceilometer,
        text.as_bytes(),
        &catalog(),
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(r.iter().map(|r| r.quantity).sum::<Decimal>(), d("0.3"));
}

#[test]
fn v2_samples_field_names_and_the_samples_wrapper_are_accepted() {
    let text = json!({ "samples": [{
        "meter": "instance:m1.tiny", "type": "gauge", "unit": "instance", "volume": 1,
        "resource_id": "vm-1", "project_id": "p-uuid", "timestamp": "2026-11-02T10:00:00.123456",
        "id": "sample-1", "metadata": {}
    }]})
    .to_string();
    let mut options = ImportOptions::default();
    options
        .ceilometer
        .account_by_project
        .insert("p-uuid".into(), "tenant-acme".into());
    options.ceilometer.region = Some("sto1".into());
    let r = import_all(Format::Ceilometer, text.as_bytes(), &catalog(), &options).unwrap();
    assert_eq!(r[0].account, "tenant-acme");
    assert_eq!(r[0].project.as_deref(), Some("p-uuid"));
    assert_eq!(r[0].record_id.as_deref(), Some("sample-1"));
    assert_eq!(r[0].region.as_deref(), Some("sto1"));
    assert_eq!(r[0].start, t("2026-11-02T10:00:00.123456Z"));
}

#[test]
fn a_repeated_message_is_counted_once() {
    let r = import(&[tiny("10:00"), tiny("10:00"), tiny("11:00")]);
    assert_eq!(r.len(), 2);
}

#[test]
fn unknown_counters_are_errors_unless_skipped() {
    let cpu = sample("cpu", "cumulative", "ns", json!(1), "vm-1", "10:00");
    let e = import_with(&[cpu.clone(), tiny("10:00")], &ImportOptions::default()).unwrap_err();
    let ImportError::Records(b) = e else {
        panic!("{e}")
    };
    assert_eq!((b.errors[0].index, b.errors[0].field), (0, "counter_name"));
    assert!(b.errors[0]
        .to_string()
        .contains("unknown Ceilometer counter"));

    let mut options = ImportOptions::default();
    options.ceilometer.skip_unknown_counters = true;
    assert_eq!(
        import_with(&[cpu, tiny("10:00")], &options).unwrap().len(),
        1
    );
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

#[test]
fn bad_samples_name_their_index_field_and_rule() {
    let ssd = |extra: Value| {
        with(
            sample("volume.size", "gauge", "GB", json!(10), "vol-1", "10:00"),
            extra,
        )
    };
    let cases: Vec<(Value, &str, RecordRule)> = vec![
        (
            sample(
                "instance:m1.huge",
                "gauge",
                "instance",
                json!(1),
                "vm-1",
                "10:00",
            ),
            "counter_name",
            RecordRule::UnknownProduct,
        ),
        (
            sample("instance", "gauge", "instance", json!(1), "vm-1", "10:00"),
            "resource_metadata",
            RecordRule::MissingFlavor,
        ),
        (
            ssd(json!({ "resource_metadata": {} })),
            "resource_metadata",
            RecordRule::MissingVolumeType,
        ),
        (
            ssd(json!({ "resource_metadata": { "volume_type": "gold" } })),
            "resource_metadata",
            RecordRule::UnknownProduct,
        ),
        (
            ssd(json!({ "resource_metadata": { "volume_type": "ssd" }, "counter_unit": "MB" })),
            "counter_unit",
            RecordRule::UnknownCounterUnit {
                counter: String::new(),
            },
        ),
        (
            sample(
                "instance:m1.tiny",
                "cumulative",
                "instance",
                json!(1),
                "vm-1",
                "10:00",
            ),
            "counter_type",
            RecordRule::WrongCounterType {
                counter: String::new(),
                expected: "",
            },
        ),
        (
            sample(
                "network.incoming.bytes",
                "gauge",
                "B",
                json!(1),
                "tap",
                "10:00",
            ),
            "counter_type",
            RecordRule::WrongCounterType {
                counter: String::new(),
                expected: "",
            },
        ),
        (
            with(tiny("10:00"), json!({ "counter_volume": "NaN" })),
            "counter_volume",
            RecordRule::NotADecimal,
        ),
        (
            with(tiny("10:00"), json!({ "counter_volume": "Infinity" })),
            "counter_volume",
            RecordRule::NotADecimal,
        ),
        (
            with(tiny("10:00"), json!({ "counter_volume": -1 })),
            "counter_volume",
            RecordRule::NegativeQuantity,
        ),
        (
            with(tiny("10:00"), json!({ "counter_volume": 1e30 })),
            "counter_volume",
            RecordRule::QuantityTooLarge { max: String::new() },
        ),
        (
            with(tiny("10:00"), json!({ "counter_volume": null })),
            "counter_volume",
            missing(),
        ),
        (
            with(tiny("10:00"), json!({ "timestamp": "yesterday" })),
            "timestamp",
            not_a_time(),
        ),
        (
            with(tiny("10:00"), json!({ "resource_id": "" })),
            "resource_id",
            missing(),
        ),
        (
            with(tiny("10:00"), json!({ "project_id": null })),
            "project_id",
            missing(),
        ),
        (
            with(tiny("10:00"), json!({ "counter_name": 7 })),
            "counter_name",
            RecordRule::UnknownCounter { known: "" },
        ),
        (json!(42), "$", not_a_record()),
    ];
    for (s, field, rule) in cases {
        let e = import_with(&[tiny("09:00"), s.clone()], &ImportOptions::default()).unwrap_err();
        let ImportError::Records(b) = e else {
            panic!("{s}: {e}")
        };
        assert_eq!(b.errors.len(), 1, "{s}");
        let err = &b.errors[0];
        assert_eq!((err.index, err.field), (1, field), "{s}: {err}");
        assert_eq!(
            std::mem::discriminant(&err.rule),
            std::mem::discriminant(&rule),
            "{s}: {err}"
        );
    }
}

#[test]
fn documents_that_are_not_samples_are_refused_whole() {
    let cases: Vec<(&str, Check)> = vec![
        ("[", |e| matches!(e, ImportError::Syntax { .. })),
        ("[]", |e| matches!(e, ImportError::Empty { .. })),
        ("{\"samples\": []}", |e| {
            matches!(e, ImportError::Empty { .. })
        }),
        ("{\"meters\": []}", |e| {
            matches!(e, ImportError::Shape { .. })
        }),
        ("\"text\"", |e| matches!(e, ImportError::Shape { .. })),
        ("{\"samples\": null}", |e| {
            matches!(e, ImportError::Shape { .. })
        }),
        ("{\"samples\": {}}", |e| {
            matches!(e, ImportError::Shape { .. })
        }),
        ("[\n{}\n", |e| {
            matches!(e, ImportError::Syntax { line: 3, .. })
        }),
        ("", |e| matches!(e, ImportError::Syntax { .. })),
        ("[] []", |e| matches!(e, ImportError::Syntax { .. })),
    ];
    for (text, check) in cases {
        let e = import_all(
            Format::Ceilometer,
            text.as_bytes(),
            &catalog(),
            &ImportOptions::default(),
        )
        .unwrap_err();
        assert!(check(&e), "{text}: {e}");
    }
    // A byte that is not UTF-8 is named where it is.
    let e = import_all(
        Format::Ceilometer,
        &b"[\n\xff]"[..],
        &catalog(),
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ImportError::Syntax {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{e}"
    );
}

/// Ceilometer documents are read one sample at a time: the same samples give the same records
/// as a bare array, inside `{"samples": [...]}` among other keys (before and after it), after a
/// byte-order mark, and padded past the 64 MiB the whole-document reader used to refuse. (The
/// refusal past the sample limit is tested with a small limit in `import::ceilometer`.) The
/// padded case is native only: 64 MiB of padding is slow to build in the wasm test runner.
#[test]
fn documents_stream_with_a_sample_limit_not_a_byte_limit() {
    let samples = Value::Array(vec![
        sample(
            "instance:m1.small",
            "gauge",
            "instance",
            json!(1),
            "vm-1",
            "09:00",
        ),
        sample(
            "instance:m1.small",
            "gauge",
            "instance",
            json!(1),
            "vm-1",
            "10:00",
        ),
        sample(
            "network.outgoing.bytes",
            "cumulative",
            "B",
            json!(1_000_000),
            "vm-1-tap",
            "09:00",
        ),
        sample(
            "network.outgoing.bytes",
            "cumulative",
            "B",
            json!(3_500_000),
            "vm-1-tap",
            "10:00",
        ),
    ]);
    let read = |text: &[u8]| {
        import_all(
            Format::Ceilometer,
            text,
            &catalog(),
            &ImportOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let bare = read(samples.to_string().as_bytes());
    assert!(bare.len() >= 2, "{bare:?}");
    let wrapped = format!(
        r#"{{"meta": {{"next": null, "samples": 3}}, "samples": {samples}, "links": [{{"rel": "self"}}]}}"#
    );
    assert_eq!(read(wrapped.as_bytes()), bare);
    let marked = [&b"\xEF\xBB\xBF"[..], samples.to_string().as_bytes()].concat();
    assert_eq!(read(&marked), bare);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let pad = " ".repeat(64 * 1024 * 1024 + 1);
        let padded = format!(r#"{{"samples": {samples}{pad}}}"#);
        assert_eq!(read(padded.as_bytes()), bare);
    }
}

/// A sample of `counter` at an RFC 3339 instant (`2026-11-30T23:30:00Z`).
fn sample_at(
    counter: &str,
    kind: &str,
    unit: &str,
    volume: Value,
    resource: &str,
    at: &str,
) -> Value {
    json!({
        "counter_name": counter, "counter_type": kind, "counter_unit": unit, "counter_volume": volume,
        "resource_id": resource, "project_id": "tenant-acme",
        "timestamp": at, "message_id": format!("{counter}/{resource}/{at}"),
        "resource_metadata": {}
    })
}

fn tiny_at(at: &str) -> Value {
    sample_at(
        "instance:m1.tiny",
        "gauge",
        "instance",
        json!(1),
        "vm-1",
        at,
    )
}

/// Options with Ceilometer's window set to `[start, end)`.
fn window(start: &str, end: &str) -> ImportOptions {
    let mut options = ImportOptions::default();
    options.ceilometer.window_start = Some(t(start));
    options.ceilometer.window_end = Some(t(end));
    options
}

fn total(records: &[UsageRecord]) -> Decimal {
    records.iter().map(|r| r.quantity).sum()
}

#[test]
fn a_lost_poll_with_jitter_is_still_bridged() {
    // Hourly polls; the 11:00 poll is lost and the 12:00 one comes 1.8 s late: the gap is
    // 7,201.8 s, over two intervals but within them plus the 360 s jitter: continuous use.
    let r = import(&[tiny("10:00"), tiny_at("2026-11-02T12:00:01.8Z")]);
    // 10:00 -> 12:00:01.8 held (7,201.8 s), then the last sample one interval.
    assert_eq!(total(&r), d("7201.8") + d("3600"));
    // A second of jitter never changes the invoice: on time, the same hours.
    let on_time = import(&[tiny("10:00"), tiny("12:00")]);
    assert_eq!(total(&on_time), d("7200") + d("3600"));

    // Past two intervals plus the jitter (7,561 s) the resource was gone: one interval each.
    let gone = import(&[tiny("10:00"), tiny_at("2026-11-02T12:06:01Z")]);
    assert_eq!(total(&gone), d("3600") + d("3600"));

    // The jitter is a mapping setting.
    let mut options = ImportOptions::default();
    options.ceilometer.gauge_jitter_s = 0;
    let strict = import_with(
        &[tiny("10:00"), tiny_at("2026-11-02T12:00:01.8Z")],
        &options,
    )
    .unwrap();
    assert_eq!(total(&strict), d("3600") + d("3600"));
}

#[test]
fn gauge_time_is_cut_at_both_ends_of_the_window_and_at_midnights() {
    // Half-past polls from 20:30 on 30 November to 03:30 on 1 December.
    let times: Vec<String> = (20..24)
        .map(|h| format!("2026-11-30T{h}:30:00Z"))
        .chain((0..4).map(|h| format!("2026-12-01T0{h}:30:00Z")))
        .collect();
    let samples: Vec<Value> = times.iter().map(|t| tiny_at(t)).collect();

    // One export over both months, no window: 20:30 -> 03:30 continuous, then one hour; the
    // 23:30 sample's hour is two records, one per day, the second with its own id.
    let whole = import(&samples);
    assert_eq!(total(&whole), d("3600") * d("8"));
    let split: Vec<_> = whole
        .iter()
        .filter(|r| r.record_id.as_deref().unwrap().contains("23:30"))
        .map(|r| (r.record_id.clone().unwrap(), r.start, r.end, r.quantity))
        .collect();
    let id = "instance:m1.tiny/vm-1/2026-11-30T23:30:00Z";
    assert_eq!(
        split,
        vec![
            (
                id.to_string(),
                t("2026-11-30T23:30:00Z"),
                t("2026-12-01T00:00:00Z"),
                d("1800")
            ),
            (
                format!("{id}@2026-12-01T00:00:00Z"),
                t("2026-12-01T00:00:00Z"),
                t("2026-12-01T00:30:00Z"),
                d("1800")
            ),
        ]
    );

    // November's export (samples up to 23:30) and December's, which starts with November's
    // last sample as the documentation asks: each bills its own side of midnight.
    let nov = import_with(
        &samples[..4],
        &window("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
    )
    .unwrap();
    let dec = import_with(
        &samples[3..],
        &window("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    )
    .unwrap();
    // November: 20:30 -> 00:00 = 3.5 h. December: 00:00 -> 03:30 and the last hour = 4.5 h.
    assert_eq!(total(&nov), d("12600"));
    assert_eq!(total(&dec), d("16200"));
    assert!(dec.iter().all(|r| r.start >= t("2026-12-01T00:00:00Z")));
    // The same December record as in the whole export, id included (a re-delivery dedupes).
    assert_eq!(
        dec.iter()
            .find(|r| r.start == t("2026-12-01T00:00:00Z"))
            .and_then(|r| r.record_id.clone()),
        Some(format!("{id}@2026-12-01T00:00:00Z"))
    );

    // Rated into December, the overlapping export is accepted (it used to be refused whole:
    // "starts before the period").
    let text = Value::Array(samples[3..].to_vec()).to_string();
    let rated = import_and_rate(
        Format::Ceilometer,
        text.as_bytes(),
        &catalog(),
        &ImportOptions::default(),
        BillingPeriod::month(2026, 12).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rated.usage.totals.values().next().unwrap().quantity,
        d("16200")
    );
}

#[test]
fn a_counted_quantity_belongs_to_the_window_it_was_read_in() {
    let c = |v: i64, at: &str| {
        sample_at(
            "network.outgoing.bytes",
            "cumulative",
            "B",
            json!(v),
            "tap-1",
            at,
        )
    };
    let samples = [
        c(1_000, "2026-11-30T22:00:00Z"),
        c(1_500, "2026-11-30T23:00:00Z"),
        c(2_100, "2026-12-01T00:00:00Z"),
        c(2_800, "2026-12-01T01:00:00Z"),
    ];
    let nov = import_with(
        &samples[..2],
        &window("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
    )
    .unwrap();
    let dec = import_with(
        &samples[1..],
        &window("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    )
    .unwrap();
    // November: 1,500 - 1,000. December: read at midnight 2,100 - 1,500, then 2,800 - 2,100;
    // the overlapping 23:00 sample is only December's baseline.
    assert_eq!(total(&nov), d("500"));
    assert_eq!(total(&dec), d("600") + d("700"));
    // A reading at midnight is a point on its day, inside December.
    let midnight = t("2026-12-01T00:00:00Z");
    assert!(dec.iter().any(|r| r.start == midnight && r.end == midnight));
    // One export over both gives the same records.
    let whole = import(&samples);
    assert_eq!(total(&whole), d("500") + d("600") + d("700"));
    // A reading at the window's end is the next window's: not billed here.
    let nov_with_midnight = import_with(
        &samples[..3],
        &window("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(total(&nov_with_midnight), d("500"));
}

/// Issue 18: the cumulative baseline is carried from one batch to the next, so exports that
/// do not overlap lose no interval; the record is the one an overlapping export makes.
#[test]
fn a_reading_carried_from_the_last_batch_is_the_next_ones_baseline() {
    use pricing::import::{import_reading, merge_readings, Readings};
    let c = |v: i64, at: &str| {
        sample_at(
            "network.outgoing.bytes",
            "cumulative",
            "B",
            json!(v),
            "tap-1",
            at,
        )
    };
    let nov_samples = [
        c(1_000, "2026-11-30T22:00:00Z"),
        c(1_500, "2026-11-30T23:00:00Z"),
    ];
    let dec_samples = [
        c(2_100, "2026-12-01T00:00:00Z"),
        c(2_800, "2026-12-01T01:00:00Z"),
    ];
    let read = |samples: &[Value], options: &ImportOptions| {
        let text = Value::Array(samples.to_vec()).to_string();
        let mut records = Vec::new();
        let (_, readings) = import_reading(
            Format::Ceilometer,
            text.as_bytes(),
            &catalog(),
            options,
            |_, r| {
                records.push(r.clone());
                Ok(())
            },
        )
        .unwrap();
        (records, readings)
    };
    let nov_window = window("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    let (nov, carried) = read(&nov_samples, &nov_window);
    assert_eq!(total(&nov), d("500"));
    // November leaves its last reading: 1,500 at 23:00.
    let series: Vec<_> = carried.iter().collect();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].1[0].at, t("2026-11-30T23:00:00Z"));
    assert_eq!(series[0].1[0].volume, d("1500"));
    // December without the overlap: only 2,800 - 2,100 without the carried reading...
    let mut dec_window = window("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z");
    let (alone, _) = read(&dec_samples, &dec_window);
    assert_eq!(total(&alone), d("700"));
    // ...and 600 + 700 with it, the records of an export that overlaps by the 23:00 sample.
    dec_window.ceilometer.carried = Some(std::sync::Arc::new(carried.clone()));
    let (dec, _) = read(&dec_samples, &dec_window);
    assert_eq!(total(&dec), d("600") + d("700"));
    let mut overlap_window = window("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z");
    overlap_window.ceilometer.carried = None;
    let overlapping: Vec<Value> = nov_samples[1..]
        .iter()
        .chain(&dec_samples)
        .cloned()
        .collect();
    let (overlapped, _) = read(&overlapping, &overlap_window);
    assert_eq!(dec, overlapped);
    // A carried reading later than the export's first sample (an export rated late) is not
    // used; merging keeps one reading per instant and the latest few, in any order.
    let mut later: Readings = Readings::new();
    merge_readings(&mut later, &carried);
    let (_, dec_readings) = read(&dec_samples, &dec_window);
    merge_readings(&mut later, &dec_readings);
    merge_readings(&mut later, &carried);
    let kept: Vec<_> = later
        .values()
        .next()
        .unwrap()
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(
        kept,
        vec![t("2026-11-30T23:00:00Z"), t("2026-12-01T01:00:00Z")]
    );
    let mut late_window = window("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z");
    late_window.ceilometer.carried = Some(std::sync::Arc::new(later));
    let (late_nov, _) = read(&nov_samples, &late_window);
    assert_eq!(total(&late_nov), d("500"));
    // Only the adjacent window's reading is carried: November's reading does not bridge into
    // a window starting on 2 December (1 December's export is missing or not rated yet),
    // nor into 1 December once the reading is more than one lost poll (2 h + 6 min) old.
    let (dec2, _) = read(
        &[
            c(5_000, "2026-12-02T00:00:00Z"),
            c(5_600, "2026-12-02T01:00:00Z"),
        ],
        &{
            let mut w = window("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z");
            w.ceilometer.carried = Some(std::sync::Arc::new(carried.clone()));
            w
        },
    );
    assert_eq!(total(&dec2), d("600"));
    let (dec1_late, _) = read(
        &[
            c(2_100, "2026-12-01T01:30:00Z"),
            c(2_800, "2026-12-01T02:00:00Z"),
        ],
        &dec_window,
    );
    assert_eq!(total(&dec1_late), d("700"));
    // Without a window nothing is carried, in or out.
    let mut no_window = ImportOptions::default();
    no_window.ceilometer.carried = Some(std::sync::Arc::new(carried));
    let (plain, left) = read(&dec_samples, &no_window);
    assert_eq!(total(&plain), d("700"));
    assert!(left.is_empty());
}

#[test]
fn one_traffic_published_in_bytes_and_in_gb_is_billed_once() {
    // The seed's pipeline converts bytes to GB (`.gb`) while the raw counter is still
    // published: the same traffic under two names.
    let raw = |v: i64, time: &str| {
        sample(
            "network.incoming.bytes",
            "cumulative",
            "B",
            json!(v),
            "tap-1",
            time,
        )
    };
    let gb = |v: &str, time: &str| {
        sample(
            "network.incoming.bytes.gb",
            "cumulative",
            "GB",
            json!(v),
            "tap-1",
            time,
        )
    };
    let text = Value::Array(vec![
        raw(0, "10:00"),
        gb("0", "10:00"),
        raw(2_147_483_648, "11:00"),
        gb("2", "11:00"),
        raw(3_221_225_472, "12:00"),
        gb("3", "12:00"),
    ])
    .to_string();
    let mut records = Vec::new();
    let stats = pricing::import::import(
        Format::Ceilometer,
        text.as_bytes(),
        &catalog(),
        &ImportOptions::default(),
        |_, r| {
            records.push(r);
            Ok(())
        },
    )
    .unwrap();
    // The raw bytes win: 2 GiB then 1 GiB, in bytes; the three `.gb` samples are skipped.
    assert_eq!(total(&records), d("3221225472"));
    assert!(records.iter().all(|r| r.unit == Unit::Bytes));
    // Skipped: the raw baseline and the three GB samples.
    assert_eq!(stats.skipped, 4);

    // Another resource's GB series alone is still billed.
    let only_gb = import(&[gb("1", "10:00"), gb("4", "11:00")]);
    assert_eq!(total(&only_gb), d("3"));
    assert!(only_gb.iter().all(|r| r.unit == Unit::Gigabytes));
}

#[test]
fn the_catalog_mappings_configure_the_importer() {
    let mut cat: Value =
        serde_json::from_str(include_str!("../../examples/catalogs/openstack.json")).unwrap();
    cat["mappings"] = json!({ "ceilometer": {
        "skip_unknown_counters": true,
        "account_by_project": { "tenant-acme": "acme" },
        "gauge_sample_interval_s": 600, "gauge_gap_max_s": 1200, "gauge_jitter_s": 60
    }});
    let mapped = Catalog::from_json(&cat.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let cpu = sample("cpu", "cumulative", "ns", json!(1), "vm-1", "10:00");
    let text = Value::Array(vec![cpu, tiny("10:00"), tiny("10:20"), tiny("11:00")]).to_string();
    let options = ImportOptions::for_batch(&mapped, None).unwrap();
    let records = import_all(Format::Ceilometer, text.as_bytes(), &mapped, &options).unwrap();
    // 10:00 -> 10:20 held (1,200 s), then one 600 s interval for each of the other two.
    assert_eq!(total(&records), d("1200") + d("600") + d("600"));
    assert!(records.iter().all(|r| r.account == "acme"));
    // A catalog round-trips its mappings; one without them writes none.
    let again = Catalog::from_json(&serde_json::to_string(&mapped).unwrap()).unwrap();
    assert_eq!(again.mappings, mapped.mappings);
    let mut plain: Value =
        serde_json::from_str(include_str!("../../examples/catalogs/openstack.json")).unwrap();
    plain.as_object_mut().unwrap().remove("mappings");
    let plain = Catalog::from_json(&plain.to_string()).unwrap();
    assert!(!serde_json::to_string(&plain).unwrap().contains("mappings"));

    // Bad mappings are refused where they are read (the rater's configuration checks them
    // at load), naming the path.
    let refused = |mappings: Value| {
        let mut c: Value =
            serde_json::from_str(include_str!("../../examples/catalogs/openstack.json")).unwrap();
        c["mappings"] = mappings;
        let c = Catalog::from_json(&c.to_string()).unwrap();
        ImportOptions::of_catalog(&c).unwrap_err().0[0].path.clone()
    };
    assert_eq!(
        refused(json!({"ceilometer": {"gauge_gap_max_s": 10}})),
        "$.mappings.ceilometer.gauge_gap_max_s"
    );
    assert_eq!(
        refused(json!({"ceilometer": {"gauge_jitter_s": 3600}})),
        "$.mappings.ceilometer.gauge_jitter_s"
    );
    assert_eq!(
        refused(json!({"ceilometer": {"region": "mars"}})),
        "$.mappings.ceilometer.region"
    );
    assert_eq!(
        refused(json!({"ceilometer": {"window_end": "2026-12-01T00:00:00Z"}})),
        "$.mappings.ceilometer.window_end"
    );
    assert_eq!(
        refused(json!({"cloudstack": {"rules": [
            { "usage_type": 3, "name": "IP_ADDRESS", "product": {"product": "no-such"}, "meter": {"role": "ip_hours"}, "quantity": "hours" }
        ]}})),
        "$.mappings.cloudstack.rules[0].product"
    );
}

#[test]
fn the_mapping_adds_counters_with_units_scales_and_metadata_filters() {
    let mut cat: Value =
        serde_json::from_str(include_str!("../../examples/catalogs/openstack.json")).unwrap();
    cat["meters"].as_array_mut().unwrap().push(json!({
        "id": "object.gbh", "name": "Object storage", "unit": "gigabyte_hours", "section": "Storage"
    }));
    let per_unit = |p: &str| json!({ "model": "per_unit", "unit_price": p });
    let products = cat["products"].as_array_mut().unwrap();
    products.push(
        json!({ "id": "objects", "name": "Object storage", "category": "storage", "type": "metered",
        "charges": [ { "meter": "object.gbh", "price": per_unit("0.02") } ] }),
    );
    products.push(json!({ "id": "volume-gold", "name": "Gold volume", "category": "storage", "type": "storage",
        "charges": [ { "meter": "volume.size", "price": per_unit("0.30") } ] }));
    cat["mappings"] = json!({ "ceilometer": { "counters": [
        // A custom pollster's meter in bytes, billed per GB-hour.
        { "name": "storage.objects.size", "kind": "gauge", "product": "objects",
          "meter": { "id": "object.gbh" }, "unit": "gigabyte_hours", "scale": "0.000000001" },
        // Gold volumes priced by a product of their own, whatever their aliases say.
        { "name": "volume.size", "filter": { "volume_type": "gold" }, "kind": "gauge",
          "product": "volume-gold", "meter": { "role": "storage" }, "unit": "gigabyte_hours" }
    ]}});
    let mapped = Catalog::from_json(&cat.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let objects = |time: &str| {
        sample(
            "storage.objects.size",
            "gauge",
            "B",
            json!(2_000_000_000u64),
            "bucket-1",
            time,
        )
    };
    let volume = |kind: &str, time: &str| {
        with(
            sample(
                "volume.size",
                "gauge",
                "GB",
                json!(100),
                &format!("vol-{kind}"),
                time,
            ),
            json!({ "resource_metadata": { "volume_type": kind } }),
        )
    };
    let text = Value::Array(vec![
        objects("10:00"),
        objects("11:00"),
        volume("gold", "10:00"),
        volume("ssd", "10:00"),
    ])
    .to_string();
    let options = ImportOptions::for_batch(&mapped, None).unwrap();
    let records = import_all(Format::Ceilometer, text.as_bytes(), &mapped, &options)
        .unwrap_or_else(|e| panic!("{e}"));
    let by_product = |p: &str| -> (Decimal, Vec<Unit>) {
        let rs: Vec<_> = records.iter().filter(|r| r.product == p).collect();
        (
            rs.iter().map(|r| r.quantity).sum(),
            rs.iter().map(|r| r.unit).collect(),
        )
    };
    // 2,000,000,000 B x 10^-9 = 2 GB, held two hours: 4 GB-h.
    assert_eq!(
        by_product("objects"),
        (d("4"), vec![Unit::GigabyteHours; 2])
    );
    // 100 GB for an hour each: gold by the mapping's rule, SSD by its built-in alias.
    assert_eq!(by_product("volume-gold").0, d("100"));
    assert_eq!(by_product("volume-ssd").0, d("100"));

    // A sample of the wrong type for its rule is refused, naming the field.
    let wrong = sample(
        "storage.objects.size",
        "cumulative",
        "B",
        json!(1),
        "bucket-1",
        "10:00",
    );
    let e = import_all(
        Format::Ceilometer,
        Value::Array(vec![wrong]).to_string().as_bytes(),
        &mapped,
        &options,
    )
    .unwrap_err();
    let ImportError::Records(b) = e else {
        panic!("{e}")
    };
    assert_eq!(b.errors[0].field, "counter_type");

    // Rules are checked where the mappings are read.
    cat["mappings"]["ceilometer"]["counters"][0]["unit"] = json!("gigabytes");
    cat["mappings"]["ceilometer"]["counters"][1]["product"] = json!("nothing");
    let paths: Vec<String> =
        ImportOptions::of_catalog(&Catalog::from_json(&cat.to_string()).unwrap())
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.path)
            .collect();
    assert_eq!(
        paths,
        vec![
            "$.mappings.ceilometer.counters[0].unit",
            "$.mappings.ceilometer.counters[1].product"
        ]
    );
}

mod overlapping_exports {
    //! Property: a month of samples cut into any sequence of windows, each export holding its
    //! window's samples plus the previous window's last sample of every series, bills what one
    //! export of the whole month bills. For gauges this holds when each series is polled at
    //! least once per sampling interval around the cuts (a poll lost right at a cut loses the
    //! rest of that interval: the export before cannot know the resource lived on).
    use super::*;
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn at(seconds: i64) -> String {
        (t("2026-11-01T00:00:00Z") + chrono::Duration::seconds(seconds))
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_cut_bills_what_one_export_bills(
            gaps in proptest::collection::vec(600i64..=3600, 4..60),
            steps in proptest::collection::vec(0i64..5_000, 4..60),
            cuts in proptest::collection::btree_set(1i64..200_000, 0..5),
        ) {
            // One gauge series and one cumulative series, each sample at a running sum of gaps.
            let mut samples: Vec<(i64, Value)> = Vec::new();
            let (mut s, mut v) = (0i64, 0i64);
            for (g, step) in gaps.iter().zip(&steps) {
                s += g;
                v += step;
                samples.push((s, tiny_at(&at(s))));
                samples.push((s, sample_at("network.outgoing.bytes", "cumulative", "B", json!(v), "tap-1", &at(s))));
            }
            let end = 400_000i64;
            let mut bounds = vec![0i64];
            bounds.extend(cuts.iter().copied());
            bounds.push(end);
            let rated = |from: i64, to: i64| {
                // This window's samples, and the last sample of each series before it.
                let before = samples.iter().filter(|(s, _)| *s < from).map(|(s, _)| *s).max();
                let docs: Vec<Value> = samples
                    .iter()
                    .filter(|(s, _)| (*s >= from && *s < to) || Some(*s) == before)
                    .map(|(_, x)| x.clone())
                    .collect();
                if docs.is_empty() {
                    return (Decimal::ZERO, Decimal::ZERO);
                }
                let options = window(&at(from), &at(to));
                let r = import_with(&docs, &options).unwrap_or_else(|e| panic!("{e}"));
                let sum = |u: Unit| r.iter().filter(|x| x.unit == u).map(|x| x.quantity).sum::<Decimal>();
                (sum(Unit::Seconds), sum(Unit::Bytes))
            };
            let one = rated(0, end);
            let mut parts = (Decimal::ZERO, Decimal::ZERO);
            for w in bounds.windows(2) {
                let (a, b) = rated(w[0], w[1]);
                parts.0 += a;
                parts.1 += b;
            }
            prop_assert_eq!(parts, one);
        }
    }
}
