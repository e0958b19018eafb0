//! Parsing helpers shared by the importers: exact decimals from text, timestamps, bounded reads and lines.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;

use super::format::{Format, ImportError, ERROR_VALUE_CHARS_MAX};
use crate::error::{RecordError, RecordRule};
use crate::usage::{exceeds_record_max, record_quantity_max};

/// Why a text is not an acceptable decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DecimalError {
    /// Not a plain decimal (`NaN`, `inf`, `0x10`, `1_000`, spaces, empty).
    NotANumber,
    /// More than 28 digits after the point: it cannot be held exactly.
    TooPrecise,
    /// Beyond Decimal's range (about 7.9 x 10^28).
    TooLarge,
}

impl DecimalError {
    pub(super) fn rule(self) -> RecordRule {
        match self {
            DecimalError::NotANumber => RecordRule::NotADecimal,
            DecimalError::TooPrecise => RecordRule::TooPrecise,
            DecimalError::TooLarge => RecordRule::QuantityTooLarge {
                max: record_quantity_max().to_string(),
            },
        }
    }
}

/// Largest decimal exponent accepted in `1.5e3` notation. Decimal holds 28 digits, so any larger
/// exponent on a non-zero mantissa overflows or underflows anyway; the bound also keeps the power
/// of ten computed below in range.
const EXPONENT_ABS_MAX: u32 = 28;

/// Parses a decimal exactly from its text: `-12.5`, `3600`, `1.5e3`, `2E-4`.
///
/// The grammar is strict on purpose (no spaces, underscores, hex, `NaN` or `inf`): the text comes
/// from exporters, and anything outside plain decimal notation is a broken exporter, not a
/// quantity. The result never goes through binary floating point.
pub(super) fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    match plain_decimal(text) {
        Some(value) => Ok(value),
        None => parse_decimal_general(text),
    }
}

/// [`parse_decimal`] without its fast path: every shape the grammar allows.
fn parse_decimal_general(text: &str) -> Result<Decimal, DecimalError> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(p) => (&text[..p], Some(&text[p + 1..])),
        None => (text, None),
    };
    let digits = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
    let mut seen_digit = false;
    let mut seen_point = false;
    for b in digits.bytes() {
        match b {
            b'0'..=b'9' => seen_digit = true,
            b'.' if !seen_point => seen_point = true,
            _ => return Err(DecimalError::NotANumber),
        }
    }
    if !seen_digit {
        return Err(DecimalError::NotANumber);
    }
    let mut value = match Decimal::from_str_exact(mantissa) {
        Ok(v) => v,
        Err(rust_decimal::Error::Underflow) => return Err(DecimalError::TooPrecise),
        Err(_) => return Err(DecimalError::TooLarge),
    };
    let Some(exponent) = exponent else {
        return Ok(value);
    };
    let exp_digits = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotANumber);
    }
    let negative = exponent.starts_with('-');
    if value.is_zero() {
        return Ok(Decimal::ZERO);
    }
    // Leading zeros are fine (`1e007`); the magnitude is what is bounded.
    let magnitude: u32 = match exp_digits.trim_start_matches('0') {
        "" => 0,
        m if m.len() > 3 => u32::MAX,
        m => m.parse().map_err(|_| DecimalError::NotANumber)?,
    };
    if negative {
        value = value.normalize();
        let scale = value.scale().saturating_add(magnitude);
        if magnitude > EXPONENT_ABS_MAX || scale > 28 {
            return Err(DecimalError::TooPrecise);
        }
        value
            .set_scale(scale)
            .map_err(|_| DecimalError::TooPrecise)?;
        Ok(value)
    } else {
        if magnitude > EXPONENT_ABS_MAX {
            return Err(DecimalError::TooLarge);
        }
        let power = Decimal::from_i128_with_scale(10i128.pow(magnitude), 0);
        value.checked_mul(power).ok_or(DecimalError::TooLarge)
    }
}

/// The fast path of [`parse_decimal`]: unsigned digits with at most one point and at most 19
/// bytes, which is what exporters write for nearly every quantity. Gives exactly what the general
/// path gives (same mantissa, same scale: `1.50` keeps its two places) in one pass over the
/// bytes; anything else (a sign, an exponent, more digits) returns `None` and takes the
/// general path.
fn plain_decimal(text: &str) -> Option<Decimal> {
    let b = text.as_bytes();
    // 19 digits stay below u64::MAX (1.8 x 10^19).
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut mantissa = 0u64;
    let mut point = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => mantissa = mantissa * 10 + u64::from(c - b'0'),
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    if b.len() == usize::from(point.is_some()) {
        return None; // `.` alone: no digit
    }
    let scale = point.map_or(0, |p| b.len() - p - 1) as u32;
    Some(Decimal::from_i128_with_scale(i128::from(mantissa), scale))
}

