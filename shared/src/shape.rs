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

use std::fmt::Write;

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
