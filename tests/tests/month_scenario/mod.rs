//! The three-month billing scenario of issue 14 (February to April 2017), shared by `billing_month` (the Lambda on DynamoDB Local) and `cli_month` (the CLI on the embedded store): its inputs and every expected figure, computed by hand in the comments.
//!
//! Nothing here calls the pricing engine: the expected amounts are written out from the
//! catalog's round prices, so that a bug in `pricing` or the rater cannot make its own
//! expectation.
//!
//! The deployment: catalog `e2e-month` in GBP (`half_up`), one 20 % VAT charged on the
//! invoice's net (`level: invoice`), and
//! - `vm.small`: 0.10 per running hour (corrected later to 0.09);
//! - `disk`: 0.05 per GB-month;
//! - `backup`: a service at 3.10 a month (0.10 a day in March's 31 days), `backup-plus` at
//!   6.20 a month (0.20 a day in March).
//!
//! The accounts (catalog late-usage policy `refuse`, overridden per account):
//! - `acme`: late usage `note`, payment terms 14 days, subscribed to `backup` since 2017-02-01;
//!   the accounts version `2017-03.1` (the plan change, published after February's close)
//!   moves it to `backup-plus` on 2017-03-11;
//! - `beta`: late usage `next_period`, default terms (30 days);
//! - `gamma`: the catalog's `refuse`, terms 45 days, 10.00 of prepaid credit;
//! - `delta`: nothing ever (every close skips it).

#![allow(dead_code)]

use rust_decimal::Decimal;
use serde_json::Value;

pub const ISSUER: &str = "e2e";

/// The deployment's catalog, version `2017-02.1`.
pub const CATALOG: &str = r#"{
  "schema_version": 1,
  "id": "e2e-month",
  "version": "2017-02.1",
  "name": "E2E month-end price list",
  "currency": { "code": "GBP", "rounding": "half_up" },
  "hours_per_month": "730",
  "sections": ["Compute", "Storage"],
  "meters": [
    { "id": "vm.running", "name": "Running time", "unit": "hours", "section": "Compute", "role": "running" },
    { "id": "volume.gbm", "name": "Volume size over time", "unit": "gigabyte_months", "unit_name": "GB.month", "section": "Storage", "role": "storage" }
  ],
  "products": [
    { "id": "vm.small", "name": "Small VM", "category": "compute", "type": "compute", "vcpu": 1, "ram_mb": 1024,
      "charges": [ { "meter": "vm.running", "price": { "model": "per_unit", "unit_price": "0.10" } } ] },
    { "id": "disk", "name": "Block storage", "category": "storage", "type": "storage", "tier": "ssd",
      "charges": [ { "meter": "volume.gbm", "price": { "model": "per_unit", "unit_price": "0.05" } } ] },
    { "id": "backup", "name": "Daily backup", "category": "service", "type": "service",
      "fees": { "one_time": "0.00", "monthly": "3.10" } },
    { "id": "backup-plus", "name": "Daily backup plus", "category": "service", "type": "service",
      "fees": { "one_time": "0.00", "monthly": "6.20" } }
  ],
  "regions": [ { "id": "lon1", "name": "London 1" } ],
  "tax_jurisdictions": [
    { "id": "uk", "name": "United Kingdom", "level": "invoice", "taxes": [ { "name": "VAT", "rate_pct": "20" } ] }
  ],
  "late_usage": "refuse"
}"#;

/// The corrected catalog (`2017-02.2-corrected`): the small VM was over-priced, 0.09 an hour.
pub fn corrected_catalog() -> String {
    CATALOG
        .replace(
            r#""version": "2017-02.1""#,
            r#""version": "2017-02.2-corrected""#,
        )
        .replace(r#""unit_price": "0.10""#, r#""unit_price": "0.09""#)
}

/// Accounts version `2017-02.1`, in force for February.
pub const ACCOUNTS_V1: &str = r#"{
  "schema_version": 1,
  "version": "2017-02.1",
  "accounts": [
    { "id": "acme", "name": "Acme Ltd", "region": "lon1", "tax_jurisdiction": "uk",
      "payment_terms_days": 14, "late_usage": "note",
      "subscriptions": [ { "id": "sub-backup", "product": "backup", "start": "2017-02-01T00:00:00Z" } ] },
    { "id": "beta", "name": "Beta GmbH", "region": "lon1", "tax_jurisdiction": "uk",
      "late_usage": "next_period" },
    { "id": "gamma", "name": "Gamma SA", "region": "lon1", "tax_jurisdiction": "uk",
      "payment_terms_days": 45, "prepaid_credit": "10.00" },
    { "id": "delta", "name": "Delta (idle)", "region": "lon1", "tax_jurisdiction": "uk" }
  ]
}"#;

