//! Accounts (subscriptions, discounts, credit, payments) and the invoice of one account for one
//! billing period, built by the same pipeline as estimates.
//!
//! What an invoice carries from outside its usage (the balance brought forward, the prepaid
//! credit available, the period's payments, its issue date, an interim instant, adjustments of
//! earlier periods) is its [`Statement`]: [`invoice`] reads it from the accounts book,
//! [`invoice_with`] takes it from the caller (the rater's store).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::bill::{
    build, checked_sum, usage_groups, Bill, Context, Groups, Line, LineKey, Section,
    SubscriptionCharge, SummaryRow, ADJUSTMENTS_SECTION,
};
use crate::catalog::{Catalog, Discount, LateUsagePolicy};
use crate::correction::{Note, NoteReason};
use crate::error::{
    CatalogError, CatalogErrors, CatalogRule, PricingError, StatementRule, TotalsError,
};
use crate::exact::{self, Overflow};
use crate::money::Currency;
use crate::path::SettingsOwner;
use crate::period::{midnight, BillingPeriod, PeriodKind};
use crate::price::subscription_quantity_max;
use crate::settings::{Settings, SettingsInput};
use crate::usage::Usage;
use crate::validate::{contract_price_errors, discount_errors};

/// The accounts file the rater loads: versioned like the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountBook {
    pub schema_version: u32,
    pub version: String,
    pub accounts: Vec<Account>,
    /// Who issues invoices, as their documents name them: the provider (by the rater's issuer
    /// id) and each reseller (by its id). What a PDF invoice's header and its embedded
    /// e-invoice (EN 16931: seller name, address, country, VAT id) need. Not written when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<Issuer>,
}

/// An issuer of invoices: the provider or a reseller, as its documents name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    /// The rater's issuer id (the provider's) or a reseller's id.
    pub id: String,
    /// Legal name.
    pub name: String,
    /// Street lines (at most three on an e-invoice).
    #[serde(default)]
    pub address: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 country code (`GB`, `DE`).
    pub country: String,
    /// VAT identifier with its country prefix (`GB123456789`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The issuer's logo as SVG markup, drawn on its documents' letterhead (the rater checks
    /// it can draw it when the accounts file is loaded: paths in flat colours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_svg: Option<String>,
}

impl AccountBook {
    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// The issuer with this id (the provider's issuer id or a reseller's id).
    pub fn issuer(&self, id: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.id == id)
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
        for (i, a) in self.accounts.iter().enumerate() {
            let ap = format!("$.accounts[{i}]");
            errors.extend(
                value_errors(a, &ap)
                    .into_iter()
                    .map(|(path, message)| CatalogError {
                        path,
                        rule: CatalogRule::InvalidValue,
                        message,
                    }),
            );
            discounts.extend(discount_errors(
                catalog,
                &format!("{ap}.discounts"),
                &a.discounts,
            ));
            discounts.extend(contract_price_errors(
                catalog,
                &format!("{ap}.prices"),
                &a.prices,
            ));
            discounts.extend(crate::validate::cost_code_errors(
                catalog,
                &format!("{ap}.cost_codes"),
                &a.cost_codes,
            ));
            if a.reseller.is_some() && !a.prices.is_empty() {
                errors.push(CatalogError {
                    path: format!("{ap}.prices"),
                    rule: CatalogRule::InvalidValue,
                    message: "a reseller's customer is priced by its reseller's catalog: contract prices are for direct customers".into(),
                });
            }
        }
        errors.extend(discounts);
        errors.extend(self.party_errors());
        errors.extend(self.coupon_errors(catalog));
        errors.extend(self.reseller_errors(catalog));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(CatalogErrors(errors))
        }
    }
}

