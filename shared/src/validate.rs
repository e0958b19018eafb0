//! Catalog validation: every problem found, each at the JSON path of the bad field.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::catalog::{
    Catalog, CurrencySettings, Discount, DiscountScope, DiscountValue, Markup, Meter, Product,
    ProductKind, CATALOG_SCHEMA_VERSION,
};
use crate::error::{CatalogError, CatalogErrors, CatalogRule};
use crate::exact;
use crate::json::parse_json;
use crate::money::minor_units;
use crate::price::{
    fx_rate_max, line_amount_max, line_quantity_max, subscription_quantity_max, Price, PriceModel,
    Tier, TIERS_PER_PRICE_MAX,
};

/// Most products one catalog may hold; a storefront lists them all, and the published catalog
/// is fetched by every visitor. Large clouds sell a few hundred offerings.
pub const CATALOG_PRODUCTS_MAX: usize = 10_000;

/// Largest unit price or fee (10^9 in the catalog currency): anything above is a typo, and the
/// bound keeps quantity x price far inside Decimal's 28 digits.
pub fn unit_price_max() -> Decimal {
    Decimal::from(1_000_000_000u64)
}

struct Check {
    errors: Vec<CatalogError>,
}

impl Check {
    fn fail(&mut self, path: impl Into<String>, rule: CatalogRule, message: impl Into<String>) {
        self.errors.push(CatalogError {
            path: path.into(),
            rule,
            message: message.into(),
        });
    }

    fn money(&mut self, path: &str, v: Decimal) {
        if v.is_sign_negative() && !v.is_zero() {
            self.fail(
                path,
                CatalogRule::NegativePrice,
                format!("negative price {v}"),
            );
        } else if v > unit_price_max() {
            self.fail(
                path,
                CatalogRule::LimitExceeded,
                format!(
                    "price {v} is above the largest allowed ({})",
                    unit_price_max()
                ),
            );
        }
    }

    fn pct(&mut self, path: &str, v: Decimal, max: Decimal) {
        if v.is_sign_negative() && !v.is_zero() || v > max {
            self.fail(
                path,
                CatalogRule::InvalidValue,
                format!("{v} is not a percentage between 0 and {max}"),
            );
        }
    }

    fn unique<'a>(&mut self, path: &str, ids: impl Iterator<Item = &'a String>) {
        let mut seen = BTreeSet::new();
        for (i, id) in ids.enumerate() {
            if id.is_empty() {
                self.fail(
                    format!("{path}[{i}].id"),
                    CatalogRule::InvalidValue,
                    "id is empty",
                );
            } else if !seen.insert(id.as_str()) {
                self.fail(
                    format!("{path}[{i}].id"),
                    CatalogRule::DuplicateId,
                    format!("duplicate id `{id}`"),
                );
            }
        }
    }

    fn tiers(&mut self, path: &str, tiers: &[Tier]) {
        if tiers.is_empty() {
            self.fail(
                format!("{path}.tiers"),
                CatalogRule::InvalidTiers,
                "a tiered price needs at least one tier",
            );
        }
        if tiers.len() > TIERS_PER_PRICE_MAX {
            self.fail(
                format!("{path}.tiers"),
                CatalogRule::LimitExceeded,
                format!(
                    "{} tiers, more than the limit of {TIERS_PER_PRICE_MAX}",
                    tiers.len()
                ),
            );
        }
        let mut lower = Decimal::ZERO;
        for (i, t) in tiers.iter().enumerate() {
            let tp = format!("{path}.tiers[{i}]");
            self.money(&format!("{tp}.unit_price"), t.unit_price);
            self.money(&format!("{tp}.flat_fee"), t.flat_fee);
            match t.up_to {
                Some(u) if u <= lower => self.fail(
                    format!("{tp}.up_to"),
                    CatalogRule::InvalidTiers,
                    format!("tiers overlap or are out of order: up_to {u} is not above the previous bound {lower}"),
                ),
                Some(u) => lower = u,
                None if i + 1 != tiers.len() => self.fail(
                    format!("{tp}.up_to"),
                    CatalogRule::InvalidTiers,
                    "only the last tier may be unbounded",
                ),
                None => {}
            }
        }
    }

    fn price(&mut self, path: &str, p: &Price) {
        match &p.model {
            PriceModel::PerUnit { unit_price } => {
                self.money(&format!("{path}.unit_price"), *unit_price)
            }
            PriceModel::Graduated { tiers } | PriceModel::Volume { tiers } => {
                self.tiers(path, tiers)
            }
            PriceModel::Package {
                block_size,
                block_price,
            } => {
                if *block_size <= Decimal::ZERO {
                    self.fail(
                        format!("{path}.block_size"),
                        CatalogRule::InvalidValue,
                        "block size must be positive",
                    );
                }
                self.money(&format!("{path}.block_price"), *block_price);
            }
        }
        if p.included.is_sign_negative() && !p.included.is_zero() {
            self.fail(
                format!("{path}.included"),
                CatalogRule::InvalidValue,
                "included quantity cannot be negative",
            );
        }
        if let Some(m) = p.minimum {
            self.money(&format!("{path}.minimum"), m);
        }
    }
}

