//! The app a customer builds: tiers of components as typed (text fields), the settings around
//! them, the edits the builder offers, and validation into a [`pricing::Quote`].
//!
//! Fields are kept as the text the customer typed, so that a half-typed number keeps its place
//! and gets a message beside it instead of being lost; the share link carries the same text, so
//! a link restores exactly what was on screen.

use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use pricing::catalog::{Catalog, MeterRole, ProductKind};
use pricing::path::{ComponentField, QuotePath, SettingsOwner};
use pricing::settings::{Settings, SettingsInput};
use pricing::{Component, PricingError, Quote, QuoteTier};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most tiers an app may have. Storefront apps have a handful (web, app, db, cache...); 20 leaves
/// room for odd designs while keeping the builder usable and a shared link short.
pub const TIERS_MAX: usize = 20;
/// Most components an app may have, all tiers together. Well under the engine's
/// [`pricing::quote::QUOTE_COMPONENTS_MAX`]; 500 keeps a live recompute within a few
/// milliseconds in the browser and a shared link under 100 KB.
pub const APP_COMPONENTS_MAX: usize = 500;
/// Longest tier name; it is printed in estimate tables and CSV columns.
pub const TIER_NAME_LEN_MAX: usize = 40;
/// Longest app name.
pub const APP_NAME_LEN_MAX: usize = 80;
/// Longest text of any numeric field: 20 characters hold every valid value with its decimals.
pub const NUMBER_TEXT_LEN_MAX: usize = 20;
/// Longest id (product, meter, region...) a config may carry; catalog ids are short slugs.
pub const ID_LEN_MAX: usize = 100;
/// Most VMs, volumes, IPs or subscriptions in one component. Bigger deals are negotiated, not
/// bought from a storefront, and the bound keeps generated usage for a month small.
pub const COUNT_MAX: u32 = 10_000;
/// Most hours in a month: 31 days of 24 hours.
pub const MONTH_HOURS_MAX: u32 = 744;
/// Largest volume, in GB (one petabyte).
pub const SIZE_GB_MAX: u32 = 1_000_000;
/// Most traffic a component may declare for a month, in GB (ten petabytes).
pub const TRAFFIC_GB_MAX: u32 = 10_000_000;
/// Largest quantity of a custom usage line, in the meter's unit.
pub const USAGE_QUANTITY_MAX: u64 = 1_000_000_000_000;
/// Most digits after the point a customer may type: catalogs price to four decimals.
pub const DECIMALS_MAX: u32 = 4;

/// What a component is; each kind maps to one [`Component`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Compute,
    Volume,
    Traffic,
    Ip,
    Service,
    Usage,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Compute,
        Kind::Volume,
        Kind::Traffic,
        Kind::Ip,
        Kind::Service,
        Kind::Usage,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Compute => "Virtual machines",
            Kind::Volume => "Volumes",
            Kind::Traffic => "Network traffic",
            Kind::Ip => "Public IP addresses",
            Kind::Service => "Services and packages",
            Kind::Usage => "Other metered usage",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Kind::Compute => "compute",
            Kind::Volume => "volume",
            Kind::Traffic => "traffic",
            Kind::Ip => "ip",
            Kind::Service => "service",
            Kind::Usage => "usage",
        }
    }

    pub fn from_id(id: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.id() == id)
    }

    /// The fields the builder shows for this kind, in tab order.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Kind::Compute => &[
                Field::Product,
                Field::Count,
                Field::Hours,
                Field::StoppedHours,
            ],
            Kind::Volume => &[Field::Product, Field::SizeGb, Field::Count],
            Kind::Traffic => &[Field::Product, Field::GbIn, Field::GbOut],
            Kind::Ip => &[Field::Product, Field::Count],
            Kind::Service => &[Field::Product, Field::Quantity],
            Kind::Usage => &[Field::Product, Field::Meter, Field::Quantity],
        }
    }

    /// Whether `product` of `catalog` can be used for a component of this kind.
    pub fn accepts(self, catalog: &Catalog, product: &str) -> bool {
        let Some(p) = catalog.product(product) else {
            return false;
        };
        let has = |role| catalog.meter_for_role(&p.id, role).is_some();
        match self {
            Kind::Compute => {
                matches!(p.kind, ProductKind::Compute { .. }) && has(MeterRole::Running)
            }
            Kind::Volume => has(MeterRole::Storage),
            Kind::Traffic => has(MeterRole::TrafficIn) && has(MeterRole::TrafficOut),
            Kind::Ip => has(MeterRole::IpHours),
            Kind::Service => p.fees().is_some(),
            Kind::Usage => !p.charges.is_empty(),
        }
    }
}

/// One input of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Product,
    Meter,
    Count,
    Hours,
    StoppedHours,
    SizeGb,
    GbIn,
    GbOut,
    Quantity,
}

impl Field {
    /// The label of the field for a component of `kind`.
    pub fn label(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Field::Product, Kind::Compute) => "Offering",
            (Field::Product, Kind::Volume) => "Disk offering",
            (Field::Product, _) => "Product",
            (Field::Meter, _) => "Meter",
            (Field::Count, Kind::Compute) => "VMs",
            (Field::Count, Kind::Volume) => "Volumes",
            (Field::Count, _) => "Addresses",
            (Field::Hours, _) => "Running hours a month",
            (Field::StoppedHours, _) => "Stopped hours a month",
            (Field::SizeGb, _) => "Size (GB)",
            (Field::GbIn, _) => "Inbound GB a month",
            (Field::GbOut, _) => "Outbound GB a month",
            (Field::Quantity, Kind::Service) => "Subscriptions",
            (Field::Quantity, _) => "Quantity a month",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Field::Product => "product",
            Field::Meter => "meter",
            Field::Count => "count",
            Field::Hours => "hours",
            Field::StoppedHours => "stopped_hours",
            Field::SizeGb => "size_gb",
            Field::GbIn => "gb_in",
            Field::GbOut => "gb_out",
            Field::Quantity => "quantity",
        }
    }

    /// Whether the field is chosen from a list rather than typed.
    pub fn is_choice(self) -> bool {
        matches!(self, Field::Product | Field::Meter)
    }
}

