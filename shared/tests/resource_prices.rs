//! Seed 001 (itelligence): a running VM priced by its vCPUs, its RAM and its OS image, each switched off by its own billing tag (`Billing:noCPU` keeps the RAM billed).

mod common;

use common::*;
use pricing::import::{import_and_rate, Format, ImportOptions};
use pricing::{BillingPeriod, Catalog};
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// The example catalog plus per-resource prices: 0.02 a vCPU-hour, 0.005 a GB-hour of RAM,
/// 0.03 an hour of the Windows image (Linux free), and a mapping that prices RUNNING_VM
/// records by those three instead of by the service offering.
fn catalog() -> Catalog {
    let mut c: Value = serde_json::from_str(CLOUDSTACK).unwrap();
    let meters = c["meters"].as_array_mut().unwrap();
    meters.push(json!({ "id": "vcpu.hours", "name": "vCPU time", "unit": "hours", "section": "Running VM" }));
    meters.push(json!({ "id": "ram.gbh", "name": "RAM over time", "unit": "gigabyte_hours", "unit_name": "GB.h", "section": "Running VM" }));
    meters.push(json!({ "id": "image.hours", "name": "Image time", "unit": "hours", "section": "Running VM" }));
    let price = |p: &str| json!({ "model": "per_unit", "unit_price": p });
    let products = c["products"].as_array_mut().unwrap();
    products.push(
        json!({ "id": "vcpu", "name": "vCPU", "category": "cpu", "type": "metered",
        "charges": [ { "meter": "vcpu.hours", "price": price("0.02") } ] }),
    );
    products.push(
        json!({ "id": "ram", "name": "RAM", "category": "memory", "type": "metered",
        "charges": [ { "meter": "ram.gbh", "price": price("0.005") } ] }),
    );
    products.push(json!({ "id": "windows", "name": "Windows Server 2016", "category": "image", "type": "metered",
        "aliases": ["tpl-win"], "charges": [ { "meter": "image.hours", "price": price("0.03") } ] }));
    products.push(json!({ "id": "linux", "name": "CentOS 7", "category": "image", "type": "metered",
        "aliases": ["tpl-linux"], "charges": [ { "meter": "image.hours", "price": price("0.00") } ] }));
    let mut rules: Vec<Value> = c["mappings"]["cloudstack"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["usage_type"] != 1)
        .cloned()
        .collect();
    rules.splice(0..0, [
        json!({ "usage_type": 1, "name": "RUNNING_VM", "product": {"product": "vcpu"}, "meter": {"id": "vcpu.hours"}, "quantity": "cpu_hours" }),
        json!({ "usage_type": 1, "name": "RUNNING_VM", "product": {"product": "ram"}, "meter": {"id": "ram.gbh"}, "quantity": "memory_gb_hours" }),
        json!({ "usage_type": 1, "name": "RUNNING_VM", "product": "template", "meter": {"id": "image.hours"}, "quantity": "hours" }),
    ]);
    c["mappings"]["cloudstack"]["rules"] = Value::Array(rules);
    Catalog::from_json(&c.to_string()).unwrap_or_else(|e| panic!("{e}"))
}

/// A RUNNING_VM record of `hours` on 14 February 2017.
fn running(
    vm: &str,
    cpus: u32,
    memory_mb: u32,
    template: &str,
    hours: u32,
    tag: Option<&str>,
) -> Value {
    let mut r = json!({
        "account": "bu1user1", "domain": "bu1.corporate.com", "zoneid": "lon1",
        "usagetype": 1, "rawusage": hours.to_string(), "usageid": vm, "virtualmachineid": vm,
        "offeringid": "copper", "templateid": template, "cpunumber": cpus, "memory": memory_mb,
        "startdate": "2017-02-14'T'00:00:00+00:00", "enddate": "2017-02-14'T'23:59:59+00:00"
    });
    if let Some(t) = tag {
        r["tags"] = json!([{ "key": "Billing", "value": t }]);
    }
    r
}

fn line(inv: &pricing::Invoice, product: &str) -> (Decimal, Decimal) {
    let l = inv
        .bill
        .lines()
        .find(|l| l.product == product)
        .unwrap_or_else(|| panic!("no {product} line"));
    (l.quantity, l.amount)
}