impl Catalog {
    /// Parses a catalog and validates it; errors name the JSON path of each bad field.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogErrors> {
        let catalog: Catalog = parse_json(text)?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// Checks references, ids, prices, tiers, currencies and limits; returns every problem, in
    /// the order of the catalog's fields.
    pub fn validate(&self) -> Result<(), CatalogErrors> {
        let mut c = Check { errors: Vec::new() };
        c.header(self);
        c.unique_ids(self);
        c.meters(self);
        c.products(self);
        c.regions(self);
        c.sla_tiers(self);
        c.taxes(self);
        c.discounts(self, "$.discounts", &self.discounts);
        // Project and resource ids are one account's names (free text in a canonical export):
        // a catalog discount scoped to one would apply to every account naming a project or
        // resource so. Such a deal belongs in that account's own `discounts`.
        for (i, d) in self.discounts.iter().enumerate() {
            if matches!(
                d.scope,
                DiscountScope::Project(_) | DiscountScope::Resource(_)
            ) {
                c.fail(
                    format!("$.discounts[{i}].scope.type"),
                    CatalogRule::InvalidValue,
                    "a project or resource deal belongs in its account's discounts",
                );
            }
        }
        c.coupons(self);
        c.cost_codes(self, "$.cost_codes", &self.cost_codes);
        c.terms_and_tags(self);
        c.resellers(self);
        c.templates(self);
        c.amounts(self);
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(CatalogErrors(c.errors))
        }
    }
}

/// The problems of a list of discounts (a catalog's or an account's) at `path`.
pub(crate) fn discount_errors(
    cat: &Catalog,
    path: &str,
    discounts: &[Discount],
) -> Vec<CatalogError> {
    let mut c = Check { errors: Vec::new() };
    c.discounts(cat, path, discounts);
    c.errors
}

/// The problems of an account's own cost codes at `path`.
pub(crate) fn cost_code_errors(
    cat: &Catalog,
    path: &str,
    codes: &[crate::catalog::CostCode],
) -> Vec<CatalogError> {
    let mut c = Check { errors: Vec::new() };
    c.cost_codes(cat, path, codes);
    c.errors
}

/// The problems of a catalog's parsed `mappings` (see `ImportOptions::of_catalog`).
pub(crate) fn mapping_errors(
    cat: &Catalog,
    mappings: &crate::mapping::ImportOptions,
) -> Vec<CatalogError> {
    let mut c = Check { errors: Vec::new() };
    c.mappings(cat, mappings);
    c.errors
}

/// The problems of an account's contract prices at `path`: each of a charge the catalog has,
/// a valid price, and within what one line may cost (as the catalog's own prices are checked).
pub(crate) fn contract_price_errors(
    cat: &Catalog,
    path: &str,
    prices: &[crate::catalog::PriceOverride],
) -> Vec<CatalogError> {
    let mut c = Check { errors: Vec::new() };
    let mut seen = BTreeSet::new();
    for (j, o) in prices.iter().enumerate() {
        let op = format!("{path}[{j}]");
        if !seen.insert((o.product.as_str(), o.meter.as_str())) {
            c.fail(
                format!("{op}.meter"),
                CatalogRule::DuplicateId,
                format!("a second contract price of `{}` / `{}`", o.product, o.meter),
            );
        }
        match cat.product(&o.product) {
            None => c.fail(
                format!("{op}.product"),
                CatalogRule::UnknownReference,
                format!("unknown product `{}`", o.product),
            ),
            Some(p) if !p.charges.iter().any(|ch| ch.meter == o.meter) => c.fail(
                format!("{op}.meter"),
                CatalogRule::UnknownReference,
                format!(
                    "product `{}` has no charge for meter `{}`",
                    o.product, o.meter
                ),
            ),
            Some(p) => {
                c.price(&format!("{op}.price"), &o.price);
                if let Some(m) = cat.meter(&o.meter) {
                    c.line_bound(&format!("{op}.price"), &o.price, m, price_factor(cat, p));
                }
            }
        }
    }
    c.errors
}

