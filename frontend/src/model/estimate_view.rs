//! The live estimate as the page shows it: validation and pricing in one step, the summary rows,
//! the SLA cards and comparison, the chart geometry and the CSV export.

use pricing::allocate::allocate;
use pricing::catalog::{Catalog, Category};
use pricing::{estimate, Estimate, Quote, SummaryRow as BillRow};
use rust_decimal::Decimal;

use super::config::{AppConfig, FieldError, Target};
use super::format;

/// Validation messages plus the estimate, when the app is valid and the engine priced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub errors: Vec<FieldError>,
    pub quote: Option<Quote>,
    pub estimate: Option<Estimate>,
}

impl Outcome {
    pub fn message(&self, target: Target) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.target == target)
            .map(|e| e.message.as_str())
    }
}

/// Validates `config` and prices it. An engine refusal becomes a message beside the field its
/// path names, so the customer sees the same kind of message whoever caught the mistake.
pub fn compute(catalog: &Catalog, config: &AppConfig) -> Outcome {
    let v = config.validate(catalog);
    let Some(quote) = v.quote else {
        return Outcome {
            errors: v.errors,
            quote: None,
            estimate: None,
        };
    };
    match estimate(catalog, &quote) {
        Ok(e) => Outcome {
            errors: Vec::new(),
            quote: Some(quote),
            estimate: Some(e),
        },
        Err(err) => {
            let target = config.target_of_error(&err);
            let message = err.to_string();
            Outcome {
                errors: vec![FieldError { target, message }],
                quote: Some(quote),
                estimate: None,
            }
        }
    }
}

/// How a summary row is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Plain,
    /// A discount or credit (negative).
    Reduction,
    Tax,
    /// A total the customer acts on.
    Total,
}

