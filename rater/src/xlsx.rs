//! Usage and cost reports as XLSX workbooks: a sheet for the report's grouping and one for each of its dimensions alone, numbers and dates as typed cells with formats, totals rows at the bottom.
//!
//! A spreadsheet stores numbers as IEEE doubles, so each amount is converted at this edge
//! only, and only when the double reads back as the same decimal (every amount at a currency's
//! minor unit below 10^13 does); a quantity with more significant digits than a double holds
//! is written as text, exact, rather than silently rounded.

use std::str::FromStr;

use pricing::money::minor_units;
use pricing::report::{Grouping, Report};
use rust_decimal::Decimal;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

/// The report as an XLSX workbook.
///
/// # Errors
/// [`XlsxError`] when the workbook cannot be assembled (more rows than a sheet holds; the
/// report's row bound keeps it under).
pub fn report_xlsx(r: &Report) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    wb.set_properties(
        &rust_xlsxwriter::DocProperties::new()
            .set_title(format!("Usage and cost from {} to {}", r.from, r.to))
            .set_author("Ratecard"),
    );
    sheet(wb.add_worksheet(), "Report", &r.main)?;
    let mut names = vec!["Report".to_string()];
    for g in &r.by_dimension {
        let name = sheet_name(
            &g.group_by
                .first()
                .map_or("Total".into(), |d| format!("By {}", d.name())),
            &names,
        );
        sheet(wb.add_worksheet(), &name, g)?;
        names.push(name);
    }
    wb.save_to_buffer()
}

/// A worksheet name Excel accepts: at most 31 characters, none of `[]:*?/\\`, unique in the
/// workbook (a tag's `tag:env` becomes `By tag env`; a clash gets a number).
fn sheet_name(wanted: &str, taken: &[String]) -> String {
    let clean: String = wanted
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { ' ' } else { c })
        .take(31)
        .collect();
    let mut name = clean.clone();
    let mut n = 2;
    while taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
        let suffix = format!(" {n}");
        name = clean.chars().take(31 - suffix.len()).collect::<String>() + &suffix;
        n += 1;
    }
    name
}

/// An exact decimal as a double, when the double reads back as the same decimal.
pub fn exact_f64(d: Decimal) -> Option<f64> {
    let f = f64::from_str(&d.to_string()).ok()?;
    let back = Decimal::from_str(&f.to_string()).ok()?;
    (back == d).then_some(f)
}

fn sheet(ws: &mut Worksheet, name: &str, g: &Grouping) -> Result<(), XlsxError> {
    ws.set_name(name)?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let qty = Format::new().set_num_format("#,##0.######");
    let money_fmt = |currency: &str, bold: bool| {
        let dp = minor_units(currency).unwrap_or(2) as usize;
        let pattern = if dp == 0 {
            "#,##0".to_string()
        } else {
            format!("#,##0.{}", "0".repeat(dp))
        };
        let f = Format::new().set_num_format(pattern);
        if bold {
            f.set_bold()
        } else {
            f
        }
    };
    let mut head = vec!["Period".to_string(), "Currency".to_string()];
    head.extend(g.group_by.iter().map(|d| d.name().to_string()));
    head.extend(["Unit", "Quantity", "Amount", "Wholesale", "Margin"].map(str::to_string));
    for (c, h) in head.iter().enumerate() {
        ws.write_string_with_format(0, col(c), h, &bold)?;
    }
    let dims = g.group_by.len();
    let (unit_c, qty_c, amount_c) = (2 + dims, 3 + dims, 4 + dims);
    let mut row = 1u32;
    let number = |ws: &mut Worksheet, row: u32, c: usize, d: Decimal, f: &Format| match exact_f64(d)
    {
        Some(x) => ws.write_number_with_format(row, col(c), x, f).map(|_| ()),
        None => ws.write_string(row, col(c), d.to_string()).map(|_| ()),
    };
    for rr in &g.rows {
        let day = ExcelDateTime::from_ymd(
            u16::try_from(chrono::Datelike::year(&rr.period)).unwrap_or(1900),
            chrono::Datelike::month(&rr.period) as u8,
            chrono::Datelike::day(&rr.period) as u8,
        )?;
        ws.write_datetime_with_format(row, 0, &day, &date)?;
        ws.write_string(row, 1, &rr.currency)?;
        for (i, k) in rr.keys.iter().enumerate() {
            ws.write_string(row, col(2 + i), k)?;
        }
        if let Some(u) = &rr.unit {
            ws.write_string(row, col(unit_c), u)?;
        }
        if let Some(q) = rr.quantity {
            number(ws, row, qty_c, q, &qty)?;
        }
        let m = money_fmt(&rr.currency, false);
        number(ws, row, amount_c, rr.amount, &m)?;
        if let Some(w) = rr.wholesale {
            number(ws, row, amount_c + 1, w, &m)?;
        }
        if let Some(x) = rr.margin {
            number(ws, row, amount_c + 2, x, &m)?;
        }
        row += 1;
    }
    for t in &g.totals {
        ws.write_string_with_format(row, 0, "Total", &bold)?;
        ws.write_string_with_format(row, 1, &t.currency, &bold)?;
        let m = money_fmt(&t.currency, true);
        number(ws, row, amount_c, t.amount, &m)?;
        if let Some(w) = t.wholesale {
            number(ws, row, amount_c + 1, w, &m)?;
        }
        if let Some(x) = t.margin {
            number(ws, row, amount_c + 2, x, &m)?;
        }
        row += 1;
    }
    ws.set_freeze_panes(1, 0)?;
    if !g.rows.is_empty() {
        ws.autofilter(0, 0, row - 1 - len_u32(g.totals.len()), col(head.len() - 1))?;
    }
    ws.set_column_width(0, 12)?;
    for c in 2..head.len() {
        ws.set_column_width(col(c), 16)?;
    }
    Ok(())
}

fn col(c: usize) -> u16 {
    u16::try_from(c).unwrap_or(u16::MAX)
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_ones_excel_accepts_and_unique() {
        let taken = vec!["Report".to_string(), "By tag env".to_string()];
        assert_eq!(sheet_name("By tag:env", &taken), "By tag env 2");
        assert_eq!(sheet_name("By tag:a/b", &taken), "By tag a b");
        let long = sheet_name(&format!("By tag:{}", "x".repeat(40)), &taken);
        assert_eq!(long.chars().count(), 31);
    }
}