/// What a wholesale price of `p` may be multiplied by when billed: the largest exchange rate
/// (or 1) times the largest reseller markup on it (or 1). `None` when that overflows.
fn price_factor(cat: &Catalog, p: &Product) -> Option<Decimal> {
    let fx = cat
        .fx_rates
        .values()
        .copied()
        .fold(Decimal::ONE, Decimal::max);
    let markup = cat
        .resellers
        .iter()
        .map(|r| r.markup.pct_for(&p.id, p.category))
        .fold(Decimal::ZERO, Decimal::max);
    let markup = Decimal::ONE_HUNDRED
        .checked_add(markup)?
        .checked_div(Decimal::ONE_HUNDRED)?;
    fx.checked_mul(markup)
}

/// One check per part of the catalog, each adding what it finds.
impl Check {
    /// Schema version, ids, currencies, the month's length and the product limit.
    fn header(&mut self, cat: &Catalog) {
        if cat.schema_version != CATALOG_SCHEMA_VERSION {
            self.fail("$.schema_version", CatalogRule::UnsupportedSchemaVersion, format!("schema_version {} is not supported (this build reads {CATALOG_SCHEMA_VERSION})", cat.schema_version));
        }
        if cat.id.is_empty() {
            self.fail("$.id", CatalogRule::InvalidValue, "catalog id is empty");
        }
        if cat.version.is_empty() {
            self.fail(
                "$.version",
                CatalogRule::InvalidValue,
                "catalog version is empty",
            );
        }
        if minor_units(&cat.currency.code).is_none() {
            self.fail(
                "$.currency.code",
                CatalogRule::UnknownCurrency,
                format!("unknown currency `{}`", cat.currency.code),
            );
        }
        for (code, rate) in &cat.fx_rates {
            if minor_units(code).is_none() {
                self.fail(
                    format!("$.fx_rates.{code}"),
                    CatalogRule::UnknownCurrency,
                    format!("unknown currency `{code}`"),
                );
            }
            if *rate <= Decimal::ZERO {
                self.fail(
                    format!("$.fx_rates.{code}"),
                    CatalogRule::InvalidValue,
                    "exchange rate must be positive",
                );
            } else if *rate > fx_rate_max() {
                self.fail(
                    format!("$.fx_rates.{code}"),
                    CatalogRule::AmountTooLarge,
                    format!(
                        "exchange rate {rate} is more than the largest allowed ({})",
                        fx_rate_max()
                    ),
                );
            }
        }
        if cat.hours_per_month <= Decimal::ZERO || cat.hours_per_month > Decimal::from(744) {
            self.fail(
                "$.hours_per_month",
                CatalogRule::InvalidValue,
                "hours per month must be between 0 and 744",
            );
        }
        if cat.products.len() > CATALOG_PRODUCTS_MAX {
            self.fail(
                "$.products",
                CatalogRule::LimitExceeded,
                format!(
                    "{} products, more than the limit of {CATALOG_PRODUCTS_MAX}",
                    cat.products.len()
                ),
            );
        }
    }

    fn unique_ids(&mut self, cat: &Catalog) {
        self.unique("$.meters", cat.meters.iter().map(|m| &m.id));
        self.unique("$.products", cat.products.iter().map(|p| &p.id));
        self.unique("$.regions", cat.regions.iter().map(|r| &r.id));
        self.unique("$.sla_tiers", cat.sla_tiers.iter().map(|s| &s.id));
        self.unique(
            "$.tax_jurisdictions",
            cat.tax_jurisdictions.iter().map(|t| &t.id),
        );
        self.unique("$.discounts", cat.discounts.iter().map(|d| &d.id));
        self.unique("$.terms", cat.terms.iter().map(|t| &t.id));
        self.unique("$.resellers", cat.resellers.iter().map(|r| &r.id));
    }

    fn meters(&mut self, cat: &Catalog) {
        for (i, m) in cat.meters.iter().enumerate() {
            if m.measurement_unit <= Decimal::ZERO {
                self.fail(
                    format!("$.meters[{i}].measurement_unit"),
                    CatalogRule::InvalidValue,
                    "measurement unit must be positive",
                );
            }
            if m.section.is_empty() {
                self.fail(
                    format!("$.meters[{i}].section"),
                    CatalogRule::InvalidValue,
                    "section is empty",
                );
            }
        }
    }

