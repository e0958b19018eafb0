//! Coupons (code, redemption window, redemption limit, duration), datacenter filtering and cost-code blocks (seeds 000, 001, 003): invoiced and estimated alike, every amount worked out by hand.

mod common;

use common::*;
use pricing::blocks::BlockBy;
use pricing::error::CatalogRule;
use pricing::invoice::Redemption;
use pricing::{
    estimate, invoice, parse_json, AccountBook, BillingPeriod, Catalog, Component, PricingError,
    Quote, QuoteTier, Unit, UsageRecord,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn month(m: u32) -> BillingPeriod {
    if m > 12 {
        BillingPeriod::month(2027, m - 12).unwrap()
    } else {
        BillingPeriod::month(2026, m).unwrap()
    }
}

/// The OpenStack example catalog (EUR, `m1.small` 0.0320 an hour) with these coupons.
fn with_coupons(coupons: &str) -> Catalog {
    let mut v: serde_json::Value = serde_json::from_str(OPENSTACK).unwrap();
    v["coupons"] = serde_json::from_str(coupons).unwrap();
    Catalog::from_json(&v.to_string()).expect("catalog with coupons is valid")
}

const COUPONS: &str = r#"[
  { "code": "WELCOME10", "name": "Welcome: 10% off", "value": { "type": "percent", "pct": "10" },
    "redeem_from": "2026-11-01T00:00:00Z", "redeem_until": "2026-12-01T00:00:00Z",
    "max_redemptions": 2, "duration_months": 1 },
  { "code": "FIVE-OFF", "name": "5.00 off every month", "value": { "type": "fixed", "amount": "5.00" } }
]"#;

fn small(account: &str, vm: &str, h: &str, start: &str) -> UsageRecord {
    rec(account, vm, "m1.small", "instance", h, Unit::Hours, start)
}

fn redeemed(code: &str, at: &str) -> Redemption {
    Redemption {
        code: code.into(),
        redeemed_at: t(at),
    }
}

fn discounts(inv: &pricing::Invoice) -> Decimal {
    inv.bill.discounts.iter().map(|a| a.amount).sum()
}

#[test]
fn a_percent_coupon_discounts_the_usage_days_from_its_redemption_for_its_months() {
    let c = with_coupons(COUPONS);
    let mut acc = bare_account("a");
    // Typed in lower case: codes ignore case.
    acc.coupons = vec![redeemed("welcome10", "2026-11-16T00:00:00Z")];
    let bill = |m: u32, days: [&str; 2]| {
        let records = [
            small("a", "vm-1", "100", days[0]),
            small("a", "vm-2", "100", days[1]),
        ];
        let inv = invoice(
            &c,
            &acc,
            month(m),
            &pricing::rate(&c, month(m), &records).unwrap(),
        )
        .unwrap();
        inv.check_totals().unwrap();
        inv
    };
    // November: 200 h x 0.032 = 6.40; half of it (the 20th) is after the redemption, so the
    // discount is 10 % of 3.20 = 0.32.
    let nov = bill(11, ["2026-11-03T00:00:00Z", "2026-11-20T00:00:00Z"]);
    assert_eq!(nov.bill.subtotal, d("6.40"));
    assert_eq!(discounts(&nov), d("-0.32"));
    assert_eq!(nov.bill.net, d("6.08"));
    assert_eq!(
        nov.bill.discounts[0].description,
        "Welcome: 10% off (coupon WELCOME10)"
    );
    // December: one month from 16 November ends on 16 December; the 10th is in, the 20th out.
    let dec = bill(12, ["2026-12-10T00:00:00Z", "2026-12-20T00:00:00Z"]);
    assert_eq!(discounts(&dec), d("-0.32"));
    // January: over.
    let jan = bill(13, ["2027-01-05T00:00:00Z", "2027-01-06T00:00:00Z"]);
    assert_eq!(discounts(&jan), Decimal::ZERO);
    assert_eq!(jan.bill.net, d("6.40"));
}

