//! Shared helpers for the pricing crate's integration tests: example data and record builders.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use pricing::{parse_json, Account, AccountBook, Catalog, Unit, UsageRecord};
use rust_decimal::Decimal;

pub const CLOUDSTACK: &str = include_str!("../../../examples/catalogs/cloudstack.json");
pub const OPENSTACK: &str = include_str!("../../../examples/catalogs/openstack.json");
pub const CLOUDSTACK_ACCOUNTS: &str = include_str!("../../../examples/accounts/cloudstack.json");
pub const OPENSTACK_ACCOUNTS: &str = include_str!("../../../examples/accounts/openstack.json");

pub fn cloudstack() -> Catalog {
    Catalog::from_json(CLOUDSTACK).expect("example catalog is valid")
}

pub fn openstack() -> Catalog {
    Catalog::from_json(OPENSTACK).expect("example catalog is valid")
}

pub fn account(book: &str, id: &str) -> Account {
    let book: AccountBook = parse_json(book).expect("example accounts are valid");
    book.account(id).expect("account exists").clone()
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test timestamp")
        .with_timezone(&Utc)
}

pub fn d(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}

/// A record of `quantity` `unit` of `product`/`meter` for `resource`, starting at `start` for an hour.
pub fn rec(
    account: &str,
    resource: &str,
    product: &str,
    meter: &str,
    quantity: &str,
    unit: Unit,
    start: &str,
) -> UsageRecord {
    let start = t(start);
    UsageRecord {
        record_id: None,
        account: account.into(),
        project: None,
        resource: resource.into(),
        product: product.into(),
        meter: meter.into(),
        quantity: d(quantity),
        unit,
        start,
        end: start + Duration::hours(1),
        tags: Vec::new(),
        region: None,
    }
}

/// A bare account with nothing but an id, the catalog currency and optional tax.
pub fn bare_account(id: &str) -> Account {
    Account {
        id: id.into(),
        name: id.into(),
        address: Vec::new(),
        domain: None,
        country: None,
        vat_id: None,
        currency: None,
        region: None,
        tax_jurisdiction: None,
        sla_tier: None,
        availability_pct: None,
        term: None,
        subscriptions: Vec::new(),
        discounts: Vec::new(),
        prices: Vec::new(),
        invoice_blocks: None,
        coupons: Vec::new(),
        cost_codes: Vec::new(),
        prepaid_credit: Decimal::ZERO,
        balance_brought_forward: Decimal::ZERO,
        payments: Vec::new(),
        billing_period: pricing::PeriodKind::Month,
        payment_terms_days: 30,
        late_usage: None,
        reseller: None,
        resells: None,
    }
}

/// The seed 000 invoice's usage, one record per line.
pub fn seed_000_records() -> Vec<UsageRecord> {
    let a = "bu1user1";
    let at = "2017-02-14T00:00:00Z";
    vec![
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
            "3358.9905",
            Unit::GigabyteHours,
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
        rec(
            a,
            "vol-3",
            "root-volume",
            "volume.gbh",
            "14184.2105",
            Unit::GigabyteHours,
            at,
        ),
        rec(
            a,
            "vol-4",
            "medium-disk",
            "volume.gbh",
            "79158.3333",
            Unit::GigabyteHours,
            at,
        ),
        rec(
            a,
            "router-1",
            "network",
            "net.sent",
            "10737418",
            Unit::Bytes,
            at,
        ),
        rec(
            a,
            "router-1",
            "network",
            "net.received",
            "10737418",
            Unit::Bytes,
            at,
        ),
        rec(a, "ip-1", "public-ip", "ip.hours", "3738", Unit::Hours, at),
        rec(
            a,
            "net-1",
            "isolated-net",
            "service.hours",
            "5375",
            Unit::Hours,
            at,
        ),
        rec(
            a,
            "pf-1",
            "port-forwarding",
            "service.hours",
            "370",
            Unit::Hours,
            at,
        ),
    ]
}
