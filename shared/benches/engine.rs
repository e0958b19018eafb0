//! Pricing engine benchmark: rating + aggregation of 1M in-memory records, invoicing the result,
//! and estimating a 200-line quote. Run with `cargo bench -p pricing --bench engine`.
//!
//! Targets (issue #2): rating >= 2M records/s on one core; a 200-line estimate <= 100 us.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use pricing::{
    estimate, invoice, Aggregator, BillingPeriod, Catalog, Component, Quote, QuoteTier, Unit,
    UsageRecord,
};
use rust_decimal::Decimal;

const CATALOG: &str = include_str!("../../examples/catalogs/cloudstack.json");
const RECORDS: usize = 1_000_000;

fn records(n: usize) -> Vec<UsageRecord> {
    let charges: [(&str, &str, Unit); 8] = [
        ("copper", "vm.running", Unit::Hours),
        ("silver", "vm.running", Unit::Hours),
        ("bronze", "vm.stopped", Unit::Hours),
        ("large-disk", "volume.gbh", Unit::ByteHours),
        ("root-volume", "volume.gbh", Unit::ByteHours),
        ("network", "net.sent", Unit::Bytes),
        ("public-ip", "ip.hours", Unit::Hours),
        ("isolated-net", "service.hours", Unit::Hours),
    ];
    let start: DateTime<Utc> = "2017-02-01T00:00:00Z".parse().unwrap();
    (0..n)
        .map(|i| {
            let (product, meter, unit) = charges[i % charges.len()];
            // 1,000 accounts x 10 resources each, hourly records over 28 days.
            let resource = i / charges.len() % 10_000;
            let hour = (i / 80_000 % 672) as i64;
            let s = start + Duration::hours(hour);
            UsageRecord {
                record_id: None,
                account: format!("acct-{}", resource / 10),
                project: Some(format!("proj-{}", resource % 3)),
                resource: format!("res-{resource}"),
                product: product.into(),
                meter: meter.into(),
                quantity: Decimal::new(((i * 7919) % 100_000) as i64 + 1, 4),
                unit,
                start: s,
                end: s + Duration::hours(1),
                tags: Vec::new(),
                region: None,
            }
        })
        .collect()
}

fn quote(lines: usize) -> Quote {
    let offerings = ["copper", "silver", "bronze"];
    let disks = ["small-disk", "medium-disk", "large-disk", "root-volume"];
    let tiers = (0..10)
        .map(|t| QuoteTier {
            name: format!("tier-{t}"),
            components: (0..lines / 10)
                .map(|i| match i % 4 {
                    0 | 1 => Component::Compute {
                        offering: offerings[i % 3].into(),
                        count: (i % 5 + 1) as u32,
                        hours_per_month: None,
                        stopped_hours_per_month: None,
                    },
                    2 => Component::Volume {
                        offering: disks[i % 4].into(),
                        size_gb: Decimal::from(20 + i),
                        count: 1,
                    },
                    _ => Component::Ip {
                        product: "public-ip".into(),
                        count: 1,
                    },
                })
                .collect(),
        })
        .collect();
    Quote {
        name: "bench".into(),
        at: "2017-02-10T00:00:00Z".parse().unwrap(),
        region: None,
        sla_tier: Some("gold".into()),
        currency: Some("EUR".into()),
        term: Some("1y".into()),
        tax_jurisdiction: Some("gb".into()),
        coupon: None,
        tiers,
    }
}

fn main() {
    let catalog = Catalog::from_json(CATALOG).unwrap();
    // `cargo bench -p pricing --bench engine -- estimate` runs only the parts whose name matches.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |part: &str| only.is_empty() || only.iter().any(|o| part.contains(o.as_str()));
    if run("rate") {
        bench_rating(&catalog);
    }
    if run("estimate") {
        bench_estimate(&catalog);
    }
    if run("import") {
        bench_import(&catalog);
    }
}

