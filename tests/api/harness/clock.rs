//! Wall-clock helpers for tests whose subject is time (SLA timers, case deadlines, webhooks).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::str_of;

/// Wall-clock now, UTC milliseconds (the server runs on the same host clock).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// An RFC 3339 value as UTC milliseconds (panics with the value otherwise).
#[track_caller]
pub(crate) fn ms(v: &Value) -> i64 {
    let s = str_of(v);
    let t = OffsetDateTime::parse(&s, &Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"));
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// UTC milliseconds as RFC 3339.
pub(crate) fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("timestamp in range")
        .format(&Rfc3339)
        .expect("format RFC 3339")
}

/// Sleeps until the wall clock reaches `ms` (used only where wall-clock time is the point).
pub(crate) async fn sleep_until_ms(ms: i64) {
    let wait = ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
}

/// Asserts `lo <= x <= hi` (UTC ms), naming the quantity.
#[track_caller]
pub(crate) fn assert_within(what: &str, x: i64, lo: i64, hi: i64) {
    assert!(
        (lo..=hi).contains(&x),
        "{what}: {} ({x}) is not within [{}, {}] (off by {} ms below / {} ms above)",
        rfc3339(x),
        rfc3339(lo),
        rfc3339(hi),
        (lo - x).max(0),
        (x - hi).max(0),
    );
}
