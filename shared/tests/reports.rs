//! Usage and cost reports: every grouping and granularity against totals worked out by hand, the report of a whole period equal to the invoice's net, and bad parameters refused naming the parameter.

mod common;

use common::*;
use pricing::report::{Dimension, Granularity, Report, ReportBuilder, ReportQuery};
use pricing::{invoice, BillingPeriod, Invoice, PricingError, Unit, UsageRecord};
use proptest::prelude::*;
use rust_decimal::Decimal;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn nov() -> BillingPeriod {
    BillingPeriod::month(2026, 11).unwrap()
}

fn in_project(mut r: UsageRecord, project: &str) -> UsageRecord {
    r.project = Some(project.into());
    r
}

fn tagged(mut r: UsageRecord, tags: &[&str]) -> UsageRecord {
    r.tags = tags.iter().map(|t| t.to_string()).collect();
    r
}

/// Account `a` (domain `ROOT/acme`) on the OpenStack example catalog (EUR, m1.small 0.0320 an
/// hour, outgoing traffic 100 GB included then 0.09 a GB):
/// - vm-1, project p1: 100 h on Tue 3 Nov (3.20);
/// - vm-2, project p2: 100 h on Fri 20 Nov (3.20);
/// - vm-3, project p2: 50 h on Fri 20 Nov (1.60);
/// - vm-3, project p2: 100 GB out on 3 Nov and 200 GB out on 20 Nov: 300 GB, 100 included,
///   200 x 0.09 = 18.00, spread by quantity: 6.00 on the 3rd, 12.00 on the 20th.
///
/// Net 8.00 + 18.00 = 26.00. Tags: vm-1 `team:web` and `env:prod` (in that order), vm-2
/// `env:dev`, vm-3 `env:prod` (its traffic of the 20th also `shared`, a key without value).
fn month_of_a() -> (pricing::Catalog, pricing::Account, Invoice, pricing::Usage) {
    let c = openstack();
    let mut acc = bare_account("a");
    acc.domain = Some("ROOT/acme".into());
    let records = vec![
        tagged(
            in_project(
                rec(
                    "a",
                    "vm-1",
                    "m1.small",
                    "instance",
                    "100",
                    Unit::Hours,
                    "2026-11-03T00:00:00Z",
                ),
                "p1",
            ),
            &["team:web", "env:prod"],
        ),
        tagged(
            in_project(
                rec(
                    "a",
                    "vm-2",
                    "m1.small",
                    "instance",
                    "100",
                    Unit::Hours,
                    "2026-11-20T00:00:00Z",
                ),
                "p2",
            ),
            &["env:dev"],
        ),
        tagged(
            in_project(
                rec(
                    "a",
                    "vm-3",
                    "m1.small",
                    "instance",
                    "50",
                    Unit::Hours,
                    "2026-11-20T00:00:00Z",
                ),
                "p2",
            ),
            &["env:prod"],
        ),
        tagged(
            in_project(
                rec(
                    "a",
                    "vm-3",
                    "network",
                    "network.outgoing.bytes",
                    "100",
                    Unit::Gigabytes,
                    "2026-11-03T00:00:00Z",
                ),
                "p2",
            ),
            &["env:prod"],
        ),
        tagged(
            in_project(
                rec(
                    "a",
                    "vm-3",
                    "network",
                    "network.outgoing.bytes",
                    "200",
                    Unit::Gigabytes,
                    "2026-11-20T00:00:00Z",
                ),
                "p2",
            ),
            &["env:prod", "shared"],
        ),
    ];
    let usage = pricing::rate(&c, nov(), &records).unwrap();
    let inv = invoice(&c, &acc, nov(), &usage).unwrap();
    (c, acc, inv, usage)
}

fn report(group_by: &str, by: &str, filters: &[(&str, &str)]) -> Report {
    let (c, acc, inv, usage) = month_of_a();
    let q = ReportQuery::parse("2026-11", "2026-11", group_by, by, filters).unwrap();
    let mut b = ReportBuilder::new(q);
    let mut err = None;
    pricing::report::spread(&c, &acc, &inv, &usage, None, |p| {
        if let Err(e) = b.add(&p) {
            err = Some(e);
        }
    })
    .unwrap();
    assert_eq!(err, None);
    b.invoice();
    b.finish().unwrap()
}

