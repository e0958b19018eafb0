//! The hand-flattened JSON shapes (price, product, component, discount scope and value) read
//! exactly what their serialization writes, refuse what the derived tagged enums refused, and
//! take decimals only as strings or integers.

mod common;

use common::*;
use pricing::catalog::{DiscountScope, DiscountValue, Fees, Product, ProductKind};
use pricing::{Catalog, Category, Component, Price, PriceModel, Tier};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
    let text = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(back, value, "{text}");
}

fn refused<T: DeserializeOwned + std::fmt::Debug>(value: Value, why: &str) {
    let r = serde_json::from_value::<T>(value.clone());
    let e = r.expect_err(&format!("{value} was read"));
    assert!(e.to_string().contains(why), "{value}: {e}");
}

#[test]
fn every_variant_round_trips() {
    let tiers = vec![
        Tier {
            up_to: Some(d("10")),
            unit_price: d("1"),
            flat_fee: d("2"),
        },
        Tier {
            up_to: None,
            unit_price: d("0.5"),
            flat_fee: d("0"),
        },
    ];
    for model in [
        PriceModel::PerUnit {
            unit_price: d("0.05"),
        },
        PriceModel::Graduated {
            tiers: tiers.clone(),
        },
        PriceModel::Volume { tiers },
        PriceModel::Package {
            block_size: d("5"),
            block_price: d("1.5"),
        },
    ] {
        round_trip(Price {
            model: model.clone(),
            included: d("0"),
            minimum: None,
        });
        round_trip(Price {
            model,
            included: d("10"),
            minimum: Some(d("3")),
        });
    }

    let fees = Fees {
        one_time: d("5"),
        monthly: d("10"),
    };
    for kind in [
        ProductKind::Compute {
            vcpu: 2,
            ram_mb: 4096,
            cpu_mhz: Some(2000),
        },
        ProductKind::Compute {
            vcpu: 1,
            ram_mb: 512,
            cpu_mhz: None,
        },
        ProductKind::Storage {
            tier: Some("ssd".into()),
            size_gb: Some(d("5")),
        },
        ProductKind::Storage {
            tier: None,
            size_gb: None,
        },
        ProductKind::Network,
        ProductKind::IpAddress,
        ProductKind::NetworkService,
        ProductKind::Service { fees: fees.clone() },
        ProductKind::Package {
            services: vec!["backup".into()],
            fees: fees.clone(),
        },
        ProductKind::Metered,
    ] {
        round_trip(Product {
            id: "p".into(),
            name: "P".into(),
            description: "d".into(),
            category: Category::Compute,
            kind,
            aliases: vec!["a".into()],
            charges: vec![],
            allowances: vec![],
        });
    }

    for component in [
        Component::Compute {
            offering: "small".into(),
            count: 2,
            hours_per_month: Some(d("100")),
            stopped_hours_per_month: Some(d("5")),
        },
        Component::Compute {
            offering: "small".into(),
            count: 1,
            hours_per_month: None,
            stopped_hours_per_month: None,
        },
        Component::Volume {
            offering: "disk".into(),
            size_gb: d("20"),
            count: 3,
        },
        Component::Traffic {
            product: "net".into(),
            gb_in: d("1.5"),
            gb_out: d("0"),
        },
        Component::Ip {
            product: "ip".into(),
            count: 2,
        },
        Component::Service {
            product: "backup".into(),
            quantity: 4,
        },
        Component::Usage {
            product: "disk-io".into(),
            meter: "io".into(),
            quantity: d("1000.25"),
        },
    ] {
        round_trip(component);
    }

    for scope in [
        DiscountScope::All,
        DiscountScope::Account("acme".into()),
        DiscountScope::Project("p".into()),
        DiscountScope::Resource("vm-1".into()),
        DiscountScope::Product("small".into()),
        DiscountScope::Category(Category::NetworkService),
    ] {
        round_trip(scope);
    }
    round_trip(DiscountValue::Percent { pct: d("10") });
    round_trip(DiscountValue::Fixed { amount: d("5.5") });
}

