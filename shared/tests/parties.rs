//! The parties documents name (issuers in the accounts file, accounts' countries and VAT ids) are checked where the accounts book is loaded, each problem at its JSON path.

mod common;

use common::*;
use pricing::{parse_json, AccountBook};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn the_example_book_describes_its_issuers() {
    let book: AccountBook = parse_json(CLOUDSTACK_ACCOUNTS).unwrap();
    book.validate(&cloudstack()).unwrap();
    let acme = book.issuer("acme").unwrap();
    assert_eq!(
        (acme.country.as_str(), acme.vat_id.as_deref()),
        ("DE", Some("DE811907980"))
    );
    assert_eq!(
        book.account("bu1user1").unwrap().country.as_deref(),
        Some("GB")
    );
}

#[test]
fn bad_countries_and_issuers_are_refused_at_their_paths() {
    let mut v: serde_json::Value = serde_json::from_str(CLOUDSTACK_ACCOUNTS).unwrap();
    v["accounts"][0]["country"] = "United Kingdom".into();
    v["issuers"][1]["country"] = "de".into();
    v["issuers"][2]["id"] = "acme".into();
    v["issuers"][0]["name"] = " ".into();
    let book: AccountBook = parse_json(&v.to_string()).unwrap();
    let errors = book.validate(&cloudstack()).unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.accounts[0].country",
            "$.issuers[0].name",
            "$.issuers[1].country",
            "$.issuers[2].id"
        ],
        "{errors}"
    );
    assert!(errors
        .to_string()
        .contains("`United Kingdom` is not an ISO 3166-1 alpha-2"));
}