impl AccountBook {
    /// What documents rely on: country codes of two capital letters (ISO 3166-1 alpha-2, as an
    /// e-invoice writes them), issuers with unique ids and a name.
    fn party_errors(&self) -> Vec<CatalogError> {
        let mut errors = Vec::new();
        let country_ok = |c: &str| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase());
        let bad_country = |path: String, c: &str| CatalogError {
            path,
            rule: CatalogRule::InvalidValue,
            message: format!(
                "`{}` is not an ISO 3166-1 alpha-2 country code (GB, DE)",
                crate::error::shown(c)
            ),
        };
        for (i, a) in self.accounts.iter().enumerate() {
            if let Some(c) = a.country.as_deref().filter(|c| !country_ok(c)) {
                errors.push(bad_country(format!("$.accounts[{i}].country"), c));
            }
        }
        for (i, p) in self.issuers.iter().enumerate() {
            if !country_ok(&p.country) {
                errors.push(bad_country(format!("$.issuers[{i}].country"), &p.country));
            }
            if p.name.trim().is_empty() {
                errors.push(CatalogError {
                    path: format!("$.issuers[{i}].name"),
                    rule: CatalogRule::InvalidValue,
                    message: "an issuer's documents name it: the name is empty".into(),
                });
            }
            if self.issuers[..i].iter().any(|q| q.id == p.id) {
                errors.push(CatalogError {
                    path: format!("$.issuers[{i}].id"),
                    rule: CatalogRule::DuplicateId,
                    message: format!("issuer `{}` is described twice", crate::error::shown(&p.id)),
                });
            }
        }
        errors
    }

    /// What coupons rely on: each redeemed code is the catalog's, redeemed in its window, once
    /// per account, by a direct customer (a reseller's published catalog has no coupons), and
    /// by no more accounts than the coupon allows. Redemptions count in the order they were
    /// made (then in the book's order): the first one past the limit is the error.
    fn coupon_errors(&self, catalog: &Catalog) -> Vec<CatalogError> {
        let mut errors = Vec::new();
        let mut fail = |path: String, rule: CatalogRule, message: String| {
            errors.push(CatalogError {
                path,
                rule,
                message,
            })
        };
        // (redeemed at, account index, redemption index, coupon index)
        let mut redeemed = Vec::new();
        for (i, a) in self.accounts.iter().enumerate() {
            for (j, r) in a.coupons.iter().enumerate() {
                let rp = format!("$.accounts[{i}].coupons[{j}]");
                let Some(k) = catalog.coupons.iter().position(|c| c.is(&r.code)) else {
                    fail(
                        format!("{rp}.code"),
                        CatalogRule::UnknownReference,
                        format!("coupon `{}` is not in the catalog", r.code),
                    );
                    continue;
                };
                let c = &catalog.coupons[k];
                if a.reseller.is_some() {
                    fail(
                        format!("{rp}.code"),
                        CatalogRule::InvalidValue,
                        "coupons are the provider's, for its direct customers: a reseller's customer is priced by its reseller's catalog".into(),
                    );
                }
                if a.coupons[..j].iter().any(|e| c.is(&e.code)) {
                    fail(
                        format!("{rp}.code"),
                        CatalogRule::InvalidValue,
                        format!("coupon `{}` is redeemed twice by this account", c.code),
                    );
                    continue;
                }
                if !c.redeemable_at(r.redeemed_at) {
                    fail(
                        format!("{rp}.redeemed_at"),
                        CatalogRule::InvalidValue,
                        format!(
                            "coupon `{}` cannot be redeemed at {}: it is redeemable {}",
                            c.code,
                            r.redeemed_at.format("%Y-%m-%dT%H:%M:%SZ"),
                            redeem_window(c)
                        ),
                    );
                }
                redeemed.push((r.redeemed_at, i, j, k));
            }
        }
        redeemed.sort();
        let mut counts = vec![0u64; catalog.coupons.len()];
        for (_, i, j, k) in redeemed {
            counts[k] += 1;
            let c = &catalog.coupons[k];
            if let Some(max) = c.max_redemptions {
                // The first redemption past the limit is the error (reported once).
                if counts[k] == u64::from(max) + 1 {
                    fail(
                        format!("$.accounts[{i}].coupons[{j}].code"),
                        CatalogRule::LimitExceeded,
                        format!(
                            "coupon `{}` may be redeemed by {max} accounts: this is redemption {} (by account `{}`)",
                            c.code,
                            counts[k],
                            self.accounts[i].id
                        ),
                    );
                }
            }
        }
        errors
    }
}

/// A coupon's redemption window in words (`from 2026-11-01T00:00:00Z until ...`).
fn redeem_window(c: &crate::catalog::Coupon) -> String {
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match (c.redeem_from, c.redeem_until) {
        (Some(f), Some(u)) => format!("from {} until {}", at(f), at(u)),
        (Some(f), None) => format!("from {}", at(f)),
        (None, Some(u)) => format!("until {}", at(u)),
        (None, None) => "at any time".into(),
    }
}

