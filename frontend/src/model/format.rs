//! How the storefront writes amounts, prices and quantities: exact decimals, grouped, with units.

use pricing::money::{group_thousands, minor_units};
use rust_decimal::{Decimal, RoundingStrategy};

/// Digits shown after the point for a unit price beyond the currency's own minor units: hourly
/// prices of small VMs and per-GB-hour storage prices are fractions of a cent.
pub const UNIT_PRICE_EXTRA_DIGITS: u32 = 4;

/// The symbol written before an amount, for the currencies whose symbol is unambiguous; other
/// currencies are written with their ISO code (`CHF 12.00`), which is never ambiguous.
fn symbol(code: &str) -> Option<&'static str> {
    match code {
        "GBP" => Some("£"),
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

/// An amount already rounded by the engine, written with the currency's symbol or code and
/// thousands separators, keeping its scale: `£2,955.91`, `-€5.00`, `CHF 1,200.00`.
pub fn money(amount: Decimal, currency: &str) -> String {
    let digits = group_thousands(amount.abs());
    let sign = if amount.is_sign_negative() && !amount.is_zero() {
        "-"
    } else {
        ""
    };
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{digits}"),
        None => format!("{sign}{currency} {digits}"),
    }
}

/// An amount padded to the currency's minor units (`12` -> `12.00`), for amounts the engine left
/// unscaled (fees, converted list prices).
pub fn money_scaled(amount: Decimal, currency: &str) -> String {
    let units = minor_units(currency).unwrap_or(2);
    // Display rounding is half away from zero, as people round; amounts the engine bills are
    // rounded by the engine with the catalog's own mode before they get here.
    let mut a = amount.round_dp_with_strategy(units, RoundingStrategy::MidpointAwayFromZero);
    a.rescale(units);
    money(a, currency)
}

/// A unit price: at least the currency's minor units, at most [`UNIT_PRICE_EXTRA_DIGITS`] more,
/// trailing zeros beyond the minor units dropped (`0.0036`, `2.20`, `0.004212`).
pub fn unit_price(price: Decimal, currency: &str) -> String {
    let units = minor_units(currency).unwrap_or(2);
    let mut p = price
        .round_dp_with_strategy(
            units + UNIT_PRICE_EXTRA_DIGITS,
            RoundingStrategy::MidpointAwayFromZero,
        )
        .normalize();
    if p.scale() < units {
        p.rescale(units);
    }
    money(p, currency)
}

/// A quantity as the invoice shows it (`pricing::unit::shown_quantity`: the rater's documents
/// and this storefront round quantities alike), grouped: `1,460`, `0.5`, `0.01`.
pub fn quantity(q: Decimal) -> String {
    group_thousands(pricing::unit::shown_quantity(q))
}

/// A percentage without trailing zeros: `99.95 %`.
pub fn percent(p: Decimal) -> String {
    format!("{} %", p.normalize())
}

/// `text` in upper case. In the browser JavaScript's `toUpperCase` does it (the same Unicode
/// mapping), so that the wasm carries no copy of Rust's Unicode case tables for one label.
pub fn uppercase(text: &str) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::JsString::from(text).to_upper_case().into()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        text.to_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn amounts() {
        let cases = [
            (dec!(2955.91), "GBP", "£2,955.91"),
            (dec!(-5.00), "EUR", "-€5.00"),
            (dec!(1200.00), "CHF", "CHF 1,200.00"),
            (dec!(0.00), "GBP", "£0.00"),
            (dec!(1235), "JPY", "¥1,235"),
        ];
        for (a, c, expect) in cases {
            assert_eq!(money(a, c), expect);
        }
        assert_eq!(money_scaled(dec!(12), "GBP"), "£12.00");
        assert_eq!(money_scaled(dec!(1.2345), "BHD"), "BHD 1.235");
    }

    #[test]
    fn unit_prices_keep_fractions_of_a_cent() {
        assert_eq!(unit_price(dec!(0.0036), "GBP"), "£0.0036");
        assert_eq!(unit_price(dec!(2.2000), "GBP"), "£2.20");
        assert_eq!(unit_price(dec!(0.00421200), "EUR"), "€0.004212");
        assert_eq!(unit_price(dec!(0.0000001), "EUR"), "€0.00");
        assert_eq!(unit_price(dec!(308), "JPY"), "¥308");
    }

    #[test]
    fn quantities_and_percentages() {
        assert_eq!(quantity(dec!(1460.000)), "1,460");
        assert_eq!(quantity(dec!(0.50)), "0.5");
        assert_eq!(quantity(dec!(0.0099999997764825820922851569)), "0.01");
        assert_eq!(quantity(dec!(1343.59551)), "1,343.6");
        assert_eq!(quantity(dec!(343.99950000000000000000000001)), "344");
        assert_eq!(percent(dec!(99.950)), "99.95 %");
    }
}
