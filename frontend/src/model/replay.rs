//! A shared estimate replayed: the same app priced with the price list version its link was made with and with today's, line by line, with the difference.
//!
//! Both sides are bills of the pricing engine (the estimate is the invoice of a month of the
//! app), so the rows are the bill's own: every line, then the discounts, SLA credits and taxes,
//! then the total. No subtotal or net is shown: the differences of the rows shown add up to the
//! difference of the totals, to the cent (each bill's total is the sum of those rows, which
//! `Bill::check` holds), and a shown total must equal the sum of its shown lines.

use pricing::{Bill, Catalog};
use rust_decimal::Decimal;

use super::config::AppConfig;
use super::estimate_view::{bill_row, compute, RowKind};
use super::format;

/// One row: its amount under the link's price list and under today's; `None` where that side
/// has no such row (a product or tax one of the price lists lacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRow {
    pub label: String,
    pub then: Option<Decimal>,
    pub now: Option<Decimal>,
    /// `now - then`, a missing side counting as zero.
    pub difference: Decimal,
    pub kind: RowKind,
}

impl ReplayRow {
    /// The three amounts as shown (`—` for a side without the row; a difference with its sign),
    /// padded to the currency's minor units: a difference against a missing row is `0.00`, not
    /// `0`.
    pub fn shown(&self, currency: &str) -> [String; 3] {
        let side = |a: Option<Decimal>| {
            a.map_or_else(|| "—".to_string(), |a| format::money_scaled(a, currency))
        };
        let diff = if self.difference.is_sign_positive() && !self.difference.is_zero() {
            format!("+{}", format::money_scaled(self.difference, currency))
        } else {
            format::money_scaled(self.difference, currency)
        };
        [side(self.then), side(self.now), diff]
    }
}

/// The replay of one app: what the page shows under the estimate when a link's version differs
/// from today's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayView {
    pub then_version: String,
    pub now_version: String,
    pub currency: String,
    pub rows: Vec<ReplayRow>,
    /// The month's total, tax included, then and now.
    pub total: ReplayRow,
}

/// Why an app could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("this app cannot be priced with price list {version}: {message}")]
    Then { version: String, message: String },
    #[error("this app cannot be priced with today's price list: {0}")]
    Now(String),
    #[error("the two price lists bill in different currencies ({then} then, {now} now)")]
    Currency { then: String, now: String },
    #[error("an amount is too large to compare")]
    Overflow,
}

/// Prices `config` with both price lists and pairs their rows.
///
/// # Errors
/// When either side cannot be priced (the old price list may lack a product the app now uses,
/// or the reverse), naming the side and the engine's reason.
pub fn replay(
    then: &Catalog,
    now: &Catalog,
    config: &AppConfig,
) -> Result<ReplayView, ReplayError> {
    let priced = |catalog: &Catalog| {
        let outcome = compute(catalog, config);
        match outcome.estimate {
            Some(e) => Ok(e),
            None => Err(outcome
                .errors
                .first()
                .map_or_else(|| "it is not complete".to_string(), |e| e.message.clone())),
        }
    };
    let then_e = priced(then).map_err(|message| ReplayError::Then {
        version: then.version.clone(),
        message,
    })?;
    let now_e = priced(now).map_err(ReplayError::Now)?;
    if then_e.bill.currency != now_e.bill.currency {
        return Err(ReplayError::Currency {
            then: then_e.bill.currency.clone(),
            now: now_e.bill.currency.clone(),
        });
    }
    let (rows, mut total) = compare(&then_e.bill, &now_e.bill)?;
    total.label = "Total a month".into();
    Ok(ReplayView {
        then_version: then.version.clone(),
        now_version: now.version.clone(),
        currency: now_e.bill.currency.clone(),
        rows,
        total,
    })
}

