//! The provider's statements to resellers, read from the store: each customer of a reseller at wholesale for a period, and the rule that a statement waits for its customers' final invoices.
//!
//! Used by invoicing and finalizing (step 4), corrections (step 5), the close and the margin
//! report; the pricing itself is `pricing::wholesale`.

use pricing::{Account, BillingPeriod};

use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::store::Store;

/// Refuses a reseller's statement (`CustomerOpen`) while one of the customers it bills has no
/// final invoice for the period: until then the customer's usage may still change, and the
/// statement would bill the reseller for other usage than its customer is billed for.
pub(crate) async fn customers_final<S: Store>(
    store: &S,
    acc: &Account,
    period: BillingPeriod,
    resold: &[pricing::wholesale::Resold],
) -> Result<(), RaterError> {
    let period_id = period.id();
    for r in resold {
        if store.final_invoice(&r.account, &period_id).await?.is_none() {
            return Err(RaterError::CustomerOpen {
                account: acc.id.clone(),
                period: period_id,
                customer: r.account.clone(),
            });
        }
    }
    Ok(())
}

/// On a reseller's own account (the provider's statement to the reseller): each of the
/// reseller's customers with something to bill in `period`, at wholesale prices, from the
/// usage the store holds now. Nothing on any other account.
pub(crate) async fn resold<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
) -> Result<Vec<pricing::wholesale::Resold>, RaterError> {
    let Some(reseller) = config.billed_reseller(&acc.id) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for c in config.customers_of(reseller) {
        let usage = store.period_usage(&c.id, &period.id()).await?.usage;
        // Monthly allowances once a month, as on the customer's own invoices (a customer
        // billed by the day or week): the month's earlier usage, read only for a customer with
        // usage in this period (its fees alone need none), one read per earlier period.
        let before = match usage.totals.is_empty() {
            true => None,
            false => crate::store::month_before(store, &c.id, period).await?,
        };
        let r =
            pricing::wholesale::resold(&config.catalog, c, acc, period, &usage, before.as_ref())?;
        if !r.lines.is_empty() {
            out.push(r);
        }
    }
    Ok(out)
}
