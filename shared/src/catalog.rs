//! The catalog schema: currencies, meters, products and their prices, regions, SLA tiers, taxes,
//! discounts, billing tags, terms, starter templates and reseller overlays.
//!
//! A catalog is plain data (serde JSON, `schema_version` 1). [`Catalog::from_json`] (in
//! `validate`, which knows the rules) parses and validates it; only a validated catalog reaches
//! the pricing functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::mapping::ImportOptions;
pub use crate::role::MeterRole;

use crate::money::RoundingMode;
use crate::price::Price;
use crate::quote::QuoteTier;
use crate::unit::Unit;

/// The catalog format this build reads and writes.
pub const CATALOG_SCHEMA_VERSION: u32 = 1;

fn default_hours_per_month() -> Decimal {
    // 365 days x 24 hours / 12 months: the month length cloud providers quote monthly prices for.
    Decimal::from(730)
}

fn one() -> Decimal {
    Decimal::ONE
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub schema_version: u32,
    /// Stable id of the price list (`cloudstack-example`); invoices name it.
    pub id: String,
    /// Version of the prices (`2017-02.1`); every invoice and estimate names the version that priced it.
    pub version: String,
    pub name: String,
    pub currency: CurrencySettings,
    /// Fixed exchange rates: one unit of the catalog currency is worth `rate` units of the key.
    #[serde(default, deserialize_with = "crate::shape::decimal_map")]
    pub fx_rates: BTreeMap<String, Decimal>,
    /// Hours in a billing month, used for GB-month prices and the estimate's default runtime.
    #[serde(
        default = "default_hours_per_month",
        deserialize_with = "crate::shape::decimal"
    )]
    pub hours_per_month: Decimal,
    /// The invoice sections in display order (`Running VM`, `Stopped VM`, `Storage`, ...).
    #[serde(default)]
    pub sections: Vec<String>,
    pub meters: Vec<Meter>,
    pub products: Vec<Product>,
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub sla_tiers: Vec<SlaTier>,
    #[serde(default)]
    pub tax_jurisdictions: Vec<TaxJurisdiction>,
    /// Promotions that apply to everyone (account-specific discounts live on the account).
    #[serde(default)]
    pub discounts: Vec<Discount>,
    #[serde(default)]
    pub billing_tags: Vec<BillingTag>,
    #[serde(default)]
    pub terms: Vec<Term>,
    /// Starter apps for the storefront's app builder.
    #[serde(default)]
    pub templates: Vec<Template>,
    #[serde(default)]
    pub resellers: Vec<ResellerOverlay>,
    /// Set on a reseller's published catalog: its brand, for the storefront.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<Brand>,
    /// What the rater does with usage of a period already closed by its final invoice; an
    /// account may override it (`Account::late_usage`). `refuse` when absent, and not written
    /// then, so that stored catalog versions read and write the same bytes as before.
    #[serde(default, skip_serializing_if = "LateUsagePolicy::is_refuse")]
    pub late_usage: LateUsagePolicy,
    /// How the importers map exports onto this catalog (`cloudstack`, `ceilometer`): the same
    /// settings for the rater, the CLI and the storefront's invoice preview. Kept as written
    /// and parsed, with its checks, only where exports are read
    /// ([`ImportOptions::of_catalog`]): the storefront's first download carries no importer
    /// settings. Absent means the defaults, and is not written then, so that stored catalog
    /// versions keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mappings: Option<serde_json::Value>,
    /// Discounts behind a code an account redeems (seed 001's discounts with a start and an
    /// end, seed 000's promotions): see [`Coupon`]. Not written when empty, so that stored
    /// catalog versions keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<Coupon>,
    /// The provider's cost codes (Abiquo's cost codes of appliance images, seed 003): what
    /// usage is booked under, for invoice blocks; an account's own codes come first (see
    /// [`cost_code_of`]). Not written when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cost_codes: Vec<CostCode>,
}

/// Longest coupon code accepted, in bytes.
pub const COUPON_CODE_MAX: usize = 64;