/// Pairs two bills' rows (`then` and `now` sides): today's order first, then what only the
/// first bill had, in its order; and their totals.
///
/// # Errors
/// Only [`ReplayError::Overflow`], for amounts no bill of this engine holds.
pub fn compare(then: &Bill, now: &Bill) -> Result<(Vec<ReplayRow>, ReplayRow), ReplayError> {
    let then_rows = rows(then);
    let now_rows = rows(now);
    fn find<'a>(side: &'a [BillRowKey], key: &str) -> Option<&'a BillRowKey> {
        side.iter().find(|r| r.key == key)
    }
    let mut out = Vec::with_capacity(now_rows.len() + then_rows.len());
    // Keys are unique within a bill (repeats are numbered), so each row of each side is shown
    // exactly once and the differences add up to the totals' difference.
    for r in &now_rows {
        let was = find(&then_rows, &r.key).map(|t| t.amount);
        out.push(row(r.label.clone(), was, Some(r.amount), r.kind)?);
    }
    for r in then_rows
        .iter()
        .filter(|r| find(&now_rows, &r.key).is_none())
    {
        out.push(row(r.label.clone(), Some(r.amount), None, r.kind)?);
    }
    let total = row(
        "Total".into(),
        Some(then.total),
        Some(now.total),
        RowKind::Total,
    )?;
    Ok((out, total))
}

/// What a comparison table is called and how its columns read.
struct TableText<'a> {
    /// `data-testid` of the section; its rows are `<testid>-row`, its total `<testid>-total`.
    testid: &'a str,
    /// Unique among the page's headings (the section's `aria-labelledby`).
    heading_id: String,
    heading_tag: &'a str,
    heading: &'a str,
    intro: String,
    caption: &'a str,
    columns: [&'a str; 3],
}

/// A comparison as escaped markup: built in the preview's worker, like the cost explorer, so it
/// adds nothing to the page's first download. Every text from a catalog or a file is escaped.
fn table_html(t: &TableText<'_>, rows: &[ReplayRow], total: &ReplayRow, currency: &str) -> String {
    use super::explorer::escape;
    let (tag, id) = (t.heading_tag, escape(&t.heading_id));
    let mut h = format!(
        "<section class=\"replay\" aria-labelledby=\"{id}\" data-testid=\"{testid}\"><{tag} id=\"{id}\">{}</{tag}>\
         <p class=\"muted\">{}</p><div class=\"table-wrap\"><table class=\"replay-table\"><caption class=\"visually-hidden\">{}</caption>\
         <thead><tr><th scope=\"col\">Item</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th></tr></thead><tbody>",
        escape(t.heading),
        escape(&t.intro),
        escape(t.caption),
        escape(t.columns[0]),
        escape(t.columns[1]),
        escape(t.columns[2]),
        testid = t.testid,
    );
    let tr = |h: &mut String, r: &ReplayRow, testid: String| {
        let class = r.kind.css_class();
        let [a, b, d] = r.shown(currency);
        h.push_str(&format!(
            "<tr class=\"{class}\" data-testid=\"{testid}\"><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&r.label),
            escape(&a),
            escape(&b),
            escape(&d)
        ));
    };
    for r in rows {
        tr(&mut h, r, format!("{}-row", t.testid));
    }
    h.push_str("</tbody><tfoot>");
    tr(&mut h, total, format!("{}-total", t.testid));
    h.push_str("</tfoot></table></div></section>");
    h
}

impl ReplayView {
    /// The replay as markup for the estimate panel (see [`answer`]).
    pub fn html(&self) -> String {
        let text = TableText {
            testid: "replay",
            heading_id: "replay-heading".into(),
            heading_tag: "h3",
            heading: "Prices when the link was made",
            intro: format!(
                "This app a month with price list {} (when the link was made) and with today's, {}.",
                self.then_version, self.now_version
            ),
            caption: "This app's month then and now, and the difference",
            columns: ["Then", "Now", "Difference"],
        };
        table_html(&text, &self.rows, &self.total, &self.currency)
    }
}

/// The kind a replay request carries in the preview worker's protocol, where a preview request
/// has a catalog's JSON (never this word).
pub const REPLAY: &str = "replay";