impl RowKind {
    /// The CSS class a row of this kind is styled with (none for a plain row).
    pub fn css_class(self) -> &'static str {
        match self {
            RowKind::Plain => "",
            RowKind::Reduction => "reduction",
            RowKind::Tax => "tax",
            RowKind::Total => "total",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryRow {
    /// Stable id for tests and CSV (`subtotal`, `discount:spring-storage`, `monthly_total`...).
    pub id: String,
    pub label: String,
    pub amount: Decimal,
    pub kind: RowKind,
}

/// The totals block under the tier table, in reading order: the bill's summary rows (without
/// the net, which the block does not show), then the hourly, yearly, first-month and term
/// figures of the estimate.
pub fn summary_rows(e: &Estimate) -> Vec<SummaryRow> {
    let row = |id: String, label: String, amount, kind| SummaryRow {
        id,
        label,
        amount,
        kind,
    };
    let mut v: Vec<SummaryRow> = e
        .bill
        .summary_rows()
        .into_iter()
        .filter_map(bill_row)
        .collect();
    v.push(row(
        "hourly_total".into(),
        "Per hour".into(),
        e.hourly_total,
        RowKind::Plain,
    ));
    v.push(row(
        "yearly_total".into(),
        "Per year".into(),
        e.yearly_total,
        RowKind::Plain,
    ));
    if !e.one_time_total.is_zero() {
        v.push(row(
            "one_time_total".into(),
            "One-time fees (first month)".into(),
            e.one_time_total,
            RowKind::Plain,
        ));
        v.push(row(
            "first_month_total".into(),
            "First month".into(),
            e.first_month_total,
            RowKind::Plain,
        ));
    }
    if let Some(m) = e.term_months.filter(|m| *m > 1) {
        v.push(row(
            "term_total".into(),
            format!("Whole term ({m} months)"),
            e.term_total,
            RowKind::Total,
        ));
    }
    v
}

/// A row of the estimate's bill as the totals block shows it; `None` for rows it leaves out.
pub(crate) fn bill_row(r: BillRow<'_>) -> Option<SummaryRow> {
    let (id, label, amount, kind) = match r {
        BillRow::Subtotal(a) => (
            "subtotal".into(),
            "Subtotal a month".into(),
            a,
            RowKind::Plain,
        ),
        BillRow::Discount(d) => (
            format!("discount:{}", d.id),
            d.description.clone(),
            d.amount,
            RowKind::Reduction,
        ),
        BillRow::SlaCredit(c) => (
            format!("credit:{}", c.id),
            c.description.clone(),
            c.amount,
            RowKind::Reduction,
        ),
        BillRow::Tax(t) => (
            format!("tax:{}", t.name),
            format!("{} {}", t.name, format::percent(t.rate_pct)),
            t.amount,
            RowKind::Tax,
        ),
        BillRow::Total(a) => (
            "monthly_total".into(),
            "Total a month".into(),
            a,
            RowKind::Total,
        ),
        // An estimate has no account: only a bill's rows come, and the net is not shown.
        BillRow::Net(_)
        | BillRow::CreditsApplied(_)
        | BillRow::AmountDue(_)
        | BillRow::BroughtForward(_)
        | BillRow::Payment { .. }
        | BillRow::Payments(_)
        | BillRow::DueThisPeriod(_)
        | BillRow::CarriedForward(_)
        | BillRow::PrepaidRemaining(_) => return None,
    };
    Some(SummaryRow {
        id,
        label,
        amount,
        kind,
    })
}

/// One SLA tier as a card and as a column of the comparison table, priced for the current app.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaOption {
    pub id: String,
    pub name: String,
    pub uptime_pct: Decimal,
    pub support_response_hours: Decimal,
    pub uplift_pct: Decimal,
    pub covers: Vec<&'static str>,
    /// `(availability below, credit)` in percent, most severe last.
    pub credits: Vec<(Decimal, Decimal)>,
    /// The app's monthly total on this tier, when it prices.
    pub monthly_total: Option<Decimal>,
    pub yearly_total: Option<Decimal>,
    /// Monthly difference from the selected tier.
    pub delta: Option<Decimal>,
    pub selected: bool,
}

/// Every SLA tier of the catalog priced for `quote` (whose own tier is the selected one);
/// `current` is the quote's own monthly total, already computed by the caller.
pub fn sla_options(
    catalog: &Catalog,
    quote: Option<&Quote>,
    current: Option<Decimal>,
) -> Vec<SlaOption> {
    catalog
        .sla_tiers
        .iter()
        .map(|s| {
            let priced = quote.and_then(|q| {
                let mut q = q.clone();
                q.sla_tier = Some(s.id.clone());
                estimate(catalog, &q).ok()
            });
            // Most lenient threshold first. A tier has a handful of steps: insertion keeps a
            // generic sort instantiation (several KB of wasm) out of the app.
            let mut credits: Vec<(Decimal, Decimal)> = Vec::with_capacity(s.credits.len());
            for c in &s.credits {
                let at = credits
                    .iter()
                    .position(|(below, _)| *below < c.below_pct)
                    .unwrap_or(credits.len());
                credits.insert(at, (c.below_pct, c.credit_pct));
            }
            SlaOption {
                id: s.id.clone(),
                name: s.name.clone(),
                uptime_pct: s.uptime_pct,
                support_response_hours: s.support_response_hours,
                uplift_pct: s.uplift_pct,
                covers: s.covers.iter().map(|c| c.label()).collect(),
                credits,
                monthly_total: priced.as_ref().map(|e| e.monthly_total),
                yearly_total: priced.as_ref().map(|e| e.yearly_total),
                delta: priced
                    .as_ref()
                    .zip(current)
                    .map(|(e, c)| e.monthly_total - c),
                selected: quote.is_some_and(|q| q.sla_tier.as_deref() == Some(s.id.as_str())),
            }
        })
        .collect()
}

/// A segment of a horizontal stacked bar, in chart units (the bar is [`CHART_WIDTH`] wide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub label: String,
    pub amount: Decimal,
    pub x: u32,
    pub width: u32,
    /// Whole percent of the bar; the segments' percents add up to 100.
    pub percent: u32,
    /// Index into the stylesheet's palette (`seg-0`...).
    pub color: usize,
}

/// Width of a chart bar in SVG user units. Integer geometry: the SVG scales it to the page, so
/// no float ever touches an amount.
pub const CHART_WIDTH: u32 = 1000;

/// Splits a bar among positive `items` in proportion to their amounts, widths and percents by
/// largest remainder so that they add up exactly. Items of zero or less are left out.
pub fn segments(items: &[(String, Decimal)]) -> Vec<Segment> {
    let items: Vec<&(String, Decimal)> = items.iter().filter(|(_, a)| *a > Decimal::ZERO).collect();
    let weights: Vec<Decimal> = items.iter().map(|(_, a)| *a).collect();
    let widths = allocate(Decimal::from(CHART_WIDTH), &weights, 0);
    let percents = allocate(Decimal::ONE_HUNDRED, &weights, 0);
    let to_u32 = |d: &Decimal| u32::try_from(d.mantissa()).unwrap_or(0);
    let mut x = 0;
    items
        .iter()
        .zip(widths.iter().zip(&percents))
        .enumerate()
        .map(|(i, ((label, amount), (w, p)))| {
            let width = to_u32(w);
            let s = Segment {
                label: label.clone(),
                amount: *amount,
                x,
                width,
                percent: to_u32(p),
                color: i,
            };
            x += width;
            s
        })
        .collect()
}