#[test]
fn cpu_ram_and_image_are_priced_and_switched_off_apart() {
    let c = catalog();
    let doc = json!({ "listusagerecordsresponse": { "count": 3, "usagerecord": [
        running("vm-a", 2, 4096, "tpl-win", 100, None),
        running("vm-b", 1, 2048, "tpl-linux", 50, Some("noCPU")),
        running("vm-c", 4, 8192, "tpl-win", 10, Some("noRAM")),
    ]}});
    let feb = BillingPeriod::month(2017, 2).unwrap();
    let options = ImportOptions::for_batch(&c, Some(feb)).unwrap();
    let rated = import_and_rate(
        Format::CloudStack,
        doc.to_string().as_bytes(),
        &c,
        &options,
        feb,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let inv = pricing::invoice(&c, &bare_account("bu1user1"), feb, &rated.usage).unwrap();
    inv.check_totals().unwrap();
    // By hand. vCPU-hours: vm-a 2 x 100 + vm-c 4 x 10 = 240 (vm-b's noCPU switches its 50
    // off), x 0.02 = 4.80. RAM: vm-a 4 GB x 100 + vm-b 2 GB x 50 = 500 GB-h (vm-c's noRAM
    // switches its 80 off), x 0.005 = 2.50: noCPU no longer switches the RAM off. Windows:
    // 100 + 10 hours x 0.03 = 3.30; Linux 50 hours free.
    assert_eq!(line(&inv, "vcpu"), (d("240"), d("4.80")));
    assert_eq!(line(&inv, "ram"), (d("500"), d("2.50")));
    assert_eq!(line(&inv, "windows"), (d("110"), d("3.30")));
    assert_eq!(line(&inv, "linux"), (d("50"), d("0.00")));
    assert_eq!(inv.bill.subtotal, d("10.60"));
    // No line prices the service offering: the mapping bills the resources instead.
    assert!(inv.bill.lines().all(|l| l.product != "copper"));
}

#[test]
fn each_rule_of_a_type_makes_its_own_record_with_its_own_id() {
    let c = catalog();
    let doc = json!([running("vm-a", 2, 3072, "tpl-win", 3, None)]).to_string();
    let records = pricing::import::import_all(
        Format::CloudStack,
        doc.as_bytes(),
        &c,
        &ImportOptions::for_batch(&c, None).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(String, String, Decimal)> = records
        .iter()
        .map(|r| (r.record_id.clone().unwrap(), r.product.clone(), r.quantity))
        .collect();
    let id = "cs:1:vm-a:2017-02-14T00:00:00Z:copper";
    assert_eq!(
        got,
        vec![
            (id.to_string(), "vcpu".to_string(), d("6")),
            // 3,072 MB = 3 GB, x 3 hours.
            (format!("{id}#1"), "ram".to_string(), d("9")),
            (format!("{id}#2"), "windows".to_string(), d("3")),
        ]
    );

    // A record without what a rule needs is refused, naming the field.
    let mut bad = running("vm-a", 2, 3072, "tpl-win", 3, None);
    bad.as_object_mut().unwrap().remove("cpunumber");
    let doc = json!([bad]).to_string();
    let e = pricing::import::import_all(
        Format::CloudStack,
        doc.as_bytes(),
        &c,
        &ImportOptions::for_batch(&c, None).unwrap(),
    )
    .unwrap_err();
    let pricing::import::ImportError::Records(b) = e else {
        panic!("{e}")
    };
    assert_eq!(b.errors[0].field, "cpunumber");
    let mut unknown = running("vm-a", 2, 3072, "tpl-bsd", 3, None);
    unknown["usageid"] = "vm-z".into();
    let doc = json!([unknown]).to_string();
    let e = pricing::import::import_all(
        Format::CloudStack,
        doc.as_bytes(),
        &c,
        &ImportOptions::for_batch(&c, None).unwrap(),
    )
    .unwrap_err();
    let pricing::import::ImportError::Records(b) = e else {
        panic!("{e}")
    };
    assert_eq!(
        (b.errors[0].field, b.errors[0].value.as_str()),
        ("templateid", "tpl-bsd")
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    /// The storefront estimates resource prices with usage components (vCPU-hours, GB-hours of
    /// RAM, image hours): the estimate is the invoice of a CloudStack export of the same VM.
    #[test]
    fn a_resource_priced_vm_is_estimated_as_it_is_invoiced(
        cpus in 1u32..64, memory_gb in 1u32..256, hours in 0u32..745, windows in proptest::bool::ANY,
    ) {
        let c = catalog();
        let template = if windows { "tpl-win" } else { "tpl-linux" };
        let doc = json!({ "listusagerecordsresponse": { "count": 1, "usagerecord": [
            running("vm-a", cpus, memory_gb * 1024, template, hours, None),
        ]}});
        let feb = BillingPeriod::month(2017, 2).unwrap();
        let options = ImportOptions::for_batch(&c, Some(feb)).unwrap();
        let rated = import_and_rate(Format::CloudStack, doc.to_string().as_bytes(), &c, &options, feb).unwrap();
        let inv = pricing::invoice(&c, &bare_account("bu1user1"), feb, &rated.usage).unwrap();
        let usage = |product: &str, meter: &str, q: u32| pricing::Component::Usage {
            product: product.into(),
            meter: meter.into(),
            quantity: Decimal::from(q),
        };
        let quote = pricing::Quote {
            name: String::new(),
            at: t("2017-02-10T00:00:00Z"),
            region: None,
            sla_tier: None,
            currency: None,
            term: None,
            tax_jurisdiction: None,
            coupon: None,
            tiers: vec![pricing::QuoteTier {
                name: "vm".into(),
                components: vec![
                    usage("vcpu", "vcpu.hours", cpus * hours),
                    usage("ram", "ram.gbh", memory_gb * hours),
                    usage(if windows { "windows" } else { "linux" }, "image.hours", hours),
                ],
            }],
        };
        let e = pricing::estimate(&c, &quote).unwrap();
        proptest::prop_assert_eq!(e.monthly_total, inv.bill.total);
    }
}