/// (period, keys..., amount) of each row, for comparing with hand-made tables.
fn rows(r: &Report) -> Vec<(String, Vec<String>, Decimal)> {
    r.main
        .rows
        .iter()
        .map(|row| (row.period.to_string(), row.keys.clone(), row.amount))
        .collect()
}

fn row(period: &str, keys: &[&str], amount: &str) -> (String, Vec<String>, Decimal) {
    (
        period.to_string(),
        keys.iter().map(|k| k.to_string()).collect(),
        d(amount),
    )
}

#[test]
fn the_month_of_a_report_is_the_invoice_net() {
    let (_, _, inv, _) = month_of_a();
    assert_eq!(inv.bill.net, d("26.00"));
    let r = report("", "month", &[]);
    assert_eq!(rows(&r), vec![row("2026-11-01", &[], "26.00")]);
    assert_eq!(r.main.totals.len(), 1);
    assert_eq!(r.main.totals[0].amount, inv.bill.net);
    assert_eq!(r.main.totals[0].currency, "EUR");
}

#[test]
fn grouped_by_project_and_day() {
    let r = report("project", "day", &[]);
    assert_eq!(
        rows(&r),
        vec![
            row("2026-11-03", &["p1"], "3.20"),
            // 100 GB of the 300 GB's 18.00.
            row("2026-11-03", &["p2"], "6.00"),
            // 3.20 + 1.60 + 12.00.
            row("2026-11-20", &["p2"], "16.80"),
        ]
    );
    // p2 mixes hours and gigabytes on the 20th: no quantity.
    assert_eq!(r.main.rows[2].quantity, None);
    assert_eq!(r.main.rows[0].quantity, Some(d("100")));
    assert_eq!(r.main.rows[0].unit.as_deref(), Some("h"));
}

#[test]
fn grouped_by_resource_and_week() {
    let r = report("resource", "week", &[]);
    // 3 Nov 2026 is a Tuesday (week of Monday the 2nd), the 20th a Friday (week of the 16th).
    assert_eq!(
        rows(&r),
        vec![
            row("2026-11-02", &["vm-1"], "3.20"),
            row("2026-11-02", &["vm-3"], "6.00"),
            row("2026-11-16", &["vm-2"], "3.20"),
            row("2026-11-16", &["vm-3"], "13.60"),
        ]
    );
}

#[test]
fn grouped_by_product_meter_category_region_account_domain_and_cost_code() {
    let month = |g: &str| rows(&report(g, "month", &[]));
    let m = "2026-11-01";
    assert_eq!(
        month("product,meter"),
        vec![
            row(m, &["m1.small", "instance"], "8.00"),
            row(m, &["network", "network.outgoing.bytes"], "18.00"),
        ]
    );
    assert_eq!(
        month("category"),
        vec![row(m, &["compute"], "8.00"), row(m, &["network"], "18.00")]
    );
    // The records name no region, and neither the catalog nor the account has a default one.
    assert_eq!(month("region"), vec![row(m, &[""], "26.00")]);
    assert_eq!(
        month("account,domain"),
        vec![row(m, &["a", "ROOT/acme"], "26.00")]
    );
    assert_eq!(month("cost_code"), vec![row(m, &[""], "26.00")]);
    // Several dimensions: each alone as well (the workbook's sheets).
    let r = report("product,meter", "month", &[]);
    assert_eq!(r.by_dimension.len(), 2);
    assert_eq!(r.by_dimension[0].group_by, vec![Dimension::Product]);
    assert_eq!(r.by_dimension[1].totals[0].amount, d("26.00"));
}

#[test]
fn filters_keep_only_the_parts_named() {
    let r = report(
        "resource",
        "month",
        &[("project", "p2"), ("meter", "instance")],
    );
    assert_eq!(
        rows(&r),
        vec![
            row("2026-11-01", &["vm-2"], "3.20"),
            row("2026-11-01", &["vm-3"], "1.60"),
        ]
    );
    assert_eq!(r.main.totals[0].amount, d("4.80"));
    let none = report("resource", "month", &[("domain", "ROOT/other")]);
    assert!(none.main.rows.is_empty());
}

