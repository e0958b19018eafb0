//! The cost explorer of the invoice preview: a dropped export's invoice spread over its days, projects, resources and products by the rater's own report code (`pricing::report`), with a CSV of it, all in the browser.
//!
//! It runs in the preview's web worker, so that none of it is in the page's first download:
//! the worker answers the page with the explorer as finished markup (every text escaped here)
//! and the CSV as a `data:` link, and the page inserts the markup as it is. The figures are
//! `pricing::report`'s: each line's net split over the usage behind it by largest remainder,
//! so the days add up to the invoice's net to the cent, as the rater's reports do.

use chrono::NaiveDate;
use pricing::invoice::{Account, Invoice};
use pricing::report::{spread, Dimension, Granularity, ReportBuilder, ReportQuery};
use pricing::{Catalog, PricingError, Usage};
use rust_decimal::Decimal;

use super::format::{money, quantity};

/// Rows of a breakdown shown before the rest are summed into one.
pub const BREAKDOWN_ROWS_SHOWN: usize = 8;
/// Largest CSV offered as a link: browsers refuse longer `data:` URLs; the rater's
/// `ratecard report` makes any size.
pub const CSV_LINK_BYTES_MAX: usize = 1_500_000;

/// An invoice's cost by day and its breakdowns.
#[derive(Debug, Clone, PartialEq)]
pub struct Explorer {
    pub currency: String,
    /// Every day of the period with its cost (zero for days without usage).
    pub days: Vec<(NaiveDate, Decimal)>,
    /// By project, resource and product: (name, cost), most expensive first.
    pub breakdowns: Vec<(Dimension, Vec<(String, Decimal)>)>,
    /// The period's net: the days add up to it.
    pub net: Decimal,
    /// The CSV of the cost by day, project, resource, product and meter.
    pub csv: String,
}