/// A component as typed. Only the fields of its kind are used; the others stay empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDraft {
    /// Stable key for the builder's keyed lists; not part of the link (reassigned on restore).
    #[serde(skip)]
    pub key: u32,
    pub kind: Kind,
    pub product: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub meter: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub count: String,
    /// Empty means 24/7 (the catalog's month).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hours: String,
    /// Empty means never stopped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stopped_hours: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub size_gb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gb_in: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gb_out: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub quantity: String,
}

impl ComponentDraft {
    fn empty(kind: Kind) -> ComponentDraft {
        ComponentDraft {
            key: 0,
            kind,
            product: String::new(),
            meter: String::new(),
            count: String::new(),
            hours: String::new(),
            stopped_hours: String::new(),
            size_gb: String::new(),
            gb_in: String::new(),
            gb_out: String::new(),
            quantity: String::new(),
        }
    }

    pub fn get(&self, f: Field) -> &str {
        match f {
            Field::Product => &self.product,
            Field::Meter => &self.meter,
            Field::Count => &self.count,
            Field::Hours => &self.hours,
            Field::StoppedHours => &self.stopped_hours,
            Field::SizeGb => &self.size_gb,
            Field::GbIn => &self.gb_in,
            Field::GbOut => &self.gb_out,
            Field::Quantity => &self.quantity,
        }
    }

    fn slot(&mut self, f: Field) -> &mut String {
        match f {
            Field::Product => &mut self.product,
            Field::Meter => &mut self.meter,
            Field::Count => &mut self.count,
            Field::Hours => &mut self.hours,
            Field::StoppedHours => &mut self.stopped_hours,
            Field::SizeGb => &mut self.size_gb,
            Field::GbIn => &mut self.gb_in,
            Field::GbOut => &mut self.gb_out,
            Field::Quantity => &mut self.quantity,
        }
    }

    /// The draft of an engine component (templates are written as engine components).
    pub fn from_component(c: &Component) -> ComponentDraft {
        let s = |d: &Decimal| d.normalize().to_string();
        match c {
            Component::Compute {
                offering,
                count,
                hours_per_month,
                stopped_hours_per_month,
            } => ComponentDraft {
                product: offering.clone(),
                count: count.to_string(),
                hours: hours_per_month.as_ref().map(s).unwrap_or_default(),
                stopped_hours: stopped_hours_per_month.as_ref().map(s).unwrap_or_default(),
                ..ComponentDraft::empty(Kind::Compute)
            },
            Component::Volume {
                offering,
                size_gb,
                count,
            } => ComponentDraft {
                product: offering.clone(),
                size_gb: s(size_gb),
                count: count.to_string(),
                ..ComponentDraft::empty(Kind::Volume)
            },
            Component::Traffic {
                product,
                gb_in,
                gb_out,
            } => ComponentDraft {
                product: product.clone(),
                gb_in: s(gb_in),
                gb_out: s(gb_out),
                ..ComponentDraft::empty(Kind::Traffic)
            },
            Component::Ip { product, count } => ComponentDraft {
                product: product.clone(),
                count: count.to_string(),
                ..ComponentDraft::empty(Kind::Ip)
            },
            Component::Service { product, quantity } => ComponentDraft {
                product: product.clone(),
                quantity: quantity.to_string(),
                ..ComponentDraft::empty(Kind::Service)
            },
            Component::Usage {
                product,
                meter,
                quantity,
            } => ComponentDraft {
                product: product.clone(),
                meter: meter.clone(),
                quantity: s(quantity),
                ..ComponentDraft::empty(Kind::Usage)
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDraft {
    #[serde(skip)]
    pub key: u32,
    pub name: String,
    pub components: Vec<ComponentDraft>,
}

/// The whole configuration: what the share link carries and restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The catalog (price list) the app was built against, and its version.
    pub catalog_id: String,
    pub catalog_version: String,
    #[serde(default)]
    pub name: String,
    /// The day prices and promotions are taken at.
    pub at: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_jurisdiction: Option<String>,
    /// A coupon code as typed (the catalog's coupons ignore case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    pub tiers: Vec<TierDraft>,
    /// Next key to hand out; keys are unique within one config.
    #[serde(skip)]
    pub next_key: u32,
}

/// What a validation message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    AppName,
    /// The app as a whole (too many tiers, nothing to price...).
    App,
    /// A setting (region, currency...), by its `AppConfig` field name ([`pricing::Setting::field`]).
    Setting(&'static str),
    TierName(u32),
    /// A component field: tier key, component key, field.
    Component(u32, u32, Field),
}

/// A message shown beside the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub target: Target,
    pub message: String,
}

/// A config checked against a catalog: the quote when every field is valid, else the messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    pub quote: Option<Quote>,
    pub errors: Vec<FieldError>,
}

impl Validation {
    /// The first message about `target`.
    pub fn message(&self, target: Target) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.target == target)
            .map(|e| e.message.as_str())
    }
}

/// Parses a whole number from `0` to `max`.
pub fn parse_count(text: &str, max: u32) -> Result<u32, String> {
    let t = text.trim();
    let msg = || format!("Enter a whole number from 0 to {}", group(max.into()));
    if t.is_empty() || t.len() > NUMBER_TEXT_LEN_MAX || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(msg());
    }
    t.parse::<u32>().ok().filter(|n| *n <= max).ok_or_else(msg)
}