impl AccountBook {
    /// What reseller billing relies on: a customer's reseller is in the catalog, and its
    /// customers are invoiced in the reseller's currency; a reseller with customers in the book
    /// has exactly one account of its own there (`resells`), the provider's direct customer, in
    /// the reseller's currency and with its customers' billing period (its statement sums
    /// theirs, period by period). A reseller nobody bills would be usage no invoice holds.
    fn reseller_errors(&self, catalog: &Catalog) -> Vec<CatalogError> {
        let mut errors = Vec::new();
        let mut fail = |path: String, message: String| {
            errors.push(CatalogError {
                path,
                rule: CatalogRule::UnknownReference,
                message,
            })
        };
        let currency_of = |r: &crate::catalog::ResellerOverlay| {
            r.currency
                .as_ref()
                .map_or(catalog.currency.code.clone(), |c| c.code.clone())
        };
        let billed = |rid: &str| {
            self.accounts
                .iter()
                .find(|b| b.resells.as_deref() == Some(rid))
        };
        for (i, a) in self.accounts.iter().enumerate() {
            if let Some(rid) = &a.resells {
                let Some(r) = catalog.reseller(rid) else {
                    fail(
                        format!("$.accounts[{i}].resells"),
                        format!("reseller `{rid}` is not in the catalog"),
                    );
                    continue;
                };
                if a.reseller.is_some() {
                    fail(
                        format!("$.accounts[{i}].reseller"),
                        format!("the account of reseller `{rid}` is the provider's own customer"),
                    );
                }
                let code = currency_of(r);
                if a.currency.as_deref().unwrap_or(&catalog.currency.code) != code {
                    fail(
                        format!("$.accounts[{i}].currency"),
                        format!("the account of reseller `{rid}` is billed in the reseller's currency, {code}"),
                    );
                }
                if billed(rid).is_some_and(|first| first.id != a.id) {
                    fail(
                        format!("$.accounts[{i}].resells"),
                        format!("reseller `{rid}` has another account already"),
                    );
                }
            }
            let Some(rid) = &a.reseller else { continue };
            let Some(r) = catalog.reseller(rid) else {
                fail(
                    format!("$.accounts[{i}].reseller"),
                    format!("reseller `{rid}` is not in the catalog"),
                );
                continue;
            };
            let code = currency_of(r);
            if a.currency.as_ref().is_some_and(|c| *c != code) {
                fail(
                    format!("$.accounts[{i}].currency"),
                    format!("a customer of reseller `{rid}` is invoiced in its currency, {code}"),
                );
            }
            match billed(rid) {
                None => fail(
                    format!("$.accounts[{i}].reseller"),
                    format!("reseller `{rid}` has no account of its own in the book (`resells`): nothing would bill it for this customer"),
                ),
                Some(b) if b.billing_period != a.billing_period => fail(
                    format!("$.accounts[{i}].billing_period"),
                    format!("a customer of reseller `{rid}` has its reseller account's billing period"),
                ),
                Some(_) => {}
            }
        }
        errors
    }
}

/// The (path, message) of each value of account `a` (at `ap`) out of its bounds: subscription
/// quantities, payment terms, availability, balances, credits and payments.
fn value_errors(a: &Account, ap: &str) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut fail = |path: String, message: String| errors.push((path, message));
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
    if a.payment_terms_days > PAYMENT_TERMS_DAYS_MAX {
        fail(
            format!("{ap}.payment_terms_days"),
            format!(
                "{} days, more than the longest terms allowed ({PAYMENT_TERMS_DAYS_MAX})",
                a.payment_terms_days
            ),
        );
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
    errors
}

/// The largest balance, credit or payment an account may show, in its currency: 10^15, a
/// thousand times the largest company's yearly cloud bill. Sums of them stay far inside a
/// decimal.
pub fn balance_max() -> Decimal {
    Decimal::from(1_000_000_000_000_000i64)
}

/// Longest payment terms an account may have, in days: net 120 is the longest in common use;
/// a year bounds a typo (3000 for 30) without refusing any real contract.
pub const PAYMENT_TERMS_DAYS_MAX: u32 = 365;

/// Payment terms of an account that names none: 30 days, the most common net terms.
pub const PAYMENT_TERMS_DAYS_DEFAULT: u32 = 30;

fn payment_terms_default() -> u32 {
    PAYMENT_TERMS_DAYS_DEFAULT
}

fn is_payment_terms_default(days: &u32) -> bool {
    *days == PAYMENT_TERMS_DAYS_DEFAULT
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
    /// The account's domain: the organisation it belongs to (a CloudStack domain such as
    /// `ROOT/acme`), for reports grouped or filtered by domain. Not written when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// ISO 3166-1 alpha-2 country code of the address (an e-invoice's buyer country).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The customer's VAT identifier (printed, and required on a reverse-charge e-invoice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_id: Option<String>,
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
    /// Contract prices: this account's own price of a product's charge (seed 001's prices
    /// hard-linked to a special customer), over the region's and the catalog's, in the
    /// catalog's currency like them. Not written when empty, so that stored accounts versions
    /// keep their bytes. Direct customers only: a reseller's customer is priced by its
    /// reseller's catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<crate::catalog::PriceOverride>,
    /// Split the invoice into blocks by project, region or cost code, each with its sections
    /// and total (Atomia's one block per virtual datacenter); see [`crate::blocks`]. None when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_blocks: Option<crate::blocks::BlockBy>,
    /// The catalog's coupons this account redeemed, each at an instant: each gives its
    /// discount from then on ([`crate::catalog::Coupon`]). Not written when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<Redemption>,
    /// The account's own cost codes (its cost centres), before the catalog's: what invoice
    /// blocks by cost code split its usage by. Not written when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cost_codes: Vec<crate::catalog::CostCode>,
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
    /// Days from an invoice's issue date to its due date (at most [`PAYMENT_TERMS_DAYS_MAX`]).
    /// [`PAYMENT_TERMS_DAYS_DEFAULT`] when absent, and not written then, so that stored
    /// accounts versions read and write the same bytes as before.
    #[serde(
        default = "payment_terms_default",
        skip_serializing_if = "is_payment_terms_default"
    )]
    pub payment_terms_days: u32,
    /// The account's own late-usage policy, over the catalog's (see [`late_usage_policy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_usage: Option<LateUsagePolicy>,
    /// The reseller (a catalog overlay's id) whose customer this is: invoiced with that
    /// reseller's published catalog, in its name and its own series of numbers. The provider's
    /// own customer when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<String>,
    /// The reseller (a catalog overlay's id) this account is: the reseller's own account with
    /// the provider, in the reseller's currency. Each period it receives the provider's statement
    /// of the reseller's customers at wholesale prices ([`crate::wholesale`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resells: Option<String>,
}