/// The text of a JSON number or decimal string: `3600.5` and `"3600.5"` both give `3600.5`.
/// Kept as text so that the decimal is parsed exactly, never through an `f64`.
pub(super) fn raw_number_text(raw: &RawValue) -> Result<Cow<'_, str>, RecordRule> {
    let t = raw.get();
    match t.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(t)
            .map(Cow::Owned)
            .map_err(bad_json_string),
        Some(b'-' | b'0'..=b'9') => Ok(Cow::Borrowed(t)),
        _ => Err(RecordRule::ExpectedNumber),
    }
}

/// A JSON string or number as text (CloudStack ids are strings in 4.x, numbers in older
/// releases). Other JSON values are refused.
pub(super) fn raw_text(raw: Option<&RawValue>) -> Result<Option<String>, RecordRule> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let t = raw.get();
    match t.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(t)
            .map(Some)
            .map_err(bad_json_string),
        Some(b'-' | b'0'..=b'9') => Ok(Some(t.to_string())),
        Some(b'n') => Ok(None),
        _ => Err(RecordRule::ExpectedText),
    }
}

fn bad_json_string(e: serde_json::Error) -> RecordRule {
    RecordRule::BadJsonString {
        message: e.to_string(),
    }
}

/// A quantity read from an export must be a usage amount: not negative, not absurd.
pub(super) fn check_quantity(q: Decimal) -> Result<Decimal, RecordRule> {
    if q.is_sign_negative() && !q.is_zero() {
        return Err(RecordRule::NegativeQuantity);
    }
    if exceeds_record_max(q) {
        return Err(RecordRule::QuantityTooLarge {
            max: record_quantity_max().to_string(),
        });
    }
    Ok(q)
}

/// Parses an RFC 3339 instant (`2017-02-14T00:00:00Z`, `...+01:00`, fractions allowed).
///
/// The common `YYYY-MM-DDTHH:MM:SSZ` shape takes a fast path: canonical CSV files carry two of
/// them per row, and chrono's general parser would dominate the import time.
pub(super) fn parse_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    Days::default().parse_rfc3339(text)
}

/// `at` if it lies in the years the engine bills ([`crate::period::YEARS`]).
fn in_years(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(at).filter(|t| crate::period::supported(*t))
}

/// The last calendar day parsed, so that a stream of timestamps of the same day (every row of
/// an hourly export has two) validates its date once. Checking a date is most of the cost of
/// the fast path below.
#[derive(Default)]
pub(super) struct Days {
    last: Option<([u8; 10], NaiveDate)>,
}

impl Days {
    /// [`parse_rfc3339`], remembering the day.
    pub(super) fn parse_rfc3339(&mut self, text: &str) -> Option<DateTime<Utc>> {
        let b = text.as_bytes();
        if b.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && (b[10] == b'T' || b[10] == b't')
            && b[13] == b':'
            && b[16] == b':'
            && (b[19] == b'Z' || b[19] == b'z')
        {
            let num = |r: std::ops::Range<usize>| -> Option<u32> {
                let mut n = 0u32;
                for &c in &b[r] {
                    if !c.is_ascii_digit() {
                        return None;
                    }
                    n = n * 10 + u32::from(c - b'0');
                }
                Some(n)
            };
            let day: [u8; 10] = b[..10].try_into().expect("ten bytes");
            let date = match self.last {
                Some((text, date)) if text == day => date,
                _ => {
                    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
                        .filter(|d| crate::period::YEARS.contains(&d.year()))?;
                    self.last = Some((day, date));
                    date
                }
            };
            let time = NaiveTime::from_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
            return Some(date.and_time(time).and_utc());
        }
        DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| in_years(t.with_timezone(&Utc)))
    }
}