#[test]
fn a_line_split_three_ways_keeps_every_cent() {
    // Three VMs of one hour each: 3 x 0.032 = 0.096, billed 0.10 (half-even). Each share is
    // 0.0333...: 0.03 each rounded down, and the cent left goes to the first (the remainders
    // tie, so the earliest takes it).
    let c = openstack();
    let acc = bare_account("a");
    let records: Vec<_> = ["vm-1", "vm-2", "vm-3"]
        .iter()
        .map(|vm| {
            rec(
                "a",
                vm,
                "m1.small",
                "instance",
                "1",
                Unit::Hours,
                "2026-11-05T00:00:00Z",
            )
        })
        .collect();
    let usage = pricing::rate(&c, nov(), &records).unwrap();
    let inv = invoice(&c, &acc, nov(), &usage).unwrap();
    assert_eq!(inv.bill.net, d("0.10"));
    let q = ReportQuery::parse("2026-11-01", "2026-11-30", "resource", "day", &[]).unwrap();
    let mut b = ReportBuilder::new(q);
    pricing::report::spread(&c, &acc, &inv, &usage, None, |p| b.add(&p).unwrap()).unwrap();
    let r = b.finish().unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row("2026-11-05", &["vm-1"], "0.04"),
            row("2026-11-05", &["vm-2"], "0.03"),
            row("2026-11-05", &["vm-3"], "0.03"),
        ]
    );
}

#[test]
fn discounts_are_spread_with_the_lines() {
    // 10 % off everything: 26.00 - 2.60 = 23.40 net, p1's 3.20 becomes 2.88.
    let c = openstack();
    let (_, mut acc, _, usage) = month_of_a();
    acc.discounts = vec![serde_json::from_str(
        r#"{ "id": "d10", "name": "10 % off", "scope": { "type": "all" }, "value": { "type": "percent", "pct": "10" } }"#,
    )
    .unwrap()];
    let inv = invoice(&c, &acc, nov(), &usage).unwrap();
    assert_eq!(inv.bill.net, d("23.40"));
    let q = ReportQuery::parse("2026-11", "2026-11", "project", "month", &[]).unwrap();
    let mut b = ReportBuilder::new(q);
    pricing::report::spread(&c, &acc, &inv, &usage, None, |p| b.add(&p).unwrap()).unwrap();
    let r = b.finish().unwrap();
    assert_eq!(
        rows(&r),
        vec![
            row("2026-11-01", &["p1"], "2.88"),
            row("2026-11-01", &["p2"], "20.52"),
        ]
    );
}

