//! The `ratecard` CLI: rate an export, show or finalize invoices, publish a reseller catalog or the rater's config; glue around the `rater` library.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pricing::{BillingPeriod, Catalog, Invoice};
use rater::import::parse_format_arg;
use rater::objects::ObjectLoc;
use rater::{aggregate_pass, rate_aggregated, Pass, RateResponse};
use rater::{render, DynamoStore, EmbeddedStore, Mode, RaterConfig, RaterError, Store};

/// Exports at least this big get a progress bar (when stderr is a terminal): smaller ones are
/// rated before a bar would be seen.
const PROGRESS_BYTES_MIN: u64 = 8 * 1024 * 1024;

#[derive(Parser)]
#[command(
    name = "ratecard",
    version,
    about = "Rate cloud usage exports into invoices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputKind {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportOutput {
    Table,
    Json,
    Csv,
    Xlsx,
}

/// What a re-rate corrects.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Corrected {
    Catalog,
    Account,
}

#[derive(clap::Args)]
struct StoreArgs {
    /// Where rated usage and invoices live: `embedded:<path>` (a local file) or
    /// `dynamodb:<table>` (AWS, or DynamoDB Local through AWS_ENDPOINT_URL_DYNAMODB).
    #[arg(long, default_value = "embedded:.ratecard/ratecard.redb")]
    store: String,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// Catalog JSON file.
    #[arg(long)]
    catalog: PathBuf,
    /// Accounts JSON file.
    #[arg(long)]
    accounts: PathBuf,
    /// Issuer of final invoice numbers.
    #[arg(long, env = "RATECARD_ISSUER", default_value = "ratecard")]
    issuer: String,
}

