//! Invoice documents read from the store: an account's invoice for a period as a PDF in its issuer's name and brand, with its EN 16931 e-invoice embedded, or the e-invoice XML alone.
//!
//! The issuer is the invoice's: the provider (the deployment's issuer id) for its own
//! customers, the reseller for a reseller's customers, each described by the accounts file's
//! `issuers` (legal name, address, VAT id) and coloured by the reseller's published brand.
//! A final invoice or note keeps the issuer that billed it (named by its catalog id) when the
//! book moves the customer to another reseller since (`RaterConfig::as_billed`).

use pricing::invoice::Issuer;
use pricing::{Account, BillingPeriod, Invoice};

use crate::config::RaterConfig;
use crate::error::RaterError;
use crate::invoices::invoice_for;
use crate::pdf::Letterhead;
use crate::store::Store;

/// The issuer record of `acc`'s invoices, or an error naming the id the accounts file lacks.
///
/// # Errors
/// [`RaterError::EInvoice`] (rule BR-06, the seller's name) when the accounts file has no
/// issuer with that id.
pub fn issuer_of<'c>(
    config: &'c RaterConfig,
    acc: &Account,
    document: Option<&str>,
) -> Result<&'c Issuer, RaterError> {
    let id = config.issuer_for(acc);
    config.accounts.issuer(id).ok_or_else(|| RaterError::EInvoice {
        document: document.unwrap_or("(interim)").to_string(),
        account: acc.id.clone(),
        rule: "BR-06",
        message: format!(
            "accounts version {} has no issuer `{id}`: add it to `issuers` (name, address, country, VAT id)",
            config.accounts.version
        ),
    })
}

/// The header of `acc`'s documents: its issuer's name, address and VAT id when the accounts
/// file describes it, else the brand's or the issuer id's name alone; the brand's colour.
pub fn letterhead(config: &RaterConfig, acc: &Account) -> Letterhead {
    let brand = config.catalog_for(acc).brand.as_ref();
    let id = config.issuer_for(acc);
    let color = brand.and_then(|b| b.colors.get("primary").cloned());
    match config.accounts.issuer(id) {
        Some(i) => {
            let mut lines = i.address.clone();
            let place = [i.postcode.as_deref(), i.city.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if !place.is_empty() {
                lines.push(place);
            }
            lines.push(i.country.clone());
            Letterhead {
                name: i.name.clone(),
                lines,
                vat_id: i.vat_id.clone(),
                color,
                logo: config.logo(id),
            }
        }
        None => Letterhead {
            name: brand.map_or_else(|| id.to_string(), |b| b.name.clone()),
            lines: Vec::new(),
            vat_id: None,
            color,
            logo: None,
        },
    }
}

/// `acc` as the document priced with catalog `catalog_id` under accounts version `version`
/// (an invoice's or a note's) named it: for a customer the book moved to another issuer since,
/// its record then (name, address, VAT id, tax jurisdiction), as the issuer issued it.
///
/// # Errors
/// Store errors; a configuration error when that issuer is no longer published.
pub async fn as_issued<'a, S: Store>(
    store: &S,
    config: &'a RaterConfig,
    acc: &'a Account,
    catalog_id: &str,
    version: Option<&str>,
) -> Result<std::borrow::Cow<'a, Account>, RaterError> {
    let versions: Vec<&str> = version.into_iter().collect();
    let (acc, _) =
        crate::notes::account_in_versions(store, config, acc, catalog_id, &versions).await?;
    Ok(acc)
}

/// The EN 16931 XML of `acc`'s final invoice `inv`.
///
/// # Errors
/// [`RaterError::EInvoice`] naming the rule the invoice cannot meet.
pub fn einvoice_xml(
    config: &RaterConfig,
    acc: &Account,
    inv: &Invoice,
) -> Result<String, RaterError> {
    let acc = &*config.as_billed(acc, &inv.bill.catalog_id)?;
    let issuer = issuer_of(config, acc, inv.number.as_deref())?;
    crate::einvoice::cii_xml(config.catalog_for(acc), inv, issuer, acc)
}

/// What a document request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embed {
    /// The PDF carries the e-invoice; refused when the invoice cannot be one.
    EInvoice,
    /// A PDF alone (an interim invoice, or a customer outside e-invoicing).
    Nothing,
}