/// Parses the instants cloud exports write: RFC 3339, CloudStack's literal `'T'`
/// (`2018-09-19'T'03:00:00+00:00`, a Java `SimpleDateFormat` pattern leaking into the output),
/// offsets without a colon (`+0000`), and offset-less times (Ceilometer's
/// `2026-11-01T00:00:00.123456`, CloudStack's `2017-02-14 00:00:00`), which are read as UTC
/// because both services store and report UTC.
pub(super) fn parse_export_time(text: &str) -> Option<DateTime<Utc>> {
    let owned;
    let text = if text.contains("'T'") {
        owned = text.replacen("'T'", "T", 1);
        owned.as_str()
    } else {
        text
    };
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    // `%Y` also takes signed years of more than four digits (`+262142-12-01`).
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, pattern) {
            return in_years(t.with_timezone(&Utc));
        }
    }
    for pattern in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, pattern) {
            return in_years(t.and_utc());
        }
    }
    None
}

/// Cuts a value quoted in an error message: a megabyte of garbage must not become a megabyte of
/// error text.
pub(super) fn shown(value: &str) -> String {
    match value.char_indices().nth(ERROR_VALUE_CHARS_MAX) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}...", &value[..cut]),
    }
}

/// A record error with the value shortened for display.
pub(super) fn record_error(
    index: usize,
    record_id: Option<&str>,
    field: &'static str,
    value: &str,
    rule: RecordRule,
) -> RecordError {
    RecordError {
        index,
        record_id: record_id.map(str::to_string),
        field,
        value: shown(value),
        rule,
    }
}

/// `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The low seven bits of every byte.
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// The high bit of each byte of `word` that equals `byte`, and no other bit.
///
/// Exact, unlike the shorter `(x - ONES) & !x` trick, whose borrow can flag the byte after a
/// match: `(y & LOW7) + LOW7` sets a byte's high bit when its low seven bits are not all zero,
/// without carrying into the next byte.
#[inline]
pub(super) fn bytes_equal(word: u64, byte: u8) -> u64 {
    let y = word ^ (ONES * u64::from(byte));
    !(((y & LOW7) + LOW7) | y | LOW7)
}

/// The position of the first `byte` in `hay`, eight bytes at a time (`memchr` without the
/// dependency: the importers must build for the browser too, and stay small there).
pub(super) fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for w in &mut words {
        let found = bytes_equal(u64::from_le_bytes(w.try_into().expect("8 bytes")), byte);
        if found != 0 {
            // Little-endian: the lowest set bit is the first matching byte.
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|p| base + p)
}

/// Lines of a streamed input, each at most `max` bytes, numbered from 1, without the line break.
pub(super) struct Lines<R: Read> {
    inner: BufReader<R>,
    /// A line that straddles two reads of the buffer is assembled here.
    buf: Vec<u8>,
    /// Bytes of the read buffer handed out as the last line, consumed on the next call.
    lent: usize,
    line: usize,
    max: usize,
    format: Format,
}

/// Buffer of the line reader: large enough that most lines are handed out straight from it,
/// without a copy.
const LINE_READ_BUFFER_BYTES: usize = 64 * 1024;

impl<R: Read> Lines<R> {
    pub(super) fn new(reader: R, max: usize, format: Format) -> Lines<R> {
        Lines {
            inner: BufReader::with_capacity(LINE_READ_BUFFER_BYTES, reader),
            buf: Vec::new(),
            lent: 0,
            line: 0,
            max,
            format,
        }
    }

    fn too_long(&self) -> ImportError {
        ImportError::TooLarge {
            format: self.format,
            what: "line bytes",
            max: self.max as u64,
        }
    }

    /// The next line and its number, or `None` at the end of the input. A line longer than the
    /// limit ends the import: the reader cannot resynchronise without holding it.
    pub(super) fn next_line(&mut self) -> Result<Option<(usize, &[u8])>, ImportError> {
        self.inner.consume(std::mem::take(&mut self.lent));
        self.buf.clear();
        let read_error = |e: std::io::Error| ImportError::Read {
            message: e.to_string(),
        };
        // Fast path: the whole line is in the read buffer; lend it without copying.
        let available = self.inner.fill_buf().map_err(read_error)?;
        if available.is_empty() {
            return Ok(None);
        }
        let in_buffer = match find_byte(available, b'\n') {
            Some(p) if p <= self.max => Some(p),
            Some(_) => return Err(self.too_long()),
            None => None,
        };
        let line: &[u8] = match in_buffer {
            Some(p) => {
                self.lent = p + 1;
                &self.inner.buffer()[..p]
            }
            None => {
                loop {
                    let available = self.inner.fill_buf().map_err(read_error)?;
                    if available.is_empty() {
                        break;
                    }
                    let (take, found) = match find_byte(available, b'\n') {
                        Some(p) => (p, true),
                        None => (available.len(), false),
                    };
                    if self.buf.len() + take > self.max {
                        return Err(self.too_long());
                    }
                    self.buf.extend_from_slice(&available[..take]);
                    self.inner.consume(if found { take + 1 } else { take });
                    if found {
                        break;
                    }
                }
                &self.buf
            }
        };
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = if self.line == 1 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        Ok(Some((self.line, line)))
    }
}

