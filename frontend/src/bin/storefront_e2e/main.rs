//! Test helper for the storefront's "estimate equals invoice" browser test.
//!
//! - `storefront-e2e month-usage --catalog <published json> --link <share link> --period 2017-02
//!   --account <id> --csv <out.csv> --accounts <out.json>`: the canonical CSV of a month of the
//!   shared app's usage and the account book holding its settings and subscriptions;
//! - `storefront-e2e invoice --catalog <json> --accounts <json> --usage <csv> --period 2017-02`:
//!   rates the CSV with the pricing engine and prints each account's invoice total as JSON.
//!
//! `invoice` stands in for the rater's `ratecard rate` CLI until that exists; the browser test
//! uses `ratecard` when it is built (see tests/browser/estimate_invoice.test.mjs).

mod month_usage;

use std::collections::BTreeMap;

use frontend::model::share;
use pricing::period::BillingPeriod;

fn main() {
    if let Err(e) = run() {
        eprintln!("storefront-e2e: {e}");
        std::process::exit(1);
    }
}

fn flags(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let key = k
            .strip_prefix("--")
            .ok_or(format!("expected a --flag, got `{k}`"))?;
        let v = it.next().ok_or(format!("--{key} needs a value"))?;
        m.insert(key.to_string(), v.clone());
    }
    Ok(m)
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args
        .split_first()
        .ok_or("usage: storefront-e2e month-usage|invoice --flags (see the source header)")?;
    let f = flags(rest)?;
    let get = |k: &str| f.get(k).cloned().ok_or(format!("--{k} is required"));
    let catalog =
        pricing::Catalog::from_json(&read(&get("catalog")?)?).map_err(|e| e.to_string())?;
    let period = BillingPeriod::parse(&get("period")?).map_err(|e| e.to_string())?;
    match cmd.as_str() {
        "month-usage" => {
            let link = get("link")?;
            let fragment = link.split_once('#').map(|(_, f)| f).unwrap_or(&link);
            let config = share::from_fragment(fragment)
                .ok_or("the link carries no app")?
                .map_err(|e| e.to_string())?;
            let quote = config
                .validate(&catalog)
                .quote
                .ok_or("the shared app does not validate against this catalog")?;
            let account = get("account")?;
            let (records, acc) = month_usage::month_of_usage(&catalog, &quote, &account, period)
                .map_err(|e| e.to_string())?;
            let csv = month_usage::to_canonical_csv(&records).map_err(|e| e.to_string())?;
            std::fs::write(get("csv")?, csv).map_err(|e| e.to_string())?;
            let book = month_usage::account_book(acc, &format!("storefront-e2e-{}", period.id()));
            let json = serde_json::to_string_pretty(&book).map_err(|e| e.to_string())?;
            std::fs::write(get("accounts")?, json).map_err(|e| e.to_string())?;
            println!("{{\"records\":{}}}", records.len());
        }
        "invoice" => {
            let book: pricing::AccountBook =
                pricing::parse_json(&read(&get("accounts")?)?).map_err(|e| e.to_string())?;
            let usage_text = read(&get("usage")?)?;
            let rated = pricing::import::import_and_rate(
                pricing::import::Format::Csv,
                usage_text.as_bytes(),
                &catalog,
                &Default::default(),
                period,
            )
            .map_err(|e| e.to_string())?;
            let mut out = serde_json::Map::new();
            for a in &book.accounts {
                let inv = pricing::invoice(&catalog, a, period, &rated.usage)
                    .map_err(|e| e.to_string())?;
                out.insert(
                    a.id.clone(),
                    serde_json::json!({ "total": inv.bill.total.to_string(), "net": inv.bill.net.to_string(), "currency": inv.bill.currency }),
                );
            }
            println!("{}", serde_json::Value::Object(out));
        }
        other => return Err(format!("unknown command `{other}`")),
    }
    Ok(())
}
