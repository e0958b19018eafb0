//! Price models (per unit, graduated, volume, package) with included quantity and minimum charge:
//! the one function that turns a quantity into an exact, unrounded amount.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::exact::{self, Overflow};

/// Most tiers one price may have. Real price sheets have fewer than ten; the bound keeps the tier
/// walk short and a malicious catalog from making every line cost a long loop.
pub const TIERS_PER_PRICE_MAX: usize = 32;

/// The largest quantity, in its meter's unit, one line of an invoice (an account's usage of
/// one product's meter in one period) may reach: 10^16. Ten petabyte-months of storage in
/// GB-hours, a hundred million VMs running for a century, 10^16 requests: far past any
/// account's month, while a price the validator accepts (see [`line_amount_max`]) still
/// multiplies it without getting near a decimal's 7.9 x 10^28. The rater refuses a batch that
/// could take a line past it (each batch may bring a share of it), so every stored period can
/// be priced.
pub fn line_quantity_max() -> Decimal {
    Decimal::from(10_000_000_000_000_000i64)
}

/// The largest amount one line may come to, in the bill's currency: 10^23. Ten thousand
/// lines (`bill::INVOICE_LINES_MAX`), an SLA uplift of 1,000 % and taxes of 100 % on top stay under
/// 2.2 x 10^28, inside a decimal. The validator refuses a catalog whose prices (with fees,
/// exchange rates and reseller markups) could cost more than this on `line_quantity_max()`.
pub fn line_amount_max() -> Decimal {
    Decimal::from_i128_with_scale(100_000_000_000_000_000_000_000, 0)
}

/// The most units one subscription may hold (an account's subscription, a quote's service):
/// a million seats or licences. With fees the validator accepts, a subscription line stays
/// under [`line_amount_max`].
pub fn subscription_quantity_max() -> Decimal {
    Decimal::from(1_000_000)
}

/// The largest exchange rate a catalog may give (units of the bill's currency per unit of the
/// catalog's): a million. The rates between the currencies this engine knows are below 10^5
/// (a Kuwaiti dinar buys about 4,500 won); a larger one is a typo.
pub fn fx_rate_max() -> Decimal {
    Decimal::from(1_000_000)
}

/// The price of one meter: a model plus the free allowance and the floor applied around it.
///
/// In JSON the model's tag and fields sit beside `included` and `minimum`
/// (`{"model": "per_unit", "unit_price": "0.05", "included": "10"}`). Serialization flattens
/// [`PriceModel`]; deserialization reads the same shape through [`PriceShape`] (see
/// `crate::shape` for why not `flatten`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PriceShape")]
pub struct Price {
    #[serde(flatten)]
    pub model: PriceModel,
    /// Quantity included per period before anything is charged (a plan's allowance); in meter units.
    #[serde(default, skip_serializing_if = "Decimal::is_zero")]
    pub included: Decimal,
    /// Smallest amount charged in a period where the meter has any usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Decimal>,
}

/// How a quantity becomes an amount. Quantities, tier bounds and block sizes are in the meter's
/// unit; unit prices are per the meter's `measurement_unit` (per 1,000,000 requests, say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceModel {
    /// `quantity x unit_price`.
    PerUnit { unit_price: Decimal },
    /// Each tier prices the part of the quantity that falls inside it (tax-bracket style).
    Graduated { tiers: Vec<Tier> },
    /// The tier the whole quantity falls in prices all of it.
    Volume { tiers: Vec<Tier> },
    /// Blocks of `block_size` units, each started block charged in full.
    Package {
        block_size: Decimal,
        block_price: Decimal,
    },
}

/// Every field a [`Price`] may have in JSON, read in one pass; [`Price::try_from`] checks that
/// only the tagged model's fields are given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceShape {
    model: ModelTag,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    unit_price: Option<Decimal>,
    tiers: Option<Vec<Tier>>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    block_size: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    block_price: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::decimal")]
    included: Decimal,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    minimum: Option<Decimal>,
}

/// The `model` tag of a [`PriceModel`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ModelTag {
    PerUnit,
    Graduated,
    Volume,
    Package,
}

impl TryFrom<PriceShape> for Price {
    type Error = String;

