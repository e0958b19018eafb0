//! Seed 004 (StratosLive): usage plans carry allowances and over-usage prices; the month's usage is held against the plan active when the bill is generated, and the estimate prices a plan the same way.

mod common;

use common::*;
use pricing::invoice::{PlanChange, Subscription};
use pricing::{estimate, invoice, BillingPeriod, Catalog, Quote, Unit};
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The example catalog plus StratosLive's meters and plans: bandwidth at 0.20 a GB and
/// registry storage at 0.10 a GB; SMB (30.00 a month) includes 10 GB of bandwidth (0.15 a GB
/// beyond) and 5 GB of storage; Demo (free) includes 1 GB of bandwidth (0.50 a GB beyond) and
/// 0.5 GB of storage (the meter's own 0.10 beyond).
fn catalog() -> Catalog {
    let mut c: Value = serde_json::from_str(CLOUDSTACK).unwrap();
    let meters = c["meters"].as_array_mut().unwrap();
    meters.push(json!({ "id": "bandwidth", "name": "Bandwidth", "unit": "gigabytes", "section": "Network" }));
    meters.push(json!({ "id": "registry", "name": "Registry storage", "unit": "gigabytes", "section": "Storage" }));
    let per_unit = |p: &str| json!({ "model": "per_unit", "unit_price": p });
    let products = c["products"].as_array_mut().unwrap();
    products.push(json!({ "id": "stratos", "name": "StratosLive usage", "category": "service", "type": "metered",
        "charges": [ { "meter": "bandwidth", "price": per_unit("0.20") }, { "meter": "registry", "price": per_unit("0.10") } ] }));
    products.push(
        json!({ "id": "smb", "name": "SMB plan", "category": "service", "type": "service",
        "fees": { "one_time": "0", "monthly": "30.00" },
        "allowances": [ { "meter": "bandwidth", "included": "10", "overage": per_unit("0.15") },
                        { "meter": "registry", "included": "5" } ] }),
    );
    products.push(
        json!({ "id": "demo", "name": "Demo plan", "category": "service", "type": "service",
        "fees": { "one_time": "0", "monthly": "0" },
        "allowances": [ { "meter": "bandwidth", "included": "1", "overage": per_unit("0.50") },
                        { "meter": "registry", "included": "0.5" } ] }),
    );
    Catalog::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

fn feb() -> BillingPeriod {
    BillingPeriod::month(2017, 2).unwrap()
}

/// 12 GB of bandwidth and 3 GB of registry storage in February.
fn usage(c: &Catalog) -> pricing::Usage {
    let r = |meter: &str, q: &str| {
        rec(
            "t",
            "tenant",
            "stratos",
            meter,
            q,
            Unit::Gigabytes,
            "2017-02-10T00:00:00Z",
        )
    };
    pricing::rate(c, feb(), &[r("bandwidth", "12"), r("registry", "3")]).unwrap()
}

fn amounts(inv: &pricing::Invoice) -> Vec<(String, Decimal)> {
    inv.bill
        .lines()
        .map(|l| (l.description.clone(), l.amount))
        .collect()
}

#[test]
fn over_usage_is_held_against_the_plan_active_when_the_bill_is_generated() {
    let c = catalog();
    let mut acc = bare_account("t");
    // SMB for 5 days, then Demo from 6 February (seed 004's sample invoice).
    acc.subscriptions = vec![Subscription {
        id: "plan".into(),
        product: "smb".into(),
        quantity: d("1"),
        project: None,
        start: t("2017-01-01T00:00:00Z"),
        end: None,
        changes: vec![PlanChange {
            at: t("2017-02-06T00:00:00Z"),
            product: "demo".into(),
        }],
    }];
    let inv = invoice(&c, &acc, feb(), &usage(&c)).unwrap();
    inv.check_totals().unwrap();
    // By hand: SMB 30.00 x 5/28 = 5.357 -> 5.36, Demo free. Demo is active at the end:
    // bandwidth (12 - 1) x 0.50 = 5.50; storage (3 - 0.5) x 0.10 (no over-usage price) = 0.25.
    assert_eq!(
        amounts(&inv),
        vec![
            (
                "StratosLive usage, 0.5 GB included in Demo plan".to_string(),
                d("0.25")
            ),
            (
                "StratosLive usage, 1 GB included in Demo plan".to_string(),
                d("5.50")
            ),
            ("SMB plan".to_string(), d("5.36")),
            ("Demo plan".to_string(), d("0.00")),
        ]
    );
    assert_eq!(inv.bill.subtotal, d("11.11"));

    // Staying on SMB: 30.00, bandwidth (12 - 10) x 0.15 = 0.30, storage inside the 5 GB.
    acc.subscriptions[0].changes.clear();
    let inv = invoice(&c, &acc, feb(), &usage(&c)).unwrap();
    assert_eq!(
        amounts(&inv),
        vec![
            (
                "StratosLive usage, 3 GB included in SMB plan".to_string(),
                d("0.00")
            ),
            (
                "StratosLive usage, 10 GB included in SMB plan".to_string(),
                d("0.30")
            ),
            ("SMB plan".to_string(), d("30.00")),
        ]
    );

    // No plan: the meters' own prices, 12 x 0.20 + 3 x 0.10.
    acc.subscriptions.clear();
    let inv = invoice(&c, &acc, feb(), &usage(&c)).unwrap();
    assert_eq!(inv.bill.subtotal, d("2.70"));
}

#[test]
fn the_estimate_prices_a_plan_as_its_invoice_does() {
    let c = catalog();
    let quote: Quote = serde_json::from_value(json!({
        "name": "SMB tenant", "at": "2017-02-01T00:00:00Z",
        "tiers": [ { "name": "app", "components": [
            { "type": "service", "product": "smb", "quantity": 1 },
            { "type": "usage", "product": "stratos", "meter": "bandwidth", "quantity": "12" },
            { "type": "usage", "product": "stratos", "meter": "registry", "quantity": "3" } ] } ]
    }))
    .unwrap();
    let e = estimate(&c, &quote).unwrap();
    e.bill.check_totals().unwrap();
    let line = |meter: &str| {
        e.bill
            .lines()
            .find(|l| l.meter.as_deref() == Some(meter))
            .unwrap()
            .amount
    };
    // The same month as the invoice on SMB: 0.30 of bandwidth, storage included.
    assert_eq!(line("bandwidth"), d("0.30"));
    assert_eq!(line("registry"), d("0.00"));
}

#[test]
fn allowances_are_checked_at_their_path() {
    let mut c: Value = serde_json::to_value(catalog()).unwrap();
    let products = c["products"].as_array_mut().unwrap();
    let smb = products.iter_mut().find(|p| p["id"] == "smb").unwrap();
    smb["allowances"] = json!([
        { "meter": "nothing", "included": "1" },
        { "meter": "bandwidth", "included": "-1", "overage": { "model": "per_unit", "unit_price": "-2" } }
    ]);
    let e = Catalog::from_json(&c.to_string()).unwrap_err();
    let paths: Vec<String> = e.0.iter().map(|e| e.path.clone()).collect();
    assert!(
        paths.iter().any(|p| p.ends_with("allowances[0].meter")),
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("allowances[1].overage.unit_price")),
        "{paths:?}"
    );
    assert!(
        paths.iter().any(|p| p.ends_with("allowances[1].included")),
        "{paths:?}"
    );
    // Only plans (services and packages) carry allowances.
    let mut c: Value = serde_json::to_value(catalog()).unwrap();
    let products = c["products"].as_array_mut().unwrap();
    let copper = products.iter_mut().find(|p| p["id"] == "copper").unwrap();
    copper["allowances"] = json!([{ "meter": "bandwidth", "included": "1" }]);
    assert!(Catalog::from_json(&c.to_string()).is_err());
}
