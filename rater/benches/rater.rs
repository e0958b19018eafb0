//! Rater benchmark: 1M canonical CSV records through import + rating + aggregation vs parse only, store items per million records, the month's close over their 1,000 accounts, and a generator for the 1 GB streaming run.
//!
//! `cargo bench -p rater --bench rater` runs the 1M measurements (one core, best of 3).
//! `cargo bench -p rater --bench rater -- gen-csv PATH BYTES` writes a canonical CSV export of
//! about BYTES bytes and, beside it, `PATH.accounts.json` with its 1,000 accounts, for
//! measuring the CLI's peak memory with `/usr/bin/time -v` (see BENCHMARKS.md).

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pricing::import::{write_csv_row, Format, ImportOptions, CSV_HEADER};
use pricing::{BillingPeriod, Catalog, Unit, UsageRecord};
use rater::{aggregate, rate_aggregated, Mode, RaterConfig};
use rust_decimal::Decimal;

const CATALOG: &str = include_str!("../../examples/catalogs/cloudstack.json");
const RECORDS: usize = 1_000_000;
const ACCOUNTS: usize = 1_000;
const RUNS: usize = 3;

/// Record `i` of the synthetic export: the pricing benchmark's shape (1,000 accounts x 10
/// resources, 8 charges, hourly records over 28 days), so the figures compare.
fn record(i: usize) -> UsageRecord {
    let charges: [(&str, &str, Unit); 8] = [
        ("copper", "vm.running", Unit::Hours),
        ("silver", "vm.running", Unit::Hours),
        ("bronze", "vm.stopped", Unit::Hours),
        ("large-disk", "volume.gbh", Unit::ByteHours),
        ("root-volume", "volume.gbh", Unit::ByteHours),
        ("network", "net.sent", Unit::Bytes),
        ("public-ip", "ip.hours", Unit::Hours),
        ("isolated-net", "service.hours", Unit::Hours),
    ];
    let start: DateTime<Utc> = "2017-02-01T00:00:00Z".parse().unwrap();
    let (product, meter, unit) = charges[i % charges.len()];
    let resource = i / charges.len() % (ACCOUNTS * 10);
    let hour = (i / 80_000 % 672) as i64;
    let s = start + chrono::Duration::hours(hour);
    UsageRecord {
        record_id: Some(format!("r{i}")),
        account: format!("acct-{}", resource / 10),
        project: Some(format!("proj-{}", resource % 3)),
        resource: format!("res-{resource}"),
        product: product.into(),
        meter: meter.into(),
        quantity: Decimal::new(((i * 7919) % 100_000) as i64 + 1, 4),
        unit,
        start: s,
        end: s + chrono::Duration::hours(1),
        tags: Vec::new(),
        region: None,
    }
}

fn accounts_json() -> String {
    let accounts: Vec<String> = (0..ACCOUNTS)
        .map(|a| format!(r#"{{"id":"acct-{a}","name":"Account {a}"}}"#))
        .collect();
    format!(
        r#"{{"schema_version":1,"version":"bench-1","accounts":[{}]}}"#,
        accounts.join(",")
    )
}

fn csv(n: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n * 140);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for i in 0..n {
        write_csv_row(&record(i), &mut out).expect("csv row");
    }
    out.into_bytes()
}

fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let out = f();
        best = best.min(t.elapsed());
        last = Some(out);
    }
    (best, last.expect("ran"))
}