/// The preview worker's answer to a replay request: the markup of [`replay`] of the app in
/// `config_json` with the two published price lists, or a sentence saying why there is none.
pub fn answer(then_json: &str, now_json: &str, config_json: &str) -> String {
    use super::explorer::escape;
    let parsed = (
        serde_json::from_str::<Catalog>(then_json),
        serde_json::from_str::<Catalog>(now_json),
        serde_json::from_str::<AppConfig>(config_json),
    );
    let result = match parsed {
        (Ok(then), Ok(now), Ok(config)) => replay(&then, &now, &config).map_err(|e| e.to_string()),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            Err(format!("the replay could not start: {e}"))
        }
    };
    match result {
        Ok(v) => v.html(),
        Err(e) => format!(
            "<section class=\"replay\" aria-labelledby=\"replay-heading\" data-testid=\"replay\"><h3 id=\"replay-heading\">Prices when the link was made</h3><p role=\"status\" data-testid=\"replay-error\">{}</p></section>",
            escape(&super::invoice_preview::sentence(&e))
        ),
    }
}

/// The comparison of an estimate with the invoice a usage export gives (under the same price
/// list), as markup for the invoice preview. `key` makes the heading's id unique (the invoice's
/// account). Empty when the bills cannot be compared (another currency).
pub fn against_html(estimate: &Bill, invoice: &Bill, key: &str) -> String {
    if estimate.currency != invoice.currency {
        return String::new();
    }
    let Ok((rows, total)) = compare(estimate, invoice) else {
        return String::new();
    };
    let text = TableText {
        testid: "against",
        heading_id: format!("against-{}", super::explorer::dom_id(key)),
        heading_tag: "h4",
        heading: "Your estimate against this usage",
        intro: format!(
            "A month of the app as estimated, and what this export gives, with price list {}.",
            invoice.catalog_version
        ),
        caption: "The estimate and this usage, row by row",
        columns: ["Estimated", "Actual", "Difference"],
    };
    table_html(&text, &rows, &total, &invoice.currency)
}

fn row(
    label: String,
    then: Option<Decimal>,
    now: Option<Decimal>,
    kind: RowKind,
) -> Result<ReplayRow, ReplayError> {
    let difference = now
        .unwrap_or_default()
        .checked_sub(then.unwrap_or_default())
        .ok_or(ReplayError::Overflow)?;
    Ok(ReplayRow {
        label,
        then,
        now,
        difference,
        kind,
    })
}

/// One row of a bill as it is paired.
struct BillRowKey {
    /// What stays the same between two bills of the same app: the section, product, meter and
    /// region of a line (not its description, which can carry a rate or an included quantity);
    /// a discount's or credit's id; a tax's name (not its rate). Numbered when it repeats.
    key: String,
    label: String,
    kind: RowKind,
    amount: Decimal,
}