    fn try_from(s: PriceShape) -> Result<Price, String> {
        use crate::shape::{only, required};
        let fields = [
            ("unit_price", s.unit_price.is_some()),
            ("tiers", s.tiers.is_some()),
            ("block_size", s.block_size.is_some()),
            ("block_price", s.block_price.is_some()),
        ];
        let model = match s.model {
            ModelTag::PerUnit => {
                only(&fields, &["unit_price"])?;
                PriceModel::PerUnit {
                    unit_price: required(s.unit_price, "unit_price")?,
                }
            }
            ModelTag::Graduated => {
                only(&fields, &["tiers"])?;
                PriceModel::Graduated {
                    tiers: required(s.tiers, "tiers")?,
                }
            }
            ModelTag::Volume => {
                only(&fields, &["tiers"])?;
                PriceModel::Volume {
                    tiers: required(s.tiers, "tiers")?,
                }
            }
            ModelTag::Package => {
                only(&fields, &["block_size", "block_price"])?;
                PriceModel::Package {
                    block_size: required(s.block_size, "block_size")?,
                    block_price: required(s.block_price, "block_price")?,
                }
            }
        };
        Ok(Price {
            model,
            included: s.included,
            minimum: s.minimum,
        })
    }
}

/// A tier covers quantities up to `up_to` (inclusive) from the previous tier's bound; the last
/// tier has no bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::shape::opt_decimal"
    )]
    pub up_to: Option<Decimal>,
    #[serde(deserialize_with = "crate::shape::decimal")]
    pub unit_price: Decimal,
    /// A flat amount added once when the quantity reaches this tier.
    #[serde(
        default,
        skip_serializing_if = "Decimal::is_zero",
        deserialize_with = "crate::shape::decimal"
    )]
    pub flat_fee: Decimal,
}

impl Price {
    pub fn per_unit(unit_price: Decimal) -> Price {
        Price {
            model: PriceModel::PerUnit { unit_price },
            included: Decimal::ZERO,
            minimum: None,
        }
    }

    /// The exact amount for `quantity` meter units when prices are per `per` units. Never rounds:
    /// rounding happens once, on the line, in the caller's currency. Every operation is
    /// checked, in the same order as the plain arithmetic (the same results, to the last digit).
    ///
    /// Callers guarantee `quantity >= 0` and a validated price (ordered tiers, positive block).
    ///
    /// # Errors
    /// [`Overflow`] when the amount (or a step toward it) does not fit in a decimal; a price the
    /// validator accepted never overflows on a quantity up to `usage::LINE_QUANTITY_MAX`.
    pub fn amount(&self, quantity: Decimal, per: Decimal) -> Result<Decimal, Overflow> {
        const WHAT: &str = "line amount";
        let billable = exact::sub(quantity, self.included, WHAT)?.max(Decimal::ZERO);
        let per_unit =
            |q: Decimal, price: Decimal| exact::div(exact::mul(q, price, WHAT)?, per, WHAT);
        let amount = match &self.model {
            PriceModel::PerUnit { unit_price } => per_unit(billable, *unit_price)?,
            PriceModel::Graduated { tiers } => {
                let mut total = Decimal::ZERO;
                let mut lower = Decimal::ZERO;
                for tier in tiers {
                    // A tier is reached only by quantity strictly above its lower bound, so a
                    // flat fee is never charged for a tier the usage did not enter.
                    if billable <= lower {
                        break;
                    }
                    let upper = tier.up_to.map_or(billable, |u| u.min(billable));
                    let part = per_unit(exact::sub(upper, lower, WHAT)?, tier.unit_price)?;
                    total = exact::add(total, exact::add(part, tier.flat_fee, WHAT)?, WHAT)?;
                    match tier.up_to {
                        Some(u) => lower = u,
                        None => break,
                    }
                }
                total
            }
            PriceModel::Volume { tiers } => {
                let tier = tiers
                    .iter()
                    .find(|t| t.up_to.is_none_or(|u| billable <= u))
                    .or(tiers.last());
                match tier {
                    Some(t) if !billable.is_zero() => {
                        exact::add(per_unit(billable, t.unit_price)?, t.flat_fee, WHAT)?
                    }
                    _ => Decimal::ZERO,
                }
            }
            PriceModel::Package {
                block_size,
                block_price,
            } => exact::mul(
                exact::div(billable, *block_size, WHAT)?.ceil(),
                *block_price,
                WHAT,
            )?,
        };
        Ok(match self.minimum {
            Some(min) if quantity > Decimal::ZERO => amount.max(min),
            _ => amount,
        })
    }