/// Accounts version `2017-03.1`: the plan change. `acme` moves from `backup` to `backup-plus`
/// on 2017-03-11 (published after February's close, before March's).
pub fn accounts_v2() -> String {
    ACCOUNTS_V1
        .replace(r#""version": "2017-02.1""#, r#""version": "2017-03.1""#)
        .replace(
            r#""start": "2017-02-01T00:00:00Z" }"#,
            r#""start": "2017-02-01T00:00:00Z", "changes": [ { "at": "2017-03-11T00:00:00Z", "product": "backup-plus" } ] }"#,
        )
}

/// One canonical JSON Lines record: `quantity` of `meter` for `resource`, starting at `start`
/// (an hour's window).
fn record(
    id: &str,
    account: &str,
    product: &str,
    meter: &str,
    quantity: &str,
    start: &str,
) -> String {
    let (unit, resource) = match meter {
        "vm.running" => ("hours", format!("{account}-vm")),
        _ => ("gigabyte_months", format!("{account}-vol")),
    };
    let end = start.replace("T00:00:00Z", "T01:00:00Z");
    format!(
        r#"{{"record_id":"{id}","account":"{account}","project":"p","resource":"{resource}","product":"{product}","meter":"{meter}","quantity":"{quantity}","unit":"{unit}","start":"{start}","end":"{end}"}}"#
    ) + "\n"
}

fn vm(id: &str, account: &str, hours: &str, day: &str) -> String {
    record(
        id,
        account,
        "vm.small",
        "vm.running",
        hours,
        &format!("{day}T00:00:00Z"),
    )
}

fn disk(id: &str, account: &str, gb_months: &str, day: &str) -> String {
    record(
        id,
        account,
        "disk",
        "volume.gbm",
        gb_months,
        &format!("{day}T00:00:00Z"),
    )
}

/// A batch of usage as the nightly exporter sends it.
pub struct Batch {
    /// Its idempotency key.
    pub key: &'static str,
    pub period: &'static str,
    pub jsonl: String,
}

/// The month's nightly batches, in the order they are sent.
pub fn nightly(period: &str) -> Vec<Batch> {
    match period {
        "2017-02" => vec![
            Batch {
                key: "nightly-2017-02-10",
                period: "2017-02",
                jsonl: vm("f1", "acme", "100", "2017-02-10")
                    + &disk("f2", "acme", "40", "2017-02-10")
                    + &vm("f3", "beta", "50", "2017-02-10")
                    + &vm("f4", "gamma", "20", "2017-02-10"),
            },
            Batch {
                key: "nightly-2017-02-20",
                period: "2017-02",
                jsonl: vm("f5", "acme", "80", "2017-02-20")
                    + &vm("f6", "beta", "50", "2017-02-20")
                    + &disk("f7", "gamma", "60", "2017-02-20"),
            },
        ],
        "2017-03" => vec![
            Batch {
                key: "nightly-2017-03-10",
                period: "2017-03",
                jsonl: vm("m1", "acme", "120", "2017-03-10")
                    + &vm("m2", "beta", "60", "2017-03-10")
                    + &disk("m3", "gamma", "60", "2017-03-10"),
            },
            Batch {
                key: "nightly-2017-03-25",
                period: "2017-03",
                jsonl: vm("m4", "acme", "80", "2017-03-25")
                    + &vm("m5", "beta", "40", "2017-03-25")
                    + &vm("m6", "gamma", "10", "2017-03-25"),
            },
        ],
        "2017-04" => vec![Batch {
            key: "nightly-2017-04-12",
            period: "2017-04",
            jsonl: vm("a1", "acme", "150", "2017-04-12"),
        }],
        _ => panic!("no nightly batches for {period}"),
    }
}

/// February usage arriving after February's close, one batch per account (policy).
pub fn late_refused() -> Batch {
    Batch {
        key: "late-gamma-2017-02-25",
        period: "2017-02",
        jsonl: vm("l1", "gamma", "10", "2017-02-25"),
    }
}

pub fn late_note() -> Batch {
    Batch {
        key: "late-acme-2017-02-27",
        period: "2017-02",
        jsonl: vm("l2", "acme", "30", "2017-02-27"),
    }
}

pub fn late_next_period() -> Batch {
    Batch {
        key: "late-beta-2017-02-26",
        period: "2017-02",
        jsonl: vm("l3", "beta", "20", "2017-02-26"),
    }
}

/// A payment received.
pub struct Payment {
    pub account: &'static str,
    pub date: &'static str,
    pub amount: &'static str,
    pub reference: &'static str,
}

impl Payment {
    pub fn json(&self) -> String {
        format!(
            r#"{{"account":"{}","date":"{}T00:00:00Z","amount":"{}","currency":"GBP","reference":"{}"}}"#,
            self.account, self.date, self.amount, self.reference
        )
    }
}

/// The payments of the month, recorded before its close.
pub fn payments(period: &str) -> Vec<Payment> {
    match period {
        "2017-02" => vec![Payment {
            account: "acme",
            date: "2017-02-20",
            amount: "10.00",
            reference: "acme-wire-1",
        }],
        "2017-03" => vec![
            Payment {
                account: "beta",
                date: "2017-03-05",
                amount: "12.00",
                reference: "beta-wire-1",
            },
            Payment {
                account: "acme",
                date: "2017-03-15",
                amount: "17.72",
                reference: "acme-wire-2",
            },
        ],
        "2017-04" => vec![Payment {
            account: "gamma",
            date: "2017-04-10",
            amount: "0.80",
            reference: "gamma-card-1",
        }],
        _ => Vec::new(),
    }
}

pub fn d(s: &str) -> Decimal {
    s.parse()
        .unwrap_or_else(|e| panic!("`{s}` is not a decimal: {e}"))
}

/// A JSON decimal (a string, never a float) as a `Decimal`.
pub fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => d(s),
        other => panic!("money must be a JSON string, got {other}"),
    }
}

