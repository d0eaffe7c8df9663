//! Keyset paging and capped counts of lists, so a list stays fast at a million rows.
//!
//! A page continues after the sort key of the last row shown (a [`Cursor`]) rather
//! than skipping rows with `OFFSET`, so page 500 costs what page 1 does: the store
//! seeks with `WHERE (created_at, id) < ($t, $i)` (or the mirror, or the due-date key)
//! along an index that serves the list's filter and order. A count stops at
//! [`COUNT_CAP`] + 1 rows (`SELECT COUNT(*) FROM (SELECT 1 … LIMIT 10001)`): beyond
//! that the list says "10,000+" instead of scanning every matching row.
//!
//! The cursor travels in URLs as opaque URL-safe text: base64url (no padding) of a
//! version byte, the row's `created_at` in microseconds since the epoch (8 bytes, big
//! endian), its id (16 bytes) and, when the row has one, its due date as days since
//! 1 January of year 1 (4 bytes). Anything else is refused as malformed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use uuid::Uuid;

/// Counts stop here: a list with more matching rows shows "10,000+".
pub const COUNT_CAP: i64 = 10_000;

const VERSION: u8 = 1;
const BASE_LEN: usize = 1 + 8 + 16;
/// Longest text a cursor can be (base64 of the longest form, with room to spare).
const MAX_TEXT: usize = 64;

/// Where the next page of a list begins: the sort key of the last row of this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The row's `created_at` (to the microsecond, as stored).
    pub at: DateTime<Utc>,
    /// The row's id (the tie-breaker among rows created at the same moment).
    pub id: Uuid,
    /// The row's due date, for lists ordered by it (`None`: the row has none).
    pub due: Option<NaiveDate>,
}

/// A cursor that is not one this gateway wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedCursor;

impl std::fmt::Display for MalformedCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("malformed cursor")
    }
}

impl std::error::Error for MalformedCursor {}

impl Cursor {
    /// The opaque, URL-safe text of the cursor.
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(BASE_LEN + 4);
        b.push(VERSION);
        b.extend_from_slice(&self.at.timestamp_micros().to_be_bytes());
        b.extend_from_slice(self.id.as_bytes());
        if let Some(d) = self.due {
            b.extend_from_slice(&d.num_days_from_ce().to_be_bytes());
        }
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Reads a cursor's text back; anything this gateway did not write is refused.
    pub fn decode(text: &str) -> Result<Cursor, MalformedCursor> {
        if text.is_empty() || text.len() > MAX_TEXT {
            return Err(MalformedCursor);
        }
        let b = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|_| MalformedCursor)?;
        if !(b.len() == BASE_LEN || b.len() == BASE_LEN + 4) || b[0] != VERSION {
            return Err(MalformedCursor);
        }
        let micros = i64::from_be_bytes(b[1..9].try_into().map_err(|_| MalformedCursor)?);
        let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or(MalformedCursor)?;
        let id = Uuid::from_slice(&b[9..BASE_LEN]).map_err(|_| MalformedCursor)?;
        let due = match b.get(BASE_LEN..) {
            Some(rest) if rest.len() == 4 => {
                let days = i32::from_be_bytes(rest.try_into().map_err(|_| MalformedCursor)?);
                Some(NaiveDate::from_num_days_from_ce_opt(days).ok_or(MalformedCursor)?)
            }
            _ => None,
        };
        Ok(Cursor { at, id, due })
    }
}

/// A count that stopped at [`COUNT_CAP`]: `(shown number, capped)`, from the number of
/// rows a capped count found (at most `COUNT_CAP + 1`).
pub fn capped(found: i64) -> (i64, bool) {
    if found > COUNT_CAP {
        (COUNT_CAP, true)
    } else {
        (found, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn a_cursor_reads_back_as_written() {
        let id = Uuid::parse_str("0193a5b2-7c1d-7e2f-8a3b-4c5d6e7f8091").expect("uuid");
        for due in [None, NaiveDate::from_ymd_opt(2026, 12, 18)] {
            for t in [
                "2026-12-06T23:11:06.123456Z",
                "1970-01-01T00:00:00Z",
                "1969-12-31T23:59:59.999999Z",
            ] {
                let c = Cursor { at: at(t), id, due };
                let text = c.encode();
                assert!(
                    text.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "URL-safe: {text}"
                );
                assert!(text.len() <= MAX_TEXT);
                assert_eq!(Cursor::decode(&text), Ok(c));
            }
        }
    }

    #[test]
    fn anything_else_is_malformed() {
        let good = Cursor {
            at: at("2026-12-06T23:11:06.123456Z"),
            id: Uuid::nil(),
            due: None,
        }
        .encode();
        let mut bad: Vec<String> = vec![
            String::new(),
            "x".into(),
            "not a cursor".into(),
            "%%%".into(),
            "AAAA".into(),
            format!("{good}="),
            format!("{good}A"),
            good[1..].to_owned(),
            "A".repeat(200),
            // version 2
            URL_SAFE_NO_PAD.encode([2u8; BASE_LEN]),
            // a due date no calendar has
            URL_SAFE_NO_PAD
                .encode([vec![1u8], vec![0; 24], i32::MAX.to_be_bytes().to_vec()].concat()),
            // a time out of range
            URL_SAFE_NO_PAD
                .encode([vec![1u8], i64::MAX.to_be_bytes().to_vec(), vec![0; 16]].concat()),
        ];
        // standard base64 (with + and /) is not the URL-safe alphabet
        bad.push(good.replace('-', "+").replace('_', "/") + "+/");
        for b in bad {
            assert_eq!(Cursor::decode(&b), Err(MalformedCursor), "{b:?}");
        }
    }

    #[test]
    fn counts_stop_at_the_cap() {
        assert_eq!(capped(0), (0, false));
        assert_eq!(capped(COUNT_CAP), (COUNT_CAP, false));
        assert_eq!(capped(COUNT_CAP + 1), (COUNT_CAP, true));
    }
}
