//! Scenario generation: a catalog, an accounts book, a month of usage records and the batches (canonical CSV or JSON Lines bytes) they are delivered in.

use std::collections::BTreeMap;

use chrono::Duration;
use pricing::import::{write_csv_row, write_json_line, Format, CSV_HEADER};
use pricing::{BillingPeriod, Unit, UsageRecord};
use rust_decimal::Decimal;
use serde_json::json;

use rater::month::PaymentInput;

use super::reference::{ModelBook, ModelCatalog};
use super::rng::Rng;

/// Currencies by minor units: 0 (JPY, KRW), 2 (GBP, EUR, USD), 3 (BHD, KWD).
const CURRENCIES: [(&str, u32); 7] = [
    ("JPY", 0),
    ("KRW", 0),
    ("GBP", 2),
    ("EUR", 2),
    ("USD", 2),
    ("BHD", 3),
    ("KWD", 3),
];

/// (meter, its unit, the unit records are sent in, section).
const METERS: [(&str, Unit, Unit, &str); 3] = [
    ("vm.hours", Unit::Hours, Unit::Hours, "Compute"),
    ("net.out", Unit::Gigabytes, Unit::Bytes, "Network"),
    ("api.calls", Unit::Requests, Unit::Requests, "Requests"),
];

/// Tax rates drawn for accounts, in percent; `None` is an untaxed account.
const TAX_PCT: [Option<(i64, u32)>; 5] = [
    None,
    Some((20, 0)),
    Some((75, 1)),
    Some((21, 0)),
    Some((5, 0)),
];

pub const ISSUER: &str = "sim";

/// Months a scenario spans: 2 or 3 consecutive ones (the balance chain runs across two closes
/// or more), a wide scenario 2 (it has hundreds of accounts to close each month).
const MONTHS_MAX: u64 = 3;

/// One delivery unit: the records it holds (indices into `Scenario::records`) and its bytes.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The idempotency key, or `None` for "identified by the SHA-256 of its content".
    pub key: Option<String>,
    /// The id the rater stores it under (the key, or the content hash).
    pub id: String,
    /// The month (index into `Scenario::months`) its records are in and its request names.
    pub month: usize,
    pub format: Format,
    pub records: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// A payment as sent, and what must come of it. The expectation is fixed when generated,
