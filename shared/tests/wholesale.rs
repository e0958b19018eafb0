//! Reseller billing against figures computed here from the catalog's own prices: a reseller's customer invoiced at the reseller's published prices, the provider's statement to the reseller at wholesale, and margins that reconcile to the cent in every currency pair.

use pricing::import::{import_and_rate, Format, ImportOptions};
use pricing::wholesale::{customer_margin, resold};
use pricing::{invoice, invoice_with, parse_json, AccountBook, BillingPeriod, Catalog, Invoice};
use rust_decimal::{Decimal, RoundingStrategy};
use std::str::FromStr;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The examples are compiled in, so that this suite runs unchanged as wasm (no file system).
fn read(name: &str) -> String {
    match name {
        "catalogs/cloudstack.json" => include_str!("../../examples/catalogs/cloudstack.json"),
        "accounts/cloudstack.json" => include_str!("../../examples/accounts/cloudstack.json"),
        "exports/resellers-2017-02.json" => {
            include_str!("../../examples/exports/resellers-2017-02.json")
        }
        other => panic!("unknown example {other}"),
    }
    .to_string()
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn catalog() -> Catalog {
    Catalog::from_json(&read("catalogs/cloudstack.json")).unwrap()
}

fn book() -> AccountBook {
    parse_json(&read("accounts/cloudstack.json")).unwrap()
}

fn february() -> BillingPeriod {
    BillingPeriod::parse("2017-02").unwrap()
}

/// The example reseller export, rated with the wholesale catalog (product ids are the same in
/// every published catalog).
fn usage(catalog: &Catalog) -> pricing::Usage {
    let bytes = read("exports/resellers-2017-02.json");
    import_and_rate(
        Format::CloudStack,
        bytes.as_bytes(),
        catalog,
        &ImportOptions::default(),
        february(),
    )
    .unwrap()
    .usage
}

/// A wholesale unit price of the example catalog, read from its JSON (not through the engine).
fn wholesale_price(product: &str, meter: Option<&str>) -> Decimal {
    let c: serde_json::Value = serde_json::from_str(&read("catalogs/cloudstack.json")).unwrap();
    let p = c["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == product)
        .unwrap();
    match meter {
        Some(m) => {
            let ch = p["charges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|ch| ch["meter"] == m)
                .unwrap();
            d(ch["price"]["unit_price"].as_str().unwrap())
        }
        None => d(p["fees"]["monthly"].as_str().unwrap()),
    }
}

fn round(v: Decimal, half_even: bool) -> Decimal {
    let s = if half_even {
        RoundingStrategy::MidpointNearestEven
    } else {
        RoundingStrategy::MidpointAwayFromZero
    };
    v.round_dp_with_strategy(2, s)
}

fn line_amount(inv: &Invoice, product: &str) -> Decimal {
    inv.bill
        .lines()
        .filter(|l| l.product == product)
        .map(|l| l.amount)
        .sum()
}

/// The customer's invoice, the provider's statement to its reseller, and the customer's margin.
fn bill(reseller: &str, customer: &str, billed: &str) -> (Invoice, Invoice, Decimal) {
    let c = catalog();
    let book = book();
    let usage = usage(&c);
    let published = pricing::publish(&c, reseller).unwrap();
    let cust = book.account(customer).unwrap();
    let billed = book.account(billed).unwrap();
    let retail = invoice(&published, cust, february(), &usage).unwrap();
    let cost = resold(&c, cust, billed, february(), &usage, None).unwrap();
    let mut st = pricing::Statement::from_book(billed, february());
    st.resold = vec![cost.clone()];
    let statement = invoice_with(&c, billed, february(), &usage, &st).unwrap();
    statement.check_totals().unwrap();
    let margin = customer_margin(&retail, &cost).unwrap();
    // Every line's margin is its price minus its cost; the customer's total is their sum.
    for l in &margin.lines {
        assert_eq!(l.margin.margin, l.margin.retail - l.margin.wholesale);
    }
    (retail, statement, margin.total.margin)
}

/// Acme sells in EUR (GBP x 1.17, half-even) with 25 % on compute and network, 40 % on
/// storage and 10 % on DDoS; the provider bills Acme in EUR at wholesale (half-up, the
/// catalog's rounding).
#[test]
fn acme_customer_is_invoiced_at_acme_prices_and_acme_at_wholesale_in_eur() {
    let (retail, statement, margin) = bill("acme", "acme-shop", "reseller-acme");
    let fx = d("1.17");
    let hours = d("672");
    let gbh = d("13440");
    let gb = d("28");
    let cases = [
        // (product, meter, quantity, markup)
        ("copper", Some("vm.running"), hours, d("1.25")),
        ("medium-disk", Some("volume.gbh"), gbh, d("1.40")),
        ("network", Some("net.sent"), gb, d("1.25")),
        ("ddos", None, Decimal::ONE, d("1.10")),
    ];
    let mut retail_sum = Decimal::ZERO;
    let mut wholesale_sum = Decimal::ZERO;
    for (product, meter, q, markup) in cases {
        let price = wholesale_price(product, meter);
        let r = round(price * markup * fx * q, true);
        let w = round(price * fx * q, false);
        assert_eq!(line_amount(&retail, product), r, "retail {product}");
        assert_eq!(line_amount(&statement, product), w, "wholesale {product}");
        retail_sum += r;
        wholesale_sum += w;
    }
    assert_eq!(retail.bill.currency, "EUR");
    assert_eq!(retail.bill.issuer.as_deref(), Some("Acme Cloud"));
    assert_eq!(retail.bill.net, retail_sum);
    // German VAT on the retail invoice (Acme's jurisdiction), none on the reverse-charged
    // statement.
    assert_eq!(
        retail.bill.total,
        retail_sum + round(retail_sum * d("0.19"), true)
    );
    assert_eq!(statement.bill.currency, "EUR");
    assert_eq!(statement.bill.net, wholesale_sum);
    assert_eq!(statement.bill.total, wholesale_sum);
    assert_eq!(margin, retail_sum - wholesale_sum);
    // 2,975.00 - 2,443.41 by hand (see the figures above, printed by `ratecard margin`).
    assert_eq!(retail.bill.net - statement.bill.net, margin);
}

/// Nimbus sells in the catalog's own currency (GBP) with 30 %, 15 % on network.
#[test]
fn nimbus_customer_is_invoiced_at_nimbus_prices_and_nimbus_at_wholesale_in_gbp() {
    let (retail, statement, margin) = bill("nimbus", "nimbus-studio", "reseller-nimbus");
    let silver = wholesale_price("silver", Some("vm.running"));
    let received = wholesale_price("network", Some("net.received"));
    let r =
        round(silver * d("1.30") * d("672"), false) + round(received * d("1.15") * d("14"), false);
    let w = round(silver * d("672"), false) + round(received * d("14"), false);
    assert_eq!(retail.bill.net, r);
    assert_eq!(statement.bill.net, w);
    assert_eq!(margin, r - w);
    assert_eq!(retail.bill.currency, "GBP");
    // UK VAT on both: the reseller's customer's invoice and the provider's statement.
    assert_eq!(statement.bill.total, w + round(w * d("0.20"), false));
}

/// Reconciliation in other currency pairs than the examples' (GBP to EUR, GBP to GBP): a
/// reseller selling in JPY (no minor units), CHF and USD, with the same customer usage.
#[test]
fn margins_reconcile_to_the_cent_in_every_currency_pair() {
    let mut c = catalog();
    let usage = usage(&c);
    let mut book = book();
    for code in ["EUR", "GBP", "JPY", "CHF", "USD"] {
        let mut overlay = c.reseller("acme").unwrap().clone();
        overlay.id = format!("r-{}", code.to_lowercase());
        overlay.currency = Some(pricing::catalog::CurrencySettings {
            code: code.to_string(),
            rounding: pricing::RoundingMode::HalfEven,
        });
        c.resellers.push(overlay.clone());
        let mut cust = book.account("acme-shop").unwrap().clone();
        cust.reseller = Some(overlay.id.clone());
        let mut billed = book.account("reseller-acme").unwrap().clone();
        billed.id = format!("billed-{}", overlay.id);
        billed.resells = Some(overlay.id.clone());
        billed.currency = Some(code.to_string());
        book.accounts.push(billed.clone());
        let published = pricing::publish(&c, &overlay.id).unwrap();
        let retail = invoice(&published, &cust, february(), &usage).unwrap();
        let cost = resold(&c, &cust, &billed, february(), &usage, None).unwrap();
        let mut st = pricing::Statement::from_book(&billed, february());
        st.resold = vec![cost.clone()];
        let statement = invoice_with(&c, &billed, february(), &usage, &st).unwrap();
        let m = customer_margin(&retail, &cost).unwrap();
        assert_eq!(
            retail.bill.net,
            statement.bill.net + m.total.margin,
            "{code}: customer net = wholesale statement net + margin"
        );
        assert_eq!(m.total.wholesale, statement.bill.net, "{code}");
        assert_eq!(m.total.retail, retail.bill.net, "{code}");
        // Every line found its wholesale twin: nothing is sold without a cost.
        assert!(
            m.lines.iter().all(|l| !l.margin.wholesale.is_zero()),
            "{code}"
        );
    }
}

/// The provider's cost codes book resources and projects by their customers' ids: the direct
/// storefront's catalog keeps a code's products only (and no code that books nothing else).
#[test]
fn the_direct_catalog_names_no_customers_resource_or_project_in_its_cost_codes() {
    let mut c = catalog();
    let codes: serde_json::Value = serde_json::json!([
        {"code": "CC-LIC", "name": "Licences", "products": ["copper"], "resources": ["web-1"], "projects": ["bu1-prod"]},
        {"code": "CC-BU1", "name": "BU1 project", "projects": ["bu1-prod"]}
    ]);
    c.cost_codes = serde_json::from_value(codes).unwrap();
    let published = pricing::reseller::publish_direct(&c);
    let json = serde_json::to_string(&published).unwrap();
    assert!(
        !json.contains("web-1") && !json.contains("bu1-prod"),
        "{json}"
    );
    assert_eq!(published.cost_codes.len(), 1);
    assert_eq!(published.cost_codes[0].code, "CC-LIC");
    assert_eq!(published.cost_codes[0].products, vec!["copper".to_string()]);
}

#[test]
fn single_customers_discounts_are_never_published() {
    let mut c = catalog();
    let public = c.discounts.len();
    let scoped: serde_json::Value = serde_json::json!([
        {"id": "deal-acct", "name": "Deal for bu1user1", "scope": {"type": "account", "id": "bu1user1"}, "value": {"type": "percent", "pct": "30"}},
        {"id": "deal-proj", "name": "Deal for a project", "scope": {"type": "project", "id": "p-1"}, "value": {"type": "percent", "pct": "30"}},
        {"id": "deal-vm", "name": "Deal for a VM", "scope": {"type": "resource", "id": "web-1"}, "value": {"type": "percent", "pct": "30"}}
    ]);
    c.discounts
        .extend(serde_json::from_value::<Vec<pricing::catalog::Discount>>(scoped).unwrap());
    for published in [
        pricing::reseller::publish_direct(&c),
        pricing::publish(&c, "acme").unwrap(),
        pricing::publish(&c, "nimbus").unwrap(),
    ] {
        assert_eq!(published.discounts.len(), public, "{}", published.id);
        assert!(!published.to_json().contains("deal-"), "{}", published.id);
    }
}

#[test]
fn the_accounts_book_is_checked_for_reseller_billing() {
    let c = catalog();
    let mut book = book();
    book.validate(&c).unwrap();
    // A customer of an unknown reseller, one in another currency than its reseller's, and a
    // reseller whose own account is missing: each named at its path.
    book.accounts
        .iter_mut()
        .find(|a| a.id == "acme-shop")
        .unwrap()
        .currency = Some("USD".into());
    book.accounts
        .iter_mut()
        .find(|a| a.id == "bu1user1")
        .unwrap()
        .reseller = Some("nobody".into());
    book.accounts.retain(|a| a.id != "reseller-nimbus");
    let e = book.validate(&c).unwrap_err().to_string();
    for expected in [
        "reseller `nobody` is not in the catalog",
        "a customer of reseller `acme` is invoiced in its currency, EUR",
        "reseller `nimbus` has no account of its own in the book",
    ] {
        assert!(e.contains(expected), "{expected}: {e}");
    }
}

/// A reseller's customer billed by the day, with 10 h of running copper included a month: the
/// provider's statements to the reseller grant the allowance once a month, as the customer's
/// own invoices do. Day 1 (8 h) costs nothing at wholesale; day 2 (8 h more: 16 h in the
/// month) bills the 6 h over the allowance, 6 x 2.20 GBP x 1.17 = 15.444 -> EUR 15.44. Each
/// day alone would have been free (8 h < 10 h), every day of the month.
#[test]
fn a_daily_customers_wholesale_grants_monthly_allowances_once_a_month() {
    let mut json: serde_json::Value =
        serde_json::from_str(&read("catalogs/cloudstack.json")).unwrap();
    let copper = json["products"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["id"] == "copper")
        .unwrap();
    copper["charges"][0]["price"]["included"] = serde_json::json!("10");
    assert_eq!(copper["charges"][0]["meter"], "vm.running");
    let c = Catalog::from_json(&json.to_string()).unwrap();
    let book = book();
    let mut customer = book.account("acme-shop").unwrap().clone();
    customer.billing_period = pricing::PeriodKind::Day;
    customer.subscriptions.clear();
    let billed = book.account("reseller-acme").unwrap();
    let day = |n: u32| BillingPeriod::parse(&format!("2017-02-{n:02}")).unwrap();
    let usage_of = |n: u32| {
        let start: chrono::DateTime<chrono::Utc> =
            format!("2017-02-{n:02}T00:00:00Z").parse().unwrap();
        let record = pricing::UsageRecord {
            record_id: None,
            account: customer.id.clone(),
            project: None,
            resource: "vm-1".into(),
            product: "copper".into(),
            meter: "vm.running".into(),
            quantity: d("8"),
            unit: pricing::Unit::Hours,
            start,
            end: start + chrono::Duration::hours(8),
            tags: Vec::new(),
            region: None,
        };
        pricing::rate(&c, day(n), &[record]).unwrap()
    };
    let total = |r: &pricing::resold::Resold| r.lines.iter().map(|l| l.amount).sum::<Decimal>();
    let (first, second) = (usage_of(1), usage_of(2));
    let none = pricing::Usage::default();
    let day1 = resold(&c, &customer, billed, day(1), &first, Some(&none)).unwrap();
    let day2 = resold(&c, &customer, billed, day(2), &second, Some(&first)).unwrap();
    let price = wholesale_price("copper", Some("vm.running"));
    let eur: serde_json::Value = json["fx_rates"]["EUR"].clone();
    let fx = d(eur.as_str().unwrap());
    assert_eq!(total(&day1), Decimal::ZERO);
    assert_eq!(total(&day2), round(d("6") * price * fx, false));
    assert_eq!(total(&day2), d("15.44"));
}
