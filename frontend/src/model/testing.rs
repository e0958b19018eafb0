//! Fixtures for the view-model tests: the example catalogs, read at compile time.

use chrono::NaiveDate;
use pricing::Catalog;

pub fn cloudstack() -> Catalog {
    Catalog::from_json(include_str!("../../../examples/catalogs/cloudstack.json"))
        .expect("the example catalog is valid")
}

pub fn openstack() -> Catalog {
    Catalog::from_json(include_str!("../../../examples/catalogs/openstack.json"))
        .expect("the example catalog is valid")
}

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a test date")
}
