//! The only place DxStack reads the wall clock, and RFC 3339 on the wire.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use workflows::Timestamp;

/// Now, as UTC milliseconds.
pub fn now() -> Timestamp {
    let ns = OffsetDateTime::now_utc().unix_timestamp_nanos();
    Timestamp((ns / 1_000_000) as i64)
}

/// `2026-01-01T09:30:00.123Z` (milliseconds only when non-zero).
pub fn rfc3339(t: Timestamp) -> String {
    let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(t.0 as i128 * 1_000_000) else {
        return String::from("invalid-time");
    };
    let (y, mo, d) = (dt.year(), dt.month() as u8 as u32, dt.day() as u32);
    let (h, mi, s) = (dt.hour() as u32, dt.minute() as u32, dt.second() as u32);
    let ms = dt.millisecond() as u32;
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
    }
    // Hot path (every view renders several times): fixed-width digits, no formatter.
    fn push(out: &mut String, n: u32, width: u32) {
        for p in (0..width).rev() {
            out.push(char::from(b'0' + ((n / 10u32.pow(p)) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(24);
    push(&mut out, y as u32, 4);
    out.push('-');
    push(&mut out, mo, 2);
    out.push('-');
    push(&mut out, d, 2);
    out.push('T');
    push(&mut out, h, 2);
    out.push(':');
    push(&mut out, mi, 2);
    out.push(':');
    push(&mut out, s, 2);
    if ms != 0 {
        out.push('.');
        push(&mut out, ms, 3);
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 time with any offset into UTC milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_utc() {
        let t = parse_rfc3339("2030-01-01T14:30:00+05:30").unwrap();
        assert_eq!(rfc3339(t), "2030-01-01T09:00:00Z");
        let t2 = parse_rfc3339("2030-01-01T09:00:00.250Z").unwrap();
        assert_eq!(rfc3339(t2), "2030-01-01T09:00:00.250Z");
        assert!(parse_rfc3339("yesterday").is_none());
    }
}
