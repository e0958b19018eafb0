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

    /// `quantity` expressed in `to`, or `None` when the units measure different things.
    ///
    /// Multiplies before it divides, so that whole multiples convert exactly (1073741824 B is
    /// exactly 1 GB); a quotient that does not terminate is cut at Decimal's 28 digits, the same
    /// way on every target.
    pub fn convert(self, quantity: Decimal, to: Unit, hours_per_month: Decimal) -> Option<Decimal> {
        if !self.converts_to(to) {
            return None;
        }
        if self == to {
            return Some(quantity);
        }
        Some(quantity * self.base_factor(hours_per_month) / to.base_factor(hours_per_month))
    }
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
    }

    #[test]
    fn dimensions_do_not_mix() {
        assert_eq!(
            Unit::Hours.convert(dec!(1), Unit::Gigabytes, dec!(730)),
            None
        );
        assert_eq!(
            Unit::GigabyteHours.convert(dec!(1), Unit::Gigabytes, dec!(730)),
            None
        );
    }
}
