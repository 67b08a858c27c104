//! Time as plain values: UTC milliseconds since the Unix epoch. Only `src/` reads the clock.

use serde::{Deserialize, Serialize};

/// A UTC instant, milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// A span of time in milliseconds.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Timestamp {
    pub fn plus(self, d: Millis) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
    /// The instant `ratio` of the way from `self` to `end` (used for at-risk points).
    pub fn fraction_towards(self, end: Timestamp, ratio: f64) -> Timestamp {
        let span = end.0.saturating_sub(self.0).max(0) as f64;
        Timestamp(
            self.0
                .saturating_add((span * ratio.clamp(0.0, 1.0)).round() as i64),
        )
    }
}

/// India Standard Time offset (UTC+05:30); business days are India days.
pub const IST_OFFSET_MS: i64 = (5 * 60 + 30) * 60 * 1000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A calendar date, stored as days since 1970-01-01.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Date(pub i32);

impl Date {
    /// The date of `(y, m, d)`, or `None` for an impossible date.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return None;
        }
        Some(Date(days_from_civil(y, m, d)))
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y = s.get(0..4)?.parse().ok()?;
        let m = s.get(5..7)?.parse().ok()?;
        let d = s.get(8..10)?.parse().ok()?;
        Date::from_ymd(y, m, d)
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The India date of an instant.
    pub fn india_of(t: Timestamp) -> Date {
        Date((t.0 + IST_OFFSET_MS).div_euclid(DAY_MS) as i32)
    }

    /// The instant India's day `self` begins.
    pub fn india_start(self) -> Timestamp {
        Timestamp(self.0 as i64 * DAY_MS - IST_OFFSET_MS)
    }

    pub fn plus_days(self, days: i32) -> Date {
        Date(self.0.saturating_add(days))
    }

    /// `(weekday 0 = Monday .. 6 = Sunday)`.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (3).
        (self.0 as i64 + 3).rem_euclid(7) as u32
    }

    /// Whole years from `self` (a birth date) to `on`.
    pub fn years_until(self, on: Date) -> i32 {
        let (y0, m0, d0) = self.ymd();
        let (y1, m1, d1) = on.ymd();
        let mut age = y1 - y0;
        if (m1, d1) < (m0, d0) {
            age -= 1;
        }
        age
    }

    /// The same month and day `years` later (29 Feb becomes 28 Feb in common years).
    pub fn plus_years(self, years: i32) -> Date {
        let (y, m, d) = self.ymd();
        let y2 = y + years;
        let d2 = d.min(days_in_month(y2, m));
        Date(days_from_civil(y2, m, d2))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_follow_india_days() {
        let d = Date::parse("2024-02-29").unwrap();
        assert_eq!(d.to_string(), "2024-02-29");
        assert_eq!(Date::parse("2023-02-29"), None);
        assert_eq!(Date::parse("1970-01-01"), Some(Date(0)));
        // 2024-01-01T20:00:00Z is 2024-01-02 01:30 in India.
        let t = Timestamp(1_704_139_200_000);
        assert_eq!(Date::india_of(t).to_string(), "2024-01-02");
        assert_eq!(
            Date::india_of(Date::parse("2024-01-02").unwrap().india_start()).to_string(),
            "2024-01-02"
        );
        assert_eq!(d.plus_years(1).to_string(), "2025-02-28");
        assert_eq!(
            Date::parse("2000-06-15")
                .unwrap()
                .years_until(Date::parse("2030-06-14").unwrap()),
            29
        );
        assert_eq!(Date::parse("2024-12-02").unwrap().weekday(), 0); // a Monday
    }
}
