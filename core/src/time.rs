//! RFC 3339 timestamps <-> unix milliseconds, without a date library.
//!
//! EPCIS carries every time as an RFC 3339 string with its own offset; the
//! ledger compares and indexes them as unix milliseconds (UTC). This module is
//! the one conversion, in both directions, plus the two small formats EPCIS
//! and the quality extension also use: a time-zone offset (`+02:00`) and a
//! calendar date (`2024-05-31`).
//!
//! What is accepted, on purpose narrow:
//! - `YYYY-MM-DDTHH:MM:SS[.f](Z|+HH:MM|-HH:MM)`; `t` and `z` may be lowercase;
//!   years `0000..=9999`; 1 to 9 fraction digits, truncated (not rounded) to
//!   milliseconds.
//! - Every field is range-checked, days against the month in that year
//!   (Gregorian leap years, proleptic before 1582).
//! - A leap second (`:60`) is **rejected**: unix time has no place for it,
//!   and silently folding it into `:59` would make two distinct strings equal.
//! - An offset's hours are `00..=23` and minutes `00..=59` (RFC 3339);
//!   `-00:00` ("offset unknown") is accepted and means UTC.
//! - No space instead of `T`, no missing seconds, no ISO 8601 week dates.
//!
//! Errors carry the offending input, clipped to [`INPUT_SHOWN_MAX`] characters
//! so a hostile megabyte-long "timestamp" cannot bloat an error response.

/// The earliest instant this module formats and parses: `0000-01-01T00:00:00.000Z`.
pub const MIN_MS: i64 = -62_167_219_200_000;
/// The latest instant: `9999-12-31T23:59:59.999Z`.
pub const MAX_MS: i64 = 253_402_300_799_999;
/// The largest offset EPCIS allows in `eventTimeZoneOffset`, in minutes (14:00).
pub const OFFSET_MINUTES_MAX: i32 = 14 * 60;
/// How many characters of a bad input an error keeps.
pub const INPUT_SHOWN_MAX: usize = 64;

const MS_PER_DAY: i64 = 86_400_000;

