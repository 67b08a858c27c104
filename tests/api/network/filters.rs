//! `GET /v1/admin/providers?pincode=&service=&active=`: `pincode` matches the serviceable
//! pincodes (not the provider's own address), the filters combine, only the admin may list.

use std::collections::BTreeSet;

use serde_json::json;

use super::{lab, Net, MUM};
use crate::harness::{str_of, TestApp, ADMIN_TOKEN};

async fn ids(app: &TestApp, query: &str) -> BTreeSet<String> {
    let r = app
        .get(&format!("/v1/admin/providers{query}"), Some(ADMIN_TOKEN))
        .await
        .ok(200);
    r["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{query}: no items list: {r}"))
        .iter()
        .map(|p| str_of(&p["id"]))
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn admin_provider_list_filters_by_pincode_service_and_active() {
    let app = TestApp::spawn().await;
    let mut net = Net::build(&app).await;
    // fl-a: serves 560001 + 560002, CBC + LIPID, active.
    let mut a = lab(12.9716, 77.5946, "560001");
    a["serviceable_pincodes"] = json!(["560001", "560002"]);
    net.add(&app, "fl-a", &a).await;
    // fl-b: located in 560001 but serves only 560002; CBC only.
    let mut b = lab(12.9720, 77.5950, "560001");
    b["serviceable_pincodes"] = json!(["560002"]);
    b["services"] = json!({"CBC": {"rate_paise": 30_000}});
    net.add(&app, "fl-b", &b).await;
    // fl-c: serves 560001, LIPID only, inactive.
    let mut c = lab(12.9800, 77.6000, "560001");
    c["services"] = json!({"LIPID": {"rate_paise": 55_000}});
    c["active"] = json!(false);
    net.add(&app, "fl-c", &c).await;
    // fl-m: Mumbai.
    net.add(&app, "fl-m", &lab(MUM.0, MUM.1, MUM.2)).await;

    let cases: [(&str, &[&str]); 13] = [
        ("", &["fl-a", "fl-b", "fl-c", "fl-m"]),
        ("?pincode=560001", &["fl-a", "fl-c"]),
        ("?pincode=560002", &["fl-a", "fl-b"]),
        ("?pincode=400001", &["fl-m"]),
        ("?pincode=110001", &[]),
        ("?service=CBC", &["fl-a", "fl-b", "fl-m"]),
        ("?service=LIPID", &["fl-a", "fl-c", "fl-m"]),
        ("?service=XRAY", &[]),
        ("?active=false", &["fl-c"]),
        ("?active=true", &["fl-a", "fl-b", "fl-m"]),
        ("?pincode=560001&service=LIPID", &["fl-a", "fl-c"]),
        ("?pincode=560001&service=LIPID&active=true", &["fl-a"]),
        ("?pincode=560002&service=CBC&active=true", &["fl-a", "fl-b"]),
    ];
    for (q, want) in cases {
        assert_eq!(ids(&app, q).await, set(want), "GET /v1/admin/providers{q}");
    }

    // The items are the providers as configured.
    let r = app
        .get(
            "/v1/admin/providers?pincode=560002&service=CBC&active=true",
            Some(ADMIN_TOKEN),
        )
        .await
        .ok(200);
    let fl_b = r["items"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == "fl-b"))
        .unwrap_or_else(|| panic!("fl-b not listed: {r}"))
        .clone();
    assert_eq!(fl_b["serviceable_pincodes"], json!(["560002"]), "{fl_b}");
    assert_eq!(fl_b["location"]["pincode"], "560001", "{fl_b}");
    assert_eq!(fl_b["services"]["CBC"]["rate_paise"], 30_000, "{fl_b}");
    assert_eq!(fl_b["active"], true, "{fl_b}");

    // A change of the network shows at once.
    let mut c_on = c.clone();
    c_on["active"] = json!(true);
    app.put_provider("fl-c", &c_on).await.ok(200);
    assert_eq!(ids(&app, "?active=false").await, set(&[]));
    assert_eq!(
        ids(&app, "?active=true&pincode=560001").await,
        set(&["fl-a", "fl-c"])
    );

    // Bad filter values are 400; only the admin may list the network.
    app.get("/v1/admin/providers?active=maybe", Some(ADMIN_TOKEN))
        .await
        .problem(400, "invalid_field");
    app.get("/v1/admin/providers", Some(net.pk()))
        .await
        .problem(403, "forbidden");
    app.get("/v1/admin/providers", Some(net.key("fl-a")))
        .await
        .problem(403, "forbidden");
    app.get("/v1/admin/providers", None)
        .await
        .problem(401, "unauthorized");
}