    /// Aliases, charges and their prices, fees, and a package's services.
    fn products(&mut self, cat: &Catalog) {
        let mut aliases = BTreeSet::new();
        for (i, p) in cat.products.iter().enumerate() {
            let pp = format!("$.products[{i}]");
            for (j, a) in p.aliases.iter().enumerate() {
                if !aliases.insert(a.as_str()) || (cat.product(a).is_some() && a != &p.id) {
                    self.fail(
                        format!("{pp}.aliases[{j}]"),
                        CatalogRule::DuplicateId,
                        format!("alias `{a}` names more than one product"),
                    );
                }
            }
            self.charges(cat, &pp, p);
            self.fees_and_services(cat, &pp, &p.kind);
            self.allowances(cat, &pp, p);
        }
    }

    /// A plan's allowances: of a meter some product charges, once each, not negative, with a
    /// valid over-usage price that stays within what one line may cost.
    fn allowances(&mut self, cat: &Catalog, pp: &str, p: &Product) {
        let mut meters = BTreeSet::new();
        for (j, a) in p.allowances.iter().enumerate() {
            let ap = format!("{pp}.allowances[{j}]");
            let charged = cat
                .products
                .iter()
                .any(|q| q.charges.iter().any(|c| c.meter == a.meter));
            match cat.meter(&a.meter) {
                None => self.fail(
                    format!("{ap}.meter"),
                    CatalogRule::UnknownReference,
                    format!("unknown meter `{}`", a.meter),
                ),
                Some(_) if !charged => self.fail(
                    format!("{ap}.meter"),
                    CatalogRule::UnknownReference,
                    format!("no product charges meter `{}`", a.meter),
                ),
                Some(m) => {
                    if let Some(price) = &a.overage {
                        self.price(&format!("{ap}.overage"), price);
                        self.line_bound(&format!("{ap}.overage"), price, m, price_factor(cat, p));
                    }
                }
            }
            if !meters.insert(a.meter.as_str()) {
                self.fail(
                    format!("{ap}.meter"),
                    CatalogRule::DuplicateId,
                    format!("a second allowance of meter `{}`", a.meter),
                );
            }
            if a.included.is_sign_negative() && !a.included.is_zero() {
                self.fail(
                    format!("{ap}.included"),
                    CatalogRule::InvalidValue,
                    "an allowance cannot be negative",
                );
            }
        }
    }

    fn charges(&mut self, cat: &Catalog, pp: &str, p: &Product) {
        let mut meters = BTreeSet::new();
        for (j, ch) in p.charges.iter().enumerate() {
            let cp = format!("{pp}.charges[{j}]");
            if cat.meter(&ch.meter).is_none() {
                self.fail(
                    format!("{cp}.meter"),
                    CatalogRule::UnknownReference,
                    format!("unknown meter `{}`", ch.meter),
                );
            }
            if !meters.insert(ch.meter.as_str()) {
                self.fail(
                    format!("{cp}.meter"),
                    CatalogRule::DuplicateId,
                    format!("meter `{}` priced twice", ch.meter),
                );
            }
            self.price(&format!("{cp}.price"), &ch.price);
        }
    }

    fn fees_and_services(&mut self, cat: &Catalog, pp: &str, kind: &ProductKind) {
        match kind {
            ProductKind::Service { fees } => {
                self.money(&format!("{pp}.fees.one_time"), fees.one_time);
                self.money(&format!("{pp}.fees.monthly"), fees.monthly);
            }
            ProductKind::Package { services, fees } => {
                self.money(&format!("{pp}.fees.one_time"), fees.one_time);
                self.money(&format!("{pp}.fees.monthly"), fees.monthly);
                for (j, s) in services.iter().enumerate() {
                    match cat.product(s) {
                        Some(sp) if matches!(sp.kind, ProductKind::Service { .. }) => {}
                        Some(_) => self.fail(
                            format!("{pp}.services[{j}]"),
                            CatalogRule::InvalidValue,
                            format!("`{s}` is not a service"),
                        ),
                        None => self.fail(
                            format!("{pp}.services[{j}]"),
                            CatalogRule::UnknownReference,
                            format!("unknown service `{s}`"),
                        ),
                    }
                }
            }
            _ => {}
        }
    }

