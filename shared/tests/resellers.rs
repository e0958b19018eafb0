//! Reseller overlays: markup precedence, currency, hidden and renamed products, brand, and no
//! wholesale price anywhere in the published catalog.

mod common;

use common::*;
use pricing::{
    estimate, invoice, publish, BillingPeriod, Catalog, Component, Quote, QuoteTier, Unit,
};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn unit_price(c: &Catalog, product: &str, meter: &str) -> String {
    match &c.price_of(None, product, meter).unwrap().model {
        pricing::PriceModel::PerUnit { unit_price } => unit_price.to_string(),
        other => panic!("unexpected model {other:?}"),
    }
}

#[test]
fn markup_precedence_currency_and_renames() {
    let c = cloudstack();
    let p = publish(&c, "acme").unwrap();
    p.validate().unwrap();
    assert_eq!(p.currency.code, "EUR");
    assert_eq!(p.currency.rounding, pricing::RoundingMode::HalfEven);
    assert_eq!(p.id, "cloudstack-example@acme");
    // global 25 %: 2.20 x 1.25 x 1.17
    assert_eq!(unit_price(&p, "copper", "vm.running"), "3.2175");
    // storage category 40 %: 2.10 x 1.40 x 1.17
    assert_eq!(unit_price(&p, "small-disk", "volume.gbh"), "3.4398");
    // product markup 10 % beats the global one: 500 x 1.10 x 1.17
    assert_eq!(
        p.product("ddos")
            .unwrap()
            .fees()
            .unwrap()
            .monthly
            .to_string(),
        "643.5"
    );
    // region overrides are marked up too: 2.40 x 1.25 x 1.17
    assert_eq!(
        p.region("gva1").unwrap().overrides[0].price.money_values()[0].to_string(),
        "3.51"
    );
    assert!(p.product("vm-snapshots").is_none() && p.product("isos").is_none());
    assert_eq!(
        p.product("copper").unwrap().name,
        "Acme Micro (1 vCPU, 512 MB)"
    );
    assert_eq!(p.brand.as_ref().unwrap().name, "Acme Cloud");
    assert!(p.resellers.is_empty(), "no reseller sees any overlay");
    assert_eq!(p.tax_jurisdictions[0].id, "de");
    // No other currency: Acme's customers are invoiced in EUR only, so its storefront
    // estimates in EUR only (an estimate in GBP could match no invoice).
    assert!(p.fx_rates.is_empty(), "{:?}", p.fx_rates);
}

#[test]
fn published_catalog_contains_no_wholesale_price() {
    let c = cloudstack();
    let wholesale = pricing::reseller::wholesale_prices(&c);
    assert!(wholesale.len() > 20);
    let json = publish(&c, "acme").unwrap().to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut strings = Vec::new();
    collect_money_strings(&value, None, &mut strings);
    assert!(strings.len() > 20, "the walk found the published prices");
    let published: Vec<_> =
        pricing::reseller::wholesale_prices(&serde_json::from_str(&json).unwrap());
    for p in &published {
        assert!(
            !wholesale.contains(p),
            "published price {p} equals a wholesale price"
        );
    }
    for w in wholesale {
        for form in [w.to_string(), w.normalize().to_string()] {
            assert!(
                !strings.contains(&form),
                "wholesale price {form} leaked into the published catalog"
            );
        }
    }
    assert!(!json.contains("markup"), "markups are reseller secrets too");
}

/// Every string under a money-valued key (percentages such as SLA credits are not prices).
fn collect_money_strings(v: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    const MONEY_KEYS: [&str; 7] = [
        "unit_price",
        "block_price",
        "flat_fee",
        "minimum",
        "one_time",
        "monthly",
        "amount",
    ];
    match v {
        serde_json::Value::String(s) if key.is_some_and(|k| MONEY_KEYS.contains(&k)) => {
            out.push(s.clone())
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_money_strings(x, key, out)),
        serde_json::Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| collect_money_strings(x, Some(k), out)),
        _ => {}
    }
}

#[test]
fn unknown_reseller_is_a_clear_error() {
    assert_eq!(
        publish(&cloudstack(), "globex").unwrap_err().to_string(),
        "reseller `globex` is not in the catalog (catalog.resellers)"
    );
}

/// A reseller's customer sees in the storefront what its invoice says.
#[test]
fn reseller_estimate_equals_reseller_invoice() {
    let p = publish(&cloudstack(), "acme").unwrap();
    let q = Quote {
        name: "acme app".into(),
        at: t("2017-02-10T00:00:00Z"),
        region: None,
        sla_tier: None,
        currency: None,
        term: None,
        tax_jurisdiction: Some("de".into()),
        coupon: None,
        tiers: vec![QuoteTier {
            name: "app".into(),
            components: vec![Component::Compute {
                offering: "copper".into(),
                count: 2,
                hours_per_month: Some(d("100")),
                stopped_hours_per_month: None,
            }],
        }],
    };
    let e = estimate(&p, &q).unwrap();
    let feb = BillingPeriod::month(2017, 2).unwrap();
    let records = vec![
        rec(
            "c",
            "vm1",
            "copper",
            "vm.running",
            "100",
            Unit::Hours,
            "2017-02-03T00:00:00Z",
        ),
        rec(
            "c",
            "vm2",
            "copper",
            "vm.running",
            "60",
            Unit::Hours,
            "2017-02-04T00:00:00Z",
        ),
        rec(
            "c",
            "vm2",
            "copper",
            "vm.running",
            "40",
            Unit::Hours,
            "2017-02-05T00:00:00Z",
        ),
    ];
    let mut acc = bare_account("c");
    acc.tax_jurisdiction = Some("de".into());
    let inv = invoice(&p, &acc, feb, &pricing::rate(&p, feb, &records).unwrap()).unwrap();
    // 200 h x 3.2175 = 643.50; 19 % USt = 122.265, rounded half-even (the reseller's mode) to
    // 122.26; total 765.76.
    assert_eq!(inv.bill.total.to_string(), "765.76");
    assert_eq!(e.monthly_total, inv.bill.total);
}
