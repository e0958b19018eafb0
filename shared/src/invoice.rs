//! Accounts (subscriptions, discounts, credit, payments) and the invoice of one account for one
//! billing period, built by the same pipeline as estimates.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bill::{build, usage_groups, Bill, Context, SubscriptionCharge};
use crate::catalog::{Catalog, Discount, DiscountScope, DiscountValue};
use crate::error::PricingError;
use crate::period::{midnight, BillingPeriod, PeriodKind};
use crate::usage::Usage;

/// The accounts file the rater loads: versioned like the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBook {
    pub schema_version: u32,
    pub version: String,
    pub accounts: Vec<Account>,
}

impl AccountBook {
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }
}

/// A billed customer and everything about it that an invoice needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// Postal address lines printed under the name.
    #[serde(default)]
    pub address: Vec<String>,
    /// Invoice currency; the catalog's when absent (converted with the catalog's fixed rates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Region of usage that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_jurisdiction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_tier: Option<String>,
    /// Measured availability of the period, in percent, for SLA credits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_pct: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    #[serde(default)]
    pub discounts: Vec<Discount>,
    /// Prepaid credit available, in the invoice currency.
    #[serde(default)]
    pub prepaid_credit: Decimal,
    /// Balance owed from before this period, in the invoice currency.
    #[serde(default)]
    pub balance_brought_forward: Decimal,
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// The length of the account's billing periods (Abiquo's account period: hour, day, week
    /// or month): its usage is rated into, invoiced for and closed per period of this kind,
    /// each record in the period that holds its start. A month when absent.
    #[serde(default = "month", skip_serializing_if = "is_month")]
    pub billing_period: PeriodKind,
}

fn month() -> PeriodKind {
    PeriodKind::Month
}

fn is_month(kind: &PeriodKind) -> bool {
    *kind == PeriodKind::Month
}

/// A service or package subscription; `changes` switch plans mid-way (seed 004's SMB to Demo).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    pub product: String,
    #[serde(default = "one")]
    pub quantity: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub start: DateTime<Utc>,
    /// Exclusive end; open when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub changes: Vec<PlanChange>,
}

fn one() -> Decimal {
    Decimal::ONE
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanChange {
    pub at: DateTime<Utc>,
    pub product: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub date: DateTime<Utc>,
    pub amount: Decimal,
    #[serde(default)]
    pub reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// Computed on demand, not numbered, not stored as final (StratosLive's interim invoice).
    Interim,
    /// Numbered, immutable.
    Final,
}

/// The invoice of one account for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    pub kind: InvoiceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    pub account: String,
    pub account_name: String,
    #[serde(default)]
    pub address: Vec<String>,
    pub period: BillingPeriod,
    pub period_id: String,
    pub period_end: DateTime<Utc>,
    /// Version of the accounts data that priced it (set by the rater).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_version: Option<String>,
    /// Number of usage records behind the usage lines.
    pub records: u64,
    #[serde(flatten)]
    pub bill: Bill,
    /// Prepaid credit used against `total` (never more than the total, never negative).
    pub credits_applied: Decimal,
    /// `total - credits_applied`.
    pub amount_due: Decimal,
    pub brought_forward: Decimal,
    pub payments: Vec<Payment>,
    pub payments_total: Decimal,
    /// `brought_forward - payments_total + amount_due`.
    pub carried_forward: Decimal,
}

impl Invoice {
    /// [`Bill::check_totals`] plus the account summary's arithmetic.
    pub fn check_totals(&self) -> Result<(), String> {
        self.bill.check_totals()?;
        if self.bill.total - self.credits_applied != self.amount_due {
            return Err("amount due != total - credits applied".into());
        }
        let paid: Decimal = self.payments.iter().map(|p| p.amount).sum();
        if paid != self.payments_total {
            return Err("payments total != sum of payments".into());
        }
        if self.brought_forward - self.payments_total + self.amount_due != self.carried_forward {
            return Err("carried forward != brought forward - payments + amount due".into());
        }
        Ok(())
    }
}

