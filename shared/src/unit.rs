//! Measurement units of usage quantities and the exact conversions between units of one dimension.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A unit a quantity is measured in. Every unit belongs to one [`Dimension`]; quantities only
/// convert within a dimension (hours never become gigabytes).
///
/// Bytes are shown as GB with 1024^3 bytes per GB, as CloudStack and Ceilometer exporters do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Time: seconds.
    #[serde(alias = "s")]
    Seconds,
    #[serde(alias = "min")]
    Minutes,
    #[serde(alias = "h", alias = "hour")]
    Hours,
    /// Data: bytes (B).
    #[serde(alias = "B")]
    Bytes,
    #[serde(alias = "KB", alias = "KiB")]
    Kilobytes,
    #[serde(alias = "MB", alias = "MiB")]
    Megabytes,
    #[serde(alias = "GB", alias = "GiB", alias = "gb")]
    Gigabytes,
    /// Storage over time: byte-hours (CloudStack volume size x hours before scaling).
    ByteHours,
    #[serde(alias = "GB.h", alias = "gb_h")]
    GigabyteHours,
    /// GB held for a month of `hours_per_month` hours (the catalog says how long a month is).
    #[serde(alias = "GB.month")]
    GigabyteMonths,
    /// Counts: requests, IP addresses, users, rules... anything counted one by one.
    #[serde(alias = "requests")]
    Requests,
    #[serde(alias = "count", alias = "each")]
    Units,
}

/// What a unit measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Time,
    Data,
    DataTime,
    Count,
}

const GIB: i64 = 1024 * 1024 * 1024;

impl Unit {
    pub fn dimension(self) -> Dimension {
        match self {
            Unit::Seconds | Unit::Minutes | Unit::Hours => Dimension::Time,
            Unit::Bytes | Unit::Kilobytes | Unit::Megabytes | Unit::Gigabytes => Dimension::Data,
            Unit::ByteHours | Unit::GigabyteHours | Unit::GigabyteMonths => Dimension::DataTime,
            Unit::Requests | Unit::Units => Dimension::Count,
        }
    }

    /// The short label printed on invoices.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Minutes => "min",
            Unit::Hours => "h",
            Unit::Bytes => "B",
            Unit::Kilobytes => "KB",
            Unit::Megabytes => "MB",
            Unit::Gigabytes => "GB",
            Unit::ByteHours => "B.h",
            Unit::GigabyteHours => "GB.h",
            Unit::GigabyteMonths => "GB.month",
            Unit::Requests => "requests",
            Unit::Units => "units",
        }
    }

    /// How many base units of the dimension (seconds, bytes, byte-seconds, counts) one of this
    /// unit is. Months need the catalog's month length in hours.
    fn base_factor(self, hours_per_month: Decimal) -> Decimal {
        let hour = Decimal::from(3600);
        match self {
            Unit::Seconds => Decimal::ONE,
            Unit::Minutes => Decimal::from(60),
            Unit::Hours => hour,
            Unit::Bytes => Decimal::ONE,
            Unit::Kilobytes => Decimal::from(1024),
            Unit::Megabytes => Decimal::from(1024 * 1024),
            Unit::Gigabytes => Decimal::from(GIB),
            Unit::ByteHours => hour,
            Unit::GigabyteHours => Decimal::from(GIB) * hour,
            Unit::GigabyteMonths => Decimal::from(GIB) * hour * hours_per_month,
            Unit::Requests | Unit::Units => Decimal::ONE,
        }
    }

    /// Whether quantities in `self` can be expressed in `to` (same dimension).
    pub fn converts_to(self, to: Unit) -> bool {
        self.dimension() == to.dimension()
    }

    /// `quantity` expressed in `to`.
    ///
    /// Multiplies before it divides, so that whole multiples convert exactly (1073741824 B is
    /// exactly 1 GB); a quotient that does not terminate is cut at Decimal's 28 digits, the same
    /// way on every target. When the product would not fit in a decimal it divides first.
    ///
    /// # Errors
    /// [`ConvertError::Dimension`] when the units measure different things;
    /// [`ConvertError::Overflow`] when the result itself does not fit in a decimal.
    pub fn convert(
        self,
        quantity: Decimal,
        to: Unit,
        hours_per_month: Decimal,
    ) -> Result<Decimal, ConvertError> {
        if !self.converts_to(to) {
            return Err(ConvertError::Dimension);
        }
        if self == to {
            return Ok(quantity);
        }
        let (from_f, to_f) = (
            self.base_factor(hours_per_month),
            to.base_factor(hours_per_month),
        );
        if let Some(product) = quantity.checked_mul(from_f) {
            return product.checked_div(to_f).ok_or(ConvertError::Overflow);
        }
        // The product does not fit: a huge quantity. Multiply by the factors' ratio when it is
        // whole (GB-months to GB-hours: the month's hours), which stays exact; else divide
        // first.
        let ratio = if (from_f % to_f).is_zero() {
            from_f / to_f
        } else {
            return crate::exact::mul_div(quantity, from_f, to_f, "quantity in the meter's unit")
                .map_err(|_| ConvertError::Overflow);
        };
        quantity.checked_mul(ratio).ok_or(ConvertError::Overflow)
    }
}

