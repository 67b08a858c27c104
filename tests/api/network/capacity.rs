//! Daily capacity: counted per India day of the slot; the booking after the last slot goes to
//! the next provider; a cancel gives the slot back.

use serde_json::json;

use super::{booking, candidate, close, excluded_map, lab, num, Net, BLR};
use crate::harness::{str_of, TestApp};

/// Slots on the India day 2030-01-01, three of them on a different UTC date or hour edge.
const JAN1_SLOTS: [(&str, &str, &str); 5] = [
    // 00:00-00:30 IST on 2030-01-01 (still 2029-12-31 in UTC).
    ("00:00 IST", "2029-12-31T18:30:00Z", "2029-12-31T19:00:00Z"),
    ("14:30 IST", "2030-01-01T09:00:00Z", "2030-01-01T10:00:00Z"),
    ("23:30 IST", "2030-01-01T18:00:00Z", "2030-01-01T18:29:00Z"),
    ("10:30 IST", "2030-01-01T05:00:00Z", "2030-01-01T06:00:00Z"),
    ("12:30 IST", "2030-01-01T07:00:00Z", "2030-01-01T08:00:00Z"),
];
/// 00:00-00:30 IST on 2030-01-02 (still 2030-01-01 in UTC).
const JAN2_SLOT: (&str, &str) = ("2030-01-01T18:30:00Z", "2030-01-01T19:00:00Z");

#[tokio::test]
async fn the_fourth_booking_of_an_india_day_goes_to_the_next_provider_and_a_cancel_frees_a_slot() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    let (lat, lon, pin) = BLR;
    let mut small = lab(lat, lon, pin);
    small["daily_capacity"] = json!(3);
    net.add(&app, "cp-small", &small).await;
    // 8 km away and of lower quality: second choice even when cp-small is nearly full.
    let mut big = lab(13.0300, 77.6300, pin);
    big["radius_km"] = json!(15);
    big["quality_score"] = json!(3.0);
    net.add(&app, "cp-big", &big).await;

    let book = |n: usize, slot: (&str, &str)| {
        let body = booking(net.member(n % 4), &["CBC"], slot, BLR, &format!("cp-{n}"));
        let app = &app;
        let key = net.pk().to_string();
        async move { app.create_booking(&key, &body).await }
    };

    // Three bookings across the India day fill cp-small; its load component falls each time.
    let mut small_ids = Vec::new();
    for (n, (what, start, end)) in JAN1_SLOTS[..3].iter().enumerate() {
        let b = book(n, (start, end)).await.ok(201);
        assert_eq!(b["provider_id"], "cp-small", "{what}: {}", b["routing"]);
        let load = num(&candidate(&b["routing"], "cp-small")["components"]["load"]);
        close(
            load,
            1.0 - n as f64 / 3.0,
            0.001,
            &format!("{what}: cp-small load"),
        );
        small_ids.push(str_of(&b["id"]));
    }

    // The 4th of the same India day goes to cp-big; cp-small is excluded as full.
    let (what, start, end) = JAN1_SLOTS[3];
    let b = book(3, (start, end)).await.ok(201);
    assert_eq!(b["provider_id"], "cp-big", "{what}: {}", b["routing"]);
    assert_eq!(
        excluded_map(&b["routing"])
            .get("cp-small")
            .map(String::as_str),
        Some("capacity_full"),
        "{}",
        b["routing"]
    );

    // 00:00 IST on 2030-01-02 is another India day (though the same UTC date): cp-small again.
    let b = book(4, JAN2_SLOT).await.ok(201);
    assert_eq!(
        b["provider_id"], "cp-small",
        "a slot on the next India day counts against that day: {}",
        b["routing"]
    );

    // Cancelling one of cp-small's 2030-01-01 bookings frees a slot on that day...
    app.cancel_booking(net.pk(), &small_ids[1], "member travelling")
        .await
        .ok(200);
    let (what, start, end) = JAN1_SLOTS[4];
    let b = book(5, (start, end)).await.ok(201);
    assert_eq!(
        b["provider_id"], "cp-small",
        "{what}: after a cancel cp-small has a slot again: {}",
        b["routing"]
    );
    close(
        num(&candidate(&b["routing"], "cp-small")["components"]["load"]),
        1.0 / 3.0,
        0.001,
        "cp-small load after the cancel",
    );
    // ...and only one.
    let b = book(6, SLOT_AGAIN).await.ok(201);
    assert_eq!(b["provider_id"], "cp-big", "{}", b["routing"]);
    assert_eq!(
        excluded_map(&b["routing"])
            .get("cp-small")
            .map(String::as_str),
        Some("capacity_full"),
        "{}",
        b["routing"]
    );
}

/// Another 2030-01-01 slot (16:30 IST).
const SLOT_AGAIN: (&str, &str) = ("2030-01-01T11:00:00Z", "2030-01-01T12:00:00Z");

/// The India date (`YYYY-MM-DD`) of an RFC 3339 UTC instant.
fn india_day(t: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let utc = time::OffsetDateTime::parse(t, &Rfc3339).expect("rfc3339 slot");
    let ist = utc.to_offset(time::macros::offset!(+5:30));
    ist.date().to_string()
}

#[tokio::test]
async fn a_reschedule_never_puts_a_provider_above_its_daily_capacity() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    let (lat, lon, pin) = BLR;
    let mut one = lab(lat, lon, pin);
    one["daily_capacity"] = json!(1);
    net.add(&app, "cp-one", &one).await;
    let mut other = lab(13.0300, 77.6300, pin);
    other["radius_km"] = json!(15);
    net.add(&app, "cp-other", &other).await;

    // cp-one takes one booking on 2030-01-01 and one on 2030-01-02: full on both days.
    let jan2 = ("2030-01-02T05:00:00Z", "2030-01-02T06:00:00Z");
    let x = booking(net.member(0), &["CBC"], SLOT_AGAIN, BLR, "rs-x");
    let x = app.create_booking(net.pk(), &x).await.ok(201);
    let y = booking(net.member(1), &["CBC"], jan2, BLR, "rs-y");
    let y = app.create_booking(net.pk(), &y).await.ok(201);
    assert_eq!(x["provider_id"], "cp-one", "{}", x["routing"]);
    assert_eq!(y["provider_id"], "cp-one", "{}", y["routing"]);

    // Moving x onto 2030-01-02 must not give cp-one two bookings that day: refuse the move
    // or route x elsewhere, but never overbook.
    let id = str_of(&x["id"]);
    let r = app
        .reschedule(
            net.pk(),
            &id,
            "2030-01-02T08:00:00Z",
            "2030-01-02T09:00:00Z",
        )
        .await;
    assert!(
        [200, 409, 422].contains(&r.status),
        "reschedule: {} {}",
        r.status,
        r.text()
    );
    let mut on_jan2 = 0;
    for b in app.list_all_bookings(net.pk(), "").await {
        let active =
            !["cancelled", "failed", "no_show"].contains(&b["state"].as_str().unwrap_or(""));
        if active
            && b["provider_id"] == "cp-one"
            && india_day(&str_of(&b["slot"]["start"])) == "2030-01-02"
        {
            on_jan2 += 1;
        }
    }
    assert!(
        on_jan2 <= 1,
        "cp-one (daily_capacity 1) holds {on_jan2} bookings on 2030-01-02 after the reschedule \
         (answer {} {})",
        r.status,
        r.text()
    );
}
