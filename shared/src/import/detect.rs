//! Which format an input is in, from its first bytes.

use super::canonical::CSV_COLUMNS;
use super::format::Format;

/// How many leading bytes [`detect`] needs to recognise every format.
pub const DETECT_PREFIX_BYTES: usize = 4096;

/// Guesses the format of an input from its first bytes ([`DETECT_PREFIX_BYTES`] are enough),
/// or `None` when they do not look like any format.
///
/// JSON is told apart by the keys it holds: `listusagerecordsresponse` or `usagetype`
/// (CloudStack), `counter_name`/`counter_volume` or `samples` (Ceilometer), `quantity` and
/// `meter` on an object (JSON Lines). CSV is recognised by a header naming only canonical
/// columns, `account` and `quantity` among them.
pub fn detect(prefix: &[u8]) -> Option<Format> {
    let p = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let start = p.iter().position(|b| !b.is_ascii_whitespace())?;
    let p = &p[start..];
    let has = |key: &[u8]| p.windows(key.len()).any(|w| w == key);
    match p[0] {
        b'{' | b'[' => {
            if has(b"\"listusagerecordsresponse\"") || has(b"\"usagetype\"") {
                Some(Format::CloudStack)
            } else if has(b"\"counter_name\"")
                || has(b"\"counter_volume\"")
                || (p[0] == b'{' && has(b"\"samples\""))
                || (has(b"\"resource_id\"") && has(b"\"volume\"") && has(b"\"meter\""))
            {
                Some(Format::Ceilometer)
            } else if p[0] == b'{' && has(b"\"quantity\"") && has(b"\"meter\"") {
                Some(Format::JsonLines)
            } else {
                None
            }
        }
        _ => {
            let line_end = p.iter().position(|&b| b == b'\n').unwrap_or(p.len());
            let line = std::str::from_utf8(&p[..line_end]).ok()?;
            let names: Vec<&str> = line
                .trim_end_matches('\r')
                .split(',')
                .map(|c| c.trim().trim_matches('"'))
                .collect();
            let all_known = names.iter().all(|n| CSV_COLUMNS.contains(n));
            (all_known && names.contains(&"account") && names.contains(&"quantity"))
                .then_some(Format::Csv)
        }
    }
}

impl Format {
    /// See [`detect`].
    pub fn detect(prefix: &[u8]) -> Option<Format> {
        detect(prefix)
    }
}
