//! Antelope times: `time_point_sec` (seconds since 1970), `time_point` (microseconds since
//! 1970) and `block_timestamp_type` (500 ms slots since 2000-01-01T00:00:00).
//!
//! Strings are UTC ISO-8601 without a zone, as nodeos prints them. Slot arithmetic is exact
//! integer arithmetic: the slot is the double-sign watermark's second coordinate.

use std::fmt;
use std::str::FromStr;

use super::codec::{Pack, Reader, Unpack};
use crate::{Error, Result};

/// Milliseconds from 1970-01-01 to 2000-01-01, the block timestamp epoch.
pub const BLOCK_TIMESTAMP_EPOCH_MS: i64 = 946_684_800_000;
/// Length of one block slot in milliseconds.
pub const BLOCK_INTERVAL_MS: i64 = 500;

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Formats milliseconds since 1970 as `YYYY-MM-DDTHH:MM:SS[.mmm]`.
fn format_ms(ms: i64, with_millis: bool) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if with_millis {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}")
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…][Z]` as milliseconds since 1970 (fractions beyond
/// milliseconds must be zero).
fn parse_ms(text: &str) -> Result<i64> {
    let err = |reason| Error::Time {
        text: text.to_string(),
        reason,
    };
    let t = text.strip_suffix('Z').unwrap_or(text);
    let (main, frac) = match t.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (t, None),
    };
    let b = main.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(err("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let num = |r: std::ops::Range<usize>| main[r].parse::<u32>().map_err(|_| err("not a number"));
    let (y, mo, d, h, mi, s) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d == 0
        || d > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || s > 59
    {
        return Err(err("date or time out of range"));
    }
    let mut millis = 0i64;
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err("bad fraction of a second"));
        }
        let (ms_part, rest) = f.split_at(f.len().min(3));
        if rest.bytes().any(|c| c != b'0') {
            return Err(err("precision finer than a millisecond"));
        }
        millis = format!("{ms_part:0<3}")
            .parse::<i64>()
            .map_err(|_| err("bad fraction of a second"))?;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Ok(days * 86_400_000
        + i64::from(h) * 3_600_000
        + i64::from(mi) * 60_000
        + i64::from(s) * 1000
        + millis)
}

macro_rules! time_from_str {
    ($t:ty) => {
        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
        super::codec::serde_as_string!($t);
    };
}

/// Seconds since 1970 (`time_point_sec`), e.g. a transaction's expiration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimePointSec(pub u32);

impl TimePointSec {
    /// Parses an ISO-8601 UTC time; a fraction must be zero.
    pub fn parse(text: &str) -> Result<Self> {
        let ms = parse_ms(text)?;
        if ms % 1000 != 0 {
            return Err(Error::Time {
                text: text.into(),
                reason: "time_point_sec has whole seconds only",
            });
        }
        u32::try_from(ms / 1000)
            .map(TimePointSec)
            .map_err(|_| Error::Time {
                text: text.into(),
                reason: "outside 1970..2106",
            })
    }
}

impl fmt::Display for TimePointSec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ms(i64::from(self.0) * 1000, false))
    }
}

impl Pack for TimePointSec {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
    }
}

impl Unpack for TimePointSec {
    const WHAT: &'static str = "time_point_sec";
    const MIN_SIZE: usize = 4;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.u32(Self::WHAT).map(TimePointSec)
    }
}

time_from_str!(TimePointSec);

/// Microseconds since 1970 (`time_point`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimePoint(pub i64);

impl TimePoint {
    /// Parses an ISO-8601 UTC time with up to millisecond precision.
    pub fn parse(text: &str) -> Result<Self> {
        parse_ms(text).map(|ms| TimePoint(ms * 1000))
    }
}

impl fmt::Display for TimePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ms(self.0.div_euclid(1000), true))
    }
}

impl Pack for TimePoint {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
    }
}

impl Unpack for TimePoint {
    const WHAT: &'static str = "time_point";
    const MIN_SIZE: usize = 8;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.i64(Self::WHAT).map(TimePoint)
    }
}

time_from_str!(TimePoint);

/// A block slot: 500 ms intervals since 2000-01-01T00:00:00.000 (`block_timestamp_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockTimestamp(pub u32);