/// A discount behind a code. An account redeems the code at an instant (`Account::coupons`);
/// from then on, for `duration_months` or for good, the discount applies to its bills after
/// the term's, the catalog's and the account's own discounts. The book of accounts is where
/// redemptions are stored, so it is there that the redemption window and the limit are
/// enforced (`AccountBook::validate`): a book that redeems a code more often than it allows,
/// or outside its window, does not load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coupon {
    /// What the customer types: letters, digits, `-` and `_`, matched without regard to case.
    pub code: String,
    pub name: String,
    /// What the discount applies to; every charge when absent.
    #[serde(default = "scope_all")]
    pub scope: DiscountScope,
    pub value: DiscountValue,
    /// The code can be redeemed in `[redeem_from, redeem_until)`; open ends are unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeem_from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeem_until: Option<DateTime<Utc>>,
    /// How many accounts may redeem the code; any number when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redemptions: Option<u32>,
    /// Months the discount lasts from its redemption; for good when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_months: Option<u32>,
}

/// A coupon's scope when it names none: every charge.
fn scope_all() -> DiscountScope {
    DiscountScope::All
}

impl Coupon {
    /// True when `code` names this coupon (codes are matched without regard to ASCII case).
    pub fn is(&self, code: &str) -> bool {
        self.code.eq_ignore_ascii_case(code)
    }

    /// The discount a redemption at `at` gives: valid from `at` for `duration_months` (to the
    /// same instant that many months later, clamped to the month's end), or for good.
    pub fn discount_from(&self, at: DateTime<Utc>) -> Discount {
        let valid_to = self
            .duration_months
            .and_then(|m| at.checked_add_months(chrono::Months::new(m)));
        Discount {
            id: format!("coupon:{}", self.code),
            name: format!("{} (coupon {})", self.name, self.code),
            scope: self.scope.clone(),
            value: self.value.clone(),
            valid_from: Some(at),
            valid_to,
        }
    }

    /// True when the code can be redeemed at `at`.
    pub fn redeemable_at(&self, at: DateTime<Utc>) -> bool {
        self.redeem_from.is_none_or(|f| f <= at) && self.redeem_until.is_none_or(|u| at < u)
    }
}

/// A cost code (Abiquo's cost code of an appliance image, seed 003; a customer's cost
/// centre): the usage it books, named by resource, project or product. Used to split invoices
/// into blocks (`BlockBy::CostCode`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostCode {
    pub code: String,
    pub name: String,
    /// Resources (VMs, volumes) booked under the code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Projects (tenants, VDCs) whose usage is booked under the code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// Products booked under the code (an image's licence product, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
}

/// The cost code of usage of `product` by `resource` in `project`: the most specific match
/// first (a resource, then a project, then a product), the account's own codes before the
/// catalog's at each level. None when no code names it.
pub fn cost_code_of<'a>(
    account_codes: &'a [CostCode],
    catalog_codes: &'a [CostCode],
    resource: &str,
    project: &str,
    product: &str,
) -> Option<&'a CostCode> {
    let all = || account_codes.iter().chain(catalog_codes);
    all()
        .find(|c| !resource.is_empty() && c.resources.iter().any(|r| r == resource))
        .or_else(|| all().find(|c| !project.is_empty() && c.projects.iter().any(|p| p == project)))
        .or_else(|| all().find(|c| c.products.iter().any(|p| p == product)))
}

/// What happens to usage that arrives for a period whose final invoice is already issued. A
/// final invoice is immutable: late usage is refused, billed on the next invoice, or billed by
/// a debit note against the closed invoice. The pricing crate only holds the setting and
/// resolves it (`invoice::late_usage_policy`); the rater applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LateUsagePolicy {
    /// The batch is refused whole, naming the final invoice (what the rater always did).
    #[default]
    Refuse,
    /// The difference it makes to the closed period is billed on the account's next invoice,
    /// in its `Adjustments` section (see `invoice::Statement::adjustments`).
    NextPeriod,
    /// The difference is issued at once as a debit note against the closed invoice
    /// (see `note::Note`).
    Note,
}