/// The expected figures of one final invoice.
#[derive(Debug, Clone)]
pub struct Expected {
    pub account: &'static str,
    pub period: &'static str,
    pub number: &'static str,
    /// (section, total) in order; `Adjustments` last when present.
    pub sections: &'static [(&'static str, &'static str)],
    pub subtotal: &'static str,
    pub vat: &'static str,
    pub total: &'static str,
    pub credits_applied: &'static str,
    pub amount_due: &'static str,
    pub brought_forward: &'static str,
    /// (reference, amount) of each payment on the invoice.
    pub payments: &'static [(&'static str, &'static str)],
    pub carried_forward: &'static str,
    /// Prepaid credit before and after (accounts that have some).
    pub prepaid: Option<(&'static str, &'static str)>,
    pub terms_days: u64,
    pub accounts_version: &'static str,
}

/// Every final invoice of the scenario, in the order they are issued (each month's close
/// walks the accounts in id order: acme, beta, gamma; delta is skipped).
pub fn finals(period: &str) -> Vec<Expected> {
    match period {
        "2017-02" => vec![
            // acme: 100 h + 80 h = 180 h x 0.10 = 18.00; 40 GB-month x 0.05 = 2.00;
            // backup held all 28 days of February: 3.10 x 28/28 = 3.10.
            // Net 18.00 + 2.00 + 3.10 = 23.10; VAT 20 % = 4.62; total 27.72.
            // Paid 10.00 on 20 Feb; brought forward 0 (first invoice);
            // carried 0 - 10.00 + 27.72 = 17.72.
            Expected {
                account: "acme",
                period: "2017-02",
                number: "e2e-000001",
                sections: &[
                    ("Compute", "18.00"),
                    ("Storage", "2.00"),
                    ("Subscriptions", "3.10"),
                ],
                subtotal: "23.10",
                vat: "4.62",
                total: "27.72",
                credits_applied: "0.00",
                amount_due: "27.72",
                brought_forward: "0.00",
                payments: &[("acme-wire-1", "10.00")],
                carried_forward: "17.72",
                prepaid: None,
                terms_days: 14,
                accounts_version: "2017-02.1",
            },
            // beta: 50 h + 50 h = 100 h x 0.10 = 10.00; VAT 2.00; total 12.00; carried 12.00.
            Expected {
                account: "beta",
                period: "2017-02",
                number: "e2e-000002",
                sections: &[("Compute", "10.00")],
                subtotal: "10.00",
                vat: "2.00",
                total: "12.00",
                credits_applied: "0.00",
                amount_due: "12.00",
                brought_forward: "0.00",
                payments: &[],
                carried_forward: "12.00",
                prepaid: None,
                terms_days: 30,
                accounts_version: "2017-02.1",
            },
            // gamma: 20 h x 0.10 = 2.00; 60 GB-month x 0.05 = 3.00; net 5.00; VAT 1.00;
            // total 6.00, all paid from its 10.00 prepaid credit (4.00 left); due 0.00;
            // carried 0.00.
            Expected {
                account: "gamma",
                period: "2017-02",
                number: "e2e-000003",
                sections: &[("Compute", "2.00"), ("Storage", "3.00")],
                subtotal: "5.00",
                vat: "1.00",
                total: "6.00",
                credits_applied: "6.00",
                amount_due: "0.00",
                brought_forward: "0.00",
                payments: &[],
                carried_forward: "0.00",
                prepaid: Some(("10.00", "4.00")),
                terms_days: 45,
                accounts_version: "2017-02.1",
            },
        ],
        "2017-03" => vec![
            // acme: 120 h + 80 h = 200 h x 0.10 = 20.00. The plan change (accounts 2017-03.1):
            // backup 1-10 March, 10 days x 3.10/31 = 1.00; backup-plus 11-31 March, 21 days x
            // 6.20/31 = 4.20; subscriptions 5.20. Net 25.20; VAT 5.04; total 30.24.
            // Brought forward: February's carried 17.72 + the late-usage debit note 3.60
            // issued since = 21.32. Paid 17.72 on 15 March.
            // Carried 21.32 - 17.72 + 30.24 = 33.84.
            Expected {
                account: "acme",
                period: "2017-03",
                number: "e2e-000004",
                sections: &[("Compute", "20.00"), ("Subscriptions", "5.20")],
                subtotal: "25.20",
                vat: "5.04",
                total: "30.24",
                credits_applied: "0.00",
                amount_due: "30.24",
                brought_forward: "21.32",
                payments: &[("acme-wire-2", "17.72")],
                carried_forward: "33.84",
                prepaid: None,
                terms_days: 14,
                accounts_version: "2017-03.1",
            },
            // beta: 60 h + 40 h = 100 h x 0.10 = 10.00; Adjustments: February's late 20 h x
            // 0.10 = 2.00 (policy next_period). Subtotal 12.00; VAT 2.40; total 14.40.
            // Brought forward 12.00; paid 12.00 on 5 March; carried 12.00 - 12.00 + 14.40 = 14.40.
            Expected {
                account: "beta",
                period: "2017-03",
                number: "e2e-000005",
                sections: &[("Compute", "10.00"), ("Adjustments", "2.00")],
                subtotal: "12.00",
                vat: "2.40",
                total: "14.40",
                credits_applied: "0.00",
                amount_due: "14.40",
                brought_forward: "12.00",
                payments: &[("beta-wire-1", "12.00")],
                carried_forward: "14.40",
                prepaid: None,
                terms_days: 30,
                accounts_version: "2017-03.1",
            },
            // gamma: 10 h x 0.10 = 1.00; 60 GB-month x 0.05 = 3.00; net 4.00; VAT 0.80; total
            // 4.80. The 4.00 of prepaid credit left from February pays 4.00 (0 left, never
            // reused); due 0.80; brought forward 0.00; carried 0.80.
            Expected {
                account: "gamma",
                period: "2017-03",
                number: "e2e-000006",
                sections: &[("Compute", "1.00"), ("Storage", "3.00")],
                subtotal: "4.00",
                vat: "0.80",
                total: "4.80",
                credits_applied: "4.00",
                amount_due: "0.80",
                brought_forward: "0.00",
                payments: &[],
                carried_forward: "0.80",
                prepaid: Some(("4.00", "0.00")),
                terms_days: 45,
                accounts_version: "2017-03.1",
            },
        ],
        "2017-04" => vec![
            // acme: 150 h x 0.10 = 15.00; backup-plus all April 6.20; net 21.20; VAT 4.24;
            // total 25.44. Brought forward 33.84; no payment; carried 33.84 + 25.44 = 59.28.
            Expected {
                account: "acme",
                period: "2017-04",
                number: "e2e-000007",
                sections: &[("Compute", "15.00"), ("Subscriptions", "6.20")],
                subtotal: "21.20",
                vat: "4.24",
                total: "25.44",
                credits_applied: "0.00",
                amount_due: "25.44",
                brought_forward: "33.84",
                payments: &[],
                carried_forward: "59.28",
                prepaid: None,
                terms_days: 14,
                accounts_version: "2017-03.1",
            },
            // beta: no usage, but 14.40 owed: finalized with total 0.00, carried 14.40.
            Expected {
                account: "beta",
                period: "2017-04",
                number: "e2e-000008",
                sections: &[],
                subtotal: "0.00",
                vat: "0.00",
                total: "0.00",
                credits_applied: "0.00",
                amount_due: "0.00",
                brought_forward: "14.40",
                payments: &[],
                carried_forward: "14.40",
                prepaid: None,
                terms_days: 30,
                accounts_version: "2017-03.1",
            },
            // gamma: no usage, 0.80 owed, paid 0.80 on 10 April: carried 0.00.
            Expected {
                account: "gamma",
                period: "2017-04",
                number: "e2e-000009",
                sections: &[],
                subtotal: "0.00",
                vat: "0.00",
                total: "0.00",
                credits_applied: "0.00",
                amount_due: "0.00",
                brought_forward: "0.80",
                payments: &[("gamma-card-1", "0.80")],
                carried_forward: "0.00",
                prepaid: Some(("0.00", "0.00")),
                terms_days: 45,
                accounts_version: "2017-03.1",
            },
        ],
        _ => panic!("no finals for {period}"),
    }
}

