//! One helper per endpoint, named after what it does. Helpers return the raw [`Resp`];
//! the test decides which status it expects.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::{Resp, TestApp, ADMIN_TOKEN};

impl TestApp {
    // ---- admin -------------------------------------------------------------------------

    pub(crate) async fn put_partner(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("/v1/admin/partners/{id}"), ADMIN_TOKEN, body)
            .await
    }

    /// Issues a partner key (asserts 201).
    pub(crate) async fn partner_key(&self, id: &str) -> String {
        let r = self
            .post(
                &format!("/v1/admin/partners/{id}/keys"),
                ADMIN_TOKEN,
                &json!({}),
            )
            .await;
        key_of(&r)
    }

    pub(crate) async fn put_catalog(&self, code: &str, body: &Value) -> Resp {
        self.put(&format!("/v1/admin/catalog/{code}"), ADMIN_TOKEN, body)
            .await
    }

    pub(crate) async fn put_provider(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("/v1/admin/providers/{id}"), ADMIN_TOKEN, body)
            .await
    }

    /// Issues a provider key (asserts 201).
    pub(crate) async fn provider_key(&self, id: &str) -> String {
        let r = self
            .post(
                &format!("/v1/admin/providers/{id}/keys"),
                ADMIN_TOKEN,
                &json!({}),
            )
            .await;
        key_of(&r)
    }

    pub(crate) async fn put_operator(&self, id: &str, role: &str) -> Resp {
        let body = json!({"name": format!("Operator {id}"), "role": role});
        self.put(&format!("/v1/admin/operators/{id}"), ADMIN_TOKEN, &body)
            .await
    }

    /// Creates an operator with `role` and issues its key (asserts success).
    pub(crate) async fn operator_key(&self, id: &str, role: &str) -> String {
        let r = self.put_operator(id, role).await;
        assert!(
            r.status == 200 || r.status == 201,
            "PUT operator {id}: {} {}",
            r.status,
            r.text()
        );
        let r = self
            .post(
                &format!("/v1/admin/operators/{id}/keys"),
                ADMIN_TOKEN,
                &json!({}),
            )
            .await;
        key_of(&r)
    }

    // ---- partner -----------------------------------------------------------------------

    pub(crate) async fn put_policy(&self, key: &str, id: &str, body: &Value) -> Resp {
        self.put(&format!("/v1/policies/{id}"), key, body).await
    }

    pub(crate) async fn get_policy(&self, key: &str, id: &str) -> Resp {
        self.get(&format!("/v1/policies/{id}"), Some(key)).await
    }

    pub(crate) async fn put_member(&self, key: &str, id: &str, body: &Value) -> Resp {
        self.put(&format!("/v1/members/{id}"), key, body).await
    }

    pub(crate) async fn get_member(&self, key: &str, id: &str) -> Resp {
        self.get(&format!("/v1/members/{id}"), Some(key)).await
    }

    pub(crate) async fn entitlements(&self, key: &str, member_id: &str) -> Resp {
        self.get(&format!("/v1/members/{member_id}/entitlements"), Some(key))
            .await
    }

    pub(crate) async fn create_booking(&self, key: &str, body: &Value) -> Resp {
        self.post("/v1/bookings", key, body).await
    }

    pub(crate) async fn create_booking_idem(&self, key: &str, idem: &str, body: &Value) -> Resp {
        self.post_idem("/v1/bookings", key, idem, body).await
    }

    pub(crate) async fn get_booking(&self, key: &str, id: &str) -> Resp {
        self.get(&format!("/v1/bookings/{id}"), Some(key)).await
    }

    /// `GET /v1/bookings?{query}` (query without the `?`).
    pub(crate) async fn list_bookings(&self, key: &str, query: &str) -> Resp {
        self.get(&format!("/v1/bookings?{query}"), Some(key)).await
    }

    /// Follows `next_cursor` to the end (limit 200 per page) and returns every item.
    /// Panics if a page repeats an id or the cursor chain does not end within 1000 pages.
    pub(crate) async fn list_all_bookings(&self, key: &str, query: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut q = format!("limit=200&{query}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let page = self.list_bookings(key, &q).await.ok(200);
            for item in page["items"].as_array().expect("items array") {
                let id = item["id"].as_str().expect("item id").to_string();
                assert!(seen.insert(id.clone()), "list returned {id} twice");
                items.push(item.clone());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return items,
            }
        }
        panic!("cursor chain did not end after 1000 pages");
    }

    pub(crate) async fn cancel_booking(&self, key: &str, id: &str, reason: &str) -> Resp {
        self.post(
            &format!("/v1/bookings/{id}/cancel"),
            key,
            &json!({ "reason": reason }),
        )
        .await
    }

    pub(crate) async fn reschedule(&self, key: &str, id: &str, start: &str, end: &str) -> Resp {
        let body = json!({"slot": {"start": start, "end": end}});
        self.post(&format!("/v1/bookings/{id}/reschedule"), key, &body)
            .await
    }

    pub(crate) async fn timeline(&self, key: &str, id: &str) -> Resp {
        self.get(&format!("/v1/bookings/{id}/timeline"), Some(key))
            .await
    }

    // ---- provider ----------------------------------------------------------------------

    /// `POST /v1/provider/bookings/{id}/events` with `{type: event}`.
    pub(crate) async fn provider_event(&self, key: &str, id: &str, event: &str) -> Resp {
        self.provider_event_with(key, id, &json!({ "type": event }))
            .await
    }

    /// `POST /v1/provider/bookings/{id}/events` with a full event body.
    pub(crate) async fn provider_event_with(&self, key: &str, id: &str, body: &Value) -> Resp {
        self.post(&format!("/v1/provider/bookings/{id}/events"), key, body)
            .await
    }

    /// `GET /v1/provider/bookings` (optionally `?state=`).
    pub(crate) async fn provider_bookings(&self, key: &str, state: Option<&str>) -> Resp {
        let path = match state {
            Some(s) => format!("/v1/provider/bookings?state={s}"),
            None => "/v1/provider/bookings".to_string(),
        };
        self.get(&path, Some(key)).await
    }
}

#[track_caller]
fn key_of(r: &Resp) -> String {
    let body = r.ok(201);
    body["key"]
        .as_str()
        .unwrap_or_else(|| panic!("key response without `key`: {body}"))
        .to_string()
}

/// Percent-encodes a query parameter value.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