impl LateUsagePolicy {
    /// True for the default, which catalogs and accounts do not write.
    pub fn is_refuse(&self) -> bool {
        *self == LateUsagePolicy::Refuse
    }

    /// The policy's name as written in catalogs and accounts (`next_period`).
    pub fn name(self) -> &'static str {
        match self {
            LateUsagePolicy::Refuse => "refuse",
            LateUsagePolicy::NextPeriod => "next_period",
            LateUsagePolicy::Note => "note",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurrencySettings {
    /// ISO 4217 code of every price in the catalog.
    pub code: String,
    /// Rounding mode of every amount priced from this catalog. Named explicitly on purpose.
    pub rounding: RoundingMode,
}

/// A measured quantity: Atomia's counter (id, name, unit name, measurement unit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    pub id: String,
    pub name: String,
    /// The unit quantities are billed in; record quantities are converted to it exactly.
    pub unit: Unit,
    /// The label printed for the unit (`h`, `GB`, `GB.h`, `ips`); defaults to the unit's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_name: Option<String>,
    /// Prices are per this many units (Atomia's measurement unit: 1,000,000 requests).
    #[serde(default = "one", deserialize_with = "crate::shape::decimal")]
    pub measurement_unit: Decimal,
    /// The invoice section its lines go to.
    pub section: String,
    /// What the meter measures for estimates and importers (a VM's running hours, a volume's
    /// GB-hours...). Estimates find a product's meter by role; exports map usage types to roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<MeterRole>,
}

impl MeterRole {
    /// The role's name as written in catalogs (`traffic_in`).
    pub fn name(self) -> &'static str {
        match self {
            MeterRole::Running => "running",
            MeterRole::Stopped => "stopped",
            MeterRole::Storage => "storage",
            MeterRole::TrafficIn => "traffic_in",
            MeterRole::TrafficOut => "traffic_out",
            MeterRole::IpHours => "ip_hours",
            MeterRole::ServiceHours => "service_hours",
            MeterRole::ReadRequests => "read_requests",
            MeterRole::WriteRequests => "write_requests",
            MeterRole::SnapshotStorage => "snapshot_storage",
        }
    }
}

impl Meter {
    pub fn unit_label(&self) -> &str {
        self.unit_name.as_deref().unwrap_or(self.unit.label())
    }
}

/// What a charge is, for SLA coverage, discounts, billing tags and reseller markups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Compute,
    Cpu,
    Memory,
    Storage,
    Snapshot,
    Image,
    Network,
    Ip,
    NetworkService,
    Service,
    Package,
    Support,
    Other,
}

impl Category {
    pub const ALL: [Category; 13] = [
        Category::Compute,
        Category::Cpu,
        Category::Memory,
        Category::Storage,
        Category::Snapshot,
        Category::Image,
        Category::Network,
        Category::Ip,
        Category::NetworkService,
        Category::Service,
        Category::Package,
        Category::Support,
        Category::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::Compute => "Compute",
            Category::Cpu => "CPU",
            Category::Memory => "Memory",
            Category::Storage => "Storage",
            Category::Snapshot => "Snapshots",
            Category::Image => "Images",
            Category::Network => "Network",
            Category::Ip => "IP addresses",
            Category::NetworkService => "Network services",
            Category::Service => "Services",
            Category::Package => "Packages",
            Category::Support => "Support",
            Category::Other => "Other",
        }
    }
}

