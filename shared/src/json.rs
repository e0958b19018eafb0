//! Strict JSON input (catalogs, accounts files, quotes): decimals with a fraction must be strings, and shape errors name the path of the bad field.

use crate::error::{CatalogError, CatalogErrors, CatalogRule};

/// Parses JSON input (catalog, accounts, quote) strictly: decimals with a fraction must be
/// strings, and a shape error names the path of the bad field.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, CatalogErrors> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        CatalogErrors(vec![CatalogError {
            path: "$".into(),
            rule: CatalogRule::Syntax,
            message: e.to_string(),
        }])
    })?;
    let mut errors = Vec::new();
    reject_float_numbers(&value, &mut "$".to_string(), &mut errors);
    if !errors.is_empty() {
        return Err(CatalogErrors(errors));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(CatalogErrors::parse)
}

/// Rejects JSON numbers with a fraction or exponent anywhere in `value`: decimals must be
/// written as strings ("0.0069") so that they never pass through binary floating point.
fn reject_float_numbers(
    value: &serde_json::Value,
    path: &mut String,
    errors: &mut Vec<CatalogError>,
) {
    match value {
        serde_json::Value::Number(n) if !(n.is_i64() || n.is_u64()) => errors.push(CatalogError {
            path: path.clone(),
            rule: CatalogRule::FloatNumber,
            message: format!("write the decimal {n} as a string (\"{n}\"): JSON numbers with a fraction are binary floats"),
        }),
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                reject_float_numbers(v, path, errors);
                path.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                reject_float_numbers(v, path, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}