impl BlockTimestamp {
    /// The slot that contains `unix_ms` (milliseconds since 1970), if it is representable.
    pub fn from_unix_ms(unix_ms: i64) -> Option<Self> {
        let since = unix_ms.checked_sub(BLOCK_TIMESTAMP_EPOCH_MS)?;
        u32::try_from(since.checked_div(BLOCK_INTERVAL_MS)?)
            .ok()
            .map(BlockTimestamp)
    }

    /// Milliseconds since 1970 at the start of this slot.
    pub fn to_unix_ms(self) -> i64 {
        BLOCK_TIMESTAMP_EPOCH_MS + i64::from(self.0) * BLOCK_INTERVAL_MS
    }

    /// The slot number.
    pub fn slot(self) -> u32 {
        self.0
    }

    /// Parses an ISO-8601 UTC time that falls exactly on a slot boundary.
    pub fn parse(text: &str) -> Result<Self> {
        let ms = parse_ms(text)?;
        let err = |reason| Error::Time {
            text: text.into(),
            reason,
        };
        let since = ms - BLOCK_TIMESTAMP_EPOCH_MS;
        if since < 0 || since % BLOCK_INTERVAL_MS != 0 {
            return Err(err("not a 500 ms slot boundary at or after 2000-01-01"));
        }
        u32::try_from(since / BLOCK_INTERVAL_MS)
            .map(BlockTimestamp)
            .map_err(|_| err("slot out of range"))
    }
}

impl fmt::Display for BlockTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_ms(self.to_unix_ms(), true))
    }
}

impl Pack for BlockTimestamp {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
    }
}

impl Unpack for BlockTimestamp {
    const WHAT: &'static str = "block_timestamp";
    const MIN_SIZE: usize = 4;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.u32(Self::WHAT).map(BlockTimestamp)
    }
}

time_from_str!(BlockTimestamp);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_times() {
        assert_eq!(
            TimePointSec::parse("2020-01-01T00:00:06").map(|t| t.0),
            Ok(1_577_836_806)
        );
        assert_eq!(
            TimePointSec(1_577_836_806).to_string(),
            "2020-01-01T00:00:06"
        );
        assert_eq!(BlockTimestamp(0).to_string(), "2000-01-01T00:00:00.000");
        let ts = BlockTimestamp::parse("2024-10-23T03:17:45.000").expect("valid");
        assert_eq!(ts.to_string(), "2024-10-23T03:17:45.000");
        assert_eq!(
            TimePoint::parse("2018-06-08T08:08:08.888").map(|t| t.0),
            Ok(1_528_445_288_888_000)
        );
    }

    #[test]
    fn rejects_bad_times() {
        for bad in [
            "2020-02-30T00:00:00",
            "2020-01-01 00:00:00",
            "2020-01-01T24:00:00",
            "x",
            "2020-01-01T00:00:00.0001",
        ] {
            assert!(TimePoint::parse(bad).is_err(), "{bad}");
        }
        assert!(BlockTimestamp::parse("2024-10-23T03:17:45.250").is_err());
        assert!(TimePointSec::parse("2024-10-23T03:17:45.500").is_err());
    }

    proptest! {
        #[test]
        fn strings_round_trip(slot: u32, secs: u32) {
            prop_assert_eq!(BlockTimestamp::parse(&BlockTimestamp(slot).to_string())?, BlockTimestamp(slot));
            prop_assert_eq!(TimePointSec::parse(&TimePointSec(secs).to_string())?, TimePointSec(secs));
        }
    }
}