/// because every payment here is sent while its month is open; payments into a closed month
/// are drawn by the driver, which knows which accounts were finalized.
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub input: PaymentInput,
    pub expect: PaymentExpect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentExpect {
    /// A new payment: recorded, and on its month's final invoice.
    Recorded,
    /// The same payment again (its amount maybe written with another number of trailing
    /// zeros): a no-op that writes nothing.
    Again,
    /// Refused before anything is written, with this error code.
    Refused(&'static str),
}

/// One month of the scenario.
#[derive(Debug, Clone)]
pub struct Month {
    pub period: BillingPeriod,
    /// Its regular batches (indices into `Scenario::batches`).
    pub batches: Vec<usize>,
    /// Payments sent while the month is open, in sending order.
    pub payments: Vec<PaymentEvent>,
    /// A batch for an account with usage in the month, sent after its close: refused.
    pub late: Option<Batch>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    /// 100 to 300 accounts: batches commit in several transactions.
    pub wide: bool,
    pub catalog_json: String,
    pub accounts_json: String,
    pub model: ModelCatalog,
    pub currency: String,
    pub accounts: Vec<String>,
    pub months: Vec<Month>,
    pub records: Vec<UsageRecord>,
    /// The regular batches of every month, month by month (delivery shuffles them).
    pub batches: Vec<Batch>,
    /// A batch whose delivery crashes and is never retried: it must stay invisible.
    pub ghost: Option<Batch>,
    /// A batch reusing the id of a record of a regular batch with another quantity: must be
    /// refused whole.
    pub conflict: Option<Batch>,
}

impl Scenario {
    pub fn period(&self, month: usize) -> BillingPeriod {
        self.months[month].period
    }
}

fn price(rng: &mut Rng) -> Decimal {
    // 0 to 4 decimals, small and large: 0.0001 to 99.99.
    let scale = rng.below(5) as u32;
    Decimal::new(rng.range(1, 9_999) as i64, scale)
}

fn record(
    rng: &mut Rng,
    id: String,
    account: &str,
    products: &[(String, Vec<usize>)],
    period: BillingPeriod,
) -> UsageRecord {
    let (product, meters) = rng.pick(products);
    let (meter, _, unit, _) = METERS[*rng.pick(meters)];
    let quantity = match unit {
        Unit::Hours => Decimal::new(rng.below(2_400) as i64, 2),
        // Whole MiB, so that bytes -> GB is an exact decimal in both the model and the rater.
        Unit::Bytes => Decimal::from(rng.below(8_192) * 1024 * 1024),
        _ => Decimal::from(rng.below(100_000)),
    };
    let seconds = i64::from(period.days_in_month()) * 86_400 - 3_600;
    let start = period.start + Duration::seconds(rng.below(seconds as u64) as i64);
    // Most exporters give ids; some records carry none (counted as delivered).
    let record_id = (!rng.chance(15)).then_some(id);
    UsageRecord {
        record_id,
        account: account.to_string(),
        project: None,
        resource: format!("res-{}", rng.below(6)),
        product: product.clone(),
        meter: meter.to_string(),
        quantity,
        unit,
        start,
        end: start + Duration::hours(1),
        tags: Vec::new(),
        region: None,
    }
}

pub fn encode(records: &[&UsageRecord], format: Format) -> Vec<u8> {
    let mut out = String::new();
    if format == Format::Csv {
        out.push_str(CSV_HEADER);
        out.push('\n');
    }
    for r in records {
        match format {
            Format::Csv => write_csv_row(r, &mut out).expect("generated records are representable"),
            _ => write_json_line(r, &mut out),
        }
    }
    out.into_bytes()
}

fn batch(
    rng: &mut Rng,
    key: Option<String>,
    month: usize,
    records: Vec<usize>,
    all: &[UsageRecord],
) -> Batch {
    let format = if rng.chance(50) {
        Format::Csv
    } else {
        Format::JsonLines
    };
    let refs: Vec<&UsageRecord> = records.iter().map(|&i| &all[i]).collect();
    let bytes = encode(&refs, format);
    let id = key.clone().unwrap_or_else(|| rater::sha256_hex(&bytes));
    Batch {
        key,
        id,
        month,
        format,
        records,
        bytes,
    }
}

/// Options that change what is generated.
#[derive(Debug, Clone, Copy)]
pub struct GenOptions {
    /// Put some records (same id, same content) into a second batch as well.
    pub overlap: bool,
}

impl Default for GenOptions {
    fn default() -> GenOptions {
        GenOptions { overlap: true }
    }
}

/// An amount of money in minor units, of 1 to 6 digits (so that it is sometimes more than
/// an invoice, sometimes less), as a decimal of the currency's scale.
pub fn money(rng: &mut Rng, minor_units: u32) -> Decimal {
    let digits = rng.range(1, 6) as u32;
    Decimal::new(rng.range(1, 10u64.pow(digits) - 1) as i64, minor_units)
}

/// The accounts book's opening figures of one account: prepaid credit for two in five,
/// an opening balance (owed, or in the customer's favour) for one in four, now and then
/// with a digit more than the currency has (the statement rounds it once), and payment terms.
fn book(rng: &mut Rng, minor_units: u32) -> ModelBook {
    let amount = |rng: &mut Rng| {
        let mut a = money(rng, minor_units);
        if rng.chance(15) {
            // One digit below the minor unit: 12.345 in GBP.
            a = a * Decimal::TEN + Decimal::new(rng.range(1, 9) as i64, minor_units + 1);
            a.rescale(minor_units + 1);
        }
        a
    };
    let prepaid = if rng.chance(40) {
        let a = amount(rng);
        // A negative credit counts as none.
        if rng.chance(5) {
            -a
        } else {
            a
        }
    } else {
        Decimal::ZERO
    };
    let brought_forward = if rng.chance(25) {
        let a = amount(rng);
        if rng.chance(30) {
            -a
        } else {
            a
        }
    } else {
        Decimal::ZERO
    };
    let terms_days = if rng.chance(30) {
        rng.below(121) as u32
    } else {
        pricing::invoice::PAYMENT_TERMS_DAYS_DEFAULT
    };
    ModelBook {
        prepaid,
        brought_forward,
        terms_days,
    }
}

/// The payments sent while month `m` is open: new ones (for any account, with or without
/// usage), the same ones again, and refused ones of every kind.
fn payments(
    rng: &mut Rng,
    m: usize,
    period: BillingPeriod,
    accounts: &[String],
    (currency, minor_units): (&str, u32),
    sent: &mut Vec<PaymentInput>,
) -> Vec<PaymentEvent> {
    let mut out = Vec::new();
    let n = if accounts.len() > 4 {
        rng.range(2, 8)
    } else {
        rng.range(0, 6)
    };
    for i in 0..n {
        let seconds = i64::from(period.days_in_month()) * 86_400;
        let fresh = |rng: &mut Rng| PaymentInput {
            account: rng.pick(accounts).clone(),
            date: period.start + Duration::seconds(rng.below(seconds as u64) as i64),
            amount: money(rng, minor_units),
            currency: currency.to_string(),
            reference: format!("pay-{m}-{i}"),
            payee: None,
        };
        let kind = rng.below(100);
        let ev = if kind < 55 || sent.is_empty() && kind < 75 {
            let p = fresh(rng);
            sent.push(p.clone());
            PaymentEvent {
                input: p,
                expect: PaymentExpect::Recorded,
            }
        } else if kind < 75 {
            // The same payment again (maybe of a month already closed: still a no-op).
            let mut p = rng.pick(sent).clone();
            if rng.chance(40) {
                let s = p.amount.scale();
                p.amount.rescale(s + 1);
            }
            PaymentEvent {
                input: p,
                expect: PaymentExpect::Again,
            }
        } else {
            let mut p = fresh(rng);
            let code = match rng.below(8) {
                0 if !sent.is_empty() => {
                    // Another payment under a reference already used.
                    let first = rng.pick(sent).clone();
                    p.account = first.account;
                    p.reference = first.reference;
                    p.amount = first.amount + Decimal::new(1, minor_units);
                    "payment_conflict"
                }
                1 => {
                    p.amount = Decimal::ZERO;
                    "bad_request"
                }
                2 => {
                    p.amount = -p.amount;
                    "bad_request"
                }
                3 => {
                    p.amount += Decimal::new(1, minor_units + 1);
                    "bad_request"
                }
                4 => {
                    p.currency = CURRENCIES
                        .iter()
                        .map(|c| c.0)
                        .find(|&c| c != currency)
                        .expect("another currency")
                        .to_string();
                    "bad_request"
                }
                5 => {
                    p.account = "nobody".to_string();
                    "unknown_account"
                }
                6 => {
                    p.reference = String::new();
                    "bad_request"
                }
                _ => {
                    p.reference = if rng.chance(50) {
                        "r".repeat(rater::limits::PAYMENT_REFERENCE_BYTES_MAX + 1)
                    } else {
                        format!("réf-{m}-{i}")
                    };
                    "bad_request"
                }
            };
            PaymentEvent {
                input: p,
                expect: PaymentExpect::Refused(code),
            }
        };
        out.push(ev);
    }
    out
}

/// A batch of 1 to 4 new records of `account` in month `m`, under the key `name`.
fn extra(
    rng: &mut Rng,
    name: &str,
    m: usize,
    account: String,
    products: &[(String, Vec<usize>)],
    period: BillingPeriod,
    records: &mut Vec<UsageRecord>,
) -> Batch {
    let mut idx = Vec::new();
    for i in 0..rng.range(1, 4) {
        idx.push(records.len());
        records.push(record(
            rng,
            format!("{name}-{i}"),
            &account,
            products,
            period,
        ));
    }
    batch(rng, Some(name.to_string()), m, idx, records)
}

/// Cuts `order` into `n` non-empty, contiguous pieces.
fn pieces(rng: &mut Rng, order: &[usize], n: usize) -> Vec<Vec<usize>> {
    let mut cuts: Vec<usize> = Vec::new();
    while cuts.len() + 1 < n {
        let c = rng.range(1, order.len() as u64 - 1) as usize;
        if !cuts.contains(&c) {
            cuts.push(c);
        }
    }
    cuts.sort_unstable();
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut from = 0;
    for c in cuts.into_iter().chain([order.len()]) {
        out.push(order[from..c].to_vec());
        from = c;
    }
    out
}

/// The catalog: 1 to 4 products, each charging 1 to 3 of the meters at a per-unit price.
/// Returns its products (id, meter indices), prices and the JSON of products and meters.
#[allow(clippy::type_complexity)]
fn products(
    rng: &mut Rng,
) -> (
    Vec<(String, Vec<usize>)>,
    BTreeMap<(String, String), Decimal>,
    Vec<serde_json::Value>,
) {
    let mut products: Vec<(String, Vec<usize>)> = Vec::new();
    let mut prices = BTreeMap::new();
    let mut products_json = Vec::new();
    for p in 0..rng.range(1, 4) {
        let id = format!("prod-{p}");
        let mut meters: Vec<usize> = (0..METERS.len()).filter(|_| rng.chance(60)).collect();
        if meters.is_empty() {
            meters.push(rng.below(METERS.len() as u64) as usize);
        }
        let mut charges = Vec::new();
        for &m in &meters {
            let unit_price = price(rng);
            prices.insert((id.clone(), METERS[m].0.to_string()), unit_price);
            charges.push(json!({"meter": METERS[m].0, "price": {"model": "per_unit", "unit_price": unit_price.to_string()}}));
        }
        products_json.push(json!({"id": id, "name": format!("Product {p}"), "category": "other", "type": "metered", "charges": charges}));
        products.push((id, meters));
    }
    (products, prices, products_json)
}

pub fn scenario(seed: u64, rng: &mut Rng, opts: GenOptions) -> Scenario {
    let (code, minor_units) = *rng.pick(&CURRENCIES);
    let first = BillingPeriod::month(2020 + rng.below(10) as i32, 1 + rng.below(12) as u32)
        .expect("a valid month");
    let (products, prices, products_json) = products(rng);
    let meters_json: Vec<_> = METERS
        .iter()
        .map(|(id, unit, _, section)| json!({"id": id, "name": id, "unit": unit, "section": section}))
        .collect();

    let mut accounts = Vec::new();
    let mut tax_pct = BTreeMap::new();
    let mut books = BTreeMap::new();
    let mut accounts_json = Vec::new();
    let mut jurisdictions = Vec::new();
    // One scenario in twelve is wide: 100 to 300 accounts, so that its batches span more
    // accounts than one commit transaction holds (99) and commit in several.
    let wide = rng.chance(8);
    let n_accounts = if wide {
        rng.range(100, 301)
    } else {
        rng.range(1, 4)
    };
    for a in 0..n_accounts {
        let id = format!("acct-{a}");
        let tax = rng.pick(&TAX_PCT).map(|(m, s)| Decimal::new(m, s));
        let mut acc = json!({"id": id, "name": format!("Account {a}")});
        if let Some(pct) = tax {
            let j = format!("tax-{a}");
            jurisdictions.push(json!({"id": j, "name": j, "level": "invoice", "taxes": [{"name": "VAT", "rate_pct": pct.to_string()}]}));
            acc["tax_jurisdiction"] = json!(j);
        }
        let b = book(rng, minor_units);
        if !b.prepaid.is_zero() {
            acc["prepaid_credit"] = json!(b.prepaid.to_string());
        }
        if !b.brought_forward.is_zero() {
            acc["balance_brought_forward"] = json!(b.brought_forward.to_string());
        }
        if b.terms_days != pricing::invoice::PAYMENT_TERMS_DAYS_DEFAULT {
            acc["payment_terms_days"] = json!(b.terms_days);
        }
        tax_pct.insert(id.clone(), tax);
        books.insert(id.clone(), b);
        accounts_json.push(acc);
        accounts.push(id);
    }
    let catalog_json = json!({
        "schema_version": 1,
        "id": "sim",
        "version": format!("sim-{seed}"),
        "name": "Simulated price list",
        "currency": {"code": code, "rounding": "half_up"},
        "sections": ["Compute", "Network", "Requests"],
        "meters": meters_json,
        "products": products_json,
        "tax_jurisdictions": jurisdictions,
    })
    .to_string();
    let accounts_json =
        json!({"schema_version": 1, "version": format!("sim-{seed}"), "accounts": accounts_json})
            .to_string();

    let n_months = if wide { 2 } else { rng.range(2, MONTHS_MAX) } as usize;
    let mut records = Vec::new();
    let mut batches: Vec<Batch> = Vec::new();
    let mut months = Vec::new();
    let mut sent = Vec::new();
    let mut period = first;
    for m in 0..n_months {
        // Some accounts have no usage in a month: the close skips them unless they owe
        // something or paid (one in five; one in ten of a wide scenario's).
        let idle_pct = if wide { 10 } else { 20 };
        let users: Vec<String> = accounts
            .iter()
            .filter(|_| !rng.chance(idle_pct))
            .cloned()
            .collect();
        let mut month_batches = Vec::new();
        if !users.is_empty() {
            let from = records.len();
            let n_records = if wide {
                2 * users.len() as u64
            } else {
                rng.range(5, 40)
            };
            for i in 0..n_records {
                // A wide scenario gives every account with usage a record first.
                let a = match users.get(i as usize).filter(|_| wide) {
                    Some(a) => a.clone(),
                    None => rng.pick(&users).clone(),
                };
                let id = format!("m{m}-r{i}");
                records.push(record(rng, id, &a, &products, period));
            }
            let mut order: Vec<usize> = (from..records.len()).collect();
            rng.shuffle(&mut order);
            let n_batches = if wide {
                rng.range(1, 3) as usize
            } else {
                rng.range(1, 5.min(order.len() as u64)) as usize
            };
            let mut pieces = pieces(rng, &order, n_batches);
            if opts.overlap && pieces.len() > 1 {
                // The same records again in another batch: an exporter re-sending an
                // overlapping window.
                for _ in 0..rng.range(1, 3) {
                    let src = rng.below(pieces.len() as u64) as usize;
                    let dst =
                        (src + 1 + rng.below(pieces.len() as u64 - 1) as usize) % pieces.len();
                    let r = *rng.pick(&pieces[src]);
                    if !pieces[dst].contains(&r) {
                        pieces[dst].push(r);
                    }
                }
            }
            for (i, recs) in pieces.into_iter().enumerate() {
                let key = rng.chance(50).then(|| format!("m{m}-batch-{i}"));
                month_batches.push(batches.len());
                batches.push(batch(rng, key, m, recs, &records));
            }
        }
        // Late usage for an account that surely has a final invoice of the month: one with
        // usage in its batches.
        let late = (!users.is_empty()).then(|| {
            let a = rng.pick(&users).clone();
            let name = format!("late-{m}");
            extra(rng, &name, m, a, &products, period, &mut records)
        });
        let payments = payments(rng, m, period, &accounts, (code, minor_units), &mut sent);
        months.push(Month {
            period,
            batches: month_batches,
            payments,
            late,
        });
        period = period.next();
    }

    // Extra batches with their own records: the ghost (never committed) in a month with
    // usage, and a record id reused with another quantity.
    let regular = records.len();
    let with_usage: Vec<usize> = (0..n_months)
        .filter(|&m| !months[m].batches.is_empty())
        .collect();
    let ghost = (!with_usage.is_empty() && rng.chance(40)).then(|| {
        let m = *rng.pick(&with_usage);
        let a = rng.pick(&accounts).clone();
        extra(
            rng,
            "ghost",
            m,
            a,
            &products,
            months[m].period,
            &mut records,
        )
    });
    let with_id: Vec<usize> = batches
        .iter()
        .flat_map(|b| b.records.iter().copied())
        .filter(|&i| i < regular && records[i].record_id.is_some())
        .collect();
    let conflict = (!with_id.is_empty()).then(|| {
        let r = *rng.pick(&with_id);
        let m = batches
            .iter()
            .find(|b| b.records.contains(&r))
            .expect("the record's batch")
            .month;
        let mut copy = records[r].clone();
        copy.quantity += Decimal::ONE;
        records.push(copy);
        batch(
            rng,
            Some("conflict".to_string()),
            m,
            vec![records.len() - 1],
            &records,
        )
    });
    Scenario {
        wide,
        catalog_json,
        accounts_json,
        model: ModelCatalog {
            minor_units,
            meter_units: METERS
                .iter()
                .map(|(id, u, _, _)| (id.to_string(), *u))
                .collect(),
            prices,
            tax_pct,
            books,
        },
        currency: code.to_string(),
        accounts,
        months,
        records,
        batches,
        ghost,
        conflict,
    }
}
