//! Whole JSON documents (CloudStack responses, Ceilometer sample lists), which both stream one item at a time: their syntax errors with their position.

use super::format::{Format, ImportError};

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