/// The explorer of `invoice` (the preview's invoice of `account` for its period over `usage`).
///
/// # Errors
/// [`PricingError`] when the usage cannot be spread (a meter the catalog lacks, an overflow).
pub fn explore(
    catalog: &Catalog,
    account: &Account,
    invoice: &Invoice,
    usage: &Usage,
) -> Result<Explorer, PricingError> {
    let first = invoice.period.start.date_naive();
    let last = (invoice.period_end - chrono::Duration::seconds(1)).date_naive();
    let query = |group_by: Vec<Dimension>, by: Granularity| ReportQuery {
        from: first,
        to: last,
        group_by,
        by,
        filters: Vec::new(),
    };
    let mut by_day = ReportBuilder::new(query(Vec::new(), Granularity::Day));
    let mut breakdown = ReportBuilder::new(query(
        vec![Dimension::Project, Dimension::Resource, Dimension::Product],
        Granularity::Month,
    ));
    let mut detail = ReportBuilder::new(query(
        vec![
            Dimension::Project,
            Dimension::Resource,
            Dimension::Product,
            Dimension::Meter,
        ],
        Granularity::Day,
    ));
    let mut failed = None;
    spread(catalog, account, invoice, usage, None, |p| {
        for b in [&mut by_day, &mut breakdown, &mut detail] {
            if let Err(e) = b.add(&p) {
                failed.get_or_insert(e);
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    let by_day = by_day.finish()?;
    let breakdown = breakdown.finish()?;
    let detail = detail.finish()?;
    let mut days = Vec::new();
    let mut d = first;
    while d <= last {
        let cost = by_day
            .main
            .rows
            .iter()
            .filter(|r| r.period == d)
            .map(|r| r.amount)
            .sum();
        days.push((d, cost));
        d = d.succ_opt().unwrap_or(last + chrono::Days::new(1));
    }
    let breakdowns = breakdown
        .by_dimension
        .iter()
        .map(|g| {
            let mut rows: Vec<(String, Decimal)> = g
                .rows
                .iter()
                .map(|r| (r.keys.first().cloned().unwrap_or_default(), r.amount))
                .collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (
                g.group_by.first().cloned().unwrap_or(Dimension::Product),
                rows,
            )
        })
        .collect();
    Ok(Explorer {
        currency: invoice.bill.currency.clone(),
        days,
        breakdowns,
        net: invoice.bill.net,
        csv: csv(&detail),
    })
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
fn field(s: &str) -> String {
    // A name a spreadsheet would read as a formula is prefixed with `'`.
    let s = &if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv(r: &pricing::report::Report) -> String {
    let mut out =
        String::from("date,currency,project,resource,product,meter,unit,quantity,amount\n");
    for row in &r.main.rows {
        let mut cells = vec![row.period.to_string(), row.currency.clone()];
        cells.extend(row.keys.iter().map(|k| field(k)));
        cells.push(field(row.unit.as_deref().unwrap_or_default()));
        cells.push(
            row.quantity
                .map(|q| q.normalize().to_string())
                .unwrap_or_default(),
        );
        cells.push(row.amount.to_string());
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    for t in &r.main.totals {
        out.push_str(&format!("total,{},,,,,,,{}\n", t.currency, t.amount));
    }
    out
}

/// `text` safe inside HTML text and attribute values.
/// A text (an account id, from a file) as an HTML id: its bytes in hex. An id holding a space
/// would break `aria-labelledby`, which takes a list of ids; hex keeps two keys apart exactly.
pub fn dom_id(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` percent-encoded for a `data:` URL (RFC 3986 unreserved characters kept).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `part` of `whole` in whole percent (0 to 100), for bar heights and shares; exact decimals.
pub fn share_pct(part: Decimal, whole: Decimal) -> u32 {
    if whole <= Decimal::ZERO || part <= Decimal::ZERO {
        return 0;
    }
    let Some(pct) = part
        .checked_mul(Decimal::ONE_HUNDRED)
        .and_then(|x| x.checked_div(whole))
    else {
        return 0;
    };
    let pct = pct.round_dp(0);
    let whole_pct = pct.mantissa() / 10i128.pow(pct.scale());
    u32::try_from(whole_pct.clamp(0, 100)).unwrap_or(0)
}

fn dimension_title(d: &Dimension) -> &'static str {
    match d {
        Dimension::Project => "By project",
        Dimension::Resource => "By resource",
        _ => "By product",
    }
}

impl Explorer {
    /// The explorer as markup: a bar per day (its height the day's share of the costliest
    /// day; the figures in its title and in a table for screen readers), the breakdowns as
    /// tables with each row's share of the net, and the CSV link. `key` tells apart the
    /// explorers of several accounts on one page.
    pub fn html(&self, key: &str, period_id: &str) -> String {
        let cur = &self.currency;
        let max = self.days.iter().map(|(_, c)| *c).max().unwrap_or_default();
        let id = escape(key);
        let dom = dom_id(key);
        let mut h = format!(
            "<section class=\"explorer no-print\" aria-labelledby=\"explorer-{dom}\" data-testid=\"explorer\"><h4 id=\"explorer-{dom}\">Cost explorer</h4>"
        );
        let peak = self.days.iter().max_by_key(|(_, c)| *c);
        let label = match peak {
            Some((d, c)) if !c.is_zero() => format!(
                "Cost by day, {} to {}: highest {} on {d}",
                self.days.first().map(|x| x.0).unwrap_or(*d),
                self.days.last().map(|x| x.0).unwrap_or(*d),
                money(*c, cur)
            ),
            _ => "Cost by day: no cost in the period".to_string(),
        };
        h.push_str(&format!(
            "<figure class=\"cost-chart\"><figcaption>Cost by day</figcaption><div class=\"bars\" role=\"img\" aria-label=\"{}\" data-testid=\"cost-chart\">",
            escape(&label)
        ));
        for (d, c) in &self.days {
            h.push_str(&format!(
                "<div class=\"bar\" style=\"height:{}%\" title=\"{d}: {}\" data-day=\"{d}\" data-cost=\"{c}\"></div>",
                share_pct(*c, max),
                escape(&money(*c, cur))
            ));
        }
        h.push_str("</div><div class=\"axis\">");
        if let (Some(first), Some(last)) = (self.days.first(), self.days.last()) {
            h.push_str(&format!("<span>{}</span><span>{}</span>", first.0, last.0));
        }
        h.push_str("</div></figure><div class=\"breakdowns\">");
        for (dim, rows) in &self.breakdowns {
            h.push_str(&format!(
                "<table class=\"breakdown\" data-testid=\"breakdown-{}\"><caption>{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">Cost</th><th scope=\"col\" class=\"num\">Share</th></tr></thead><tbody>",
                dim.name(),
                dimension_title(dim),
                match dim {
                    Dimension::Project => "Project",
                    Dimension::Resource => "Resource",
                    _ => "Product",
                }
            ));
            let mut row = |name: &str, c: Decimal| {
                h.push_str(&format!(
                    "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{} %</td></tr>",
                    escape(name),
                    escape(&money(c, cur)),
                    share_pct(c, self.net)
                ));
            };
            for (name, c) in rows.iter().take(BREAKDOWN_ROWS_SHOWN) {
                row(if name.is_empty() { "(none)" } else { name }, *c);
            }
            if rows.len() > BREAKDOWN_ROWS_SHOWN {
                let rest: Decimal = rows[BREAKDOWN_ROWS_SHOWN..].iter().map(|r| r.1).sum();
                row(
                    &format!("{} others", rows.len() - BREAKDOWN_ROWS_SHOWN),
                    rest,
                );
            }
            h.push_str("</tbody></table>");
        }
        h.push_str("</div>");
        if self.csv.len() <= CSV_LINK_BYTES_MAX {
            h.push_str(&format!(
                "<p><a class=\"button secondary\" data-testid=\"explorer-csv\" download=\"cost-{id}-{}.csv\" href=\"data:text/csv;charset=utf-8,{}\">Download the costs by day (CSV)</a></p>",
                escape(period_id),
                percent_encode(&self.csv)
            ));
        } else {
            h.push_str(&format!(
                "<p class=\"muted\">The CSV of this export is {} bytes, too large for a link: the rater's <code>ratecard report</code> writes it.</p>",
                quantity(Decimal::from(self.csv.len() as u64))
            ));
        }
        h.push_str("</section>");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::AppConfig;
    use crate::model::testing::{cloudstack, day};

    #[test]
    fn shares_are_whole_percents_of_exact_amounts() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(share_pct(d("105.60"), d("105.60")), 100);
        assert_eq!(share_pct(d("1"), d("3")), 33);
        assert_eq!(share_pct(d("2"), d("3")), 67);
        assert_eq!(share_pct(d("0"), d("3")), 0);
        assert_eq!(share_pct(d("-1"), d("3")), 0);
        assert_eq!(share_pct(d("1"), d("0")), 0);
    }

    #[test]
    fn markup_escapes_what_came_from_the_file() {
        assert_eq!(
            escape("<img src=x onerror=\"alert('1')\">&"),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(percent_encode("a b,é\n"), "a%20b%2C%C3%A9%0A");
        assert_eq!(field("web, db"), "\"web, db\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    /// The example CloudStack month: the days add up to the invoice's net, each breakdown too,
    /// and the CSV's rows to its total row.
    #[test]
    fn the_example_month_adds_up_by_day_and_by_breakdown() {
        let cat = cloudstack();
        let bytes = include_bytes!("../../../examples/exports/cloudstack-2017-02.json");
        let settings = AppConfig::empty(&cat, day("2017-02-15"));
        let p = super::super::invoice_preview::preview(&cat, &settings, "feb.json", bytes).unwrap();
        let inv = &p.invoices[0];
        let e = &p.explorers[0];
        assert_eq!(e.days.len(), 28);
        let by_day: Decimal = e.days.iter().map(|d| d.1).sum();
        assert_eq!(by_day, inv.bill.net);
        assert_eq!(e.breakdowns.len(), 3);
        for (dim, rows) in &e.breakdowns {
            let sum: Decimal = rows.iter().map(|r| r.1).sum();
            assert_eq!(sum, inv.bill.net, "{}", dim.name());
        }
        // Products: the invoice's lines summed by product, independently of the explorer.
        let mut products: std::collections::BTreeMap<String, Decimal> = Default::default();
        for l in inv.bill.lines() {
            *products.entry(l.product.clone()).or_default() += l.amount + l.adjustments;
        }
        let shown: std::collections::BTreeMap<String, Decimal> =
            e.breakdowns[2].1.iter().cloned().collect();
        assert_eq!(shown, products);
        let csv_rows: Decimal = e
            .csv
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("total"))
            .map(|l| l.rsplit(',').next().unwrap().parse::<Decimal>().unwrap())
            .sum();
        assert_eq!(csv_rows, inv.bill.net);
        let html = e.html("bu1user1", "2017-02");
        assert_eq!(html.matches("class=\"bar\"").count(), 28);
        assert!(html.contains("data-testid=\"breakdown-resource\""));
        assert!(html.contains("download=\"cost-bu1user1-2017-02.csv\""));
    }
}
