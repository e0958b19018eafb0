//! The end-to-end property suite of issue 12: arbitrary catalogs, accounts, quotes and exports through import, rating, the store, invoices and finalizing, on both stores.
//!
//! # What is generated
//!
//! - Catalogs: every currency's minor units, both rounding modes, FX rates from 10^-12 to 10^28,
//!   a month of 1 to 744 hours, a meter of every unit dimension in a unit drawn from that
//!   dimension (per 1 to 10^6 units), products charging them with every price model (per unit,
//!   graduated and volume tiers with flat fees, packages) with prices from 10^-8 to 10^12, an
//!   included quantity and a minimum, a service with fees, taxes per line or per invoice, an SLA
//!   tier with an uplift up to 1,000 % and credits, percent and fixed discounts, a term.
//!   Anything the validator refuses must be refused with a JSON path and a rule.
//! - Accounts: the catalog's currency or an FX one, with or without tax, SLA (and measured
//!   availability), discounts, a subscription of 1 to 10^20 units.
//! - Exports (canonical JSON Lines) of February 2017: records of every unit against every meter
//!   of its dimension, quantities up to the record cap (10^21), and one record repeated up to
//!   5,000 times (so that totals grow far past one record's cap).
//! - Quotes of every component type with quantities up to 10^28.
//!
//! # The properties
//!
//! - Nothing panics (a panic fails the case; proptest shrinks it).
//! - Every refusal names its cause: a catalog error has a `$` path; a batch refusal is a named
//!   `RaterError` whose record errors name field and rule; a pricing error is a named variant.
//! - A refused batch writes nothing (the store's content is unchanged).
//! - Any accepted batch yields an invoice for every account period it touched, and a final
//!   invoice, each whose shown totals add up.
//!
//! # Running it
//!
//! The test command runs `PROPS_CASES` cases on the embedded store (default 40) and
//! `PROPS_DYNAMO_CASES` on DynamoDB Local (default 6). A long campaign:
//! `PROPS_CASES=20000 cargo test -p rater --release --test properties -- --nocapture`.

mod common;

use std::sync::Arc;

use common::{Snapshot, T0};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rater::{finalize, invoice_for, RaterError, Store};
use rater::{rate_batch, BatchRequest, Mode, RaterConfig};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// A decimal with up to `digits` significant digits and a scale of 0 to `scale_max`: spans
/// tiny to huge magnitudes, written as a JSON string.
fn decimal(digits: u32, scale_max: u32) -> impl Strategy<Value = String> {
    (1u32..=digits, 0u32..=scale_max, any::<u128>()).prop_map(|(d, scale, raw)| {
        let m = raw % 10u128.pow(d);
        Decimal::from_i128_with_scale(m as i128, scale.min(28)).to_string()
    })
}

/// A positive decimal below 10^hi_exp and at least 10^-(lo_exp + 4): four significant digits
/// times a power of ten, drawn evenly over the exponents.
fn magnitude(lo_exp: u32, hi_exp: u32) -> impl Strategy<Value = String> {
    (1u64..10_000, 0u32..=(lo_exp + hi_exp)).prop_map(move |(m, e)| {
        // value = m x 10^(e - lo_exp - 4)
        let shift = e as i64 - lo_exp as i64 - 4;
        if shift >= 0 {
            let mut out = m.to_string();
            out.extend(std::iter::repeat_n('0', shift as usize));
            out
        } else {
            Decimal::from_i128_with_scale(m as i128, (-shift).min(28) as u32).to_string()
        }
    })
}

/// A percentage up to `max` (two decimals), and one time in ten anything up to 10^6: mostly
/// what the validator accepts, sometimes not.
fn pct(max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        9 => (0u32..=max * 100).prop_map(|bp| Decimal::new(i64::from(bp), 2).to_string()),
        1 => magnitude(2, 6),
    ]
}

/// Mostly `usual`, one time in ten `wild`.
fn mostly(
    usual: impl Strategy<Value = String> + 'static,
    wild: impl Strategy<Value = String> + 'static,
) -> impl Strategy<Value = String> {
    prop_oneof![9 => usual, 1 => wild]
}

