//! Checked decimal arithmetic for money and quantities: every operation either gives its result or names the overflow, never panics.
//!
//! `rust_decimal`'s operators panic when a result does not fit in 96 bits of mantissa
//! (about 7.9 x 10^28); the release profile turns such a panic into an abort. Every amount and
//! quantity the engine computes from outside input goes through these functions instead, so
//! that an absurd input is refused with [`Overflow`], naming what was being computed. The
//! validators ([`crate::validate`], `usage::LINE_QUANTITY_MAX`) keep accepted inputs far from
//! the ceiling; these checks are what makes the rest impossible to panic on.

use rust_decimal::Decimal;
use thiserror::Error;

/// A computation whose result would not fit in a decimal (or divided by zero), named for what
/// it computed (`line amount`, `tax`, `quantity in the meter's unit`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{what} does not fit in a decimal (its result would be above 7.9 x 10^28)")]
pub struct Overflow {
    pub what: &'static str,
}

/// `a + b`.
pub fn add(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    a.checked_add(b).ok_or(Overflow { what })
}

/// `a - b`.
pub fn sub(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    a.checked_sub(b).ok_or(Overflow { what })
}

/// `a * b`.
pub fn mul(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    a.checked_mul(b).ok_or(Overflow { what })
}

/// `a / b` (a zero divisor is an [`Overflow`] too: every divisor the engine uses is validated
/// positive, so one that is not is as much a bug in the input as a huge value).
pub fn div(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    a.checked_div(b).ok_or(Overflow { what })
}

/// The sum of `values`.
pub fn sum(
    values: impl IntoIterator<Item = Decimal>,
    what: &'static str,
) -> Result<Decimal, Overflow> {
    values
        .into_iter()
        .try_fold(Decimal::ZERO, |acc, v| add(acc, v, what))
}

/// `a * b / c`, multiplying first when the product fits (exact for whole multiples) and
/// dividing first when it does not.
pub fn mul_div(
    a: Decimal,
    b: Decimal,
    c: Decimal,
    what: &'static str,
) -> Result<Decimal, Overflow> {
    match a.checked_mul(b) {
        Some(p) => div(p, c, what),
        None => mul(div(a, c, what)?, b, what),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn overflow_is_named_not_a_panic() {
        let big = Decimal::MAX;
        assert_eq!(add(big, Decimal::ONE, "x"), Err(Overflow { what: "x" }));
        assert_eq!(mul(big, Decimal::TWO, "y"), Err(Overflow { what: "y" }));
        assert_eq!(
            div(Decimal::ONE, Decimal::ZERO, "z"),
            Err(Overflow { what: "z" })
        );
        assert_eq!(
            sub(Decimal::MIN, Decimal::ONE, "w"),
            Err(Overflow { what: "w" })
        );
        assert_eq!(sum([big, big], "s"), Err(Overflow { what: "s" }));
        assert_eq!(sum([Decimal::ONE, Decimal::TWO], "s"), Ok(Decimal::from(3)));
    }

    #[test]
    fn mul_div_divides_first_when_the_product_would_not_fit() {
        let q = Decimal::from_i128_with_scale(10i128.pow(24), 0);
        let f = Decimal::from(1_000_000);
        // q x f overflows, q / 1000 x f does not.
        assert_eq!(
            mul_div(q, f, Decimal::from(1000), "m"),
            Ok(Decimal::from_i128_with_scale(10i128.pow(27), 0))
        );
        assert_eq!(
            mul_div(Decimal::from(6), Decimal::from(7), Decimal::from(3), "m"),
            Ok(Decimal::from(14))
        );
        assert!(mul_div(Decimal::MAX, Decimal::MAX, Decimal::ONE, "m").is_err());
    }
}