/// Parses a decimal from `0` to `max` with at most [`DECIMALS_MAX`] decimals: digits and one
/// point only (no sign, no exponent, no separators), so what is accepted is exactly what is shown.
pub fn parse_amount(text: &str, max: u64) -> Result<Decimal, String> {
    let t = text.trim();
    let range = || format!("Enter a number from 0 to {}", group(max));
    if t.is_empty()
        || t.len() > NUMBER_TEXT_LEN_MAX
        || !t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || t.bytes().filter(|b| *b == b'.').count() > 1
        || t == "."
    {
        return Err(range());
    }
    let d = Decimal::from_str(t).map_err(|_| range())?;
    if d.scale() > DECIMALS_MAX {
        return Err(format!("Use at most {DECIMALS_MAX} decimals"));
    }
    if d > Decimal::from(max) {
        return Err(range());
    }
    Ok(d)
}

fn group(n: u64) -> String {
    pricing::money::group_thousands(Decimal::from(n))
}

impl AppConfig {
    /// An empty app priced against `catalog` on `today`, with the catalog's first region, SLA
    /// tier, term and tax jurisdiction preselected (the choices most customers keep).
    pub fn empty(catalog: &Catalog, today: NaiveDate) -> AppConfig {
        AppConfig {
            catalog_id: catalog.id.clone(),
            catalog_version: catalog.version.clone(),
            name: String::new(),
            at: today,
            region: catalog
                .regions
                .iter()
                .find(|r| r.billed)
                .map(|r| r.id.clone()),
            sla_tier: catalog.sla_tiers.first().map(|s| s.id.clone()),
            currency: None,
            term: catalog.terms.first().map(|t| t.id.clone()),
            tax_jurisdiction: catalog.tax_jurisdictions.first().map(|t| t.id.clone()),
            coupon: None,
            tiers: Vec::new(),
            next_key: 1,
        }
    }

    /// The storefront's first screen: the catalog's first template, or one empty tier.
    pub fn starter(catalog: &Catalog, today: NaiveDate) -> AppConfig {
        let mut c = AppConfig::empty(catalog, today);
        match catalog.templates.first() {
            Some(t) => {
                let id = t.id.clone();
                c.apply_template(catalog, &id);
            }
            None => c.add_tier(),
        }
        c
    }

    fn key(&mut self) -> u32 {
        let k = self.next_key;
        self.next_key = self.next_key.wrapping_add(1).max(1);
        k
    }

    /// Gives every tier and component a fresh unique key (after decoding a link).
    pub fn rekey(&mut self) {
        self.next_key = 1;
        for ti in 0..self.tiers.len() {
            let k = self.key();
            self.tiers[ti].key = k;
            for ci in 0..self.tiers[ti].components.len() {
                let k = self.key();
                self.tiers[ti].components[ci].key = k;
            }
        }
    }

    pub fn component_count(&self) -> usize {
        self.tiers.iter().map(|t| t.components.len()).sum()
    }

    /// Replaces the tiers with template `id` of `catalog`; the name becomes the template's.
    /// Returns false (and changes nothing) when the catalog has no such template.
    pub fn apply_template(&mut self, catalog: &Catalog, id: &str) -> bool {
        let Some(t) = catalog.templates.iter().find(|t| t.id == id) else {
            return false;
        };
        self.name = t.name.clone();
        self.tiers = t
            .tiers
            .iter()
            .map(|tier| TierDraft {
                key: 0,
                name: tier.name.clone(),
                components: tier
                    .components
                    .iter()
                    .map(ComponentDraft::from_component)
                    .collect(),
            })
            .collect();
        self.rekey();
        true
    }

    fn unique_tier_name(&self, base: &str) -> String {
        let taken = |n: &str| {
            self.tiers
                .iter()
                .any(|t| t.name.trim().eq_ignore_ascii_case(n))
        };
        if !taken(base) {
            return base.to_string();
        }
        (2..)
            .map(|i| format!("{base} {i}"))
            .find(|n| !taken(n))
            .expect("an unused name exists")
    }

    fn tier_index(&self, tier: u32) -> Option<usize> {
        self.tiers.iter().position(|t| t.key == tier)
    }

    /// Adds an empty tier at the end (up to [`TIERS_MAX`]).
    pub fn add_tier(&mut self) {
        if self.tiers.len() >= TIERS_MAX {
            return;
        }
        let name = self.unique_tier_name(&format!("tier {}", self.tiers.len() + 1));
        let key = self.key();
        self.tiers.push(TierDraft {
            key,
            name,
            components: Vec::new(),
        });
    }

    /// Copies tier `tier` (name made unique) right after it, if the limits allow.
    pub fn duplicate_tier(&mut self, tier: u32) {
        let Some(i) = self.tier_index(tier) else {
            return;
        };
        if self.tiers.len() >= TIERS_MAX
            || self.component_count() + self.tiers[i].components.len() > APP_COMPONENTS_MAX
        {
            return;
        }
        let mut copy = self.tiers[i].clone();
        copy.name = self.unique_tier_name(&format!("{} copy", copy.name.trim()));
        copy.key = self.key();
        for c in &mut copy.components {
            c.key = self.key();
        }
        self.tiers.insert(i + 1, copy);
    }

    pub fn remove_tier(&mut self, tier: u32) {
        self.tiers.retain(|t| t.key != tier);
    }

    /// Moves tier `tier` one place up (`up`) or down; no-op at the ends.
    pub fn move_tier(&mut self, tier: u32, up: bool) {
        let Some(i) = self.tier_index(tier) else {
            return;
        };
        let j = if up { i.checked_sub(1) } else { Some(i + 1) };
        if let Some(j) = j.filter(|j| *j < self.tiers.len()) {
            self.tiers.swap(i, j);
        }
    }

