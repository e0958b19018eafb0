//! A customer's settings resolved against a catalog (currency and exchange rate, region, tax jurisdiction, SLA tier, term), once for every kind of bill.
//!
//! Quotes, accounts and the storefront's config all name the same five settings by id. They are
//! resolved and checked here and nowhere else, so an estimate, an invoice and the storefront's
//! form agree on what a catalog offers.

use rust_decimal::Decimal;

use crate::catalog::{
    Catalog, Discount, DiscountScope, DiscountValue, Region, SlaTier, TaxJurisdiction, Term,
};
use crate::error::{MoneyError, PricingError};
use crate::money::Currency;
use crate::path::{Setting, SettingsOwner};

/// The settings that change prices, by id as a quote, an account or the storefront names them;
/// `None` is the catalog's default (its own currency, no region, tax, SLA or term).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsInput<'a> {
    pub currency: Option<&'a str>,
    pub region: Option<&'a str>,
    pub tax_jurisdiction: Option<&'a str>,
    pub sla_tier: Option<&'a str>,
    pub term: Option<&'a str>,
}

impl<'a> SettingsInput<'a> {
    /// The id given for `setting`.
    pub fn get(&self, setting: Setting) -> Option<&'a str> {
        match setting {
            Setting::Currency => self.currency,
            Setting::Region => self.region,
            Setting::TaxJurisdiction => self.tax_jurisdiction,
            Setting::SlaTier => self.sla_tier,
            Setting::Term => self.term,
        }
    }
}

/// Settings resolved against a catalog: what the pricing pipeline prices with.
#[derive(Debug, Clone)]
pub struct Settings<'c> {
    pub catalog: &'c Catalog,
    /// The bill's currency with the catalog's rounding mode.
    pub currency: Currency,
    /// Units of the bill currency per unit of catalog currency.
    pub fx: Decimal,
    /// Where usage that names no region is billed.
    pub region: Option<&'c Region>,
    pub tax: Option<&'c TaxJurisdiction>,
    pub sla: Option<&'c SlaTier>,
    pub term: Option<&'c Term>,
}

impl<'c> Settings<'c> {
    /// Resolves every setting of `input`: the currency first, then the others.
    ///
    /// # Errors
    /// The first setting the catalog does not offer: a [`MoneyError`] for the currency (unknown
    /// code, no exchange rate), else [`PricingError::UnknownSetting`] naming `owner`'s field.
    pub fn resolve(
        catalog: &'c Catalog,
        input: &SettingsInput<'_>,
        owner: &SettingsOwner,
    ) -> Result<Settings<'c>, PricingError> {
        let (currency, fx) = exchange(catalog, input.currency)?;
        for setting in check_order(owner) {
            match input.get(setting) {
                Some(id) if !offered(catalog, setting, id) => {
                    return Err(PricingError::UnknownSetting {
                        setting,
                        id: id.to_string(),
                        owner: owner.clone(),
                    })
                }
                _ => {}
            }
        }
        let region = input.region.and_then(|id| catalog.region(id));
        let tax = input
            .tax_jurisdiction
            .and_then(|id| catalog.tax_jurisdiction(id));
        let sla = input.sla_tier.and_then(|id| catalog.sla_tier(id));
        let term = input.term.and_then(|id| catalog.term(id));
        Ok(Settings {
            catalog,
            currency,
            fx,
            region,
            tax,
            sla,
            term,
        })
    }

    /// The settings of `input` that `catalog` does not offer, in the order of [`Setting::ALL`]:
    /// every one, where [`Settings::resolve`] stops at the first (the storefront marks each
    /// beside its field).
    pub fn not_offered(catalog: &Catalog, input: &SettingsInput<'_>) -> Vec<Setting> {
        Setting::ALL
            .into_iter()
            .filter(|s| input.get(*s).is_some_and(|id| !offered(catalog, *s, id)))
            .collect()
    }

    /// The id of the region usage that names none is billed in (empty: none).
    pub fn default_region(&self) -> &'c str {
        self.region.map_or("", |r| r.id.as_str())
    }

    /// Discounts in the order they apply: the term's, the catalog's promotions, then
    /// `account_discounts`.
    pub fn discounts_in_order(&self, account_discounts: &[Discount]) -> Vec<Discount> {
        let mut out = Vec::new();
        if let Some(t) = self.term {
            if !t.discount_pct.is_zero() {
                out.push(Discount {
                    id: format!("term:{}", t.id),
                    name: format!("{} term discount ({}%)", t.name, t.discount_pct.normalize()),
                    scope: DiscountScope::All,
                    value: DiscountValue::Percent {
                        pct: t.discount_pct,
                    },
                    valid_from: None,
                    valid_to: None,
                });
            }
        }
        out.extend(self.catalog.discounts.iter().cloned());
        out.extend(account_discounts.iter().cloned());
        out
    }
}

/// The order `owner`'s settings other than the currency are checked in, the first unknown one
/// being the error. Quotes and accounts have always reported in these orders (they differ in
/// whether the SLA tier or the tax jurisdiction comes first); kept so that no error changes.
fn check_order(owner: &SettingsOwner) -> [Setting; 4] {
    match owner {
        SettingsOwner::Quote => [
            Setting::Region,
            Setting::SlaTier,
            Setting::TaxJurisdiction,
            Setting::Term,
        ],
        SettingsOwner::Account(_) => [
            Setting::Region,
            Setting::TaxJurisdiction,
            Setting::SlaTier,
            Setting::Term,
        ],
    }
}

/// Whether the catalog offers `id` for `setting` (a currency: one it has a rate for).
fn offered(catalog: &Catalog, setting: Setting, id: &str) -> bool {
    match setting {
        Setting::Region => catalog.region(id).is_some(),
        Setting::TaxJurisdiction => catalog.tax_jurisdiction(id).is_some(),
        Setting::SlaTier => catalog.sla_tier(id).is_some(),
        Setting::Term => catalog.term(id).is_some(),
        Setting::Currency => exchange(catalog, Some(id)).is_ok(),
    }
}

/// The currency and exchange rate for a bill in `code` (the catalog's when `None`): units of
/// `code` per unit of the catalog's currency.
///
/// # Errors
/// An unknown currency code, or one the catalog has no fixed rate for.
pub fn exchange(catalog: &Catalog, code: Option<&str>) -> Result<(Currency, Decimal), MoneyError> {
    let base = &catalog.currency.code;
    let code = code.unwrap_or(base);
    let currency = Currency::new(code, catalog.currency.rounding)?;
    if code == base {
        return Ok((currency, Decimal::ONE));
    }
    let rate = catalog
        .fx_rates
        .get(code)
        .copied()
        .ok_or_else(|| MoneyError::NoExchangeRate {
            from: base.clone(),
            to: code.to_string(),
        })?;
    Ok((currency, rate))
}