/// `gen-csv PATH BYTES [tagged]`: with `tagged`, each resource's records carry two tags
/// (`env:prod` or `env:dev`, and one of seven `team:` tags), the same on all of them, as an
/// export of tagged VMs would: what keeping tags with the usage costs in items and time.
fn gen_csv(path: &str, bytes_target: u64, tagged: bool) {
    let mut f =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    writeln!(f, "{CSV_HEADER}").unwrap();
    let (mut written, mut i, mut line) = (0u64, 0usize, String::new());
    while written < bytes_target {
        line.clear();
        let mut r = record(i);
        if tagged {
            // The resource `record` gives record i (8 charges per resource).
            let res = i / 8 % (ACCOUNTS * 10);
            let env = if res % 4 == 0 { "dev" } else { "prod" };
            r.tags = vec![format!("env:{env}"), format!("team:t{}", res % 7)];
        }
        write_csv_row(&r, &mut line).expect("csv row");
        f.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        i += 1;
    }
    f.flush().unwrap();
    std::fs::write(format!("{path}.accounts.json"), accounts_json()).unwrap();
    eprintln!("wrote {path}: {i} records, {written} bytes; accounts in {path}.accounts.json");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(p) = args.iter().position(|a| a == "gen-csv") {
        let path = args.get(p + 1).expect("gen-csv PATH BYTES");
        let bytes = args
            .get(p + 2)
            .and_then(|b| b.parse().ok())
            .expect("gen-csv PATH BYTES");
        let tagged = args.get(p + 3).is_some_and(|t| t == "tagged");
        return gen_csv(path, bytes, tagged);
    }
    let catalog = Catalog::from_json(CATALOG).unwrap();
    let config = RaterConfig::from_json(CATALOG, &accounts_json(), "bench").unwrap();
    let period = BillingPeriod::parse("2017-02").unwrap();
    let opts = ImportOptions::default();
    let data = csv(RECORDS);
    let mb = data.len() as f64 / 1e6;
    println!("{RECORDS} canonical CSV records, {mb:.1} MB; best of {RUNS}, one thread");

    let (parse, n) = best(|| {
        let mut n = 0u64;
        // The borrowing importer, as `import_and_rate` uses: the cheapest full parse, so the
        // ratio below is not flattered by a slower baseline (the owning `import` clones each
        // record, about 0.1 s more per million).
        pricing::import::import_each(Format::Csv, data.as_slice(), &catalog, &opts, |_, r| {
            black_box(r);
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    });
    assert_eq!(n as usize, RECORDS);
    let (engine, rated) = best(|| {
        pricing::import::import_and_rate(Format::Csv, data.as_slice(), &catalog, &opts, period)
            .unwrap()
    });
    let (full, batch) = best(|| {
        aggregate(
            &config,
            Some(Format::Csv),
            data.as_slice(),
            Some(period),
            None,
        )
        .unwrap()
    });
    assert_eq!(rated.usage, batch.usage());
    let rate = |d: Duration| RECORDS as f64 / d.as_secs_f64() / 1e6;
    println!(
        "| parse only (pricing::import::import_each, records borrowed and dropped) | {:.3} s | {:.2} M records/s | 1.00x |",
        parse.as_secs_f64(),
        rate(parse)
    );
    println!(
        "| import + rating + aggregation (pricing::import::import_and_rate) | {:.3} s | {:.2} M records/s | {:.2}x |",
        engine.as_secs_f64(),
        rate(engine),
        engine.as_secs_f64() / parse.as_secs_f64()
    );
    println!(
        "| rater::aggregate (adds SHA-256 of the bytes and account checks) | {:.3} s | {:.2} M records/s | {:.2}x |",
        full.as_secs_f64(),
        rate(full),
        full.as_secs_f64() / parse.as_secs_f64()
    );

    let chunks = batch.chunks.clone();
    let chunk_bytes: usize = chunks.iter().map(|c| c.body.len()).sum();
    println!(
        "| usage totals | {} | store items (chunks) per {RECORDS} records | {} ({:.1} MB) |",
        batch.usage_totals,
        chunks.len(),
        chunk_bytes as f64 / 1e6
    );

    // Write the batch into an embedded store, as the CLI does (ledger, chunks, commit).
    let dir = tempfile::tempdir().unwrap();
    let store = rater::EmbeddedStore::open(&dir.path().join("bench.redb")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let resp = rt
        .block_on(rate_aggregated(
            &store,
            &config,
            batch,
            None,
            Mode::Interim,
            Some("acct-0"),
            &|pass| {
                rater::aggregate_pass(
                    &config,
                    Some(Format::Csv),
                    data.as_slice(),
                    Some(period),
                    None,
                    pass,
                )
            },
        ))
        .unwrap();
    println!(
        "| storing the batch in the embedded store + one interim invoice | {:.3} s | {} usage items written |",
        t.elapsed().as_secs_f64(),
        resp.usage_items
    );

    // The month's close over those 1,000 accounts: each one's usage merged and priced, its
    // statement read, its final invoice numbered and written; then the close again, which
    // finds every account final.
    let how = rater::invoices::Finalizing::default();
    let t = Instant::now();
    let report = rt
        .block_on(rater::month::close(&store, &config, period, how))
        .unwrap();
    let closed = t.elapsed();
    assert_eq!((report.finalized, report.failed), (ACCOUNTS as u64, 0));
    let t = Instant::now();
    let again = rt
        .block_on(rater::month::close(&store, &config, period, how))
        .unwrap();
    let rerun = t.elapsed();
    assert_eq!(again.already_final, ACCOUNTS as u64);
    println!(
        "| closing the month on the embedded store: {ACCOUNTS} accounts finalized | {:.3} s | {:.0} accounts/s | rerun (all final): {:.3} s |",
        closed.as_secs_f64(),
        ACCOUNTS as f64 / closed.as_secs_f64(),
        rerun.as_secs_f64()
    );
}
