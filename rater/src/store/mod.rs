//! Storage: the trait the protocol is written against ([`api`]) and its two implementations with the same semantics, DynamoDB and an embedded redb file.
//!
//! Every method is one atomic step of the protocol described in the crate docs; both
//! implementations give the same answers to the same calls, and the handler tests run against
//! the embedded one while the integration tests run the same scenarios against DynamoDB Local.

pub mod api;
pub mod dynamo;
pub mod embedded;
#[cfg(feature = "testing")]
pub mod fault;

pub use api::*;
pub use dynamo::DynamoStore;
pub use embedded::EmbeddedStore;

use pricing::BillingPeriod;

/// The payments recorded for `account` that its own invoices take: all but those to a former
/// issuer (`RecordedPayment::payee`, settling `Balance::owed_elsewhere`), which no invoice
/// of the account's current issuer may count.
pub(crate) async fn chain_payments<S: Store>(
    store: &S,
    account: &str,
) -> Result<Vec<crate::model::RecordedPayment>, crate::error::StoreError> {
    let mut payments = store.payments(account).await?;
    payments.retain(crate::model::RecordedPayment::on_chain);
    Ok(payments)
}

/// The account's usage in the earlier periods of `period`'s calendar month, for a period
/// shorter than a month (`pricing::Statement::month_before`: monthly allowances and minimums
/// are granted once a month), as the store holds it now; `None` for a month. One read per
/// earlier period (30 at most for a day, 743 for an hour). Every invoice and note of such a
/// period is priced with it, so that a month's final invoices and notes add up to the month's
/// price of its usage as it stands.
pub(crate) async fn month_before<S: Store>(
    store: &S,
    account: &str,
    period: BillingPeriod,
) -> Result<Option<pricing::Usage>, crate::error::RaterError> {
    month_before_cached(store, account, period, None).await
}

/// Each period's usage (by period id) as one run of corrections read it: correcting a month's
/// later periods prices each after the month's earlier usage, and reading every earlier period
/// again for each (743 hours) would be quadratic. A correction priced from usage that moved
/// since is corrected again by the marker the move set.
pub(crate) type UsageCache = std::sync::Mutex<std::collections::HashMap<String, pricing::Usage>>;

/// [`month_before`], reading each period at most once into `cache` when given.
pub(crate) async fn month_before_cached<S: Store>(
    store: &S,
    account: &str,
    period: BillingPeriod,
    cache: Option<&UsageCache>,
) -> Result<Option<pricing::Usage>, crate::error::RaterError> {
    use pricing::PeriodKind;
    if period.kind == PeriodKind::Month {
        return Ok(None);
    }
    let month = BillingPeriod::containing(PeriodKind::Month, period.start);
    let mut p = BillingPeriod::containing(period.kind, month.start);
    if p.start < month.start {
        // A week begun in the month before belongs to that month's pool.
        p = p.next();
    }
    let mut usage = pricing::Usage::default();
    let overflow = |e| pricing::PricingError::overflow(e, format!("account {account}"));
    while p.start < period.start {
        let id = p.id();
        let lock = |c: &UsageCache| {
            let m = c.lock().unwrap_or_else(|e| e.into_inner());
            m.get(&id).map(|u| usage.merge(u).map_err(overflow))
        };
        match cache.and_then(lock) {
            Some(merged) => merged?,
            None => {
                let earlier = store.period_usage(account, &id).await?.usage;
                usage.merge(&earlier).map_err(overflow)?;
                if let Some(c) = cache {
                    c.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, earlier);
                }
            }
        }
        p = p.next();
    }
    Ok(Some(usage))
}
