//! Rating: each bad record is refused with its index, field, value and rule; a bad batch adds
//! nothing; aggregation keeps exact sums in the records' units.

mod common;

use common::*;
use pricing::{Aggregator, BillingPeriod, RecordRule, Unit, UsageRecord};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn feb() -> BillingPeriod {
    BillingPeriod::month(2017, 2).unwrap()
}

fn good() -> UsageRecord {
    rec(
        "acct",
        "vm-1",
        "copper",
        "vm.running",
        "1",
        Unit::Hours,
        "2017-02-03T00:00:00Z",
    )
}

#[test]
fn bad_records_name_field_value_and_rule() {
    type Edit = fn(&mut UsageRecord);
    let cases: Vec<(&str, Edit, &str, &str, RecordRule)> = vec![
        (
            "empty account",
            |r| r.account.clear(),
            "account",
            "",
            RecordRule::Empty,
        ),
        (
            "empty resource",
            |r| r.resource.clear(),
            "resource",
            "",
            RecordRule::Empty,
        ),
        (
            "unknown product",
            |r| r.product = "tin".into(),
            "product",
            "tin",
            RecordRule::UnknownProduct,
        ),
        (
            "unknown meter",
            |r| r.meter = "vm.flying".into(),
            "meter",
            "vm.flying",
            RecordRule::UnknownMeter,
        ),
        (
            "unit mismatch",
            |r| r.unit = Unit::Gigabytes,
            "unit",
            "GB",
            RecordRule::UnitMismatch {
                unit: "GB".into(),
                expected: "h".into(),
            },
        ),
        (
            "negative quantity",
            |r| r.quantity = d("-0.5"),
            "quantity",
            "-0.5",
            RecordRule::NegativeQuantity,
        ),
        (
            "absurd quantity",
            |r| r.quantity = d("1000000000000000000000.1"),
            "quantity",
            "1000000000000000000000.1",
            RecordRule::QuantityTooLarge {
                max: "1000000000000000000000".into(),
            },
        ),
        (
            "end before start",
            |r| r.end = r.start - chrono::Duration::seconds(1),
            "end",
            "2017-02-02T23:59:59+00:00",
            RecordRule::EndBeforeStart,
        ),
        (
            "before the period",
            |r| r.start = t("2017-01-31T23:00:00Z"),
            "start",
            "2017-01-31T23:00:00+00:00",
            RecordRule::OutsidePeriod {
                period: "2017-02".into(),
            },
        ),
        (
            "ends after the period",
            |r| r.end = t("2017-03-01T00:00:01Z"),
            "end",
            "2017-03-01T00:00:01+00:00",
            RecordRule::OutsidePeriod {
                period: "2017-02".into(),
            },
        ),
        (
            "unknown region",
            |r| r.region = Some("mars".into()),
            "region",
            "mars",
            RecordRule::UnknownRegion,
        ),
    ];
    let c = cloudstack();
    for (name, edit, field, value, rule) in cases {
        let mut r = good();
        edit(&mut r);
        let mut agg = Aggregator::new(&c, feb());
        let e = agg.add(7, &r).expect_err(name);
        assert_eq!(
            (e.index, e.field, e.value.as_str(), &e.rule),
            (7, field, value, &rule),
            "{name}"
        );
        assert!(agg.is_empty(), "{name}: nothing added");
    }
    // A product not sold in a region.
    let mut c = cloudstack();
    c.regions[1].unavailable.push("copper".into());
    let mut r = good();
    r.region = Some("gva1".into());
    let e = Aggregator::new(&c, feb()).add(0, &r).unwrap_err();
    assert_eq!((e.field, e.rule), ("region", RecordRule::NotInRegion));
}

#[test]
fn a_bad_batch_adds_nothing_and_lists_every_bad_record() {
    let c = cloudstack();
    let mut agg = Aggregator::new(&c, feb());
    agg.add_batch(&[good()]).unwrap();
    let before = agg.to_usage();
    let mut batch = vec![good(); 120];
    for (i, r) in batch.iter_mut().enumerate() {
        if i % 2 == 1 {
            r.product = format!("tin-{i}");
        }
    }
    let err = agg.add_batch(&batch).unwrap_err();
    assert_eq!(err.total, 60);
    assert_eq!(err.errors.len(), pricing::error::RECORD_ERRORS_SHOWN_MAX);
    assert_eq!(err.errors[0].index, 1);
    assert_eq!(agg.to_usage(), before, "the rejected batch left no trace");
    let text = err.to_string();
    assert!(text.starts_with("batch rejected: 60 bad record(s), nothing was rated\n  record 1: field `product` = `tin-1`: unknown product"));
    assert!(text.ends_with("... and 10 more"));
}

#[test]
fn aliases_resolve_and_integer_units_sum_exactly() {
    let c = cloudstack();
    let mut agg = Aggregator::new(&c, feb());
    let mut a = rec(
        "acct",
        "r",
        "network",
        "net.sent",
        "1",
        Unit::Bytes,
        "2017-02-03T00:00:00Z",
    );
    // One byte at a time, a million times: the sum stays an exact integer of bytes.
    for _ in 0..1_000_000 / 1000 {
        a.quantity = d("1000");
        agg.add(0, &a).unwrap();
    }
    let mut vm = rec(
        "acct",
        "vm",
        "5f0e1a2b-0001-4c1d-9e00-00000000c0pp",
        "vm.running",
        "2",
        Unit::Hours,
        "2017-02-03T00:00:00Z",
    );
    vm.region = Some("z0ne0000-0002-4000-8000-0000000gva1".into());
    agg.add(1, &vm).unwrap();
    let usage = agg.to_usage();
    let (k, v) = usage
        .totals
        .iter()
        .find(|(k, _)| k.meter == "net.sent")
        .unwrap();
    assert_eq!(
        (v.quantity.to_string(), v.records, k.unit),
        ("1000000".to_string(), 1000, Unit::Bytes)
    );
    let (k, _) = usage
        .totals
        .iter()
        .find(|(k, _)| k.meter == "vm.running")
        .unwrap();
    assert_eq!((k.product.as_str(), k.region.as_str()), ("copper", "gva1"));
}