/// The invoice of `account` for `period` from its rated `usage` (other accounts' totals are
/// ignored). Interim: the caller numbers and stores final invoices.
pub fn invoice(
    catalog: &Catalog,
    account: &Account,
    period: BillingPeriod,
    usage: &Usage,
) -> Result<Invoice, PricingError> {
    let (currency, fx) = Context::currency_for(catalog, account.currency.as_deref())?;
    let lookup =
        |what: &'static str, id: &Option<String>, path: &str| -> Result<(), PricingError> {
            match id {
                Some(id) if !known(catalog, what, id) => Err(PricingError::UnknownReference {
                    what,
                    id: id.clone(),
                    path: format!("accounts[{}].{path}", account.id),
                }),
                _ => Ok(()),
            }
        };
    lookup("region", &account.region, "region")?;
    lookup(
        "tax jurisdiction",
        &account.tax_jurisdiction,
        "tax_jurisdiction",
    )?;
    lookup("SLA tier", &account.sla_tier, "sla_tier")?;
    lookup("term", &account.term, "term")?;

    let ctx = Context {
        catalog,
        currency: currency.clone(),
        fx,
        default_region: account.region.clone().unwrap_or_default(),
        sla: account
            .sla_tier
            .as_deref()
            .and_then(|s| catalog.sla_tier(s)),
        availability_pct: account.availability_pct,
        tax: account
            .tax_jurisdiction
            .as_deref()
            .and_then(|t| catalog.tax_jurisdiction(t)),
        discounts: discounts_in_order(catalog, account.term.as_deref(), &account.discounts),
        account: account.id.clone(),
        span: (period.start, period.end()),
    };
    let subs = subscription_charges(account, period)?;
    let groups = usage_groups(catalog, usage, &account.id, &ctx.default_region)?;
    let bill = build(&ctx, groups, &subs)?.bill;

    let records = usage
        .totals
        .iter()
        .filter(|(k, _)| k.account == account.id)
        .map(|(_, t)| t.records)
        .sum();
    let payments: Vec<Payment> = account
        .payments
        .iter()
        .filter(|p| period.contains(p.date))
        .cloned()
        .collect();
    let payments_total = currency.round(payments.iter().map(|p| p.amount).sum());
    let credits_applied = currency.round(
        account
            .prepaid_credit
            .max(Decimal::ZERO)
            .min(bill.total.max(Decimal::ZERO)),
    );
    let amount_due = currency.sum([bill.total, -credits_applied]);
    let brought_forward = currency.round(account.balance_brought_forward);
    let inv = Invoice {
        kind: InvoiceKind::Interim,
        number: None,
        account: account.id.clone(),
        account_name: account.name.clone(),
        address: account.address.clone(),
        period,
        period_id: period.id(),
        period_end: period.end(),
        accounts_version: None,
        records,
        bill,
        credits_applied,
        amount_due,
        brought_forward,
        payments,
        payments_total,
        carried_forward: currency.sum([brought_forward, -payments_total, amount_due]),
    };
    debug_assert_eq!(inv.check_totals(), Ok(()));
    Ok(inv)
}

fn known(catalog: &Catalog, what: &str, id: &str) -> bool {
    match what {
        "region" => catalog.region(id).is_some(),
        "tax jurisdiction" => catalog.tax_jurisdiction(id).is_some(),
        "SLA tier" => catalog.sla_tier(id).is_some(),
        "term" => catalog.term(id).is_some(),
        _ => false,
    }
}

/// Discounts in the order they apply: the term's, the catalog's promotions, then the account's.
pub(crate) fn discounts_in_order(
    catalog: &Catalog,
    term: Option<&str>,
    account_discounts: &[Discount],
) -> Vec<Discount> {
    let mut out = Vec::new();
    if let Some(t) = term.and_then(|t| catalog.term(t)) {
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
    out.extend(catalog.discounts.iter().cloned());
    out.extend(account_discounts.iter().cloned());
    out
}

/// The subscription fees of `period`: one charge per plan held, prorated by whole UTC days (a
/// plan change on a day belongs to the new plan); one-time fees in the period the subscription
/// starts.
fn subscription_charges(
    account: &Account,
    period: BillingPeriod,
) -> Result<Vec<SubscriptionCharge>, PricingError> {
    let mut out = Vec::new();
    let (p_start, p_end) = (period.start, period.end());
    let month_days = Decimal::from(period.days_in_month());
    for sub in &account.subscriptions {
        let mut changes = sub.changes.clone();
        changes.sort_by_key(|c| c.at);
        // Segments [from, to) with the plan held in each.
        let mut segments = Vec::new();
        let mut from = sub.start;
        let mut product = sub.product.clone();
        for c in &changes {
            segments.push((from, c.at, product.clone()));
            from = c.at;
            product = c.product.clone();
        }
        segments.push((from, sub.end.unwrap_or(DateTime::<Utc>::MAX_UTC), product));
        for (i, (from, to, product)) in segments.into_iter().enumerate() {
            // Day granularity: a segment runs from the midnight of its first day to the
            // midnight of the day it ends on.
            let from = floor_day(from);
            let to = if to == DateTime::<Utc>::MAX_UTC {
                to
            } else {
                floor_day(to)
            };
            let s = from.max(p_start);
            let e = to.min(p_end);
            if e <= s {
                continue;
            }
            let days = Decimal::from((e - s).num_seconds())
                / Decimal::from(Duration::days(1).num_seconds());
            out.push(SubscriptionCharge {
                subscription: if i == 0 {
                    sub.id.clone()
                } else {
                    format!("{}#{}", sub.id, i)
                },
                project: sub.project.clone().unwrap_or_default(),
                product,
                quantity: sub.quantity,
                days,
                month_days,
                one_time: i == 0 && period.contains(sub.start),
                day: s.date_naive(),
            });
        }
    }
    Ok(out)
}

fn floor_day(t: DateTime<Utc>) -> DateTime<Utc> {
    midnight(t.date_naive())
}
