//! Invoices as PDF/A-3b documents laid out after the seed 000 invoice, white-labelled with the issuer's brand, with the EN 16931 e-invoice embedded as `factur-x.xml`.
//!
//! Layout: a band in the brand's colour with the issuer's name and the document's number; the
//! issuer and the customer (account, domain, address, VAT ids); number, period, issue and due
//! dates; the sections with quantity, unit price and amount and their totals; subtotal,
//! discounts, credits, net, taxes, total, credit applied, amount due; then the balance: brought
//! forward, payments, carried forward. Rows that do not fit go to the next page under the
//! repeated column heads; each page says "page i of n".
//!
//! Text is set in DejaVu Sans (shipped in `rater/assets/fonts`, subset to Latin scripts and
//! currency signs), embedded and mapped to Unicode so that it can be selected and extracted.
//! It is shaped with rustybuzz, the shaper krilla itself uses, so a right-aligned figure is
//! measured exactly as it is drawn. Output is deterministic: the document's date is the
//! invoice's issue date (the period's end for an interim invoice), never the clock.

use krilla::color::rgb;
use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, GlyphId, KrillaGlyph};
use krilla::{Document, SerializeSettings};
use pricing::{Invoice, SummaryRow};
use rust_decimal::Decimal;

use crate::error::RaterError;
use crate::render::{money, quantity, unit_price};

static REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// The name of the embedded e-invoice Factur-X readers look for.
pub const FACTURX_FILE: &str = "factur-x.xml";

/// Who a document is from, as its header shows it.
#[derive(Debug, Clone)]
pub struct Letterhead {
    pub name: String,
    /// Address lines, postcode and city, country: as printed.
    pub lines: Vec<String>,
    pub vat_id: Option<String>,
    /// The brand's colour (`#0b5394`), the provider's default when absent.
    pub color: Option<String>,
    /// The issuer's logo, drawn in the band before its name.
    pub logo: Option<std::sync::Arc<crate::logo::Logo>>,
}

const A4_W: f32 = 595.28;
const A4_H: f32 = 841.89;
const MARGIN: f32 = 42.0;
const ROW: f32 = 15.0;
/// Lowest baseline of a table row; the footer sits below it.
const BOTTOM: f32 = A4_H - 64.0;
const DEFAULT_COLOR: (u8, u8, u8) = (31, 58, 95);

struct Face {
    font: Font,
    rb: rustybuzz::Face<'static>,
}

impl Face {
    fn new(data: &'static [u8]) -> Result<Face, RaterError> {
        let bad = || RaterError::Document("the shipped font cannot be read".into());
        Ok(Face {
            font: Font::new(data.to_vec().into(), 0).ok_or_else(bad)?,
            rb: rustybuzz::Face::from_slice(data, 0).ok_or_else(bad)?,
        })
    }

    /// The glyphs of `text` (advances in em) and its width in em.
    fn shape(&self, text: &str) -> (Vec<KrillaGlyph>, f32) {
        let mut buf = rustybuzz::UnicodeBuffer::new();
        buf.push_str(text);
        buf.set_direction(rustybuzz::Direction::LeftToRight);
        buf.guess_segment_properties();
        let out = rustybuzz::shape(&self.rb, &[], buf);
        let upem = f32::from(self.rb.units_per_em().max(1) as u16);
        let (infos, pos) = (out.glyph_infos(), out.glyph_positions());
        let mut glyphs = Vec::with_capacity(infos.len());
        let mut width = 0.0;
        for (i, info) in infos.iter().enumerate() {
            let start = info.cluster as usize;
            // A cluster ends where the next one starts: the text each glyph stands for, so
            // that copying the text gives the characters back.
            let end = infos[i + 1..]
                .iter()
                .find(|n| n.cluster != info.cluster)
                .map_or(text.len(), |n| n.cluster as usize);
            let g = KrillaGlyph::new(
                GlyphId::new(info.glyph_id),
                pos[i].x_advance as f32 / upem,
                pos[i].x_offset as f32 / upem,
                pos[i].y_offset as f32 / upem,
                pos[i].y_advance as f32 / upem,
                start..end,
                None,
            );
            width += g.x_advance;
            glyphs.push(g);
        }
        (glyphs, width)
    }

