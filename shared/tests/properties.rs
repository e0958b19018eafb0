//! Property tests: totals add up, rating is order-independent, split-and-merge equals one batch,
//! estimates equal invoices, and no input makes the engine panic.

mod common;

use chrono::Duration;
use common::*;
use pricing::catalog::{Discount, DiscountScope, DiscountValue};
use pricing::{invoice, Aggregator, BillingPeriod, Catalog, Unit, Usage, UsageRecord};
use proptest::prelude::*;
use rust_decimal::Decimal;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const CHARGES: &[(&str, &str, Unit)] = &[
    ("copper", "vm.running", Unit::Hours),
    ("silver", "vm.stopped", Unit::Hours),
    ("bronze", "vm.running", Unit::Minutes),
    ("large-disk", "volume.gbh", Unit::ByteHours),
    ("root-volume", "volume.gbh", Unit::GigabyteHours),
    ("network", "net.sent", Unit::Bytes),
    ("network", "net.received", Unit::Megabytes),
    ("public-ip", "ip.hours", Unit::Hours),
    ("disk-io", "disk.read.requests", Unit::Requests),
    ("isolated-net", "service.hours", Unit::Seconds),
];

fn record() -> impl Strategy<Value = UsageRecord> {
    (
        0..CHARGES.len(),
        0u32..4,
        0u32..3,
        0i64..2_000_000_000,
        0u32..6,
        0i64..27 * 24,
        any::<bool>(),
    )
        .prop_map(
            |(charge, account, resource, mantissa, scale, hour, tagged)| {
                let (product, meter, unit) = CHARGES[charge];
                let start = t("2017-02-01T00:00:00Z") + Duration::hours(hour);
                UsageRecord {
                    record_id: None,
                    account: format!("acct-{account}"),
                    project: Some(format!("p{}", resource % 2)),
                    resource: format!("res-{resource}"),
                    product: product.into(),
                    meter: meter.into(),
                    quantity: Decimal::new(mantissa, scale),
                    unit,
                    start,
                    end: start + Duration::hours(1),
                    tags: if tagged && charge == 3 {
                        vec!["Billing:noDisk".into()]
                    } else {
                        vec![]
                    },
                    region: if resource == 2 {
                        Some("gva1".into())
                    } else {
                        None
                    },
                }
            },
        )
}

fn account_variant(i: u8) -> pricing::Account {
    let mut a = bare_account("acct-0");
    match i % 5 {
        0 => {}
        1 => {
            a.tax_jurisdiction = Some("ch".into());
            a.currency = Some("JPY".into());
        }
        2 => {
            a.tax_jurisdiction = Some("gb".into());
            a.sla_tier = Some("gold".into());
            a.availability_pct = Some(d("98.7"));
            a.currency = Some("BHD".into());
        }
        3 => {
            a.term = Some("1y".into());
            a.discounts = vec![
                Discount {
                    id: "r".into(),
                    name: "r".into(),
                    scope: DiscountScope::Resource("res-1".into()),
                    value: DiscountValue::Percent { pct: d("33.3") },
                    valid_from: Some(t("2017-02-10T00:00:00Z")),
                    valid_to: None,
                },
                Discount {
                    id: "f".into(),
                    name: "f".into(),
                    scope: DiscountScope::Project("p0".into()),
                    value: DiscountValue::Fixed { amount: d("7.77") },
                    valid_from: None,
                    valid_to: None,
                },
            ];
            a.tax_jurisdiction = Some("ch".into());
        }
        _ => {
            a.sla_tier = Some("standard".into());
            a.availability_pct = Some(d("99.1"));
            a.prepaid_credit = d("13.37");
            a.balance_brought_forward = d("-5.00");
        }
    }
    a
}

fn feb() -> BillingPeriod {
    BillingPeriod::month(2017, 2).unwrap()
}

fn rate_all(c: &Catalog, records: &[UsageRecord]) -> Usage {
    pricing::rate(c, feb(), records).unwrap()
}

