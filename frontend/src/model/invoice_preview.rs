//! The invoice preview: a usage export dropped on the page, imported and invoiced in the browser
//! by the same engine as the rater, with the storefront's current settings. Nothing is uploaded.

use pricing::import::{detect, import_all, Format, ImportError, ImportOptions};
use pricing::invoice::{Account, Invoice};
use pricing::period::{BillingPeriod, PeriodKind};
use pricing::{Catalog, SummaryRow as BillRow};
use rust_decimal::Decimal;

use serde::{Deserialize, Serialize};

use super::config::AppConfig;
use super::format::{money, percent, quantity, unit_price};

/// Largest file the preview reads. The browser holds the whole file and its records; 32 MiB is
/// a month of a few hundred VMs in canonical CSV, and larger exports belong to the rater.
pub const PREVIEW_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Most record errors listed on the page (the rest are counted).
pub const ERRORS_SHOWN_MAX: usize = 20;

/// The invoices a dropped export gives: one per account it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub file_name: String,
    pub format: Format,
    pub records: u64,
    pub period: BillingPeriod,
    pub invoices: Vec<Invoice>,
    /// Each invoice's cost explorer, in the same order.
    pub explorers: Vec<super::explorer::Explorer>,
    /// The estimate of the app the settings hold (a month of it), when it has one: each invoice
    /// is shown against it (`replay::against_html`).
    pub estimate: Option<pricing::Bill>,
}

/// Why a dropped file gives no invoice, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    #[error("the file is larger than {} MB; rate it with the rater instead", PREVIEW_BYTES_MAX / (1024 * 1024))]
    TooLarge,
    #[error("this does not look like a usage export (canonical CSV, JSON Lines, CloudStack or Ceilometer)")]
    UnknownFormat,
    #[error("{message}")]
    Import {
        message: String,
        /// One line per bad record, at most [`ERRORS_SHOWN_MAX`].
        details: Vec<String>,
    },
    #[error("the invoice could not be computed: {0}")]
    Pricing(String),
}

/// The account an export is invoiced to in the preview: the storefront's settings (currency,
/// region, SLA tier, term, tax), no subscriptions, credits or payments. The preview answers "what
/// would this usage cost here", not "what does this customer owe". A coupon the visitor typed,
/// redeemable on the pricing date, is redeemed as `period_start` begins, as the estimate
/// applies it to its whole month.
pub fn preview_account(
    id: &str,
    settings: &AppConfig,
    catalog: &pricing::Catalog,
    period_start: chrono::DateTime<chrono::Utc>,
) -> Account {
    let coupons = settings
        .coupon
        .as_deref()
        .filter(|code| {
            catalog
                .coupons
                .iter()
                .any(|c| c.is(code) && c.redeemable_at(settings.at_instant()))
        })
        .map(|code| pricing::invoice::Redemption {
            code: code.to_string(),
            redeemed_at: period_start,
        })
        .into_iter()
        .collect();
    Account {
        id: id.to_string(),
        name: id.to_string(),
        address: Vec::new(),
        domain: None,
        country: None,
        vat_id: None,
        currency: settings.currency.clone(),
        region: settings.region.clone(),
        tax_jurisdiction: settings.tax_jurisdiction.clone(),
        sla_tier: settings.sla_tier.clone(),
        availability_pct: None,
        term: settings.term.clone(),
        subscriptions: Vec::new(),
        discounts: Vec::new(),
        prices: Vec::new(),
        invoice_blocks: None,
        coupons,
        cost_codes: Vec::new(),
        prepaid_credit: Decimal::ZERO,
        balance_brought_forward: Decimal::ZERO,
        payments: Vec::new(),
        billing_period: pricing::PeriodKind::Month,
        payment_terms_days: 30,
        late_usage: None,
        reseller: None,
        resells: None,
    }
}