/// What the rater does with usage of this account's closed periods: the account's policy when
/// it names one, else the catalog's (`refuse` when neither does).
pub fn late_usage_policy(catalog: &Catalog, account: &Account) -> LateUsagePolicy {
    account.late_usage.unwrap_or(catalog.late_usage)
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

/// A coupon redeemed by an account: the code as typed and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redemption {
    pub code: String,
    pub redeemed_at: DateTime<Utc>,
}

/// The discounts an account's redeemed coupons give, in the order redeemed. A code the catalog
/// does not have is skipped: [`AccountBook::validate`] refuses a book that names one, so only a
/// reseller's published catalog (which carries no coupons) can miss it.
pub fn coupon_discounts(catalog: &Catalog, account: &Account) -> Vec<Discount> {
    account
        .coupons
        .iter()
        .filter_map(|r| {
            let c = catalog.coupons.iter().find(|c| c.is(&r.code))?;
            Some(c.discount_from(r.redeemed_at))
        })
        .collect()
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
    /// An interim invoice "to date": the instant it runs to (see [`Statement::as_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
    /// An issued invoice's date (the caller's clock) and the date payment is due: the issue
    /// date plus the account's payment terms. Both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    /// Version of the accounts data that priced it (set by the rater).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_version: Option<String>,
    /// Number of usage records behind the usage lines.
    pub records: u64,
    #[serde(flatten)]
    pub bill: Bill,
    /// Prepaid credit used against `total` (never more than the total, never negative).
    pub credits_applied: Decimal,
    /// An issued invoice's prepaid credit: what was available before it (rounded to the
    /// currency), and what remains for the next invoice (`available - credits_applied`). Both
    /// or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_available: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_remaining: Option<Decimal>,
    /// `total - credits_applied`.
    pub amount_due: Decimal,
    pub brought_forward: Decimal,
    pub payments: Vec<Payment>,
    pub payments_total: Decimal,
    /// `brought_forward - payments_total + amount_due`.
    pub carried_forward: Decimal,
    /// The lines split by project, region or cost code, when the account asks for blocks
    /// ([`Account::invoice_blocks`]): the same lines, in parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<crate::blocks::Block>,
}

impl Invoice {
    /// [`Bill::check_totals`] plus the account summary's arithmetic: amount due, payments,
    /// carried forward, the prepaid credit remaining, the due date, and no discount or credit
    /// of this invoice on the lines of earlier periods (`Adjustments`).
    ///
    /// # Errors
    /// The first total that is not the sum of its parts.
    pub fn check_totals(&self) -> Result<(), TotalsError> {
        self.bill.check_totals()?;
        let neg = |d: Decimal| -d;
        if checked_sum([self.bill.total, neg(self.credits_applied)])? != self.amount_due {
            return Err(TotalsError::AmountDue);
        }
        if checked_sum(self.payments.iter().map(|p| p.amount))? != self.payments_total {
            return Err(TotalsError::PaymentsTotal);
        }
        let carried = checked_sum([
            self.brought_forward,
            neg(self.payments_total),
            self.amount_due,
        ])?;
        if carried != self.carried_forward {
            return Err(TotalsError::CarriedForward);
        }
        self.check_blocks()?;
        self.check_statement()
    }