    /// An upper bound of [`Price::amount`] for every quantity up to `quantity_max`: the
    /// largest unit price on the whole quantity, plus every flat fee and the minimum. The
    /// validator refuses a price whose bound is too large to add up safely.
    pub fn amount_bound(&self, quantity_max: Decimal, per: Decimal) -> Result<Decimal, Overflow> {
        const WHAT: &str = "largest line amount";
        let on_all = |price: Decimal| exact::div(exact::mul(quantity_max, price, WHAT)?, per, WHAT);
        let bound = match &self.model {
            PriceModel::PerUnit { unit_price } => on_all(*unit_price)?,
            PriceModel::Graduated { tiers } | PriceModel::Volume { tiers } => {
                let top = tiers.iter().map(|t| t.unit_price).max().unwrap_or_default();
                let fees = exact::sum(tiers.iter().map(|t| t.flat_fee), WHAT)?;
                exact::add(on_all(top)?, fees, WHAT)?
            }
            PriceModel::Package {
                block_size,
                block_price,
            } => exact::mul(
                exact::add(
                    exact::div(quantity_max, *block_size, WHAT)?.ceil(),
                    Decimal::ONE,
                    WHAT,
                )?,
                *block_price,
                WHAT,
            )?,
        };
        exact::add(bound, self.minimum.unwrap_or_default(), WHAT)
    }

    /// The unit price shown on an invoice line: the price itself for per-unit pricing, otherwise
    /// `None` (the line then shows the effective average).
    pub fn list_unit_price(&self) -> Option<Decimal> {
        match (&self.model, self.included.is_zero(), self.minimum) {
            (PriceModel::PerUnit { unit_price }, true, None) => Some(*unit_price),
            _ => None,
        }
    }