    /// The importers' settings: Ceilometer's times and names, and a CloudStack mapping's
    /// references (checked only when the catalog sets one: the default names the example
    /// CloudStack catalog's products).
    fn mappings(&mut self, cat: &Catalog, mappings: &crate::mapping::ImportOptions) {
        use crate::mapping::{MeterSelector, ProductSource, GAUGE_SAMPLE_INTERVAL_S_MAX};
        let c = &mappings.ceilometer;
        let path = "$.mappings.ceilometer";
        if c.gauge_sample_interval_s == 0 || c.gauge_sample_interval_s > GAUGE_SAMPLE_INTERVAL_S_MAX
        {
            self.fail(
                format!("{path}.gauge_sample_interval_s"),
                CatalogRule::InvalidValue,
                format!("the sampling interval must be 1 to {GAUGE_SAMPLE_INTERVAL_S_MAX} seconds"),
            );
        }
        if c.gauge_gap_max_s < c.gauge_sample_interval_s
            || c.gauge_gap_max_s > GAUGE_SAMPLE_INTERVAL_S_MAX
        {
            self.fail(
                format!("{path}.gauge_gap_max_s"),
                CatalogRule::InvalidValue,
                format!("the gap limit must be at least the sampling interval ({} s) and at most {GAUGE_SAMPLE_INTERVAL_S_MAX} s", c.gauge_sample_interval_s),
            );
        }
        if c.gauge_jitter_s >= c.gauge_sample_interval_s.max(1) {
            self.fail(
                format!("{path}.gauge_jitter_s"),
                CatalogRule::InvalidValue,
                "the jitter must be shorter than the sampling interval",
            );
        }
        for (project, account) in &c.account_by_project {
            if project.is_empty() || account.is_empty() {
                self.fail(
                    format!("{path}.account_by_project.{project}"),
                    CatalogRule::InvalidValue,
                    "a project and its account must both be named",
                );
            }
        }
        if let Some(r) = &c.region {
            if !cat
                .regions
                .iter()
                .any(|x| &x.id == r || x.aliases.contains(r))
            {
                self.fail(
                    format!("{path}.region"),
                    CatalogRule::UnknownReference,
                    format!("unknown region `{r}`"),
                );
            }
        }
        for (i, rule) in c.counters.iter().enumerate() {
            self.counter_rule(cat, &format!("{path}.counters[{i}]"), rule);
        }
        let cs = &mappings.cloudstack;
        if *cs == crate::mapping::CloudStackMapping::default() {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, rule) in cs.rules.iter().enumerate() {
            let rp = format!("$.mappings.cloudstack.rules[{i}]");
            // A type may have several rules (a VM's vCPUs, RAM and image), but the same one
            // twice would bill one usage twice.
            let key = (
                rule.usage_type,
                format!("{:?}{:?}{:?}", rule.product, rule.meter, rule.quantity),
            );
            if !seen.insert(key) {
                self.fail(
                    format!("{rp}.usage_type"),
                    CatalogRule::DuplicateId,
                    format!("usage type {} has this rule twice", rule.usage_type),
                );
            }
            let fixed = match &rule.product {
                ProductSource::Offering | ProductSource::Template => None,
                ProductSource::OfferingOr(p) | ProductSource::Product(p) => Some(p),
            };
            let product = fixed.and_then(|p| cat.resolve_product(p));
            if let (Some(p), None) = (fixed, product) {
                self.fail(
                    format!("{rp}.product"),
                    CatalogRule::UnknownReference,
                    format!("unknown product `{p}`"),
                );
            }
            if let (Some(p), MeterSelector::Id(m)) = (product, &rule.meter) {
                if !p.charges.iter().any(|ch| &ch.meter == m) {
                    self.fail(
                        format!("{rp}.meter"),
                        CatalogRule::UnknownReference,
                        format!("product `{}` has no charge for meter `{m}`", p.id),
                    );
                }
            }
        }
    }

    /// A Ceilometer counter rule: named, of a product that charges its meter, a gauge in
    /// seconds or GB-hours, a positive scale.
    fn counter_rule(&mut self, cat: &Catalog, rp: &str, rule: &crate::mapping::CounterRule) {
        use crate::mapping::{CounterKind, MeterSelector};
        use crate::unit::Unit;
        if rule.name.is_empty() {
            self.fail(
                format!("{rp}.name"),
                CatalogRule::InvalidValue,
                "the counter's name is empty",
            );
        }
        match cat.resolve_product(&rule.product) {
            None => self.fail(
                format!("{rp}.product"),
                CatalogRule::UnknownReference,
                format!("unknown product `{}`", rule.product),
            ),
            Some(p) => {
                let found = match &rule.meter {
                    MeterSelector::Role(role) => cat.meter_for_role(&p.id, *role).is_some(),
                    MeterSelector::Id(id) => p.charges.iter().any(|c| &c.meter == id),
                };
                if !found {
                    self.fail(
                        format!("{rp}.meter"),
                        CatalogRule::UnknownReference,
                        format!("product `{}` has no charge for this meter", p.id),
                    );
                }
            }
        }
        if rule.kind == CounterKind::Gauge
            && !matches!(rule.unit, Unit::Seconds | Unit::GigabyteHours)
        {
            self.fail(
                format!("{rp}.unit"),
                CatalogRule::InvalidValue,
                "a gauge is billed for the time it is held: seconds (a count) or gigabyte_hours (GB)",
            );
        }
        if rule.scale <= Decimal::ZERO {
            self.fail(
                format!("{rp}.scale"),
                CatalogRule::InvalidValue,
                "the scale must be positive",
            );
        }
    }