#[test]
fn a_fixed_coupon_is_prorated_in_its_first_month_and_whole_after() {
    let c = with_coupons(COUPONS);
    let mut acc = bare_account("a");
    acc.coupons = vec![redeemed("FIVE-OFF", "2026-11-16T00:00:00Z")];
    let bill = |m: u32, day: &str| {
        let records = [small("a", "vm-1", "200", day)];
        invoice(
            &c,
            &acc,
            month(m),
            &pricing::rate(&c, month(m), &records).unwrap(),
        )
        .unwrap()
    };
    // 15 of November's 30 days: 5.00 x 15/30 = 2.50 off 6.40.
    let nov = bill(11, "2026-11-03T00:00:00Z");
    assert_eq!(discounts(&nov), d("-2.50"));
    assert_eq!(nov.bill.net, d("3.90"));
    // December, whole: 5.00 off 6.40.
    let dec = bill(12, "2026-12-03T00:00:00Z");
    assert_eq!(discounts(&dec), d("-5.00"));
    assert_eq!(dec.bill.net, d("1.40"));
}

fn book(accounts: Vec<pricing::Account>) -> AccountBook {
    AccountBook {
        schema_version: 1,
        version: "t".into(),
        accounts,
        issuers: Vec::new(),
    }
}

/// (path, rule) of each problem of the book.
fn problems(c: &Catalog, b: &AccountBook) -> Vec<(String, CatalogRule)> {
    match b.validate(c) {
        Ok(()) => Vec::new(),
        Err(e) => e.0.into_iter().map(|e| (e.path, e.rule)).collect(),
    }
}

#[test]
fn the_redemption_limit_is_enforced_where_redemptions_are_stored() {
    let c = with_coupons(COUPONS);
    let with = |id: &str, at: &str| {
        let mut a = bare_account(id);
        a.coupons = vec![redeemed("WELCOME10", at)];
        a
    };
    // Two redemptions are allowed: the third in time (account `x`, first in the book) is the
    // one refused, whatever the book's order.
    let b = book(vec![
        with("x", "2026-11-20T00:00:00Z"),
        with("y", "2026-11-10T00:00:00Z"),
        with("z", "2026-11-15T00:00:00Z"),
    ]);
    assert_eq!(
        problems(&c, &b),
        vec![(
            "$.accounts[0].coupons[0].code".to_string(),
            CatalogRule::LimitExceeded
        )]
    );
    let msg = b.validate(&c).unwrap_err().0[0].message.clone();
    assert!(
        msg.contains("may be redeemed by 2 accounts") && msg.contains("`x`"),
        "{msg}"
    );
    // Two are fine; an unlimited coupon takes any number.
    assert_eq!(problems(&c, &book(b.accounts[1..].to_vec())), vec![]);
    let five: Vec<_> = (0..5)
        .map(|i| {
            let mut a = bare_account(&format!("f{i}"));
            a.coupons = vec![redeemed("five-off", "2030-01-01T00:00:00Z")];
            a
        })
        .collect();
    assert_eq!(problems(&c, &book(five)), vec![]);
}

#[test]
fn bad_redemptions_are_refused_at_their_paths() {
    let c = with_coupons(COUPONS);
    let mut a = bare_account("a");
    a.coupons = vec![
        redeemed("NOPE", "2026-11-02T00:00:00Z"),
        // Outside the window (it closes on 1 December).
        redeemed("WELCOME10", "2026-12-01T00:00:00Z"),
        redeemed("five-off", "2026-11-02T00:00:00Z"),
        redeemed("FIVE-OFF", "2026-11-03T00:00:00Z"),
    ];
    let mut r = bare_account("r");
    r.reseller = Some("acme".into());
    r.coupons = vec![redeemed("FIVE-OFF", "2026-11-02T00:00:00Z")];
    let got = problems(&c, &book(vec![a, r]));
    let want = [
        (
            "$.accounts[0].coupons[0].code",
            CatalogRule::UnknownReference,
        ),
        (
            "$.accounts[0].coupons[1].redeemed_at",
            CatalogRule::InvalidValue,
        ),
        ("$.accounts[0].coupons[3].code", CatalogRule::InvalidValue),
        ("$.accounts[1].coupons[0].code", CatalogRule::InvalidValue),
    ];
    for (path, rule) in want {
        assert!(
            got.contains(&(path.to_string(), rule)),
            "{path} {rule:?} missing from {got:?}"
        );
    }
}

