//! Usage and cost reports read from the store: the invoices of every account the caller may read, spread over their usage by `pricing::report`, for any range of days.
//!
//! Each account's periods that meet the range are read whole: its final invoice when issued
//! (the amounts it billed), else the interim one priced now, and the period's usage. A reseller's
//! customer also carries its wholesale cost (its lines on the provider's statement to the
//! reseller), so the report shows its margin. Tenancy is the invoices': an operator reads every
//! account, a reseller its customers and its own account, nobody else anything; a period of its
//! customer that another reseller billed (the book moved the customer since) is left out.

use std::collections::HashMap;

use pricing::report::{Dimension, Report, ReportBuilder, ReportError, ReportQuery};
use pricing::wholesale::Resold;
use pricing::{Account, BillingPeriod, PricingError};

use crate::auth::{Action, Caller};
use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::invoices::invoice_and_usage;
use crate::margin::wholesale_of;
use crate::store::Store;

/// A report parameter refused, as the request's error (400, naming the parameter).
pub fn bad_query(e: ReportError) -> RaterError {
    RaterError::BadRequest {
        field: e.field,
        message: e.message,
    }
}

fn from_pricing(e: PricingError) -> RaterError {
    match e {
        PricingError::Report(r) => bad_query(r),
        other => RaterError::Pricing(other),
    }
}

/// The report of `query` over the accounts `caller` may read. An account named by the query's
/// account filter that the caller may not read (or that the book does not hold) is refused
/// (403) like its invoice, so that a reseller learns nothing of other tenants' accounts.
///
/// # Errors
/// [`RaterError::Forbidden`] as above, [`RaterError::BadRequest`] for a report past its row
/// bound, store and pricing errors.
pub async fn report<S: Store>(
    store: &S,
    config: &RaterConfig,
    caller: &Caller,
    query: ReportQuery,
) -> Result<Report, RaterError> {
    // A caller who may read no tenant at all is told so, not given an empty report.
    caller.may_read_a_tenant(Action::ReadReport)?;
    for f in query
        .filters
        .iter()
        .filter(|f| f.dimension == Dimension::Account)
    {
        for id in &f.values {
            caller.may_read_account(Action::ReadReport, config.tenant_of(id))?;
            config.known_account(id)?;
        }
    }
    let accounts: Vec<&Account> = config
        .accounts
        .accounts
        .iter()
        .filter(|a| {
            caller
                .may_read_account(Action::ReadReport, config.tenant_of(&a.id))
                .is_ok()
                && query.wants_account(a)
                && !own_statement(caller, a, &query)
        })
        .collect();
    let mut builder = ReportBuilder::new(query);
    // The provider's statement to each reseller, per period: read once for all its customers.
    let mut statements: HashMap<(String, String), Vec<Resold>> = HashMap::new();
    for acc in accounts {
        for period in periods_of(acc, builder.query())? {
            let period_id = period.id();
            let (inv, usage) = invoice_and_usage(store, config, &acc.id, period).await?;
            // A period another reseller billed (the book moved the customer since) is in that
            // reseller's tenant, not this one's, and spreads under it: its catalog, and its
            // statement's wholesale cost.
            if let Some(r) = caller.reseller() {
                if config.document_tenant(&acc.id, &inv.bill.catalog_id) != Some(r) {
                    continue;
                }
            }
            let (billed, _) =
                crate::notes::account_as_billed(store, config, acc, &inv, &[]).await?;
            let acc = billed.as_ref();
            let wholesale = match acc
                .reseller
                .as_deref()
                .and_then(|r| config.account_of_reseller(r))
            {
                Some(billed) => {
                    let key = (billed.id.clone(), period_id.clone());
                    if !statements.contains_key(&key) {
                        let (_, sections) = wholesale_of(store, config, billed, period).await?;
                        statements.insert(key.clone(), sections);
                    }
                    Some(
                        statements[&key]
                            .iter()
                            .find(|r| r.account == acc.id)
                            .cloned()
                            .unwrap_or_else(|| Resold {
                                account: acc.id.clone(),
                                name: acc.name.clone(),
                                fx_rate: rust_decimal::Decimal::ONE,
                                lines: Vec::new(),
                            }),
                    )
                }
                None => None,
            };
            let catalog = config.catalog_for(acc);
            let mut failed = None;
            pricing::report::spread(catalog, acc, &inv, &usage, wholesale.as_ref(), |p| {
                if failed.is_none() {
                    failed = builder.add(&p).err();
                }
            })
            .map_err(from_pricing)?;
            if let Some(e) = failed {
                return Err(from_pricing(e));
            }
            builder.invoice();
        }
    }
    builder.finish().map_err(from_pricing)
}

/// Whether `a` is the caller's own account with the provider, as a reseller: what the provider
/// bills it is its cost, already shown as its customers' wholesale cost, so its report leaves
/// it out unless it names it (else revenue and cost would add up in one total).
fn own_statement(caller: &Caller, a: &Account, q: &ReportQuery) -> bool {
    let named = q
        .filters
        .iter()
        .any(|f| f.dimension == Dimension::Account && f.values.contains(&a.id));
    matches!(&caller.role, Some(crate::auth::Role::Reseller(r)) if a.resells.as_deref() == Some(r.as_str()))
        && !named
}

/// The account's billing periods that hold a day of the query's range, in order; refused past
/// [`pricing::report::REPORT_PERIODS_MAX`] (an hourly account over months).
fn periods_of(acc: &Account, q: &ReportQuery) -> Result<Vec<BillingPeriod>, RaterError> {
    let start = pricing::period::midnight(q.from);
    let end = pricing::period::midnight(q.to) + chrono::Duration::days(1);
    let mut out = Vec::new();
    let mut p = BillingPeriod::containing(acc.billing_period, start);
    while p.start < end {
        if out.len() >= pricing::report::REPORT_PERIODS_MAX {
            return Err(RaterError::BadRequest {
                field: "to",
                message: format!(
                    "account `{}` is billed by the {}: {} to {} is more than {} of its periods; report a shorter range",
                    acc.id,
                    format!("{:?}", acc.billing_period).to_lowercase(),
                    q.from,
                    q.to,
                    pricing::report::REPORT_PERIODS_MAX
                ),
            });
        }
        out.push(p);
        p = p.next();
    }
    Ok(out)
}