/// Cases per property: 64 in the test suite; `FUZZ_CASES=n` for a long fuzzing campaign.
fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn shown_totals_equal_the_sum_of_their_lines(records in proptest::collection::vec(record(), 0..60), variant in 0u8..5) {
        let c = cloudstack();
        let usage = rate_all(&c, &records);
        let inv = invoice(&c, &account_variant(variant), feb(), &usage).unwrap();
        prop_assert_eq!(inv.check_totals(), Ok(()));
        for l in inv.bill.lines() {
            prop_assert!(l.amount.scale() <= 3);
        }
    }

    #[test]
    fn rating_is_order_independent(records in proptest::collection::vec(record(), 1..60), seed in any::<u64>()) {
        let c = cloudstack();
        let mut shuffled = records.clone();
        // Deterministic Fisher-Yates from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(rate_all(&c, &records), rate_all(&c, &shuffled));
    }

    /// The aggregator guesses where a record's total sits from the records before it (the same
    /// walk repeated hour after hour, one resource's meters interleaved). Repeating a random walk
    /// exercises every guess, hit or miss; the result must equal adding each record on its own.
    #[test]
    fn rating_equals_the_sum_of_single_records(records in proptest::collection::vec(record(), 1..60), walks in 1usize..4) {
        let c = cloudstack();
        let batch: Vec<UsageRecord> = (0..walks).flat_map(|_| records.iter().cloned()).collect();
        let mut alone = Usage::default();
        for r in &batch {
            alone.merge(&rate_all(&c, std::slice::from_ref(r))).unwrap();
        }
        prop_assert_eq!(rate_all(&c, &batch), alone);
    }

    #[test]
    fn splitting_a_batch_and_merging_gives_the_same_invoice(records in proptest::collection::vec(record(), 1..60), cut in 0usize..60, variant in 0u8..5) {
        let c = cloudstack();
        let cut = cut.min(records.len());
        let whole = rate_all(&c, &records);
        let mut merged = rate_all(&c, &records[..cut]);
        merged.merge(&rate_all(&c, &records[cut..])).unwrap();
        prop_assert_eq!(&whole, &merged);
        let a = account_variant(variant);
        prop_assert_eq!(invoice(&c, &a, feb(), &whole).unwrap(), invoice(&c, &a, feb(), &merged).unwrap());
    }

    #[test]
    fn usage_survives_a_json_round_trip(records in proptest::collection::vec(record(), 0..30)) {
        let c = cloudstack();
        let usage = rate_all(&c, &records);
        let back: Usage = serde_json::from_str(&serde_json::to_string(&usage).unwrap()).unwrap();
        prop_assert_eq!(usage, back);
    }

    #[test]
    fn estimate_equals_invoice_for_any_hours(hours_cents in 0i64..100_000_000, offering in 0usize..3, variant in 0u8..5) {
        let c = cloudstack();
        let product = ["copper", "silver", "bronze"][offering];
        let hours = Decimal::new(hours_cents, 2);
        let a = account_variant(variant);
        let q = pricing::Quote {
            name: String::new(),
            at: t("2017-02-10T00:00:00Z"),
            region: None,
            sla_tier: a.sla_tier.clone(),
            currency: a.currency.clone(),
            term: a.term.clone(),
            tax_jurisdiction: a.tax_jurisdiction.clone(),
            coupon: None,
            tiers: vec![pricing::QuoteTier { name: "t".into(), components: vec![pricing::Component::Compute { offering: product.into(), count: 1, hours_per_month: Some(hours), stopped_hours_per_month: None }] }],
        };
        let e = pricing::estimate(&c, &q).unwrap();
        let mut acc = bare_account("acct-0");
        acc.sla_tier = a.sla_tier.clone();
        acc.currency = a.currency.clone();
        acc.term = a.term.clone();
        acc.tax_jurisdiction = a.tax_jurisdiction.clone();
        let half = (hours / Decimal::from(3)).round_dp(2);
        let records = vec![
            rec("acct-0", "vm-a", product, "vm.running", &half.to_string(), Unit::Hours, "2017-02-02T00:00:00Z"),
            rec("acct-0", "vm-b", product, "vm.running", &(hours - half).to_string(), Unit::Hours, "2017-02-20T00:00:00Z"),
        ];
        let inv = invoice(&c, &acc, feb(), &rate_all(&c, &records)).unwrap();
        prop_assert_eq!(e.monthly_total, inv.bill.total);
    }

    #[test]
    fn no_record_makes_the_aggregator_panic(
        account in ".{0,8}", product in "[a-z.-]{0,12}", meter in "[a-z.]{0,20}",
        mantissa in any::<i64>(), scale in 0u32..29, unit in 0usize..CHARGES.len(),
        start in -10_000_000_000i64..10_000_000_000, len in -100_000i64..100_000, region in proptest::option::of(".{0,6}")
    ) {
        let c = cloudstack();
        let start = chrono::DateTime::from_timestamp(start, 0).unwrap();
        let r = UsageRecord {
            record_id: None,
            account,
            project: None,
            resource: "r".into(),
            product: if product.is_empty() { "copper".into() } else { product },
            meter: if meter.is_empty() { "vm.running".into() } else { meter },
            quantity: Decimal::new(mantissa, scale),
            unit: CHARGES[unit].2,
            start,
            end: start + Duration::seconds(len),
            tags: vec![],
            region,
        };
        let mut agg = Aggregator::new(&c, feb());
        let _ = agg.add(0, &r);
        let usage = agg.to_usage();
        let _ = invoice(&c, &bare_account(&r.account), feb(), &usage);
    }

    /// Issue 12: no quantity a quote can hold makes an estimate panic; one too large for a
    /// line is refused naming the component, and the rest is priced with totals that add up.
    #[test]
    fn no_quote_quantity_makes_an_estimate_panic(
        mantissa in any::<i128>(), scale in 0u32..29, count in any::<u32>(), which in 0usize..4,
    ) {
        let c = cloudstack();
        let q = Decimal::from_i128_with_scale(mantissa % 10i128.pow(28), scale).abs();
        let component = match which {
            0 => pricing::Component::Volume { offering: "small-disk".into(), size_gb: q, count },
            1 => pricing::Component::Compute { offering: "copper".into(), count, hours_per_month: Some(q), stopped_hours_per_month: Some(q) },
            2 => pricing::Component::Traffic { product: "net".into(), gb_in: q, gb_out: q },
            _ => pricing::Component::Usage { product: "copper".into(), meter: "vm.running".into(), quantity: q },
        };
        let quote = pricing::Quote {
            name: String::new(), at: t("2017-02-10T00:00:00Z"), region: None, sla_tier: Some("gold".into()), currency: Some("JPY".into()), term: None, tax_jurisdiction: Some("gb".into()), coupon: None,
            tiers: vec![pricing::QuoteTier { name: "t".into(), components: vec![component] }],
        };
        match pricing::estimate(&c, &quote) {
            Ok(e) => prop_assert_eq!(e.bill.check_totals(), Ok(())),
            Err(e) => prop_assert!(matches!(
                e,
                pricing::PricingError::QuantityTooLarge { .. } | pricing::PricingError::UnknownProduct { .. } | pricing::PricingError::NoPrice { .. }
            ), "{e}"),
        }
    }

    /// The validator's bound is an upper bound: no quantity up to the line maximum prices
    /// above it, for any price model.
    #[test]
    fn a_price_never_costs_more_than_its_bound(
        prices in proptest::collection::vec(0i64..100_000_000, 1..5), ups in proptest::collection::vec(1i64..1_000_000, 4),
        q_mantissa in 0i64..i64::MAX, q_scale in 0u32..10, model in 0usize..4, included in 0i64..1000,
    ) {
        use pricing::{Price, PriceModel, Tier};
        let mut up = 0i64;
        let tiers: Vec<Tier> = prices.iter().enumerate().map(|(i, p)| {
            up += ups[i % ups.len()];
            Tier { up_to: (i + 1 < prices.len()).then(|| Decimal::from(up)), unit_price: Decimal::new(*p, 4), flat_fee: Decimal::new(*p, 6) }
        }).collect();
        let m = match model {
            0 => PriceModel::PerUnit { unit_price: Decimal::new(prices[0], 4) },
            1 => PriceModel::Graduated { tiers },
            2 => PriceModel::Volume { tiers },
            _ => PriceModel::Package { block_size: Decimal::from(ups[0]), block_price: Decimal::new(prices[0], 2) },
        };
        let price = Price { model: m, included: Decimal::from(included), minimum: Some(Decimal::new(prices[0], 3)) };
        let max = pricing::price::line_quantity_max();
        let q = Decimal::new(q_mantissa, q_scale).min(max);
        let per = Decimal::from(1000);
        let bound = price.amount_bound(max, per).unwrap();
        prop_assert!(price.amount(q, per).unwrap() <= bound);
    }

    #[test]
    fn no_json_makes_the_catalog_loader_panic(text in ".{0,200}") {
        let _ = Catalog::from_json(&text);
    }

    #[test]
    fn mutated_catalogs_are_rejected_or_valid_never_panic(pos in 0usize..18_000, byte in any::<u8>()) {
        let mut bytes = CLOUDSTACK.as_bytes().to_vec();
        let pos = pos % bytes.len();
        bytes[pos] = byte;
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if let Ok(c) = Catalog::from_json(text) {
                let _ = pricing::estimate(&c, &pricing::Quote {
                    name: String::new(), at: t("2017-02-10T00:00:00Z"), region: None, sla_tier: None, currency: None, term: None, tax_jurisdiction: None, coupon: None,
                    tiers: c.templates.first().map(|t| t.tiers.clone()).unwrap_or_default(),
                });
            }
        }
    }
}