/// The expected figures of a numbered note.
#[derive(Debug, Clone)]
pub struct ExpectedNote {
    pub number: &'static str,
    pub kind: &'static str,
    pub reason: &'static str,
    pub corrects: &'static str,
    pub account: &'static str,
    pub period: &'static str,
    /// (product, change of quantity, change of net amount) of each line.
    pub lines: &'static [(&'static str, &'static str, &'static str)],
    pub net: &'static str,
    pub vat: &'static str,
    pub total: &'static str,
    pub catalog_version: &'static str,
}

/// acme's February late usage (policy `note`): 30 h x 0.10 = 3.00 more net. February's VAT
/// is computed on the invoice's net: 20 % of (23.10 + 3.00 = 26.10) = 5.22, was 4.62, so the
/// note's VAT is 0.60; total 3.60, a debit note, the first of the issuer's note series.
pub fn late_note_expected() -> ExpectedNote {
    ExpectedNote {
        number: "e2e-N000001",
        kind: "debit",
        reason: "late_usage",
        corrects: "e2e-000001",
        account: "acme",
        period: "2017-02",
        lines: &[("vm.small", "30", "3.00")],
        net: "3.00",
        vat: "0.60",
        total: "3.60",
        catalog_version: "2017-02.1",
    }
}

/// acme's February re-rated under the corrected catalog (VM 0.09): 210 h (180 + 30 late) x
/// 0.09 = 18.90 against 21.00 billed (invoice 18.00 + note 3.00): -2.10, no quantity change.
/// Net now 18.90 + 2.00 + 3.10 = 24.00, VAT 4.80 against 5.22 billed (4.62 + 0.60): -0.42.
/// Total -2.52: a credit note, the second of the note series.
pub fn rerate_note_expected() -> ExpectedNote {
    ExpectedNote {
        number: "e2e-N000002",
        kind: "credit",
        reason: "corrected_catalog",
        corrects: "e2e-000001",
        account: "acme",
        period: "2017-02",
        lines: &[("vm.small", "0", "-2.10")],
        net: "-2.10",
        vat: "-0.42",
        total: "-2.52",
        catalog_version: "2017-02.2-corrected",
    }
}

