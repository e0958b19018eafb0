//! Reseller overlays: the effective catalog a reseller publishes to its storefront, with its
//! markup, currency, taxes, names and brand applied and no wholesale price left in it.

use rust_decimal::Decimal;

use crate::catalog::{Catalog, CurrencySettings, DiscountValue, Product, ProductKind};
use crate::error::{MoneyError, PricingError};

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
        .ok_or_else(|| PricingError::UnknownReference {
            what: "reseller",
            id: reseller_id.to_string(),
            path: "catalog.resellers".into(),
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
    let factor = |pct: Decimal| (Decimal::ONE_HUNDRED + pct) / Decimal::ONE_HUNDRED * fx;

    let mut products: Vec<Product> = Vec::new();
    for p in &catalog.products {
        if overlay.hidden_products.contains(&p.id) {
            continue;
        }
        let mut q = p.clone();
        if let Some(name) = overlay.renamed.get(&p.id) {
            q.name = name.clone();
        }
        for ch in &mut q.charges {
            let cat = ch.category.unwrap_or(p.category);
            let f = factor(overlay.markup.pct_for(&p.id, cat));
            ch.price = ch.price.map_money(|v| (v * f).normalize());
        }
        let f = factor(overlay.markup.pct_for(&p.id, p.category));
        match &mut q.kind {
            ProductKind::Service { fees } => {
                fees.one_time = (fees.one_time * f).normalize();
                fees.monthly = (fees.monthly * f).normalize();
            }
            ProductKind::Package { services, fees } => {
                services.retain(|s| !overlay.hidden_products.contains(s));
                fees.one_time = (fees.one_time * f).normalize();
                fees.monthly = (fees.monthly * f).normalize();
            }
            _ => {}
        }
        products.push(q);
    }

    let mut regions = catalog.regions.clone();
    for r in &mut regions {
        r.overrides
            .retain(|o| !overlay.hidden_products.contains(&o.product));
        for o in &mut r.overrides {
            let category = catalog
                .charge_category(&o.product, &o.meter)
                .unwrap_or(crate::catalog::Category::Other);
            let f = factor(overlay.markup.pct_for(&o.product, category));
            o.price = o.price.map_money(|v| (v * f).normalize());
        }
        r.unavailable
            .retain(|p| !overlay.hidden_products.contains(p));
    }

    let mut discounts = catalog.discounts.clone();
    for d in &mut discounts {
        if let DiscountValue::Fixed { amount } = &mut d.value {
            *amount = (*amount * fx).normalize();
        }
    }
    discounts.retain(|d| !matches!(&d.scope, crate::catalog::DiscountScope::Product(p) if overlay.hidden_products.contains(p)));

    // Rates from the reseller's currency: 1 target = (rate_x / rate_target) x.
    let mut fx_rates = std::collections::BTreeMap::new();
    if target.code != catalog.currency.code {
        fx_rates.insert(
            catalog.currency.code.clone(),
            (Decimal::ONE / fx).round_dp(10).normalize(),
        );
    }
    for (code, rate) in &catalog.fx_rates {
        if *code != target.code {
            fx_rates.insert(code.clone(), (*rate / fx).round_dp(10).normalize());
        }
    }

    let mut templates = catalog.templates.clone();
    for t in &mut templates {
        for tier in &mut t.tiers {
            tier.components
                .retain(|c| !component_uses_hidden(c, &overlay.hidden_products));
        }
    }

    Ok(Catalog {
        schema_version: catalog.schema_version,
        id: format!("{}@{}", catalog.id, overlay.id),
        version: catalog.version.clone(),
        name: overlay.brand.name.clone(),
        currency: CurrencySettings {
            code: target.code,
            rounding: target.rounding,
        },
        fx_rates,
        hours_per_month: catalog.hours_per_month,
        sections: catalog.sections.clone(),
        meters: catalog.meters.clone(),
        products,
        regions,
        sla_tiers: catalog.sla_tiers.clone(),
        tax_jurisdictions: overlay
            .tax_jurisdictions
            .clone()
            .unwrap_or_else(|| catalog.tax_jurisdictions.clone()),
        discounts,
        billing_tags: catalog.billing_tags.clone(),
        terms: catalog.terms.clone(),
        templates,
        resellers: Vec::new(),
        brand: Some(overlay.brand.clone()),
    })
}

fn component_uses_hidden(c: &crate::estimate::Component, hidden: &[String]) -> bool {
    use crate::estimate::Component::*;
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
/// overrides): what must not appear in a published catalog.
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