    /// `text` with every character the shipped (Latin) font cannot draw replaced by `?`: a
    /// PDF/A may not show a missing glyph, and a name in another script must not stop the
    /// document.
    fn drawable<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        if text
            .chars()
            .all(|c| c.is_control() || self.rb.glyph_index(c).is_some())
        {
            return std::borrow::Cow::Borrowed(text);
        }
        std::borrow::Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() || self.rb.glyph_index(c).is_some() {
                        c
                    } else {
                        '?'
                    }
                })
                .collect(),
        )
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        self.shape(text).1 * size
    }

    /// `text` cut with an ellipsis to fit `max` points.
    fn fit(&self, text: &str, size: f32, max: f32) -> String {
        let text = &*self.drawable(text);
        if self.width(text, size) <= max {
            return text.to_string();
        }
        let mut cut: String = text.to_string();
        while !cut.is_empty() && self.width(&format!("{cut}…"), size) > max {
            cut.pop();
        }
        format!("{}…", cut.trim_end())
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

struct Pen<'a> {
    regular: &'a Face,
    bold: &'a Face,
}

fn fill(c: rgb::Color) -> Option<Fill> {
    Some(Fill {
        paint: c.into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    })
}

impl Pen<'_> {
    /// One line of text; `y` is the baseline (krilla's origin is the top left corner).
    #[allow(clippy::too_many_arguments)]
    fn text(
        &self,
        s: &mut Surface,
        bold: bool,
        size: f32,
        x: f32,
        y: f32,
        align: Align,
        c: rgb::Color,
        t: &str,
    ) {
        if t.is_empty() {
            return;
        }
        let face = if bold { self.bold } else { self.regular };
        let t = &*face.drawable(t);
        let (glyphs, w) = face.shape(t);
        let x0 = match align {
            Align::Left => x,
            Align::Right => x - w * size,
        };
        // Fill and stroke persist between calls: a stroke left on would outline the text.
        s.set_stroke(None);
        s.set_fill(fill(c));
        s.draw_glyphs(
            Point::from_xy(x0, y),
            &glyphs,
            face.font.clone(),
            t,
            size,
            false,
        );
    }
}

fn rect(s: &mut Surface, x: f32, y: f32, w: f32, h: f32, c: rgb::Color) {
    let mut pb = PathBuilder::new();
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        pb.push_rect(r);
    }
    if let Some(p) = pb.finish() {
        s.set_stroke(None);
        s.set_fill(fill(c));
        s.draw_path(&p);
    }
}

fn hline(s: &mut Surface, x1: f32, x2: f32, y: f32, width: f32, c: rgb::Color) {
    let mut pb = PathBuilder::new();
    pb.move_to(x1, y);
    pb.line_to(x2, y);
    if let Some(p) = pb.finish() {
        s.set_fill(None);
        s.set_stroke(Some(Stroke {
            paint: c.into(),
            width,
            ..Default::default()
        }));
        s.draw_path(&p);
    }
}

/// `#0b5394` as a colour; the default for anything else.
fn color(hex: Option<&str>) -> rgb::Color {
    let parsed = hex
        .and_then(|h| h.strip_prefix('#'))
        // Hex digits only: a brand colour comes from the catalog, and slicing `#1é234` by
        // bytes would cut `é` in two (a panic), not fall back.
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| {
            Some((
                u8::from_str_radix(&h[0..2], 16).ok()?,
                u8::from_str_radix(&h[2..4], 16).ok()?,
                u8::from_str_radix(&h[4..6], 16).ok()?,
            ))
        });
    let (r, g, b) = parsed.unwrap_or(DEFAULT_COLOR);
    rgb::Color::new(r, g, b)
}

/// A row of the body, laid out before pagination.
enum Row {
    Section(String),
    Line {
        description: String,
        quantity: String,
        price: String,
        amount: String,
    },
    SectionTotal(String),
    Gap,
    Summary {
        label: String,
        base: String,
        amount: String,
        strong: bool,
    },
    Heading(String),
}

impl Row {
    fn height(&self) -> f32 {
        match self {
            Row::Section(_) => ROW + 6.0,
            Row::Gap => ROW * 0.6,
            Row::Heading(_) => ROW + 8.0,
            _ => ROW,
        }
    }
}

