//! Abiquo account periods (seed 003): an account billed by the day or the week is granted its monthly allowances and minimums once per month, not once per period.

mod common;

use common::*;
use pricing::{invoice_with, BillingPeriod, Catalog, PeriodKind, Statement, Unit, Usage};
use rust_decimal::Decimal;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The example catalog with Copper at 0.10 an hour, its first 200 hours of a month included
/// and a 5.00 monthly minimum.
fn catalog() -> Catalog {
    let mut c: serde_json::Value = serde_json::from_str(CLOUDSTACK).unwrap();
    let products = c["products"].as_array_mut().unwrap();
    let copper = products.iter_mut().find(|p| p["id"] == "copper").unwrap();
    copper["charges"][0]["price"] = serde_json::json!({
        "model": "per_unit", "unit_price": "0.10", "included": "200", "minimum": "5.00"
    });
    Catalog::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// Ten hours of Copper on `day` (a date in January 2017).
fn day_usage(c: &Catalog, day: u32) -> (BillingPeriod, Usage) {
    let period = BillingPeriod::parse(&format!("2017-01-{day:02}")).unwrap();
    let r = rec(
        "abq",
        "vm-1",
        "copper",
        "vm.running",
        "10",
        Unit::Hours,
        &format!("2017-01-{day:02}T08:00:00Z"),
    );
    (period, pricing::rate(c, period, &[r]).unwrap())
}

fn copper_net(inv: &pricing::Invoice) -> Decimal {
    inv.bill
        .lines()
        .filter(|l| l.product == "copper")
        .map(|l| l.amount)
        .sum()
}

#[test]
fn a_day_billed_account_is_granted_the_monthly_allowance_and_minimum_once() {
    let c = catalog();
    let mut acc = bare_account("abq");
    acc.billing_period = PeriodKind::Day;
    let mut before = Usage::default();
    let mut daily = Vec::new();
    for day in 1..=31 {
        let (period, usage) = day_usage(&c, day);
        let mut st = Statement::from_book(&acc, period);
        st.month_before = Some(before.clone());
        let inv = invoice_with(&c, &acc, period, &usage, &st).unwrap();
        inv.check_totals().unwrap();
        daily.push(copper_net(&inv));
        before.merge(&usage).unwrap();
    }
    // By hand: 310 hours in the month, 200 included, 110 x 0.10 = 11.00 (over the 5.00
    // minimum). Day 1 (10 h) bills the minimum, 5.00; days 2 to 25 (to 250 h) add nothing to
    // it; each of days 26 to 31 adds 10 h x 0.10 = 1.00.
    assert_eq!(daily[0], d("5.00"));
    assert!(daily[1..25].iter().all(|a| a.is_zero()), "{daily:?}");
    assert!(daily[25..].iter().all(|a| *a == d("1.00")), "{daily:?}");
    assert_eq!(daily.iter().sum::<Decimal>(), d("11.00"));

    // The same month as one monthly invoice costs the same.
    let month = BillingPeriod::month(2017, 1).unwrap();
    let mut monthly = bare_account("abq");
    monthly.billing_period = PeriodKind::Month;
    let records: Vec<_> = (1..=31)
        .map(|day| {
            rec(
                "abq",
                "vm-1",
                "copper",
                "vm.running",
                "10",
                Unit::Hours,
                &format!("2017-01-{day:02}T08:00:00Z"),
            )
        })
        .collect();
    let usage = pricing::rate(&c, month, &records).unwrap();
    let inv = pricing::invoice(&c, &monthly, month, &usage).unwrap();
    assert_eq!(copper_net(&inv), d("11.00"));

    // Without the month's earlier usage, each day would be granted the minimum again:
    // 31 x 5.00 = 155.00 for 11.00 of use (what Ratecard billed before).
    let (p, u) = day_usage(&c, 2);
    let alone = pricing::invoice(&c, &acc, p, &u).unwrap();
    assert_eq!(copper_net(&alone), d("5.00"));
}

#[test]
fn a_month_ignores_the_month_before() {
    let c = catalog();
    let acc = bare_account("abq");
    let month = BillingPeriod::month(2017, 1).unwrap();
    let (_, u) = day_usage(&c, 3);
    let mut st = Statement::from_book(&acc, month);
    st.month_before = Some(u.clone());
    let inv = invoice_with(&c, &acc, month, &u, &st).unwrap();
    assert_eq!(copper_net(&inv), d("5.00"));
}
