//! Snapshots of whole estimates and invoices, compared byte for byte. The same files are checked
//! by the native and the wasm32 runs of this suite, which proves the two targets compute
//! bit-identical results. Regenerate with `UPDATE_EXPECT=1 cargo test -p pricing --test snapshots`
//! and read the diff before committing it.

mod common;

use common::*;
use pricing::{estimate, invoice, parse_json, publish, BillingPeriod, Catalog, Quote};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn check(name: &str, expected: &str, actual: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        let path = format!("{}/tests/snapshots/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, format!("{actual}\n")).unwrap();
        return;
    }
    assert_eq!(
        expected.trim_end(),
        actual,
        "snapshot {name} differs (UPDATE_EXPECT=1 to regenerate natively)"
    );
}

fn estimate_json(catalog: &Catalog, quote_json: &str) -> String {
    let q: Quote = parse_json(quote_json).unwrap();
    let e = estimate(catalog, &q).unwrap();
    e.bill.check_totals().unwrap();
    serde_json::to_string_pretty(&e).unwrap()
}

#[test]
fn estimates_match_their_snapshots() {
    let cs = cloudstack();
    check(
        "three-tier-gold.estimate.json",
        include_str!("snapshots/three-tier-gold.estimate.json"),
        &estimate_json(
            &cs,
            include_str!("../../examples/quotes/three-tier-gold.json"),
        ),
    );
    check(
        "acme-eur.estimate.json",
        include_str!("snapshots/acme-eur.estimate.json"),
        &estimate_json(
            &publish(&cs, "acme").unwrap(),
            include_str!("../../examples/quotes/acme-eur.json"),
        ),
    );
    check(
        "openstack-vdc.estimate.json",
        include_str!("snapshots/openstack-vdc.estimate.json"),
        &estimate_json(
            &openstack(),
            include_str!("../../examples/quotes/openstack-vdc.json"),
        ),
    );
}

#[test]
fn seed_000_invoice_matches_its_snapshot() {
    let c = cloudstack();
    let a = "bu1user1";
    let records = seed_000_records();
    let feb = BillingPeriod::month(2017, 2).unwrap();
    let usage = pricing::rate(&c, feb, &records).unwrap();
    let inv = invoice(&c, &account(CLOUDSTACK_ACCOUNTS, a), feb, &usage).unwrap();
    check(
        "seed-000.invoice.json",
        include_str!("snapshots/seed-000.invoice.json"),
        &serde_json::to_string_pretty(&inv).unwrap(),
    );
}
