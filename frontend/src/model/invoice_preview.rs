//! The invoice preview: a usage export dropped on the page, imported and invoiced in the browser
//! by the same engine as the rater, with the storefront's current settings. Nothing is uploaded.

use pricing::import::{detect, import_all, Format, ImportError, ImportOptions};
use pricing::invoice::{Account, Invoice};
use pricing::period::{BillingPeriod, PeriodKind};
use pricing::Catalog;
use rust_decimal::Decimal;

use super::config::AppConfig;

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
/// would this usage cost here", not "what does this customer owe".
pub fn preview_account(id: &str, settings: &AppConfig) -> Account {
    Account {
        id: id.to_string(),
        name: id.to_string(),
        address: Vec::new(),
        currency: settings.currency.clone(),
        region: settings.region.clone(),
        tax_jurisdiction: settings.tax_jurisdiction.clone(),
        sla_tier: settings.sla_tier.clone(),
        availability_pct: None,
        term: settings.term.clone(),
        subscriptions: Vec::new(),
        discounts: Vec::new(),
        prepaid_credit: Decimal::ZERO,
        balance_brought_forward: Decimal::ZERO,
        payments: Vec::new(),
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
    let mut options = ImportOptions::default();
    // The records first, to find the billing month. Only `import_all` is used (twice for
    // Ceilometer, whose last gauge sample is cut at the period's end): one instantiation of the
    // importers in the app instead of two.
    let mut records = import_all(format, bytes, catalog, &options).map_err(import_error)?;
    let first = records
        .iter()
        .map(|r| r.start)
        .min()
        .ok_or(PreviewError::UnknownFormat)?;
    let period = BillingPeriod::containing(PeriodKind::Month, first);
    if format == Format::Ceilometer {
        options.ceilometer.window_end = Some(period.end());
        records = import_all(format, bytes, catalog, &options).map_err(import_error)?;
    }
    let usage = pricing::rate(catalog, period, &records)
        .map_err(|e| import_error(ImportError::Records(e)))?;
    let invoices = usage
        .accounts()
        .iter()
        .map(|a| {
            pricing::invoice(catalog, &preview_account(a, settings), period, &usage)
                .map_err(|e| PreviewError::Pricing(e.to_string()))
        })
        .collect::<Result<Vec<Invoice>, PreviewError>>()?;
    Ok(Preview {
        file_name: file_name.chars().take(200).collect(),
        format,
        records: records.len() as u64,
        period,
        invoices,
    })
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
            let expect =
                pricing::invoice(&cat, &preview_account(a, &s), p.period, &rated.usage).unwrap();
            assert_eq!(inv.bill.total, expect.bill.total, "{a}");
            assert!(inv.bill.total > Decimal::ZERO);
        }
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
