//! The cron runner: `[cron]` schedules (seconds first, India time), the manual run endpoint,
//! and start-up refusing an unknown job.

use std::time::Duration;

use serde_json::json;

use super::{assert_within, metric, ms, now_ms};
use crate::harness::{TestApp, World, ADMIN_TOKEN};

const JOB: &str = "purge_idempotency_keys";

async fn ok_runs(app: &TestApp) -> f64 {
    metric(
        app,
        "dxstack_cron_runs_total",
        &[("job", JOB), ("outcome", "ok")],
    )
    .await
}

#[tokio::test]
async fn a_two_second_schedule_runs_the_job_every_slot() {
    let app = TestApp::spawn_with(&format!("[cron]\n{JOB} = \"*/2 * * * * *\"\n")).await;
    // Waiting for wall-clock slots is the point here.
    let before = ok_runs(&app).await;
    tokio::time::sleep(Duration::from_millis(5_000)).await;
    let after = ok_runs(&app).await;
    let runs = after - before;
    // Five seconds hold two or three even-second slots (one more may finish at the edges),
    // and a job runs at most once per slot.
    assert!(
        (2.0..=4.0).contains(&runs),
        "dxstack_cron_runs_total{{job={JOB},outcome=ok}} grew by {runs} in 5 s \
         (from {before} to {after}); want 2..=4 for a */2 s schedule"
    );
    assert_eq!(
        metric(
            &app,
            "dxstack_cron_runs_total",
            &[("job", JOB), ("outcome", "failed")]
        )
        .await,
        0.0,
        "failed runs"
    );
}

#[tokio::test]
async fn the_manual_run_endpoint_runs_a_job_now() {
    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    let pa = &w.partner;

    // A fresh Idempotency-Key record, which the purge (24 h retention) must keep.
    let body = pa.booking(0, "cron-idem");
    let first = app.create_booking_idem(&pa.key, "cron-k1", &body).await;
    first.ok(201);

    let lo = now_ms();
    let r = app
        .post(
            &format!("/v1/admin/jobs/{JOB}/run"),
            ADMIN_TOKEN,
            &json!({}),
        )
        .await;
    let hi = now_ms();
    let run = r.ok(200);
    assert_eq!(run["job"], JOB, "{run}");
    assert_eq!(run["manual"], true, "{run}");
    assert_eq!(run["outcome"], "ok", "{run}");
    let started = ms(&run["started_at"]);
    let finished = ms(&run["finished_at"]);
    assert_within("started_at", started, lo - 1, hi + 1);
    assert_within("finished_at", finished, started, hi + 1);
    assert_within("slot", ms(&run["slot"]), lo - 1_000, hi + 1);
    assert!(
        run["result"]["purged"].is_u64(),
        "result.purged must be a count: {run}"
    );
    assert_eq!(run["result"]["purged"], 0, "nothing is 24 h old: {run}");
    assert_within(
        "result.before (now - 24 h)",
        ms(&run["result"]["before"]),
        lo - 86_400_000 - 1_000,
        hi - 86_400_000 + 1,
    );
    assert!(
        ok_runs(&app).await >= 1.0,
        "the manual run is counted in dxstack_cron_runs_total"
    );

    // The recent record survived: the same key + body replays.
    let again = app.create_booking_idem(&pa.key, "cron-k1", &body).await;
    assert_eq!(again.status, 201, "{}", again.text());
    assert_eq!(
        again.header("idempotent-replayed").as_deref(),
        Some("true"),
        "a fresh Idempotency-Key record was purged"
    );
    assert_eq!(again.bytes, first.bytes, "replayed body differs");

    // Unknown job → 404; the endpoint is admin-only.
    app.post("/v1/admin/jobs/no_such_job/run", ADMIN_TOKEN, &json!({}))
        .await
        .problem(404, "not_found");
    app.post(&format!("/v1/admin/jobs/{JOB}/run"), &pa.key, &json!({}))
        .await
        .problem(403, "forbidden");
}

#[tokio::test]
async fn an_unknown_cron_job_stops_start_up_naming_it() {
    let out =
        TestApp::spawn_expecting_failure("[cron]\nfrobnicate_widgets = \"0 * * * * *\"\n").await;
    assert!(
        out.contains("frobnicate_widgets"),
        "start-up failure does not name the unknown job; output:\n{out}"
    );
}

#[tokio::test]
async fn a_bad_cron_schedule_stops_start_up_naming_the_job() {
    let out =
        TestApp::spawn_expecting_failure(&format!("[cron]\n{JOB} = \"every full moon\"\n")).await;
    assert!(
        out.contains(JOB),
        "start-up failure does not name the job with the bad schedule; output:\n{out}"
    );
}

/// Polls the ok-run counter every 50 ms until it reaches `n`; returns the wall-clock ms.
async fn wait_runs(app: &TestApp, n: f64, deadline: Duration) -> i64 {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let runs = ok_runs(app).await;
        if runs >= n {
            return now_ms();
        }
        assert!(
            tokio::time::Instant::now() < until,
            "{JOB} ran {runs} times, want {n}, within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slot_runs_at_most_once_across_a_restart() {
    // Slots every 4 s (on seconds divisible by 4, which India time shares with UTC).
    let mut app = TestApp::spawn_with(&format!("[cron]\n{JOB} = \"*/4 * * * * *\"\n")).await;
    let ran = wait_runs(&app, 1.0, Duration::from_secs(6)).await;
    let slot = ran / 4_000 * 4_000;
    assert!(
        ran - slot < 1_500,
        "the run of slot {slot} finished only at {ran}"
    );

    // Killed right after the run and back within the same slot: the slot is not run again.
    app.kill9().await;
    app.restart().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = ok_runs(&app).await;
    let checked = now_ms();
    assert!(
        checked < slot + 4_000,
        "restart too slow to check within the slot (checked at {checked}, next slot {})",
        slot + 4_000
    );
    assert_eq!(
        runs,
        0.0,
        "slot {slot} ran again after a restart within it (checked at {checked}); log:\n{}",
        app.log_tail()
    );

    // Down across the next slot: that missed slot runs once at start-up, before slot + 8 s.
    app.kill9().await;
    super::sleep_until_ms(slot + 4_500).await;
    app.restart().await;
    let caught_up = wait_runs(&app, 1.0, Duration::from_secs(3)).await;
    assert!(
        caught_up < slot + 8_000,
        "the missed slot {} was not run at start-up (first run seen at {caught_up})",
        slot + 4_000
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ok_runs(&app).await,
        1.0,
        "the missed slot ran more than once at start-up"
    );
}
