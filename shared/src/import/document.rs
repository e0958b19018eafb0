//! Whole JSON documents (CloudStack responses, Ceilometer sample lists), which both stream one item at a time: how one is read, and its syntax errors with their position.

use std::io::{BufRead, Read};

use serde::de::DeserializeSeed;

use super::format::{Format, ImportError};

/// Reads one JSON document from `reader` through `seed`, which hands each item on as it is
/// read: buffered (64 KiB), past a byte-order mark (not JSON, but UTF-8 exports often start
/// with one), to the document's end (trailing data is a syntax error). A reader that fails is
/// a read error, never a syntax error: the export may be fine and the network not.
pub(super) fn read_document<R, S, T>(reader: R, format: Format, seed: S) -> Result<T, ImportError>
where
    R: Read,
    S: for<'de> DeserializeSeed<'de, Value = T>,
{
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf().map_err(read_error)?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let mut de = serde_json::Deserializer::from_reader(reader);
    seed.deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|e| match e.is_io() {
            true => read_error(e),
            false => json_document_error(format, &e),
        })
}

fn read_error(e: impl std::fmt::Display) -> ImportError {
    ImportError::Read {
        message: e.to_string(),
    }
}

/// A serde_json error on a whole document, as an import error.
fn json_document_error(format: Format, e: &serde_json::Error) -> ImportError {
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

/// A reader that hands out its bytes a few at a time and then fails, as a connection reset
/// half-way through an export does (the importers' tests).
#[cfg(test)]
pub(super) struct FailingReader<'a>(pub(super) &'a [u8]);

#[cfg(test)]
impl Read for FailingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("the connection was reset"));
        }
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}