/// acme's March interim invoice "to date" at 2017-03-16T12:00Z, after the first March batch:
/// usage so far 120 h x 0.10 = 12.00; subscriptions to the end of 16 March: backup 10 days x
/// 3.10/31 = 1.00, backup-plus 11-16 March 6 days x 6.20/31 = 1.20; net 14.20; VAT 2.84;
/// total 17.04; brought forward 21.32 (February's 17.72 + the 3.60 note).
pub const TO_DATE_AS_OF: &str = "2017-03-16T12:00:00Z";
pub const TO_DATE: (&str, &str, &str, &str) = ("14.20", "2.84", "17.04", "21.32");

/// Each account's documents at the end, newest first: (kind, number, period, total).
pub fn history(account: &str) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    match account {
        "acme" => vec![
            ("credit_note", "e2e-N000002", "2017-02", "-2.52"),
            ("invoice", "e2e-000007", "2017-04", "25.44"),
            ("invoice", "e2e-000004", "2017-03", "30.24"),
            ("debit_note", "e2e-N000001", "2017-02", "3.60"),
            ("invoice", "e2e-000001", "2017-02", "27.72"),
        ],
        "beta" => vec![
            ("invoice", "e2e-000008", "2017-04", "0.00"),
            ("invoice", "e2e-000005", "2017-03", "14.40"),
            ("invoice", "e2e-000002", "2017-02", "12.00"),
        ],
        "gamma" => vec![
            ("invoice", "e2e-000009", "2017-04", "0.00"),
            ("invoice", "e2e-000006", "2017-03", "4.80"),
            ("invoice", "e2e-000003", "2017-02", "6.00"),
        ],
        _ => Vec::new(),
    }
}