#[derive(Subcommand)]
enum Command {
    /// Rate a usage export (exactly once per batch) and print the invoices of its accounts.
    Rate {
        /// The export file (`-` for standard input), or an object `s3://bucket/key` (read with
        /// the usual AWS environment, in ranges; gzip and zstd are decompressed; its batch id
        /// is the object's, as when the bucket's trigger rates it).
        export: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// auto, csv, jsonl, cloudstack or ceilometer.
        #[arg(long, default_value = "auto")]
        format: String,
        /// Billing period (2017-02); the month of the first record when absent.
        #[arg(long)]
        period: Option<String>,
        /// Only this account's records are accepted.
        #[arg(long)]
        account: Option<String>,
        /// Idempotency key of the batch; the SHA-256 of the export when absent.
        #[arg(long)]
        batch_id: Option<String>,
        /// Issue the period's final, numbered invoices after rating.
        #[arg(long = "final")]
        finalize: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
    },
    /// Show an account's invoice for a period (interim unless finalized).
    Invoice {
        #[arg(long)]
        account: String,
        #[arg(long)]
        period: String,
        /// An interim invoice "to date": up to this instant (RFC 3339, or `now`), subscriptions
        /// and fixed fees prorated to it. Without it: the whole period.
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
        /// Also write the invoice as a PDF (PDF/A-3, in its issuer's name and brand) with its
        /// EN 16931 e-invoice embedded as factur-x.xml (a final invoice only).
        #[arg(long, value_name = "FILE.pdf")]
        pdf: Option<PathBuf>,
        /// The PDF without the e-invoice (an interim invoice, a customer outside e-invoicing).
        #[arg(long, requires = "pdf")]
        no_einvoice: bool,
        /// Also write the EN 16931 e-invoice (Cross Industry Invoice XML) alone.
        #[arg(long, value_name = "FILE.xml")]
        xml: Option<PathBuf>,
    },
    /// Issue the final, numbered invoice of an account's period (once).
    Finalize {
        #[arg(long)]
        account: String,
        #[arg(long)]
        period: String,
        /// Finalize although the period has not ended (an operator's override; logged).
        #[arg(long = "override")]
        override_end: bool,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
    },
    /// Close a period: finalize every account period with usage, a subscription, a balance or
    /// a payment in it (idempotent: run it again to finish what a failure left).
    Close {
        #[arg(long)]
        period: String,
        /// Close although the period has not ended (an operator's override).
        #[arg(long = "override")]
        override_end: bool,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        /// Print the close's report as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Record a payment received (idempotent by reference; refused once its period is final).
    Payment {
        #[arg(long)]
        account: String,
        /// When it was received (RFC 3339, or a date: 2017-02-10).
        #[arg(long)]
        date: String,
        #[arg(long)]
        amount: String,
        /// Its currency: the account's invoice currency.
        #[arg(long)]
        currency: String,
        #[arg(long)]
        reference: String,
        /// Paid to an issuer that no longer bills the account (its series, as its documents
        /// are numbered): settles what the customer owes it since it moved away.
        #[arg(long)]
        payee: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// A reseller's margin for a period: each customer's invoice line by line against the
    /// wholesale cost the provider's statement bills the reseller for it.
    Margin {
        #[arg(long)]
        reseller: String,
        #[arg(long)]
        period: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
    },
    /// A usage and cost report: the invoices of a range of days spread over their usage and
    /// grouped (by account, domain, project, resource, product, meter, category, region, cost
    /// code or a tag's value, `tag:KEY`), per day, week or month. A whole period's report adds
    /// up to its invoice.
    Report {
        /// First day (2017-02-01), or a month (2017-02: its first day).
        #[arg(long)]
        from: String,
        /// Last day, inclusive (2017-02-28), or a month (its last day); `from`'s when absent.
        #[arg(long)]
        to: Option<String>,
        /// Comma-separated dimensions (`project,tag:env`); none: one row per day, week or month.
        #[arg(long, default_value = "")]
        group_by: String,
        /// day, week or month.
        #[arg(long, default_value = "month")]
        by: String,
        /// Keep only these: `project=web,db`, `account=acme-000001`, `tag:env=prod`; repeatable.
        #[arg(long = "filter", value_name = "DIMENSION=VALUES")]
        filters: Vec<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: ReportOutput,
        /// Write the report to this file (required for xlsx); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// An account statement: its final invoices, credit and debit notes and payments over a
    /// range of days, each with the balance after it, from the opening to the closing balance.
    Statement {
        #[arg(long)]
        account: String,
        /// First day (2017-02-01), or a month (2017-02: its first day).
        #[arg(long)]
        from: String,
        /// Last day, inclusive, or a month (its last day); `from`'s when absent.
        #[arg(long)]
        to: Option<String>,
        /// Another currency the account has documents in (a former issuer's, before the
        /// customer moved); the account's invoice currency when absent.
        #[arg(long)]
        currency: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
        /// Also write the statement as a PDF/A document in the issuer's name and brand.
        #[arg(long)]
        pdf: Option<PathBuf>,
    },
    /// List an account's final invoices and notes, newest first.
    History {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// Re-rate a closed period under the catalog and accounts given (a corrected version):
    /// issue the difference against its final invoice as a credit or debit note, numbered in
    /// the issuer's note series. Nothing changed: nothing issued. The invoice is never edited.
    Rerate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        period: String,
        /// What was corrected: `catalog` (prices) or `account` (a discount, a subscription).
        #[arg(long, value_enum, default_value = "catalog")]
        reason: Corrected,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
    },
    /// Show the credit and debit notes of an account's final invoice.
    Notes {
        #[arg(long)]
        account: String,
        #[arg(long)]
        period: String,
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum, default_value = "table")]
        output: OutputKind,
    },
    /// Write a numbered credit or debit note as a PDF (PDF/A-3, in its issuer's name and
    /// brand) with its EN 16931 e-invoice (381 or 383) embedded, or the e-invoice alone.
    Note {
        #[arg(long)]
        account: String,
        #[arg(long)]
        period: String,
        /// The note's number (`ratecard notes` lists them).
        #[arg(long)]
        number: String,
        #[arg(long, value_name = "FILE.pdf")]
        pdf: Option<PathBuf>,
        /// The PDF without the e-invoice.
        #[arg(long, requires = "pdf")]
        no_einvoice: bool,
        #[arg(long, value_name = "FILE.xml")]
        xml: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Write a reseller's effective catalog for the storefront (no wholesale prices in it).
    Publish {
        #[arg(long)]
        reseller: String,
        #[arg(long)]
        catalog: PathBuf,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Store a catalog and accounts version in the store and make them current (what the
    /// Lambda loads when it has no bundled files).
    PublishConfig {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create the table of infra/table.json (for DynamoDB Local).
    CreateTable {
        #[command(flatten)]
        store: StoreArgs,
    },
}

enum AnyStore {
    Embedded(EmbeddedStore),
    Dynamo(DynamoStore),
}

async fn open_store(spec: &str) -> Result<AnyStore> {
    if let Some(path) = spec.strip_prefix("embedded:") {
        return Ok(AnyStore::Embedded(
            EmbeddedStore::open(std::path::Path::new(path))
                .with_context(|| format!("opening embedded store {path}"))?,
        ));
    }
    if let Some(table) = spec.strip_prefix("dynamodb:") {
        let table = if table.is_empty() {
            DynamoStore::default_local_table()
        } else {
            table.to_string()
        };
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        return Ok(AnyStore::Dynamo(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            table,
        )));
    }
    bail!("--store must be embedded:<path> or dynamodb:<table>, got `{spec}`")
}

fn load_config(args: &ConfigArgs) -> Result<RaterConfig> {
    let catalog = std::fs::read_to_string(&args.catalog)
        .with_context(|| format!("reading {}", args.catalog.display()))?;
    let accounts = std::fs::read_to_string(&args.accounts)
        .with_context(|| format!("reading {}", args.accounts.display()))?;
    Ok(RaterConfig::from_json(&catalog, &accounts, &args.issuer)?)
}

fn parse_period(s: &str) -> Result<BillingPeriod> {
    Ok(BillingPeriod::parse(s)?)
}

/// Prints notes as tables, JSON or CSV.
fn print_notes(notes: &[pricing::Note], output: OutputKind) -> Result<()> {
    let text = match output {
        OutputKind::Table => render::notes_table(notes),
        OutputKind::Json => serde_json::to_string_pretty(notes)? + "\n",
        OutputKind::Csv => render::notes_csv(notes),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

fn print_invoices(
    invoices: &[Invoice],
    output: OutputKind,
    response: Option<&RateResponse>,
) -> Result<()> {
    let text = match output {
        OutputKind::Table => render::invoices_table(invoices),
        OutputKind::Csv => render::invoices_csv(invoices),
        OutputKind::Json => match response {
            Some(r) => serde_json::to_string_pretty(r)? + "\n",
            None => serde_json::to_string_pretty(invoices)? + "\n",
        },
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Opens the export as a stream (never read whole: exports can be gigabytes), with a progress
/// bar on stderr for big files when stderr is a terminal.
fn open_export(path: &PathBuf) -> Result<(Box<dyn Read + Send>, ProgressBar)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), ProgressBar::hidden()));
    }
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() && len >= PROGRESS_BYTES_MIN {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} rating {bytes}/{total_bytes} [{bar:40}] {bytes_per_sec}, {eta} left",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    Ok((Box::new(bar.wrap_read(file)), bar))
}

/// What `ratecard rate` prints: a line on stderr about the batch, then its invoices.
fn print_answer(resp: &RateResponse, output: OutputKind) -> Result<()> {
    let dropped = if resp.duplicates_dropped > 0 {
        format!(
            " ({} duplicate records dropped: their ids were counted before)",
            resp.duplicates_dropped
        )
    } else {
        String::new()
    };
    eprintln!(
        "batch {}: {} records{dropped}, {} usage items{}",
        resp.batch_id,
        resp.records,
        resp.usage_items,
        if resp.replayed {
            " (already rated: replayed, nothing written)"
        } else {
            " written"
        }
    );
    if resp.invoices_omitted > 0 {
        eprintln!(
            "{} accounts: their invoices are not printed; read one with `ratecard invoice --account <account> --period <period>`",
            resp.accounts
        );
    }
    print_invoices(&resp.invoices, output, Some(resp))
}

/// `ratecard rate`: streams the export through aggregation (with a progress bar for large
/// files), rates it exactly once and prints the invoices.
struct RateCommand {
    export: PathBuf,
    format: String,
    period: Option<String>,
    account: Option<String>,
    batch_id: Option<String>,
    finalize: bool,
    output: OutputKind,
}

impl RateCommand {
    async fn run<S: Store>(self, store: &S, config: &RaterConfig) -> Result<()> {
        let RateCommand {
            export,
            format,
            period,
            account,
            batch_id,
            finalize,
            output,
        } = self;
        let format = parse_format_arg(Some(&format))?;
        let period = period.as_deref().map(parse_period).transpose()?;
        let mode = if finalize { Mode::Final } else { Mode::Interim };
        if let Some(loc) = export.to_str().and_then(ObjectLoc::parse_url) {
            if batch_id.is_some() {
                bail!("--batch-id: an object's batch id is derived from its bucket, key and ETag");
            }
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let objects = rater::objects::S3Objects::from_sdk(&sdk);
            let how = rater::exports::ObjectBatch {
                format,
                period,
                account,
                mode,
            };
            let resp = rater::exports::rate_object(store, config, &objects, &loc, &how).await?;
            return print_answer(&resp, output);
        }
        let (reader, bar) = open_export(&export)?;
        // Ceilometer's cumulative counters start from the readings earlier batches left.
        let carried = rater::import::carried_readings(store, format).await?;
        let carried = carried.as_ref();
        // Parsing and aggregating is CPU-bound and synchronous: keep it off the runtime's
        // worker so the bar and the store stay responsive.
        let batch = tokio::task::block_in_place(|| {
            let first = Pass {
                carried,
                ..Pass::default()
            };
            aggregate_pass(config, format, reader, period, account.as_deref(), &first)
        });
        bar.finish_and_clear();
        let batch = batch?;
        // A second pass (records whose ids were counted before) reads the file again; the
        // rater checks that it still has the same SHA-256.
        let (again_format, again_window) = (batch.format, batch.window);
        let reread = |pass: &Pass<'_>| {
            if export.as_os_str() == "-" {
                return Err(RaterError::BadRequest {
                    field: "export",
                    message: "records repeat ids counted before, and standard input cannot \
                              be read twice to leave them out: pass the export as a file"
                        .into(),
                });
            }
            let file = File::open(&export).map_err(RaterError::from)?;
            aggregate_pass(
                config,
                Some(again_format),
                std::io::BufReader::with_capacity(1 << 20, file),
                again_window,
                account.as_deref(),
                &Pass { carried, ..*pass },
            )
        };
        let resp = rate_aggregated(
            store,
            config,
            batch,
            batch_id,
            mode,
            account.as_deref(),
            &reread,
        )
        .await?;
        print_answer(&resp, output)
    }
}

async fn run<S: Store>(store: &S, command: Command) -> Result<()> {
    match command {
        Command::Rate {
            export,
            config,
            format,
            period,
            account,
            batch_id,
            finalize,
            output,
            ..
        } => {
            let rate = RateCommand {
                export,
                format,
                period,
                account,
                batch_id,
                finalize,
                output,
            };
            rate.run(store, &load_config(&config)?).await
        }
        Command::Invoice {
            account,
            period,
            as_of,
            config,
            output,
            pdf,
            xml,
            no_einvoice,
            ..
        } => {
            let config = load_config(&config)?;
            let period = parse_period(&period)?;
            let how = rater::invoices::Pricing::interim(as_of.as_deref(), period, config.now_s())?;
            let inv = rater::invoices::invoice_as(store, &config, &account, period, how).await?;
            let acc = config.known_account(&account)?;
            // As issued: a customer moved to another issuer since keeps its old documents' record.
            let version = inv.accounts_version.as_deref();
            let catalog = &inv.bill.catalog_id;
            let acc = &*rater::documents::as_issued(store, &config, acc, catalog, version).await?;
            if let Some(path) = &xml {
                let text = rater::documents::einvoice_xml(&config, acc, &inv)?;
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("EN 16931 e-invoice written to {}", path.display());
            }
            if let Some(path) = &pdf {
                let embed = if no_einvoice {
                    rater::documents::Embed::Nothing
                } else {
                    rater::documents::Embed::EInvoice
                };
                let bytes = rater::documents::pdf_of(&config, acc, &inv, embed)?;
                std::fs::write(path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "PDF invoice{} written to {}",
                    if no_einvoice {
                        ""
                    } else {
                        " with its EN 16931 e-invoice (factur-x.xml)"
                    },
                    path.display()
                );
            }
            print_invoices(&[inv], output, None)
        }
        Command::Finalize {
            account,
            period,
            override_end,
            config,
            output,
            ..
        } => {
            let config = load_config(&config)?;
            if override_end {
                eprintln!(
                    "finalizing {account} {period} before the period ends (operator override)"
                );
            }
            let how = rater::invoices::Finalizing {
                before_period_end: override_end,
            };
            let period = parse_period(&period)?;
            let inv = rater::invoices::finalize_with(store, &config, &account, period, how).await?;
            print_invoices(&[inv], output, None)
        }
        Command::Close {
            period,
            override_end,
            config,
            json,
            ..
        } => close_command(store, &load_config(&config)?, &period, override_end, json).await,
        Command::Payment {
            account,
            date,
            amount,
            currency,
            reference,
            payee,
            config,
            ..
        } => {
            let config = load_config(&config)?;
            let p = rater::month::PaymentInput {
                payee,
                account,
                date: parse_when(&date)?,
                amount: amount
                    .parse()
                    .with_context(|| format!("--amount `{amount}` is not a decimal"))?,
                currency,
                reference,
            };
            let outcome = rater::month::record_payment(store, &config, &p).await?;
            eprintln!(
                "payment {} of {} {} for {} on {}: {}",
                p.reference,
                p.amount,
                p.currency,
                p.account,
                p.date.date_naive(),
                match outcome {
                    rater::store::PaymentOutcome::Recorded => "recorded",
                    rater::store::PaymentOutcome::AlreadyRecorded =>
                        "already recorded (nothing changed)",
                }
            );
            Ok(())
        }
        Command::Margin {
            reseller,
            period,
            config,
            output,
            ..
        } => {
            let config = load_config(&config)?;
            let period = parse_period(&period)?;
            let r = rater::margin::report(store, &config, &reseller, period).await?;
            let text = match output {
                OutputKind::Table => render::margin_table(&r),
                OutputKind::Csv => render::margin_csv(&r),
                OutputKind::Json => serde_json::to_string_pretty(&r)? + "\n",
            };
            print!("{text}");
            Ok(())
        }
        Command::Report {
            from,
            to,
            group_by,
            by,
            filters,
            config,
            output,
            out,
            ..
        } => {
            let config = load_config(&config)?;
            let pairs = filters
                .iter()
                .map(|f| {
                    f.split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--filter `{f}`: write DIMENSION=VALUES"))
                })
                .collect::<Result<Vec<_>>>()?;
            let query = pricing::report::ReportQuery::parse(
                &from,
                to.as_deref().unwrap_or(&from),
                &group_by,
                &by,
                &pairs,
            )
            .map_err(rater::reports::bad_query)?;
            let started = std::time::Instant::now();
            let r = rater::reports::report(store, &config, &rater::auth::Caller::operator(), query)
                .await?;
            let bytes = match output {
                ReportOutput::Table => render::report_table(&r).into_bytes(),
                ReportOutput::Csv => render::report_csv(&r).into_bytes(),
                ReportOutput::Json => (serde_json::to_string_pretty(&r)? + "\n").into_bytes(),
                ReportOutput::Xlsx => rater::xlsx::report_xlsx(&r)?,
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, &bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "report of {} invoices, {} rows, written to {} in {} ms",
                        r.invoices,
                        r.main.rows.len(),
                        path.display(),
                        started.elapsed().as_millis()
                    );
                }
                None if output == ReportOutput::Xlsx => {
                    bail!("--output xlsx writes a workbook: name it with --out <file.xlsx>")
                }
                None => std::io::stdout().write_all(&bytes)?,
            }
            Ok(())
        }
        Command::Statement {
            account,
            from,
            to,
            currency,
            config,
            output,
            pdf,
            ..
        } => {
            let config = load_config(&config)?;
            let (from, to) = rater::statements::parse_range(&from, to.as_deref())?;
            let st = rater::statements::statement(
                store,
                &config,
                &account,
                from,
                to,
                currency.as_deref(),
            )
            .await?;
            if let Some(path) = pdf {
                let acc = config.known_account(&account)?;
                let bytes = rater::documents::statement_pdf_of(&config, acc, &st)?;
                std::fs::write(&path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("statement PDF written to {}", path.display());
            }
            let text = match output {
                OutputKind::Table => render::statement_table(&st),
                OutputKind::Csv => render::statement_csv(&st),
                OutputKind::Json => serde_json::to_string_pretty(&st)? + "\n",
            };
            print!("{text}");
            Ok(())
        }
        Command::History {
            account,
            config,
            json,
            ..
        } => {
            let config = load_config(&config)?;
            let docs = rater::month::history(store, &config, &account).await?;
            let text = if json {
                serde_json::to_string_pretty(&docs)? + "\n"
            } else {
                render::history_table(&account, &docs)
            };
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
        Command::Rerate {
            account,
            period,
            reason,
            config,
            output,
            ..
        } => {
            let config = load_config(&config)?;
            let reason = match reason {
                Corrected::Catalog => pricing::NoteReason::CorrectedCatalog,
                Corrected::Account => pricing::NoteReason::CorrectedAccount,
            };
            let period = parse_period(&period)?;
            match rater::notes::correct(store, &config, &account, period, reason).await? {
                Some(note) => print_notes(&[note], output),
                None => {
                    eprintln!(
                        "{account} {}: the period prices as its final invoice and notes stand; no note issued",
                        period.id()
                    );
                    Ok(())
                }
            }
        }
        Command::Notes {
            account,
            period,
            output,
            ..
        } => {
            let period = parse_period(&period)?;
            let notes = rater::notes::notes_of(store, &account, &period.id()).await?;
            if notes.is_empty() && matches!(output, OutputKind::Table) {
                eprintln!("{account} {}: no note", period.id());
                return Ok(());
            }
            print_notes(&notes, output)
        }
        Command::Note {
            account,
            period,
            number,
            pdf,
            no_einvoice,
            xml,
            config,
            ..
        } => {
            let config = load_config(&config)?;
            let period = parse_period(&period)?;
            let acc = config.known_account(&account)?;
            let notes = rater::notes::notes_of(store, &account, &period.id()).await?;
            let Some(note) = notes
                .iter()
                .find(|n| n.number.as_deref() == Some(number.as_str()))
            else {
                bail!(
                    "{account} {}: no note numbered `{number}` (there are {})",
                    period.id(),
                    notes.len()
                );
            };
            if pdf.is_none() && xml.is_none() {
                bail!("write the note with --pdf <file.pdf> and/or --xml <file.xml>");
            }
            let version = note.accounts_version.as_deref();
            let catalog = &note.catalog_id;
            let acc = &*rater::documents::as_issued(store, &config, acc, catalog, version).await?;
            if let Some(path) = &xml {
                let text = rater::documents::note_xml(&config, acc, note)?;
                std::fs::write(path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!(
                    "EN 16931 e-invoice of note {number} written to {}",
                    path.display()
                );
            }
            if let Some(path) = &pdf {
                let embed = if no_einvoice {
                    rater::documents::Embed::Nothing
                } else {
                    rater::documents::Embed::EInvoice
                };
                let bytes = rater::documents::note_pdf_of(&config, acc, note, embed)?;
                std::fs::write(path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("PDF of note {number} written to {}", path.display());
            }
            Ok(())
        }
        Command::PublishConfig { config, .. } => {
            let config = load_config(&config)?;
            rater::config::put_config_versions(store, &config, true).await?;
            eprintln!(
                "published catalog {} and accounts {} as current",
                config.catalog.version, config.accounts.version
            );
            Ok(())
        }
        Command::Publish { .. } | Command::CreateTable { .. } => {
            unreachable!("handled without a store")
        }
    }
}

/// `ratecard close`: prints what the close did (a line per outcome, or its report as JSON) and
/// fails when an account could not be finalized (run it again once the cause is fixed).
async fn close_command<S: Store>(
    store: &S,
    config: &RaterConfig,
    period: &str,
    override_end: bool,
    json: bool,
) -> Result<()> {
    if override_end {
        eprintln!("closing {period} before it ends (operator override)");
    }
    let how = rater::invoices::Finalizing {
        before_period_end: override_end,
    };
    let report = rater::month::close(store, config, parse_period(period)?, how).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "close {}: {} accounts: {} finalized, {} already final, {} skipped (nothing to bill), {} failed",
            report.period, report.accounts, report.finalized, report.already_final, report.skipped, report.failed
        );
        for c in &report.issued {
            if c.period == report.period {
                println!("  {}  {}", c.number, c.account);
            } else {
                // An earlier period billed first: usage or a payment came after its close.
                println!("  {}  {}  {} (billed first)", c.number, c.account, c.period);
            }
        }
        for f in &report.failures {
            println!("  failed {}: {} ({})", f.account, f.message, f.code);
        }
    }
    if report.failed > 0 {
        bail!(
            "{} account(s) could not be finalized; run the close again",
            report.failed
        );
    }
    Ok(())
}

/// A date (midnight UTC) or an RFC 3339 instant.
fn parse_when(text: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = text.parse::<chrono::DateTime<chrono::Utc>>() {
        return Ok(t);
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("`{text}` is not a date (2017-02-10) or an RFC 3339 time"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
}

fn publish(reseller: &str, catalog: &PathBuf, out: Option<&PathBuf>) -> Result<()> {
    let text = std::fs::read_to_string(catalog)
        .with_context(|| format!("reading {}", catalog.display()))?;
    let catalog = Catalog::from_json(&text)?;
    let published = pricing::publish(&catalog, reseller)?;
    let json = serde_json::to_string_pretty(&published)? + "\n";
    match out {
        Some(path) => {
            std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "published {reseller}'s catalog {} to {}",
                published.version,
                path.display()
            );
        }
        None => std::io::stdout().write_all(json.as_bytes())?,
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors are printed as their messages (the chain, not a backtrace): they are for users.
    match cli_main(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn cli_main(cli: Cli) -> Result<()> {
    let spec = match &cli.command {
        Command::Publish {
            reseller,
            catalog,
            out,
        } => return publish(reseller, catalog, out.as_ref()),
        Command::CreateTable { store } => {
            let AnyStore::Dynamo(d) = open_store(&store.store).await? else {
                bail!("create-table needs --store dynamodb:<table>");
            };
            d.create_table().await?;
            eprintln!("table {} ready", d.table());
            return Ok(());
        }
        Command::Rate { store, .. }
        | Command::Invoice { store, .. }
        | Command::Finalize { store, .. }
        | Command::Close { store, .. }
        | Command::Payment { store, .. }
        | Command::History { store, .. }
        | Command::Margin { store, .. }
        | Command::Report { store, .. }
        | Command::Statement { store, .. }
        | Command::Rerate { store, .. }
        | Command::Notes { store, .. }
        | Command::Note { store, .. }
        | Command::PublishConfig { store, .. } => store.store.clone(),
    };
    match open_store(&spec).await? {
        AnyStore::Embedded(s) => run(&s, cli.command).await,
        AnyStore::Dynamo(s) => run(&s, cli.command).await,
    }
}