const UNITS: [&[&str]; 4] = [
    &["seconds", "minutes", "hours"],
    &["bytes", "kilobytes", "megabytes", "gigabytes"],
    &["byte_hours", "gigabyte_hours", "gigabyte_months"],
    &["requests", "units"],
];

const CURRENCIES: [&str; 6] = ["JPY", "GBP", "EUR", "BHD", "KWD", "USD"];

fn tiers() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        (
            magnitude(2, 18),
            mostly(magnitude(8, 6), magnitude(8, 9)),
            magnitude(4, 9),
        ),
        1..4,
    )
    .prop_map(|ts| {
        let mut up = Decimal::ZERO;
        let n = ts.len();
        ts.into_iter()
            .enumerate()
            .map(|(i, (step, price, fee))| {
                up += step.parse::<Decimal>().unwrap_or(Decimal::ONE);
                let mut t = json!({ "unit_price": price, "flat_fee": fee });
                if i + 1 < n {
                    t["up_to"] = json!(up.to_string());
                }
                t
            })
            .collect::<Vec<_>>()
    })
}

fn price() -> impl Strategy<Value = Value> {
    let model = prop_oneof![
        mostly(magnitude(8, 6), magnitude(8, 9))
            .prop_map(|p| json!({ "model": "per_unit", "unit_price": p })),
        tiers().prop_map(|t| json!({ "model": "graduated", "tiers": t })),
        tiers().prop_map(|t| json!({ "model": "volume", "tiers": t })),
        (magnitude(3, 18), magnitude(6, 9))
            .prop_map(|(b, p)| json!({ "model": "package", "block_size": b, "block_price": p })),
    ];
    (
        model,
        prop::option::of(magnitude(2, 20)),
        prop::option::of(magnitude(4, 9)),
    )
        .prop_map(|(mut m, included, minimum)| {
            if let Some(i) = included {
                m["included"] = json!(i);
            }
            if let Some(x) = minimum {
                m["minimum"] = json!(x);
            }
            m
        })
}

/// A catalog: its JSON and, per product, the meters it charges with their dimension.
#[derive(Debug, Clone)]
struct Generated {
    catalog: Value,
    accounts: Value,
    /// (product, meter, dimension index) of every charge.
    charges: Vec<(String, String, usize)>,
}