pub const ACCOUNTS: [&str; 4] = ["acme", "beta", "gamma", "delta"];

/// The day an invoice issued now carries: the UTC date (a test run crossing midnight may see
/// the day before or after).
pub fn today() -> chrono::NaiveDate {
    now().date_naive()
}

/// The machine's clock (chrono is built without its `clock` feature here).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    chrono::DateTime::from_timestamp(since_epoch.as_secs() as i64, 0).expect("a date")
}

/// Checks a final invoice (JSON as the rater answers it) against the hand-computed figures.
/// `issued_between` is the UTC dates before and after the close that issued it.
pub fn check_final(
    inv: &Value,
    e: &Expected,
    issued_between: (chrono::NaiveDate, chrono::NaiveDate),
) {
    let what = format!("{} {}: {inv:#}", e.account, e.period);
    assert_eq!(inv["kind"], "final", "{what}");
    assert_eq!(inv["number"], e.number, "{what}");
    assert_eq!(inv["account"], e.account, "{what}");
    assert_eq!(inv["period_id"], e.period, "{what}");
    assert_eq!(inv["currency"], "GBP", "{what}");
    assert_eq!(inv["accounts_version"], e.accounts_version, "{what}");
    let sections: Vec<(String, Decimal)> = inv["sections"]
        .as_array()
        .unwrap_or_else(|| panic!("no sections: {what}"))
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), dec(&s["total"])))
        .collect();
    let want: Vec<(String, Decimal)> = e
        .sections
        .iter()
        .map(|(n, t)| (n.to_string(), d(t)))
        .collect();
    assert_eq!(sections, want, "sections of {what}");
    let money = [
        ("subtotal", &inv["subtotal"], e.subtotal),
        ("net", &inv["net"], e.subtotal),
        ("total", &inv["total"], e.total),
        (
            "credits_applied",
            &inv["credits_applied"],
            e.credits_applied,
        ),
        ("amount_due", &inv["amount_due"], e.amount_due),
        (
            "brought_forward",
            &inv["brought_forward"],
            e.brought_forward,
        ),
        (
            "carried_forward",
            &inv["carried_forward"],
            e.carried_forward,
        ),
    ];
    for (field, got, want) in money {
        assert_eq!(dec(got), d(want), "{field} of {what}");
    }
    let vat: Decimal = inv["taxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["amount"]))
        .sum();
    assert_eq!(vat, d(e.vat), "VAT of {what}");
    let payments: Vec<(String, Decimal)> = inv["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["reference"].as_str().unwrap().to_string(),
                dec(&p["amount"]),
            )
        })
        .collect();
    let want: Vec<(String, Decimal)> = e
        .payments
        .iter()
        .map(|(r, a)| (r.to_string(), d(a)))
        .collect();
    assert_eq!(payments, want, "payments of {what}");
    let paid: Decimal = want.iter().map(|(_, a)| *a).sum();
    assert_eq!(
        dec(&inv["payments_total"]),
        paid,
        "payments_total of {what}"
    );
    match e.prepaid {
        Some((before, after)) => {
            assert_eq!(dec(&inv["prepaid_available"]), d(before), "{what}");
            assert_eq!(dec(&inv["prepaid_remaining"]), d(after), "{what}");
        }
        None => {
            for f in ["prepaid_available", "prepaid_remaining"] {
                assert!(inv[f].is_null() || dec(&inv[f]).is_zero(), "{f} of {what}");
            }
        }
    }
    let issued: chrono::NaiveDate = inv["issue_date"]
        .as_str()
        .unwrap_or_else(|| panic!("no issue date: {what}"))
        .parse()
        .unwrap();
    assert!(
        issued >= issued_between.0 && issued <= issued_between.1,
        "issued {issued}, not between {issued_between:?}: {what}"
    );
    let due: chrono::NaiveDate = inv["due_date"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due,
        issued + chrono::Days::new(e.terms_days),
        "due date = issue date + {} days: {what}",
        e.terms_days
    );
}

