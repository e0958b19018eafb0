//! Accounts (subscriptions, discounts, credit, payments) and the invoice of one account for one
//! billing period, built by the same pipeline as estimates.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bill::{build, usage_groups, Bill, Context, SubscriptionCharge, SummaryRow};
use crate::catalog::{Catalog, Discount};
use crate::error::{CatalogError, CatalogErrors, CatalogRule, PricingError, TotalsError};
use crate::exact::{self, Overflow};
use crate::money::Currency;
use crate::path::SettingsOwner;
use crate::period::{midnight, BillingPeriod, PeriodKind};
use crate::price::subscription_quantity_max;
use crate::settings::{Settings, SettingsInput};
use crate::usage::Usage;
use crate::validate::discount_errors;

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

    /// Checks what pricing relies on: subscription quantities up to
    /// [`subscription_quantity_max`] (so that a subscription line stays inside what one line
    /// may cost), discounts as the catalog's are checked, availability a percentage, and
    /// balances, credits and payments below [`balance_max`]. Every problem is returned, at its
    /// JSON path (`$.accounts[2].subscriptions[0].quantity`).
    ///
    /// # Errors
    /// [`CatalogErrors`] listing each problem.
    pub fn validate(&self, catalog: &Catalog) -> Result<(), CatalogErrors> {
        let mut errors = Vec::new();
        let mut discounts = Vec::new();
        let mut fail = |path: String, message: String| {
            errors.push(CatalogError {
                path,
                rule: CatalogRule::InvalidValue,
                message,
            })
        };
        for (i, a) in self.accounts.iter().enumerate() {
            let ap = format!("$.accounts[{i}]");
            for (j, sub) in a.subscriptions.iter().enumerate() {
                let q = sub.quantity;
                if q.is_sign_negative() && !q.is_zero() || q > subscription_quantity_max() {
                    fail(
                        format!("{ap}.subscriptions[{j}].quantity"),
                        format!(
                            "quantity {q} must be from 0 to {}",
                            subscription_quantity_max()
                        ),
                    );
                }
            }
            if let Some(av) = a.availability_pct {
                if av.is_sign_negative() && !av.is_zero() || av > Decimal::ONE_HUNDRED {
                    fail(
                        format!("{ap}.availability_pct"),
                        format!("{av} is not a percentage"),
                    );
                }
            }
            let amounts = [
                ("prepaid_credit".to_string(), a.prepaid_credit),
                (
                    "balance_brought_forward".to_string(),
                    a.balance_brought_forward,
                ),
            ]
            .into_iter()
            .chain(
                a.payments
                    .iter()
                    .enumerate()
                    .map(|(k, p)| (format!("payments[{k}].amount"), p.amount)),
            );
            for (field, v) in amounts {
                if v.abs() > balance_max() {
                    fail(
                        format!("{ap}.{field}"),
                        format!(
                            "{v} is more than the largest amount allowed ({})",
                            balance_max()
                        ),
                    );
                }
            }
            discounts.extend(discount_errors(
                catalog,
                &format!("{ap}.discounts"),
                &a.discounts,
            ));
        }
        errors.extend(discounts);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CatalogErrors(errors))
        }
    }
}

/// The largest balance, credit or payment an account may show, in its currency: 10^15, a
/// thousand times the largest company's yearly cloud bill. Sums of them stay far inside a
/// decimal.
pub fn balance_max() -> Decimal {
    Decimal::from(1_000_000_000_000_000i64)
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
    ///
    /// # Errors
    /// The first total that is not the sum of its parts.
    pub fn check_totals(&self) -> Result<(), TotalsError> {
        self.bill.check_totals()?;
        if self.bill.total - self.credits_applied != self.amount_due {
            return Err(TotalsError::AmountDue);
        }
        let paid: Decimal = self.payments.iter().map(|p| p.amount).sum();
        if paid != self.payments_total {
            return Err(TotalsError::PaymentsTotal);
        }
        if self.brought_forward - self.payments_total + self.amount_due != self.carried_forward {
            return Err(TotalsError::CarriedForward);
        }
        Ok(())
    }

    /// [`Bill::summary_rows`], then the account's: credit applied, amount due, and the balance
    /// statement (brought forward, each payment, all payments, this period's amount due,
    /// carried forward).
    pub fn summary_rows(&self) -> Vec<SummaryRow<'_>> {
        let mut rows = self.bill.summary_rows();
        rows.push(SummaryRow::CreditsApplied(-self.credits_applied));
        rows.push(SummaryRow::AmountDue(self.amount_due));
        rows.push(SummaryRow::BroughtForward(self.brought_forward));
        rows.extend(self.payments.iter().map(|p| SummaryRow::Payment {
            date: p.date,
            reference: &p.reference,
            amount: -p.amount,
        }));
        rows.push(SummaryRow::Payments(-self.payments_total));
        rows.push(SummaryRow::DueThisPeriod(self.amount_due));
        rows.push(SummaryRow::CarriedForward(self.carried_forward));
        rows
    }
}