/// The kind of thing a product is, with what the storefront shows about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProductKind {
    /// A VM service offering: priced running and stopped per hour.
    Compute {
        vcpu: u32,
        ram_mb: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpu_mhz: Option<u32>,
    },
    /// A disk offering or storage tier: priced per GB-hour or GB-month.
    Storage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<String>,
        /// Fixed size of the offering, when it has one (`Small Disk SATA, 5 GB`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_gb: Option<Decimal>,
    },
    /// Network traffic, priced per GB in and out.
    Network,
    /// Public IP addresses, per hour.
    IpAddress,
    /// Network offerings, port forwarding, load balancers, VPN users: per hour or per unit.
    NetworkService,
    /// A subscribed service (backup, DDoS protection, monitoring): one-time and monthly fees.
    Service { fees: Fees },
    /// A bundle of services sold together at its own fees.
    Package { services: Vec<String>, fees: Fees },
    /// Any other metered thing (custom usage).
    Metered,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fees {
    #[serde(default, deserialize_with = "crate::shape::decimal")]
    pub one_time: Decimal,
    #[serde(default, deserialize_with = "crate::shape::decimal")]
    pub monthly: Decimal,
}

/// A product. In JSON its kind's `type` tag and fields sit beside the common fields;
/// serialization flattens [`ProductKind`], deserialization reads the same shape through
/// [`ProductShape`] (see `crate::shape` for why not `flatten`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ProductShape")]
pub struct Product {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub category: Category,
    #[serde(flatten)]
    pub kind: ProductKind,
    /// External ids that name this product in usage exports: CloudStack offering UUIDs,
    /// Ceilometer flavors, volume types, Abiquo cost codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Usage charges: one price per meter this product is measured by.
    #[serde(default)]
    pub charges: Vec<Charge>,
    /// A usage plan's allowances (services and packages only; seed 004's StratosLive plans):
    /// what its subscribers may use each month before over-usage is charged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowances: Vec<Allowance>,
}

/// A usage plan's allowance of one meter (seed 004): the quantity its subscribers may use in a
/// month at no charge, and the price of what they use beyond it. The plan held at the end of
/// the invoice's period grants it, as StratosLive compares the month's usage with "the
/// active subscription" when the bill is generated: a plan change re-evaluates the limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    pub meter: String,
    /// In the meter's unit, per subscribed unit of the plan.
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub included: Decimal,
    /// The price of usage beyond the allowance; absent, the meter's own price applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overage: Option<Price>,
}

/// Every field a [`Product`] may have in JSON, read in one pass; [`Product::try_from`] checks
/// that only the tagged kind's fields are given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductShape {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    category: Category,
    #[serde(rename = "type")]
    kind: KindTag,
    vcpu: Option<u32>,
    ram_mb: Option<u32>,
    cpu_mhz: Option<u32>,
    tier: Option<String>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    size_gb: Option<Decimal>,
    fees: Option<Fees>,
    services: Option<Vec<String>>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    charges: Vec<Charge>,
    #[serde(default)]
    allowances: Vec<Allowance>,
}

/// The `type` tag of a [`ProductKind`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum KindTag {
    Compute,
    Storage,
    Network,
    IpAddress,
    NetworkService,
    Service,
    Package,
    Metered,
}

impl TryFrom<ProductShape> for Product {
    type Error = String;

    fn try_from(s: ProductShape) -> Result<Product, String> {
        use crate::shape::{only, required};
        let fields = [
            ("vcpu", s.vcpu.is_some()),
            ("ram_mb", s.ram_mb.is_some()),
            ("cpu_mhz", s.cpu_mhz.is_some()),
            ("tier", s.tier.is_some()),
            ("size_gb", s.size_gb.is_some()),
            ("fees", s.fees.is_some()),
            ("services", s.services.is_some()),
            ("allowances", !s.allowances.is_empty()),
        ];
        let kind = match s.kind {
            KindTag::Compute => {
                only(&fields, &["vcpu", "ram_mb", "cpu_mhz"])?;
                ProductKind::Compute {
                    vcpu: required(s.vcpu, "vcpu")?,
                    ram_mb: required(s.ram_mb, "ram_mb")?,
                    cpu_mhz: s.cpu_mhz,
                }
            }
            KindTag::Storage => {
                only(&fields, &["tier", "size_gb"])?;
                ProductKind::Storage {
                    tier: s.tier,
                    size_gb: s.size_gb,
                }
            }
            KindTag::Service => {
                only(&fields, &["fees", "allowances"])?;
                ProductKind::Service {
                    fees: required(s.fees, "fees")?,
                }
            }
            KindTag::Package => {
                only(&fields, &["services", "fees", "allowances"])?;
                ProductKind::Package {
                    services: required(s.services, "services")?,
                    fees: required(s.fees, "fees")?,
                }
            }
            unit => {
                only(&fields, &[])?;
                match unit {
                    KindTag::Network => ProductKind::Network,
                    KindTag::IpAddress => ProductKind::IpAddress,
                    KindTag::NetworkService => ProductKind::NetworkService,
                    _ => ProductKind::Metered,
                }
            }
        };
        Ok(Product {
            id: s.id,
            name: s.name,
            description: s.description,
            category: s.category,
            kind,
            aliases: s.aliases,
            charges: s.charges,
            allowances: s.allowances,
        })
    }
}