#[test]
fn field_order_and_plain_integers_do_not_matter() {
    let p: Price =
        serde_json::from_value(json!({ "included": "1", "unit_price": 2, "model": "per_unit" }))
            .unwrap();
    assert_eq!(p.model, PriceModel::PerUnit { unit_price: d("2") });
    let c: Component = serde_json::from_value(
        json!({ "quantity": 7, "meter": "m", "product": "p", "type": "usage" }),
    )
    .unwrap();
    assert_eq!(
        c,
        Component::Usage {
            product: "p".into(),
            meter: "m".into(),
            quantity: d("7")
        }
    );
    let s: DiscountScope =
        serde_json::from_value(json!({ "id": "storage", "type": "category" })).unwrap();
    assert_eq!(s, DiscountScope::Category(Category::Storage));
}

#[test]
fn other_variants_fields_and_missing_fields_are_refused() {
    refused::<Price>(
        json!({ "model": "per_unit", "unit_price": "1", "tiers": [] }),
        "unknown field `tiers`",
    );
    refused::<Price>(
        json!({ "model": "package", "block_size": "1" }),
        "missing field `block_price`",
    );
    refused::<Price>(
        json!({ "model": "per_unit", "unit_prise": "1" }),
        "unknown field `unit_prise`",
    );
    refused::<Price>(json!({ "unit_price": "1" }), "missing field `model`");
    refused::<Price>(
        json!({ "model": "flat", "unit_price": "1" }),
        "unknown variant `flat`",
    );
    let product = |extra: Value| {
        let mut p = json!({ "id": "p", "name": "P", "category": "network", "type": "network" });
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    refused::<Product>(product(json!({ "vcpu": 1 })), "unknown field `vcpu`");
    refused::<Product>(
        product(json!({ "type": "compute", "vcpu": 1 })),
        "missing field `ram_mb`",
    );
    refused::<Product>(
        product(json!({ "type": "service" })),
        "missing field `fees`",
    );
    refused::<Product>(
        product(json!({ "colour": "red" })),
        "unknown field `colour`",
    );
    refused::<Component>(
        json!({ "type": "service", "product": "b", "quantity": "1.5" }),
        "expected u32",
    );
    refused::<Component>(
        json!({ "type": "ip", "product": "ip", "count": 1, "meter": "m" }),
        "unknown field `meter`",
    );
    refused::<Component>(
        json!({ "type": "usage", "product": "p", "meter": "m" }),
        "missing field `quantity`",
    );
    refused::<DiscountScope>(json!({ "type": "account" }), "missing field `id`");
    refused::<DiscountScope>(json!({ "type": "all", "id": "x" }), "unknown field `id`");
    refused::<DiscountScope>(
        json!({ "type": "category", "id": "gold" }),
        "unknown variant `gold`",
    );
    refused::<DiscountValue>(
        json!({ "type": "fixed", "pct": "1" }),
        "unknown field `pct`",
    );
}

#[test]
fn decimals_with_a_fraction_must_be_strings() {
    let why = "write the decimal as a string";
    refused::<Price>(json!({ "model": "per_unit", "unit_price": 0.05 }), why);
    refused::<Price>(
        json!({ "model": "graduated", "tiers": [{ "up_to": 1.5, "unit_price": "1" }] }),
        why,
    );
    refused::<Component>(
        json!({ "type": "usage", "product": "p", "meter": "m", "quantity": 0.5 }),
        why,
    );
    refused::<DiscountValue>(json!({ "type": "percent", "pct": 12.5 }), why);
    let mut v: Value = serde_json::from_str(CLOUDSTACK).unwrap();
    v["fx_rates"]["EUR"] = json!(1.17);
    refused::<Catalog>(v, why);
    // Integers and strings (plain or scientific) read as before.
    let p: Price =
        serde_json::from_value(json!({ "model": "per_unit", "unit_price": "1e-3", "minimum": -2 }))
            .unwrap();
    assert_eq!(
        p.model,
        PriceModel::PerUnit {
            unit_price: d("0.001")
        }
    );
    assert_eq!(p.minimum, Some(d("-2")));
}

#[test]
fn example_catalogs_survive_a_round_trip() {
    for text in [CLOUDSTACK, OPENSTACK] {
        let catalog = Catalog::from_json(text).unwrap();
        assert_eq!(Catalog::from_json(&catalog.to_json()).unwrap(), catalog);
    }
}