fn catalog() -> impl Strategy<Value = Generated> {
    (
        (
            0usize..CURRENCIES.len(),
            any::<bool>(),
            prop::collection::vec(
                (0usize..CURRENCIES.len(), mostly(magnitude(4, 5), magnitude(4, 24))),
                0..3,
            ),
            1u32..=744,
            prop::array::uniform4(0usize..4),
            prop::array::uniform4(prop_oneof![Just("1"), Just("1000"), Just("1000000")]),
        ),
        prop::collection::vec(prop::collection::vec((0usize..4, price()), 1..4), 1..4),
        (magnitude(4, 9), magnitude(4, 9), pct(100), any::<bool>()),
        (
            pct(1000),
            pct(100),
            pct(100),
            mostly(magnitude(4, 8), magnitude(4, 14)),
        ),
        accounts(),
    )
        .prop_map(|(base, products, fees, pcts, accounts)| {
            let (cur, half_even, fx, hours, unit_picks, per) = base;
            let (one_time, monthly, tax_pct, line_tax) = fees;
            let (uplift, credit, discount_pct, fixed) = pcts;
            let code = CURRENCIES[cur];
            let fx_rates: serde_json::Map<String, Value> = fx
                .iter()
                .filter(|(c, _)| CURRENCIES[*c] != code)
                .map(|(c, r)| (CURRENCIES[*c].to_string(), json!(r)))
                .collect();
            let meters: Vec<Value> = (0..4)
                .map(|d| {
                    let units = UNITS[d];
                    json!({
                        "id": format!("m{d}"), "name": format!("Meter {d}"),
                        "unit": units[unit_picks[d] % units.len()],
                        "measurement_unit": per[d], "section": format!("Section {d}"),
                    })
                })
                .collect();
            let mut charges = Vec::new();
            let mut products_json: Vec<Value> = products
                .iter()
                .enumerate()
                .map(|(i, ch)| {
                    let mut seen = std::collections::BTreeSet::new();
                    let list: Vec<Value> = ch
                        .iter()
                        .filter(|(d, _)| seen.insert(*d))
                        .map(|(d, p)| {
                            charges.push((format!("p{i}"), format!("m{d}"), *d));
                            json!({ "meter": format!("m{d}"), "price": p })
                        })
                        .collect();
                    json!({ "id": format!("p{i}"), "name": format!("Product {i}"),
                            "category": if i == 0 { "compute" } else { "storage" },
                            "type": "metered", "charges": list })
                })
                .collect();
            products_json.push(json!({ "id": "svc", "name": "Service", "category": "service",
                "type": "service", "fees": { "one_time": one_time, "monthly": monthly } }));
            let mut accounts = accounts;
            let fx_codes: Vec<String> = fx_rates.keys().cloned().collect();
            for (i, a) in accounts.as_array_mut().unwrap().iter_mut().enumerate() {
                if a["currency"].as_str() == Some("fx") {
                    match fx_codes.get(i % fx_codes.len().max(1)) {
                        Some(c) => a["currency"] = json!(c),
                        None => {
                            a.as_object_mut().unwrap().remove("currency");
                        }
                    }
                }
            }
            let catalog = json!({
                "schema_version": 1, "id": "props", "version": "props-1", "name": "Generated",
                "currency": { "code": code, "rounding": if half_even { "half_even" } else { "half_up" } },
                "fx_rates": fx_rates, "hours_per_month": hours.to_string(),
                "sections": ["Section 0", "Section 1", "Section 2", "Section 3"],
                "meters": meters, "products": products_json,
                "tax_jurisdictions": [{ "id": "tax", "name": "Tax",
                    "level": if line_tax { "line" } else { "invoice" },
                    "taxes": [{ "name": "VAT", "rate_pct": tax_pct }] }],
                "sla_tiers": [{ "id": "sla", "name": "SLA", "uptime_pct": "99.9", "support_response_hours": "24",
                    "uplift_pct": uplift, "covers": ["compute", "storage"],
                    "credits": [{ "below_pct": "99.9", "credit_pct": credit }] }],
                "discounts": [
                    { "id": "pct", "name": "Percent off", "scope": { "type": "all" },
                      "value": { "type": "percent", "pct": discount_pct } },
                    { "id": "fixed", "name": "Fixed off", "scope": { "type": "product", "id": "p0" },
                      "value": { "type": "fixed", "amount": fixed } },
                ],
                "terms": [{ "id": "year", "name": "One year", "months": 12, "discount_pct": "15" }],
            });
            Generated {
                catalog,
                accounts: json!({ "schema_version": 1, "version": "props-1", "accounts": accounts }),
                charges,
            }
        })
}

fn accounts() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(pct(100)),
            prop::option::of(mostly(magnitude(0, 6), magnitude(0, 20))),
            any::<bool>(),
        ),
        1..4,
    )
    .prop_map(|list| {
        let list: Vec<Value> = list
            .into_iter()
            .enumerate()
            .map(|(i, (fx, taxed, availability, subscription, termed))| {
                let mut a = json!({ "id": format!("a{i}"), "name": format!("Account {i}") });
                if fx {
                    a["currency"] = json!("fx");
                }
                if taxed {
                    a["tax_jurisdiction"] = json!("tax");
                }
                if let Some(av) = availability {
                    a["sla_tier"] = json!("sla");
                    a["availability_pct"] = json!(av);
                }
                if let Some(q) = subscription {
                    a["subscriptions"] = json!([{ "id": "s", "product": "svc", "quantity": q,
                        "start": "2017-01-15T00:00:00Z" }]);
                }
                if termed {
                    a["term"] = json!("year");
                }
                a
            })
            .collect();
        Value::Array(list)
    })
}

