//! `GET /v1/bookings`: filters and cursor pagination.

use std::collections::HashSet;

use serde_json::Value;

use crate::harness::{str_of, urlencode, TestApp, World};

#[tokio::test]
async fn list_filters_by_state_and_partner_ref_and_paginates() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;
    let mut ids = Vec::new();
    for n in 0..5 {
        let b = app
            .create_booking(&pa.key, &pa.booking(n % 4, &format!("list-{n}")))
            .await
            .ok(201);
        ids.push((str_of(&b["id"]), str_of(&b["provider_id"])));
    }
    let mut confirmed = HashSet::new();
    for (id, pid) in &ids[..2] {
        app.provider_event(&w.provider(pid).key, id, "accept")
            .await
            .ok(200);
        confirmed.insert(id.clone());
    }

    let ids_of = |page: &Value| -> HashSet<String> {
        page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items array: {page}"))
            .iter()
            .map(|b| str_of(&b["id"]))
            .collect()
    };
    let page = app.list_bookings(&pa.key, "state=confirmed").await.ok(200);
    assert_eq!(ids_of(&page), confirmed, "state=confirmed: {page}");
    assert!(page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|b| b["state"] == "confirmed"));
    let page = app
        .list_bookings(&pa.key, "state=pending_provider")
        .await
        .ok(200);
    let pending: HashSet<String> = ids[2..].iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(ids_of(&page), pending, "state=pending_provider: {page}");

    let page = app
        .list_bookings(&pa.key, "partner_ref=list-3")
        .await
        .ok(200);
    assert_eq!(
        ids_of(&page),
        HashSet::from([ids[3].0.clone()]),
        "partner_ref=list-3: {page}"
    );
    assert_eq!(page["items"][0]["partner_ref"], "list-3");
    let page = app.list_bookings(&pa.key, "partner_ref=nope").await.ok(200);
    assert!(ids_of(&page).is_empty(), "partner_ref=nope: {page}");

    let member = &pa.members[1];
    let page = app
        .list_bookings(&pa.key, &format!("member_id={member}"))
        .await
        .ok(200);
    assert_eq!(
        ids_of(&page),
        HashSet::from([ids[1].0.clone()]),
        "member_id filter: {page}"
    );

    // Cursor pagination, 2 per page, newest first, every booking exactly once.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    for _ in 0..10 {
        let page = app.list_bookings(&pa.key, &query).await.ok(200);
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2, "page larger than limit: {page}");
        seen.extend(items.iter().map(|b| str_of(&b["id"])));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("limit=2&cursor={}", urlencode(c)),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().map(|(i, _)| i.clone()).collect();
    assert_eq!(seen, newest_first, "paginated listing (want newest first)");
    assert_eq!(app.list_all_bookings(&pa.key, "").await.len(), 5);
}
