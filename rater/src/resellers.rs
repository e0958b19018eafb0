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
    for c in invoiced_by(store, config, acc, period, reseller).await? {
        out.extend(billed_here(store, config, c, acc, period, reseller).await?);
    }
    Ok(out)
}

/// The customers `reseller` (whose own account is `acc`) bills at wholesale for `period`: its
/// customers in the book, in the book's order, then those whose final invoice of the period it
/// issued and whom the book has moved to another issuer since (recorded by that invoice,
/// `Store::billed_customers`). A customer gone from the book altogether cannot be priced and is
/// left out, as [`resold_closed`] leaves it.
async fn invoiced_by<'a, S: Store>(
    store: &S,
    config: &'a RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    reseller: &'a str,
) -> Result<Vec<&'a Account>, RaterError> {
    let mut out: Vec<&Account> = config.customers_of(reseller).collect();
    for id in store.billed_customers(&acc.id, &period.id()).await? {
        if out.iter().all(|c| c.id != id) {
            out.extend(config.account(&id));
        }
    }
    Ok(out)
}

/// Customer `c`'s section of `reseller`'s statement ([`section`]), unless its period was
/// invoiced by another reseller (the book moved it here since): that reseller's to pay for,
/// which its statement finds from its invoice ([`invoiced_by`]). A customer moved away from
/// `reseller` after its invoice of the period is still billed here.
async fn billed_here<S: Store>(
    store: &S,
    config: &RaterConfig,
    c: &Account,
    acc: &Account,
    period: BillingPeriod,
    reseller: &str,
) -> Result<Option<pricing::wholesale::Resold>, RaterError> {
    Ok(section(store, config, c, acc, period)
        .await?
        .filter(|(_, closed)| {
            closed
                .as_deref()
                .is_none_or(|n| crate::model::issued_by(n, reseller))
        })
        .map(|(r, _)| r))
}

/// On a reseller's own account, for a correction of its closed statement of `period` (whose
/// customer sections were `frozen`): each customer that statement bills at wholesale, from the
/// usage the store holds now. Those it billed, whoever bills them now (a customer the book
/// moved to another reseller since still owes this one its late usage into the period, and a
/// corrected catalog re-prices its section here, never drops it), then the reseller's
/// customers now that it did not bill, unless their own final invoice of the period was
/// issued at another's prices (the book moved them here since: their old reseller's
/// statement bills them). A customer gone from the book is not priced (a late-usage
/// correction keeps its section as issued).
pub(crate) async fn resold_closed<S: Store>(
    store: &S,
    config: &RaterConfig,
    acc: &Account,
    period: BillingPeriod,
    frozen: &[pricing::wholesale::Resold],
) -> Result<Vec<pricing::wholesale::Resold>, RaterError> {
    let Some(reseller) = config.billed_reseller(&acc.id) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in frozen {
        if !seen.insert(r.account.as_str()) {
            continue;
        }
        if let Some(c) = config.account(&r.account) {
            out.extend(
                section(store, config, c, acc, period)
                    .await?
                    .map(|(r, _)| r),
            );
        }
    }
    for c in invoiced_by(store, config, acc, period, reseller).await? {
        if seen.contains(c.id.as_str()) {
            continue;
        }
        out.extend(billed_here(store, config, c, acc, period, reseller).await?);
    }
    Ok(out)
}

/// Customer `c`'s section of reseller account `acc`'s statement of `period`, at wholesale,
/// from the usage the store holds now, with the number of the customer's final invoice of the
/// period once issued (its series names who issued it); `None` when it bills nothing.
async fn section<S: Store>(
    store: &S,
    config: &RaterConfig,
    c: &Account,
    acc: &Account,
    period: BillingPeriod,
) -> Result<Option<(pricing::wholesale::Resold, Option<String>)>, RaterError> {
    let read = store.period_usage(&c.id, &period.id()).await?;
    let usage = read.usage;
    // Monthly allowances once a month, as on the customer's own invoices (a customer billed by
    // the day or week): the month's earlier usage, read only for a customer with usage in
    // this period (its fees alone need none), one read per earlier period.
    let before = match usage.totals.is_empty() {
        true => None,
        false => crate::store::month_before(store, &c.id, period).await?,
    };
    let r = pricing::wholesale::resold(&config.catalog, c, acc, period, &usage, before.as_ref())?;
    Ok((!r.lines.is_empty()).then_some((r, read.closed)))
}
