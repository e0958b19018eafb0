//! Quotes: multi-tier apps as the storefront builds them and shares them, read strictly from JSON.
//!
//! Plain data below the catalog (a catalog's starter templates are quote tiers); pricing a
//! quote is `estimate`'s job.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most components one quote may have. The storefront's largest apps have a few hundred lines;
/// the bound keeps a shared link and an estimate's recompute small.
pub const QUOTE_COMPONENTS_MAX: usize = 2_000;

/// An app as the storefront builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    #[serde(default)]
    pub name: String,
    /// The instant prices and promotions are taken at (the caller's clock, never ours).
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_jurisdiction: Option<String>,
    /// A coupon code, estimated as if redeemed at `at` (whether any redemptions are left is
    /// known only where accounts are stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    pub tiers: Vec<QuoteTier>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteTier {
    pub name: String,
    pub components: Vec<Component>,
}

/// One thing in a tier. Hours default to the catalog's month (24/7).
///
/// JSON: the `type` tag beside the variant's fields (`{"type": "ip", "product": "ip", "count": 2}`);
/// read through [`ComponentShape`] (internally tagged enums buffer in serde's `Content`, see
/// `crate::shape`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "ComponentShape"
)]
pub enum Component {
    Compute {
        offering: String,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hours_per_month: Option<Decimal>,
        /// Hours a month the VMs are stopped (priced at the stopped rate).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped_hours_per_month: Option<Decimal>,
    },
    Volume {
        offering: String,
        size_gb: Decimal,
        count: u32,
    },
    Traffic {
        product: String,
        #[serde(default)]
        gb_in: Decimal,
        #[serde(default)]
        gb_out: Decimal,
    },
    Ip {
        product: String,
        count: u32,
    },
    /// A service or package subscription.
    Service {
        product: String,
        quantity: u32,
    },
    /// Any meter of any product, by quantity in the meter's unit.
    Usage {
        product: String,
        meter: String,
        quantity: Decimal,
    },
}

/// Every field a [`Component`] may have in JSON, read in one pass; [`Component::try_from`]
/// checks that only the tagged variant's fields are given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentShape {
    #[serde(rename = "type")]
    kind: ComponentTag,
    offering: Option<String>,
    product: Option<String>,
    meter: Option<String>,
    count: Option<u32>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    hours_per_month: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    stopped_hours_per_month: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    size_gb: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    gb_in: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::shape::opt_decimal")]
    gb_out: Option<Decimal>,
    quantity: Option<QuantityValue>,
}

/// The `type` tag of a [`Component`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ComponentTag {
    Compute,
    Volume,
    Traffic,
    Ip,
    Service,
    Usage,
}

/// `quantity` is a `u32` for a service and a `Decimal` for usage, and the tag may come after
/// it: a JSON unsigned integer is kept as such, a string or a negative integer is read by
/// `Decimal`'s own impl, and a number with a fraction is refused (see `crate::shape::Exact`).
enum QuantityValue {
    Whole(u64),
    Exact(Decimal),
}

impl<'de> Deserialize<'de> for QuantityValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<QuantityValue, D::Error> {
        use crate::shape::{exact, FLOAT_REFUSED};
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = QuantityValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<QuantityValue, E> {
                Ok(QuantityValue::Whole(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<QuantityValue, E> {
                Ok(QuantityValue::Exact(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<QuantityValue, E> {
                Err(E::custom(FLOAT_REFUSED))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<QuantityValue, E> {
                exact(v).map(|e| QuantityValue::Exact(e.0))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl ComponentShape {
    /// Each variant-specific field with whether it is given.
    fn present(&self) -> [(&'static str, bool); 10] {
        [
            ("offering", self.offering.is_some()),
            ("product", self.product.is_some()),
            ("meter", self.meter.is_some()),
            ("count", self.count.is_some()),
            ("hours_per_month", self.hours_per_month.is_some()),
            (
                "stopped_hours_per_month",
                self.stopped_hours_per_month.is_some(),
            ),
            ("size_gb", self.size_gb.is_some()),
            ("gb_in", self.gb_in.is_some()),
            ("gb_out", self.gb_out.is_some()),
            ("quantity", self.quantity.is_some()),
        ]
    }
}

impl TryFrom<ComponentShape> for Component {
    type Error = String;

    fn try_from(s: ComponentShape) -> Result<Component, String> {
        use crate::shape::{only, required};
        let fields = s.present();
        Ok(match s.kind {
            ComponentTag::Compute => {
                only(
                    &fields,
                    &[
                        "offering",
                        "count",
                        "hours_per_month",
                        "stopped_hours_per_month",
                    ],
                )?;
                Component::Compute {
                    offering: required(s.offering, "offering")?,
                    count: required(s.count, "count")?,
                    hours_per_month: s.hours_per_month,
                    stopped_hours_per_month: s.stopped_hours_per_month,
                }
            }
            ComponentTag::Volume => {
                only(&fields, &["offering", "size_gb", "count"])?;
                Component::Volume {
                    offering: required(s.offering, "offering")?,
                    size_gb: required(s.size_gb, "size_gb")?,
                    count: required(s.count, "count")?,
                }
            }
            ComponentTag::Traffic => {
                only(&fields, &["product", "gb_in", "gb_out"])?;
                Component::Traffic {
                    product: required(s.product, "product")?,
                    gb_in: s.gb_in.unwrap_or_default(),
                    gb_out: s.gb_out.unwrap_or_default(),
                }
            }
            ComponentTag::Ip => {
                only(&fields, &["product", "count"])?;
                Component::Ip {
                    product: required(s.product, "product")?,
                    count: required(s.count, "count")?,
                }
            }
            ComponentTag::Service => {
                only(&fields, &["product", "quantity"])?;
                let quantity = match required(s.quantity, "quantity")? {
                    QuantityValue::Whole(n) => u32::try_from(n).ok(),
                    QuantityValue::Exact(_) => None,
                };
                Component::Service {
                    product: required(s.product, "product")?,
                    quantity: quantity.ok_or("invalid type for `quantity`, expected u32")?,
                }
            }
            ComponentTag::Usage => {
                only(&fields, &["product", "meter", "quantity"])?;
                let quantity = match required(s.quantity, "quantity")? {
                    QuantityValue::Whole(n) => Decimal::from(n),
                    QuantityValue::Exact(d) => d,
                };
                Component::Usage {
                    product: required(s.product, "product")?,
                    meter: required(s.meter, "meter")?,
                    quantity,
                }
            }
        })
    }
}
