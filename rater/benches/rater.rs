//! Rater benchmark: 1M canonical CSV records through import + rating + aggregation vs parse only, store items per million records, the month's close over their 1,000 accounts, and a generator for the 1 GB streaming run.
//!
//! `cargo bench -p rater --bench rater` runs the 1M measurements (one core, best of 3).
//! `cargo bench -p rater --bench rater -- gen-csv PATH BYTES` writes a canonical CSV export of
//! about BYTES bytes and, beside it, `PATH.accounts.json` with its 1,000 accounts, for
//! measuring the CLI's peak memory with `/usr/bin/time -v` (see BENCHMARKS.md).
//! `cargo bench -p rater --bench rater -- shards PATH SHARD_BYTES` rates such a file as the
//! exports trigger would, once whole and once cut in shards of SHARD_BYTES (`rater::shards`),
//! each into a fresh embedded store, the object served from the local file: the time of the
//! cut, of each shard's check and rating, and the whole export's, on one core.
//! `cargo bench -p rater --bench rater -- once` runs one `rater::aggregate` pass over the
//! million records, for `valgrind --tool=callgrind` (instructions, steady on a noisy host).

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

/// `once`: one `rater::aggregate` pass over the million records and nothing else, for counting
/// its instructions, which a noisy shared host does not change (BENCHMARKS.md):
/// `valgrind --tool=callgrind --toggle-collect='rater::aggregate::aggregate_pass*' BENCH once`.
fn once() {
    let config = RaterConfig::from_json(CATALOG, &accounts_json(), "bench").unwrap();
    let period = BillingPeriod::parse("2017-02").unwrap();
    let data = csv(RECORDS);
    let batch = aggregate(
        &config,
        Some(Format::Csv),
        data.as_slice(),
        Some(period),
        None,
    )
    .unwrap();
    assert_eq!(batch.records as usize, RECORDS);
    println!("{RECORDS} records, {} usage totals", batch.usage_totals);
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

/// An exports bucket holding one local file (ranges read from it), with an in-memory shard
/// queue: what the shard module does costs the same as with S3, less the network.
#[derive(Clone)]
struct FileObjects {
    path: std::path::PathBuf,
    size: u64,
    shard_bytes: Option<u64>,
    queue: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl rater::objects::Objects for FileObjects {
    async fn head(
        &self,
        _: &rater::objects::ObjectLoc,
    ) -> Result<Option<rater::objects::ObjectMeta>, rater::error::ExportProblem> {
        Ok(Some(rater::objects::ObjectMeta {
            size: self.size,
            etag: "\"bench\"".into(),
            version_id: None,
            checksum: None,
        }))
    }

    fn get_range(
        &self,
        _: rater::objects::ObjectLoc,
        _: String,
        start: u64,
        end: u64,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, rater::error::ExportProblem>> + Send + 'static
    {
        let path = self.path.clone();
        async move {
            use std::io::{Read, Seek};
            let mut f = std::fs::File::open(path).unwrap();
            f.seek(std::io::SeekFrom::Start(start)).unwrap();
            let mut buf = vec![0; (end - start) as usize];
            f.read_exact(&mut buf).unwrap();
            Ok(buf)
        }
    }

    async fn put(
        &self,
        _: &rater::objects::ObjectLoc,
        _: Vec<u8>,
        _: &str,
    ) -> Result<(), rater::error::ExportProblem> {
        Ok(())
    }

    fn shard_bytes(&self) -> Option<u64> {
        self.shard_bytes
    }

    async fn enqueue(&self, messages: Vec<String>) -> Result<(), rater::error::ExportProblem> {
        self.queue.lock().unwrap().extend(messages);
        Ok(())
    }
}

/// `shards PATH SHARD_BYTES`: see the module docs.
fn shards(path: &str, shard_bytes: u64) {
    let accounts = std::fs::read_to_string(format!("{path}.accounts.json")).unwrap();
    let config = RaterConfig::from_json(CATALOG, &accounts, "bench").unwrap();
    let size = std::fs::metadata(path).unwrap().len();
    // One worker: the figures are one core's, as a 512 MB function has less than one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let key = "exports/canonical/2017-02 bench.csv";
    let loc = rater::objects::ObjectLoc {
        bucket: "bench".into(),
        key: key.into(),
        version_id: None,
    };
    let event: rater::exports::S3Event = serde_json::from_value(serde_json::json!({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "bench"}, "object": {"key": key}}
    }]}))
    .unwrap();
    let mb = size as f64 / 1e6;
    println!(
        "{path}: {mb:.0} MB; shards of {} MB",
        shard_bytes as f64 / 1e6
    );
    rt.block_on(async {
        // Whole, as the trigger rates an export below the shard size.
        let dir = tempfile::tempdir().unwrap();
        let store = rater::EmbeddedStore::open(&dir.path().join("whole.redb")).unwrap();
        let whole = FileObjects {
            path: path.into(),
            size,
            shard_bytes: None,
            queue: Default::default(),
        };
        let t = Instant::now();
        let out = rater::exports::rate_and_report(&store, &config, &whole, &loc)
            .await
            .unwrap();
        let whole_s = t.elapsed().as_secs_f64();
        let records = out.records.unwrap();
        println!("| whole (one invocation) | {whole_s:.1} s | {records} records |");
        let whole_store = store;
        // Sharded: the trigger's cut, then every message, one after the other.
        let dir = tempfile::tempdir().unwrap();
        let store = rater::EmbeddedStore::open(&dir.path().join("shards.redb")).unwrap();
        let cut = FileObjects {
            shard_bytes: Some(shard_bytes),
            ..whole.clone()
        };
        let t = Instant::now();
        let out = rater::shards::handle_s3_event(&store, &config, &cut, event)
            .await
            .unwrap();
        println!(
            "| trigger: plan {} shards, status item, messages | {:.3} s | |",
            out[0].shards.unwrap(),
            t.elapsed().as_secs_f64()
        );
        let (mut check, mut rate) = (Vec::new(), Vec::new());
        loop {
            let messages = std::mem::take(&mut *cut.queue.lock().unwrap());
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let msg: rater::shards::ShardMessage = serde_json::from_str(&m).unwrap();
                let t = Instant::now();
                rater::shards::handle(&store, &config, &cut, &msg)
                    .await
                    .unwrap();
                let s = t.elapsed().as_secs_f64();
                match msg.step {
                    rater::shards::Step::Check => check.push(s),
                    rater::shards::Step::Rate => rate.push(s),
                }
            }
        }
        let list = |v: &[f64]| v.iter().map(|s| format!("{s:.1}")).collect::<Vec<_>>().join(", ");
        let sum = |v: &[f64]| v.iter().sum::<f64>();
        println!("| check round, per shard | {} s | sum {:.1} s |", list(&check), sum(&check));
        println!("| rate round, per shard | {} s | sum {:.1} s |", list(&rate), sum(&rate));
        println!(
            "| sharded, all invocations | {:.1} s of CPU ({:.2}x whole); with one invocation per shard at once, {:.1} s of wall time |",
            sum(&check) + sum(&rate),
            (sum(&check) + sum(&rate)) / whole_s,
            check.iter().cloned().fold(0.0, f64::max) + rate.iter().cloned().fold(0.0, f64::max)
        );
        let status = rater::shards::status(&store, &cut, &loc, config.now_s())
            .await
            .unwrap();
        assert_eq!(status["status"], "rated", "{status}");
        assert_eq!(status["records"].as_u64(), Some(records), "{status}");
        let period = BillingPeriod::parse("2017-02").unwrap();
        for account in ["acct-0", "acct-499", "acct-999"] {
            let a = rater::invoice_for(&whole_store, &config, account, period).await.unwrap();
            let b = rater::invoice_for(&store, &config, account, period).await.unwrap();
            assert_eq!(a.bill.total, b.bill.total, "{account}: sharded bills what whole bills");
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(p) = args.iter().position(|a| a == "shards") {
        let path = args.get(p + 1).expect("shards PATH SHARD_BYTES");
        let bytes = args
            .get(p + 2)
            .and_then(|b| b.parse().ok())
            .expect("shards PATH SHARD_BYTES");
        return shards(path, bytes);
    }
    if let Some(p) = args.iter().position(|a| a == "gen-csv") {
        let path = args.get(p + 1).expect("gen-csv PATH BYTES");
        let bytes = args
            .get(p + 2)
            .and_then(|b| b.parse().ok())
            .expect("gen-csv PATH BYTES");
        let tagged = args.get(p + 3).is_some_and(|t| t == "tagged");
        return gen_csv(path, bytes, tagged);
    }
    if args.iter().any(|a| a == "once") {
        return once();
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
