//! Whole JSON documents (CloudStack responses, Ceilometer sample lists), which both stream one item at a time: how one is read, and its syntax errors with their position.

use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

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

/// What takes a document's items (usage records, samples) one at a time as they are read.
pub(super) trait Items {
    /// Items read so far, taken or only counted.
    fn read(&self) -> u64;
    /// The most items taken; past it, items are only counted (and the document refused at its
    /// end), so a document over the limit costs no memory for the items past it.
    fn limit(&self) -> u64;
    /// Takes the next item (and counts it).
    fn take(&mut self, item: &RawValue);
    /// Counts the next item without taking it.
    fn count(&mut self);
}

/// An array of items, or `null` for none: each element is handed to `items` as it is read (one
/// element in memory at a time). Its value says whether there was an array.
pub(super) struct ItemsSeed<'a, I> {
    pub(super) items: &'a mut I,
    /// What the array holds, for a shape error ("an array of usage records").
    pub(super) expecting: &'static str,
}

impl<'de, I: Items> DeserializeSeed<'de> for ItemsSeed<'_, I> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, I: Items> Visitor<'de> for ItemsSeed<'_, I> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_seq(self)
    }
    /// The array (also called directly for a document that is a bare array).
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let items = self.items;
        loop {
            if items.read() < items.limit() {
                match seq.next_element::<Box<RawValue>>()? {
                    Some(raw) => items.take(&raw),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_some() {
                items.count();
            } else {
                break;
            }
        }
        Ok(true)
    }
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