fn rows(inv: &Invoice) -> Vec<Row> {
    let cur = inv.bill.currency.as_str();
    let mut out = Vec::new();
    for s in &inv.bill.sections {
        if s.lines.is_empty() {
            continue;
        }
        out.push(Row::Section(s.name.clone()));
        for l in &s.lines {
            out.push(Row::Line {
                description: l.description.clone(),
                quantity: quantity(l.quantity, &l.unit),
                price: if l.per == Decimal::ONE {
                    unit_price(cur, l.unit_price)
                } else {
                    format!(
                        "{} / {}",
                        unit_price(cur, l.unit_price),
                        quantity(l.per, "")
                    )
                },
                amount: money(cur, l.amount),
            });
        }
        out.push(Row::SectionTotal(money(cur, s.total)));
    }
    out.push(Row::Gap);
    let mut balance = false;
    for r in inv.summary_rows() {
        let on = |b: Decimal| format!("on {}", money(cur, b));
        let (label, base, strong) = match &r {
            SummaryRow::Subtotal(_) => ("Subtotal".to_string(), String::new(), false),
            SummaryRow::Discount(d) => (format!("Discount: {}", d.description), on(d.base), false),
            SummaryRow::SlaCredit(c) => {
                (format!("SLA credit: {}", c.description), on(c.base), false)
            }
            SummaryRow::Net(_) => ("Net".to_string(), String::new(), false),
            SummaryRow::Tax(t) => (
                format!("{} {}%", t.name, t.rate_pct.normalize()),
                on(t.base),
                false,
            ),
            SummaryRow::Total(_) => ("Total".to_string(), String::new(), true),
            SummaryRow::CreditsApplied(a) if a.is_zero() => continue,
            SummaryRow::CreditsApplied(_) => {
                ("Prepaid credit applied".to_string(), String::new(), false)
            }
            SummaryRow::AmountDue(_) => ("Amount due".to_string(), String::new(), true),
            SummaryRow::BroughtForward(_) => ("Brought forward".to_string(), String::new(), false),
            SummaryRow::Payment {
                date,
                reference: "",
                ..
            } => (
                format!("Payment received {}", date.format("%Y-%m-%d")),
                String::new(),
                false,
            ),
            SummaryRow::Payment {
                date, reference, ..
            } => (
                format!("Payment {} ({reference})", date.format("%Y-%m-%d")),
                String::new(),
                false,
            ),
            SummaryRow::Payments(_) => ("Payments".to_string(), String::new(), false),
            SummaryRow::DueThisPeriod(_) => {
                ("Amount due this period".to_string(), String::new(), false)
            }
            SummaryRow::CarriedForward(_) => ("Carried forward".to_string(), String::new(), true),
            SummaryRow::PrepaidRemaining(_) => {
                ("Prepaid credit remaining".to_string(), String::new(), false)
            }
        };
        if matches!(r, SummaryRow::BroughtForward(_)) && !balance {
            balance = true;
            out.push(Row::Gap);
            out.push(Row::Heading("Account balance".into()));
        }
        out.push(Row::Summary {
            label,
            base,
            amount: money(cur, r.amount()),
            strong,
        });
    }
    out
}

/// The invoice as a PDF/A-3b document, with `einvoice` (the CII XML) embedded as
/// [`FACTURX_FILE`] when given.
///
/// # Errors
/// [`RaterError::Document`] when krilla refuses the document (a PDF/A rule it checks).
pub fn invoice_pdf(
    inv: &Invoice,
    from: &Letterhead,
    einvoice: Option<&str>,
) -> Result<Vec<u8>, RaterError> {
    let number = inv.number.clone().unwrap_or_else(|| "not issued".into());
    let first_day = inv.period.start.date_naive();
    let last_day = (inv.period_end - chrono::Duration::seconds(1)).date_naive();
    let head = Head {
        title: if inv.number.is_some() {
            "INVOICE"
        } else {
            "INTERIM INVOICE"
        },
        kind: if inv.number.is_some() {
            "Invoice"
        } else {
            "Interim invoice"
        },
        number_label: "INVOICE NUMBER",
        number,
        account: &inv.account,
        account_name: &inv.account_name,
        address: &inv.address,
        first_day,
        last_day,
        date: inv.issue_date.unwrap_or(last_day),
        meta: vec![
            (
                "ISSUE DATE",
                inv.issue_date
                    .map_or_else(|| "-".to_string(), |d| d.to_string()),
            ),
            (
                "DUE DATE",
                inv.due_date
                    .map_or_else(|| "-".to_string(), |d| d.to_string()),
            ),
            ("CURRENCY", inv.bill.currency.clone()),
        ],
        columns: INVOICE_COLUMNS,
        description_width: 230.0,
    };
    render(&head, &rows(inv), from, einvoice)
}

