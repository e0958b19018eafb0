//! Whole JSON documents (CloudStack responses, Ceilometer sample lists): UTF-8 text, syntax errors with their position, and top-level arrays read lazily under the item limit.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::format::{Format, ImportError, DOCUMENT_ITEMS_MAX};

/// The document as UTF-8 text; JSON must be UTF-8, and a bad byte is reported where it is.
pub(super) fn document_text(bytes: &[u8], format: Format) -> Result<&str, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        ImportError::Syntax {
            format,
            line,
            column,
            message: "invalid UTF-8".into(),
        }
    })
}

/// A serde_json error on a whole document, as an import error.
pub(super) fn json_document_error(format: Format, e: &serde_json::Error) -> ImportError {
    if e.is_data() {
        ImportError::Shape {
            format,
            message: e.to_string(),
        }
    } else {
        ImportError::Syntax {
            format,
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}

/// The elements of a JSON array, kept as raw text; past [`DOCUMENT_ITEMS_MAX`] they are only
/// counted, so that the limit is enforced without holding the excess.
#[derive(Default)]
pub(super) struct Items<'a> {
    items: Vec<&'a RawValue>,
    /// Elements in the array, including those past the limit.
    pub(super) total: usize,
}

impl<'a> Items<'a> {
    pub(super) fn check_limit(self, format: Format) -> Result<Vec<&'a RawValue>, ImportError> {
        if self.total > DOCUMENT_ITEMS_MAX {
            return Err(ImportError::TooLarge {
                format,
                what: "records per document",
                max: DOCUMENT_ITEMS_MAX as u64,
            });
        }
        Ok(self.items)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ItemsVisitor<'a> {
            type Value = Items<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'a>, A::Error> {
                let mut out = Items::default();
                loop {
                    if out.items.len() < DOCUMENT_ITEMS_MAX {
                        match seq.next_element::<&'de RawValue>()? {
                            Some(v) => out.items.push(v),
                            None => break,
                        }
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    out.total += 1;
                }
                Ok(out)
            }
        }
        deserializer.deserialize_seq(ItemsVisitor(PhantomData))
    }
}

/// A top-level JSON array of records or samples.
pub(super) fn parse_items(text: &str, format: Format) -> Result<Vec<&RawValue>, ImportError> {
    let items: Items<'_> =
        serde_json::from_str(text).map_err(|e| json_document_error(format, &e))?;
    items.check_limit(format)
}
