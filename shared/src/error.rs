//! Error types of the pricing crate: closed enums named for the rule that failed, carrying what a
//! user needs to fix the input (path, record number, field, value).

use std::fmt;

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("unknown currency `{code}` (not an ISO 4217 code this engine knows)")]
    UnknownCurrency { code: String },
    #[error("cannot add {left} and {right}: amounts in different currencies")]
    CurrencyMismatch { left: String, right: String },
    #[error("no exchange rate from {from} to {to} in the catalog's fx_rates")]
    NoExchangeRate { from: String, to: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeriodError {
    #[error("`{text}` is not a billing period (expected 2017-02, 2017-W07, 2017-02-14 or 2017-02-14T09)")]
    Invalid { text: String },
}

/// One problem in a catalog, at a JSON path such as `$.products[3].charges[0].price.unit_price`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub path: String,
    pub rule: CatalogRule,
    pub message: String,
}

/// The rule a catalog broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogRule {
    /// Not JSON, or JSON of the wrong shape.
    Syntax,
    /// A decimal written as a JSON number with a fraction: it went through binary floating point.
    FloatNumber,
    UnsupportedSchemaVersion,
    UnknownCurrency,
    UnknownReference,
    DuplicateId,
    NegativePrice,
    InvalidTiers,
    InvalidValue,
    LimitExceeded,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a catalog (validation does not stop at the first).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct CatalogErrors(pub Vec<CatalogError>);

impl CatalogErrors {
    pub(crate) fn parse<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> CatalogErrors {
        let path = e.path().to_string();
        CatalogErrors(vec![CatalogError {
            path: if path == "." {
                "$".into()
            } else {
                format!("$.{path}")
            },
            rule: CatalogRule::Syntax,
            message: e.inner().to_string(),
        }])
    }
}

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid catalog ({} problem(s))", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Why a usage record was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordRule {
    #[error("field is empty")]
    Empty,
    #[error("unknown product or offering (not an id or alias in the catalog)")]
    UnknownProduct,
    #[error("product has no price for this meter")]
    UnknownMeter,
    #[error("unit `{unit}` cannot be converted to the meter's unit `{expected}`")]
    UnitMismatch { unit: String, expected: String },
    #[error("quantity is negative")]
    NegativeQuantity,
    #[error("quantity is larger than the largest allowed ({max})")]
    QuantityTooLarge { max: String },
    #[error("end is before start")]
    EndBeforeStart,
    #[error("record is outside the billing period {period}")]
    OutsidePeriod { period: String },
    #[error("unknown region")]
    UnknownRegion,
    #[error("product is not sold in this region")]
    NotInRegion,
    #[error("unknown account")]
    UnknownAccount,
    /// The record's id was counted before with other content: one id meaning two usages is a
    /// broken exporter, so the batch is refused rather than either copy guessed right.
    #[error("record id was already counted with different content ({first})")]
    RecordIdReused { first: String },
    #[error("{0}")]
    Malformed(String),
    /// A text field longer than [`crate::usage::TEXT_BYTES_MAX`] bytes, or more tags than
    /// [`crate::usage::TAGS_PER_RECORD_MAX`]: an exporter's bug, refused before it can reach
    /// a storage key or item.
    #[error("{len} {what}, more than the {max} allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

/// One bad record: where it is, which field, what value, and the rule it broke. Values and
/// ids are shown cut to [`SHOWN_VALUE_CHARS_MAX`] characters: a refused megabyte must not
/// come back in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("record {index}{}: field `{field}` = `{}`: {rule}", .record_id.as_deref().map(|id| format!(" ({})", shown(id))).unwrap_or_default(), shown(.value))]
pub struct RecordError {
    /// Position of the record in its batch (0-based) or line number, as the importer reports it.
    pub index: usize,
    pub record_id: Option<String>,
    pub field: &'static str,
    pub value: String,
    pub rule: RecordRule,
}

/// Most characters of a bad value (or record id) an error shows; the rest is summarized.
pub const SHOWN_VALUE_CHARS_MAX: usize = 120;

/// `text` as an error shows it: whole when short, else its first
/// [`SHOWN_VALUE_CHARS_MAX`] characters and its length.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(SHOWN_VALUE_CHARS_MAX) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => {
            std::borrow::Cow::Owned(format!("{}... ({} bytes)", &text[..cut], text.len()))
        }
    }
}

/// Most record errors one rejection lists; the rest are counted. A batch of a million bad rows
/// must not produce a million-line error message.
pub const RECORD_ERRORS_SHOWN_MAX: usize = 50;

/// A batch refused as a whole: the first [`RECORD_ERRORS_SHOWN_MAX`] errors and the total count.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct BatchErrors {
    pub errors: Vec<RecordError>,
    pub total: usize,
}

impl BatchErrors {
    pub fn new() -> BatchErrors {
        BatchErrors {
            errors: Vec::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, e: RecordError) {
        self.total += 1;
        if self.errors.len() < RECORD_ERRORS_SHOWN_MAX {
            self.errors.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

impl Default for BatchErrors {
    fn default() -> Self {
        BatchErrors::new()
    }
}

impl fmt::Display for BatchErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch rejected: {} bad record(s), nothing was rated",
            self.total
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        if self.total > self.errors.len() {
            write!(f, "\n  ... and {} more", self.total - self.errors.len())?;
        }
        Ok(())
    }
}

/// Why an invoice or estimate could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PricingError {
    #[error("{what} `{id}` is not in the catalog ({path})")]
    UnknownReference {
        what: &'static str,
        id: String,
        path: String,
    },
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("{path}: {message}")]
    InvalidInput { path: String, message: String },
    #[error("invoice would have {lines} lines, more than the limit of {max}")]
    TooManyLines { lines: usize, max: usize },
}
