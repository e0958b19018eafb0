//! A final invoice as an EN 16931 e-invoice: UN/CEFACT Cross Industry Invoice XML of the Factur-X / ZUGFeRD "EN 16931" profile, with the standard's sum rules checked before anything is written.
//!
//! Every line maps to a trade line item (its quantity, unit price and net), the discounts and
//! SLA credits spread onto a line to a line allowance (so the document carries no header
//! allowances and the line nets add up to the invoice's net), the invoice's tax to one VAT
//! breakdown, and the totals to the monetary summation. The XSD checks none of the arithmetic
//! (and the official schematron tolerates a VAT amount a whole unit off), so [`check`] holds
//! the rules itself and an invoice that would break one is refused, naming the rule: a
//! customer's accounting system must be able to trust every figure.

use std::fmt::Write as _;

use pricing::catalog::{Catalog, TaxJurisdiction};
use pricing::invoice::Issuer;
use pricing::{Account, Invoice, Unit};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::RaterError;

/// The profile's guideline id (BT-24).
pub const EN16931: &str = "urn:cen.eu:en16931:2017";

/// The VAT category of an invoice (UNTDID 5305) and its rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatCategory {
    /// `S` standard rate, `Z` zero rated, `AE` reverse charge.
    pub code: &'static str,
    pub rate_pct: Decimal,
    /// BT-120, required for `AE`.
    pub exemption_reason: Option<&'static str>,
}

/// Why an invoice cannot be an EN 16931 e-invoice.
fn refuse(invoice: &Invoice, rule: &'static str, message: impl Into<String>) -> RaterError {
    RaterError::EInvoice {
        document: invoice.number.clone().unwrap_or_else(|| "(interim)".into()),
        account: invoice.account.clone(),
        rule,
        message: message.into(),
    }
}