fn import_error(e: ImportError) -> PreviewError {
    match e {
        ImportError::Records(batch) => {
            let mut details: Vec<String> = batch
                .errors
                .iter()
                .take(ERRORS_SHOWN_MAX)
                .map(|r| r.to_string())
                .collect();
            if batch.total > details.len() {
                details.push(format!("... and {} more", batch.total - details.len()));
            }
            PreviewError::Import {
                message: format!("{} records of the file are refused", batch.total),
                details,
            }
        }
        other => PreviewError::Import {
            message: other.to_string(),
            details: Vec::new(),
        },
    }
}

/// Imports `bytes`, finds the month of its first record, and invoices every account in it.
pub fn preview(
    catalog: &Catalog,
    settings: &AppConfig,
    file_name: &str,
    bytes: &[u8],
) -> Result<Preview, PreviewError> {
    if bytes.len() > PREVIEW_BYTES_MAX {
        return Err(PreviewError::TooLarge);
    }
    let format = detect(&bytes[..bytes.len().min(pricing::import::DETECT_PREFIX_BYTES)])
        .ok_or(PreviewError::UnknownFormat)?;
    // The records first, to find the billing month: the month most records start in (a
    // Ceilometer export begins with the previous window's last sample, and its last gauge
    // sample runs into the next month until it is cut). Only `import_all` is used (twice for
    // Ceilometer, whose gauges are cut to the period): one instantiation of the importers in
    // the app instead of two.
    let mappings =
        ImportOptions::of_catalog(catalog).map_err(|e| PreviewError::Pricing(e.to_string()))?;
    let mut records =
        import_all(format, bytes, catalog, &mappings.clone()).map_err(import_error)?;
    let mut months: std::collections::BTreeMap<BillingPeriod, usize> = Default::default();
    for r in &records {
        *months
            .entry(BillingPeriod::containing(PeriodKind::Month, r.start))
            .or_default() += 1;
    }
    let period = months
        .iter()
        .max_by_key(|(p, n)| (**n, std::cmp::Reverse(**p)))
        .map(|(p, _)| *p)
        .ok_or(PreviewError::UnknownFormat)?;
    if format == Format::Ceilometer {
        let options = mappings.in_window(Some(period));
        records = import_all(format, bytes, catalog, &options).map_err(import_error)?;
    }
    let usage = pricing::rate(catalog, period, &records)
        .map_err(|e| import_error(ImportError::Records(e)))?;
    let mut invoices = Vec::new();
    let mut explorers = Vec::new();
    for a in usage.accounts() {
        let account = preview_account(&a, settings, catalog, period.start);
        let pricing_error = |e: pricing::PricingError| PreviewError::Pricing(e.to_string());
        let inv = pricing::invoice(catalog, &account, period, &usage).map_err(pricing_error)?;
        explorers.push(
            super::explorer::explore(catalog, &account, &inv, &usage).map_err(pricing_error)?,
        );
        invoices.push(inv);
    }
    Ok(Preview {
        file_name: file_name.chars().take(200).collect(),
        format,
        records: records.len() as u64,
        period,
        invoices,
        explorers,
        // The app's own estimate, priced with the same price list as the usage.
        estimate: (!settings.tiers.is_empty())
            .then(|| super::estimate_view::compute(catalog, settings).estimate)
            .flatten()
            .map(|e| e.bill),
    })
}

/// What the page shows of a preview, every amount already formatted. The preview runs in a web
/// worker (a second wasm module, so that the importers and the invoicing are downloaded only when
/// a file is dropped); this is the JSON it answers with. Plain structs of strings: the page's
/// decoder for them is small.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PreviewView {
    /// Set when the file gives no invoice: why, as a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One line per refused record (at most [`ERRORS_SHOWN_MAX`], then a count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// `feb.csv: 2 records (csv) for 2017-02, 2 account(s)`.
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub invoices: Vec<InvoiceView>,
}