/// A credit or debit note as a PDF/A-3b document: the change to the invoice it corrects, line
/// by line (quantity and net amount), its taxes and total, with its e-invoice (381 or 383)
/// embedded when given.
///
/// # Errors
/// As [`invoice_pdf`].
pub fn note_pdf(
    note: &pricing::Note,
    from: &Letterhead,
    einvoice: Option<&str>,
) -> Result<Vec<u8>, RaterError> {
    let credit = note.kind == pricing::NoteKind::Credit;
    let head = Head {
        title: if credit { "CREDIT NOTE" } else { "DEBIT NOTE" },
        kind: if credit { "Credit note" } else { "Debit note" },
        number_label: "NOTE NUMBER",
        number: note.number.clone().unwrap_or_else(|| "not issued".into()),
        account: &note.account,
        account_name: &note.account_name,
        address: &note.address,
        first_day: note.period.start.date_naive(),
        last_day: (note.period.end() - chrono::Duration::seconds(1)).date_naive(),
        date: note.issue_date,
        meta: vec![
            ("ISSUE DATE", note.issue_date.to_string()),
            ("CORRECTS", note.corrects.clone()),
            ("CURRENCY", note.currency.clone()),
        ],
        columns: INVOICE_COLUMNS,
        description_width: 230.0,
    };
    let cur = note.currency.as_str();
    let mut out = Vec::new();
    for s in &note.sections {
        if s.lines.is_empty() {
            continue;
        }
        out.push(Row::Section(s.name.clone()));
        for l in &s.lines {
            out.push(Row::Line {
                description: l.description.clone(),
                quantity: quantity(l.quantity, &l.unit),
                price: String::new(),
                amount: money(cur, l.amount),
            });
        }
        out.push(Row::SectionTotal(money(cur, s.total)));
    }
    out.push(Row::Gap);
    out.push(Row::Summary {
        label: format!("Reason: {}", note.reason.label()),
        base: String::new(),
        amount: String::new(),
        strong: false,
    });
    out.push(Row::Summary {
        label: "Net change".into(),
        base: String::new(),
        amount: money(cur, note.net),
        strong: false,
    });
    for t in &note.taxes {
        out.push(Row::Summary {
            label: format!("{} {}%", t.name, t.rate_pct.normalize()),
            base: format!("on {}", money(cur, t.base)),
            amount: money(cur, t.amount),
            strong: false,
        });
    }
    out.push(Row::Summary {
        label: if credit {
            "Total credited".into()
        } else {
            "Total due".into()
        },
        base: String::new(),
        amount: money(cur, note.total),
        strong: true,
    });
    render(&head, &out, from, einvoice)
}

/// The column heads of invoices and notes.
const INVOICE_COLUMNS: [&str; 3] = ["QUANTITY", "UNIT PRICE", "AMOUNT"];

/// An account statement as a PDF/A-3b document: the opening balance, each invoice, note and
/// payment with the balance after it, the sums by kind and the closing balance.
///
/// # Errors
/// As [`invoice_pdf`].
pub fn statement_pdf(
    st: &pricing::account_statement::AccountStatement,
    from: &Letterhead,
) -> Result<Vec<u8>, RaterError> {
    let cur = st.currency.as_str();
    let head = Head {
        title: "STATEMENT",
        kind: "Statement",
        number_label: "STATEMENT DATE",
        number: st.to.to_string(),
        account: &st.account,
        account_name: &st.account_name,
        address: &st.address,
        first_day: st.from,
        last_day: st.to,
        date: st.to,
        meta: vec![
            ("CURRENCY", st.currency.clone()),
            ("BALANCE", money(cur, st.closing)),
        ],
        // The date leads the description: entries name documents at length.
        columns: ["", "AMOUNT", "BALANCE"],
        description_width: 310.0,
    };
    let mut out = vec![Row::Line {
        description: format!("{}  Opening balance", st.from),
        quantity: String::new(),
        price: String::new(),
        amount: money(cur, st.opening),
    }];
    for e in &st.entries {
        out.push(Row::Line {
            description: format!("{}  {}", e.date, crate::render::statement_description(e)),
            quantity: String::new(),
            price: money(cur, e.amount),
            amount: money(cur, e.balance),
        });
    }
    out.push(Row::Gap);
    let applied = (!st.applied.is_zero()).then_some(("Prepaid credit applied", st.applied, false));
    for (label, amount, strong) in [
        ("Invoiced", st.invoiced, false),
        ("Credit notes", st.credited, false),
        ("Debit notes", st.debited, false),
    ]
    .into_iter()
    .chain(applied)
    .chain([
        ("Payments received", st.paid, false),
        ("Closing balance", st.closing, true),
    ]) {
        out.push(Row::Summary {
            label: label.into(),
            base: String::new(),
            amount: money(cur, amount),
            strong,
        });
    }
    render(&head, &out, from, None)
}