/// An export of February 2017: records over the catalog's charges, one repeated many times.
fn export(g: &Generated) -> impl Strategy<Value = String> {
    let charges = g.charges.clone();
    let accounts = g.accounts["accounts"].as_array().unwrap().len();
    prop::collection::vec(
        (
            0..charges.len(),
            0..accounts,
            0usize..4,
            mostly(decimal(8, 6), decimal(22, 6)),
            1u32..28,
            1usize..5_000,
        ),
        1..6,
    )
    .prop_map(move |recs| {
        let mut out = String::new();
        for (k, (c, a, u, q, day, repeat)) in recs.into_iter().enumerate() {
            let (product, meter, d) = &charges[c];
            let unit = UNITS[*d][u % UNITS[*d].len()];
            // Only the first record repeats many times; the others once or twice.
            let times = if k == 0 { repeat } else { 1 + repeat % 2 };
            for _ in 0..times {
                out.push_str(&format!(
                    r#"{{"account":"a{a}","resource":"r{k}","product":"{product}","meter":"{meter}","quantity":"{q}","unit":"{unit}","start":"2017-02-{day:02}T00:00:00Z","end":"2017-02-{day:02}T01:00:00Z"}}"#
                ));
                out.push('\n');
            }
        }
        out
    })
}

fn quote() -> impl Strategy<Value = Value> {
    (
        0u32..1_000,
        mostly(magnitude(0, 6), magnitude(0, 28)),
        mostly(magnitude(0, 6), magnitude(0, 28)),
        mostly(magnitude(0, 6), magnitude(0, 28)),
        1u32..50,
        any::<bool>(),
    )
        .prop_map(|(count, size, gb, q, svc, sla)| {
            let mut quote = json!({ "at": "2017-02-10T00:00:00Z", "term": "year", "tax_jurisdiction": "tax",
                "tiers": [{ "name": "web", "components": [
                    { "type": "usage", "product": "p0", "meter": "m0", "quantity": q },
                    { "type": "usage", "product": "p0", "meter": "m2", "quantity": size },
                    { "type": "usage", "product": "p0", "meter": "m1", "quantity": gb },
                    { "type": "service", "product": "svc", "quantity": svc },
                    { "type": "usage", "product": "p0", "meter": "m3", "quantity": count.to_string() },
                ]}]});
            if sla {
                quote["sla_tier"] = json!("sla");
            }
            quote
        })
}

fn scenario() -> impl Strategy<Value = (Generated, String, Value)> {
    catalog().prop_flat_map(|g| {
        let e = export(&g);
        (Just(g), e, quote())
    })
}

/// How the cases ended, by kind: printed with `--nocapture`, so that a run shows which paths
/// it exercised (a suite whose catalogs are all refused proves little).
static OUTCOMES: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

fn outcome(kind: impl Into<String>) {
    *OUTCOMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(kind.into())
        .or_default() += 1;
}

