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
}
