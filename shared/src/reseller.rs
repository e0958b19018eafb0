//! Reseller overlays: the effective catalog a reseller publishes to its storefront, with its
//! markup, currency, taxes, names and brand applied and no wholesale price left in it.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::catalog::{
    Catalog, Category, CurrencySettings, Discount, DiscountScope, DiscountValue, Product,
    ProductKind, Region, ResellerOverlay, Template,
};
use crate::error::{MoneyError, PricingError};
use crate::quote::Component;

/// Builds the catalog reseller `reseller_id` sells from: every price marked up (product, then
/// category, then global markup) and converted to the reseller's currency at the catalog's fixed
/// rate; hidden products removed; renamed products renamed; the reseller's taxes in place of the
/// wholesale ones; all reseller overlays removed (no reseller sees another's terms).
///
/// The result is a plain [`Catalog`]: the storefront estimates with it and the rater invoices
/// the reseller's customers with it, so both see the same retail prices.
pub fn publish(catalog: &Catalog, reseller_id: &str) -> Result<Catalog, PricingError> {
    let overlay = catalog
        .reseller(reseller_id)
        .ok_or_else(|| PricingError::UnknownReseller {
            id: reseller_id.to_string(),
        })?;
    let target = overlay
        .currency
        .clone()
        .unwrap_or_else(|| catalog.currency.clone());
    let fx = if target.code == catalog.currency.code {
        Decimal::ONE
    } else {
        *catalog
            .fx_rates
            .get(&target.code)
            .ok_or_else(|| MoneyError::NoExchangeRate {
                from: catalog.currency.code.clone(),
                to: target.code.clone(),
            })?
    };
    if fx <= Decimal::ZERO {
        return Err(PricingError::overflow(
            crate::exact::Overflow {
                what: "exchange rate",
            },
            format!("reseller {reseller_id}"),
        ));
    }
    let retail = Retail {
        overlay,
        fx,
        overflow: std::cell::Cell::new(false),
    };
    let published = Catalog {
        schema_version: catalog.schema_version,
        id: format!("{}@{}", catalog.id, overlay.id),
        version: catalog.version.clone(),
        name: overlay.brand.name.clone(),
        // None: the reseller's customers are invoiced in its currency only (the accounts
        // book refuses another), so its storefront offers no estimate in another currency
        // that no invoice could match.
        fx_rates: BTreeMap::new(),
        currency: CurrencySettings {
            code: target.code,
            rounding: target.rounding,
        },
        hours_per_month: catalog.hours_per_month,
        sections: catalog.sections.clone(),
        meters: catalog.meters.clone(),
        products: retail.products(catalog),
        regions: retail.regions(catalog),
        sla_tiers: catalog.sla_tiers.clone(),
        tax_jurisdictions: overlay
            .tax_jurisdictions
            .clone()
            .unwrap_or_else(|| catalog.tax_jurisdictions.clone()),
        discounts: retail.discounts(catalog),
        billing_tags: catalog.billing_tags.clone(),
        terms: catalog.terms.clone(),
        templates: retail.templates(catalog),
        resellers: Vec::new(),
        late_usage: catalog.late_usage,
        // The reseller's customers run the provider's clouds: their exports map the same way.
        mappings: catalog.mappings.clone(),
        // Coupons are the provider's, redeemed by its direct customers (`AccountBook::validate`).
        coupons: Vec::new(),
        // The provider's cost codes are its own accounting, and name products a reseller may
        // hide: a reseller's catalog has none (its customers' own codes still apply).
        cost_codes: Vec::new(),
        brand: Some(overlay.brand.clone()),
    };
    // A validated catalog's prices, markups (at most 1,000 %) and rates never overflow here;
    // one built without validation is refused rather than published with a wrong price.
    if retail.overflow.get() {
        return Err(PricingError::overflow(
            crate::exact::Overflow {
                what: "marked-up price",
            },
            format!("reseller {reseller_id}"),
        ));
    }
    Ok(published)
}

/// A reseller's overlay and the rate from the wholesale currency to the reseller's.
struct Retail<'c> {
    overlay: &'c ResellerOverlay,
    fx: Decimal,
    /// Set when a price times its factor did not fit in a decimal.
    overflow: std::cell::Cell<bool>,
}

