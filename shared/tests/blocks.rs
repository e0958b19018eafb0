//! Seed 002 (Atomia): an account's invoice in one block per virtual datacenter (project), each with its sections and total, adding up to the invoice.

mod common;

use common::*;
use pricing::blocks::BlockBy;
use pricing::invoice::Subscription;
use pricing::{invoice, BillingPeriod, Unit, UsageRecord};
use rust_decimal::Decimal;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn nov() -> BillingPeriod {
    BillingPeriod::month(2026, 11).unwrap()
}

fn hours(project: &str, vm: &str, product: &str, h: &str) -> UsageRecord {
    let mut r = rec(
        "vdc",
        vm,
        product,
        "instance",
        h,
        Unit::Hours,
        "2026-11-03T00:00:00Z",
    );
    r.project = Some(project.into());
    r
}

/// (block, [(description, quantity, amount)], total) of each block.
type Shown = Vec<(String, Vec<(String, Decimal, Decimal)>, Decimal)>;

fn shown(inv: &pricing::Invoice) -> Shown {
    inv.blocks
        .iter()
        .map(|b| {
            let lines = b
                .sections
                .iter()
                .flat_map(|s| &s.lines)
                .map(|l| (l.description.clone(), l.quantity, l.amount))
                .collect();
            (b.name.clone(), lines, b.total)
        })
        .collect()
}

#[test]
fn two_virtual_datacenters_are_two_blocks_that_add_up_to_the_invoice() {
    let c = openstack();
    let mut acc = bare_account("vdc");
    acc.invoice_blocks = Some(BlockBy::Project);
    acc.subscriptions = vec![Subscription {
        id: "vdc-web-plan".into(),
        product: "VDC-SMALL".into(),
        quantity: d("1"),
        project: Some("vdc-web".into()),
        start: t("2026-10-01T00:00:00Z"),
        end: None,
        changes: vec![],
    }];
    let records = [
        hours("vdc-web", "vm-w1", "m1.small", "300"),
        hours("vdc-web", "vm-w2", "m1.tiny", "100"),
        hours("vdc-db", "vm-d1", "m1.small", "200"),
        hours("vdc-db", "vm-d2", "m1.large", "10"),
    ];
    let usage = pricing::rate(&c, nov(), &records).unwrap();
    let inv = invoice(&c, &acc, nov(), &usage).unwrap();
    inv.check_totals().unwrap();
    let l = |desc: &str, q: &str, a: &str| (desc.to_string(), d(q), d(a));
    // By hand. Small instances: 500 h x 0.032 = 16.00 on one line, split by hours: web
    // 300/500 = 9.60, db 6.40. Tiny 100 h x 0.008 = 0.80 (web); large 10 h x 0.128 = 1.28
    // (db); the VDC-SMALL plan, 49.00 a month, is web's.
    assert_eq!(
        shown(&inv),
        vec![
            (
                "vdc-db".to_string(),
                vec![
                    l("Small instance", "200", "6.40"),
                    l("Large instance", "10", "1.28")
                ],
                d("7.68")
            ),
            (
                "vdc-web".to_string(),
                vec![
                    l("Tiny instance", "100", "0.80"),
                    l("Small instance", "300", "9.60"),
                    l("Virtual datacenter Small", "1", "49.00"),
                ],
                d("59.40")
            ),
        ]
    );
    // The blocks add up to the invoice's subtotal: 7.68 + 59.40.
    assert_eq!(inv.bill.subtotal, d("67.08"));
}

#[test]
fn a_line_split_unevenly_keeps_its_cents_by_largest_remainder() {
    let c = openstack();
    let mut acc = bare_account("vdc");
    acc.invoice_blocks = Some(BlockBy::Project);
    let records = [
        hours("a", "vm-1", "m1.small", "1"),
        hours("b", "vm-2", "m1.small", "2"),
    ];
    let inv = invoice(
        &c,
        &acc,
        nov(),
        &pricing::rate(&c, nov(), &records).unwrap(),
    )
    .unwrap();
    inv.check_totals().unwrap();
    // 3 h x 0.032 = 0.096 -> 0.10. a: 0.0333 -> 0.03, b: 0.0667 -> 0.06, and the cent left
    // goes to the larger remainder, b: 0.07. 0.03 + 0.07 = 0.10.
    let totals: Vec<(String, Decimal)> = inv
        .blocks
        .iter()
        .map(|b| (b.name.clone(), b.total))
        .collect();
    assert_eq!(
        totals,
        vec![("a".into(), d("0.03")), ("b".into(), d("0.07"))]
    );
    // Without blocks the invoice is unchanged and has none.
    acc.invoice_blocks = None;
    let plain = invoice(
        &c,
        &acc,
        nov(),
        &pricing::rate(&c, nov(), &records).unwrap(),
    )
    .unwrap();
    assert!(plain.blocks.is_empty());
    assert_eq!(plain.bill, inv.bill);
}
