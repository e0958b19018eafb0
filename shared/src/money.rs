//! Currencies, ISO 4217 minor units, rounding modes, and the one place money is rounded.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::MoneyError;

/// ISO 4217 codes this engine knows, with their minor units (digits after the decimal point).
///
/// The list is closed on purpose: an unknown currency in a catalog is a typo far more often than a
/// new currency, and a wrong minor-unit count silently mis-rounds every line.
pub const CURRENCIES: &[(&str, u32)] = &[
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("INR", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("TND", 3),
    ("USD", 2),
    ("ZAR", 2),
];

/// Minor units of an ISO 4217 currency code, or `None` when the code is unknown.
pub fn minor_units(code: &str) -> Option<u32> {
    CURRENCIES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, units)| *units)
}

/// How a value exactly halfway between two representable amounts is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// 0.125 -> 0.13 and -0.125 -> -0.13 (commercial rounding, the default of most tax codes).
    #[default]
    HalfUp,
    /// 0.125 -> 0.12, 0.135 -> 0.14 (banker's rounding; no upward drift over many lines).
    HalfEven,
}

impl RoundingMode {
    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
        }
    }
}

/// A currency with its rounding rule: everything needed to turn an exact amount into a payable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    pub code: String,
    pub minor_units: u32,
    pub rounding: RoundingMode,
}

impl Currency {
    /// Looks the code up in [`CURRENCIES`].
    pub fn new(code: &str, rounding: RoundingMode) -> Result<Currency, MoneyError> {
        let minor_units = minor_units(code).ok_or_else(|| MoneyError::UnknownCurrency {
            code: code.to_string(),
        })?;
        Ok(Currency {
            code: code.to_string(),
            minor_units,
            rounding,
        })
    }

    /// Rounds an exact amount to this currency's minor units with its mode. This is the only
    /// place where money is rounded; every caller names the level (line, section, invoice) it
    /// rounds at.
    pub fn round(&self, amount: Decimal) -> Decimal {
        let mut r = amount.round_dp_with_strategy(self.minor_units, self.rounding.strategy());
        // Keep a fixed scale so that "12" prints as "12.00" and JSON is stable across targets.
        r.rescale(self.minor_units);
        r
    }

    /// Rounds an exact amount to `scale` decimals with this currency's mode: a figure shown
    /// finer than the minor unit (an estimate's amounts per hour), never one that is billed.
    pub fn round_to(&self, amount: Decimal, scale: u32) -> Decimal {
        amount.round_dp_with_strategy(scale, self.rounding.strategy())
    }

    pub fn zero(&self) -> Decimal {
        let mut z = Decimal::ZERO;
        z.rescale(self.minor_units);
        z
    }

    /// Sums already-rounded amounts and keeps the currency's scale, so that an empty sum shows
    /// as `0.00`, not `0` (Decimal addition returns the other operand unchanged when one is zero).
    pub fn sum(&self, amounts: impl IntoIterator<Item = Decimal>) -> Decimal {
        let mut total = amounts.into_iter().fold(Decimal::ZERO, |a, b| a + b);
        total.rescale(self.minor_units);
        total
    }
}

/// Formats a decimal with thousands separators, keeping its scale: 2955.91 -> "2,955.91".
pub fn group_thousands(amount: Decimal) -> String {
    let s = amount.to_string();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    match frac_part {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn rounding_modes_and_minor_units() {
        // (currency, mode, exact, expected)
        let cases = [
            ("USD", RoundingMode::HalfUp, dec!(0.125), "0.13"),
            ("USD", RoundingMode::HalfEven, dec!(0.125), "0.12"),
            ("USD", RoundingMode::HalfEven, dec!(0.135), "0.14"),
            ("USD", RoundingMode::HalfUp, dec!(-0.125), "-0.13"),
            ("EUR", RoundingMode::HalfUp, dec!(12), "12.00"),
            ("JPY", RoundingMode::HalfUp, dec!(1234.5), "1235"),
            ("JPY", RoundingMode::HalfEven, dec!(1234.5), "1234"),
            ("BHD", RoundingMode::HalfUp, dec!(1.2345), "1.235"),
            ("KWD", RoundingMode::HalfEven, dec!(1.2345), "1.234"),
            ("CHF", RoundingMode::HalfUp, dec!(0.005), "0.01"),
            ("GBP", RoundingMode::HalfUp, dec!(2955.9090), "2955.91"),
        ];
        for (code, mode, exact, expected) in cases {
            let c = Currency::new(code, mode).unwrap();
            assert_eq!(
                c.round(exact).to_string(),
                expected,
                "{code} {mode:?} {exact}"
            );
        }
    }

    #[test]
    fn unknown_currency_is_an_error() {
        assert_eq!(
            Currency::new("XYZ", RoundingMode::HalfUp),
            Err(MoneyError::UnknownCurrency { code: "XYZ".into() })
        );
    }

    #[test]
    fn thousands_grouping() {
        assert_eq!(group_thousands(dec!(2955.91)), "2,955.91");
        assert_eq!(group_thousands(dec!(-1234567.5)), "-1,234,567.5");
        assert_eq!(group_thousands(dec!(12)), "12");
        assert_eq!(group_thousands(dec!(123)), "123");
    }
}