/// The invoice of `account` for `period` (final once issued, else interim) as a PDF.
///
/// # Errors
/// Store and pricing errors, [`RaterError::EInvoice`] when the e-invoice is asked for and the
/// invoice cannot be one, [`RaterError::Document`] when the PDF cannot be written.
pub async fn invoice_pdf<S: Store>(
    store: &S,
    config: &RaterConfig,
    account: &str,
    period: BillingPeriod,
    embed: Embed,
) -> Result<Vec<u8>, RaterError> {
    let acc = config.known_account(account)?;
    let inv = invoice_for(store, config, account, period).await?;
    let version = inv.accounts_version.as_deref();
    let acc = as_issued(store, config, acc, &inv.bill.catalog_id, version).await?;
    pdf_of(config, &acc, &inv, embed)
}

/// `inv` (an invoice of `acc`) as a PDF.
///
/// # Errors
/// As [`invoice_pdf`].
pub fn pdf_of(
    config: &RaterConfig,
    acc: &Account,
    inv: &Invoice,
    embed: Embed,
) -> Result<Vec<u8>, RaterError> {
    let acc = &*config.as_billed(acc, &inv.bill.catalog_id)?;
    let xml = match embed {
        Embed::EInvoice => Some(einvoice_xml(config, acc, inv)?),
        Embed::Nothing => None,
    };
    crate::pdf::invoice_pdf(inv, &letterhead(config, acc), xml.as_deref())
}

/// The EN 16931 XML of `acc`'s numbered credit or debit note.
///
/// # Errors
/// [`RaterError::EInvoice`] naming the rule the note cannot meet.
pub fn note_xml(
    config: &RaterConfig,
    acc: &Account,
    note: &pricing::Note,
) -> Result<String, RaterError> {
    let acc = &*config.as_billed(acc, &note.catalog_id)?;
    let issuer = issuer_of(config, acc, note.number.as_deref())?;
    crate::einvoice::note_xml(config.catalog_for(acc), note, issuer, acc)
}

/// `note` (a numbered note of `acc`) as a PDF.
///
/// # Errors
/// As [`invoice_pdf`].
pub fn note_pdf_of(
    config: &RaterConfig,
    acc: &Account,
    note: &pricing::Note,
    embed: Embed,
) -> Result<Vec<u8>, RaterError> {
    let acc = &*config.as_billed(acc, &note.catalog_id)?;
    let xml = match embed {
        Embed::EInvoice => Some(note_xml(config, acc, note)?),
        Embed::Nothing => None,
    };
    crate::pdf::note_pdf(note, &letterhead(config, acc), xml.as_deref())
}

/// `st` (a statement of `acc`) as a PDF in its issuer's name and brand.
///
/// # Errors
/// [`RaterError::Document`] when the PDF cannot be written.
pub fn statement_pdf_of(
    config: &RaterConfig,
    acc: &Account,
    st: &pricing::account_statement::AccountStatement,
) -> Result<Vec<u8>, RaterError> {
    crate::pdf::statement_pdf(st, &letterhead(config, &billed_as(config, acc, st)))
}

/// `acc` as the issuer of statement `st`'s documents billed it, for the statement's
/// letterhead: the issuer of its last invoice or note when that is another currency's chain
/// than the account's invoice currency now (an issuer the customer left), else `acc` as the
/// book has it.
fn billed_as<'a>(
    config: &'a RaterConfig,
    acc: &'a pricing::Account,
    st: &pricing::account_statement::AccountStatement,
) -> std::borrow::Cow<'a, pricing::Account> {
    if st.currency == config.invoice_currency(acc) {
        return std::borrow::Cow::Borrowed(acc);
    }
    let last =
        st.entries.iter().rev().find(|e| {
            e.kind != pricing::account_statement::EntryKind::Payment && e.owed_to.is_none()
        });
    match last {
        Some(e) => std::borrow::Cow::Owned(pricing::Account {
            reseller: config.reseller_of_number(&e.reference).map(str::to_string),
            ..acc.clone()
        }),
        None => std::borrow::Cow::Borrowed(acc),
    }
}