    /// Price overrides (of charges that exist) and unavailable products.
    fn regions(&mut self, cat: &Catalog) {
        for (i, r) in cat.regions.iter().enumerate() {
            for (j, o) in r.overrides.iter().enumerate() {
                let op = format!("$.regions[{i}].overrides[{j}]");
                match cat.product(&o.product) {
                    None => self.fail(
                        format!("{op}.product"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{}`", o.product),
                    ),
                    Some(p) if !p.charges.iter().any(|ch| ch.meter == o.meter) => self.fail(
                        format!("{op}.meter"),
                        CatalogRule::UnknownReference,
                        format!(
                            "product `{}` has no charge for meter `{}`",
                            o.product, o.meter
                        ),
                    ),
                    Some(_) => {}
                }
                self.price(&format!("{op}.price"), &o.price);
            }
            for (j, p) in r.unavailable.iter().enumerate() {
                if cat.product(p).is_none() {
                    self.fail(
                        format!("$.regions[{i}].unavailable[{j}]"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
        }
    }

    fn sla_tiers(&mut self, cat: &Catalog) {
        for (i, s) in cat.sla_tiers.iter().enumerate() {
            let sp = format!("$.sla_tiers[{i}]");
            self.pct(
                &format!("{sp}.uptime_pct"),
                s.uptime_pct,
                Decimal::ONE_HUNDRED,
            );
            self.pct(
                &format!("{sp}.uplift_pct"),
                s.uplift_pct,
                Decimal::from(1000),
            );
            for (j, step) in s.credits.iter().enumerate() {
                self.pct(
                    &format!("{sp}.credits[{j}].below_pct"),
                    step.below_pct,
                    Decimal::ONE_HUNDRED,
                );
                self.pct(
                    &format!("{sp}.credits[{j}].credit_pct"),
                    step.credit_pct,
                    Decimal::ONE_HUNDRED,
                );
            }
        }
    }

    fn taxes(&mut self, cat: &Catalog) {
        for (i, t) in cat.tax_jurisdictions.iter().enumerate() {
            for (j, r) in t.taxes.iter().enumerate() {
                self.pct(
                    &format!("$.tax_jurisdictions[{i}].taxes[{j}].rate_pct"),
                    r.rate_pct,
                    Decimal::ONE_HUNDRED,
                );
            }
        }
    }

    fn discounts(&mut self, cat: &Catalog, path: &str, discounts: &[Discount]) {
        for (i, d) in discounts.iter().enumerate() {
            self.discount(cat, &format!("{path}[{i}]"), d);
        }
    }

    /// One discount at `dp`: its value, its product scope and its validity window.
    fn discount(&mut self, cat: &Catalog, dp: &str, d: &Discount) {
        match &d.value {
            DiscountValue::Percent { pct } => {
                self.pct(&format!("{dp}.value.pct"), *pct, Decimal::ONE_HUNDRED)
            }
            DiscountValue::Fixed { amount } => self.money(&format!("{dp}.value.amount"), *amount),
        }
        match &d.scope {
            DiscountScope::Product(p) if cat.product(p).is_none() => self.fail(
                format!("{dp}.scope.id"),
                CatalogRule::UnknownReference,
                format!("unknown product `{p}`"),
            ),
            _ => {}
        }
        if let (Some(f), Some(t)) = (d.valid_from, d.valid_to) {
            if t <= f {
                self.fail(
                    format!("{dp}.valid_to"),
                    CatalogRule::InvalidValue,
                    "validity window ends before it starts",
                );
            }
        }
    }

    /// Coupon codes are short words, unique without regard to case; their discounts are
    /// checked as discounts are; windows, limits and durations make sense.
    fn coupons(&mut self, cat: &Catalog) {
        let mut seen = BTreeSet::new();
        for (i, c) in cat.coupons.iter().enumerate() {
            let cp = format!("$.coupons[{i}]");
            let word = c
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if c.code.is_empty() || c.code.len() > crate::catalog::COUPON_CODE_MAX || !word {
                self.fail(
                    format!("{cp}.code"),
                    CatalogRule::InvalidValue,
                    format!(
                        "a coupon code is 1 to {} letters, digits, `-` or `_`",
                        crate::catalog::COUPON_CODE_MAX
                    ),
                );
            } else if !seen.insert(c.code.to_ascii_uppercase()) {
                self.fail(
                    format!("{cp}.code"),
                    CatalogRule::DuplicateId,
                    format!("duplicate coupon code `{}` (codes ignore case)", c.code),
                );
            }
            // The discount a redemption gives, checked at the coupon's own paths.
            let mut d = c.discount_from(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
            d.valid_to = None;
            // A coupon is public: its scope is every charge, a product or a category, never
            // one account's project or resource (which no estimate could apply).
            if !matches!(
                c.scope,
                DiscountScope::All | DiscountScope::Product(_) | DiscountScope::Category(_)
            ) {
                self.fail(
                    format!("{cp}.scope.type"),
                    CatalogRule::InvalidValue,
                    "a coupon applies to every charge, a product or a category",
                );
            }
            self.discount(cat, &cp, &d);
            if let (Some(f), Some(u)) = (c.redeem_from, c.redeem_until) {
                if u <= f {
                    self.fail(
                        format!("{cp}.redeem_until"),
                        CatalogRule::InvalidValue,
                        "redemption window ends before it starts",
                    );
                }
            }
            if c.max_redemptions == Some(0) {
                self.fail(
                    format!("{cp}.max_redemptions"),
                    CatalogRule::InvalidValue,
                    "a coupon nobody may redeem: leave it out instead",
                );
            }
            if c.duration_months == Some(0) {
                self.fail(
                    format!("{cp}.duration_months"),
                    CatalogRule::InvalidValue,
                    "a coupon lasts at least one month (leave the field out for good)",
                );
            }
        }
    }

    /// Cost codes at `path` (the catalog's or an account's): codes unique and not empty, the
    /// products they book known.
    fn cost_codes(&mut self, cat: &Catalog, path: &str, codes: &[crate::catalog::CostCode]) {
        let mut seen = BTreeSet::new();
        for (i, c) in codes.iter().enumerate() {
            if c.code.is_empty() || c.code == crate::blocks::ACCOUNT_BLOCK {
                self.fail(
                    format!("{path}[{i}].code"),
                    CatalogRule::InvalidValue,
                    format!(
                        "a cost code is not empty and not `{}` (the block of usage without one)",
                        crate::blocks::ACCOUNT_BLOCK
                    ),
                );
            } else if !seen.insert(c.code.as_str()) {
                self.fail(
                    format!("{path}[{i}].code"),
                    CatalogRule::DuplicateId,
                    format!("duplicate cost code `{}`", c.code),
                );
            }
            for (j, p) in c.products.iter().enumerate() {
                if cat.product(p).is_none() {
                    self.fail(
                        format!("{path}[{i}].products[{j}]"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
        }
    }

    fn terms_and_tags(&mut self, cat: &Catalog) {
        for (i, t) in cat.terms.iter().enumerate() {
            self.pct(
                &format!("$.terms[{i}].discount_pct"),
                t.discount_pct,
                Decimal::ONE_HUNDRED,
            );
            if t.months == 0 || t.months > crate::catalog::TERM_MONTHS_MAX {
                self.fail(
                    format!("$.terms[{i}].months"),
                    CatalogRule::InvalidValue,
                    // A literal, not a format (the storefront's wasm counts its bytes): the
                    // test `catalog_errors` checks it names TERM_MONTHS_MAX.
                    "a term lasts 1 to 120 months",
                );
            }
        }
        for (i, t) in cat.billing_tags.iter().enumerate() {
            if t.tag.is_empty() {
                self.fail(
                    format!("$.billing_tags[{i}].tag"),
                    CatalogRule::InvalidValue,
                    "tag is empty",
                );
            }
        }
    }

    fn resellers(&mut self, cat: &Catalog) {
        for (i, r) in cat.resellers.iter().enumerate() {
            let rp = format!("$.resellers[{i}]");
            self.markup(cat, &rp, &r.markup);
            for (j, p) in r.hidden_products.iter().enumerate() {
                if cat.product(p).is_none() {
                    self.fail(
                        format!("{rp}.hidden_products[{j}]"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
            for p in r.renamed.keys() {
                if cat.product(p).is_none() {
                    self.fail(
                        format!("{rp}.renamed.{p}"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
            if let Some(cur) = &r.currency {
                self.reseller_currency(cat, &rp, cur);
            }
        }
    }

    fn markup(&mut self, cat: &Catalog, rp: &str, markup: &Markup) {
        self.pct(
            &format!("{rp}.markup.global_pct"),
            markup.global_pct,
            Decimal::from(1000),
        );
        for (category, pct) in &markup.categories {
            self.pct(
                &format!("{rp}.markup.categories.{category:?}"),
                *pct,
                Decimal::from(1000),
            );
        }
        for (p, pct) in &markup.products {
            if cat.product(p).is_none() {
                self.fail(
                    format!("{rp}.markup.products.{p}"),
                    CatalogRule::UnknownReference,
                    format!("unknown product `{p}`"),
                );
            }
            self.pct(
                &format!("{rp}.markup.products.{p}"),
                *pct,
                Decimal::from(1000),
            );
        }
    }

    fn reseller_currency(&mut self, cat: &Catalog, rp: &str, cur: &CurrencySettings) {
        if minor_units(&cur.code).is_none() {
            self.fail(
                format!("{rp}.currency.code"),
                CatalogRule::UnknownCurrency,
                format!("unknown currency `{}`", cur.code),
            );
        } else if cur.code != cat.currency.code && !cat.fx_rates.contains_key(&cur.code) {
            self.fail(
                format!("{rp}.currency.code"),
                CatalogRule::UnknownReference,
                format!("no exchange rate to `{}` in fx_rates", cur.code),
            );
        }
    }

    /// The bound that keeps pricing inside a decimal: on the most one line may hold
    /// ([`line_quantity_max`]), no price, and no subscription of the most units
    /// ([`subscription_quantity_max`]), may cost more than one line may
    /// ([`line_amount_max`]) in any currency the catalog bills in (its exchange rates) and at
    /// any reseller's markup.
    fn amounts(&mut self, cat: &Catalog) {
        for (i, p) in cat.products.iter().enumerate() {
            let factor = price_factor(cat, p);
            for (j, ch) in p.charges.iter().enumerate() {
                if let Some(m) = cat.meter(&ch.meter) {
                    let path = format!("$.products[{i}].charges[{j}].price");
                    self.line_bound(&path, &ch.price, m, factor);
                }
            }
            if let Some(fees) = p.fees() {
                let bound = exact::add(fees.one_time, fees.monthly, "fees")
                    .and_then(|f| exact::mul(f, subscription_quantity_max(), "fees"))
                    .and_then(|f| exact::mul(f, factor.unwrap_or(Decimal::MAX), "fees"));
                if bound.is_err() || bound.is_ok_and(|b| b > line_amount_max()) {
                    self.fail(
                        format!("$.products[{i}].fees"),
                        CatalogRule::AmountTooLarge,
                        format!(
                            "{} subscriptions at these fees would cost more than one line may ({})",
                            subscription_quantity_max(),
                            line_amount_max()
                        ),
                    );
                }
            }
        }
        for (i, r) in cat.regions.iter().enumerate() {
            for (j, o) in r.overrides.iter().enumerate() {
                let (Some(p), Some(m)) = (cat.product(&o.product), cat.meter(&o.meter)) else {
                    continue;
                };
                let path = format!("$.regions[{i}].overrides[{j}].price");
                self.line_bound(&path, &o.price, m, price_factor(cat, p));
            }
        }
    }

    /// Refuses `price` (of meter `m`) when it could cost more than one line may.
    fn line_bound(&mut self, path: &str, price: &Price, m: &Meter, factor: Option<Decimal>) {
        let bound = price
            .amount_bound(line_quantity_max(), m.measurement_unit)
            .ok()
            .zip(factor)
            .and_then(|(b, f)| b.checked_mul(f));
        match bound {
            Some(b) if b <= line_amount_max() => {}
            _ => self.fail(
                path,
                CatalogRule::AmountTooLarge,
                format!(
                    "on the most one line may hold ({} {}), this price (times the largest exchange rate and reseller markup, x{}) comes to {}, more than one line may cost ({})",
                    line_quantity_max(),
                    m.unit.label(),
                    factor.map_or("?".to_string(), |f| f.normalize().to_string()),
                    bound.map_or("more than a decimal holds".to_string(), |b| b.normalize().to_string()),
                    line_amount_max()
                ),
            ),
        }
    }

    fn templates(&mut self, cat: &Catalog) {
        for (i, t) in cat.templates.iter().enumerate() {
            for (j, tier) in t.tiers.iter().enumerate() {
                if tier.name.is_empty() {
                    self.fail(
                        format!("$.templates[{i}].tiers[{j}].name"),
                        CatalogRule::InvalidValue,
                        "tier name is empty",
                    );
                }
            }
        }
    }
}
