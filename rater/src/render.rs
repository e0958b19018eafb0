//! Invoices and credit and debit notes for people and spreadsheets: text tables shaped like a CloudStack billing invoice (seed 000), and CSV.
//!
//! Every amount printed is an amount of the invoice, formatted only (currency code, thousands
//! separators, the currency's minor units): the renderer never adds anything up itself, so the
//! table shows exactly the totals `pricing` checked.

use pricing::bill::{ADJUSTMENTS_SECTION, SUBSCRIPTIONS_SECTION};
use pricing::money::{group_thousands, minor_units};
use pricing::note::{NoteKind, NoteLine};
use pricing::unit::shown_quantity;
use pricing::{Invoice, InvoiceKind, Line, Note, Section, SummaryRow};
use rust_decimal::Decimal;

/// Digits shown after the point of a unit price at least (seed 000 shows `GBP 0.0069`).
const UNIT_PRICE_DP_MIN: u32 = 4;
/// And at most: finer prices are shown rounded (the exact price is in the JSON).
const UNIT_PRICE_DP_MAX: u32 = 6;

/// A money amount in the invoice currency: `GBP 2,955.91`.
pub fn money(currency: &str, amount: Decimal) -> String {
    let dp = minor_units(currency).unwrap_or(2);
    // Amounts arrive rounded by pricing; this only fixes the scale (and never shows "-0.00").
    let mut a =
        amount.round_dp_with_strategy(dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    if a.is_zero() {
        a = Decimal::ZERO;
    }
    a.rescale(dp);
    format!("{currency} {}", group_thousands(a))
}

pub fn unit_price(currency: &str, price: Decimal) -> String {
    let mut p = price.round_dp(UNIT_PRICE_DP_MAX).normalize();
    if p.scale() < UNIT_PRICE_DP_MIN {
        p.rescale(UNIT_PRICE_DP_MIN);
    }
    format!("{currency} {}", group_thousands(p))
}

/// A quantity with its unit, as every renderer shows it ([`shown_quantity`]): `1,344 h`,
/// `0.01 GB`; tiny non-zero quantities keep enough digits not to read as zero.
pub fn quantity(q: Decimal, unit: &str) -> String {
    let shown = shown_quantity(q);
    if unit.is_empty() {
        group_thousands(shown)
    } else {
        format!("{} {unit}", group_thousands(shown))
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// Rows of one block: cells left-aligned in the first column, right-aligned in the others.
struct Block {
    rows: Vec<Vec<String>>,
}

impl Block {
    fn widths(&self) -> Vec<usize> {
        let n = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| width(c))
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }
}

fn push_row(out: &mut String, row: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (i, w) in widths.iter().enumerate() {
        let cell = row.get(i).map(String::as_str).unwrap_or("");
        let pad = w.saturating_sub(width(cell));
        if i == 0 {
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        } else {
            line.push_str("  ");
            line.push_str(&" ".repeat(pad));
            line.push_str(cell);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The invoice as a text table.
pub fn invoice_table(inv: &Invoice) -> String {
    let cur = inv.bill.currency.as_str();
    let mut out = String::new();
    let number = match (&inv.kind, &inv.number) {
        (_, Some(n)) => n.clone(),
        (InvoiceKind::Interim, None) => "interim (not numbered)".to_string(),
        (InvoiceKind::Final, None) => "final (unnumbered)".to_string(),
    };
    let last_day = inv.period_end - chrono::Duration::days(1);
    out.push_str(&format!(
        "Invoice period: From {} to {}  Account: {}  Invoice number: {}\n",
        inv.period.start.format("%Y-%m-%d"),
        last_day.format("%Y-%m-%d"),
        inv.account,
        number
    ));
    if let Some(as_of) = inv.as_of {
        out.push_str(&format!(
            "Interim invoice to date: {}\n",
            as_of.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if let (Some(issued), Some(due)) = (inv.issue_date, inv.due_date) {
        out.push_str(&format!(
            "Issue date: {}  Due date: {}\n",
            issued.format("%Y-%m-%d"),
            due.format("%Y-%m-%d")
        ));
    }
    if let Some(issuer) = &inv.bill.issuer {
        out.push_str(&format!("Issued by {issuer}\n"));
    }
    out.push_str(&inv.account_name);
    out.push('\n');
    for a in &inv.address {
        out.push_str(a);
        out.push('\n');
    }
    out.push_str(&format!(
        "Catalog {} version {}; accounts version {}\n",
        inv.bill.catalog_id,
        inv.bill.catalog_version,
        inv.accounts_version.as_deref().unwrap_or("-")
    ));

    // One table for all sections so that columns line up down the whole invoice.
    let mut block = Block { rows: Vec::new() };
    let mut averaged = false;
    if inv.blocks.is_empty() {
        for s in &inv.bill.sections {
            averaged |= section_rows(&mut block, inv, cur, s);
        }
    } else {
        // An invoice in blocks (one per project or region): each block's sections and total,
        // then the invoice's summary, whose subtotal the blocks add up to.
        for b in &inv.blocks {
            block.rows.push(Vec::new());
            block.rows.push(vec![format!("Block: {}", b.name)]);
            for s in &b.sections {
                averaged |= section_rows(&mut block, inv, cur, s);
            }
            block.rows.push(vec![
                format!("Total of {}", b.name),
                String::new(),
                String::new(),
                money(cur, b.total),
            ]);
        }
    }
    block.rows.push(Vec::new());
    for row in inv.summary_rows() {
        if let SummaryRow::BroughtForward(_) | SummaryRow::PrepaidRemaining(_) = row {
            // The balance statement is a block of its own, and the prepaid credit left (which
            // adds up with nothing above it) another.
            block.rows.push(Vec::new());
        }
        block.rows.push(summary_row(cur, &row));
    }

    let widths = block.widths();
    for row in &block.rows {
        push_row(&mut out, row, &widths);
    }
    if averaged {
        out.push_str("* average unit price of a tiered, package, included or minimum price\n");
    }
    out
}

/// A section's rows: a blank row, its header, its lines, its total. True when a unit price
/// shown is an average (marked `*`).
fn section_rows(block: &mut Block, inv: &Invoice, cur: &str, s: &Section) -> bool {
    let mut averaged = false;
    block.rows.push(Vec::new());
    if s.name == SUBSCRIPTIONS_SECTION {
        block.rows.push(vec![
            s.name.clone(),
            "One-time fee".into(),
            "Monthly fee".into(),
            "Cost".into(),
        ]);
        for l in &s.lines {
            block.rows.push(subscription_row(inv, cur, l));
        }
    } else {
        block.rows.push(vec![
            s.name.clone(),
            "Quantity".into(),
            "Unit Price".into(),
            "Cost".into(),
        ]);
        for l in &s.lines {
            let mut price = unit_price(cur, l.unit_price);
            if l.per != Decimal::ONE {
                price = format!("{price} / {}", group_thousands(l.per.normalize()));
            }
            if s.name == ADJUSTMENTS_SECTION {
                // Amounts net of their own period's discounts: no unit price multiplies out.
                price = String::new();
            } else if l.unit_price_is_average {
                price.push('*');
                averaged = true;
            }
            block.rows.push(vec![
                l.description.clone(),
                quantity(l.quantity, &l.unit),
                price,
                money(cur, l.amount),
            ]);
        }
    }
    block.rows.push(vec![
        String::new(),
        String::new(),
        String::new(),
        money(cur, s.total),
    ]);
    averaged
}

/// One row of the totals block: label, nothing, the base an adjustment or tax was computed
/// on, the amount.
fn summary_row(cur: &str, row: &SummaryRow<'_>) -> Vec<String> {
    let on = |base: Decimal| format!("on {}", money(cur, base));
    let (label, base) = match row {
        SummaryRow::Subtotal(_) => ("Subtotal".to_string(), None),
        SummaryRow::Discount(d) => (format!("Discount: {}", d.description), Some(d.base)),
        SummaryRow::SlaCredit(c) => (format!("SLA credit: {}", c.description), Some(c.base)),
        SummaryRow::Net(_) => ("Net".to_string(), None),
        SummaryRow::Tax(t) => (
            format!("{} {}%", t.name, t.rate_pct.normalize()),
            Some(t.base),
        ),
        SummaryRow::Total(_) => ("Total".to_string(), None),
        SummaryRow::CreditsApplied(_) => ("Credits applied".to_string(), None),
        SummaryRow::AmountDue(_) => ("Amount due".to_string(), None),
        SummaryRow::BroughtForward(_) => ("Brought forward".to_string(), None),
        SummaryRow::Payment {
            date, reference, ..
        } => {
            let label = if reference.is_empty() {
                format!("Payment {}", date.format("%Y-%m-%d"))
            } else {
                format!("Payment {} ({reference})", date.format("%Y-%m-%d"))
            };
            (label, None)
        }
        SummaryRow::Payments(_) => ("Payments".to_string(), None),
        SummaryRow::DueThisPeriod(_) => ("Amount due this period".to_string(), None),
        SummaryRow::CarriedForward(_) => ("Carried forward".to_string(), None),
        SummaryRow::PrepaidRemaining(_) => ("Prepaid credit remaining".to_string(), None),
    };
    vec![
        label,
        String::new(),
        base.map(on).unwrap_or_default(),
        money(cur, row.amount()),
    ]
}

fn subscription_row(inv: &Invoice, cur: &str, l: &Line) -> Vec<String> {
    let month_days = Decimal::from(inv.period.days_in_month());
    let description = match l.days {
        Some(d) if d != month_days => {
            format!(
                "{} ({} of {} days)",
                l.description,
                d.normalize(),
                month_days
            )
        }
        _ => l.description.clone(),
    };
    let fee = |f: Option<Decimal>| {
        f.filter(|f| !f.is_zero())
            .map(|f| money(cur, f))
            .unwrap_or_default()
    };
    vec![
        description,
        fee(l.one_time_fee),
        fee(l.monthly_fee),
        money(cur, l.amount),
    ]
}

/// Several invoices as text, separated by a blank line.
pub fn invoices_table(invoices: &[Invoice]) -> String {
    invoices
        .iter()
        .map(invoice_table)
        .collect::<Vec<_>>()
        .join("\n")
}

const CSV_HEADER: [&str; 18] = [
    "invoice_number",
    "kind",
    "account",
    "period",
    "currency",
    "section",
    "description",
    "product",
    "meter",
    "quantity",
    "unit",
    "unit_price",
    "per",
    "one_time_fee",
    "monthly_fee",
    "amount",
    "catalog_version",
    "block",
];

/// Invoices as CSV: one row per line, then one row per summary row (discounts, credits, taxes
/// and totals, with `section` naming which; not the net, single payments or the repeated
/// amount due), amounts and prices exact, quantities as the invoice shows them
/// ([`shown_quantity`]; the exact ones are in the JSON), no thousands separators. An invoice
/// in blocks (`Account::invoice_blocks`) has one row per line part instead, its block in the
/// last column (empty otherwise): the parts add up to the lines, so a column sum is the same.
pub fn invoices_csv(invoices: &[Invoice]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).expect("csv to memory");
    for inv in invoices {
        let kind = match inv.kind {
            InvoiceKind::Interim => "interim",
            InvoiceKind::Final => "final",
        };
        let number = inv.number.clone().unwrap_or_default();
        let opt = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_default();
        let mut row =
            |block: &str, section: &str, description: &str, l: Option<&Line>, amount: Decimal| {
                let rec: [String; 18] = [
                    number.clone(),
                    kind.into(),
                    inv.account.clone(),
                    inv.period_id.clone(),
                    inv.bill.currency.clone(),
                    section.into(),
                    description.into(),
                    l.map(|l| l.product.clone()).unwrap_or_default(),
                    l.and_then(|l| l.meter.clone()).unwrap_or_default(),
                    l.map(|l| shown_quantity(l.quantity).to_string())
                        .unwrap_or_default(),
                    l.map(|l| l.unit.clone()).unwrap_or_default(),
                    l.map(|l| l.unit_price.to_string()).unwrap_or_default(),
                    l.map(|l| l.per.to_string()).unwrap_or_default(),
                    opt(l.and_then(|l| l.one_time_fee)),
                    opt(l.and_then(|l| l.monthly_fee)),
                    amount.to_string(),
                    inv.bill.catalog_version.clone(),
                    block.into(),
                ];
                w.write_record(&rec).expect("csv to memory");
            };
        if inv.blocks.is_empty() {
            for s in &inv.bill.sections {
                for l in &s.lines {
                    row("", &s.name, &l.description, Some(l), l.amount);
                }
            }
        }
        for b in &inv.blocks {
            for s in &b.sections {
                for l in &s.lines {
                    row(&b.name, &s.name, &l.description, Some(l), l.amount);
                }
            }
        }
        for r in inv.summary_rows() {
            let (section, description) = match r {
                SummaryRow::Subtotal(_) => ("Subtotal", ""),
                SummaryRow::Discount(d) => ("Discount", d.description.as_str()),
                SummaryRow::SlaCredit(c) => ("SLA credit", c.description.as_str()),
                SummaryRow::Tax(t) => ("Tax", t.name.as_str()),
                SummaryRow::Total(_) => ("Total", ""),
                SummaryRow::CreditsApplied(_) => ("Credits applied", ""),
                SummaryRow::AmountDue(_) => ("Amount due", ""),
                SummaryRow::BroughtForward(_) => ("Brought forward", ""),
                SummaryRow::Payments(_) => ("Payments", ""),
                SummaryRow::CarriedForward(_) => ("Carried forward", ""),
                SummaryRow::PrepaidRemaining(_) => ("Prepaid remaining", ""),
                // Spreadsheets add up the rows above; these repeat or detail them.
                SummaryRow::Net(_) | SummaryRow::Payment { .. } | SummaryRow::DueThisPeriod(_) => {
                    continue
                }
            };
            row("", section, description, None, r.amount());
        }
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv is UTF-8")
}

/// An account's history of final invoices and notes, newest first, as a table.
pub fn history_table(account: &str, docs: &[crate::model::DocRef]) -> String {
    let mut out = format!("History of {account}\n");
    if docs.is_empty() {
        out.push_str("  no final invoice or note yet\n");
        return out;
    }
    for d in docs {
        let kind = match d.kind {
            crate::model::DocKind::Invoice => "invoice",
            crate::model::DocKind::CreditNote => "credit note",
            crate::model::DocKind::DebitNote => "debit note",
        };
        let issued = chrono::DateTime::from_timestamp_millis(d.issued_at_ms)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_default();
        let corrects = d
            .corrects
            .as_deref()
            .map(|n| format!("  (corrects {n})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {issued}  {:<12} {:<16} {:<10} {:>16} {}{corrects}\n",
            kind,
            d.number,
            d.period,
            pricing::money::group_thousands(d.total),
            d.currency
        ));
    }
    out
}

/// A note's title: `CREDIT NOTE` or `DEBIT NOTE`.
fn note_title(note: &Note) -> &'static str {
    match note.kind {
        NoteKind::Credit => "CREDIT NOTE",
        NoteKind::Debit => "DEBIT NOTE",
    }
}

/// A change of quantity, signed: `+10 h`, `-1,000 GB.h`, `0 month`.
fn quantity_change(q: Decimal, unit: &str) -> String {
    let shown = quantity(q, unit);
    if q.is_sign_positive() && !q.is_zero() {
        format!("+{shown}")
    } else {
        shown
    }
}

/// A credit or debit note as a text table, shaped like an invoice: its title, number, the
/// invoice it corrects, reason, period and issue date; each section's changed lines (change of
/// quantity, change of net amount) and total; the net, the change of each tax, the total.
/// Amounts are signed as they add to the invoice (negative on a credit note).
pub fn note_table(note: &Note) -> String {
    let cur = note.currency.as_str();
    let mut out = String::new();
    out.push_str(&format!(
        "{}  Number: {}  Corrects invoice: {}\n",
        note_title(note),
        note.number.as_deref().unwrap_or("(not numbered)"),
        note.corrects
    ));
    let last_day = note.period.end() - chrono::Duration::days(1);
    out.push_str(&format!(
        "Invoice period: From {} to {}  Account: {}  Issue date: {}\n",
        note.period.start.format("%Y-%m-%d"),
        last_day.format("%Y-%m-%d"),
        note.account,
        note.issue_date.format("%Y-%m-%d")
    ));
    out.push_str(&format!("Reason: {}\n", note.reason.label()));
    out.push_str(&note.account_name);
    out.push('\n');
    for a in &note.address {
        out.push_str(a);
        out.push('\n');
    }
    out.push_str(&format!(
        "Catalog {} version {}; accounts version {}\n",
        note.catalog_id,
        note.catalog_version,
        note.accounts_version.as_deref().unwrap_or("-")
    ));
    let mut block = Block { rows: Vec::new() };
    for s in &note.sections {
        block.rows.push(Vec::new());
        block.rows.push(vec![
            s.name.clone(),
            "Quantity change".into(),
            String::new(),
            "Amount".into(),
        ]);
        for l in &s.lines {
            block.rows.push(vec![
                l.description.clone(),
                quantity_change(l.quantity, &l.unit),
                String::new(),
                money(cur, l.amount),
            ]);
        }
        block.rows.push(vec![
            String::new(),
            String::new(),
            String::new(),
            money(cur, s.total),
        ]);
    }
    block.rows.push(Vec::new());
    for row in note.summary_rows() {
        block.rows.push(summary_row(cur, &row));
    }
    let widths = block.widths();
    for row in &block.rows {
        push_row(&mut out, row, &widths);
    }
    out
}

/// Several notes as text, separated by a blank line.
pub fn notes_table(notes: &[Note]) -> String {
    notes.iter().map(note_table).collect::<Vec<_>>().join("\n")
}

const NOTE_CSV_HEADER: [&str; 17] = [
    "note_number",
    "kind",
    "corrects",
    "reason",
    "account",
    "period",
    "issue_date",
    "currency",
    "section",
    "description",
    "product",
    "meter",
    "quantity_change",
    "unit",
    "amount",
    "tax",
    "catalog_version",
];

/// Notes as CSV: one row per changed line (its change of quantity, net amount and line tax),
/// then the net, each tax and the total, with `section` naming which; exact decimals.
pub fn notes_csv(notes: &[Note]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(NOTE_CSV_HEADER).expect("csv to memory");
    for note in notes {
        let kind = note.kind.label();
        let mut row = |section: &str, description: &str, l: Option<&NoteLine>, amount: Decimal| {
            let rec: [String; 17] = [
                note.number.clone().unwrap_or_default(),
                kind.into(),
                note.corrects.clone(),
                note.reason.label().into(),
                note.account.clone(),
                note.period_id.clone(),
                note.issue_date.format("%Y-%m-%d").to_string(),
                note.currency.clone(),
                section.into(),
                description.into(),
                l.map(|l| l.product.clone()).unwrap_or_default(),
                l.and_then(|l| l.meter.clone()).unwrap_or_default(),
                l.map(|l| shown_quantity(l.quantity).to_string())
                    .unwrap_or_default(),
                l.map(|l| l.unit.clone()).unwrap_or_default(),
                amount.to_string(),
                l.map(|l| l.tax.to_string()).unwrap_or_default(),
                note.catalog_version.clone(),
            ];
            w.write_record(&rec).expect("csv to memory");
        };
        for s in &note.sections {
            for l in &s.lines {
                row(&s.name, &l.description, Some(l), l.amount);
            }
        }
        for r in note.summary_rows() {
            let (section, description) = match r {
                SummaryRow::Net(_) => ("Net", ""),
                SummaryRow::Tax(t) => ("Tax", t.name.as_str()),
                SummaryRow::Total(_) => ("Total", ""),
                // A note's summary has only the three above.
                _ => continue,
            };
            row(section, description, None, r.amount());
        }
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv is UTF-8")
}

/// A margin percentage (`24.95 %`), or `-` when the price is zero.
fn pct(p: Option<Decimal>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p:.2} %"))
}

fn margin_cells(cur: &str, m: &pricing::wholesale::Margin) -> [String; 4] {
    [
        money(cur, m.retail),
        money(cur, m.wholesale),
        money(cur, m.margin),
        pct(m.margin_pct),
    ]
}

/// A reseller's margin report as text: a block per customer (its lines and total), then the
/// products over all customers, then the totals. Every figure is the report's own.
pub fn margin_table(r: &pricing::wholesale::MarginReport) -> String {
    let cur = r.currency.as_str();
    let mut out = format!(
        "Margin of reseller {} for period {} in {cur} (wholesale {} converted at {}){}\n",
        r.reseller,
        r.period_id,
        r.wholesale_currency,
        r.fx_rate.normalize(),
        r.statement.as_ref().map_or_else(
            || "; statement interim".to_string(),
            |n| format!("; statement {n}")
        )
    );
    let head = |first: &str| {
        [
            first,
            "Quantity",
            "Reseller price",
            "Wholesale cost",
            "Margin",
            "Margin %",
        ]
        .map(str::to_string)
        .to_vec()
    };
    let mut block = Block { rows: Vec::new() };
    for c in &r.customers {
        block.rows.push(Vec::new());
        let title = format!(
            "{} ({}), invoice {}",
            c.name,
            c.account,
            c.invoice.as_deref().unwrap_or("interim")
        );
        block.rows.push(head(&title));
        for l in &c.lines {
            let mut row = vec![
                format!("  {}", l.description),
                quantity(l.quantity, &l.unit),
            ];
            row.extend(margin_cells(cur, &l.margin));
            block.rows.push(row);
        }
        let mut row = vec![format!("Total {}", c.account), String::new()];
        row.extend(margin_cells(cur, &c.total));
        block.rows.push(row);
    }
    block.rows.push(Vec::new());
    block.rows.push(head("By product"));
    for p in &r.products {
        let mut row = vec![format!("  {}", p.product), String::new()];
        row.extend(margin_cells(cur, &p.total));
        block.rows.push(row);
    }
    block.rows.push(Vec::new());
    let mut row = vec!["Total".to_string(), String::new()];
    row.extend(margin_cells(cur, &r.total));
    block.rows.push(row);
    let widths = block.widths();
    for row in &block.rows {
        push_row(&mut out, row, &widths);
    }
    out
}

/// A reseller's margin report as CSV: one row per customer line, then one per customer total,
/// then the report's total; exact decimals.
pub fn margin_csv(r: &pricing::wholesale::MarginReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "reseller",
        "period",
        "currency",
        "fx_rate",
        "row",
        "account",
        "invoice",
        "description",
        "product",
        "quantity",
        "unit",
        "reseller_price",
        "wholesale_cost",
        "margin",
        "margin_pct",
    ])
    .expect("csv to memory");
    let mut row = |kind: &str,
                   account: &str,
                   invoice: &str,
                   l: Option<&pricing::wholesale::MarginLine>,
                   m: &pricing::wholesale::Margin| {
        let rec: [String; 15] = [
            r.reseller.clone(),
            r.period_id.clone(),
            r.currency.clone(),
            r.fx_rate.to_string(),
            kind.to_string(),
            account.to_string(),
            invoice.to_string(),
            l.map(|l| l.description.clone()).unwrap_or_default(),
            l.map(|l| l.product.clone()).unwrap_or_default(),
            l.map(|l| shown_quantity(l.quantity).to_string())
                .unwrap_or_default(),
            l.map(|l| l.unit.clone()).unwrap_or_default(),
            m.retail.to_string(),
            m.wholesale.to_string(),
            m.margin.to_string(),
            m.margin_pct.map(|p| p.to_string()).unwrap_or_default(),
        ];
        w.write_record(&rec).expect("csv to memory");
    };
    for c in &r.customers {
        let invoice = c.invoice.clone().unwrap_or_default();
        for l in &c.lines {
            row("line", &c.account, &invoice, Some(l), &l.margin);
        }
        row("customer", &c.account, &invoice, None, &c.total);
    }
    row(
        "total",
        "",
        r.statement.as_deref().unwrap_or(""),
        None,
        &r.total,
    );
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv is UTF-8")
}

/// A dimension's value as shown: `-` for parts without one (usage without a project).
fn key_cell(k: &str) -> String {
    if k.is_empty() {
        "-".to_string()
    } else {
        k.to_string()
    }
}

fn report_head(g: &pricing::report::Grouping) -> Vec<String> {
    let mut head = vec!["Period".to_string(), "Currency".to_string()];
    head.extend(g.group_by.iter().map(|d| d.name().to_string()));
    head.extend(["Quantity", "Amount", "Wholesale", "Margin"].map(str::to_string));
    head
}

/// A usage and cost report as a text table: one row per bucket and grouping, then the totals
/// per currency (each the sum of the rows above it).
pub fn report_table(r: &pricing::report::Report) -> String {
    let g = &r.main;
    let mut out = format!(
        "Usage and cost from {} to {} by {}{} (invoices spread: {})\n",
        r.from,
        r.to,
        r.by.name(),
        if g.group_by.is_empty() {
            String::new()
        } else {
            format!(
                " and {}",
                g.group_by
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        r.invoices
    );
    let mut block = Block {
        rows: vec![report_head(g)],
    };
    let opt = |cur: &str, a: Option<Decimal>| a.map(|a| money(cur, a)).unwrap_or_default();
    for row in &g.rows {
        let mut cells = vec![row.period.to_string(), row.currency.clone()];
        cells.extend(row.keys.iter().map(|k| key_cell(k)));
        cells.push(
            row.quantity
                .map(|q| quantity(q, row.unit.as_deref().unwrap_or_default()))
                .unwrap_or_default(),
        );
        cells.push(money(&row.currency, row.amount));
        cells.push(opt(&row.currency, row.wholesale));
        cells.push(opt(&row.currency, row.margin));
        block.rows.push(cells);
    }
    for t in &g.totals {
        let mut cells = vec!["Total".to_string(), t.currency.clone()];
        cells.extend(g.group_by.iter().map(|_| String::new()));
        cells.push(String::new());
        cells.push(money(&t.currency, t.amount));
        cells.push(opt(&t.currency, t.wholesale));
        cells.push(opt(&t.currency, t.margin));
        block.rows.push(cells);
    }
    let widths = block.widths();
    for row in &block.rows {
        push_row(&mut out, row, &widths);
    }
    out
}

/// A name from a tenant's data as a CSV cell: one that a spreadsheet would read as a formula
/// (`=`, `+`, `-`, `@`, a tab or carriage return first) is prefixed with `'`.
pub fn csv_text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// A usage and cost report as CSV: one row per bucket and grouping (exact decimals; a
/// dimension without a value is empty), then a `total` row per currency.
pub fn report_csv(r: &pricing::report::Report) -> String {
    let g = &r.main;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec![
        "row".to_string(),
        "period".to_string(),
        "currency".to_string(),
    ];
    head.extend(g.group_by.iter().map(|d| d.name().to_string()));
    head.extend(["unit", "quantity", "amount", "wholesale", "margin"].map(str::to_string));
    w.write_record(&head).expect("csv to memory");
    let opt = |a: Option<Decimal>| a.map(|a| a.to_string()).unwrap_or_default();
    for row in &g.rows {
        let mut rec = vec![
            "row".to_string(),
            row.period.to_string(),
            row.currency.clone(),
        ];
        rec.extend(row.keys.iter().map(|k| csv_text(k)));
        rec.push(row.unit.clone().unwrap_or_default());
        rec.push(opt(row.quantity));
        rec.push(row.amount.to_string());
        rec.push(opt(row.wholesale));
        rec.push(opt(row.margin));
        w.write_record(&rec).expect("csv to memory");
    }
    for t in &g.totals {
        let mut rec = vec!["total".to_string(), String::new(), t.currency.clone()];
        rec.extend(g.group_by.iter().map(|_| String::new()));
        rec.extend([
            String::new(),
            String::new(),
            t.amount.to_string(),
            opt(t.wholesale),
            opt(t.margin),
        ]);
        w.write_record(&rec).expect("csv to memory");
    }
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv is utf-8")
}

/// What a statement entry is, in words: `Invoice INV-000001 (2017-02), due 2017-04-02`,
/// `Credit note CN-000001 corrects INV-000001`, `Payment BACS-1`.
pub fn statement_description(e: &pricing::account_statement::StatementEntry) -> String {
    let mut d = format!("{} {}", e.kind.label(), e.reference)
        .trim_end()
        .to_string();
    if !e.period.is_empty() {
        d.push_str(&format!(" ({})", e.period));
    }
    if let Some(c) = &e.corrects {
        d.push_str(&format!(" corrects {c}"));
    }
    if let Some(due) = e.due {
        d.push_str(&format!(", due {due}"));
    }
    match (&e.owed_to, e.kind) {
        (Some(to), pricing::account_statement::EntryKind::Payment) => {
            d.push_str(&format!(", to {to}"));
        }
        (Some(to), _) => d.push_str(&format!(", owed to {to}")),
        (None, _) => {}
    }
    d
}

/// An account statement as a text table: opening balance, each entry with the balance after
/// it, the sums by kind and the closing balance.
pub fn statement_table(st: &pricing::account_statement::AccountStatement) -> String {
    let cur = st.currency.as_str();
    let mut out = format!(
        "Statement of {} ({}) from {} to {}, in {cur}\n",
        st.account_name, st.account, st.from, st.to
    );
    let mut block = Block { rows: Vec::new() };
    block.rows.push(
        ["Date", "Entry", "Amount", "Balance"]
            .map(str::to_string)
            .to_vec(),
    );
    block.rows.push(vec![
        st.from.to_string(),
        "Opening balance".into(),
        String::new(),
        money(cur, st.opening),
    ]);
    for e in &st.entries {
        block.rows.push(vec![
            e.date.to_string(),
            statement_description(e),
            money(cur, e.amount),
            money(cur, e.balance),
        ]);
    }
    block.rows.push(Vec::new());
    let applied = (!st.applied.is_zero()).then_some(("Prepaid credit applied", st.applied));
    for (label, amount) in [
        ("Invoiced", st.invoiced),
        ("Credit notes", st.credited),
        ("Debit notes", st.debited),
    ]
    .into_iter()
    .chain(applied)
    .chain([("Payments received", st.paid)])
    {
        block.rows.push(vec![
            String::new(),
            label.into(),
            money(cur, amount),
            String::new(),
        ]);
    }
    block.rows.push(vec![
        st.to.to_string(),
        "Closing balance".into(),
        String::new(),
        money(cur, st.closing),
    ]);
    // The first column is left-aligned, so the description goes in a right-padded second
    // column by hand: the table's alignment rule is "first left, others right".
    let widths = block.widths();
    for row in &block.rows {
        let mut r = row.clone();
        if r.len() > 1 {
            let pad = widths[1].saturating_sub(width(&r[1]));
            r[1] = format!("{}{}", r[1], " ".repeat(pad));
        }
        push_row(&mut out, &r, &widths);
    }
    for c in &st.other_currencies {
        out.push_str(&format!(
            "Not on this statement: the account's documents and payments in {c} (its statement in {c}: --currency {c}, or ?currency={c})\n"
        ));
    }
    out
}

/// An account statement as CSV: an `opening` row, one row per entry, a `closing` row; exact
/// decimals, amounts signed (positive: owed); `owed_to` names the former issuer an entry is
/// owed or paid to (last, so readers of the earlier columns are unaffected).
pub fn statement_csv(st: &pricing::account_statement::AccountStatement) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "row",
        "account",
        "date",
        "kind",
        "reference",
        "period",
        "corrects",
        "due",
        "currency",
        "amount",
        "balance",
        "owed_to",
    ])
    .expect("csv to memory");
    let row = |w: &mut csv::Writer<Vec<u8>>, cells: [String; 12]| {
        w.write_record(&cells).expect("csv to memory");
    };
    let account = csv_text(&st.account);
    // The opening and closing rows: a date and a balance, nothing else.
    let balance_row =
        |w: &mut csv::Writer<Vec<u8>>, what: &str, date: chrono::NaiveDate, b: Decimal| {
            let mut cells: [String; 12] = Default::default();
            cells[0] = what.into();
            cells[1] = account.clone();
            cells[2] = date.to_string();
            cells[8] = st.currency.clone();
            cells[10] = b.to_string();
            row(w, cells);
        };
    balance_row(&mut w, "opening", st.from, st.opening);
    for e in &st.entries {
        let kind = serde_json::to_value(e.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        row(
            &mut w,
            [
                "entry".into(),
                account.clone(),
                e.date.to_string(),
                kind,
                csv_text(&e.reference),
                e.period.clone(),
                csv_text(e.corrects.as_deref().unwrap_or_default()),
                e.due.map(|d| d.to_string()).unwrap_or_default(),
                st.currency.clone(),
                e.amount.to_string(),
                e.balance.to_string(),
                csv_text(e.owed_to.as_deref().unwrap_or_default()),
            ],
        );
    }
    balance_row(&mut w, "closing", st.to, st.closing);
    String::from_utf8(w.into_inner().expect("csv to memory")).expect("csv is utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pricing::{parse_json, AccountBook, BillingPeriod, Catalog, NoteReason, Unit, UsageRecord};

    const CATALOG: &str = include_str!("../../examples/catalogs/cloudstack.json");
    const ACCOUNTS: &str = include_str!("../../examples/accounts/cloudstack.json");
    const GOLDEN: &str = "tests/golden/invoice_bu1user1.txt";
    const NOTE_GOLDEN: &str = "tests/golden/note_bu1user1.txt";
    const NOTE_CSV_GOLDEN: &str = "tests/golden/note_bu1user1.csv";
    const ISSUED_GOLDEN: &str = "tests/golden/invoice_bu1user1_2017-03_issued.txt";

    fn rec(resource: &str, product: &str, meter: &str, qty: i64, unit: Unit) -> UsageRecord {
        let start = "2017-02-03T00:00:00Z".parse().unwrap();
        UsageRecord {
            record_id: None,
            account: "bu1user1".into(),
            project: None,
            resource: resource.into(),
            product: product.into(),
            meter: meter.into(),
            quantity: Decimal::from(qty),
            unit,
            start,
            end: start + chrono::Duration::hours(1),
            tags: vec![],
            region: None,
        }
    }

    /// The seed 000 invoice's usage (whole hours and GB-hours), priced by the example catalog.
    fn seed_invoice() -> Invoice {
        priced(&seed_records())
    }

    /// February of `bu1user1` priced from `records`, finalized as invoice ratecard-001575.
    fn priced(records: &[UsageRecord]) -> Invoice {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let book: AccountBook = parse_json(ACCOUNTS).unwrap();
        let period = BillingPeriod::month(2017, 2).unwrap();
        let usage = pricing::rate(&catalog, period, records).unwrap();
        let mut inv =
            pricing::invoice(&catalog, book.account("bu1user1").unwrap(), period, &usage).unwrap();
        inv.accounts_version = Some(book.version.clone());
        inv.number = Some("ratecard-001575".into());
        inv.kind = InvoiceKind::Final;
        inv
    }

    fn seed_records() -> Vec<UsageRecord> {
        vec![
            rec("vm-1", "copper", "vm.running", 1344, Unit::Hours),
            rec("vm-2", "silver", "vm.running", 2312, Unit::Hours),
            rec("vm-3", "bronze", "vm.running", 1047, Unit::Hours),
            rec("vm-3", "bronze", "vm.stopped", 672, Unit::Hours),
            rec("vm-2", "silver", "vm.stopped", 375, Unit::Hours),
            rec(
                "vol-1",
                "small-disk",
                "volume.gbh",
                3359,
                Unit::GigabyteHours,
            ),
            rec(
                "vol-2",
                "large-disk",
                "volume.gbh",
                238_967,
                Unit::GigabyteHours,
            ),
            rec("ip-1", "public-ip", "ip.hours", 3738, Unit::Hours),
        ]
    }

    /// Golden test: set `UPDATE_GOLDEN=1` to rewrite the expected file after a deliberate
    /// change, then read the diff.
    #[test]
    fn an_invoice_in_blocks_shows_each_block_and_its_total() {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let book: AccountBook = parse_json(ACCOUNTS).unwrap();
        let mut acc = book.account("bu1user1").unwrap().clone();
        acc.invoice_blocks = Some(pricing::blocks::BlockBy::Project);
        let period = BillingPeriod::month(2017, 2).unwrap();
        let mut web = rec("vm-1", "copper", "vm.running", 10, Unit::Hours);
        web.project = Some("web".into());
        let mut db = rec("vm-2", "copper", "vm.running", 30, Unit::Hours);
        db.project = Some("db".into());
        let usage = pricing::rate(&catalog, period, &[web, db]).unwrap();
        let inv = pricing::invoice(&catalog, &acc, period, &usage).unwrap();
        let text = invoice_table(&inv);
        // 40 h x 2.20 = 88.00, split 10:30 by hours: web 22.00, db 66.00.
        for expected in [
            "Block: db",
            "Total of db",
            "GBP 66.00",
            "Block: web",
            "GBP 22.00",
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
        let db_at = text.find("Block: db").unwrap();
        assert!(db_at < text.find("Block: web").unwrap() && db_at < text.find("Subtotal").unwrap());
        // The CSV has the parts, each with its block, adding up to the subtotal.
        let csv_text = invoices_csv(std::slice::from_ref(&inv));
        let mut r = csv::Reader::from_reader(csv_text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        let copper: Vec<(String, Decimal)> = rows
            .iter()
            .filter(|r| &r[7] == "copper")
            .map(|r| (r[17].to_string(), r[15].parse().unwrap()))
            .collect();
        assert_eq!(
            copper,
            vec![
                ("db".to_string(), Decimal::new(6600, 2)),
                ("web".to_string(), Decimal::new(2200, 2))
            ]
        );
        let line_rows: Decimal = rows
            .iter()
            .filter(|r| !r[7].is_empty())
            .map(|r| r[15].parse::<Decimal>().unwrap())
            .sum();
        assert_eq!(line_rows, inv.bill.subtotal);
    }

    #[test]
    fn invoice_table_matches_golden() {
        check_golden(GOLDEN, &invoice_table(&seed_invoice()));
    }

    /// Compares `text` with the golden file `golden` (rewritten with `UPDATE_GOLDEN=1`).
    fn check_golden(golden: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(golden);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
                path.display()
            )
        });
        assert_eq!(text, expected, "rendered text differs from {golden}");
    }

    /// February's late usage, after invoice ratecard-001575: 10 more hours of copper (a line
    /// the invoice has) and 1,000 GB-hours of the root volume (one it has not).
    fn late_records() -> Vec<UsageRecord> {
        vec![
            rec("vm-1", "copper", "vm.running", 10, Unit::Hours),
            rec(
                "vol-3",
                "root-volume",
                "volume.gbh",
                1000,
                Unit::GigabyteHours,
            ),
        ]
    }

    /// The debit note of the late usage, numbered as the rater would.
    fn late_note() -> Note {
        let mut all = seed_records();
        all.extend(late_records());
        let mut n = pricing::note(
            &seed_invoice(),
            &[],
            &priced(&all),
            NoteReason::LateUsage,
            "2017-03-02".parse().unwrap(),
        )
        .unwrap()
        .expect("late usage changes the invoice");
        n.number = Some("ratecard-N-000001".into());
        n
    }

    /// The note's figures, computed here from the catalog's prices, not read from the note:
    /// (copper, root volume, net, VAT, total).
    fn late_note_figures() -> [Decimal; 5] {
        let dec = |s: &str| s.parse::<Decimal>().unwrap();
        // 10 h x GBP 2.20 and 1,000 GB.h x GBP 0.0038, each rounded once.
        let copper = (dec("10") * dec("2.2000")).round_dp(2);
        let root = (dec("1000") * dec("0.0038")).round_dp(2);
        let net = copper + root;
        // VAT 20 % per invoice: 20 % of the new net less 20 % of the old, each rounded; the
        // old net is whole pence, so the change is 20 % of 25.80 exactly.
        let vat = (dec("0.20") * net).round_dp(2);
        [copper, root, net, vat, net + vat]
    }

    #[test]
    fn note_table_matches_golden_and_its_figures() {
        let note = late_note();
        let text = note_table(&note);
        check_golden(NOTE_GOLDEN, &text);
        let [copper, root, net, vat, total] = late_note_figures();
        assert_eq!(total.to_string(), "30.96");
        let line = |start: &str| {
            text.lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("no line {start} in\n{text}"))
                .to_string()
        };
        assert_eq!(
            line("DEBIT NOTE"),
            "DEBIT NOTE  Number: ratecard-N-000001  Corrects invoice: ratecard-001575"
        );
        assert!(line("Reason:").ends_with("late usage"));
        assert!(line("Invoice period:").ends_with("Issue date: 2017-03-02"));
        let copper_row = line("Copper");
        assert!(copper_row.contains("+10 h"), "{copper_row}");
        assert!(copper_row.ends_with(&money("GBP", copper)), "{copper_row}");
        let root_row = line("Root Volume");
        assert!(root_row.contains("+1,000 GB.h"), "{root_row}");
        assert!(root_row.ends_with(&money("GBP", root)), "{root_row}");
        assert!(line("Net").ends_with(&money("GBP", net)));
        assert!(line("VAT 20%").ends_with(&money("GBP", vat)));
        assert!(line("Total").ends_with(&money("GBP", total)));
    }

    #[test]
    fn notes_csv_matches_golden_and_its_figures() {
        let text = notes_csv(&[late_note()]);
        check_golden(NOTE_CSV_GOLDEN, &text);
        let [copper, root, net, vat, total] = late_note_figures();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        let amount = |section: &str, description: &str| {
            let row = rows
                .iter()
                .find(|r| &r[8] == section && r[9].starts_with(description))
                .unwrap_or_else(|| panic!("no {section} {description}"));
            row[14].parse::<Decimal>().unwrap()
        };
        assert_eq!(amount("Running VM", "Copper"), copper);
        assert_eq!(amount("Storage", "Root Volume"), root);
        assert_eq!(amount("Net", ""), net);
        assert_eq!(amount("Tax", "VAT"), vat);
        assert_eq!(amount("Total", ""), total);
        assert!(rows
            .iter()
            .all(|r| &r[1] == "debit" && &r[2] == "ratecard-001575"));
    }

    /// March's invoice of `bu1user1`, issued, billing February's late usage in its
    /// Adjustments section (policy `next_period`).
    #[test]
    fn issued_invoice_shows_its_dates_and_adjustments() {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let book: AccountBook = parse_json(ACCOUNTS).unwrap();
        let account = book.account("bu1user1").unwrap();
        let mut adjustment = late_note();
        adjustment.number = None;
        let march = BillingPeriod::month(2017, 3).unwrap();
        let statement = pricing::Statement {
            brought_forward: Decimal::new(1_718_315, 2),
            issue_date: Some("2017-04-01".parse().unwrap()),
            adjustments: vec![adjustment],
            ..pricing::Statement::default()
        };
        let inv = pricing::invoice_with(
            &catalog,
            account,
            march,
            &pricing::Usage::default(),
            &statement,
        )
        .unwrap();
        let text = invoice_table(&inv);
        check_golden(ISSUED_GOLDEN, &text);
        assert!(text.contains("Issue date: 2017-04-01  Due date: 2017-05-01\n"));
        let [copper, root, ..] = late_note_figures();
        let row = |start: &str| text.lines().find(|l| l.starts_with(start)).unwrap();
        let copper_row = row("Copper - 1CPU @ 2.4GHz - 512MB RAM (usage of 2017-02)");
        assert!(copper_row.ends_with(&money("GBP", copper)), "{copper_row}");
        let root_row = row("Root Volume (usage of 2017-02)");
        assert!(root_row.ends_with(&money("GBP", root)), "{root_row}");
        // No prepaid credit on this account: nothing to say about what is left of it.
        assert!(!text.contains("Prepaid credit remaining"));
    }

    #[test]
    fn formats_amounts_quantities_and_prices() {
        let cases: [(String, &str); 7] = [
            (money("GBP", Decimal::new(295591, 2)), "GBP 2,955.91"),
            (money("JPY", Decimal::new(12345, 1)), "JPY 1,235"),
            (money("BHD", Decimal::new(12, 0)), "BHD 12.000"),
            (quantity(Decimal::from(238_967), "GB.h"), "238,967 GB.h"),
            (quantity(Decimal::new(93, 4), "GB"), "0.01 GB"),
            (quantity(Decimal::new(4, 4), "GB"), "0.0004 GB"),
            (unit_price("GBP", Decimal::new(22, 1)), "GBP 2.2000"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn csv_has_a_row_per_line_and_totals() {
        let inv = seed_invoice();
        let text = invoices_csv(std::slice::from_ref(&inv));
        let lines = inv.bill.lines().count();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert!(rows.len() > lines);
        let total = rows.iter().find(|r| &r[5] == "Total").unwrap();
        assert_eq!(total[15].parse::<Decimal>().unwrap(), inv.bill.total);
    }
}