impl Account {
    /// The account's settings, as the pricing pipeline resolves them.
    pub fn settings_input(&self) -> SettingsInput<'_> {
        SettingsInput {
            currency: self.currency.as_deref(),
            region: self.region.as_deref(),
            tax_jurisdiction: self.tax_jurisdiction.as_deref(),
            sla_tier: self.sla_tier.as_deref(),
            term: self.term.as_deref(),
        }
    }
}

/// The invoice of `account` for `period` from its rated `usage` (other accounts' totals are
/// ignored). Interim: the caller numbers and stores final invoices.
///
/// # Errors
/// A setting of the account the catalog does not offer (its path names the account), usage or
/// a subscription the catalog cannot price, or more than [`crate::INVOICE_LINES_MAX`] lines.
pub fn invoice(
    catalog: &Catalog,
    account: &Account,
    period: BillingPeriod,
    usage: &Usage,
) -> Result<Invoice, PricingError> {
    let settings = Settings::resolve(
        catalog,
        &account.settings_input(),
        &SettingsOwner::Account(account.id.clone()),
    )?;
    let default_region = settings.default_region();
    let ctx = Context {
        discounts: settings.discounts_in_order(&account.discounts),
        settings,
        availability_pct: account.availability_pct,
        account: account.id.clone(),
        span: (period.start, period.end()),
    };
    let subs = subscription_charges(account, period);
    let groups = usage_groups(catalog, usage, &account.id, default_region)?;
    let bill = build(&ctx, groups, &subs)?.bill;
    let inv = account_summary(&ctx.settings.currency, account, period, usage, bill)
        .map_err(|e| PricingError::overflow(e, format!("account {}", account.id)))?;
    debug_assert_eq!(inv.check_totals(), Ok(()));
    Ok(inv)
}

/// The invoice around a priced bill: the account, its records, credit, payments and balance.
fn account_summary(
    currency: &Currency,
    account: &Account,
    period: BillingPeriod,
    usage: &Usage,
    bill: Bill,
) -> Result<Invoice, Overflow> {
    let records = usage
        .totals
        .iter()
        .filter(|(k, _)| k.account == account.id)
        .fold(0u64, |n, (_, t)| n.saturating_add(t.records));
    let payments: Vec<Payment> = account
        .payments
        .iter()
        .filter(|p| period.contains(p.date))
        .cloned()
        .collect();
    let payments_total = currency.round(exact::sum(payments.iter().map(|p| p.amount), "payments")?);
    let credits_applied = currency.round(
        account
            .prepaid_credit
            .max(Decimal::ZERO)
            .min(bill.total.max(Decimal::ZERO)),
    );
    let mut amount_due = exact::sub(bill.total, credits_applied, "amount due")?;
    amount_due.rescale(currency.minor_units);
    let brought_forward = currency.round(account.balance_brought_forward);
    let mut carried_forward = exact::add(
        exact::sub(brought_forward, payments_total, "carried forward")?,
        amount_due,
        "carried forward",
    )?;
    carried_forward.rescale(currency.minor_units);
    Ok(Invoice {
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
        carried_forward,
    })
}

/// The subscription fees of `period`: one charge per plan held, prorated by whole UTC days (a
/// plan change on a day belongs to the new plan); one-time fees in the period the subscription
/// starts.
fn subscription_charges(account: &Account, period: BillingPeriod) -> Vec<SubscriptionCharge> {
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
    out
}

fn floor_day(t: DateTime<Utc>) -> DateTime<Utc> {
    midnight(t.date_naive())
}