/// Why a quantity could not be expressed in another unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertError {
    /// The units measure different things (hours never become gigabytes).
    Dimension,
    /// The converted quantity does not fit in a decimal.
    Overflow,
}

/// Decimals a quantity is shown with on every document and screen (seed 000's invoice shows
/// `1344 h` and `0.01 GB`). The exact quantity stays in the JSON.
pub const QUANTITY_DECIMALS_SHOWN: u32 = 2;

/// Decimals a non-zero quantity too small for [`QUANTITY_DECIMALS_SHOWN`] is shown with, so
/// that it never reads as zero.
pub const QUANTITY_DECIMALS_SHOWN_SMALL: u32 = 6;

/// A quantity as documents and screens show it: rounded half to even at
/// [`QUANTITY_DECIMALS_SHOWN`] decimals (at [`QUANTITY_DECIMALS_SHOWN_SMALL`] when that would
/// show a non-zero quantity as 0), without trailing zeros. Rated quantities carry up to 28
/// digits (bytes converted to GB, GB-seconds to GB-hours): `343.99950000000000000000000001` is
/// shown `344`. Display only: amounts are priced on the exact quantity and rounded by the
/// pricing pipeline, never from this.
pub fn shown_quantity(q: Decimal) -> Decimal {
    use rust_decimal::RoundingStrategy::MidpointNearestEven;
    let shown = q.round_dp_with_strategy(QUANTITY_DECIMALS_SHOWN, MidpointNearestEven);
    let shown = if shown.is_zero() && !q.is_zero() {
        q.round_dp_with_strategy(QUANTITY_DECIMALS_SHOWN_SMALL, MidpointNearestEven)
    } else {
        shown
    };
    shown.normalize()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn conversions() {
        let hpm = dec!(730);
        let cases = [
            (Unit::Bytes, Unit::Gigabytes, dec!(1073741824), dec!(1)),
            (Unit::Megabytes, Unit::Gigabytes, dec!(512), dec!(0.5)),
            (Unit::Seconds, Unit::Hours, dec!(5400), dec!(1.5)),
            (Unit::Minutes, Unit::Hours, dec!(90), dec!(1.5)),
            (
                Unit::GigabyteMonths,
                Unit::GigabyteHours,
                dec!(2),
                dec!(1460),
            ),
            (
                Unit::ByteHours,
                Unit::GigabyteHours,
                dec!(5368709120),
                dec!(5),
            ),
            (Unit::Requests, Unit::Units, dec!(7), dec!(7)),
        ];
        for (from, to, q, expected) in cases {
            assert_eq!(
                from.convert(q, to, hpm).unwrap(),
                expected,
                "{from:?} -> {to:?}"
            );
        }
        // 10^26 GB-months are 7.3 x 10^28 GB-hours: the product with the factor overflows, so
        // the quantity is divided first; twice as many do not fit at all.
        let q = Decimal::from_i128_with_scale(10i128.pow(26), 0);
        assert_eq!(
            Unit::GigabyteMonths.convert(q, Unit::GigabyteHours, hpm),
            Ok(q * dec!(730))
        );
        assert_eq!(
            Unit::GigabyteMonths.convert(q * dec!(2), Unit::GigabyteHours, hpm),
            Err(ConvertError::Overflow)
        );
        for (from, to, q, expected) in cases {
            assert_eq!(from.convert(q, to, hpm), Ok(expected));
        }
    }

    #[test]
    fn dimensions_do_not_mix() {
        assert_eq!(
            Unit::Hours.convert(dec!(1), Unit::Gigabytes, dec!(730)),
            Err(ConvertError::Dimension)
        );
        assert_eq!(
            Unit::GigabyteHours.convert(dec!(1), Unit::Gigabytes, dec!(730)),
            Err(ConvertError::Dimension)
        );
    }

    #[test]
    fn quantities_are_shown_at_two_decimals_never_as_zero() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        for (q, shown) in [
            ("343.99950000000000000000000001", "344"),
            ("1343.59551", "1343.6"),
            ("0.0099999997764825820922851569", "0.01"),
            // Half to even at the second decimal.
            ("0.125", "0.12"),
            ("0.135", "0.14"),
            ("0.0000123456789", "0.000012"),
            ("0", "0"),
            ("1460.000", "1460"),
        ] {
            assert_eq!(shown_quantity(d(q)).to_string(), shown, "{q}");
        }
    }
}