/// The VAT category of a document's tax lines (an invoice's, or a note's changes): one VAT
/// rate (standard or zero), or reverse charge for a jurisdiction without taxes. Several taxes
/// on one base (GST + PST) are not VAT and are refused, through `refuse`.
///
/// # Errors
/// What `refuse` makes of rule BR-CO-18.
fn vat_category(
    taxes: &[pricing::bill::TaxLine],
    jurisdiction: Option<&TaxJurisdiction>,
    refuse: &dyn Fn(&'static str, String) -> RaterError,
) -> Result<VatCategory, RaterError> {
    match taxes {
        [t] if t.rate_pct.is_zero() => Ok(VatCategory {
            code: "Z",
            rate_pct: Decimal::ZERO,
            exemption_reason: None,
        }),
        [t] => Ok(VatCategory {
            code: "S",
            rate_pct: t.rate_pct,
            exemption_reason: None,
        }),
        [] => match jurisdiction {
            Some(j) if j.taxes.is_empty() => Ok(VatCategory {
                code: "AE",
                rate_pct: Decimal::ZERO,
                exemption_reason: Some("Reverse charge"),
            }),
            _ => Err(refuse(
                "BR-CO-18",
                "the account has no tax jurisdiction: an e-invoice states each line's VAT category"
                    .into(),
            )),
        },
        many => Err(refuse(
            "BR-CO-18",
            format!(
                "{} taxes apply to one base ({}): EN 16931 carries one VAT rate per line",
                many.len(),
                many.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Rec 20 code of a meter's unit. Time units have codes; data units are binary here (1 GB =
/// 2^30 bytes) where Rec 20's are decimal, so they are counted as units (`C62`) and the item's
/// name carries the unit.
fn unit_code(catalog: &Catalog, meter: Option<&str>, subscription: bool) -> &'static str {
    match meter.and_then(|m| catalog.meter(m)) {
        Some(m) => match m.unit {
            Unit::Seconds => "SEC",
            Unit::Minutes => "MIN",
            Unit::Hours => "HUR",
            _ => "C62",
        },
        // Subscriptions are billed in months of a plan.
        None if subscription => "MON",
        None => "C62",
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // XML 1.0 has no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An amount at two decimals (amounts are already rounded to the currency; BR-DEC).
fn amt(d: Decimal) -> String {
    let mut d = d;
    d.rescale(2);
    d.to_string()
}

/// A quantity or price: exact, at most 6 decimals shown, trailing zeros dropped.
fn num(d: Decimal) -> String {
    d.round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
        .to_string()
}

fn date(d: chrono::NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// One trade line of an e-invoice, signed as the document states it.
struct TradeLine<'a> {
    product: &'a str,
    name: String,
    /// Net unit price (never negative: BR-27) and the quantity it is for.
    price: Decimal,
    per: Decimal,
    unit_code: &'static str,
    quantity: Decimal,
    /// Discounts and credits on the line (negative) or a charge (positive).
    allowance: Decimal,
    /// Line net: the line's amount plus `allowance`.
    net: Decimal,
}

/// What an e-invoice states, signed as the document states it (a credit note's amounts are
/// positive: what is credited).
struct Document<'a> {
    /// 380 commercial invoice, 381 credit note, 383 debit note.
    type_code: u16,
    number: &'a str,
    issued: chrono::NaiveDate,
    due: Option<chrono::NaiveDate>,
    /// The invoice a note corrects (BG-3).
    corrects: Option<&'a str>,
    /// The buyer as the document itself names it (its stored name and address, which a later
    /// accounts version does not change).
    buyer_name: &'a str,
    buyer_address: &'a [String],
    currency: &'a str,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
    lines: Vec<TradeLine<'a>>,
    net: Decimal,
    tax: Decimal,
    total: Decimal,
    prepaid: Decimal,
    due_payable: Decimal,
}

/// The sum rules of EN 16931 a document must satisfy before it is written (each an `Err`
/// naming its rule): line nets add up to the line total (BR-CO-10) which is the tax basis
/// (BR-CO-13, no header allowances), the VAT of the category is its basis times its rate
/// rounded to the cent (BR-S-09; the invoice's own rounding may differ at a half cent or when
/// the jurisdiction rounds per line, and a note's tax is a difference of two rounded taxes),
/// grand total = basis + VAT (BR-CO-15), due = grand total - prepaid (BR-CO-16), amounts in at
/// most 2 decimals (BR-DEC), seller VAT id for a standard rate (BR-S-02) and both VAT ids for
/// reverse charge (BR-AE-02).
fn check_document(
    d: &Document<'_>,
    vat: &VatCategory,
    seller: &Issuer,
    buyer: &Account,
    refuse: &dyn Fn(&'static str, String) -> RaterError,
) -> Result<(), RaterError> {
    if pricing::money::minor_units(d.currency).is_none_or(|u| u > 2) {
        return Err(refuse(
            "BR-DEC-09",
            format!(
                "{} amounts have more than 2 decimals, which EN 16931 does not allow",
                d.currency
            ),
        ));
    }
    if d.lines.is_empty() {
        return Err(refuse(
            "BR-16",
            "the document has no line: an e-invoice bills at least one".into(),
        ));
    }
    let nets: Decimal = d.lines.iter().map(|l| l.net).sum();
    if nets != d.net {
        return Err(refuse(
            "BR-CO-10",
            format!(
                "the lines' nets add up to {nets}, the document's net is {}",
                d.net
            ),
        ));
    }
    let expected = d
        .net
        .checked_mul(vat.rate_pct)
        .map(|x| {
            (x / Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
        })
        .ok_or_else(|| refuse("BR-S-09", format!("the VAT of {} overflows", d.net)))?;
    if d.tax != expected {
        return Err(refuse(
            "BR-S-09",
            format!(
                "VAT {}% of {} is {expected} rounded to the cent; the document's tax is {} (its jurisdiction rounds per line or half to even, or a note's tax is the difference of two rounded taxes)",
                vat.rate_pct.normalize(),
                d.net,
                d.tax
            ),
        ));
    }
    if d.total != d.net + d.tax {
        return Err(refuse(
            "BR-CO-15",
            format!("total {} is not net {} + tax {}", d.total, d.net, d.tax),
        ));
    }
    if d.due_payable != d.total - d.prepaid {
        return Err(refuse(
            "BR-CO-16",
            format!(
                "amount due {} is not total {} - prepaid {}",
                d.due_payable, d.total, d.prepaid
            ),
        ));
    }
    if matches!(vat.code, "S" | "Z") && seller.vat_id.is_none() {
        return Err(refuse(
            "BR-S-02",
            format!(
                "issuer `{}` has no `vat_id`: a VAT invoice names the seller's",
                seller.id
            ),
        ));
    }
    if vat.code == "AE" && (seller.vat_id.is_none() || buyer.vat_id.is_none()) {
        return Err(refuse(
            "BR-AE-02",
            format!(
                "a reverse-charge invoice names both VAT ids: issuer `{}` {}, account `{}` {}",
                seller.id,
                if seller.vat_id.is_some() {
                    "has one"
                } else {
                    "has none"
                },
                buyer.id,
                if buyer.vat_id.is_some() {
                    "has one"
                } else {
                    "has none"
                }
            ),
        ));
    }
    Ok(())
}

fn invoice_document<'a>(
    catalog: &Catalog,
    invoice: &'a Invoice,
    number: &'a str,
    issued: chrono::NaiveDate,
    due: Option<chrono::NaiveDate>,
) -> Document<'a> {
    let bill = &invoice.bill;
    let lines = bill
        .lines()
        .map(|l| {
            // BR-27: a net price is never negative; a negative line is a negative quantity.
            let (price, quantity) = if l.unit_price.is_sign_negative() {
                (-l.unit_price, -l.quantity)
            } else {
                (l.unit_price, l.quantity)
            };
            TradeLine {
                product: &l.product,
                name: if l.unit.is_empty() {
                    l.description.clone()
                } else {
                    format!("{} ({})", l.description, l.unit)
                },
                price,
                per: l.per,
                unit_code: unit_code(catalog, l.meter.as_deref(), l.monthly_fee.is_some()),
                quantity,
                allowance: l.adjustments,
                net: l.amount + l.adjustments,
            }
        })
        .collect();
    Document {
        type_code: 380,
        number,
        issued,
        due,
        corrects: None,
        buyer_name: &invoice.account_name,
        buyer_address: &invoice.address,
        currency: &bill.currency,
        first: invoice.period.start.date_naive(),
        last: (invoice.period_end - chrono::Duration::seconds(1)).date_naive(),
        lines,
        net: bill.net,
        tax: bill.taxes.iter().map(|t| t.amount).sum(),
        total: bill.total,
        prepaid: invoice.credits_applied,
        due_payable: invoice.amount_due,
    }
}

/// The buyer's country, or the refusal naming it (BR-11).
fn buyer_country<'b>(
    buyer: &'b Account,
    refuse: &dyn Fn(&'static str, String) -> RaterError,
) -> Result<&'b str, RaterError> {
    buyer.country.as_deref().ok_or_else(|| {
        refuse(
            "BR-11",
            format!(
                "account `{}` has no `country` (the buyer's country code)",
                buyer.id
            ),
        )
    })
}

fn jurisdiction<'c>(catalog: &'c Catalog, buyer: &Account) -> Option<&'c TaxJurisdiction> {
    buyer
        .tax_jurisdiction
        .as_deref()
        .and_then(|j| catalog.tax_jurisdictions.iter().find(|t| t.id == j))
}

/// The Cross Industry Invoice XML of a final invoice (type 380), after the sum rules.
///
/// # Errors
/// [`RaterError::EInvoice`]: an interim invoice (no number, issue or due date), an account
/// without a country (BT-55), or a broken sum rule.
pub fn cii_xml(
    catalog: &Catalog,
    invoice: &Invoice,
    seller: &Issuer,
    buyer: &Account,
) -> Result<String, RaterError> {
    let (Some(number), Some(issued), Some(due)) =
        (&invoice.number, invoice.issue_date, invoice.due_date)
    else {
        return Err(refuse(
            invoice,
            "BR-02",
            "an interim invoice has no number, issue or due date: finalize the period first",
        ));
    };
    let no = |rule, m: String| refuse(invoice, rule, m);
    let country = buyer_country(buyer, &no)?;
    let vat = vat_category(&invoice.bill.taxes, jurisdiction(catalog, buyer), &no)?;
    let d = invoice_document(catalog, invoice, number, issued, Some(due));
    check_document(&d, &vat, seller, buyer, &no)?;
    Ok(write(&d, &vat, seller, buyer, country))
}

/// The Cross Industry Invoice XML of a numbered credit note (381) or debit note (383),
/// referring to the invoice it corrects. A credit note states what is credited, so its
/// amounts are the note's with the sign turned; each line is one unit (`C62`) at its change
/// of net, the change of quantity in its name (a note may change an amount without a
/// quantity).
///
/// # Errors
/// [`RaterError::EInvoice`] as [`cii_xml`]; a note's tax that is not its net times the rate
/// to the cent (a difference of two rounded taxes can be a cent off) is refused (BR-S-09).
pub fn note_xml(
    catalog: &Catalog,
    note: &pricing::Note,
    seller: &Issuer,
    buyer: &Account,
) -> Result<String, RaterError> {
    let no = |rule, message: String| RaterError::EInvoice {
        document: note
            .number
            .clone()
            .unwrap_or_else(|| "(unnumbered note)".into()),
        account: note.account.clone(),
        rule,
        message,
    };
    let Some(number) = &note.number else {
        return Err(no(
            "BR-02",
            "an unnumbered note is billed on a later invoice, not issued".into(),
        ));
    };
    let country = buyer_country(buyer, &no)?;
    let credit = note.kind == pricing::NoteKind::Credit;
    let sign = if credit { -Decimal::ONE } else { Decimal::ONE };
    let vat = vat_category(&note.taxes, jurisdiction(catalog, buyer), &no)?;
    let lines = note
        .lines()
        .map(|l| {
            let amount = sign * l.amount;
            let name = if l.unit.is_empty() {
                l.description.clone()
            } else {
                format!(
                    "{} (quantity change {} {})",
                    l.description,
                    num(l.quantity),
                    l.unit
                )
            };
            TradeLine {
                product: &l.product,
                name,
                price: amount.abs(),
                per: Decimal::ONE,
                unit_code: "C62",
                quantity: if amount.is_sign_negative() {
                    -Decimal::ONE
                } else {
                    Decimal::ONE
                },
                allowance: Decimal::ZERO,
                net: amount,
            }
        })
        .collect();
    let tax: Decimal = note.taxes.iter().map(|t| t.amount).sum();
    let d = Document {
        type_code: if credit { 381 } else { 383 },
        number,
        issued: note.issue_date,
        due: None,
        corrects: Some(&note.corrects),
        buyer_name: &note.account_name,
        buyer_address: &note.address,
        currency: &note.currency,
        first: note.period.start.date_naive(),
        last: (note.period.end() - chrono::Duration::seconds(1)).date_naive(),
        lines,
        net: sign * note.net,
        tax: sign * tax,
        total: sign * note.total,
        prepaid: Decimal::ZERO,
        due_payable: sign * note.total,
    };
    check_document(&d, &vat, seller, buyer, &no)?;
    Ok(write(&d, &vat, seller, buyer, country))
}

/// The XML of a checked document. The XSD is a sequence: every element is written in its
/// schema order.
fn write(
    d: &Document<'_>,
    vat: &VatCategory,
    seller: &Issuer,
    buyer: &Account,
    country: &str,
) -> String {
    let cur = esc(d.currency);
    let rate = num(vat.rate_pct);
    let mut x = String::with_capacity(4096 + 900 * d.lines.len());
    x.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<rsm:CrossIndustryInvoice",
        " xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\"",
        " xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\"",
        " xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\"",
        " xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">\n",
    ));
    let _ = write!(
        x,
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{EN16931}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>\n\
         <rsm:ExchangedDocument><ram:ID>{}</ram:ID><ram:TypeCode>{}</ram:TypeCode><ram:IssueDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>\n\
         <rsm:SupplyChainTradeTransaction>\n",
        esc(d.number),
        d.type_code,
        date(d.issued)
    );
    for (i, l) in d.lines.iter().enumerate() {
        let basis = if l.per == Decimal::ONE {
            String::new()
        } else {
            format!(
                "<ram:BasisQuantity unitCode=\"{}\">{}</ram:BasisQuantity>",
                l.unit_code,
                num(l.per)
            )
        };
        let _ = write!(
            x,
            "<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{}</ram:LineID></ram:AssociatedDocumentLineDocument>\
             <ram:SpecifiedTradeProduct><ram:SellerAssignedID>{}</ram:SellerAssignedID><ram:Name>{}</ram:Name></ram:SpecifiedTradeProduct>\
             <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount>{basis}</ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>\
             <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"{}\">{}</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>\
             <ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>{}</ram:CategoryCode><ram:RateApplicablePercent>{rate}</ram:RateApplicablePercent></ram:ApplicableTradeTax>",
            i + 1,
            esc(l.product),
            esc(&l.name),
            num(l.price),
            l.unit_code,
            num(l.quantity),
            vat.code,
        );
        if !l.allowance.is_zero() {
            // Discounts and SLA credits spread onto the line (a charge if ever positive).
            let charge = l.allowance.is_sign_positive();
            let _ = write!(
                x,
                "<ram:SpecifiedTradeAllowanceCharge><ram:ChargeIndicator><udt:Indicator>{charge}</udt:Indicator></ram:ChargeIndicator><ram:ActualAmount>{}</ram:ActualAmount><ram:Reason>{}</ram:Reason></ram:SpecifiedTradeAllowanceCharge>",
                amt(l.allowance.abs()),
                if charge { "Adjustment" } else { "Discounts and SLA credits" }
            );
        }
        let _ = writeln!(
            x,
            "<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>",
            amt(l.net)
        );
    }
    x.push_str("<ram:ApplicableHeaderTradeAgreement>");
    let _ = write!(
        x,
        "<ram:BuyerReference>{}</ram:BuyerReference>",
        esc(&buyer.id)
    );
    party(
        &mut x,
        "SellerTradeParty",
        &seller.name,
        &seller.address,
        seller.postcode.as_deref(),
        seller.city.as_deref(),
        &seller.country,
        seller.vat_id.as_deref(),
    );
    party(
        &mut x,
        "BuyerTradeParty",
        d.buyer_name,
        d.buyer_address,
        None,
        None,
        country,
        buyer.vat_id.as_deref(),
    );
    x.push_str("</ram:ApplicableHeaderTradeAgreement>\n");
    let _ = writeln!(
        x,
        "<ram:ApplicableHeaderTradeDelivery><ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent></ram:ApplicableHeaderTradeDelivery>",
        date(d.last)
    );
    let terms = match d.due {
        Some(due) => format!(
            "<ram:SpecifiedTradePaymentTerms><ram:Description>Due {} ({} days)</ram:Description><ram:DueDateDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>",
            due.format("%Y-%m-%d"),
            (due - d.issued).num_days(),
            date(due)
        ),
        None => "<ram:SpecifiedTradePaymentTerms><ram:Description>Settled against the account's balance</ram:Description></ram:SpecifiedTradePaymentTerms>".to_string(),
    };
    let corrects = d.corrects.map_or_else(String::new, |n| {
        format!(
            "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID></ram:InvoiceReferencedDocument>",
            esc(n)
        )
    });
    let _ = write!(
        x,
        "<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>{cur}</ram:InvoiceCurrencyCode>\
         <ram:ApplicableTradeTax><ram:CalculatedAmount>{}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>{}<ram:BasisAmount>{}</ram:BasisAmount><ram:CategoryCode>{}</ram:CategoryCode>{}<ram:RateApplicablePercent>{rate}</ram:RateApplicablePercent></ram:ApplicableTradeTax>\
         <ram:BillingSpecifiedPeriod><ram:StartDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:StartDateTime><ram:EndDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:EndDateTime></ram:BillingSpecifiedPeriod>\
         {terms}\
         <ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{}</ram:LineTotalAmount><ram:TaxBasisTotalAmount>{}</ram:TaxBasisTotalAmount><ram:TaxTotalAmount currencyID=\"{cur}\">{}</ram:TaxTotalAmount><ram:GrandTotalAmount>{}</ram:GrandTotalAmount><ram:TotalPrepaidAmount>{}</ram:TotalPrepaidAmount><ram:DuePayableAmount>{}</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>\
         {corrects}</ram:ApplicableHeaderTradeSettlement>\n</rsm:SupplyChainTradeTransaction>\n</rsm:CrossIndustryInvoice>\n",
        amt(d.tax),
        vat.exemption_reason
            .map(|r| format!("<ram:ExemptionReason>{}</ram:ExemptionReason>", esc(r)))
            .unwrap_or_default(),
        amt(d.net),
        vat.code,
        if vat.code == "AE" {
            "<ram:ExemptionReasonCode>VATEX-EU-AE</ram:ExemptionReasonCode>"
        } else {
            ""
        },
        date(d.first),
        date(d.last),
        amt(d.net),
        amt(d.net),
        amt(d.tax),
        amt(d.total),
        amt(d.prepaid),
        amt(d.due_payable),
    );
    x
}

/// A trade party in schema order: name, postal address (street lines, postcode, city,
/// country), VAT registration.
#[allow(clippy::too_many_arguments)]
fn party(
    x: &mut String,
    tag: &str,
    name: &str,
    address: &[String],
    postcode: Option<&str>,
    city: Option<&str>,
    country: &str,
    vat_id: Option<&str>,
) {
    let _ = write!(
        x,
        "<ram:{tag}><ram:Name>{}</ram:Name><ram:PostalTradeAddress>",
        esc(name)
    );
    if let Some(p) = postcode {
        let _ = write!(x, "<ram:PostcodeCode>{}</ram:PostcodeCode>", esc(p));
    }
    for (tag, line) in ["LineOne", "LineTwo", "LineThree"].iter().zip(address) {
        let _ = write!(x, "<ram:{tag}>{}</ram:{tag}>", esc(line));
    }
    if let Some(c) = city {
        let _ = write!(x, "<ram:CityName>{}</ram:CityName>", esc(c));
    }
    let _ = write!(
        x,
        "<ram:CountryID>{}</ram:CountryID></ram:PostalTradeAddress>",
        esc(country)
    );
    if let Some(v) = vat_id {
        let _ = write!(
            x,
            "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{}</ram:ID></ram:SpecifiedTaxRegistration>",
            esc(v)
        );
    }
    let _ = write!(x, "</ram:{tag}>");
}