#[test]
fn grouped_and_filtered_by_tag_values() {
    let month = |g: &str, f: &[(&str, &str)]| rows(&report(g, "month", f));
    let m = "2026-11-01";
    // env: prod = vm-1 3.20 + vm-3 1.60 + its traffic 18.00 = 22.80; dev = vm-2 3.20.
    assert_eq!(
        month("tag:env", &[]),
        vec![row(m, &["dev"], "3.20"), row(m, &["prod"], "22.80")]
    );
    // team: only vm-1 has it; the rest is untagged (empty).
    assert_eq!(
        month("tag:team", &[]),
        vec![row(m, &[""], "22.80"), row(m, &["web"], "3.20")]
    );
    assert_eq!(
        month("project,tag:env", &[]),
        vec![
            row(m, &["p1", "prod"], "3.20"),
            row(m, &["p2", "dev"], "3.20"),
            row(m, &["p2", "prod"], "19.60"),
        ]
    );
    assert_eq!(
        month("resource", &[("tag:env", "prod")]),
        vec![row(m, &["vm-1"], "3.20"), row(m, &["vm-3"], "19.60")]
    );
    // A key without a value (`shared`, on the 20th's traffic) reads empty, like its absence.
    assert_eq!(month("tag:shared", &[]), vec![row(m, &[""], "26.00")]);
    let e = ReportQuery::parse("2026-11", "2026-11", "tag:", "month", &[]).unwrap_err();
    assert_eq!(e.field, "group_by");
    assert!(e.message.contains("tag:KEY"), "{e}");
    // The tag's key is written as given; the report names it in its groupings.
    let r = report("tag:env", "month", &[("tag:team", "web")]);
    assert_eq!(rows(&r), vec![row(m, &["prod"], "3.20")]);
    assert_eq!(r.main.group_by, vec![Dimension::Tag("env".into())]);
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains(r#""group_by":["tag:env"]"#), "{json}");
    assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
    // Tags are kept per total: records of one resource and day with other tags (none here)
    // would be another; the same tags in another order are the same total.
    let (_, _, _, usage) = month_of_a();
    let vm1 = usage.totals.keys().find(|k| k.resource == "vm-1").unwrap();
    assert_eq!(
        vm1.tags,
        vec!["env:prod".to_string(), "team:web".to_string()]
    );
}

#[test]
fn bad_parameters_are_refused_naming_the_parameter() {
    let err = |from: &str, to: &str, g: &str, by: &str, f: &[(&str, &str)]| {
        ReportQuery::parse(from, to, g, by, f).unwrap_err()
    };
    let e = err("2026-11", "2026-11", "project,flavor", "day", &[]);
    assert_eq!(e.field, "group_by");
    assert!(e.message.contains("`flavor` is not a grouping"), "{e}");
    assert!(e.message.contains("cost_code"), "{e}");
    let e = err("2026-11", "2026-11", "project,project", "day", &[]);
    assert_eq!(e.field, "group_by");
    let e = err("2026-12-01", "2026-11-30", "", "day", &[]);
    assert_eq!(e.to_string(), "to: 2026-11-30 is before `from` 2026-12-01");
    // 13 months are a report; a day more is not.
    assert!(ReportQuery::parse("2026-01-01", "2027-01-31", "", "month", &[]).is_ok());
    let e = err("2026-01-01", "2027-02-01", "", "month", &[]);
    assert_eq!(e.field, "to");
    assert!(e.message.contains("longer than 13 months"), "{e}");
    let e = err("2026-13", "2027-01", "", "month", &[]);
    assert_eq!(e.field, "from");
    let e = err("2026-11", "2026-11", "", "hour", &[]);
    assert_eq!(e.field, "by");
    let e = err("2026-11", "2026-11", "", "day", &[("colour", "red")]);
    assert_eq!(e.field, "filter");
    let e = err("2026-11", "2026-11", "", "day", &[("project", " , ")]);
    assert_eq!(e.to_string(), "filter: `project` filters on no value");
    assert_eq!(Granularity::parse("Week"), Ok(Granularity::Week));
    let e = err("1999-12", "2000-01", "", "month", &[]);
    assert_eq!(e.field, "from");
    assert!(e.message.contains("outside the years 2000 to 2199"), "{e}");
    // The same dimension twice keeps either's values.
    let q = ReportQuery::parse(
        "2026-11",
        "2026-11",
        "",
        "day",
        &[("project", "a"), ("project", "b,c")],
    )
    .unwrap();
    assert_eq!(q.filters.len(), 1);
    assert_eq!(q.filters[0].values, ["a", "b", "c"]);
    // Errors reach callers as pricing errors too.
    let p: PricingError = PricingError::Report(e);
    assert!(p.to_string().starts_with("from: "));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the usage, every grouping of a whole month's report adds up to the invoice's
    /// net, to the cent.
    #[test]
    fn every_grouping_of_a_month_adds_up_to_the_net(
        vms in prop::collection::vec((0u8..4, 0u8..3, 1u32..28, 1u32..500, any::<bool>()), 1..12),
        group in 0usize..9,
        by in 0usize..3,
    ) {
        let c = openstack();
        let acc = bare_account("a");
        let flavors = ["m1.tiny", "m1.small", "m1.medium", "m1.large"];
        let records: Vec<UsageRecord> = vms
            .iter()
            .enumerate()
            .map(|(i, (f, p, day, q, traffic))| {
                let start = format!("2026-11-{day:02}T00:00:00Z");
                let r = if *traffic {
                    rec("a", &format!("vm-{i}"), "network", "network.outgoing.bytes", &q.to_string(), Unit::Gigabytes, &start)
                } else {
                    rec("a", &format!("vm-{i}"), flavors[usize::from(*f)], "instance", &format!("{q}.5"), Unit::Hours, &start)
                };
                in_project(r, &format!("p{p}"))
            })
            .collect();
        let usage = pricing::rate(&c, nov(), &records).unwrap();
        let inv = invoice(&c, &acc, nov(), &usage).unwrap();
        let dim = Dimension::ALL[group].name();
        let by = ["day", "week", "month"][by];
        let q = ReportQuery::parse("2026-11", "2026-11", &dim, by, &[]).unwrap();
        let mut b = ReportBuilder::new(q);
        pricing::report::spread(&c, &acc, &inv, &usage, None, |p| b.add(&p).unwrap()).unwrap();
        let r = b.finish().unwrap();
        let sum: Decimal = r.main.rows.iter().map(|row| row.amount).sum();
        prop_assert_eq!(sum, inv.bill.net);
        prop_assert_eq!(r.main.totals[0].amount, inv.bill.net);
    }
}
