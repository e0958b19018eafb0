//! Snapshots of whole estimates and invoices, compared byte for byte. The same files are checked
//! by the native and the wasm32 runs of this suite, which proves the two targets compute
//! bit-identical results. Regenerate with `UPDATE_EXPECT=1 cargo test -p pricing --test snapshots`
//! and read the diff before committing it.

mod common;

use common::*;
use pricing::{estimate, invoice, parse_json, publish, BillingPeriod, Catalog, Quote, Unit};

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
    let at = "2017-02-14T00:00:00Z";
    let a = "bu1user1";
    let records = vec![
        rec(
            a,
            "vm-1",
            "copper",
            "vm.running",
            "1343.5955",
            Unit::Hours,
            at,
        ),
        rec(
            a,
            "vm-2",
            "silver",
            "vm.running",
            "2311.6167",
            Unit::Hours,
            at,
        ),
        rec(
            a,
            "vm-3",
            "bronze",
            "vm.running",
            "1046.1633",
            Unit::Hours,
            at,
        ),
        rec(a, "vm-3", "bronze", "vm.stopped", "671.72", Unit::Hours, at),
        rec(a, "vm-2", "silver", "vm.stopped", "374.85", Unit::Hours, at),
        rec(
            a,
            "vol-1",
            "small-disk",
            "volume.gbh",
            "3606730106.1376",
            Unit::ByteHours,
            at,
        ),
        rec(
            a,
            "vol-2",
            "large-disk",
            "volume.gbh",
            "238966.67",
            Unit::GigabyteHours,
            at,
        ),
        rec(a, "ip-1", "public-ip", "ip.hours", "3738", Unit::Hours, at),
    ];
    let feb = BillingPeriod::month(2017, 2).unwrap();
    let usage = pricing::rate(&c, feb, &records).unwrap();
    let inv = invoice(&c, &account(CLOUDSTACK_ACCOUNTS, a), feb, &usage).unwrap();
    check(
        "seed-000.invoice.json",
        include_str!("snapshots/seed-000.invoice.json"),
        &serde_json::to_string_pretty(&inv).unwrap(),
    );
}