/// What the first page's header says of a document.
struct Head<'a> {
    title: &'static str,
    /// "Invoice", "Credit note": the document's kind in its metadata.
    kind: &'static str,
    /// What the number is called in the header (`INVOICE NUMBER`).
    number_label: &'static str,
    number: String,
    account: &'a str,
    account_name: &'a str,
    address: &'a [String],
    first_day: chrono::NaiveDate,
    last_day: chrono::NaiveDate,
    /// The document's date (its metadata's).
    date: chrono::NaiveDate,
    /// Label and value after the number and the period.
    meta: Vec<(&'static str, String)>,
    /// The table's column heads after the description.
    columns: [&'static str; 3],
    /// How wide the description may run (wider when the first column after it is empty).
    description_width: f32,
}

fn render(
    head: &Head<'_>,
    body: &[Row],
    from: &Letterhead,
    einvoice: Option<&str>,
) -> Result<Vec<u8>, RaterError> {
    let regular = Face::new(REGULAR)?;
    let bold = Face::new(BOLD)?;
    let pen = Pen {
        regular: &regular,
        bold: &bold,
    };
    let ink = rgb::Color::new(20, 20, 20);
    let grey = rgb::Color::new(100, 100, 100);
    let rule = rgb::Color::new(200, 200, 200);
    let white = rgb::Color::new(255, 255, 255);
    let brand = color(from.color.as_deref());
    let tint = {
        // The brand colour at 12 % over white: the section bands.
        let mix = |c: u8| 255 - ((255 - u16::from(c)) * 12 / 100) as u8;
        let (r, g, b) = (brand.red(), brand.green(), brand.blue());
        rgb::Color::new(mix(r), mix(g), mix(b))
    };
    let right = A4_W - MARGIN;
    let (c_qty, c_price, c_amount) = (350.0, 460.0, right - 4.0);
    let description_width = head.description_width;
    let (title, number, first_day, last_day, day) = (
        head.title,
        head.number.clone(),
        head.first_day,
        head.last_day,
        head.date,
    );

    let settings = SerializeSettings {
        configuration: ConfigurationBuilder::new()
            .with_archival_validator(Archival::A3_B)
            .finish()
            .map_err(|e| RaterError::Document(format!("{e:?}")))?,
        ..Default::default()
    };
    let mut doc = Document::new_with(settings);
    let when = DateTime::new(chrono::Datelike::year(&day) as u16)
        .month(chrono::Datelike::month(&day) as u8)
        .day(chrono::Datelike::day(&day) as u8)
        .hour(0)
        .minute(0)
        .second(0)
        .utc_offset_hour(0);
    doc.set_metadata(
        Metadata::new()
            .title(format!("{} {number} of {}", head.kind, head.account_name))
            .authors(vec![from.name.clone()])
            .description(format!(
                "{} {number} for {} ({}), {first_day} to {last_day}",
                head.kind, head.account_name, head.account
            ))
            .creator("Ratecard".to_string())
            .producer("Ratecard (krilla)".to_string())
            .language("en".to_string())
            .creation_date(when),
    );

    // Paginate: the first page's table starts below the header, the others at the top.
    let first_top = 300.0;
    let next_top = 78.0;
    let mut pages: Vec<Vec<&Row>> = vec![Vec::new()];
    let mut y = first_top;
    // The totals and the balance (from the first gap on) stay together on one page when they
    // fit on one.
    let totals_at = body.iter().position(|r| matches!(r, Row::Gap));
    let totals_height: f32 = totals_at.map_or(0.0, |i| body[i..].iter().map(Row::height).sum());
    for (i, r) in body.iter().enumerate() {
        let keep = Some(i) == totals_at && totals_height <= BOTTOM - next_top;
        if y + r.height() > BOTTOM || (keep && y + totals_height > BOTTOM) {
            pages.push(Vec::new());
            y = next_top;
        }
        y += r.height();
        if let Some(p) = pages.last_mut() {
            p.push(r);
        }
    }
    let n = pages.len();
    for (i, page_rows) in pages.iter().enumerate() {
        let mut page = doc.start_page_with(
            PageSettings::from_wh(A4_W, A4_H)
                .ok_or_else(|| RaterError::Document("page size".into()))?,
        );
        let mut s = page.surface();
        let mut y;
        if i == 0 {
            rect(&mut s, 0.0, 0.0, A4_W, 88.0, brand);
            // The logo in a 48-point square left of the name, which moves over for it.
            let name_x = match &from.logo {
                Some(logo) => {
                    logo.draw(&mut s, MARGIN, 20.0, 48.0, 48.0);
                    MARGIN + 60.0
                }
                None => MARGIN,
            };
            pen.text(
                &mut s,
                true,
                20.0,
                name_x,
                46.0,
                Align::Left,
                white,
                &bold.fit(&from.name, 20.0, 300.0 + MARGIN - name_x),
            );
            pen.text(&mut s, true, 18.0, right, 46.0, Align::Right, white, title);
            pen.text(
                &mut s,
                false,
                10.0,
                right,
                66.0,
                Align::Right,
                white,
                &number,
            );
            let mut yl = 118.0;
            pen.text(&mut s, true, 8.0, MARGIN, yl, Align::Left, grey, "FROM");
            pen.text(&mut s, true, 8.0, 300.0, yl, Align::Left, grey, "BILL TO");
            yl += 15.0;
            let mut yf = yl;
            pen.text(
                &mut s,
                true,
                10.0,
                MARGIN,
                yf,
                Align::Left,
                ink,
                &bold.fit(&from.name, 10.0, 240.0),
            );
            for l in &from.lines {
                yf += 12.5;
                pen.text(
                    &mut s,
                    false,
                    9.0,
                    MARGIN,
                    yf,
                    Align::Left,
                    ink,
                    &regular.fit(l, 9.0, 240.0),
                );
            }
            if let Some(v) = &from.vat_id {
                yf += 12.5;
                pen.text(
                    &mut s,
                    false,
                    9.0,
                    MARGIN,
                    yf,
                    Align::Left,
                    grey,
                    &format!("VAT {v}"),
                );
            }
            let mut yb = yl;
            pen.text(
                &mut s,
                true,
                10.0,
                300.0,
                yb,
                Align::Left,
                ink,
                &bold.fit(head.account_name, 10.0, right - 300.0),
            );
            yb += 12.5;
            pen.text(
                &mut s,
                false,
                9.0,
                300.0,
                yb,
                Align::Left,
                grey,
                &format!("Account {}", head.account),
            );
            for l in head.address {
                yb += 12.5;
                pen.text(
                    &mut s,
                    false,
                    9.0,
                    300.0,
                    yb,
                    Align::Left,
                    ink,
                    &regular.fit(l, 9.0, right - 300.0),
                );
            }
            let meta_y = 236.0;
            let mut meta = vec![
                (head.number_label, number.clone()),
                ("PERIOD", format!("{first_day} to {last_day}")),
            ];
            meta.extend(head.meta.iter().cloned());
            for ((k, v), x) in meta.iter().zip([MARGIN, 132.0, 280.0, 365.0, 470.0]) {
                pen.text(&mut s, true, 7.5, x, meta_y, Align::Left, grey, k);
                pen.text(&mut s, false, 9.5, x, meta_y + 14.0, Align::Left, ink, v);
            }
            y = first_top - 26.0;
        } else {
            rect(&mut s, 0.0, 0.0, A4_W, 8.0, brand);
            pen.text(
                &mut s,
                true,
                9.0,
                MARGIN,
                40.0,
                Align::Left,
                grey,
                &format!(
                    "{} · {} {number} (continued)",
                    from.name,
                    head.kind.to_lowercase()
                ),
            );
            y = next_top - 26.0;
        }
        // Column heads.
        rect(&mut s, MARGIN, y - 12.0, right - MARGIN, 18.0, brand);
        pen.text(
            &mut s,
            true,
            8.0,
            MARGIN + 4.0,
            y,
            Align::Left,
            white,
            "DESCRIPTION",
        );
        for (head, x) in head.columns.iter().zip([c_qty, c_price, c_amount]) {
            pen.text(&mut s, true, 8.0, x, y, Align::Right, white, head);
        }
        y += 26.0;
        for r in page_rows {
            match r {
                Row::Section(name) => {
                    rect(&mut s, MARGIN, y - 11.0, right - MARGIN, 16.0, tint);
                    pen.text(&mut s, true, 9.0, MARGIN + 4.0, y, Align::Left, ink, name);
                }
                Row::Line {
                    description,
                    quantity,
                    price,
                    amount,
                } => {
                    pen.text(
                        &mut s,
                        false,
                        8.5,
                        MARGIN + 10.0,
                        y,
                        Align::Left,
                        ink,
                        &regular.fit(description, 8.5, description_width),
                    );
                    pen.text(&mut s, false, 8.5, c_qty, y, Align::Right, ink, quantity);
                    pen.text(&mut s, false, 8.5, c_price, y, Align::Right, grey, price);
                    pen.text(&mut s, false, 8.5, c_amount, y, Align::Right, ink, amount);
                }
                Row::SectionTotal(total) => {
                    hline(&mut s, c_price + 10.0, right, y - 10.0, 0.5, rule);
                    pen.text(&mut s, true, 8.5, c_amount, y, Align::Right, ink, total);
                }
                Row::Gap => {}
                Row::Heading(h) => {
                    pen.text(&mut s, true, 10.0, 300.0, y + 4.0, Align::Left, brand, h);
                }
                Row::Summary {
                    label,
                    base,
                    amount,
                    strong,
                } => {
                    if *strong {
                        hline(&mut s, 300.0, right, y - 10.5, 0.8, brand);
                    }
                    // A label without a base may run under the base's column.
                    let room = if amount.is_empty() {
                        250.0
                    } else if base.is_empty() {
                        165.0
                    } else {
                        130.0
                    };
                    pen.text(
                        &mut s,
                        *strong,
                        9.0,
                        300.0,
                        y,
                        Align::Left,
                        ink,
                        &pen_fit(&pen, *strong, label, 9.0, room),
                    );
                    pen.text(&mut s, false, 7.5, c_price, y, Align::Right, grey, base);
                    pen.text(&mut s, *strong, 9.0, c_amount, y, Align::Right, ink, amount);
                }
            }
            y += r.height();
        }
        hline(&mut s, MARGIN, right, A4_H - 44.0, 0.5, rule);
        let foot = if einvoice.is_some() {
            format!(
                "{} · {number} · EN 16931 e-invoice embedded (factur-x.xml)",
                from.name
            )
        } else {
            format!("{} · {number}", from.name)
        };
        pen.text(
            &mut s,
            false,
            7.5,
            MARGIN,
            A4_H - 30.0,
            Align::Left,
            grey,
            &regular.fit(&foot, 7.5, 400.0),
        );
        pen.text(
            &mut s,
            false,
            7.5,
            right,
            A4_H - 30.0,
            Align::Right,
            grey,
            &format!("Page {} of {n}", i + 1),
        );
        s.finish();
        page.finish();
    }

    if let Some(xml) = einvoice {
        // EN 16931 is a profile whose XML is an equivalent of the PDF: `Alternative`
        // (Factur-X reserves `Data` for its MINIMUM and BASIC WL profiles).
        doc.embed_file(EmbeddedFile {
            path: FACTURX_FILE.to_string(),
            mime_type: MimeType::new("text/xml"),
            description: Some("Factur-X invoice (EN 16931)".to_string()),
            association_kind: AssociationKind::Alternative,
            data: xml.as_bytes().to_vec().into(),
            modification_date: Some(when),
            compress: Some(true),
            location: None,
        })
        .ok_or_else(|| RaterError::Document("factur-x.xml embedded twice".into()))?;
    }
    let bytes = doc
        .finish()
        .map_err(|e| RaterError::Document(format!("{e:?}")))?;
    if einvoice.is_some() {
        facturx_xmp(bytes, "EN 16931")
    } else {
        Ok(bytes)
    }
}

fn pen_fit(pen: &Pen<'_>, bold: bool, text: &str, size: f32, max: f32) -> String {
    if bold {
        pen.bold.fit(text, size, max)
    } else {
        pen.regular.fit(text, size, max)
    }
}

fn find(h: &[u8], n: &[u8], from: usize) -> Option<usize> {
    h.get(from..)?
        .windows(n.len())
        .position(|w| w == n)
        .map(|p| p + from)
}

fn rfind(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).rposition(|w| w == n)
}

