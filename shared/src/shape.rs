//! Checks shared by the JSON shapes that spell a tagged enum's fields flat beside its tag.
//!
//! Serde reads `#[serde(flatten)]` fields, internally tagged and untagged enums by first
//! buffering the whole object into its private `Content` tree and then reading that tree again.
//! That second deserializer is instantiated for every type below it and was about a seventh of
//! the storefront's wasm. The catalog types that have such shapes therefore deserialize through
//! a plain struct holding every variant's fields as options (`PriceShape`, `ProductShape`...),
//! converted with `#[serde(try_from)]`; the helpers here keep that conversion as strict as the
//! derived enums were: a variant's required fields must be present and other variants' fields
//! absent (an explicit `null` counts as absent).
//!
//! Decimals in those types are read by [`Exact`], which refuses JSON numbers with a fraction.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::marker::PhantomData;

use rust_decimal::Decimal;
use serde::de::{Error, IntoDeserializer, MapAccess};
use serde::{Deserialize, Deserializer};

/// A required field of the tagged variant: present, or serde's own "missing field" message.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{field}`"))
}

/// Rejects the fields that belong to other variants than the tagged one, with serde's own
/// "unknown field" message. `fields` pairs each variant-specific field name with its presence;
/// `allowed` lists the tagged variant's fields.
pub(crate) fn only(fields: &[(&str, bool)], allowed: &[&str]) -> Result<(), String> {
    match fields
        .iter()
        .find(|(name, present)| *present && !allowed.contains(name))
    {
        None => Ok(()),
        Some((name, _)) => {
            let mut message = format!("unknown field `{name}`, ");
            match allowed {
                [] => message.push_str("there are no fields"),
                [one] => {
                    let _ = write!(message, "expected `{one}`");
                }
                _ => {
                    message.push_str("expected one of ");
                    for (i, a) in allowed.iter().enumerate() {
                        let sep = if i == 0 { "" } else { ", " };
                        let _ = write!(message, "{sep}`{a}`");
                    }
                }
            }
            Err(message)
        }
    }
}

/// A decimal as the catalog formats write it: a JSON string (`"0.0069"`) or integer. A JSON
/// number with a fraction is refused, as [`crate::parse_json`] refuses it before serde runs:
/// it went through binary floating point in the parser already. Reading it through
/// `rust_decimal`'s own float path would also link float formatting into the storefront for an
/// input no published catalog has. Strings and integers are read by `Decimal`'s own impl.
pub(crate) struct Exact(pub(crate) Decimal);

impl<'de> Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Exact, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Exact;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal as a string or an integer")
            }
            // Integers convert exactly, as in `Decimal`'s own visitor.
            fn visit_u64<E: Error>(self, v: u64) -> Result<Exact, E> {
                Ok(Exact(Decimal::from(v)))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Exact, E> {
                Ok(Exact(Decimal::from(v)))
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<Exact, E> {
                Err(E::custom(FLOAT_REFUSED))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Exact, E> {
                exact(v)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Why a JSON number with a fraction is not read as a decimal.
pub(crate) const FLOAT_REFUSED: &str =
    "write the decimal as a string (\"0.05\"): JSON numbers with a fraction are binary floats";

/// Reads a string with `Decimal`'s own `Deserialize` impl, so that it parses exactly as it
/// always did (plain or scientific notation).
pub(crate) fn exact<E: Error>(v: &str) -> Result<Exact, E> {
    <Decimal as Deserialize>::deserialize(v.into_deserializer()).map(Exact)
}

/// `deserialize_with` for a `Decimal` field (see [`Exact`]).
pub(crate) fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    Exact::deserialize(d).map(|e| e.0)
}

/// `deserialize_with` for an `Option<Decimal>` field (see [`Exact`]); pair it with
/// `#[serde(default)]` so that a missing field stays `None`.
pub(crate) fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    Option::<Exact>::deserialize(d).map(|o| o.map(|e| e.0))
}

/// `deserialize_with` for a map of decimals (see [`Exact`]). Entries go straight into the map
/// (collecting a map of `Exact` into a new map would sort it again).
pub(crate) fn decimal_map<'de, D, K>(d: D) -> Result<BTreeMap<K, Decimal>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
{
    struct Visitor<K>(PhantomData<K>);
    impl<'de, K: Deserialize<'de> + Ord> serde::de::Visitor<'de> for Visitor<K> {
        type Value = BTreeMap<K, Decimal>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map of decimals")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, Exact(v))) = map.next_entry::<K, Exact>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visitor(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn messages_match_serde() {
        assert_eq!(
            required::<u32>(None, "vcpu").unwrap_err(),
            "missing field `vcpu`"
        );
        assert_eq!(required(Some(1), "vcpu"), Ok(1));
        let fields = [("tiers", true), ("unit_price", true)];
        assert_eq!(only(&fields, &["tiers", "unit_price"]), Ok(()));
        assert_eq!(
            only(&fields, &["unit_price"]).unwrap_err(),
            "unknown field `tiers`, expected `unit_price`"
        );
        assert_eq!(
            only(&fields, &[]).unwrap_err(),
            "unknown field `tiers`, there are no fields"
        );
        assert_eq!(
            only(&[("pct", true)], &["block_size", "block_price"]).unwrap_err(),
            "unknown field `pct`, expected one of `block_size`, `block_price`"
        );
    }
}