#[test]
fn bad_coupons_are_refused_with_the_catalog() {
    let refused = |coupons: &str| -> Vec<(String, CatalogRule)> {
        let mut v: serde_json::Value = serde_json::from_str(OPENSTACK).unwrap();
        v["coupons"] = serde_json::from_str(coupons).unwrap();
        match Catalog::from_json(&v.to_string()) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.into_iter().map(|e| (e.path, e.rule)).collect(),
        }
    };
    let p = |s: &str, r| (s.to_string(), r);
    assert_eq!(
        refused(
            r#"[{ "code": "A B", "name": "x", "value": { "type": "percent", "pct": "110" } },
                { "code": "ok", "name": "x", "value": { "type": "fixed", "amount": "1" }, "max_redemptions": 0, "duration_months": 0,
                  "redeem_from": "2026-12-01T00:00:00Z", "redeem_until": "2026-11-01T00:00:00Z" },
                { "code": "OK", "name": "x", "value": { "type": "percent", "pct": "5" },
                  "scope": { "type": "product", "id": "no-such" } },
                { "code": "VM", "name": "x", "value": { "type": "percent", "pct": "5" },
                  "scope": { "type": "resource", "id": "vm-1" } }]"#
        ),
        vec![
            p("$.coupons[0].code", CatalogRule::InvalidValue),
            p("$.coupons[0].value.pct", CatalogRule::InvalidValue),
            p("$.coupons[1].redeem_until", CatalogRule::InvalidValue),
            p("$.coupons[1].max_redemptions", CatalogRule::InvalidValue),
            p("$.coupons[1].duration_months", CatalogRule::InvalidValue),
            p("$.coupons[2].code", CatalogRule::DuplicateId),
            p("$.coupons[2].scope.id", CatalogRule::UnknownReference),
            p("$.coupons[3].scope.type", CatalogRule::InvalidValue),
        ]
    );
}

fn quote(at: &str, coupon: Option<&str>, hours: Decimal) -> Quote {
    Quote {
        name: String::new(),
        at: t(at),
        region: None,
        sla_tier: None,
        currency: None,
        term: None,
        tax_jurisdiction: None,
        coupon: coupon.map(str::to_string),
        tiers: vec![QuoteTier {
            name: "t".into(),
            components: vec![Component::Compute {
                offering: "m1.small".into(),
                count: 1,
                hours_per_month: Some(hours),
                stopped_hours_per_month: None,
            }],
        }],
    }
}

#[test]
fn a_quote_names_a_coupon_the_catalog_has_and_can_redeem_at_its_date() {
    let c = with_coupons(COUPONS);
    let e = estimate(
        &c,
        &quote("2026-11-01T00:00:00Z", Some("welcome10"), d("200")),
    )
    .unwrap();
    // 200 h x 0.032 = 6.40, less 10 %: 5.76.
    assert_eq!(e.monthly_total, d("5.76"));
    // The year has one discounted month (the coupon lasts one) and eleven at 6.40: 76.16.
    assert_eq!(e.yearly_total, d("76.16"));
    // A coupon for good discounts all twelve: (6.40 - 5.00) x 12 = 16.80.
    let forever = estimate(
        &c,
        &quote("2026-11-01T00:00:00Z", Some("FIVE-OFF"), d("200")),
    )
    .unwrap();
    assert_eq!(forever.monthly_total, d("1.40"));
    assert_eq!(forever.yearly_total, d("16.80"));
    let unknown = estimate(&c, &quote("2026-11-01T00:00:00Z", Some("NOPE"), d("1")));
    assert!(matches!(unknown, Err(PricingError::Coupon { .. })));
    let late = estimate(
        &c,
        &quote("2026-12-01T00:00:00Z", Some("WELCOME10"), d("1")),
    );
    assert_eq!(
        late.unwrap_err().to_string(),
        "coupon `WELCOME10` cannot be redeemed at the quote's date (quote.coupon)"
    );
}