impl Product {
    pub fn fees(&self) -> Option<&Fees> {
        match &self.kind {
            ProductKind::Service { fees } | ProductKind::Package { fees, .. } => Some(fees),
            _ => None,
        }
    }
}

/// The price of one meter of one product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    pub meter: String,
    pub price: Price,
    /// Overrides the product's category for this charge (a VM's `cpu` part, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

/// A datacenter or zone, with its own prices where they differ (Abiquo prices per datacenter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<PriceOverride>,
    /// Products not sold in this region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
    /// False for a datacenter whose usage is not billed (Abiquo's datacenter filtering, seed
    /// 003: a provider's private datacenter for platform administration). Its usage is still
    /// imported and stored, so that the records are accounted for once, but no invoice bills
    /// it and no estimate can be made in it. True when absent, and not written then.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub billed: bool,
}

/// `Region::billed` when absent: billed.
fn yes() -> bool {
    true
}

/// True for the default `billed`, which catalogs do not write (stored versions keep their bytes).
fn is_yes(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverride {
    pub product: String,
    pub meter: String,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaTier {
    pub id: String,
    pub name: String,
    /// Promised monthly availability, in percent (99.95).
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub uptime_pct: Decimal,
    /// Support's first-response time, in hours.
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub support_response_hours: Decimal,
    /// Price uplift on the covered categories, in percent of their charges.
    #[serde(default, deserialize_with = "crate::shape::decimal")]
    pub uplift_pct: Decimal,
    /// The categories whose charges the uplift applies to and the credits refund.
    pub covers: Vec<Category>,
    /// Service credits: the first step (most severe first after sorting) whose `below_pct` is above
    /// the measured availability gives its credit.
    #[serde(default)]
    pub credits: Vec<CreditStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditStep {
    /// Availability strictly below this percentage earns the credit.
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub below_pct: Decimal,
    /// Credit in percent of the covered charges (uplift included).
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub credit_pct: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxLevel {
    /// Tax is computed and rounded on each line, then summed.
    Line,
    /// Tax is computed once on the invoice's taxable total and rounded once.
    #[default]
    Invoice,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxJurisdiction {
    pub id: String,
    pub name: String,
    pub level: TaxLevel,
    /// Each tax of the jurisdiction (VAT 20 %; GST 5 % + PST 7 %), applied to the same base.
    pub taxes: Vec<TaxRate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    pub name: String,
    /// Rate in percent (20 for 20 %).
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub rate_pct: Decimal,
}

/// What a discount applies to (CloudStack's domain, project, VM and volume, plus catalog scopes).
/// JSON: `{"type": "account", "id": "acme"}`, `{"type": "all"}`; read through [`ScopeShape`]
/// (adjacently tagged enums buffer `id` in serde's `Content` when it comes first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "id",
    rename_all = "snake_case",
    try_from = "ScopeShape"
)]
pub enum DiscountScope {
    /// Every charge of the invoice.
    All,
    /// Every charge of one account (CloudStack domain).
    Account(String),
    Project(String),
    /// One resource: a VM, a volume.
    Resource(String),
    Product(String),
    Category(Category),
}

/// Both fields a [`DiscountScope`] may have; other fields are ignored, as the derived adjacently
/// tagged enum did.
#[derive(Deserialize)]
struct ScopeShape {
    #[serde(rename = "type")]
    scope: ScopeTag,
    id: Option<String>,
}

/// The `type` tag of a [`DiscountScope`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScopeTag {
    All,
    Account,
    Project,
    Resource,
    Product,
    Category,
}

impl TryFrom<ScopeShape> for DiscountScope {
    type Error = String;

    fn try_from(s: ScopeShape) -> Result<DiscountScope, String> {
        use serde::de::IntoDeserializer;
        let id = || crate::shape::required(s.id.clone(), "id");
        Ok(match s.scope {
            ScopeTag::All => {
                crate::shape::only(&[("id", s.id.is_some())], &[])?;
                DiscountScope::All
            }
            ScopeTag::Account => DiscountScope::Account(id()?),
            ScopeTag::Project => DiscountScope::Project(id()?),
            ScopeTag::Resource => DiscountScope::Resource(id()?),
            ScopeTag::Product => DiscountScope::Product(id()?),
            // Read by `Category`'s own impl, so the "unknown variant" message stays serde's.
            ScopeTag::Category => DiscountScope::Category(
                Category::deserialize(id()?.into_deserializer())
                    .map_err(|e: serde::de::value::Error| e.to_string())?,
            ),
        })
    }
}

/// JSON: `{"type": "percent", "pct": "10"}` or `{"type": "fixed", "amount": "5"}`; read through
/// [`ValueShape`] (internally tagged enums buffer in serde's `Content`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "ValueShape"
)]
pub enum DiscountValue {
    /// A percentage of the charges in scope.
    Percent { pct: Decimal },
    /// A fixed amount per month in the catalog currency, never more than the charges in scope.
    Fixed { amount: Decimal },
}