fn outcomes() -> String {
    let m = OUTCOMES.lock().unwrap_or_else(|e| e.into_inner());
    m.iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One case through the whole path. `Ok` when every property held.
async fn check<S: Store + Snapshot>(
    store: &S,
    g: &Generated,
    export: &str,
    quote: &Value,
    tag: &str,
) -> Result<(), TestCaseError> {
    let mut catalog = g.catalog.clone();
    catalog["version"] = json!(format!("props-{tag}"));
    // Account ids of their own per case: a case never meets another's usage or closed periods.
    let mut accounts = g.accounts.clone();
    accounts["version"] = json!(format!("props-{tag}"));
    for a in accounts["accounts"].as_array_mut().unwrap() {
        a["id"] = json!(format!("{tag}-{}", a["id"].as_str().unwrap()));
    }
    let export = export.replace(r#""account":"a"#, &format!(r#""account":"{tag}-a"#));
    let config = match RaterConfig::from_json(&catalog.to_string(), &accounts.to_string(), "props")
    {
        Ok(mut c) => {
            c.clock = Arc::new(|| T0);
            c
        }
        Err(RaterError::Config(message)) => {
            // A refused catalog names the JSON path of each problem.
            prop_assert!(
                message.contains("$."),
                "catalog refused without a path: {message}"
            );
            let first = message.lines().nth(1).unwrap_or_default().trim();
            let path = first.split(':').next().unwrap_or_default();
            let field = path.rsplit('.').next().unwrap_or_default();
            outcome(format!(
                "catalog refused at .{}",
                field.split('[').next().unwrap_or_default()
            ));
            return Ok(());
        }
        Err(e) => return Err(TestCaseError::fail(format!("config: unexpected {e}"))),
    };
    if let Ok(q) = pricing::parse_json::<pricing::Quote>(&quote.to_string()) {
        match pricing::estimate(&config.catalog, &q) {
            Ok(e) => {
                outcome("quote estimated");
                prop_assert_eq!(e.bill.check_totals(), Ok(()))
            }
            Err(e) => {
                outcome("quote refused");
                prop_assert!(!e.to_string().is_empty())
            }
        }
    }
    let before = store.snapshot().await;
    let req = BatchRequest {
        batch_id: Some(format!("props-{tag}")),
        format: None,
        period: Some(pricing::BillingPeriod::parse("2017-02").unwrap()),
        account: None,
        mode: Mode::Interim,
        export: export.into_bytes(),
    };
    let resp = match rate_batch(store, &config, req).await {
        Ok(r) => r,
        Err(e) => {
            match &e {
                RaterError::BadRecords(b) => {
                    for r in &b.errors {
                        prop_assert!(!r.field.is_empty() && !r.rule.to_string().is_empty());
                    }
                    outcome(format!("batch refused: {}", b.errors[0].field));
                }
                RaterError::Pricing(p) => outcome(format!("batch refused: pricing: {p}")),
                e => return Err(TestCaseError::fail(format!("batch refused with {e}"))),
            }
            prop_assert!(
                store.snapshot().await == before,
                "a refused batch wrote ({})",
                e
            );
            return Ok(());
        }
    };
    prop_assert!(resp.records > 0);
    outcome("batch accepted and finalized");
    for inv in &resp.invoices {
        prop_assert_eq!(inv.check_totals(), Ok(()));
        let period = inv.period;
        let again = invoice_for(store, &config, &inv.account, period)
            .await
            .map_err(|e| TestCaseError::fail(format!("accepted, then no invoice: {e}")))?;
        prop_assert_eq!(&again.bill, &inv.bill);
        let fin = finalize(store, &config, &inv.account, period)
            .await
            .map_err(|e| TestCaseError::fail(format!("accepted, then not finalized: {e}")))?;
        prop_assert_eq!(fin.check_totals(), Ok(()));
        prop_assert_eq!(&fin.bill, &inv.bill);
    }
    Ok(())
}

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{var} must be a number"))
        })
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn any_catalog_and_export_is_refused_by_name_or_invoiced_on_the_embedded_store() {
    let mut runner = runner(cases("PROPS_CASES", 40));
    let n = std::cell::Cell::new(0u64);
    let started = std::time::Instant::now();
    runner
        .run(&scenario(), |(g, export, quote)| {
            n.set(n.get() + 1);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let dir = if std::path::Path::new("/dev/shm").is_dir() {
                tempfile::tempdir_in("/dev/shm")
            } else {
                tempfile::tempdir()
            }
            .unwrap();
            let store = rater::EmbeddedStore::open(&dir.path().join("p.redb")).unwrap();
            rt.block_on(check(&store, &g, &export, &quote, &n.get().to_string()))
        })
        .unwrap();
    println!(
        "properties: {} cases on the embedded store in {:.1} s; {}",
        n.get(),
        started.elapsed().as_secs_f64(),
        outcomes()
    );
}

#[test]
fn any_catalog_and_export_is_refused_by_name_or_invoiced_on_dynamodb_local() {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let server = e2e::DynamoLocal::shared();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "props"))
        .build();
    let store = rater::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(conf),
        format!("ratecard-props-{:08x}", fastrand::u32(..)),
    );
    rt.block_on(store.create_table()).unwrap();
    let mut runner = runner(cases("PROPS_DYNAMO_CASES", 6));
    let n = std::cell::Cell::new(0u64);
    runner
        .run(&scenario(), |(g, export, quote)| {
            n.set(n.get() + 1);
            // One table for every case: each case's catalog version, accounts and batch id are
            // its own.
            rt.block_on(check(&store, &g, &export, &quote, &format!("d{}", n.get())))
        })
        .unwrap();
}