    /// Name of the model for display (`per unit`, `graduated`...).
    pub fn model_name(&self) -> &'static str {
        match self.model {
            PriceModel::PerUnit { .. } => "per unit",
            PriceModel::Graduated { .. } => "graduated",
            PriceModel::Volume { .. } => "volume",
            PriceModel::Package { .. } => "package",
        }
    }

    /// Applies `f` to every money value of the price (unit prices, fees, minimum), for markups
    /// and currency conversion.
    pub fn map_money(&self, f: impl Fn(Decimal) -> Decimal) -> Price {
        let tiers = |ts: &[Tier]| -> Vec<Tier> {
            ts.iter()
                .map(|t| Tier {
                    up_to: t.up_to,
                    unit_price: f(t.unit_price),
                    flat_fee: f(t.flat_fee),
                })
                .collect()
        };
        Price {
            model: match &self.model {
                PriceModel::PerUnit { unit_price } => PriceModel::PerUnit {
                    unit_price: f(*unit_price),
                },
                PriceModel::Graduated { tiers: ts } => PriceModel::Graduated { tiers: tiers(ts) },
                PriceModel::Volume { tiers: ts } => PriceModel::Volume { tiers: tiers(ts) },
                PriceModel::Package {
                    block_size,
                    block_price,
                } => PriceModel::Package {
                    block_size: *block_size,
                    block_price: f(*block_price),
                },
            },
            included: self.included,
            minimum: self.minimum.map(&f),
        }
    }

    /// Every money value of the price, for validation and for the "no wholesale price" checks.
    pub fn money_values(&self) -> Vec<Decimal> {
        let mut v = Vec::new();
        match &self.model {
            PriceModel::PerUnit { unit_price } => v.push(*unit_price),
            PriceModel::Graduated { tiers } | PriceModel::Volume { tiers } => {
                for t in tiers {
                    v.push(t.unit_price);
                    v.push(t.flat_fee);
                }
            }
            PriceModel::Package { block_price, .. } => v.push(*block_price),
        }
        v.extend(self.minimum);
        v
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use rust_decimal_macros::dec;

    fn tiers(spec: &[(Option<Decimal>, Decimal, Decimal)]) -> Vec<Tier> {
        spec.iter()
            .map(|&(up_to, unit_price, flat_fee)| Tier {
                up_to,
                unit_price,
                flat_fee,
            })
            .collect()
    }

    fn price(model: PriceModel) -> Price {
        Price {
            model,
            included: Decimal::ZERO,
            minimum: None,
        }
    }

    #[test]
    fn golden_amounts_for_every_model() {
        let graduated = price(PriceModel::Graduated {
            tiers: tiers(&[
                (Some(dec!(100)), dec!(0.10), dec!(0)),
                (Some(dec!(1000)), dec!(0.08), dec!(0)),
                (None, dec!(0.05), dec!(0)),
            ]),
        });
        let volume = price(PriceModel::Volume {
            tiers: tiers(&[
                (Some(dec!(100)), dec!(0.10), dec!(0)),
                (Some(dec!(1000)), dec!(0.08), dec!(0)),
                (None, dec!(0.05), dec!(0)),
            ]),
        });
        let flat_tiers = price(PriceModel::Graduated {
            tiers: tiers(&[(Some(dec!(10)), dec!(0), dec!(5)), (None, dec!(1), dec!(2))]),
        });
        let package = price(PriceModel::Package {
            block_size: dec!(1000000),
            block_price: dec!(0.40),
        });
        let per_unit = Price::per_unit(dec!(2.2));
        let mut included = Price::per_unit(dec!(0.50));
        included.included = dec!(5);
        let mut minimum = Price::per_unit(dec!(0.01));
        minimum.minimum = Some(dec!(1.00));

        // (name, price, quantity, per, exact amount)
        let cases: &[(&str, &Price, Decimal, Decimal, Decimal)] = &[
            ("per unit", &per_unit, dec!(1344), dec!(1), dec!(2956.8)),
            ("per unit, zero", &per_unit, dec!(0), dec!(1), dec!(0)),
            (
                "per million",
                &Price::per_unit(dec!(0.40)),
                dec!(2500000),
                dec!(1000000),
                dec!(1.0),
            ),
            (
                "graduated inside tier 1",
                &graduated,
                dec!(50),
                dec!(1),
                dec!(5.0),
            ),
            (
                "graduated at boundary 100",
                &graduated,
                dec!(100),
                dec!(1),
                dec!(10.0),
            ),
            (
                "graduated just above 100",
                &graduated,
                dec!(101),
                dec!(1),
                dec!(10.08),
            ),
            (
                "graduated at boundary 1000",
                &graduated,
                dec!(1000),
                dec!(1),
                dec!(82.0),
            ),
            (
                "graduated in last tier",
                &graduated,
                dec!(1500),
                dec!(1),
                dec!(107.0),
            ),
            (
                "volume at boundary 100",
                &volume,
                dec!(100),
                dec!(1),
                dec!(10.0),
            ),
            (
                "volume just above 100",
                &volume,
                dec!(101),
                dec!(1),
                dec!(8.08),
            ),
            (
                "volume in last tier",
                &volume,
                dec!(1500),
                dec!(1),
                dec!(75.0),
            ),
            ("volume zero", &volume, dec!(0), dec!(1), dec!(0)),
            (
                "flat fee tier 1 only",
                &flat_tiers,
                dec!(3),
                dec!(1),
                dec!(5),
            ),
            (
                "flat fee both tiers",
                &flat_tiers,
                dec!(12),
                dec!(1),
                dec!(9),
            ),
            (
                "flat fee nothing used",
                &flat_tiers,
                dec!(0),
                dec!(1),
                dec!(0),
            ),
            (
                "package one started block",
                &package,
                dec!(1),
                dec!(1),
                dec!(0.40),
            ),
            (
                "package exact blocks",
                &package,
                dec!(2000000),
                dec!(1),
                dec!(0.80),
            ),
            (
                "package partial block",
                &package,
                dec!(2000001),
                dec!(1),
                dec!(1.20),
            ),
            ("included covers all", &included, dec!(4), dec!(1), dec!(0)),
            (
                "included then over-usage",
                &included,
                dec!(7),
                dec!(1),
                dec!(1.00),
            ),
            (
                "minimum lifts small amount",
                &minimum,
                dec!(3),
                dec!(1),
                dec!(1.00),
            ),
            (
                "minimum not applied without usage",
                &minimum,
                dec!(0),
                dec!(1),
                dec!(0),
            ),
            (
                "minimum below amount",
                &minimum,
                dec!(500),
                dec!(1),
                dec!(5.00),
            ),
        ];
        for (name, p, q, per, expected) in cases {
            assert_eq!(p.amount(*q, *per), Ok(*expected), "{name}");
        }
    }

    #[test]
    fn graduated_is_continuous_across_boundaries() {
        let g = price(PriceModel::Graduated {
            tiers: tiers(&[(Some(dec!(10)), dec!(3), dec!(0)), (None, dec!(2), dec!(0))]),
        });
        let below = g.amount(dec!(10), dec!(1)).unwrap();
        let above = g.amount(dec!(10.0001), dec!(1)).unwrap();
        assert_eq!(above - below, dec!(0.0002));
    }

    #[test]
    fn map_money_touches_every_money_value() {
        let p = price(PriceModel::Graduated {
            tiers: tiers(&[(Some(dec!(10)), dec!(3), dec!(1)), (None, dec!(2), dec!(0))]),
        });
        let doubled = p.map_money(|d| d * dec!(2));
        assert_eq!(
            doubled.money_values(),
            vec![dec!(6), dec!(2), dec!(4), dec!(0)]
        );
        assert_eq!(
            doubled.amount(dec!(11), dec!(1)).unwrap(),
            p.amount(dec!(11), dec!(1)).unwrap() * dec!(2)
        );
    }
}