/// Every field a [`DiscountValue`] may have in JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueShape {
    #[serde(rename = "type")]
    value: ValueTag,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    pct: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    amount: Option<Decimal>,
}

/// The `type` tag of a [`DiscountValue`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ValueTag {
    Percent,
    Fixed,
}

impl TryFrom<ValueShape> for DiscountValue {
    type Error = String;

    fn try_from(s: ValueShape) -> Result<DiscountValue, String> {
        use crate::shape::{only, required};
        let fields = [("pct", s.pct.is_some()), ("amount", s.amount.is_some())];
        Ok(match s.value {
            ValueTag::Percent => {
                only(&fields, &["pct"])?;
                DiscountValue::Percent {
                    pct: required(s.pct, "pct")?,
                }
            }
            ValueTag::Fixed => {
                only(&fields, &["amount"])?;
                DiscountValue::Fixed {
                    amount: required(s.amount, "amount")?,
                }
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    pub id: String,
    pub name: String,
    pub scope: DiscountScope,
    pub value: DiscountValue,
    /// Validity window `[valid_from, valid_to)`; open ends are unbounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
}

/// A resource tag that switches billing off for some categories (`Billing:noCPU`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingTag {
    pub tag: String,
    pub categories: Vec<Category>,
}

/// The longest commitment term a catalog may offer, in months (ten years). An estimate prices
/// each month of a term with the promotions valid as it begins, so the bound also bounds its
/// work.
pub const TERM_MONTHS_MAX: u32 = 120;

/// A commitment term with its discount (1 month list price, 12 months -10 %...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Term {
    pub id: String,
    pub name: String,
    /// 1 to [`TERM_MONTHS_MAX`].
    pub months: u32,
    #[serde(default, deserialize_with = "crate::shape::decimal")]
    pub discount_pct: Decimal,
}

/// A starter app for the storefront: named tiers of components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub tiers: Vec<QuoteTier>,
}

/// A reseller's brand, shown by the white-labelled storefront.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    pub name: String,
    #[serde(default)]
    pub logo_url: String,
    /// CSS colours by role: `primary`, `accent`, `background`, `text`.
    #[serde(default)]
    pub colors: BTreeMap<String, String>,
}