/// The OpenStack example catalog with these catalog promotions.
fn with_promotions(discounts: serde_json::Value) -> Catalog {
    let mut v: serde_json::Value = serde_json::from_str(OPENSTACK).unwrap();
    v["discounts"] = discounts;
    Catalog::from_json(&v.to_string()).expect("catalog with promotions is valid")
}

/// A catalog promotion counts for the months of the year it is valid in, as a coupon does for
/// its duration: the invoices of those months carry it and the others do not, so the yearly
/// figure must too (it used to apply the promotion to all twelve months, whatever its end).
#[test]
fn a_promotion_ending_or_starting_within_the_year_discounts_only_its_months() {
    let ten_off = |from: &str, to: Option<&str>| {
        let mut d = serde_json::json!({ "id": "promo", "name": "10% off",
            "scope": { "type": "all" }, "value": { "type": "percent", "pct": "10" },
            "valid_from": from });
        if let Some(to) = to {
            d["valid_to"] = serde_json::json!(to);
        }
        serde_json::json!([d])
    };
    // 200 h x 0.0320 = 6.40 a month; 10 % off: 5.76.
    let ending = with_promotions(ten_off(
        "2026-10-01T00:00:00Z",
        Some("2027-02-01T00:00:00Z"),
    ));
    let e = estimate(&ending, &quote("2026-11-01T00:00:00Z", None, d("200"))).unwrap();
    assert_eq!(e.monthly_total, d("5.76"));
    // November, December, January discounted; February to October not: 3 x 5.76 + 9 x 6.40.
    assert_eq!(e.yearly_total, d("17.28") + d("57.60"));
    // Each month is that month's invoice: February's 200 h carry no promotion.
    let feb = estimate(&ending, &quote("2027-02-01T00:00:00Z", None, d("200"))).unwrap();
    assert_eq!(feb.monthly_total, d("6.40"));
    let records = [small("a", "vm-1", "200", "2027-02-01T00:00:00Z")];
    let usage = pricing::rate(&ending, month(14), &records).unwrap();
    let inv = invoice(&ending, &bare_account("a"), month(14), &usage).unwrap();
    assert_eq!(inv.bill.total, d("6.40"));

    // Starting in January: November and December at 6.40, the ten months after at 5.76.
    let starting = with_promotions(ten_off("2027-01-01T00:00:00Z", None));
    let e = estimate(&starting, &quote("2026-11-01T00:00:00Z", None, d("200"))).unwrap();
    assert_eq!(e.monthly_total, d("6.40"));
    assert_eq!(e.yearly_total, d("12.80") + d("57.60"));
    // Valid all year: twelve discounted months, as before.
    let always = with_promotions(ten_off("2026-01-01T00:00:00Z", None));
    let e = estimate(&always, &quote("2026-11-01T00:00:00Z", None, d("200"))).unwrap();
    assert_eq!(e.yearly_total, d("5.76") * d("12"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The estimate with a coupon is the invoice of a month of the same usage for an account
    /// that redeemed it as the month began, for either kind of coupon.
    #[test]
    fn estimate_with_a_coupon_equals_the_invoice(hours_cents in 0i64..2_000_000, fixed in any::<bool>()) {
        let c = with_coupons(COUPONS);
        let code = if fixed { "FIVE-OFF" } else { "WELCOME10" };
        let hours = Decimal::new(hours_cents, 2);
        let e = estimate(&c, &quote("2026-11-01T00:00:00Z", Some(code), hours)).unwrap();
        let mut acc = bare_account("a");
        acc.coupons = vec![redeemed(code, "2026-11-01T00:00:00Z")];
        let third = (hours / Decimal::from(3)).round_dp(2);
        let records = [
            small("a", "vm-1", &third.to_string(), "2026-11-02T00:00:00Z"),
            small("a", "vm-1", &(hours - third).to_string(), "2026-11-25T00:00:00Z"),
        ];
        let inv = invoice(&c, &acc, month(11), &pricing::rate(&c, month(11), &records).unwrap()).unwrap();
        prop_assert_eq!(e.monthly_total, inv.bill.total);
    }
}

/// The OpenStack example with its Frankfurt datacenter not billed (Abiquo's datacenter
/// filtering: a private datacenter for the platform's own use).
fn fra1_not_billed() -> Catalog {
    let mut v: serde_json::Value = serde_json::from_str(OPENSTACK).unwrap();
    v["regions"][1]["billed"] = serde_json::Value::Bool(false);
    Catalog::from_json(&v.to_string()).unwrap()
}

#[test]
fn usage_in_a_datacenter_not_billed_is_kept_and_billed_by_no_invoice() {
    let c = fra1_not_billed();
    let mut sto = small("a", "vm-1", "100", "2026-11-03T00:00:00Z");
    sto.region = Some("RegionOne".into());
    let mut fra = small("a", "vm-2", "50", "2026-11-03T00:00:00Z");
    fra.region = Some("fra1".into());
    let usage = pricing::rate(&c, month(11), &[sto, fra]).unwrap();
    // Both records are stored (accounted for once)...
    assert_eq!(usage.records(), 2);
    // ...and only Stockholm's 100 h x 0.032 = 3.20 is billed.
    let inv = invoice(&c, &bare_account("a"), month(11), &usage).unwrap();
    let lines: Vec<_> = inv
        .bill
        .lines()
        .map(|l| (l.region.clone(), l.quantity, l.amount))
        .collect();
    assert_eq!(lines, vec![("sto1".to_string(), d("100"), d("3.20"))]);
    // Nothing can be estimated there.
    let mut q = quote("2026-11-01T00:00:00Z", None, d("1"));
    q.region = Some("fra1".into());
    assert_eq!(
        estimate(&c, &q).unwrap_err(),
        PricingError::RegionNotBilled {
            region: "fra1".into()
        }
    );
    // Billed again when the flag goes: 50 h at Frankfurt's 0.035 = 1.75 more.
    let inv = invoice(&openstack(), &bare_account("a"), month(11), &usage).unwrap();
    assert_eq!(inv.bill.subtotal, d("4.95"));
}

#[test]
fn cost_code_blocks_book_usage_by_resource_then_project_then_product() {
    let mut v: serde_json::Value = serde_json::from_str(OPENSTACK).unwrap();
    // The provider's code for what runs on large instances (an image's licence, say).
    v["cost_codes"] = serde_json::json!([
        { "code": "LIC-LARGE", "name": "Large instances", "products": ["m1.large"] }
    ]);
    let c = Catalog::from_json(&v.to_string()).unwrap();
    let mut acc = bare_account("a");
    acc.invoice_blocks = Some(BlockBy::CostCode);
    let book_json = serde_json::json!({ "schema_version": 1, "version": "t", "accounts": [{
        "id": "a", "name": "a", "invoice_blocks": "cost_code",
        "cost_codes": [
            { "code": "CC-WEB", "name": "Web shop", "projects": ["web"] },
            { "code": "CC-OPS", "name": "Operations", "resources": ["vm-w2"] }
        ] }] });
    let b: AccountBook = parse_json(&book_json.to_string()).unwrap();
    b.validate(&c).unwrap();
    let acc = {
        let parsed = b.accounts[0].clone();
        acc.cost_codes = parsed.cost_codes;
        assert_eq!(parsed.invoice_blocks, Some(BlockBy::CostCode));
        acc
    };
    let at = "2026-11-03T00:00:00Z";
    let mut records = vec![
        small("a", "vm-w1", "300", at),
        small("a", "vm-w2", "100", at),
        rec("a", "vm-w3", "m1.large", "instance", "10", Unit::Hours, at),
        small("a", "vm-x", "100", at),
    ];
    for r in &mut records[..3] {
        r.project = Some("web".into());
    }
    let inv = invoice(
        &c,
        &acc,
        month(11),
        &pricing::rate(&c, month(11), &records).unwrap(),
    )
    .unwrap();
    inv.check_totals().unwrap();
    let totals: Vec<(String, Decimal)> = inv
        .blocks
        .iter()
        .map(|b| (b.name.clone(), b.total))
        .collect();
    // Small: 500 h x 0.032 = 16.00, split by hours: CC-WEB 300 h = 9.60 (vm-w1 in project
    // web), CC-OPS 100 h = 3.20 (vm-w2, named by resource before its project), and 100 h
    // with no code = 3.20. Large: 10 h x 0.128 = 1.28, in project web: the project's code
    // comes before the catalog's product code.
    assert_eq!(
        totals,
        vec![
            ("CC-OPS".to_string(), d("3.20")),
            ("CC-WEB".to_string(), d("10.88")),
            ("(account)".to_string(), d("3.20")),
        ]
    );
    // Out of the project, the large instance is booked under the provider's code.
    records[2].project = None;
    let inv = invoice(
        &c,
        &acc,
        month(11),
        &pricing::rate(&c, month(11), &records).unwrap(),
    )
    .unwrap();
    let lic: Vec<_> = inv
        .blocks
        .iter()
        .filter(|b| b.name == "LIC-LARGE")
        .collect();
    assert_eq!(lic.len(), 1);
    assert_eq!(lic[0].total, d("1.28"));
    // A code naming a product the catalog lacks is refused at its path.
    let mut bad = b.clone();
    bad.accounts[0].cost_codes[0].products = vec!["no-such".into()];
    let e = bad.validate(&c).unwrap_err();
    assert_eq!(e.0[0].path, "$.accounts[0].cost_codes[0].products[0]");
}

/// The SLA uplift line has no days of its own: a coupon discounts it for the part of the
/// bill's span the coupon's window covers, and not at all once it has expired.
#[test]
fn a_coupon_discounts_the_sla_uplift_only_inside_its_window() {
    let c = with_coupons(COUPONS);
    let mut acc = bare_account("a");
    acc.sla_tier = Some("business".into());
    acc.coupons = vec![redeemed("WELCOME10", "2026-11-16T00:00:00Z")];
    let bill = |m: u32, days: [&str; 2]| {
        let records = [
            small("a", "vm-1", "100", days[0]),
            small("a", "vm-2", "100", days[1]),
        ];
        let inv = invoice(
            &c,
            &acc,
            month(m),
            &pricing::rate(&c, month(m), &records).unwrap(),
        )
        .unwrap();
        inv.check_totals().unwrap();
        inv
    };
    // December: 200 h x 0.032 = 6.40; the business tier's 8 % uplift on compute, 0.512 ->
    // 0.51. The coupon runs to 16 December: half the usage (the 10th) is inside, and 15 of
    // December's 31 days of the uplift. Base: 3.20 + 0.51 x 15/31 = 3.4468 -> 3.45; 10 %
    // of it, 0.345 -> 0.34 (half-even).
    let dec = bill(12, ["2026-12-10T00:00:00Z", "2026-12-20T00:00:00Z"]);
    assert_eq!(dec.bill.subtotal, d("6.91"));
    assert_eq!(discounts(&dec), d("-0.34"));
    // January: the coupon is over, the uplift included.
    let jan = bill(13, ["2027-01-05T00:00:00Z", "2027-01-06T00:00:00Z"]);
    assert_eq!(discounts(&jan), Decimal::ZERO);
}
