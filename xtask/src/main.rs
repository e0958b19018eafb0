//! Ratecard's two commands: `cargo xtask demo` (install what is missing, print an estimate and
//! an invoice, serve the storefront) and `cargo xtask test` (every test, lint and template check).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use pricing::SummaryRow;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("estimate") => print_estimate(
            args.get(1)
                .map(String::as_str)
                .unwrap_or("examples/catalogs/cloudstack.json"),
            args.get(2).map(String::as_str).unwrap_or("three-tier-web"),
        ),
        _ => {
            eprintln!(
                "usage: cargo xtask demo [--no-serve] [--port N]\n       cargo xtask test [--quick]\n       cargo xtask estimate [CATALOG] [TEMPLATE]"
            );
            std::process::exit(2);
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// Runs a command, streaming its output; fails with the command line if it fails.
fn run(program: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn demo(args: &[String]) -> Result<()> {
    let serve = !args.iter().any(|a| a == "--no-serve");
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "8080".into());
    run("bash", &[".ci/install", "demo"])?;

    println!(
        "\n== Estimate: the three-tier web app template, priced from the CloudStack catalog ==\n"
    );
    print_estimate("examples/catalogs/cloudstack.json", "three-tier-web")?;

    let store = ".ratecard/demo.redb";
    if Path::new(store).exists() {
        // A fresh store each demo, so the nightly batch is rated, not replayed.
        std::fs::remove_file(store)?;
    }
    let store_arg = format!("embedded:{store}");
    let rate = [
        "run",
        "-q",
        "-p",
        "rater",
        "--bin",
        "ratecard",
        "--",
        "rate",
        "examples/exports/cloudstack-nightly-2017-02-14.json",
        "--catalog",
        "examples/catalogs/cloudstack.json",
        "--accounts",
        "examples/accounts/cloudstack.json",
        "--store",
        &store_arg,
    ];
    println!(
        "\n== Invoice: the example nightly CloudStack export, rated into the embedded store ==\n"
    );
    run("cargo", &rate)?;
    println!("\n== The same batch delivered again is recognised and changes nothing ==\n");
    let again = Command::new("cargo")
        .args(rate)
        .output()
        .context("cannot start cargo")?;
    if !again.status.success() {
        bail!(
            "replaying the batch failed: {}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    let text = String::from_utf8_lossy(&again.stdout);
    let err = String::from_utf8_lossy(&again.stderr);
    for line in err
        .lines()
        .chain(text.lines())
        .filter(|l| l.starts_with("batch "))
        .take(1)
    {
        println!("{line}");
    }

    month_end(&store_arg)?;

    if serve && Path::new("frontend/serve.sh").exists() {
        println!("\n== Storefront ==\n");
        run("bash", &["frontend/serve.sh", &port])?;
    }
    Ok(())
}

/// The month end on the demo store: resellers' customers' usage rated, February closed (every
/// account finalized, numbered), a reseller customer's invoice and its reseller's margin,
/// bu1user1's final invoice (brought forward, the February payment, carried forward), a
/// payment received in March, and March's interim invoice bringing February's balance forward.
fn month_end(store_arg: &str) -> Result<()> {
    let ratecard = |args: &[&str]| -> Result<()> {
        let mut all = vec!["run", "-q", "-p", "rater", "--bin", "ratecard", "--"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--catalog",
            "examples/catalogs/cloudstack.json",
            "--accounts",
            "examples/accounts/cloudstack.json",
            "--store",
            store_arg,
        ]);
        run("cargo", &all)
    };
    println!("\n== Resellers' customers: February usage of Acme's and Nimbus's customers ==\n");
    ratecard(&["rate", "examples/exports/resellers-2017-02.json"])?;
    println!(
        "\n== Month end: February 2017 closed (what the schedule does 72 hours after it ends) ==\n"
    );
    ratecard(&["close", "--period", "2017-02"])?;
    println!("\n== A reseller's customer: acme-shop's invoice, at Acme's prices, in Acme's name and series ==\n");
    ratecard(&["invoice", "--account", "acme-shop", "--period", "2017-02"])?;
    println!("\n== Acme's margin: each line of its customers' invoices against the provider's wholesale statement ==\n");
    ratecard(&["margin", "--reseller", "acme", "--period", "2017-02"])?;
    println!("\n== bu1user1's final February invoice: issued, due, balance carried forward ==\n");
    let pdf = ".ratecard/bu1user1-2017-02.pdf";
    ratecard(&[
        "invoice",
        "--account",
        "bu1user1",
        "--period",
        "2017-02",
        "--pdf",
        pdf,
    ])?;
    println!("\n== February's usage and cost by account and product (and the workbook) ==\n");
    let xlsx = ".ratecard/report-2017-02.xlsx";
    ratecard(&[
        "report",
        "--from",
        "2017-02",
        "--group-by",
        "account",
        "--by",
        "month",
    ])?;
    ratecard(&[
        "report",
        "--from",
        "2017-02",
        "--group-by",
        "account,product",
        "--by",
        "day",
        "--output",
        "xlsx",
        "--out",
        xlsx,
    ])?;
    let full = |p: &str| {
        std::fs::canonicalize(p).map_or_else(|_| p.to_string(), |f| f.display().to_string())
    };
    println!(
        "\nPDF invoice (PDF/A-3 with its EN 16931 e-invoice): {}\nXLSX report: {}",
        full(pdf),
        full(xlsx)
    );
    println!("\n== A payment received in March, then March so far: February's balance brought forward ==\n");
    ratecard(&[
        "payment",
        "--account",
        "bu1user1",
        "--date",
        "2017-03-10",
        "--amount",
        "1000.00",
        "--currency",
        "GBP",
        "--reference",
        "wire-2017-0310",
    ])?;
    ratecard(&["invoice", "--account", "bu1user1", "--period", "2017-03"])?;
    println!("\n== bu1user1's history, newest first ==\n");
    ratecard(&["history", "--account", "bu1user1"])?;
    // The demo closes February now, so its invoice is issued today: the statement runs to it.
    println!(
        "\n== bu1user1's statement, February to today: every invoice and payment, the balance ==\n"
    );
    let statement = ".ratecard/bu1user1-statement.pdf";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("a clock after 1970")?;
    let today = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0)
        .context("a date")?
        .date_naive()
        .to_string();
    ratecard(&[
        "statement",
        "--account",
        "bu1user1",
        "--from",
        "2017-02",
        "--to",
        &today,
        "--pdf",
        statement,
    ])?;
    println!("\nPDF statement: {}", full(statement));
    Ok(())
}

/// Prints the estimate of one of the catalog's starter templates.
fn print_estimate(catalog_path: &str, template: &str) -> Result<()> {
    let text = std::fs::read_to_string(catalog_path).with_context(|| catalog_path.to_string())?;
    let catalog =
        pricing::Catalog::from_json(&text).map_err(|e| anyhow::anyhow!("{catalog_path}: {e}"))?;
    let t = catalog
        .templates
        .iter()
        .find(|t| t.id == template)
        .with_context(|| format!("no template `{template}` in {catalog_path}"))?;
    let quote = pricing::Quote {
        name: t.name.clone(),
        // The demo prices "now" as of a fixed instant, so its output is reproducible.
        at: "2017-02-14T00:00:00Z".parse()?,
        region: catalog.regions.first().map(|r| r.id.clone()),
        sla_tier: catalog.sla_tiers.last().map(|s| s.id.clone()),
        currency: None,
        term: catalog
            .terms
            .iter()
            .find(|t| t.months == 12)
            .map(|t| t.id.clone()),
        tax_jurisdiction: catalog.tax_jurisdictions.first().map(|t| t.id.clone()),
        coupon: None,
        tiers: t.tiers.clone(),
    };
    let e = pricing::estimate(&catalog, &quote).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cur = &e.currency;
    let g = pricing::money::group_thousands;
    println!(
        "{} ({}; catalog {} version {}; SLA {}, term {}, tax {})",
        t.name,
        t.description,
        e.catalog_id,
        e.catalog_version,
        quote.sla_tier.as_deref().unwrap_or("-"),
        quote.term.as_deref().unwrap_or("-"),
        quote.tax_jurisdiction.as_deref().unwrap_or("-")
    );
    println!(
        "{:<58} {:>14} {:>14} {:>16}",
        "", "Hourly", "Monthly", "Yearly"
    );
    for tier in &e.tiers {
        println!("tier {}", tier.name);
        for l in &tier.lines {
            println!(
                "  {:<56} {:>14} {:>14} {:>16}",
                truncate(&l.description, 56),
                format!("{cur} {}", g(l.hourly)),
                format!("{cur} {}", g(l.monthly)),
                format!("{cur} {}", g(l.yearly))
            );
        }
        println!(
            "  {:<56} {:>14} {:>14} {:>16}",
            "tier total",
            format!("{cur} {}", g(tier.hourly)),
            format!("{cur} {}", g(tier.monthly)),
            format!("{cur} {}", g(tier.yearly))
        );
    }
    for row in e.bill.summary_rows() {
        let label = match row {
            SummaryRow::Subtotal(_) => "Subtotal".to_string(),
            SummaryRow::Discount(d) | SummaryRow::SlaCredit(d) => truncate(&d.description, 58),
            SummaryRow::Tax(t) => format!("{} {}%", t.name, t.rate_pct.normalize()),
            // The total is printed below with its hourly and yearly figures; an estimate has
            // no net line and no account rows.
            SummaryRow::Net(_)
            | SummaryRow::Total(_)
            | SummaryRow::CreditsApplied(_)
            | SummaryRow::AmountDue(_)
            | SummaryRow::BroughtForward(_)
            | SummaryRow::Payment { .. }
            | SummaryRow::Payments(_)
            | SummaryRow::DueThisPeriod(_)
            | SummaryRow::CarriedForward(_)
            | SummaryRow::PrepaidRemaining(_) => continue,
        };
        println!("{:<58} {:>14}", label, format!("{cur} {}", g(row.amount())));
    }
    println!(
        "{:<58} {:>14}   (hourly {cur} {}, yearly {cur} {}, one-time {cur} {})",
        "Total per month",
        format!("{cur} {}", g(e.monthly_total)),
        g(e.hourly_total),
        g(e.yearly_total),
        g(e.one_time_total)
    );
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('~');
        t
    }
}