/// Where the money goes, by category (monthly, before discounts and tax).
pub fn category_segments(e: &Estimate) -> Vec<Segment> {
    let items: Vec<(String, Decimal)> = e
        .categories
        .iter()
        .map(|c| (c.category.label().to_string(), c.monthly))
        .collect();
    let mut segs = segments(&items);
    // Colours follow the category, not the position, so a category keeps its colour as others
    // come and go.
    for s in &mut segs {
        s.color = Category::ALL
            .iter()
            .position(|c| c.label() == s.label)
            .unwrap_or(0);
    }
    segs
}

/// Where the money goes, by tier.
pub fn tier_segments(e: &Estimate) -> Vec<Segment> {
    let items: Vec<(String, Decimal)> = e
        .tiers
        .iter()
        .map(|t| (t.name.clone(), t.monthly))
        .collect();
    segments(&items)
}

/// Quotes a CSV field (RFC 4180), and defuses text a spreadsheet would run as a formula: tier
/// and app names come from whoever made a shared link.
pub fn csv_field(s: &str) -> String {
    let is_number = s.parse::<Decimal>().is_ok();
    let s = if !is_number && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The estimate as CSV: one row per line (tier, category, description, quantity, unit price,
/// hourly, monthly, yearly), then the summary rows. Amounts are plain decimals in the estimate's
/// currency, named in the header, so spreadsheets read them as numbers.
pub fn to_csv(config: &AppConfig, e: &Estimate) -> String {
    let mut out = String::new();
    let push = |out: &mut String, fields: &[String]| {
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    };
    push(
        &mut out,
        &[
            "row".into(),
            "tier".into(),
            "category".into(),
            "description".into(),
            "quantity".into(),
            "unit".into(),
            format!("unit_price_{}", e.currency),
            format!("hourly_{}", e.currency),
            format!("monthly_{}", e.currency),
            format!("yearly_{}", e.currency),
        ],
    );
    for t in &e.tiers {
        for l in &t.lines {
            push(
                &mut out,
                &[
                    "line".into(),
                    t.name.clone(),
                    l.category.label().into(),
                    l.description.clone(),
                    pricing::unit::shown_quantity(l.quantity).to_string(),
                    l.unit.clone(),
                    l.unit_price.to_string(),
                    l.hourly.to_string(),
                    l.monthly.to_string(),
                    l.yearly.to_string(),
                ],
            );
        }
    }
    for r in summary_rows(e) {
        let empty = String::new;
        push(
            &mut out,
            &[
                r.id.clone(),
                empty(),
                empty(),
                r.label.clone(),
                empty(),
                empty(),
                empty(),
                empty(),
                r.amount.to_string(),
                empty(),
            ],
        );
    }
    push(
        &mut out,
        &[
            "catalog".into(),
            String::new(),
            String::new(),
            format!(
                "{} version {}, prices as of {}{}",
                e.catalog_id,
                e.catalog_version,
                config.at,
                if config.name.trim().is_empty() {
                    String::new()
                } else {
                    format!(", app {}", config.name.trim())
                }
            ),
        ],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::{Field, Kind};
    use crate::model::testing::{cloudstack, day};
    use rust_decimal_macros::dec;

    fn starter() -> AppConfig {
        AppConfig::starter(&cloudstack(), day("2017-02-15"))
    }

    #[test]
    fn the_starter_prices_and_adding_a_vm_raises_the_total() {
        let cat = cloudstack();
        let mut c = starter();
        let before = compute(&cat, &c).estimate.unwrap().monthly_total;
        let t = c.tiers[0].key;
        c.add_component(&cat, t, Kind::Compute);
        let after = compute(&cat, &c).estimate.unwrap().monthly_total;
        // One more copper VM, 730 h at 2.20, plus 20 % VAT: 1,927.20.
        assert_eq!(after - before, dec!(1927.20));
    }

    #[test]
    fn invalid_fields_give_messages_and_no_estimate() {
        let cat = cloudstack();
        let mut c = starter();
        let (t, k) = (c.tiers[0].key, c.tiers[0].components[0].key);
        c.set_field(&cat, t, k, Field::Count, "two");
        let o = compute(&cat, &c);
        assert!(o.estimate.is_none());
        assert_eq!(
            o.message(Target::Component(t, k, Field::Count)),
            Some("Enter a whole number from 0 to 10,000")
        );
    }

    #[test]
    fn engine_refusals_land_beside_the_field() {
        let cat = cloudstack();
        let mut c = starter();
        c.currency = Some("EUR".into());
        let mut cat2 = cat.clone();
        cat2.fx_rates.clear();
        let o = compute(&cat2, &c);
        assert_eq!(o.errors[0].target, Target::Setting("currency"));
    }

    #[test]
    fn summary_rows_add_up() {
        let cat = cloudstack();
        let mut c = starter();
        c.term = Some("1y".into());
        c.sla_tier = Some("gold".into());
        let e = compute(&cat, &c).estimate.unwrap();
        let rows = summary_rows(&e);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "subtotal",
                "discount:term:1y",
                "tax:VAT",
                "monthly_total",
                "hourly_total",
                "yearly_total",
                "term_total"
            ]
        );
        let up_to_total: Decimal = rows
            .iter()
            .take_while(|r| r.id != "monthly_total")
            .map(|r| r.amount)
            .sum();
        assert_eq!(up_to_total, e.monthly_total);
        // The catalog's spring promotion (10 % off storage from 1 March to 1 June 2017) counts
        // in the term's months it is valid in as each begins: from 15 February, the three
        // starting 15 March, April and May; each is the month priced on such a date.
        let mut spring = c.clone();
        spring.at = day("2017-03-15");
        let in_spring = compute(&cat, &spring).estimate.unwrap().monthly_total;
        assert!(in_spring < e.monthly_total);
        assert_eq!(
            e.term_total,
            e.monthly_total * dec!(9) + in_spring * dec!(3)
        );
    }

    #[test]
    fn sla_cards_show_the_price_impact() {
        let cat = cloudstack();
        let c = starter();
        let o = compute(&cat, &c);
        let current = o.estimate.as_ref().map(|e| e.monthly_total);
        let opts = sla_options(&cat, o.quote.as_ref(), current);
        assert_eq!(opts.len(), 2);
        assert!(opts[0].selected && !opts[1].selected);
        assert_eq!(opts[0].delta, Some(Decimal::ZERO));
        let gold = &opts[1];
        assert!(gold.delta.unwrap() > Decimal::ZERO);
        assert_eq!(
            gold.monthly_total.unwrap() - o.estimate.unwrap().monthly_total,
            gold.delta.unwrap()
        );
        assert_eq!(gold.credits[0], (dec!(99.95), dec!(10)));
        assert_eq!(
            gold.covers,
            ["Compute", "Storage", "Network", "IP addresses"]
        );
    }

    #[test]
    fn chart_segments_fill_the_bar_exactly() {
        let items = vec![
            ("a".to_string(), dec!(1)),
            ("b".to_string(), dec!(1)),
            ("c".to_string(), dec!(1)),
            ("zero".to_string(), dec!(0)),
            ("credit".to_string(), dec!(-5)),
        ];
        let s = segments(&items);
        assert_eq!(s.len(), 3);
        assert_eq!(s.iter().map(|x| x.width).sum::<u32>(), CHART_WIDTH);
        assert_eq!(s.iter().map(|x| x.percent).sum::<u32>(), 100);
        assert_eq!((s[1].x, s[2].x), (s[0].width, s[0].width + s[1].width));
        assert_eq!(segments(&[]), vec![]);
        let e = compute(&cloudstack(), &starter()).estimate.unwrap();
        let cats = category_segments(&e);
        assert_eq!(cats.iter().map(|x| x.width).sum::<u32>(), CHART_WIDTH);
        assert_eq!(tier_segments(&e).len(), 3);
    }

    #[test]
    fn csv_export() {
        let cat = cloudstack();
        let mut c = starter();
        c.tiers[0].name = "=HYPERLINK(\"x\")".into();
        let e = compute(&cat, &c).estimate.unwrap();
        let csv = to_csv(&c, &e);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "row,tier,category,description,quantity,unit,unit_price_GBP,hourly_GBP,monthly_GBP,yearly_GBP"
        );
        assert!(
            lines[1].starts_with("line,\"'=HYPERLINK(\"\"x\"\")\",Compute,"),
            "{}",
            lines[1]
        );
        let total = lines
            .iter()
            .find(|l| l.starts_with("monthly_total,"))
            .unwrap();
        assert!(
            total.ends_with(&format!(",{},", e.monthly_total)),
            "{total}"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("-1"), "-1");
        assert_eq!(csv_field("-cmd"), "'-cmd");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("plain"), "plain");
    }
}