    pub fn rename_tier(&mut self, tier: u32, name: &str) {
        if let Some(i) = self.tier_index(tier) {
            self.tiers[i].name = name.chars().take(TIER_NAME_LEN_MAX * 2).collect();
        }
    }

    /// Adds a component of `kind` to tier `tier` with sensible defaults: the first product of
    /// that kind sold in the chosen region, one of it, running 24/7.
    pub fn add_component(&mut self, catalog: &Catalog, tier: u32, kind: Kind) {
        let Some(i) = self.tier_index(tier) else {
            return;
        };
        if self.component_count() >= APP_COMPONENTS_MAX {
            return;
        }
        let region = self.region.clone();
        let product = products_for(catalog, kind, region.as_deref())
            .first()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let mut c = ComponentDraft {
            product,
            ..ComponentDraft::empty(kind)
        };
        match kind {
            Kind::Compute | Kind::Ip | Kind::Volume => c.count = "1".into(),
            Kind::Traffic => {
                c.gb_in = "0".into();
                c.gb_out = "10".into();
            }
            Kind::Service => c.quantity = "1".into(),
            Kind::Usage => c.quantity = "0".into(),
        }
        fill_product_defaults(catalog, &mut c);
        c.key = self.key();
        self.tiers[i].components.push(c);
    }

    fn component_index(&self, tier: u32, component: u32) -> Option<(usize, usize)> {
        let ti = self.tier_index(tier)?;
        let ci = self.tiers[ti]
            .components
            .iter()
            .position(|c| c.key == component)?;
        Some((ti, ci))
    }

    pub fn remove_component(&mut self, tier: u32, component: u32) {
        if let Some((ti, ci)) = self.component_index(tier, component) {
            self.tiers[ti].components.remove(ci);
        }
    }

    pub fn duplicate_component(&mut self, tier: u32, component: u32) {
        if self.component_count() >= APP_COMPONENTS_MAX {
            return;
        }
        if let Some((ti, ci)) = self.component_index(tier, component) {
            let mut c = self.tiers[ti].components[ci].clone();
            c.key = self.key();
            self.tiers[ti].components.insert(ci + 1, c);
        }
    }

    /// Sets one field of a component. A new product brings its own defaults (a fixed-size
    /// disk's size, a metered product's first meter).
    pub fn set_field(
        &mut self,
        catalog: &Catalog,
        tier: u32,
        component: u32,
        field: Field,
        value: &str,
    ) {
        let Some((ti, ci)) = self.component_index(tier, component) else {
            return;
        };
        let c = &mut self.tiers[ti].components[ci];
        let limit = if field.is_choice() {
            ID_LEN_MAX
        } else {
            NUMBER_TEXT_LEN_MAX
        };
        *c.slot(field) = value.chars().take(limit).collect();
        if field == Field::Product {
            c.meter.clear();
            fill_product_defaults(catalog, c);
        }
    }

    /// The instant prices are taken at: midnight UTC of the chosen day.
    pub fn at_instant(&self) -> chrono::DateTime<Utc> {
        Utc.from_utc_datetime(&self.at.and_hms_opt(0, 0, 0).expect("midnight exists"))
    }

    /// Checks every field against `catalog` and builds the quote when all are valid.
    pub fn validate(&self, catalog: &Catalog) -> Validation {
        let mut errors = Vec::new();
        let mut err = |target, message: String| errors.push(FieldError { target, message });
        if self.name.chars().count() > APP_NAME_LEN_MAX {
            err(
                Target::AppName,
                format!("Use at most {APP_NAME_LEN_MAX} characters"),
            );
        }
        if self.tiers.len() > TIERS_MAX {
            err(Target::App, format!("An app has at most {TIERS_MAX} tiers"));
        }
        if self.component_count() > APP_COMPONENTS_MAX {
            err(
                Target::App,
                format!("An app has at most {APP_COMPONENTS_MAX} components"),
            );
        }
        // The engine's own rule for what the catalog offers, every setting at once.
        for setting in Settings::not_offered(catalog, &self.settings_input()) {
            errors.push(FieldError {
                target: Target::Setting(setting.field()),
                message: "Not offered by this price list; choose another".into(),
            });
        }
        if self
            .region
            .as_deref()
            .and_then(|r| catalog.region(r))
            .is_some_and(|r| !r.billed)
        {
            errors.push(FieldError {
                target: Target::Setting("region"),
                message: "Nothing is sold in this region; choose another".into(),
            });
        }
        if let Some(code) = self.coupon.as_deref() {
            let message = match catalog.coupons.iter().find(|c| c.is(code)) {
                None => Some("Unknown coupon code"),
                Some(c) if !c.redeemable_at(self.at_instant()) => {
                    Some("This code cannot be redeemed on the pricing date")
                }
                Some(_) => None,
            };
            if let Some(m) = message {
                errors.push(FieldError {
                    target: Target::Setting("coupon"),
                    message: m.into(),
                });
            }
        }
        let region = self.region.as_deref().and_then(|r| catalog.region(r));

        let mut tiers = Vec::with_capacity(self.tiers.len());
        for (ti, tier) in self.tiers.iter().enumerate() {
            let name = tier.name.trim();
            let tier_err = if name.is_empty() {
                Some("Give the tier a name".to_string())
            } else if name.chars().count() > TIER_NAME_LEN_MAX {
                Some(format!("Use at most {TIER_NAME_LEN_MAX} characters"))
            } else if self.tiers[..ti]
                .iter()
                .any(|t| t.name.trim().eq_ignore_ascii_case(name))
            {
                Some("Another tier has this name; tier names must differ".to_string())
            } else {
                None
            };
            if let Some(message) = tier_err {
                errors.push(FieldError {
                    target: Target::TierName(tier.key),
                    message,
                });
            }
            let mut components = Vec::with_capacity(tier.components.len());
            for c in &tier.components {
                let mut field_err = |field: Field, message: String| {
                    errors.push(FieldError {
                        target: Target::Component(tier.key, c.key, field),
                        message,
                    })
                };
                match component(catalog, region, c) {
                    Ok(Some(x)) => components.push(x),
                    Ok(None) => {}
                    Err(list) => {
                        for (f, m) in list {
                            field_err(f, m);
                        }
                    }
                }
            }
            tiers.push(QuoteTier {
                name: name.to_string(),
                components,
            });
        }
        if !errors.is_empty() {
            return Validation {
                quote: None,
                errors,
            };
        }
        Validation {
            quote: Some(Quote {
                name: self.name.trim().to_string(),
                at: self.at_instant(),
                region: self.region.clone(),
                sla_tier: self.sla_tier.clone(),
                currency: self.currency.clone(),
                term: self.term.clone(),
                tax_jurisdiction: self.tax_jurisdiction.clone(),
                coupon: self.coupon.clone(),
                tiers,
            }),
            errors,
        }
    }