/// Every check, in order; stops at nothing so that one run reports every failure.
fn test(args: &[String]) -> Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    if !quick {
        run("bash", &[".ci/install", "all"])?;
    }
    let mut steps: Vec<(&str, Vec<&str>)> = vec![
        ("format", vec!["cargo", "fmt", "--all", "--check"]),
        (
            "clippy",
            vec![
                "cargo",
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "pricing modules in layers (no file loops)",
            vec!["python3", "xtask/check_layers.py", "shared/src"],
        ),
        (
            "rater modules in layers (no file loops)",
            vec!["python3", "xtask/check_layers.py", "rater/src"],
        ),
        (
            "tests (native, workspace)",
            vec!["cargo", "test", "--workspace"],
        ),
        (
            "pricing tests as wasm (Node)",
            vec![
                "cargo",
                "test",
                "-p",
                "pricing",
                "--target",
                "wasm32-unknown-unknown",
            ],
        ),
    ];
    if Path::new("frontend/src").exists() && Path::new("Trunk.toml").exists() {
        steps.push((
            "clippy (storefront, wasm)",
            vec![
                "cargo",
                "clippy",
                "-p",
                "frontend",
                "--target",
                "wasm32-unknown-unknown",
                "--",
                "-D",
                "warnings",
            ],
        ));
        // The benchmark build's hook is compiled only with the `bench` feature.
        steps.push((
            "clippy (storefront with its benchmark hook, wasm)",
            vec![
                "cargo",
                "clippy",
                "-p",
                "frontend",
                "--target",
                "wasm32-unknown-unknown",
                "--features",
                "bench",
                "--",
                "-D",
                "warnings",
            ],
        ));
    }
    if !quick {
        steps.push(("infrastructure template", vec!["bash", "infra/check.sh"]));
        if Path::new("tests/browser/run.sh").exists() {
            steps.push((
                "storefront in Chromium",
                vec!["bash", "tests/browser/run.sh"],
            ));
        }
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut passed = 0;
    for (name, cmd) in &steps {
        let t = Instant::now();
        eprintln!("\n==> {name}");
        match run(cmd[0], &cmd[1..]) {
            Ok(()) => {
                passed += 1;
                eprintln!("==> {name}: ok in {:.0} s", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                eprintln!(
                    "==> {name}: FAILED in {:.0} s: {e}",
                    t.elapsed().as_secs_f64()
                );
                failed.push(*name);
            }
        }
    }
    println!();
    for f in &failed {
        println!("failed: {f}");
    }
    println!("checks took {:.0} s", started.elapsed().as_secs_f64());
    println!("xtask: {passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}