/// Why a timestamp, date or offset was rejected. Each variant carries the
/// input (clipped to [`INPUT_SHOWN_MAX`] characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{input:?} is not RFC 3339: expected {expected} at byte {at}")]
    Syntax {
        input: String,
        expected: &'static str,
        at: usize,
    },
    #[error("{input:?}: month {month} is not in 1..=12")]
    Month { input: String, month: u32 },
    #[error("{input:?}: day {day} does not exist in {year:04}-{month:02}")]
    Day {
        input: String,
        year: u32,
        month: u32,
        day: u32,
    },
    #[error("{input:?}: hour {hour} is not in 0..=23")]
    Hour { input: String, hour: u32 },
    #[error("{input:?}: minute {minute} is not in 0..=59")]
    Minute { input: String, minute: u32 },
    #[error("{input:?}: second {second} is not in 0..=59 (leap seconds are not accepted)")]
    Second { input: String, second: u32 },
    #[error("{input:?}: the fraction of a second needs 1 to 9 digits, found {digits}")]
    Fraction { input: String, digits: usize },
    #[error(
        "{input:?}: offset {hours:02}:{minutes:02} is out of range (hours 0..=23, minutes 0..=59)"
    )]
    Offset {
        input: String,
        hours: u32,
        minutes: u32,
    },
    #[error("{input:?}: offset of {minutes} minutes is outside -14:00..=+14:00")]
    OffsetRange { input: String, minutes: i32 },
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(INPUT_SHOWN_MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// A cursor over the ASCII bytes of one input.
struct Cursor<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Self {
        Cursor {
            input,
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    fn syntax(&self, expected: &'static str) -> TimeError {
        TimeError::Syntax {
            input: clip(self.input),
            expected,
            at: self.pos,
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize, expected: &'static str) -> Result<u32, TimeError> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.bytes.get(self.pos) {
                Some(b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => return Err(self.syntax(expected)),
            }
        }
        Ok(value)
    }

    fn byte(&mut self, wanted: &[u8], expected: &'static str) -> Result<u8, TimeError> {
        match self.bytes.get(self.pos) {
            Some(b) if wanted.contains(b) => {
                self.pos += 1;
                Ok(*b)
            }
            _ => Err(self.syntax(expected)),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn end(&self) -> Result<(), TimeError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.syntax("end of input"))
        }
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`). Valid for any month 1..=12 and day 1..=31.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // `day` is 1..=31 and `month` 1..=12 by construction.
    (year, month as u32, day as u32)
}

/// `YYYY-MM-DD`, range-checked; returns (year, month, day).
fn date(c: &mut Cursor<'_>) -> Result<(u32, u32, u32), TimeError> {
    let year = c.digits(4, "a 4-digit year")?;
    c.byte(b"-", "'-'")?;
    let month = c.digits(2, "a 2-digit month")?;
    c.byte(b"-", "'-'")?;
    let day = c.digits(2, "a 2-digit day")?;
    if !(1..=12).contains(&month) {
        return Err(TimeError::Month {
            input: clip(c.input),
            month,
        });
    }
    if day == 0 || day > days_in_month(i64::from(year), month) {
        return Err(TimeError::Day {
            input: clip(c.input),
            year,
            month,
            day,
        });
    }
    Ok((year, month, day))
}

/// `+HH:MM` or `-HH:MM` as signed minutes, with RFC 3339 ranges.
fn offset(c: &mut Cursor<'_>) -> Result<i32, TimeError> {
    let sign = c.byte(b"+-", "'Z', '+' or '-'")?;
    let hours = c.digits(2, "2-digit offset hours")?;
    c.byte(b":", "':' in the offset")?;
    let minutes = c.digits(2, "2-digit offset minutes")?;
    if hours > 23 || minutes > 59 {
        return Err(TimeError::Offset {
            input: clip(c.input),
            hours,
            minutes,
        });
    }
    // hours <= 23 and minutes <= 59, so this fits easily.
    let total = (hours * 60 + minutes) as i32;
    Ok(if sign == b'-' { -total } else { total })
}

/// Parses an RFC 3339 timestamp into unix milliseconds (UTC).
///
/// `2013-06-08T14:58:56.591Z` -> `1370703536591`. See the module docs for
/// exactly what is accepted; the fraction is truncated to milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, TimeError> {
    let mut c = Cursor::new(s);
    let (year, month, day) = date(&mut c)?;
    c.byte(b"Tt", "'T'")?;
    let hour = c.digits(2, "2-digit hours")?;
    c.byte(b":", "':'")?;
    let minute = c.digits(2, "2-digit minutes")?;
    c.byte(b":", "':'")?;
    let second = c.digits(2, "2-digit seconds")?;
    let mut millis = 0u32;
    if c.peek() == Some(b'.') {
        c.pos += 1;
        let start = c.pos;
        while c.peek().is_some_and(|b| b.is_ascii_digit()) {
            c.pos += 1;
        }
        let digits = c.pos - start;
        if !(1..=9).contains(&digits) {
            return Err(TimeError::Fraction {
                input: clip(s),
                digits,
            });
        }
        // Truncate to milliseconds: the first three digits, right-padded.
        for i in 0..3 {
            let d = if i < digits {
                u32::from(c.bytes[start + i] - b'0')
            } else {
                0
            };
            millis = millis * 10 + d;
        }
    }
    let offset_minutes = match c.peek() {
        Some(b'Z' | b'z') => {
            c.pos += 1;
            0
        }
        _ => offset(&mut c)?,
    };
    c.end()?;
    if hour > 23 {
        return Err(TimeError::Hour {
            input: clip(s),
            hour,
        });
    }
    if minute > 59 {
        return Err(TimeError::Minute {
            input: clip(s),
            minute,
        });
    }
    if second > 59 {
        return Err(TimeError::Second {
            input: clip(s),
            second,
        });
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok(days * MS_PER_DAY + seconds * 1000 + i64::from(millis) - i64::from(offset_minutes) * 60_000)
}

/// Parses a calendar date `YYYY-MM-DD` into the unix milliseconds of its
/// midnight UTC (used for certificate validity dates).
pub fn parse_date_ms(s: &str) -> Result<i64, TimeError> {
    let mut c = Cursor::new(s);
    let (year, month, day) = date(&mut c)?;
    c.end()?;
    Ok(days_from_civil(i64::from(year), month, day) * MS_PER_DAY)
}

/// Either an RFC 3339 timestamp or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_date_or_rfc3339_ms(s: &str) -> Result<i64, TimeError> {
    if s.len() == 10 {
        parse_date_ms(s)
    } else {
        parse_rfc3339_ms(s)
    }
}

/// Formats unix milliseconds as RFC 3339 in UTC with exactly three fraction
/// digits: `2013-10-31T14:58:56.591Z`.
///
/// Instants in [`MIN_MS`]`..=`[`MAX_MS`] round-trip through
/// [`parse_rfc3339_ms`]. Outside that range the year is written in the ISO
/// 8601 expanded form (`+10000-01-01T…`, `-0001-12-31T…`), which is total and
/// readable but which [`parse_rfc3339_ms`] rejects.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let millis = in_day % 1000;
    // Written digit by digit: every event's time is formatted for its CBV
    // hash, and `format!` with padding cost more than the rest of this.
    let mut out = String::with_capacity(25);
    if (0..=9999).contains(&year) {
        push_digits(&mut out, year, 4);
    } else {
        out.push_str(&format!("{year:+05}"));
    }
    for (separator, value, width) in [
        ('-', i64::from(month), 2),
        ('-', i64::from(day), 2),
        ('T', hour, 2),
        (':', minute, 2),
        (':', second, 2),
        ('.', millis, 3),
    ] {
        out.push(separator);
        push_digits(&mut out, value, width);
    }
    out.push('Z');
    out
}

/// `value` (in `0..10^width`) as exactly `width` decimal digits.
fn push_digits(out: &mut String, value: i64, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10_i64.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Parses an EPCIS `eventTimeZoneOffset` (`+02:00`, `-05:30`) into signed
/// minutes east of UTC. Only `+HH:MM` and `-HH:MM` within `-14:00..=+14:00`
/// are accepted; `Z` is not (the EPCIS schema's pattern does not allow it).
pub fn parse_offset_minutes(s: &str) -> Result<i32, TimeError> {
    let mut c = Cursor::new(s);
    let minutes = offset(&mut c)?;
    c.end()?;
    if minutes.abs() > OFFSET_MINUTES_MAX {
        return Err(TimeError::OffsetRange {
            input: clip(s),
            minutes,
        });
    }
    Ok(minutes)
}

/// Formats signed minutes as an offset, `+02:00` / `-05:30`.
pub fn format_offset_minutes(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let abs = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 60, abs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_the_whole_range() {
        let first = days_from_civil(0, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        assert_eq!(first * MS_PER_DAY, MIN_MS);
        assert_eq!(last * MS_PER_DAY + MS_PER_DAY - 1, MAX_MS);
        for days in (first..=last).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn clip_keeps_short_inputs_and_cuts_long_ones() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(clip(&long).chars().count(), INPUT_SHOWN_MAX + 1);
    }
}