    /// The settings as the pricing engine resolves them.
    pub fn settings_input(&self) -> SettingsInput<'_> {
        SettingsInput {
            currency: self.currency.as_deref(),
            region: self.region.as_deref(),
            tax_jurisdiction: self.tax_jurisdiction.as_deref(),
            sla_tier: self.sla_tier.as_deref(),
            term: self.term.as_deref(),
        }
    }

    /// The field an engine refusal of this config's quote is about, so that its message shows
    /// beside that field; anything else (a currency without a rate, too many lines) is about
    /// the app.
    pub fn target_of_error(&self, err: &PricingError) -> Target {
        match err {
            PricingError::UnknownSetting {
                setting,
                owner: SettingsOwner::Quote,
                ..
            } => Target::Setting(setting.field()),
            PricingError::Coupon { .. } => Target::Setting("coupon"),
            PricingError::RegionNotBilled { .. } => Target::Setting("region"),
            PricingError::UnknownProduct { path, .. }
            | PricingError::NotSoldInRegion { path, .. }
            | PricingError::NoPrice { path, .. }
            | PricingError::NegativeQuantity { path }
            | PricingError::UnitMismatch { path, .. }
            | PricingError::NotAService { path, .. } => self.target_of(path),
            _ => Target::App,
        }
    }

    /// The field of a component a [`QuotePath`] names; a component that is not in the config
    /// is about the app.
    fn target_of(&self, path: &QuotePath) -> Target {
        let Some(comp) = self
            .tiers
            .get(path.tier)
            .and_then(|t| t.components.get(path.component))
        else {
            return Target::App;
        };
        let field = match path.field {
            Some(ComponentField::GbIn) => Field::GbIn,
            Some(ComponentField::GbOut) => Field::GbOut,
            Some(ComponentField::StoppedHoursPerMonth) => Field::StoppedHours,
            Some(ComponentField::Meter) if comp.kind == Kind::Usage => Field::Meter,
            _ => Field::Product,
        };
        Target::Component(self.tiers[path.tier].key, comp.key, field)
    }
}

/// Sets the defaults a product brings: a fixed-size disk's size, a metered product's first meter.
fn fill_product_defaults(catalog: &Catalog, c: &mut ComponentDraft) {
    let Some(p) = catalog.product(&c.product) else {
        return;
    };
    match c.kind {
        Kind::Volume => {
            if let ProductKind::Storage {
                size_gb: Some(size),
                ..
            } = &p.kind
            {
                c.size_gb = size.normalize().to_string();
            } else if c.size_gb.is_empty() {
                c.size_gb = "10".into();
            }
        }
        Kind::Usage if c.meter.is_empty() => {
            c.meter = p
                .charges
                .first()
                .map(|ch| ch.meter.clone())
                .unwrap_or_default();
        }
        _ => {}
    }
}

/// Products of `catalog` usable for `kind`, in catalog order, without those not sold in `region`.
pub fn products_for<'c>(catalog: &'c Catalog, kind: Kind, region: Option<&str>) -> Vec<&'c str> {
    let unavailable = region
        .and_then(|r| catalog.region(r))
        .map(|r| r.unavailable.as_slice())
        .unwrap_or_default();
    catalog
        .products
        .iter()
        .filter(|p| kind.accepts(catalog, &p.id) && !unavailable.contains(&p.id))
        .map(|p| p.id.as_str())
        .collect()
}

/// The currencies a catalog can quote in: its own, then those it has a fixed rate for (the
/// engine's rule, `pricing::settings::exchange`).
pub fn currency_choices(catalog: &Catalog) -> Vec<String> {
    let mut v = vec![catalog.currency.code.clone()];
    v.extend(
        catalog
            .fx_rates
            .keys()
            .filter(|c| {
                **c != catalog.currency.code
                    && pricing::settings::exchange(catalog, Some(c.as_str())).is_ok()
            })
            .cloned(),
    );
    v
}

type FieldErrors = Vec<(Field, String)>;

