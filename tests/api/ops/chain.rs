//! The audit chain end to end: exported, re-hashed by an independent verifier, then tampered
//! with underneath the stopped server and found by every verifier.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{cli_verify, python_chain, Ops};
use crate::harness::str_of;

/// A reason with quotes, a backslash, a control character and non-ASCII text, so canonical
/// JSON (escaping, UTF-8) is exercised.
const ODD_REASON: &str = "ಲ್ಯಾಬ್ \"closed\" \\ — ✓ 🧪 \u{7}";

fn toml_path(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

/// Drives some varied activity: bookings, provider events, operator actions, a manual case, a
/// refused command, personal-data reads.
async fn activity(ops: &Ops) {
    let b0 = ops.book(0, "chain-0").await;
    let b1 = ops.book(1, "chain-1").await;
    let (id0, id1) = (str_of(&b0["id"]), str_of(&b1["id"]));
    let p0 = str_of(&b0["provider_id"]);
    ops.app
        .provider_event(ops.provider_key(&p0), &id0, "accept")
        .await
        .ok(200);
    ops.app
        .get(
            &format!("/v1/provider/bookings/{id0}"),
            Some(ops.provider_key(&p0)),
        )
        .await
        .ok(200);
    ops.app
        .get_member(&ops.w.partner.key, &ops.w.partner.members[0])
        .await
        .ok(200);
    let case = ops
        .app
        .post(
            "/v1/ops/exceptions",
            &ops.agent,
            &json!({"booking_id": id1, "reason": ODD_REASON, "severity": "medium"}),
        )
        .await
        .ok(201);
    let cid = str_of(&case["id"]);
    ops.case_verb(&ops.agent, &cid, "acknowledge", &json!({"reason": "mine"}))
        .await
        .ok(200);
    ops.case_verb(&ops.agent, &cid, "acknowledge", &json!({"reason": "again"}))
        .await
        .problem(409, "invalid_transition");
    ops.action(
        &ops.agent,
        &id1,
        &json!({"action": "extend_sla", "extend_by": "10m", "reason": "lab asked"}),
    )
    .await
    .ok(200);
    ops.app
        .cancel_booking(&ops.w.partner.key, &id1, "member travelling")
        .await
        .ok(200);
}

/// The export's lines, parsed, with structural checks: `seq` 1..N, genesis and links.
#[track_caller]
fn parse_export(text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'), "export does not end with a newline");
    let entries: Vec<Value> = text
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("export line is not JSON ({e}): {l}"))
        })
        .collect();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(i as u64 + 1),
            "seq gap at line {i}: {e}"
        );
        let prev = str_of(&e["prev_hash"]);
        let want = if i == 0 {
            "0".repeat(64)
        } else {
            str_of(&entries[i - 1]["hash"])
        };
        assert_eq!(prev, want, "prev_hash of seq {}", i + 1);
        let h = str_of(&e["hash"]);
        assert!(
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "hash is not lowercase hex: {e}"
        );
        assert!(e["at"].is_string() && e["action"].is_string(), "{e}");
        assert!(
            e["actor"]["kind"].is_string() && e["actor"]["id"].is_string(),
            "{e}"
        );
        assert!(
            e["target"]["kind"].is_string() && e["target"]["id"].is_string(),
            "{e}"
        );
        for (k, v) in e.as_object().expect("object") {
            assert!(
                !v.is_null(),
                "fields without a value are omitted, not null: {k} in {e}"
            );
        }
    }
    entries
}

/// The seq of `dxstack audit verify`'s "broken at seq N" line.
#[track_caller]
fn cli_broken_seq(out: &str) -> u64 {
    let tail = out
        .split("broken at seq ")
        .nth(1)
        .unwrap_or_else(|| panic!("CLI output names no broken seq: {out:?}"));
    tail.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("CLI output: {out:?}"))
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("write export");
    path.display().to_string()
}