/// Canonical CSV of the same 1M records, held in memory: parse-only against import + rating.
fn bench_import(catalog: &Catalog) {
    use pricing::import::{
        import_and_rate, import_each, write_csv_row, Format, ImportOptions, CSV_HEADER,
    };
    let period = BillingPeriod::month(2017, 2).unwrap();
    let mut csv = String::with_capacity(RECORDS * 120);
    csv.push_str(CSV_HEADER);
    csv.push('\n');
    // Every record carries an id, as the rater benchmark's do (exports usually have them).
    for (i, mut r) in records(RECORDS).into_iter().enumerate() {
        r.record_id = Some(format!("r{i}"));
        write_csv_row(&r, &mut csv).unwrap();
    }
    let options = ImportOptions::default();
    let mut parse = f64::MAX;
    let mut rate = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let stats = import_each(Format::Csv, csv.as_bytes(), catalog, &options, |_, r| {
            black_box(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(stats.records, RECORDS as u64);
        parse = parse.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let rated =
            import_and_rate(Format::Csv, csv.as_bytes(), catalog, &options, period).unwrap();
        black_box(&rated);
        rate = rate.min(t.elapsed().as_secs_f64());
    }
    println!(
        "import (canonical CSV, {} MB in memory): parse only {:.2} M records/s; parse + rate + aggregate {:.2} M records/s ({:.2}x parse-only)",
        csv.len() / 1_000_000,
        RECORDS as f64 / parse / 1e6,
        RECORDS as f64 / rate / 1e6,
        rate / parse
    );
}

fn bench_rating(catalog: &Catalog) {
    let catalog = catalog.clone();
    let period = BillingPeriod::month(2017, 2).unwrap();

    let recs = records(RECORDS);
    let mut best = f64::MAX;
    let mut aggregates = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut agg = Aggregator::new(&catalog, period);
        for (i, r) in recs.iter().enumerate() {
            agg.add(i, r).unwrap();
        }
        aggregates = agg.len();
        black_box(&agg);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "rate+aggregate: {RECORDS} records in {:.3} s = {:.2} M records/s (best of 3, one core); {aggregates} aggregates",
        best,
        RECORDS as f64 / best / 1e6
    );

    let mut agg = Aggregator::new(&catalog, period);
    for (i, r) in recs.iter().enumerate() {
        agg.add(i, r).unwrap();
    }
    let usage = agg.to_usage();
    let accounts = usage.accounts();
    let mut per_account: std::collections::BTreeMap<String, pricing::Usage> = Default::default();
    for (k, v) in usage.totals {
        per_account
            .entry(k.account.clone())
            .or_default()
            .totals
            .insert(k, v);
    }
    let t = Instant::now();
    let mut lines = 0;
    for a in &accounts {
        let mut acc = pricing::Account {
            id: a.clone(),
            name: a.clone(),
            address: vec![],
            domain: None,
            country: None,
            vat_id: None,
            currency: None,
            region: None,
            tax_jurisdiction: Some("gb".into()),
            sla_tier: None,
            availability_pct: None,
            term: None,
            subscriptions: vec![],
            discounts: vec![],
            prices: vec![],
            invoice_blocks: None,
            coupons: Vec::new(),
            cost_codes: Vec::new(),
            prepaid_credit: Decimal::ZERO,
            balance_brought_forward: Decimal::ZERO,
            payments: vec![],
            billing_period: pricing::PeriodKind::Month,
            payment_terms_days: 30,
            late_usage: None,
            reseller: None,
            resells: None,
        };
        acc.currency = None;
        let inv = invoice(&catalog, &acc, period, &per_account[a]).unwrap();
        lines += inv.bill.lines().count();
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "invoice: {} accounts ({lines} lines) in {:.3} s = {:.1} us/invoice",
        accounts.len(),
        dt,
        dt / accounts.len() as f64 * 1e6
    );
}

fn bench_estimate(catalog: &Catalog) {
    let catalog = catalog.clone();

    let q = quote(200);
    let n = 2_000;
    for _ in 0..100 {
        black_box(estimate(&catalog, &q).unwrap());
    }
    let t = Instant::now();
    for _ in 0..n {
        black_box(estimate(&catalog, black_box(&q)).unwrap());
    }
    let per = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "estimate: 200-line quote in {:.1} us (mean of {n})",
        per * 1e6
    );
}