/// One component's engine form, `None` when it prices nothing (zero of it), or its messages.
fn component(
    catalog: &Catalog,
    region: Option<&pricing::catalog::Region>,
    c: &ComponentDraft,
) -> Result<Option<Component>, FieldErrors> {
    let mut errs: FieldErrors = Vec::new();
    let product = c.product.trim();
    if product.is_empty() {
        errs.push((Field::Product, "Choose a product".into()));
    } else if catalog.product(product).is_none() {
        errs.push((
            Field::Product,
            "This product is no longer in the price list; choose another".into(),
        ));
    } else if !c.kind.accepts(catalog, product) {
        errs.push((
            Field::Product,
            // The labels are ASCII constants: no Unicode case tables needed.
            format!("Not a product for {}", c.kind.label().to_ascii_lowercase()),
        ));
    } else if let Some(r) = region.filter(|r| r.unavailable.iter().any(|u| u == product)) {
        errs.push((Field::Product, format!("Not sold in {}", r.name)));
    }
    let count = |f: Field, text: &str, max: u32, errs: &mut FieldErrors| {
        parse_count(text, max).map_err(|m| errs.push((f, m))).ok()
    };
    let amount = |f: Field, text: &str, max: u64, errs: &mut FieldErrors| {
        parse_amount(text, max).map_err(|m| errs.push((f, m))).ok()
    };
    let hpm = catalog.hours_per_month;
    let out = match c.kind {
        Kind::Compute => {
            let n = count(Field::Count, &c.count, COUNT_MAX, &mut errs);
            let hours = if c.hours.trim().is_empty() {
                Some(None)
            } else {
                amount(Field::Hours, &c.hours, MONTH_HOURS_MAX.into(), &mut errs).map(Some)
            };
            let stopped = if c.stopped_hours.trim().is_empty() {
                Some(None)
            } else {
                amount(
                    Field::StoppedHours,
                    &c.stopped_hours,
                    MONTH_HOURS_MAX.into(),
                    &mut errs,
                )
                .map(Some)
            };
            if let (Some(Some(s)), Some(h)) = (stopped, hours) {
                if s + h.unwrap_or(hpm) > Decimal::from(MONTH_HOURS_MAX) {
                    errs.push((
                        Field::StoppedHours,
                        format!("Running and stopped hours add up to more than a month ({MONTH_HOURS_MAX} h)"),
                    ));
                }
            }
            if let (Some(Some(_)), true) = (stopped, errs.is_empty()) {
                if catalog
                    .meter_for_role(product, MeterRole::Stopped)
                    .is_none()
                {
                    errs.push((
                        Field::StoppedHours,
                        "This offering has no stopped-time price; leave it empty".into(),
                    ));
                }
            }
            match (n, hours, stopped) {
                (Some(count), Some(hours_per_month), Some(stopped_hours_per_month)) => {
                    Some(Component::Compute {
                        offering: product.to_string(),
                        count,
                        hours_per_month,
                        stopped_hours_per_month,
                    })
                }
                _ => None,
            }
        }
        Kind::Volume => {
            let size = amount(Field::SizeGb, &c.size_gb, SIZE_GB_MAX.into(), &mut errs);
            let n = count(Field::Count, &c.count, COUNT_MAX, &mut errs);
            if let (Some(size), Some(p)) = (size, catalog.product(product)) {
                if let ProductKind::Storage {
                    size_gb: Some(fixed),
                    ..
                } = &p.kind
                {
                    if size != *fixed {
                        errs.push((
                            Field::SizeGb,
                            format!("This offering is a fixed {} GB disk", fixed.normalize()),
                        ));
                    }
                }
            }
            match (size, n) {
                (Some(size_gb), Some(count)) => Some(Component::Volume {
                    offering: product.to_string(),
                    size_gb,
                    count,
                }),
                _ => None,
            }
        }
        Kind::Traffic => {
            let gb_in = amount(Field::GbIn, &c.gb_in, TRAFFIC_GB_MAX.into(), &mut errs);
            let gb_out = amount(Field::GbOut, &c.gb_out, TRAFFIC_GB_MAX.into(), &mut errs);
            match (gb_in, gb_out) {
                (Some(gb_in), Some(gb_out)) => Some(Component::Traffic {
                    product: product.to_string(),
                    gb_in,
                    gb_out,
                }),
                _ => None,
            }
        }
        Kind::Ip => {
            count(Field::Count, &c.count, COUNT_MAX, &mut errs).map(|count| Component::Ip {
                product: product.to_string(),
                count,
            })
        }
        Kind::Service => {
            count(Field::Quantity, &c.quantity, COUNT_MAX, &mut errs).map(|quantity| {
                Component::Service {
                    product: product.to_string(),
                    quantity,
                }
            })
        }
        Kind::Usage => {
            let meter = c.meter.trim();
            let priced = catalog
                .product(product)
                .is_some_and(|p| p.charges.iter().any(|ch| ch.meter == meter));
            if meter.is_empty() || (!priced && catalog.product(product).is_some()) {
                errs.push((Field::Meter, "Choose a meter of this product".into()));
            }
            amount(Field::Quantity, &c.quantity, USAGE_QUANTITY_MAX, &mut errs).map(|quantity| {
                Component::Usage {
                    product: product.to_string(),
                    meter: meter.to_string(),
                    quantity,
                }
            })
        }
    };
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{cloudstack, day};
    use rust_decimal_macros::dec;

    fn starter() -> AppConfig {
        AppConfig::starter(&cloudstack(), day("2017-02-15"))
    }

    #[test]
    fn the_starter_is_the_first_template_and_valid() {
        let c = starter();
        let names: Vec<&str> = c.tiers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["web", "app", "db"]);
        assert_eq!(c.region.as_deref(), Some("lon1"));
        assert_eq!(c.sla_tier.as_deref(), Some("standard"));
        assert_eq!(c.term.as_deref(), Some("monthly"));
        assert_eq!(c.tax_jurisdiction.as_deref(), Some("gb"));
        let v = c.validate(&cloudstack());
        assert_eq!(v.errors, vec![]);
        let q = v.quote.unwrap();
        assert_eq!(q.tiers, cloudstack().templates[0].tiers);
    }

    #[test]
    fn keys_are_unique_after_every_edit() {
        let cat = cloudstack();
        let mut c = starter();
        let web = c.tiers[0].key;
        c.duplicate_tier(web);
        c.add_tier();
        let last = c.tiers.last().unwrap().key;
        c.add_component(&cat, last, Kind::Compute);
        let comp = c.tiers.last().unwrap().components[0].key;
        c.duplicate_component(last, comp);
        let mut keys: Vec<u32> = c
            .tiers
            .iter()
            .flat_map(|t| std::iter::once(t.key).chain(t.components.iter().map(|x| x.key)))
            .collect();
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }

    #[test]
    fn tier_edits() {
        let mut c = starter();
        let [web, app, db] = [c.tiers[0].key, c.tiers[1].key, c.tiers[2].key];
        let names =
            |c: &AppConfig| -> Vec<String> { c.tiers.iter().map(|t| t.name.clone()).collect() };
        c.duplicate_tier(web);
        assert_eq!(names(&c), ["web", "web copy", "app", "db"]);
        c.duplicate_tier(web);
        assert_eq!(names(&c), ["web", "web copy 2", "web copy", "app", "db"]);
        c.move_tier(db, true);
        assert_eq!(names(&c), ["web", "web copy 2", "web copy", "db", "app"]);
        c.move_tier(web, true);
        c.move_tier(app, false);
        assert_eq!(names(&c), ["web", "web copy 2", "web copy", "db", "app"]);
        c.remove_tier(web);
        assert_eq!(names(&c)[0], "web copy 2");
        c.add_tier();
        assert_eq!(names(&c).last().unwrap(), "tier 5");
        for _ in 0..30 {
            c.add_tier();
        }
        assert_eq!(c.tiers.len(), TIERS_MAX);
    }

    #[test]
    fn new_components_get_defaults_that_validate() {
        let cat = cloudstack();
        let mut c = AppConfig::empty(&cat, day("2017-02-15"));
        c.add_tier();
        let t = c.tiers[0].key;
        for k in Kind::ALL {
            c.add_component(&cat, t, k);
        }
        let got: Vec<(&str, &str)> = c.tiers[0]
            .components
            .iter()
            .map(|x| (x.product.as_str(), x.meter.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("copper", ""),
                ("small-disk", ""),
                ("network", ""),
                ("public-ip", ""),
                ("daily-backup", ""),
                ("copper", "vm.running"),
            ]
        );
        assert_eq!(c.tiers[0].components[1].size_gb, "5");
        assert_eq!(c.validate(&cat).errors, vec![]);
    }

    #[test]
    fn changing_the_product_brings_its_defaults() {
        let cat = cloudstack();
        let mut c = starter();
        let (t, v) = (c.tiers[1].key, c.tiers[1].components[1].key);
        c.set_field(&cat, t, v, Field::Product, "large-disk");
        assert_eq!(c.tiers[1].components[1].size_gb, "100");
        c.set_field(&cat, t, v, Field::Product, "root-volume");
        assert_eq!(c.tiers[1].components[1].size_gb, "100");
    }

    /// One case per rule: (kind, product, field, text, expected message).
    #[test]
    fn messages_beside_fields() {
        let cat = cloudstack();
        let cases: &[(Kind, &str, Field, &str, &str)] = &[
            (
                Kind::Compute,
                "copper",
                Field::Count,
                "",
                "Enter a whole number from 0 to 10,000",
            ),
            (
                Kind::Compute,
                "copper",
                Field::Count,
                "2.5",
                "Enter a whole number from 0 to 10,000",
            ),
            (
                Kind::Compute,
                "copper",
                Field::Count,
                "-1",
                "Enter a whole number from 0 to 10,000",
            ),
            (
                Kind::Compute,
                "copper",
                Field::Count,
                "10001",
                "Enter a whole number from 0 to 10,000",
            ),
            (
                Kind::Compute,
                "copper",
                Field::Hours,
                "745",
                "Enter a number from 0 to 744",
            ),
            (
                Kind::Compute,
                "copper",
                Field::Hours,
                "1e3",
                "Enter a number from 0 to 744",
            ),
            (
                Kind::Compute,
                "copper",
                Field::Hours,
                "1.23456",
                "Use at most 4 decimals",
            ),
            (
                Kind::Compute,
                "copper",
                Field::StoppedHours,
                "100",
                "Running and stopped hours add up to more than a month (744 h)",
            ),
            (
                Kind::Compute,
                "small-disk",
                Field::Product,
                "",
                "Not a product for virtual machines",
            ),
            (
                Kind::Compute,
                "nope",
                Field::Product,
                "",
                "This product is no longer in the price list; choose another",
            ),
            (Kind::Compute, "", Field::Product, "", "Choose a product"),
            (
                Kind::Volume,
                "small-disk",
                Field::SizeGb,
                "6",
                "This offering is a fixed 5 GB disk",
            ),
            (Kind::Volume, "root-volume", Field::SizeGb, "0.5", ""),
            (
                Kind::Traffic,
                "network",
                Field::GbOut,
                "abc",
                "Enter a number from 0 to 10,000,000",
            ),
            (
                Kind::Usage,
                "vpn",
                Field::Meter,
                "net.sent",
                "Choose a meter of this product",
            ),
            (
                Kind::Service,
                "copper",
                Field::Product,
                "",
                "Not a product for services and packages",
            ),
        ];
        for (kind, product, field, text, expect) in cases {
            let mut c = AppConfig::empty(&cat, day("2017-02-15"));
            c.add_tier();
            let t = c.tiers[0].key;
            c.add_component(&cat, t, *kind);
            let k = c.tiers[0].components[0].key;
            c.tiers[0].components[0].product = product.to_string();
            if !field.is_choice() || *field == Field::Meter {
                c.set_field(&cat, t, k, *field, text);
            }
            let v = c.validate(&cat);
            let got = v.message(Target::Component(t, k, *field)).unwrap_or("");
            assert_eq!(got, *expect, "{kind:?} {product} {field:?} {text:?}");
            assert_eq!(v.quote.is_some(), expect.is_empty());
        }
    }

    /// The storefront checks a coupon code as the engine does (case ignored, redeemable on the
    /// pricing day) and estimates with it; a datacenter the provider does not bill is neither
    /// offered nor accepted from a link.
    #[test]
    fn coupon_codes_and_datacenters_not_billed() {
        let mut v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&cloudstack()).unwrap()).unwrap();
        v["coupons"] = serde_json::json!([{ "code": "SPRING", "name": "Spring", "value": { "type": "percent", "pct": "10" },
            "redeem_from": "2017-02-01T00:00:00Z", "redeem_until": "2017-03-01T00:00:00Z" }]);
        v["regions"][0]["billed"] = serde_json::Value::Bool(false);
        let cat = Catalog::from_json(&v.to_string()).unwrap();
        let mut c = AppConfig::starter(&cat, day("2017-02-15"));
        // The first region is not billed: the next one is preselected.
        assert_eq!(
            c.region.as_deref(),
            cat.regions.get(1).map(|r| r.id.as_str())
        );
        let plain = crate::model::estimate_view::compute(&cat, &c);
        let plain_total = plain.estimate.unwrap().monthly_total;
        c.coupon = Some("spring".into());
        let with = crate::model::estimate_view::compute(&cat, &c);
        let e = with.estimate.expect("the coupon is valid on 15 February");
        let coupon_row: Decimal = e
            .bill
            .discounts
            .iter()
            .filter(|d| d.id == "coupon:SPRING")
            .map(|d| d.amount)
            .sum();
        assert!(coupon_row < Decimal::ZERO);
        assert!(e.monthly_total < plain_total);
        // Out of its window, or unknown: the message is beside the field and nothing is priced.
        c.at = day("2017-03-01");
        assert_eq!(
            c.validate(&cat).message(Target::Setting("coupon")),
            Some("This code cannot be redeemed on the pricing date")
        );
        c.coupon = Some("NOPE".into());
        assert_eq!(
            c.validate(&cat).message(Target::Setting("coupon")),
            Some("Unknown coupon code")
        );
        c.coupon = None;
        c.region = Some(cat.regions[0].id.clone());
        let v = c.validate(&cat);
        assert_eq!(
            v.message(Target::Setting("region")),
            Some("Nothing is sold in this region; choose another")
        );
        assert!(v.quote.is_none());
    }

    #[test]
    fn region_availability_and_tier_names() {
        let cat = cloudstack();
        let mut c = starter();
        c.region = Some("gva1".into());
        let t = c.tiers[0].key;
        c.add_component(&cat, t, Kind::Service);
        // ddos is not sold in Geneva: it is not offered, and a link that carries it is refused.
        let k = c.tiers[0].components.last().unwrap().key;
        c.tiers[0].components.last_mut().unwrap().product = "ddos".into();
        c.tiers[1].name = " WEB ".into();
        c.tiers[2].name = String::new();
        let v = c.validate(&cat);
        assert_eq!(
            v.message(Target::Component(t, k, Field::Product)),
            Some("Not sold in Geneva 1")
        );
        assert!(!products_for(&cat, Kind::Service, Some("gva1")).contains(&"ddos"));
        assert_eq!(
            v.message(Target::TierName(c.tiers[1].key)),
            Some("Another tier has this name; tier names must differ")
        );
        assert_eq!(
            v.message(Target::TierName(c.tiers[2].key)),
            Some("Give the tier a name")
        );
        c.region = Some("mars".into());
        assert_eq!(
            c.validate(&cat).message(Target::Setting("region")),
            Some("Not offered by this price list; choose another")
        );
    }

    #[test]
    fn numbers_are_parsed_exactly() {
        assert_eq!(parse_amount("0.0001", 10), Ok(dec!(0.0001)));
        assert_eq!(parse_amount(" 730 ", 744), Ok(dec!(730)));
        assert!(parse_amount(".", 10).is_err());
        assert!(parse_amount("1.2.3", 10).is_err());
        assert!(parse_amount("9999999999999999999", u64::MAX).is_ok());
        assert!(parse_amount("99999999999999999999", u64::MAX).is_err());
        assert!(parse_amount("999999999999999999999", u64::MAX).is_err());
        assert_eq!(parse_count("0", 5), Ok(0));
        assert!(parse_count("+1", 5).is_err());
    }

    #[test]
    fn engine_paths_map_to_fields() {
        let c = starter();
        let (t, k) = (c.tiers[1].key, c.tiers[1].components[1].key);
        let unknown = |tier, component, field| PricingError::UnknownProduct {
            id: "x".into(),
            path: QuotePath {
                tier,
                component,
                field,
            },
        };
        assert_eq!(
            c.target_of_error(&unknown(1, 1, Some(ComponentField::Offering))),
            Target::Component(t, k, Field::Product)
        );
        assert_eq!(
            c.target_of_error(&PricingError::UnknownSetting {
                setting: pricing::Setting::Currency,
                id: "XYZ".into(),
                owner: SettingsOwner::Quote,
            }),
            Target::Setting("currency")
        );
        assert_eq!(c.target_of_error(&unknown(9, 0, None)), Target::App);
        assert_eq!(
            c.target_of_error(&PricingError::TooManyLines { lines: 2, max: 1 }),
            Target::App
        );
    }

    #[test]
    fn currencies_offered() {
        assert_eq!(
            currency_choices(&cloudstack()),
            ["GBP", "BHD", "CHF", "EUR", "JPY", "USD"]
        );
    }
}