/// What a reseller changes on the wholesale catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResellerOverlay {
    pub id: String,
    pub brand: Brand,
    /// Hostnames the storefront recognises this reseller by.
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub markup: Markup,
    #[serde(default)]
    pub hidden_products: Vec<String>,
    /// New display names by product id.
    #[serde(default)]
    pub renamed: BTreeMap<String, String>,
    /// The reseller's own currency (converted with the catalog's fixed rates) and rounding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<CurrencySettings>,
    /// The reseller's own tax jurisdictions; replace the wholesale ones when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_jurisdictions: Option<Vec<TaxJurisdiction>>,
}

/// Markup in percent; the most specific one wins: product, then category, then global.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Markup {
    #[serde(default, deserialize_with = "crate::shape::decimal")]
    pub global_pct: Decimal,
    #[serde(default, deserialize_with = "crate::shape::decimal_map")]
    pub categories: BTreeMap<Category, Decimal>,
    #[serde(default, deserialize_with = "crate::shape::decimal_map")]
    pub products: BTreeMap<String, Decimal>,
}

impl Markup {
    pub fn pct_for(&self, product: &str, category: Category) -> Decimal {
        self.products
            .get(product)
            .or_else(|| self.categories.get(&category))
            .copied()
            .unwrap_or(self.global_pct)
    }
}

impl Catalog {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a catalog always serializes")
    }

    pub fn product(&self, id: &str) -> Option<&Product> {
        self.products.iter().find(|p| p.id == id)
    }

    /// The meter of `product` that plays `role`, if the product is priced for one.
    pub fn meter_for_role(&self, product: &str, role: MeterRole) -> Option<&Meter> {
        self.product(product)?
            .charges
            .iter()
            .filter_map(|c| self.meter(&c.meter))
            .find(|m| m.role == Some(role))
    }

    pub fn meter(&self, id: &str) -> Option<&Meter> {
        self.meters.iter().find(|m| m.id == id)
    }

    pub fn region(&self, id: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    pub fn sla_tier(&self, id: &str) -> Option<&SlaTier> {
        self.sla_tiers.iter().find(|s| s.id == id)
    }

    pub fn tax_jurisdiction(&self, id: &str) -> Option<&TaxJurisdiction> {
        self.tax_jurisdictions.iter().find(|t| t.id == id)
    }

    pub fn term(&self, id: &str) -> Option<&Term> {
        self.terms.iter().find(|t| t.id == id)
    }

    pub fn reseller(&self, id: &str) -> Option<&ResellerOverlay> {
        self.resellers.iter().find(|r| r.id == id)
    }

    /// The product whose id or alias is `key` (exports name offerings by their own ids).
    pub fn resolve_product(&self, key: &str) -> Option<&Product> {
        self.product(key).or_else(|| {
            self.products
                .iter()
                .find(|p| p.aliases.iter().any(|a| a == key))
        })
    }

    /// The price of `meter` on `product` in `region`: the region's override, else the product's.
    pub fn price_of(&self, region: Option<&str>, product: &str, meter: &str) -> Option<&Price> {
        if let Some(r) = region.and_then(|r| self.region(r)) {
            if let Some(o) = r
                .overrides
                .iter()
                .find(|o| o.product == product && o.meter == meter)
            {
                return Some(&o.price);
            }
        }
        self.product(product)?
            .charges
            .iter()
            .find(|c| c.meter == meter)
            .map(|c| &c.price)
    }

    /// The category a charge counts in: the charge's own, else its product's.
    pub fn charge_category(&self, product: &str, meter: &str) -> Option<Category> {
        let p = self.product(product)?;
        Some(
            p.charges
                .iter()
                .find(|c| c.meter == meter)
                .and_then(|c| c.category)
                .unwrap_or(p.category),
        )
    }

    /// The section order: declared sections first, then sections of meters in meter order.
    pub fn section_order(&self) -> Vec<String> {
        let mut order = self.sections.clone();
        for m in &self.meters {
            if !order.contains(&m.section) {
                order.push(m.section.clone());
            }
        }
        order
    }
}
