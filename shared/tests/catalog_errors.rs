//! Every kind of bad catalog is rejected with the JSON path of the bad field and the rule it broke.

mod common;

use common::*;
use pricing::error::CatalogRule;
use pricing::Catalog;
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn product_index(v: &Value, id: &str) -> usize {
    v["products"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["id"] == id)
        .unwrap()
}

#[test]
fn bad_catalogs_name_the_path_and_rule() {
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, &str, CatalogRule)> = vec![
        (
            "unknown currency",
            |v| v["currency"]["code"] = json!("XXX"),
            "$.currency.code",
            CatalogRule::UnknownCurrency,
        ),
        (
            "negative price",
            |v| v["products"][0]["charges"][0]["price"]["unit_price"] = json!("-1"),
            "$.products[0].charges[0].price.unit_price",
            CatalogRule::NegativePrice,
        ),
        (
            "absurd price",
            |v| v["products"][0]["charges"][0]["price"]["unit_price"] = json!("1000000001"),
            "$.products[0].charges[0].price.unit_price",
            CatalogRule::LimitExceeded,
        ),
        (
            "float number",
            |v| v["products"][0]["charges"][0]["price"]["unit_price"] = json!(2.2),
            "$.products[0].charges[0].price.unit_price",
            CatalogRule::FloatNumber,
        ),
        (
            "unknown meter",
            |v| v["products"][1]["charges"][0]["meter"] = json!("vm.flying"),
            "$.products[1].charges[0].meter",
            CatalogRule::UnknownReference,
        ),
        (
            "duplicate product",
            |v| v["products"][1]["id"] = json!("copper"),
            "$.products[1].id",
            CatalogRule::DuplicateId,
        ),
        (
            "overlapping tiers",
            |v| {
                let i = product_index(v, "disk-io");
                v["products"][i]["charges"][0]["price"]["tiers"] = json!([{ "up_to": "100", "unit_price": "1" }, { "up_to": "50", "unit_price": "0.5" }, { "unit_price": "0.1" }]);
            },
            "$.products[14].charges[0].price.tiers[1].up_to",
            CatalogRule::InvalidTiers,
        ),
        (
            "unbounded tier before the last",
            |v| {
                let i = product_index(v, "disk-io");
                v["products"][i]["charges"][0]["price"]["tiers"] =
                    json!([{ "unit_price": "1" }, { "up_to": "50", "unit_price": "0.5" }]);
            },
            "$.products[14].charges[0].price.tiers[0].up_to",
            CatalogRule::InvalidTiers,
        ),
        (
            "package of an unknown service",
            |v| {
                let i = product_index(v, "gold-package");
                v["products"][i]["services"] = json!(["daily-backup", "massage"]);
            },
            "$.products[22].services[1]",
            CatalogRule::UnknownReference,
        ),
        (
            "schema version",
            |v| v["schema_version"] = json!(2),
            "$.schema_version",
            CatalogRule::UnsupportedSchemaVersion,
        ),
        (
            "typo in a price field",
            |v| v["products"][0]["charges"][0]["price"]["unit_prise"] = json!("1"),
            // The field itself, as for any other struct (`$.colour` below).
            "$.products[0].charges[0].price.unit_prise",
            CatalogRule::Syntax,
        ),
        (
            "unknown top-level field",
            |v| v["colour"] = json!("red"),
            "$.colour",
            CatalogRule::Syntax,
        ),
        (
            "override of unknown product",
            |v| v["regions"][1]["overrides"][0]["product"] = json!("tin"),
            "$.regions[1].overrides[0].product",
            CatalogRule::UnknownReference,
        ),
        (
            "reseller currency without rate",
            |v| v["resellers"][0]["currency"]["code"] = json!("SEK"),
            "$.resellers[0].currency.code",
            CatalogRule::UnknownReference,
        ),
        (
            "negative fx rate",
            |v| v["fx_rates"]["EUR"] = json!("-1.1"),
            "$.fx_rates.EUR",
            CatalogRule::InvalidValue,
        ),
        (
            "tax above 100 %",
            |v| v["tax_jurisdictions"][0]["taxes"][0]["rate_pct"] = json!("120"),
            "$.tax_jurisdictions[0].taxes[0].rate_pct",
            CatalogRule::InvalidValue,
        ),
        (
            "zero block size",
            |v| {
                v["products"][0]["charges"][0]["price"] =
                    json!({ "model": "package", "block_size": "0", "block_price": "1" })
            },
            "$.products[0].charges[0].price.block_size",
            CatalogRule::InvalidValue,
        ),
        (
            "discount window backwards",
            |v| v["discounts"][0]["valid_to"] = json!("2017-01-01T00:00:00Z"),
            "$.discounts[0].valid_to",
            CatalogRule::InvalidValue,
        ),
        (
            // A project id is one account's name for it: the deal belongs on that account.
            "catalog discount scoped to a project",
            |v| v["discounts"][0]["scope"] = json!({ "type": "project", "id": "web" }),
            "$.discounts[0].scope.type",
            CatalogRule::InvalidValue,
        ),
        (
            "catalog discount scoped to a resource",
            |v| v["discounts"][0]["scope"] = json!({ "type": "resource", "id": "web-1" }),
            "$.discounts[0].scope.type",
            CatalogRule::InvalidValue,
        ),
        (
            // An estimate prices each month of a term: ten years at most.
            "a term of more than ten years",
            |v| v["terms"][2]["months"] = json!(121),
            "$.terms[2].months",
            CatalogRule::InvalidValue,
        ),
        (
            "a term of no month",
            |v| v["terms"][0]["months"] = json!(0),
            "$.terms[0].months",
            CatalogRule::InvalidValue,
        ),
        ("not json", |v| *v = json!("nope"), "$", CatalogRule::Syntax),
        // Issue 12: a catalog that could overflow on quantities within the cap is refused at
        // load. 10^8 GBP per running hour is under the price cap (10^9), but 10^16 hours (the
        // most one line may hold) would cost 10^24, more than one line may (10^23); the JPY
        // rate (140) makes it worse.
        (
            "a price that overflows a line",
            |v| v["products"][0]["charges"][0]["price"]["unit_price"] = json!("100000000"),
            "$.products[0].charges[0].price",
            CatalogRule::AmountTooLarge,
        ),
        (
            "a graduated tier that overflows a line",
            |v| {
                v["products"][0]["charges"][0]["price"] = json!({"model": "graduated", "tiers": [
                    {"up_to": "10", "unit_price": "1"}, {"unit_price": "50000000"}]})
            },
            "$.products[0].charges[0].price",
            CatalogRule::AmountTooLarge,
        ),
        (
            "an exchange rate that overflows",
            |v| v["fx_rates"]["JPY"] = json!("10000000"),
            "$.fx_rates.JPY",
            CatalogRule::AmountTooLarge,
        ),
    ];
    // The term's bound, named in its message.
    let mut v: Value = serde_json::from_str(CLOUDSTACK).unwrap();
    v["terms"][2]["months"] = json!(pricing::catalog::TERM_MONTHS_MAX + 1);
    let errors = Catalog::from_json(&v.to_string()).expect_err("long term").0;
    let bound = format!("1 to {} months", pricing::catalog::TERM_MONTHS_MAX);
    assert!(
        errors.iter().any(|e| e.message.contains(&bound)),
        "{errors:#?}"
    );
    for (name, edit, path, rule) in cases {
        let mut v: Value = serde_json::from_str(CLOUDSTACK).unwrap();
        edit(&mut v);
        let errors = Catalog::from_json(&v.to_string()).expect_err(name).0;
        assert!(
            errors.iter().any(|e| e.path == path && e.rule == rule),
            "{name}: expected {rule:?} at {path}, got {errors:#?}"
        );
    }
}

#[test]
fn error_messages_read_well() {
    let mut v: Value = serde_json::from_str(CLOUDSTACK).unwrap();
    v["products"][0]["charges"][0]["price"]["unit_price"] = json!("-1");
    v["currency"]["code"] = json!("XXX");
    let err = Catalog::from_json(&v.to_string()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid catalog (2 problem(s))\n  $.currency.code: unknown currency `XXX`\n  $.products[0].charges[0].price.unit_price: negative price -1"
    );
}