#[tokio::test]
async fn exported_chain_verifies_independently_and_tampering_is_found_by_every_verifier() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = dir.path().join("data");
    let mut ops = Ops::start(&format!("[store]\npath = {}\n", toml_path(&data))).await;
    activity(&ops).await;

    // Only operators (and admin) read the chain.
    let r = ops
        .app
        .get("/v1/ops/audit/verify", Some(&ops.w.partner.key))
        .await;
    assert!(
        r.status == 403 || r.status == 404,
        "a partner verifying the chain: {} {}",
        r.status,
        r.text()
    );

    // The server's view and the export agree.
    let v = ops.verify().await;
    assert_eq!(v["ok"], true, "{v}");
    let n = v["entries"].as_u64().expect("entries");
    let head = str_of(&v["head_hash"]);
    let text = ops.export().await;
    let entries = parse_export(&text);
    assert_eq!(entries.len() as u64, n, "export lines vs verify.entries");
    assert!(n >= 30, "expected a long chain from the activity, got {n}");
    assert_eq!(str_of(&entries[entries.len() - 1]["hash"]), head);
    assert!(
        text.contains(
            &ODD_REASON
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\u{7}', "\\u0007")
        ),
        "the odd reason is exported as UTF-8 with only the required escapes"
    );

    // An independent verifier (Python hashlib, from the contract) agrees on every hash.
    let original = write(&dir.path().join("export.jsonl"), &text);
    let (code, py) = python_chain(&["verify", &original]).await;
    assert_eq!(code, 0, "python verifier: {py}");
    assert_eq!(py["ok"], true, "{py}");
    assert_eq!(py["entries"].as_u64(), Some(n), "{py}");
    assert_eq!(py["head_hash"], head.as_str(), "{py}");
    assert_eq!(
        py["non_canonical_seqs"],
        json!([]),
        "every exported line is the canonical JSON of its entry"
    );

    // The query API: paging by seq, and the actor / action / day filters.
    let page = ops
        .app
        .get("/v1/ops/audit?limit=5", Some(&ops.agent))
        .await
        .ok(200);
    let first: Vec<u64> = super::items(&page)
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    assert_eq!(first, vec![1, 2, 3, 4, 5], "{page}");
    assert_eq!(page["next_from_seq"].as_u64(), Some(6), "{page}");
    assert_eq!(
        super::items(&page),
        entries[..5].to_vec(),
        "query items are the exported entries"
    );
    let by_agent = ops.audit(&format!("actor_id={}", super::AGENT)).await;
    let want = entries
        .iter()
        .filter(|e| e["actor"]["id"] == super::AGENT)
        .count();
    assert!(want >= 4, "agent entries in the export: {want}");
    assert_eq!(by_agent.len(), want, "actor_id filter");
    let reads = ops.audit("action=member.personal_data_read").await;
    assert_eq!(
        reads.len(),
        entries
            .iter()
            .filter(|e| e["action"] == "member.personal_data_read")
            .count()
    );
    assert!(reads.len() >= 2, "a provider read and a partner read");
    let india_day = |e: &Value| {
        time::OffsetDateTime::parse(
            &str_of(&e["at"]),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339 `at`")
        .to_offset(time::macros::offset!(+5:30))
        .date()
    };
    let (d0, d1) = (
        india_day(&entries[0]),
        india_day(&entries[entries.len() - 1]),
    );
    let all = ops.audit(&format!("from={d0}&to={d1}")).await;
    assert_eq!(
        all.len() as u64,
        n,
        "from/to covering every entry's India day"
    );
    let before = d0.previous_day().expect("a day before");
    assert!(ops.audit(&format!("to={before}")).await.is_empty());
    assert!(ops.audit("from=2099-01-01").await.is_empty());

    // Stop the server; the CLI verifies the stopped store and the file alike.
    let st = ops.app.terminate().await;
    assert!(st.success(), "SIGTERM exit status {st:?}");
    let data_s = data.display().to_string();
    let (code, out) = cli_verify(&["--store", &data_s]).await;
    assert_eq!(code, 0, "CLI --store on a good chain: {out}");
    assert!(
        out.contains(&format!("ok {n} entries")) && out.contains(&head),
        "CLI --store: {out:?} (want {n} entries, head {head})"
    );
    let (code, out) = cli_verify(&["--file", &original]).await;
    assert_eq!(code, 0, "CLI --file on a good export: {out}");
    assert!(
        out.contains(&format!("ok {n} entries")) && out.contains(&head),
        "{out:?}"
    );

    // Tamper with one stored entry in the middle: the manual case's reason.
    let k = entries
        .iter()
        .find(|e| e["action"] == "exception.raised")
        .and_then(|e| e["seq"].as_u64())
        .expect("an exception.raised entry");
    assert!(k > 1 && k < n, "tamper target {k} of {n}");
    {
        let s = store::Store::open(&store::StoreConfig {
            path: data.clone(),
            cache_capacity_bytes: 16 << 20,
        })
        .expect("open the stopped store");
        let mut e = store::audit::get(&s, k)
            .expect("read entry")
            .expect("entry exists");
        assert_eq!(e.reason.as_deref(), Some(ODD_REASON));
        e.reason = Some("nothing happened here".into());
        let forged = store::audit::canonical_json(&serde_json::to_value(&e).expect("to JSON"));
        s.overwrite_raw_for_tests(&store::keys::audit(k), forged.as_bytes())
            .expect("overwrite entry");
    }

    // 1. The CLI on the store.
    let (code, out) = cli_verify(&["--store", &data_s]).await;
    assert_eq!(
        code, 1,
        "CLI --store on a tampered chain must exit 1: {out}"
    );
    assert_eq!(cli_broken_seq(&out), k, "{out}");

    // 2. The API after a restart.
    ops.app.restart().await;
    let v = ops.verify().await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["broken_seq"].as_u64(), Some(k), "{v}");
    assert!(
        v["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "a reason: {v}"
    );

    // 3. The CLI and the Python verifier on a fresh export.
    let text2 = ops.export().await;
    let tampered = write(&dir.path().join("tampered.jsonl"), &text2);
    let (code, out) = cli_verify(&["--file", &tampered]).await;
    assert_eq!(code, 1, "CLI --file on a tampered export: {out}");
    assert_eq!(cli_broken_seq(&out), k, "{out}");
    let (code, py) = python_chain(&["verify", &tampered]).await;
    assert_eq!((code, py["broken_seq"].as_u64()), (1, Some(k)), "{py}");

    // A forger who also re-hashes the entry only moves the break to the next link.
    let forged = dir.path().join("forged.jsonl").display().to_string();
    let (code, f) = python_chain(&["forge", &original, &k.to_string(), &forged]).await;
    assert_eq!(code, 0, "{f}");
    let (code, out) = cli_verify(&["--file", &forged]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(cli_broken_seq(&out), k + 1, "{out}");
    let (_, py) = python_chain(&["verify", &forged]).await;
    assert_eq!(py["broken_seq"].as_u64(), Some(k + 1), "{py}");

    // Bad CLI usage is an error, not a verdict.
    let (code, out) = cli_verify(&[]).await;
    assert_eq!(code, 2, "{out}");
    let (code, out) = cli_verify(&["--file", "/nonexistent/export.jsonl"]).await;
    assert_eq!(code, 2, "{out}");
}