/// Adds the Factur-X XMP properties (document type, file name, version, conformance level)
/// and their PDF/A extension schema to the document's metadata, which Factur-X readers
/// require. krilla 0.8 writes the XMP uncompressed with a classic cross-reference table but
/// has no API for custom properties, so the metadata object is rewritten and the offsets after
/// it shifted; anything unexpected in krilla's output is an error, never a broken file (a
/// krilla upgrade that changes it fails the PDF tests).
fn facturx_xmp(pdf: Vec<u8>, level: &str) -> Result<Vec<u8>, RaterError> {
    let broken = |what: &str| RaterError::Document(format!("Factur-X metadata: {what}"));
    const FX_NS: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";
    let props = format!(
        "<rdf:Description rdf:about=\"\" xmlns:fx=\"{FX_NS}\"><fx:DocumentType>INVOICE</fx:DocumentType><fx:DocumentFileName>{FACTURX_FILE}</fx:DocumentFileName><fx:Version>1.0</fx:Version><fx:ConformanceLevel>{level}</fx:ConformanceLevel></rdf:Description>"
    );
    let prop = |name: &str, desc: &str| {
        format!(
            "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:name>{name}</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>{desc}</pdfaProperty:description></rdf:li>"
        )
    };
    let schema = format!(
        "<rdf:li rdf:parseType=\"Resource\"><pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema><pdfaSchema:namespaceURI>{FX_NS}</pdfaSchema:namespaceURI><pdfaSchema:prefix>fx</pdfaSchema:prefix><pdfaSchema:property><rdf:Seq>{}{}{}{}</rdf:Seq></pdfaSchema:property></rdf:li>",
        prop("DocumentFileName", "The name of the embedded XML document"),
        prop("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER"),
        prop("Version", "The actual version of the standard applying to the embedded XML document"),
        prop("ConformanceLevel", "The conformance level of the embedded XML document"),
    );
    let key = find(&pdf, b"/Type/Metadata", 0)
        .or_else(|| find(&pdf, b"/Type /Metadata", 0))
        .ok_or_else(|| broken("no XMP metadata object"))?;
    let obj = rfind(&pdf[..key], b" 0 obj").ok_or_else(|| broken("no object header"))?;
    let obj_start = pdf[..obj]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let obj_num = std::str::from_utf8(&pdf[obj_start..obj])
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| broken("object number"))?;
    let obj_end = find(&pdf, b"endobj", key).ok_or_else(|| broken("endobj"))? + b"endobj".len();
    let data_start =
        find(&pdf, b"stream\n", key).ok_or_else(|| broken("stream"))? + b"stream\n".len();
    let data_end = find(&pdf, b"\nendstream", data_start).ok_or_else(|| broken("endstream"))?;
    let xmp =
        std::str::from_utf8(&pdf[data_start..data_end]).map_err(|_| broken("XMP is not UTF-8"))?;
    let bag_end = "</rdf:Bag></pdfaExtension:schemas>";
    if !xmp.contains(bag_end) || !xmp.contains("</rdf:RDF>") {
        return Err(broken("no PDF/A extension schema list"));
    }
    let xmp = xmp
        .replacen(bag_end, &format!("{schema}{bag_end}"), 1)
        .replacen("</rdf:RDF>", &format!("{props}</rdf:RDF>"), 1);
    let new_obj = format!(
        "{obj_num} 0 obj\n<<\n  /Length {}\n  /Type /Metadata\n  /Subtype /XML\n>>\nstream\n{xmp}\nendstream\nendobj",
        xmp.len()
    );
    let delta = new_obj.len() as i64 - (obj_end - obj_start) as i64;
    let xref = rfind(&pdf, b"\nxref\n").ok_or_else(|| broken("no classic xref table"))? + 1;
    if xref < obj_end {
        return Err(broken("metadata after the xref table"));
    }
    let mut out = Vec::with_capacity(pdf.len() + new_obj.len());
    out.extend_from_slice(&pdf[..obj_start]);
    out.extend_from_slice(new_obj.as_bytes());
    out.extend_from_slice(&pdf[obj_end..xref]);
    if !pdf[xref..].is_ascii() {
        return Err(broken("xref is not ASCII"));
    }
    let tail = std::str::from_utf8(&pdf[xref..]).map_err(|_| broken("xref is not ASCII"))?;
    let trailer_at = tail.find("trailer").ok_or_else(|| broken("no trailer"))?;
    for l in tail[..trailer_at].split_inclusive('\n') {
        // Entries are 20 bytes, "oooooooooo ggggg n\r\n"; subsection heads are shorter.
        if l.len() == 20 && l.as_bytes()[17] == b'n' {
            let off: i64 = l[..10].parse().map_err(|_| broken("xref entry"))?;
            let off = if off > obj_start as i64 {
                off + delta
            } else {
                off
            };
            out.extend_from_slice(format!("{off:010}{}", &l[10..]).as_bytes());
        } else {
            out.extend_from_slice(l.as_bytes());
        }
    }
    let trailer = &tail[trailer_at..];
    let sx = trailer
        .find("startxref\n")
        .ok_or_else(|| broken("no startxref"))?
        + "startxref\n".len();
    let sx_end = sx
        + trailer[sx..]
            .find('\n')
            .ok_or_else(|| broken("startxref"))?;
    let old: i64 = trailer[sx..sx_end]
        .trim()
        .parse()
        .map_err(|_| broken("startxref"))?;
    if old as usize != xref {
        return Err(broken("startxref does not point at the xref table"));
    }
    out.extend_from_slice(&trailer.as_bytes()[..sx]);
    out.extend_from_slice((old + delta).to_string().as_bytes());
    out.extend_from_slice(&trailer.as_bytes()[sx_end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_colours_that_are_not_six_hex_digits_fall_back_without_a_panic() {
        let default = rgb::Color::new(DEFAULT_COLOR.0, DEFAULT_COLOR.1, DEFAULT_COLOR.2);
        assert_eq!(color(Some("#0b5394")), rgb::Color::new(0x0b, 0x53, 0x94));
        // Six bytes, not six hex digits: `é` is two bytes, so a byte slice would cut it.
        for bad in ["#1é234", "#12345g", "#+1+2+3", "0b5394", "#0b539", ""] {
            assert_eq!(color(Some(bad)), default, "{bad}");
        }
        assert_eq!(color(None), default);
    }
}