/// A bill's rows: each line, then the discounts, credits and taxes. The subtotal, net and total
/// are left out (see the module's comment).
fn rows(bill: &Bill) -> Vec<BillRowKey> {
    let mut out: Vec<BillRowKey> = Vec::new();
    // Bills have tens of rows: a scan is smaller in the wasm than a hash map.
    let mut bases: Vec<String> = Vec::new();
    let mut push = |base: String, label: String, kind: RowKind, amount: Decimal| {
        let n = 1 + bases.iter().filter(|b| **b == base).count();
        bases.push(base.clone());
        let key = if n == 1 { base } else { format!("{base}#{n}") };
        out.push(BillRowKey {
            key,
            label,
            kind,
            amount,
        });
    };
    for section in &bill.sections {
        for line in &section.lines {
            let base = format!(
                "line:{}:{}:{}:{}",
                section.name,
                line.product,
                line.meter.as_deref().unwrap_or(""),
                line.region,
            );
            let label = format!("{} · {}", section.name, line.description);
            push(base, label, RowKind::Plain, line.amount);
        }
    }
    for r in bill.summary_rows() {
        if let Some(s) = bill_row(r) {
            if matches!(s.kind, RowKind::Reduction | RowKind::Tax) {
                push(s.id, s.label, s.kind, s.amount);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{cloudstack, day};

    /// The example catalog with `product`'s first charge at `unit_price` and another version.
    fn repriced(product: &str, unit_price: &str) -> Catalog {
        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../../../examples/catalogs/cloudstack.json"))
                .unwrap();
        json["version"] = "2016-12.1".into();
        let p = json["products"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|p| p["id"] == product)
            .expect("the product");
        p["charges"][0]["price"]["unit_price"] = unit_price.into();
        Catalog::from_json(&json.to_string()).unwrap()
    }

    fn starter(c: &Catalog) -> AppConfig {
        AppConfig::starter(c, day("2017-02-10"))
    }

    #[test]
    fn the_same_prices_replay_with_no_difference() {
        let now = cloudstack();
        let mut then = now.clone();
        then.version = "2016-12.1".into();
        let v = replay(&then, &now, &starter(&now)).unwrap();
        assert_eq!(v.then_version, "2016-12.1");
        assert!(v.rows.len() > 3);
        for r in v.rows.iter().chain([&v.total]) {
            assert_eq!(r.then, r.now, "{}", r.label);
            assert!(r.difference.is_zero(), "{}", r.label);
        }
    }

    #[test]
    fn a_repriced_product_shows_on_its_lines_only_and_the_differences_add_up() {
        let now = cloudstack();
        let config = starter(&now);
        let now_bill = compute(&now, &config).estimate.unwrap().bill;
        // The first VM of the starter app, at another price in the old list.
        let product = now_bill.lines().next().unwrap().product.clone();
        let then = repriced(&product, "9.1234");
        let then_bill = compute(&then, &config).estimate.unwrap().bill;
        let v = replay(&then, &now, &config).unwrap();

        // Every line of each bill is a row, with the engine's own amounts.
        let lines = |b: &Bill| b.lines().map(|l| l.amount).collect::<Vec<_>>();
        let shown_now: Vec<Decimal> = v
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::Plain)
            .filter_map(|r| r.now)
            .collect();
        let shown_then: Vec<Decimal> = v
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::Plain)
            .filter_map(|r| r.then)
            .collect();
        assert_eq!(shown_now, lines(&now_bill));
        assert_eq!(shown_then, lines(&then_bill));
        // Only the repriced product's lines (and the taxes on them) moved.
        let name = now.product(&product).unwrap().name.clone();
        for r in &v.rows {
            if r.kind == RowKind::Plain && !r.label.contains(&name) {
                assert!(r.difference.is_zero(), "{} moved", r.label);
            }
        }
        assert!(v
            .rows
            .iter()
            .any(|r| r.label.contains(&name) && !r.difference.is_zero()));
        // The totals are the engine's, and the differences shown add up to theirs.
        assert_eq!(v.total.then, Some(then_bill.total));
        assert_eq!(v.total.now, Some(now_bill.total));
        let sum: Decimal = v.rows.iter().map(|r| r.difference).sum();
        assert_eq!(sum, now_bill.total - then_bill.total);
        assert_eq!(v.total.difference, sum);
    }

    #[test]
    fn a_changed_tax_rate_or_description_pairs_with_its_row_and_repeats_all_show() {
        let now = cloudstack();
        let config = starter(&now);
        let bill = compute(&now, &config).estimate.unwrap().bill;
        let mut then = bill.clone();
        assert!(!then.taxes.is_empty());
        // The old bill: another tax rate and line description, the same rows.
        then.taxes[0].rate_pct += Decimal::ONE;
        then.sections[0].lines[0]
            .description
            .push_str(" (old name)");
        let (rows, total) = compare(&then, &bill).unwrap();
        let plain_and_tax =
            bill.lines().count() + bill.taxes.len() + bill.discounts.len() + bill.sla_credits.len();
        assert_eq!(rows.len(), plain_and_tax, "every row paired");
        assert!(rows.iter().all(|r| r.then.is_some() && r.now.is_some()));
        assert!(total.difference.is_zero());
        // Two taxes of one name (a catalog may repeat one): both rows show, the sums hold.
        let mut twice = bill.clone();
        let extra = twice.taxes[0].clone();
        twice.total += extra.amount;
        twice.taxes.push(extra.clone());
        let (rows, total) = compare(&bill, &twice).unwrap();
        let sum: Decimal = rows.iter().map(|r| r.difference).sum();
        assert_eq!(sum, total.difference);
        assert_eq!(total.difference, extra.amount);
    }

    #[test]
    fn an_app_the_old_list_cannot_price_says_which_side_and_why() {
        let now = cloudstack();
        let config = starter(&now);
        let product = compute(&now, &config)
            .estimate
            .unwrap()
            .bill
            .lines()
            .next()
            .unwrap()
            .product
            .clone();
        let mut then = now.clone();
        then.version = "2016-12.1".into();
        then.products.retain(|p| p.id != product);
        let err = replay(&then, &now, &config).unwrap_err();
        assert!(
            matches!(&err, ReplayError::Then { version, .. } if version == "2016-12.1"),
            "{err}"
        );
        assert!(err.to_string().contains("2016-12.1"));
    }

    #[test]
    fn the_estimate_against_a_bill_is_escaped_markup_whose_differences_add_up() {
        let now = cloudstack();
        let config = starter(&now);
        let estimate = compute(&now, &config).estimate.unwrap().bill;
        let mut invoice = estimate.clone();
        // One line billed at a cent more than estimated, and a name that needs escaping.
        invoice.sections[0].lines[0].amount += Decimal::new(1, 2);
        invoice.sections[0].lines[0].description = "<b>VM</b> & co".into();
        invoice.sections[0].total += Decimal::new(1, 2);
        invoice.total += Decimal::new(1, 2);
        let h = against_html(&estimate, &invoice, "acct\"1");
        assert!(h.contains("&lt;b&gt;VM&lt;/b&gt; &amp; co"), "{h}");
        assert!(!h.contains("<b>VM"));
        assert!(h.contains("id=\"against-616363742231\""), "{h}");
        assert!(h.contains("+£0.01</td></tr></tfoot>"), "{h}");
        let mut other = invoice.clone();
        other.currency = "EUR".into();
        assert_eq!(against_html(&estimate, &other, "x"), "");
    }

    #[test]
    fn the_workers_answer_is_the_replay_as_markup_or_why_not() {
        let now = cloudstack();
        let mut then = now.clone();
        then.version = "2016-12.<1>".into();
        let config = serde_json::to_string(&starter(&now)).unwrap();
        let h = answer(&then.to_json(), &now.to_json(), &config);
        assert!(h.starts_with("<section class=\"replay\" aria-labelledby=\"replay-heading\" data-testid=\"replay\""), "{h}");
        assert!(h.contains("price list 2016-12.&lt;1&gt; (when"), "{h}");
        assert_eq!(
            h.matches("data-testid=\"replay-row\"").count(),
            replay(&then, &now, &starter(&now)).unwrap().rows.len()
        );
        assert!(h.contains("data-testid=\"replay-total\""));
        let bad = answer("{", &now.to_json(), &config);
        assert!(bad.contains("data-testid=\"replay-error\""), "{bad}");
        assert!(!bad.contains("replay-total"));
    }

    #[test]
    fn differences_are_shown_with_their_sign_at_the_currencys_scale() {
        let r = row("x".into(), None, Some(Decimal::new(0, 2)), RowKind::Plain).unwrap();
        assert_eq!(
            r.shown("EUR"),
            ["—".to_string(), "€0.00".into(), "€0.00".into()]
        );
        let r = row("x".into(), None, Some(Decimal::ZERO), RowKind::Plain).unwrap();
        assert_eq!(r.shown("EUR")[2], "€0.00");
        let r = row(
            "x".into(),
            Some(Decimal::new(1000, 2)),
            Some(Decimal::new(1250, 2)),
            RowKind::Plain,
        )
        .unwrap();
        assert_eq!(
            r.shown("GBP"),
            ["£10.00".to_string(), "£12.50".into(), "+£2.50".into()]
        );
        let r = row(
            "x".into(),
            Some(Decimal::new(1250, 2)),
            None,
            RowKind::Plain,
        )
        .unwrap();
        assert_eq!(
            r.shown("GBP"),
            ["£12.50".to_string(), "—".into(), "-£12.50".into()]
        );
    }
}