/// One account's invoice as the page lays it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceView {
    pub account: String,
    pub period_id: String,
    pub records: u64,
    pub catalog_version: String,
    pub currency: String,
    pub sections: Vec<SectionView>,
    /// The bill's summary rows: subtotal, then discounts and SLA credits, then taxes.
    pub rows: Vec<SummaryRow>,
    pub total: String,
    /// The cost explorer's markup (escaped and built in the worker; see `model::explorer`).
    #[serde(default)]
    pub explorer: String,
    /// The app's estimate against this invoice, row by row (markup built and escaped in the
    /// worker; see `model::replay::against_html`); empty without an estimate.
    #[serde(default)]
    pub against: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionView {
    pub name: String,
    pub lines: Vec<LineView>,
    pub total: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineView {
    pub description: String,
    /// Quantity and unit (`730 h`).
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub label: String,
    pub amount: String,
    /// CSS class of the row: empty, `reduction` or `tax`.
    pub class: String,
}

/// `text` with its first letter capitalised (error messages are written to be embedded).
pub fn sentence(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        // ASCII only: the messages are English, and Unicode case tables would grow the app.
        .map(|f| std::iter::once(f.to_ascii_uppercase()).chain(c).collect())
        .unwrap_or_default()
}

impl InvoiceView {
    pub fn new(inv: &Invoice) -> InvoiceView {
        let cur = &inv.bill.currency;
        let sections = inv
            .bill
            .sections
            .iter()
            .map(|s| SectionView {
                name: s.name.clone(),
                lines: s
                    .lines
                    .iter()
                    .map(|l| LineView {
                        description: l.description.clone(),
                        quantity: format!("{} {}", quantity(l.quantity), l.unit),
                        unit_price: unit_price(l.unit_price, cur),
                        amount: money(l.amount, cur),
                    })
                    .collect(),
                total: money(s.total, cur),
            })
            .collect();
        let row = |label: String, amount: Decimal, class: &str| SummaryRow {
            label,
            amount: money(amount, cur),
            class: class.to_string(),
        };
        let mut rows = Vec::new();
        for r in inv.bill.summary_rows() {
            rows.push(match r {
                BillRow::Subtotal(a) => row("Subtotal".into(), a, ""),
                BillRow::Discount(d) | BillRow::SlaCredit(d) => {
                    row(d.description.clone(), d.amount, "reduction")
                }
                BillRow::Tax(t) => row(
                    format!("{} {}", t.name, percent(t.rate_pct)),
                    t.amount,
                    "tax",
                ),
                // The total is shown on its own; the preview invoices usage only (no net line,
                // no credit, payments or balance).
                BillRow::Net(_)
                | BillRow::Total(_)
                | BillRow::CreditsApplied(_)
                | BillRow::AmountDue(_)
                | BillRow::BroughtForward(_)
                | BillRow::Payment { .. }
                | BillRow::Payments(_)
                | BillRow::DueThisPeriod(_)
                | BillRow::CarriedForward(_)
                | BillRow::PrepaidRemaining(_) => continue,
            });
        }
        InvoiceView {
            account: inv.account.clone(),
            period_id: inv.period_id.clone(),
            records: inv.records,
            catalog_version: inv.bill.catalog_version.clone(),
            currency: cur.clone(),
            sections,
            rows,
            total: money(inv.bill.total, cur),
            explorer: String::new(),
            against: String::new(),
        }
    }
}

impl PreviewView {
    pub fn new(result: Result<Preview, PreviewError>) -> PreviewView {
        match result {
            Ok(p) => PreviewView {
                summary: format!(
                    "{}: {} records ({}) for {}, {} account(s)",
                    p.file_name,
                    p.records,
                    p.format.name(),
                    p.period.id(),
                    p.invoices.len()
                ),
                invoices: p
                    .invoices
                    .iter()
                    .zip(&p.explorers)
                    .map(|(i, e)| InvoiceView {
                        explorer: e.html(&i.account, &i.period_id),
                        against: p.estimate.as_ref().map_or_else(String::new, |est| {
                            super::replay::against_html(est, &i.bill, &i.account)
                        }),
                        ..InvoiceView::new(i)
                    })
                    .collect(),
                ..PreviewView::default()
            },
            Err(e) => PreviewView {
                error: Some(sentence(&e.to_string())),
                details: match e {
                    PreviewError::Import { details, .. } => details,
                    _ => Vec::new(),
                },
                ..PreviewView::default()
            },
        }
    }

    /// Answers the page's request in the worker: the published catalog (JSON, already validated
    /// by the page), the settings (the share-link JSON of the config), the file. Returns the
    /// [`PreviewView`] as JSON.
    pub fn answer(catalog_json: &str, config_json: &str, file_name: &str, bytes: &[u8]) -> String {
        let view = match (
            serde_json::from_str::<Catalog>(catalog_json),
            serde_json::from_str::<AppConfig>(config_json),
        ) {
            (Ok(catalog), Ok(settings)) => {
                PreviewView::new(preview(&catalog, &settings, file_name, bytes))
            }
            (Err(e), _) | (_, Err(e)) => PreviewView {
                error: Some(format!("The preview could not start: {e}")),
                ..PreviewView::default()
            },
        };
        serde_json::to_string(&view).expect("a preview view always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{cloudstack, day};

    const HEADER: &str = pricing::import::CSV_HEADER;

    fn settings() -> AppConfig {
        AppConfig::empty(&cloudstack(), day("2017-02-15"))
    }

    #[test]
    fn each_invoice_is_shown_against_the_apps_estimate() {
        let catalog = cloudstack();
        let app = AppConfig::starter(&catalog, day("2017-02-15"));
        let estimate = crate::model::estimate_view::compute(&catalog, &app)
            .estimate
            .unwrap()
            .bill;
        let file = include_bytes!("../../../examples/exports/canonical-2017-02.csv");
        let view = PreviewView::new(preview(&catalog, &app, "canonical-2017-02.csv", file));
        assert!(view.error.is_none(), "{:?}", view.error);
        assert!(!view.invoices.is_empty());
        for inv in &view.invoices {
            assert!(
                inv.against.contains("Your estimate against this usage"),
                "{}",
                inv.account
            );
            // The total row: the estimate's total, then the invoice's as the invoice shows it.
            let total_row =
                &inv.against[inv.against.find("data-testid=\"against-total\"").unwrap()..];
            let cells: Vec<&str> = total_row
                .split("<td class=\"num\">")
                .skip(1)
                .map(|c| &c[..c.find('<').unwrap()])
                .collect();
            assert_eq!(
                cells[0],
                money(estimate.total, &estimate.currency),
                "{}",
                inv.account
            );
            assert_eq!(cells[1], inv.total, "{}", inv.account);
        }
        // Without an app (settings only) there is nothing to compare with.
        let settings = AppConfig::empty(&catalog, day("2017-02-15"));
        let view = PreviewView::new(preview(&catalog, &settings, "canonical-2017-02.csv", file));
        assert!(view.invoices.iter().all(|i| i.against.is_empty()));
    }

    #[test]
    fn canonical_csv_gives_one_invoice_per_account() {
        let csv = format!(
            "{HEADER}\n\
             r1,acct-a,,vm-1,copper,vm.running,730,hours,2017-02-01T00:00:00Z,2017-02-28T00:00:00Z,,\n\
             r2,acct-b,,vm-2,silver,vm.running,10,hours,2017-02-03T00:00:00Z,2017-02-03T10:00:00Z,,\n"
        );
        let p = preview(&cloudstack(), &settings(), "feb.csv", csv.as_bytes()).unwrap();
        assert_eq!(p.format, Format::Csv);
        assert_eq!(p.records, 2);
        assert_eq!(p.period.id(), "2017-02");
        let totals: Vec<(String, String)> = p
            .invoices
            .iter()
            .map(|i| (i.account.clone(), i.bill.total.to_string()))
            .collect();
        // 730 h x 2.20 = 1,606.00 + 20 % VAT; 10 h x 0.60 = 6.00 + VAT.
        assert_eq!(
            totals,
            [
                ("acct-a".to_string(), "1927.20".to_string()),
                ("acct-b".to_string(), "7.20".to_string())
            ]
        );
    }

    #[test]
    fn settings_change_the_invoice() {
        let csv = format!(
            "{HEADER}\nr1,acct-a,,vm-1,copper,vm.running,730,hours,2017-02-01T00:00:00Z,2017-02-28T00:00:00Z,,\n"
        );
        let mut s = settings();
        s.currency = Some("EUR".into());
        s.tax_jurisdiction = Some("none".into());
        let p = preview(&cloudstack(), &s, "feb.csv", csv.as_bytes()).unwrap();
        assert_eq!(p.invoices[0].bill.currency, "EUR");
        // 1,606.00 GBP x 1.17.
        assert_eq!(p.invoices[0].bill.total.to_string(), "1879.02");
    }

    /// Ceilometer's gauges need the period's end to cut the last sample: the preview finds the
    /// month first, then imports again with it, and gets what the rater's one-pass import gets.
    #[test]
    fn ceilometer_samples_against_the_openstack_catalog() {
        let cat = crate::model::testing::openstack();
        let bytes = include_bytes!("../../../examples/exports/ceilometer-2026-11.json");
        let s = AppConfig::empty(&cat, day("2026-11-15"));
        let p = preview(&cat, &s, "ceilometer.json", bytes).unwrap();
        assert_eq!(
            (p.format, p.period.id().as_str()),
            (Format::Ceilometer, "2026-11")
        );
        let rated = pricing::import::import_and_rate(
            Format::Ceilometer,
            &bytes[..],
            &cat,
            &ImportOptions::default(),
            p.period,
        )
        .unwrap();
        let accounts = rated.usage.accounts();
        assert_eq!(accounts.len(), p.invoices.len());
        for (inv, a) in p.invoices.iter().zip(&accounts) {
            let expect = pricing::invoice(
                &cat,
                &preview_account(a, &s, &cat, p.period.start),
                p.period,
                &rated.usage,
            )
            .unwrap();
            assert_eq!(inv.bill.total, expect.bill.total, "{a}");
            assert!(inv.bill.total > Decimal::ZERO);
        }
    }

    /// The worker's answer is what the page renders: formatted amounts, the same totals.
    #[test]
    fn the_worker_answer_round_trips_as_json() {
        let csv = format!(
            "{HEADER}\nr1,acct-a,,vm-1,copper,vm.running,730,hours,2017-02-01T00:00:00Z,2017-02-28T00:00:00Z,,\n"
        );
        let cat = cloudstack();
        let config = serde_json::to_string(&settings()).unwrap();
        let answer = PreviewView::answer(&cat.to_json(), &config, "feb.csv", csv.as_bytes());
        let view: PreviewView = serde_json::from_str(&answer).unwrap();
        assert_eq!(view.error, None);
        assert_eq!(
            view.summary,
            "feb.csv: 1 records (csv) for 2017-02, 1 account(s)"
        );
        let inv = &view.invoices[0];
        assert_eq!(inv.total, money(Decimal::new(192720, 2), "GBP"));
        assert_eq!(inv.rows[0].label, "Subtotal");
        assert_eq!(inv.rows.last().unwrap().class, "tax");
        assert!(inv.sections[0].lines[0].quantity.ends_with(" h"), "{inv:?}");

        let bad = PreviewView::answer(&cat.to_json(), &config, "x.txt", b"hello world");
        let view: PreviewView = serde_json::from_str(&bad).unwrap();
        assert_eq!(
            view.error.as_deref(),
            Some("This does not look like a usage export (canonical CSV, JSON Lines, CloudStack or Ceilometer)")
        );
    }

    #[test]
    fn bad_files_say_why() {
        let c = cloudstack();
        let s = settings();
        assert_eq!(
            preview(&c, &s, "x.txt", b"hello world"),
            Err(PreviewError::UnknownFormat)
        );
        let bad = format!(
            "{HEADER}\nr1,acct-a,,vm-1,no-such-offering,vm.running,1,hours,2017-02-01T00:00:00Z,2017-02-01T01:00:00Z,,\n"
        );
        match preview(&c, &s, "bad.csv", bad.as_bytes()) {
            Err(PreviewError::Import { message, details }) => {
                assert_eq!(message, "1 records of the file are refused");
                assert!(details[0].contains("no-such-offering"), "{details:?}");
            }
            other => panic!("{other:?}"),
        }
        let big = vec![b' '; PREVIEW_BYTES_MAX + 1];
        assert_eq!(preview(&c, &s, "big", &big), Err(PreviewError::TooLarge));
    }
}