#[cfg(test)]
pub(super) mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use std::str::FromStr;

    #[test]
    fn decimals_parse_exactly_or_not_at_all() {
        let ok = [
            ("3600.5", "3600.5"),
            ("-1.25", "-1.25"),
            ("+7", "7"),
            ("1e3", "1000"),
            ("1.5E-3", "0.0015"),
            ("2.50e+2", "250.0"),
            ("0e999", "0"),
            ("0.1", "0.1"),
            ("1e007", "10000000"),
        ];
        for (text, want) in ok {
            assert_eq!(
                parse_decimal(text),
                Ok(Decimal::from_str(want).unwrap()),
                "{text}"
            );
        }
        let bad = [
            ("NaN", DecimalError::NotANumber),
            ("inf", DecimalError::NotANumber),
            ("-Infinity", DecimalError::NotANumber),
            ("", DecimalError::NotANumber),
            ("-", DecimalError::NotANumber),
            (" 1", DecimalError::NotANumber),
            ("1_000", DecimalError::NotANumber),
            ("0x10", DecimalError::NotANumber),
            ("1e", DecimalError::NotANumber),
            ("1.2.3", DecimalError::NotANumber),
            ("1e400", DecimalError::TooLarge),
            ("1e29", DecimalError::TooLarge),
            ("79228162514264337593543950336", DecimalError::TooLarge),
            ("1e-29", DecimalError::TooPrecise),
            ("0.00000000000000000000000000001", DecimalError::TooPrecise),
        ];
        for (text, want) in bad {
            assert_eq!(parse_decimal(text), Err(want), "{text}");
        }
    }

    /// The one-pass path must give what the general one gives, scale included.
    #[test]
    fn plain_decimals_match_the_general_parser() {
        for text in [
            "0",
            "7",
            "007",
            "1.50",
            "0.0001",
            ".5",
            "5.",
            "3600",
            "9999999999999999999",
            "123456789.123456789",
            "0.00000000000000001",
            "1844674407370955161",
        ] {
            let fast = plain_decimal(text).expect(text);
            let general = Decimal::from_str_exact(text).unwrap();
            assert_eq!(fast, general, "{text}");
            assert_eq!(fast.scale(), general.scale(), "{text}");
            assert_eq!(fast.to_string(), general.to_string(), "{text}");
        }
        // Left to the general path: signs, exponents, 20 digits, no digit, two points.
        for text in [
            "-1",
            "+1",
            "1e3",
            "18446744073709551616",
            "",
            ".",
            "1.2.3",
            "1,5",
        ] {
            assert_eq!(plain_decimal(text), None, "{text}");
        }
    }

    /// A small deterministic generator (the tests must not depend on a clock or an OS source).
    /// The importers' other test modules draw from it too.
    pub(in crate::import) fn lcg(state: &mut u64) -> usize {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 33) as usize
    }

    /// Random texts of digits and points, 1 to 21 bytes: the fast path and the general one
    /// give the same answer (value, scale, or error) for every one.
    #[test]
    fn decimal_fast_path_agrees_with_the_general_parser_on_random_text() {
        let alphabet = b"0123456789.00000999";
        let mut state = 7;
        for _ in 0..100_000 {
            let len = 1 + lcg(&mut state) % 21;
            let text: String = (0..len)
                .map(|_| alphabet[lcg(&mut state) % alphabet.len()] as char)
                .collect();
            let (fast, general) = (parse_decimal(&text), parse_decimal_general(&text));
            assert_eq!(fast, general, "{text}");
            if let (Ok(a), Ok(b)) = (fast, general) {
                assert_eq!(a.scale(), b.scale(), "{text}");
            }
        }
    }

    /// Random walks over mutated timestamps through one remembering `Days` give what a fresh
    /// one gives for each text alone.
    #[test]
    fn remembered_days_agree_with_fresh_parsing_on_random_walks() {
        let templates = [
            "2017-02-14T05:06:07Z",
            "2016-02-29T23:59:59Z",
            "2017-02-28T00:00:00Z",
            "2017-12-31T12:00:00z",
        ];
        let bytes = b"0123456789-:TZtz+ ";
        let mut days = Days::default();
        let mut state = 11;
        for _ in 0..100_000 {
            let mut text = templates[lcg(&mut state) % templates.len()]
                .as_bytes()
                .to_vec();
            for _ in 0..lcg(&mut state) % 3 {
                let at = lcg(&mut state) % text.len();
                text[at] = bytes[lcg(&mut state) % bytes.len()];
            }
            let text = String::from_utf8(text).unwrap();
            assert_eq!(
                days.parse_rfc3339(&text),
                Days::default().parse_rfc3339(&text),
                "{text}"
            );
        }
    }

    #[test]
    fn byte_search_finds_the_first_match_only() {
        for len in 0..40usize {
            for at in 0..=len {
                // `needle ^ 1` right after a match is what a borrowing zero test flags.
                let mut hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 7) as u8).collect();
                if at < len {
                    hay[at] = b'\n';
                    for b in hay.iter_mut().skip(at + 1) {
                        *b = b'\n' ^ 1;
                    }
                }
                let want = hay.iter().position(|&b| b == b'\n');
                assert_eq!(find_byte(&hay, b'\n'), want, "len {len} at {at}");
            }
        }
        for byte in 0..=255u8 {
            for other in [0u8, 1, byte ^ 1, byte ^ 0x80, 0xFF] {
                let word = u64::from_le_bytes([other, byte, other, other, byte, other, other, 0]);
                let want = (0..8).fold(0u64, |m, i| {
                    let b = (word >> (8 * i)) as u8;
                    m | (u64::from(b == byte) << (8 * i + 7))
                });
                assert_eq!(bytes_equal(word, byte), want, "{byte} {other}");
            }
        }
    }

    #[test]
    fn remembered_days_never_change_an_answer() {
        let mut days = Days::default();
        for text in [
            "2017-02-14T00:00:00Z",
            "2017-02-14T23:59:59Z",
            "2017-02-14T24:00:00Z",
            "2017-02-15T01:00:00Z",
            "2017-02-30T01:00:00Z",
            "2017-02-14T01:00:00+01:00",
            "2016-02-29T00:00:00Z",
            "2017-02-14T0a:00:00Z",
        ] {
            let want = DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc));
            assert_eq!(days.parse_rfc3339(text), want, "{text}");
            assert_eq!(parse_rfc3339(text), want, "{text}");
        }
        // A leap second is refused by the fast path, as it always was (chrono alone would
        // take it); remembering the day does not change that.
        assert_eq!(days.parse_rfc3339("2017-02-14T01:00:60Z"), None);
    }

    #[test]
    fn export_times_in_every_shape() {
        let want = parse_rfc3339("2018-09-19T03:00:00Z").unwrap();
        for text in [
            "2018-09-19T03:00:00Z",
            "2018-09-19T03:00:00+00:00",
            "2018-09-19'T'03:00:00+00:00",
            "2018-09-19'T'03:00:00+0000",
            "2018-09-19T03:00:00+0000",
            "2018-09-19T05:00:00+02:00",
            "2018-09-19T03:00:00",
            "2018-09-19 03:00:00",
            "2018-09-19T03:00:00.000000",
        ] {
            assert_eq!(parse_export_time(text), Some(want), "{text}");
        }
        for text in ["2018-09-19", "yesterday", "2018-13-19T03:00:00Z", ""] {
            assert_eq!(parse_export_time(text), None, "{text}");
        }
        // Years outside 0001-9999: chrono's `%Y` reads signed six-digit years, and a period
        // around year 262142 has no end (the rater panicked building it).
        for text in [
            "+262142-12-01 00:00:00",
            "+262142-12-01T00:00:00Z",
            "+262142-12-01T00:00:00+00:00",
            "-0001-12-01 00:00:00",
            "10000-01-01 00:00:00",
            "0000-12-31T23:00:00Z",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
        ] {
            assert_eq!(parse_export_time(text), None, "{text}");
            assert_eq!(parse_rfc3339(text), None, "{text}");
            assert_eq!(Days::default().parse_rfc3339(text), None, "{text}");
        }
        for text in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            assert!(parse_export_time(text).is_some(), "{text}");
            assert!(parse_rfc3339(text).is_some(), "{text}");
        }
        // Canonical CSV is strict: no offset-less or quoted-T times.
        assert_eq!(parse_rfc3339("2018-09-19 03:00:00"), None);
        assert_eq!(parse_rfc3339("2018-02-30T03:00:00Z"), None);
    }
}
