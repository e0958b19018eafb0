//! Scenario generation: a catalog, an accounts book, a month of usage records and the batches (canonical CSV or JSON Lines bytes) they are delivered in.

use std::collections::BTreeMap;

use chrono::Duration;
use pricing::import::{write_csv_row, write_json_line, Format, CSV_HEADER};
use pricing::{BillingPeriod, Unit, UsageRecord};
use rust_decimal::Decimal;
use serde_json::json;

use super::reference::ModelCatalog;
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

/// One delivery unit: the records it holds (indices into `Scenario::records`) and its bytes.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The idempotency key, or `None` for "identified by the SHA-256 of its content".
    pub key: Option<String>,
    /// The id the rater stores it under (the key, or the content hash).
    pub id: String,
    pub format: Format,
    pub records: Vec<usize>,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    /// 100 to 300 accounts: batches commit in several transactions.
    pub wide: bool,
    pub catalog_json: String,
    pub accounts_json: String,
    pub model: ModelCatalog,
    pub accounts: Vec<String>,
    pub period: BillingPeriod,
    pub records: Vec<UsageRecord>,
    /// The batches of the month, in generation order (delivery shuffles them).
    pub batches: Vec<Batch>,
    /// A batch whose delivery crashes and is never retried: it must stay invisible.
    pub ghost: Option<Batch>,
    /// A batch that arrives after its accounts were finalized: it must be refused.
    pub late: Batch,
    /// A batch reusing the id of a record of a regular batch with another quantity: must be
    /// refused whole.
    pub conflict: Option<Batch>,
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

fn batch(rng: &mut Rng, key: Option<String>, records: Vec<usize>, all: &[UsageRecord]) -> Batch {
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

pub fn scenario(seed: u64, rng: &mut Rng, opts: GenOptions) -> Scenario {
    let (code, minor_units) = *rng.pick(&CURRENCIES);
    let period = BillingPeriod::month(2020 + rng.below(10) as i32, 1 + rng.below(12) as u32)
        .expect("a valid month");

    // Products: each charges 1 to 3 of the meters.
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
    let meters_json: Vec<_> = METERS
        .iter()
        .map(|(id, unit, _, section)| json!({"id": id, "name": id, "unit": unit, "section": section}))
        .collect();

    let mut accounts = Vec::new();
    let mut tax_pct = BTreeMap::new();
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
        tax_pct.insert(id.clone(), tax);
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

    let mut records = Vec::new();
    let n_records = if wide {
        2 * accounts.len() as u64
    } else {
        rng.range(10, 80)
    };
    for i in 0..n_records {
        // A wide scenario gives every account a record first.
        let a = match accounts.get(i as usize).filter(|_| wide) {
            Some(a) => a.clone(),
            None => rng.pick(&accounts).clone(),
        };
        records.push(record(rng, format!("r{i}"), &a, &products, period));
    }
    let mut order: Vec<usize> = (0..records.len()).collect();
    rng.shuffle(&mut order);
    let n_batches = if wide {
        rng.range(1, 3) as usize
    } else {
        rng.range(1, 6.min(records.len() as u64)) as usize
    };
    // Cut points: n_batches non-empty, contiguous pieces of the shuffled records.
    let mut cuts: Vec<usize> = Vec::new();
    while cuts.len() + 1 < n_batches {
        let c = rng.range(1, order.len() as u64 - 1) as usize;
        if !cuts.contains(&c) {
            cuts.push(c);
        }
    }
    cuts.sort_unstable();
    let mut pieces: Vec<Vec<usize>> = Vec::new();
    let mut from = 0;
    for c in cuts.into_iter().chain([order.len()]) {
        pieces.push(order[from..c].to_vec());
        from = c;
    }
    if opts.overlap && pieces.len() > 1 {
        // The same records again in another batch: an exporter re-sending an overlapping window.
        for _ in 0..rng.range(1, 3) {
            let src = rng.below(pieces.len() as u64) as usize;
            let dst = (src + 1 + rng.below(pieces.len() as u64 - 1) as usize) % pieces.len();
            let r = *rng.pick(&pieces[src]);
            if !pieces[dst].contains(&r) {
                pieces[dst].push(r);
            }
        }
    }
    let batches: Vec<Batch> = pieces
        .into_iter()
        .enumerate()
        .map(|(i, recs)| {
            let key = rng.chance(50).then(|| format!("batch-{i}"));
            batch(rng, key, recs, &records)
        })
        .collect();

    // Extra batches with their own records: the ghost (never committed) and the late one.
    let extra = |rng: &mut Rng, name: &str, records: &mut Vec<UsageRecord>| {
        let mut idx = Vec::new();
        let a = rng.pick(&accounts).clone();
        for i in 0..rng.range(1, 5) {
            idx.push(records.len());
            records.push(record(rng, format!("{name}-{i}"), &a, &products, period));
        }
        batch(rng, Some(name.to_string()), idx, records)
    };
    let regular = records.len();
    let ghost = rng.chance(40).then(|| extra(rng, "ghost", &mut records));
    let late = extra(rng, "late", &mut records);
    let with_id: Vec<usize> = (0..regular)
        .filter(|&i| records[i].record_id.is_some())
        .collect();
    let conflict = (!with_id.is_empty()).then(|| {
        let mut copy = records[*rng.pick(&with_id)].clone();
        copy.quantity += Decimal::ONE;
        records.push(copy);
        batch(
            rng,
            Some("conflict".to_string()),
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
        },
        accounts,
        period,
        records,
        batches,
        ghost,
        late,
        conflict,
    }
}