    /// Each block's sections and total add up to its lines, and the blocks to the invoice's
    /// lines.
    fn check_blocks(&self) -> Result<(), TotalsError> {
        if self.blocks.is_empty() {
            return Ok(());
        }
        let mut all = Vec::new();
        for b in &self.blocks {
            let mut block_sum = Vec::new();
            for s in &b.sections {
                let sum = checked_sum(s.lines.iter().map(|l| l.amount))?;
                if sum != s.total {
                    return Err(TotalsError::Section {
                        section: format!("{} / {}", b.name, s.name),
                        shown: s.total,
                        sum,
                    });
                }
                block_sum.push(sum);
            }
            let sum = checked_sum(block_sum)?;
            if sum != b.total {
                return Err(TotalsError::Block {
                    block: b.name.clone(),
                    shown: b.total,
                    sum,
                });
            }
            all.push(sum);
        }
        let blocks = checked_sum(all)?;
        let lines = checked_sum(self.bill.lines().map(|l| l.amount))?;
        if blocks != lines {
            return Err(TotalsError::Block {
                block: "(all)".into(),
                shown: blocks,
                sum: lines,
            });
        }
        Ok(())
    }

    /// The statement's figures: prepaid remaining, due date, undiscounted adjustments.
    fn check_statement(&self) -> Result<(), TotalsError> {
        match (self.prepaid_available, self.prepaid_remaining) {
            (None, None) => {}
            (Some(available), Some(remaining)) => {
                let left = checked_sum([available, -self.credits_applied])?;
                if left != remaining || remaining.is_sign_negative() && !remaining.is_zero() {
                    return Err(TotalsError::PrepaidRemaining);
                }
            }
            _ => return Err(TotalsError::PrepaidRemaining),
        }
        match (self.issue_date, self.due_date) {
            (None, None) => {}
            (Some(issued), Some(due)) if due >= issued => {}
            _ => return Err(TotalsError::DueDate),
        }
        let adjusted = self
            .bill
            .sections
            .iter()
            .filter(|s| s.name == ADJUSTMENTS_SECTION)
            .flat_map(|s| &s.lines)
            .find(|l| !l.adjustments.is_zero());
        if let Some(l) = adjusted {
            return Err(TotalsError::AdjustmentDiscounted {
                description: l.description.clone(),
            });
        }
        Ok(())
    }

    /// [`Bill::summary_rows`], then the account's: credit applied, amount due, the balance
    /// statement (brought forward, each payment, all payments, this period's amount due,
    /// carried forward), and on an issued invoice the prepaid credit remaining.
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
        // Only an account that had prepaid credit is told what is left of it.
        if let (Some(available), Some(remaining)) = (self.prepaid_available, self.prepaid_remaining)
        {
            if !available.is_zero() {
                rows.push(SummaryRow::PrepaidRemaining(remaining));
            }
        }
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

/// What an invoice carries from outside its usage, given by the caller instead of read from the
/// accounts book ([`Statement::from_book`] reads it as [`invoice`] does). Amounts are in the
/// invoice currency and rounded to its minor units with the catalog's mode, once, here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The previous final invoice's carried-forward.
    #[serde(default)]
    pub brought_forward: Decimal,
    /// Prepaid credit not consumed yet (a negative figure counts as none). The invoice uses up
    /// to its total and, when issued, reports what remains (`Invoice::prepaid_remaining`):
    /// the caller passes that to the next statement, so no credit is used twice.
    #[serde(default)]
    pub prepaid_available: Decimal,
    /// The payments dated in the period (the caller filters; one dated outside is refused).
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// The issue date, from the caller's clock (the crate reads none). When set, the invoice
    /// is issued: it shows this date, its due date (plus the account's payment terms) and
    /// the prepaid credit remaining; when absent it shows none of them, as [`invoice`]'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_date: Option<NaiveDate>,
    /// An interim invoice "to date" (StratosLive's "from the last invoice to this moment"): the
    /// period priced up to this instant, inside the period. Subscription fees are prorated to
    /// the end of the UTC day holding it (a day begun counts whole, as a subscription's first
    /// day does; at exactly midnight the new day has not begun), against the days of the
    /// month as always, and fixed discounts count their window up to the same instant. Usage
    /// is what the caller passes (the records so far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
    /// Differences of this account's earlier, closed periods billed on this invoice (late
    /// usage under the `next_period` policy): unnumbered notes from `note::note`. Each line
    /// goes to the `Adjustments` section, named for its period, at its net amount (already net
    /// of that period's discounts and credits): none of this invoice's discounts, SLA uplift
    /// or credits apply to it, and this invoice's taxes do (a note's own tax change is not
    /// billed: the amounts are pre-tax, taxed once, here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<Note>,
    /// On a reseller's own account (the provider's statement to the reseller): its customers'
    /// usage at wholesale prices, one section each (`wholesale::resold`), billed like
    /// adjustments: after this invoice's discounts and credits, taxed by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resold: Vec<crate::resold::Resold>,
    /// For a period shorter than a month (an Abiquo account period of an hour, a day or a
    /// week): the account's usage in the earlier periods of the calendar month its start falls
    /// in. Included quantities and minimum charges are monthly, so they are granted once per
    /// month, not once per period: each line bills what the month's usage to the end of this
    /// period costs minus what it cost before it, and the month's periods add up to the
    /// month's price (to line rounding). `None` (and for a month) prices the period alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month_before: Option<Usage>,
}