/// `beta`'s March invoice bills February's late usage in its `Adjustments` section, on a line
/// naming February, at its net (no discount of March's on it).
pub fn check_adjustments(inv: &Value) {
    let adj = inv["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Adjustments")
        .unwrap_or_else(|| panic!("no Adjustments section: {inv:#}"));
    let lines = adj["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{adj:#}");
    let l = &lines[0];
    assert!(
        l["description"].as_str().unwrap().contains("2017-02"),
        "the adjustment names the period it belongs to: {l:#}"
    );
    assert_eq!(l["product"], "vm.small", "{l:#}");
    assert_eq!(dec(&l["quantity"]), d("20"), "{l:#}");
    assert_eq!(dec(&l["amount"]), d("2.00"), "{l:#}");
    assert!(dec(&l["adjustments"]).is_zero(), "{l:#}");
}

/// Checks a numbered note (JSON as the rater answers it).
pub fn check_note(
    n: &Value,
    e: &ExpectedNote,
    issued_between: (chrono::NaiveDate, chrono::NaiveDate),
) {
    let what = format!("note {}: {n:#}", e.number);
    assert_eq!(n["number"], e.number, "{what}");
    assert_eq!(n["kind"], e.kind, "{what}");
    assert_eq!(n["reason"], e.reason, "{what}");
    assert_eq!(n["corrects"], e.corrects, "{what}");
    assert_eq!(n["account"], e.account, "{what}");
    assert_eq!(n["period_id"], e.period, "{what}");
    assert_eq!(n["currency"], "GBP", "{what}");
    assert_eq!(n["catalog_version"], e.catalog_version, "{what}");
    let lines: Vec<(String, Decimal, Decimal)> = n["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["lines"].as_array().unwrap())
        .map(|l| {
            (
                l["product"].as_str().unwrap().to_string(),
                dec(&l["quantity"]),
                dec(&l["amount"]),
            )
        })
        .collect();
    let want: Vec<(String, Decimal, Decimal)> = e
        .lines
        .iter()
        .map(|(p, q, a)| (p.to_string(), d(q), d(a)))
        .collect();
    assert_eq!(lines, want, "lines of {what}");
    assert_eq!(dec(&n["net"]), d(e.net), "net of {what}");
    let vat: Decimal = n["taxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["amount"]))
        .sum();
    assert_eq!(vat, d(e.vat), "VAT of {what}");
    assert_eq!(dec(&n["total"]), d(e.total), "total of {what}");
    let issued: chrono::NaiveDate = n["issue_date"].as_str().unwrap().parse().unwrap();
    assert!(
        issued >= issued_between.0 && issued <= issued_between.1,
        "issued {issued}: {what}"
    );
}

/// Checks an account's history (documents, newest first) against [`history`].
pub fn check_history(account: &str, docs: &Value) {
    let got: Vec<(String, String, String, Decimal)> = docs
        .as_array()
        .unwrap_or_else(|| panic!("history of {account} is not a list: {docs}"))
        .iter()
        .map(|doc| {
            (
                doc["kind"].as_str().unwrap().to_string(),
                doc["number"].as_str().unwrap().to_string(),
                doc["period"].as_str().unwrap().to_string(),
                dec(&doc["total"]),
            )
        })
        .collect();
    let want: Vec<(String, String, String, Decimal)> = history(account)
        .into_iter()
        .map(|(k, n, p, t)| (k.to_string(), n.to_string(), p.to_string(), d(t)))
        .collect();
    assert_eq!(got, want, "history of {account}, newest first: {docs:#}");
    for doc in docs.as_array().unwrap() {
        if doc["kind"] != "invoice" {
            assert_eq!(doc["corrects"], "e2e-000001", "{doc}");
        }
    }
}

/// The close report's figures: (finalized, already final, skipped, failed) and the invoices
/// issued (account, number).
pub fn check_report(
    report: &Value,
    period: &str,
    counts: (u64, u64, u64, u64),
    issued: &[(&str, &str)],
) {
    assert_eq!(report["period"], period, "{report:#}");
    assert_eq!(report["accounts"], 4, "{report:#}");
    let got = (
        report["finalized"].as_u64().unwrap(),
        report["already_final"].as_u64().unwrap(),
        report["skipped"].as_u64().unwrap(),
        report["failed"].as_u64().unwrap(),
    );
    assert_eq!(got, counts, "{report:#}");
    let got: Vec<(String, String)> = report["issued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["account"].as_str().unwrap().to_string(),
                c["number"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = issued
        .iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect();
    assert_eq!(got, want, "{report:#}");
    // The idle account is the one skipped, unless every account is (a close of a month in
    // which no account had anything to bill).
    let skipped = if counts.2 == 4 {
        serde_json::json!(["acme", "beta", "delta", "gamma"])
    } else if counts.2 > 0 {
        serde_json::json!(["delta"])
    } else {
        serde_json::json!([])
    };
    assert_eq!(report["skipped_accounts"], skipped, "{report:#}");
}

/// The (account, number) pairs a month's close issues.
pub fn issued(period: &str) -> Vec<(&'static str, &'static str)> {
    finals(period)
        .iter()
        .map(|e| (e.account, e.number))
        .collect()
}

/// acme's statement over February 2017 to the day the test runs (its documents are issued
/// the day the test runs), by hand: opening 0.00 (the book's opening balance, February's
/// brought forward); the payments in date order, then the documents in order of issue. Each
/// (kind, reference, amount, balance after):
/// -10.00 (acme-wire-1, 20 Feb) -> -10.00; -17.72 (acme-wire-2, 15 Mar) -> -27.72;
/// invoice e2e-000001 27.72 -> 0.00; debit note 3.60 -> 3.60; invoice e2e-000004 30.24 ->
/// 33.84; invoice e2e-000007 25.44 -> 59.28; credit note -2.52 -> 56.76.
/// Closing 56.76 = April's carried forward 59.28 plus the credit note issued after it.
/// Sums: invoiced 27.72 + 30.24 + 25.44 = 83.40; credited -2.52; debited 3.60; paid 27.72.
pub fn acme_statement() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        ("payment", "acme-wire-1", "-10.00", "-10.00"),
        ("payment", "acme-wire-2", "-17.72", "-27.72"),
        ("invoice", "e2e-000001", "27.72", "0.00"),
        ("debit_note", "e2e-N000001", "3.60", "3.60"),
        ("invoice", "e2e-000004", "30.24", "33.84"),
        ("invoice", "e2e-000007", "25.44", "59.28"),
        ("credit_note", "e2e-N000002", "-2.52", "56.76"),
    ]
}

/// acme's statement sums: (opening, invoiced, credited, debited, paid, closing).
pub const ACME_STATEMENT_SUMS: [&str; 6] = ["0.00", "83.40", "-2.52", "3.60", "27.72", "56.76"];
