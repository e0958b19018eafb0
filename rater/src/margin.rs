//! A reseller's margin report for a period: each customer's invoice, line by line, against the wholesale cost the provider's statement bills the reseller for it.
//!
//! The wholesale side is the statement's own figures when it is final (the rate and prices
//! frozen when it was issued), else the statement as it would be priced now. The retail side is
//! each customer's final invoice, else its interim one. The pairing and the arithmetic are the
//! pricing crate's (`pricing::wholesale`); this module only reads the store.

use pricing::wholesale::{customer_margin, MarginReport, Resold};
use pricing::BillingPeriod;

use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::invoices::invoice_for;
use crate::resellers::resold;
use crate::store::Store;

/// The margin report of `reseller` for `period`. Refused naming `reseller` when the catalog has
/// no such reseller, or when it has no account with the provider (nobody bills it, so there is
/// no wholesale cost to report).
pub async fn report<S: Store>(
    store: &S,
    config: &RaterConfig,
    reseller: &str,
    period: BillingPeriod,
) -> Result<MarginReport, RaterError> {
    let bad = |message: String| RaterError::BadRequest {
        field: "reseller",
        message,
    };
    if config.catalog.reseller(reseller).is_none() {
        return Err(bad(format!(
            "reseller `{}` is not in catalog {} version {}",
            pricing::error::shown(reseller),
            config.catalog.id,
            config.catalog.version
        )));
    }
    let billed = config.account_of_reseller(reseller).ok_or_else(|| {
        bad(format!(
            "reseller `{reseller}` has no account with the provider in accounts version {} (`resells`): nothing bills it, so it has no wholesale cost",
            config.accounts.version
        ))
    })?;
    let (statement, sections) = wholesale_of(store, config, billed, period).await?;
    // The customers the statement bills (a final one's may include one the book moved to
    // another reseller since), then the book's customers now; each only when the reseller
    // billed its period (its invoice is at the reseller's prices): a customer moved here since
    // was billed by its old reseller, whose report it is in.
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<&str> = sections
        .iter()
        .map(|r| r.account.as_str())
        .chain(config.customers_of(reseller).map(|c| c.id.as_str()))
        .filter(|id| seen.insert(*id))
        .collect();
    let mut customers = Vec::new();
    for id in ids {
        let Some(c) = config.account(id) else {
            continue;
        };
        let retail = invoice_for(store, config, &c.id, period).await?;
        if crate::config::reseller_of_catalog(&retail.bill.catalog_id) != Some(reseller) {
            continue;
        }
        let cost = sections
            .iter()
            .find(|r| r.account == c.id)
            .cloned()
            .unwrap_or_else(|| Resold {
                account: c.id.clone(),
                name: c.name.clone(),
                fx_rate: rust_decimal::Decimal::ONE,
                lines: Vec::new(),
            });
        if retail.bill.sections.is_empty() && cost.lines.is_empty() {
            continue;
        }
        customers.push(customer_margin(&retail, &cost)?);
    }
    let currency = config.invoice_currency(billed);
    // The rate frozen in the statement; priced now, the catalog's.
    let fx_rate = sections.first().map_or_else(
        || pricing::wholesale::fx_rate(&config.catalog, &currency),
        |r| r.fx_rate,
    );
    Ok(pricing::wholesale::report(
        reseller,
        &period.id(),
        &currency,
        &config.catalog.currency.code,
        fx_rate,
        statement,
        customers,
    )?)
}

/// What the provider bills `billed` (a reseller's own account) for its customers in `period`:
/// the final statement's number and resold sections once issued (the prices frozen then), else
/// the sections priced now from the usage the store holds.
pub(crate) async fn wholesale_of<S: Store>(
    store: &S,
    config: &RaterConfig,
    billed: &pricing::Account,
    period: BillingPeriod,
) -> Result<(Option<String>, Vec<Resold>), RaterError> {
    let period_id = period.id();
    Ok(match store.final_invoice(&billed.id, &period_id).await? {
        Some(inv) => {
            let st = store
                .final_statement(&billed.id, &period_id)
                .await?
                .unwrap_or_default();
            (inv.number, st.resold)
        }
        None => (None, resold(store, config, billed, period).await?),
    })
}