impl Retail<'_> {
    fn hidden(&self, product: &str) -> bool {
        self.overlay.hidden_products.iter().any(|h| h == product)
    }

    /// What a wholesale price of `product` in `category` is multiplied by: its markup and the
    /// exchange rate.
    fn factor(&self, product: &str, category: Category) -> Decimal {
        let pct = self.overlay.markup.pct_for(product, category);
        Decimal::ONE_HUNDRED
            .checked_add(pct)
            .map(|p| p / Decimal::ONE_HUNDRED)
            .and_then(|p| p.checked_mul(self.fx))
            .unwrap_or_else(|| {
                self.overflow.set(true);
                Decimal::ONE
            })
    }

    /// `v x f`, normalized; an overflow is noted (and `publish` refuses the catalog).
    fn scale(&self, v: Decimal, f: Decimal) -> Decimal {
        match v.checked_mul(f) {
            Some(r) => r.normalize(),
            None => {
                self.overflow.set(true);
                v
            }
        }
    }

    /// The products not hidden, renamed, with every price and fee marked up and converted.
    fn products(&self, catalog: &Catalog) -> Vec<Product> {
        let mut products: Vec<Product> = Vec::new();
        for p in &catalog.products {
            if self.hidden(&p.id) {
                continue;
            }
            let mut q = p.clone();
            if let Some(name) = self.overlay.renamed.get(&p.id) {
                q.name = name.clone();
            }
            for ch in &mut q.charges {
                let f = self.factor(&p.id, ch.category.unwrap_or(p.category));
                ch.price = ch.price.map_money(|v| self.scale(v, f));
            }
            let f = self.factor(&p.id, p.category);
            // A plan's over-usage is marked up like the plan (its fees' category).
            for a in &mut q.allowances {
                if let Some(price) = &mut a.overage {
                    *price = price.map_money(|v| self.scale(v, f));
                }
            }
            match &mut q.kind {
                ProductKind::Service { fees } => {
                    fees.one_time = self.scale(fees.one_time, f);
                    fees.monthly = self.scale(fees.monthly, f);
                }
                ProductKind::Package { services, fees } => {
                    services.retain(|s| !self.hidden(s));
                    fees.one_time = self.scale(fees.one_time, f);
                    fees.monthly = self.scale(fees.monthly, f);
                }
                _ => {}
            }
            products.push(q);
        }
        products
    }

    /// Regions with their overrides marked up and hidden products left out.
    fn regions(&self, catalog: &Catalog) -> Vec<Region> {
        let mut regions = catalog.regions.clone();
        for r in &mut regions {
            r.overrides.retain(|o| !self.hidden(&o.product));
            for o in &mut r.overrides {
                let category = catalog
                    .charge_category(&o.product, &o.meter)
                    .unwrap_or(Category::Other);
                let f = self.factor(&o.product, category);
                o.price = o.price.map_money(|v| self.scale(v, f));
            }
            r.unavailable.retain(|p| !self.hidden(p));
        }
        regions
    }

    /// Public promotions with fixed amounts converted; those on hidden products left out.
    fn discounts(&self, catalog: &Catalog) -> Vec<Discount> {
        let mut discounts = public_discounts(catalog);
        for d in &mut discounts {
            if let DiscountValue::Fixed { amount } = &mut d.value {
                *amount = self.scale(*amount, self.fx);
            }
        }
        discounts.retain(|d| !matches!(&d.scope, DiscountScope::Product(p) if self.hidden(p)));
        discounts
    }

    /// Starter templates without the components that name hidden products.
    fn templates(&self, catalog: &Catalog) -> Vec<Template> {
        let mut templates = catalog.templates.clone();
        for t in &mut templates {
            for tier in &mut t.tiers {
                tier.components
                    .retain(|c| !component_uses_hidden(c, &self.overlay.hidden_products));
            }
        }
        templates
    }
}

/// The catalog's promotions anyone may see: on everything, a product or a category. Discounts
/// scoped to an account, a project or a resource are deals with one customer: they price that
/// customer's invoices and are never published (a storefront's visitors would read them).
pub fn public_discounts(catalog: &Catalog) -> Vec<Discount> {
    catalog
        .discounts
        .iter()
        .filter(|d| {
            matches!(
                d.scope,
                DiscountScope::All | DiscountScope::Product(_) | DiscountScope::Category(_)
            )
        })
        .cloned()
        .collect()
}

/// The provider's own storefront catalog: the wholesale catalog without any reseller's terms,
/// without the discounts of single customers ([`public_discounts`]) and with cost codes by
/// product only: the resources and projects a catalog code books are its customers' ids, for
/// no visitor to read.
pub fn publish_direct(catalog: &Catalog) -> Catalog {
    Catalog {
        resellers: Vec::new(),
        discounts: public_discounts(catalog),
        cost_codes: catalog
            .cost_codes
            .iter()
            .filter(|c| !c.products.is_empty())
            .map(|c| crate::catalog::CostCode {
                resources: Vec::new(),
                projects: Vec::new(),
                ..c.clone()
            })
            .collect(),
        ..catalog.clone()
    }
}

fn component_uses_hidden(c: &Component, hidden: &[String]) -> bool {
    use Component::*;
    let p = match c {
        Compute { offering, .. } | Volume { offering, .. } => offering,
        Traffic { product, .. }
        | Ip { product, .. }
        | Service { product, .. }
        | Usage { product, .. } => product,
    };
    hidden.contains(p)
}

/// Every money value of a catalog's products (prices, tier prices, fees, minimums, region
/// overrides): what must not appear in a published catalog. Test support (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub fn wholesale_prices(catalog: &Catalog) -> Vec<Decimal> {
    let mut v = Vec::new();
    for p in &catalog.products {
        for ch in &p.charges {
            v.extend(ch.price.money_values());
        }
        if let Some(f) = p.fees() {
            v.push(f.one_time);
            v.push(f.monthly);
        }
    }
    for r in &catalog.regions {
        for o in &r.overrides {
            v.extend(o.price.money_values());
        }
    }
    v.retain(|d| !d.is_zero());
    v
}
