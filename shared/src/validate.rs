//! Catalog validation: every problem found, each at the JSON path of the bad field.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use crate::catalog::{Catalog, DiscountScope, DiscountValue, ProductKind, CATALOG_SCHEMA_VERSION};
use crate::error::{CatalogError, CatalogErrors, CatalogRule};
use crate::money::minor_units;
use crate::price::{Price, PriceModel, Tier, TIERS_PER_PRICE_MAX};

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
    /// Checks references, ids, prices, tiers, currencies and limits; returns every problem.
    pub fn validate(&self) -> Result<(), CatalogErrors> {
        let mut c = Check { errors: Vec::new() };
        if self.schema_version != CATALOG_SCHEMA_VERSION {
            c.fail("$.schema_version", CatalogRule::UnsupportedSchemaVersion, format!("schema_version {} is not supported (this build reads {CATALOG_SCHEMA_VERSION})", self.schema_version));
        }
        if self.id.is_empty() {
            c.fail("$.id", CatalogRule::InvalidValue, "catalog id is empty");
        }
        if self.version.is_empty() {
            c.fail(
                "$.version",
                CatalogRule::InvalidValue,
                "catalog version is empty",
            );
        }
        if minor_units(&self.currency.code).is_none() {
            c.fail(
                "$.currency.code",
                CatalogRule::UnknownCurrency,
                format!("unknown currency `{}`", self.currency.code),
            );
        }
        for (code, rate) in &self.fx_rates {
            if minor_units(code).is_none() {
                c.fail(
                    format!("$.fx_rates.{code}"),
                    CatalogRule::UnknownCurrency,
                    format!("unknown currency `{code}`"),
                );
            }
            if *rate <= Decimal::ZERO {
                c.fail(
                    format!("$.fx_rates.{code}"),
                    CatalogRule::InvalidValue,
                    "exchange rate must be positive",
                );
            }
        }
        if self.hours_per_month <= Decimal::ZERO || self.hours_per_month > Decimal::from(744) {
            c.fail(
                "$.hours_per_month",
                CatalogRule::InvalidValue,
                "hours per month must be between 0 and 744",
            );
        }
        if self.products.len() > CATALOG_PRODUCTS_MAX {
            c.fail(
                "$.products",
                CatalogRule::LimitExceeded,
                format!(
                    "{} products, more than the limit of {CATALOG_PRODUCTS_MAX}",
                    self.products.len()
                ),
            );
        }
        c.unique("$.meters", self.meters.iter().map(|m| &m.id));
        c.unique("$.products", self.products.iter().map(|p| &p.id));
        c.unique("$.regions", self.regions.iter().map(|r| &r.id));
        c.unique("$.sla_tiers", self.sla_tiers.iter().map(|s| &s.id));
        c.unique(
            "$.tax_jurisdictions",
            self.tax_jurisdictions.iter().map(|t| &t.id),
        );
        c.unique("$.discounts", self.discounts.iter().map(|d| &d.id));
        c.unique("$.terms", self.terms.iter().map(|t| &t.id));
        c.unique("$.resellers", self.resellers.iter().map(|r| &r.id));

        for (i, m) in self.meters.iter().enumerate() {
            if m.measurement_unit <= Decimal::ZERO {
                c.fail(
                    format!("$.meters[{i}].measurement_unit"),
                    CatalogRule::InvalidValue,
                    "measurement unit must be positive",
                );
            }
            if m.section.is_empty() {
                c.fail(
                    format!("$.meters[{i}].section"),
                    CatalogRule::InvalidValue,
                    "section is empty",
                );
            }
        }
        let mut aliases = BTreeSet::new();
        for (i, p) in self.products.iter().enumerate() {
            let pp = format!("$.products[{i}]");
            for (j, a) in p.aliases.iter().enumerate() {
                if !aliases.insert(a.as_str()) || (self.product(a).is_some() && a != &p.id) {
                    c.fail(
                        format!("{pp}.aliases[{j}]"),
                        CatalogRule::DuplicateId,
                        format!("alias `{a}` names more than one product"),
                    );
                }
            }
            let mut meters = BTreeSet::new();
            for (j, ch) in p.charges.iter().enumerate() {
                let cp = format!("{pp}.charges[{j}]");
                if self.meter(&ch.meter).is_none() {
                    c.fail(
                        format!("{cp}.meter"),
                        CatalogRule::UnknownReference,
                        format!("unknown meter `{}`", ch.meter),
                    );
                }
                if !meters.insert(ch.meter.as_str()) {
                    c.fail(
                        format!("{cp}.meter"),
                        CatalogRule::DuplicateId,
                        format!("meter `{}` priced twice", ch.meter),
                    );
                }
                c.price(&format!("{cp}.price"), &ch.price);
            }
            match &p.kind {
                ProductKind::Service { fees } => {
                    c.money(&format!("{pp}.fees.one_time"), fees.one_time);
                    c.money(&format!("{pp}.fees.monthly"), fees.monthly);
                }
                ProductKind::Package { services, fees } => {
                    c.money(&format!("{pp}.fees.one_time"), fees.one_time);
                    c.money(&format!("{pp}.fees.monthly"), fees.monthly);
                    for (j, s) in services.iter().enumerate() {
                        match self.product(s) {
                            Some(sp) if matches!(sp.kind, ProductKind::Service { .. }) => {}
                            Some(_) => c.fail(
                                format!("{pp}.services[{j}]"),
                                CatalogRule::InvalidValue,
                                format!("`{s}` is not a service"),
                            ),
                            None => c.fail(
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
        for (i, r) in self.regions.iter().enumerate() {
            for (j, o) in r.overrides.iter().enumerate() {
                let op = format!("$.regions[{i}].overrides[{j}]");
                match self.product(&o.product) {
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
                    Some(_) => {}
                }
                c.price(&format!("{op}.price"), &o.price);
            }
            for (j, p) in r.unavailable.iter().enumerate() {
                if self.product(p).is_none() {
                    c.fail(
                        format!("$.regions[{i}].unavailable[{j}]"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
        }
        for (i, s) in self.sla_tiers.iter().enumerate() {
            let sp = format!("$.sla_tiers[{i}]");
            c.pct(
                &format!("{sp}.uptime_pct"),
                s.uptime_pct,
                Decimal::ONE_HUNDRED,
            );
            c.pct(
                &format!("{sp}.uplift_pct"),
                s.uplift_pct,
                Decimal::from(1000),
            );
            for (j, step) in s.credits.iter().enumerate() {
                c.pct(
                    &format!("{sp}.credits[{j}].below_pct"),
                    step.below_pct,
                    Decimal::ONE_HUNDRED,
                );
                c.pct(
                    &format!("{sp}.credits[{j}].credit_pct"),
                    step.credit_pct,
                    Decimal::ONE_HUNDRED,
                );
            }
        }
        for (i, t) in self.tax_jurisdictions.iter().enumerate() {
            for (j, r) in t.taxes.iter().enumerate() {
                c.pct(
                    &format!("$.tax_jurisdictions[{i}].taxes[{j}].rate_pct"),
                    r.rate_pct,
                    Decimal::ONE_HUNDRED,
                );
            }
        }
        self.validate_discounts(&mut c, "$.discounts", &self.discounts);
        for (i, t) in self.terms.iter().enumerate() {
            c.pct(
                &format!("$.terms[{i}].discount_pct"),
                t.discount_pct,
                Decimal::ONE_HUNDRED,
            );
            if t.months == 0 {
                c.fail(
                    format!("$.terms[{i}].months"),
                    CatalogRule::InvalidValue,
                    "a term lasts at least one month",
                );
            }
        }
        for (i, t) in self.billing_tags.iter().enumerate() {
            if t.tag.is_empty() {
                c.fail(
                    format!("$.billing_tags[{i}].tag"),
                    CatalogRule::InvalidValue,
                    "tag is empty",
                );
            }
        }
        for (i, r) in self.resellers.iter().enumerate() {
            let rp = format!("$.resellers[{i}]");
            c.pct(
                &format!("{rp}.markup.global_pct"),
                r.markup.global_pct,
                Decimal::from(1000),
            );
            for (cat, pct) in &r.markup.categories {
                c.pct(
                    &format!("{rp}.markup.categories.{cat:?}"),
                    *pct,
                    Decimal::from(1000),
                );
            }
            for (p, pct) in &r.markup.products {
                if self.product(p).is_none() {
                    c.fail(
                        format!("{rp}.markup.products.{p}"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
                c.pct(
                    &format!("{rp}.markup.products.{p}"),
                    *pct,
                    Decimal::from(1000),
                );
            }
            for (j, p) in r.hidden_products.iter().enumerate() {
                if self.product(p).is_none() {
                    c.fail(
                        format!("{rp}.hidden_products[{j}]"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
            for p in r.renamed.keys() {
                if self.product(p).is_none() {
                    c.fail(
                        format!("{rp}.renamed.{p}"),
                        CatalogRule::UnknownReference,
                        format!("unknown product `{p}`"),
                    );
                }
            }
            if let Some(cur) = &r.currency {
                if minor_units(&cur.code).is_none() {
                    c.fail(
                        format!("{rp}.currency.code"),
                        CatalogRule::UnknownCurrency,
                        format!("unknown currency `{}`", cur.code),
                    );
                } else if cur.code != self.currency.code && !self.fx_rates.contains_key(&cur.code) {
                    c.fail(
                        format!("{rp}.currency.code"),
                        CatalogRule::UnknownReference,
                        format!("no exchange rate to `{}` in fx_rates", cur.code),
                    );
                }
            }
        }
        for (i, t) in self.templates.iter().enumerate() {
            for (j, tier) in t.tiers.iter().enumerate() {
                if tier.name.is_empty() {
                    c.fail(
                        format!("$.templates[{i}].tiers[{j}].name"),
                        CatalogRule::InvalidValue,
                        "tier name is empty",
                    );
                }
            }
        }
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(CatalogErrors(c.errors))
        }
    }

    fn validate_discounts(
        &self,
        c: &mut Check,
        path: &str,
        discounts: &[crate::catalog::Discount],
    ) {
        for (i, d) in discounts.iter().enumerate() {
            let dp = format!("{path}[{i}]");
            match &d.value {
                DiscountValue::Percent { pct } => {
                    c.pct(&format!("{dp}.value.pct"), *pct, Decimal::ONE_HUNDRED)
                }
                DiscountValue::Fixed { amount } => c.money(&format!("{dp}.value.amount"), *amount),
            }
            match &d.scope {
                DiscountScope::Product(p) if self.product(p).is_none() => c.fail(
                    format!("{dp}.scope.id"),
                    CatalogRule::UnknownReference,
                    format!("unknown product `{p}`"),
                ),
                _ => {}
            }
            if let (Some(f), Some(t)) = (d.valid_from, d.valid_to) {
                if t <= f {
                    c.fail(
                        format!("{dp}.valid_to"),
                        CatalogRule::InvalidValue,
                        "validity window ends before it starts",
                    );
                }
            }
        }
    }
}

/// Rejects JSON numbers with a fraction or exponent anywhere in `value`: decimals must be
/// written as strings ("0.0069") so that they never pass through binary floating point.
pub(crate) fn reject_float_numbers(
    value: &serde_json::Value,
    path: &mut String,
    errors: &mut Vec<CatalogError>,
) {
    match value {
        serde_json::Value::Number(n) if !(n.is_i64() || n.is_u64()) => errors.push(CatalogError {
            path: path.clone(),
            rule: CatalogRule::FloatNumber,
            message: format!("write the decimal {n} as a string (\"{n}\"): JSON numbers with a fraction are binary floats"),
        }),
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                reject_float_numbers(v, path, errors);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                reject_float_numbers(v, path, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}