impl Statement {
    /// The statement the accounts book gives (what [`invoice`] uses): its balance brought
    /// forward and prepaid credit, its payments dated in the period; not issued, not interim,
    /// no adjustments.
    pub fn from_book(account: &Account, period: BillingPeriod) -> Statement {
        Statement {
            brought_forward: account.balance_brought_forward,
            prepaid_available: account.prepaid_credit,
            payments: account
                .payments
                .iter()
                .filter(|p| period.contains(p.date))
                .cloned()
                .collect(),
            issue_date: None,
            as_of: None,
            adjustments: Vec::new(),
            resold: Vec::new(),
            month_before: None,
        }
    }

    /// The rules the statement must keep for `account`'s `period`, in `currency`: `as_of` and
    /// payments inside the period, adjustments of the same account's earlier periods in the
    /// same currency and in its minor units.
    fn check(
        &self,
        account: &Account,
        period: BillingPeriod,
        currency: &Currency,
    ) -> Result<(), StatementRule> {
        let period_id = || period.id();
        if let Some(as_of) = self.as_of {
            if as_of < period.start || as_of > period.end() {
                return Err(StatementRule::AsOfOutsidePeriod {
                    as_of,
                    period: period_id(),
                });
            }
        }
        if let Some(p) = self.payments.iter().find(|p| !period.contains(p.date)) {
            return Err(StatementRule::PaymentOutsidePeriod {
                date: p.date,
                reference: p.reference.clone(),
                period: period_id(),
            });
        }
        for n in &self.adjustments {
            if n.account != account.id {
                return Err(StatementRule::AdjustmentOfAnotherAccount {
                    other: n.account.clone(),
                });
            }
            if n.period.end() > period.start {
                return Err(StatementRule::AdjustmentNotEarlier {
                    adjusted: n.period_id.clone(),
                    period: period_id(),
                });
            }
            if n.currency != currency.code {
                return Err(StatementRule::AdjustmentCurrency {
                    adjusted: n.period_id.clone(),
                    currency: n.currency.clone(),
                    expected: currency.code.clone(),
                });
            }
            if let Some(l) = n.lines().find(|l| currency.round(l.amount) != l.amount) {
                return Err(StatementRule::AdjustmentNotInMinorUnits {
                    adjusted: n.period_id.clone(),
                    description: l.description.clone(),
                });
            }
        }
        for r in &self.resold {
            let off = r
                .lines
                .iter()
                .find(|l| currency.round(l.amount) != l.amount || !l.adjustments.is_zero());
            if let Some(l) = off {
                return Err(StatementRule::ResoldNotNet {
                    customer: r.account.clone(),
                    description: l.description.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The invoice of `account` for `period` from its rated `usage` (other accounts' totals are
/// ignored), with the accounts book's statement ([`Statement::from_book`]). Interim: the caller
/// numbers and stores final invoices.
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
    invoice_with(
        catalog,
        account,
        period,
        usage,
        &Statement::from_book(account, period),
    )
}

/// The invoice of `account` for `period` from its rated `usage` and the caller's `statement`
/// (brought forward, prepaid credit, payments, issue date, an interim instant, adjustments of
/// earlier periods). With [`Statement::from_book`] it is exactly [`invoice`]'s.
///
/// # Errors
/// Those of [`invoice`]; [`PricingError::Statement`] for a statement that breaks a rule
/// ([`StatementRule`]); [`PricingError::BrokenTotals`] for an adjustment whose totals do not
/// add up; [`PricingError::Overflow`] for figures too large for a decimal.
pub fn invoice_with(
    catalog: &Catalog,
    account: &Account,
    period: BillingPeriod,
    usage: &Usage,
    statement: &Statement,
) -> Result<Invoice, PricingError> {
    let settings = Settings::resolve(
        catalog,
        &account.settings_input(),
        &SettingsOwner::Account(account.id.clone()),
    )?;
    statement
        .check(account, period, &settings.currency)
        .map_err(|rule| PricingError::Statement {
            account: account.id.clone(),
            rule,
        })?;
    for n in &statement.adjustments {
        n.check_totals()
            .map_err(|error| PricingError::BrokenTotals {
                what: "adjustment of period",
                id: n.period_id.clone(),
                error,
            })?;
    }
    let default_region = settings.default_region();
    // An interim invoice to date bills the days begun before its instant.
    let cutoff = statement.as_of.map(|t| ceil_day(t).min(period.end()));
    let month_before = match &statement.month_before {
        Some(before) if period.kind != PeriodKind::Month => {
            line_quantities(usage_groups(catalog, before, &account.id, default_region)?)?
        }
        _ => BTreeMap::new(),
    };
    // The plans held at the end of what is billed grant their allowances (seed 004: usage is
    // compared with the active subscription when the bill is generated).
    let last_instant = cutoff.unwrap_or(period.end()) - Duration::seconds(1);
    let allowances = crate::bill::plan_allowances(catalog, plans_at(account, last_instant))?;
    let ctx = Context {
        discounts: {
            let mut own = account.discounts.clone();
            own.extend(coupon_discounts(catalog, account));
            settings.discounts_in_order(&own)
        },
        settings,
        availability_pct: account.availability_pct,
        account: account.id.clone(),
        span: (period.start, period.end()),
        cutoff,
        month_before,
        prices: account.prices.clone(),
        allowances,
    };
    let subs = subscription_charges(account, period, cutoff);
    let groups = usage_groups(catalog, usage, &account.id, default_region)?;
    let mut priced: Vec<Section> = statement.resold.iter().map(|r| r.section()).collect();
    priced.push(Section {
        name: ADJUSTMENTS_SECTION.to_string(),
        lines: adjustment_lines(&statement.adjustments),
        total: Decimal::ZERO,
    });
    let built = build(&ctx, groups, &subs, priced)?;
    let blocks = match account.invoice_blocks {
        Some(by) => crate::blocks::blocks(
            &built,
            by,
            crate::blocks::Codes {
                account: &account.cost_codes,
                catalog: &catalog.cost_codes,
            },
            ctx.settings.currency.minor_units,
        )
        .map_err(|e| PricingError::overflow(e, format!("account {}", account.id)))?,
        None => Vec::new(),
    };
    let mut bill = built.bill;
    // A reseller's customer is invoiced in the reseller's name (its published catalog's brand).
    bill.issuer = catalog.brand.as_ref().map(|b| b.name.clone());
    let at = |e: Overflow| PricingError::overflow(e, format!("account {}", account.id));
    let mut inv = account_summary(
        &ctx.settings.currency,
        account,
        period,
        usage,
        bill,
        statement,
    )
    .map_err(at)?;
    inv.blocks = blocks;
    if let Some(issued) = statement.issue_date {
        let terms = chrono::Days::new(u64::from(account.payment_terms_days));
        let due = issued
            .checked_add_days(terms)
            .ok_or(Overflow { what: "due date" })
            .map_err(at)?;
        inv.issue_date = Some(issued);
        inv.due_date = Some(due);
    }
    debug_assert_eq!(inv.check_totals(), Ok(()));
    Ok(inv)
}

/// The plans (product and quantity) the account's subscriptions hold at instant `t`.
fn plans_at(account: &Account, t: DateTime<Utc>) -> impl Iterator<Item = (&str, Decimal)> {
    account.subscriptions.iter().filter_map(move |sub| {
        if sub.start > t || sub.end.is_some_and(|e| e <= t) {
            return None;
        }
        let product = sub
            .changes
            .iter()
            .filter(|c| c.at <= t)
            .max_by_key(|c| c.at)
            .map_or(sub.product.as_str(), |c| c.product.as_str());
        Some((product, sub.quantity))
    })
}

/// The quantity of each line (product, meter, region) of grouped usage.
fn line_quantities(groups: Groups<'_>) -> Result<BTreeMap<LineKey, Decimal>, PricingError> {
    groups
        .into_iter()
        .map(|((product, meter, region), shares)| {
            let q = crate::exact::sum(shares.iter().map(|s| s.quantity), "month's quantity")
                .map_err(|e| PricingError::overflow(e, format!("line {product}/{meter}")))?;
            Ok((
                (product.to_string(), meter.to_string(), region.to_string()),
                q,
            ))
        })
        .collect()
}

/// The lines of the adjustments, for the `Adjustments` section: each note line at its net
/// amount, its description naming the period it belongs to, its unit price the average of the
/// change (0 without a quantity change).
fn adjustment_lines(notes: &[Note]) -> Vec<Line> {
    let mut out = Vec::new();
    for n in notes {
        let what = match n.reason {
            NoteReason::LateUsage => "usage of",
            NoteReason::CorrectedCatalog | NoteReason::CorrectedAccount => "correction of",
        };
        for l in n.lines() {
            let average = exact::div(l.amount, l.quantity, "unit price")
                .and_then(|a| exact::mul(a, l.per, "unit price"))
                .map_or(Decimal::ZERO, |a| a.round_dp(6).normalize());
            out.push(Line {
                description: format!("{} ({what} {})", l.description, n.period_id),
                product: l.product.clone(),
                meter: l.meter.clone(),
                region: l.region.clone(),
                category: l.category,
                quantity: l.quantity,
                unit: l.unit.clone(),
                unit_price: average,
                unit_price_is_average: true,
                per: l.per,
                one_time_fee: None,
                monthly_fee: None,
                days: None,
                amount: l.amount,
                adjustments: Decimal::ZERO,
                tax: Decimal::ZERO,
            });
        }
    }
    out
}

/// The invoice around a priced bill: the account, its records, and the statement's credit,
/// payments and balance.
fn account_summary(
    currency: &Currency,
    account: &Account,
    period: BillingPeriod,
    usage: &Usage,
    bill: Bill,
    statement: &Statement,
) -> Result<Invoice, Overflow> {
    let records = usage
        .totals
        .iter()
        .filter(|(k, _)| k.account == account.id)
        .fold(0u64, |n, (_, t)| n.saturating_add(t.records));
    // A payment with more digits than the currency is shown rounded (at the statement level),
    // so that the payments shown add up to their total; one in minor units is shown as given.
    let payments: Vec<Payment> = statement
        .payments
        .iter()
        .map(|p| match currency.round(p.amount) {
            rounded if rounded != p.amount => Payment {
                amount: rounded,
                ..p.clone()
            },
            _ => p.clone(),
        })
        .collect();
    let payments_total = currency.round(exact::sum(payments.iter().map(|p| p.amount), "payments")?);
    let prepaid = statement.prepaid_available.max(Decimal::ZERO);
    // Rounded at the statement level: the credit used is never more than the total.
    let credits_applied = currency.round(prepaid.min(bill.total.max(Decimal::ZERO)));
    let mut amount_due = exact::sub(bill.total, credits_applied, "amount due")?;
    amount_due.rescale(currency.minor_units);
    let brought_forward = currency.round(statement.brought_forward);
    let mut carried_forward = exact::add(
        exact::sub(brought_forward, payments_total, "carried forward")?,
        amount_due,
        "carried forward",
    )?;
    carried_forward.rescale(currency.minor_units);
    let (prepaid_available, prepaid_remaining) = match statement.issue_date {
        None => (None, None),
        Some(_) => {
            let available = currency.round(prepaid);
            let mut remaining = exact::sub(available, credits_applied, "prepaid remaining")?;
            remaining.rescale(currency.minor_units);
            (Some(available), Some(remaining))
        }
    };
    Ok(Invoice {
        kind: InvoiceKind::Interim,
        number: None,
        account: account.id.clone(),
        account_name: account.name.clone(),
        address: account.address.clone(),
        period,
        period_id: period.id(),
        period_end: period.end(),
        as_of: statement.as_of,
        issue_date: None,
        due_date: None,
        accounts_version: None,
        records,
        bill,
        credits_applied,
        prepaid_available,
        prepaid_remaining,
        amount_due,
        brought_forward,
        payments,
        payments_total,
        carried_forward,
        blocks: Vec::new(),
    })
}

/// The subscription fees of `period`: one charge per plan held, prorated by whole UTC days (a
/// plan change on a day belongs to the new plan) against the days of the calendar month they
/// fall in, so that a period straddling two months (an ISO week) charges each month's days at
/// that month's rate: one charge per month touched. One-time fees in the period the
/// subscription starts. An invoice to date charges only up to its `cutoff` (a midnight inside
/// the period).
fn subscription_charges(
    account: &Account,
    period: BillingPeriod,
    cutoff: Option<DateTime<Utc>>,
) -> Vec<SubscriptionCharge> {
    let mut out = Vec::new();
    let (p_start, p_end) = (period.start, cutoff.unwrap_or(period.end()));
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
            let mut s = from.max(p_start);
            let e = to.min(p_end);
            let mut first = true;
            while s < e {
                let month = BillingPeriod::containing(PeriodKind::Month, s);
                let part_end = e.min(month.end());
                let days = Decimal::from((part_end - s).num_seconds())
                    / Decimal::from(Duration::days(1).num_seconds());
                out.push(SubscriptionCharge {
                    subscription: if i == 0 {
                        sub.id.clone()
                    } else {
                        format!("{}#{}", sub.id, i)
                    },
                    project: sub.project.clone().unwrap_or_default(),
                    product: product.clone(),
                    quantity: sub.quantity,
                    days,
                    month_days: Decimal::from(month.days_in_month()),
                    one_time: first && i == 0 && period.contains(sub.start),
                    day: s.date_naive(),
                });
                first = false;
                s = part_end;
            }
        }
    }
    out
}

fn floor_day(t: DateTime<Utc>) -> DateTime<Utc> {
    midnight(t.date_naive())
}

/// The midnight that ends the UTC day `t` falls in, or `t` itself when it is a midnight: the
/// end of the days begun before `t`.
fn ceil_day(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor_day(t);
    if floor == t {
        t
    } else {
        floor
            .checked_add_signed(Duration::days(1))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
