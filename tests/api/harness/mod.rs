//! Black-box harness: starts the real `dxstack` binary on a fresh temp dir and talks HTTP to it.
//!
//! # Contract
//! - `TestApp::spawn()` returns once the server printed its single stdout line
//!   `dxstack listening on http://127.0.0.1:PORT` (deadline [`START_DEADLINE`]).
//! - The child is SIGKILLed when the `TestApp` is dropped; its stderr goes to
//!   `<tempdir>/server.log`, whose tail is shown when start-up fails.
//! - `restart()` starts a new process on the same directory (new port, same data).

mod clock;
mod endpoints;
mod http;
mod world;

pub(crate) use clock::{assert_within, ms, now_ms, rfc3339, sleep_until_ms};
pub(crate) use endpoints::urlencode;
pub(crate) use http::Resp;
pub(crate) use world::{
    member_body, policy_body, str_of, Partner, World, BLR_FULL, SLOT_END, SLOT_START,
};

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The admin token written into every test config.
pub(crate) const ADMIN_TOKEN: &str = "test-admin";

/// How long a server may take to print its listening line, or to stop after SIGTERM.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(30);

const LISTEN_PREFIX: &str = "dxstack listening on ";

/// One running (or stopped) server with its own data directory.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT` of the current process.
    pub(crate) base: String,
    pub(crate) client: reqwest::Client,
    dir: TempDir,
    child: Option<Child>,
}

impl TestApp {
    /// A server with the default test config.
    pub(crate) async fn spawn() -> TestApp {
        TestApp::spawn_with("").await
    }

    /// A server whose config is the test config deep-merged with `extra_toml`.
    pub(crate) async fn spawn_with(extra_toml: &str) -> TestApp {
        let dir = tempfile::Builder::new()
            .prefix("dxstack-test-")
            .tempdir()
            .expect("create tempdir");
        write_config(dir.path(), extra_toml);
        let mut app = TestApp {
            base: String::new(),
            client: http::client(),
            dir,
            child: None,
        };
        app.start().await;
        app
    }

    /// Starts a server with the given extra config and expects it to refuse to start.
    /// Returns everything it wrote (stdout + stderr).
    pub(crate) async fn spawn_expecting_failure(extra_toml: &str) -> String {
        let dir = tempfile::tempdir().expect("create tempdir");
        write_config(dir.path(), extra_toml);
        let child = command(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dxstack");
        let out = tokio::time::timeout(START_DEADLINE, child.wait_with_output())
            .await
            .expect("dxstack with a bad config neither exited nor failed within 30 s")
            .expect("wait for dxstack");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "dxstack started with a bad config (status {:?}); output:\n{text}",
            out.status
        );
        text
    }

    async fn start(&mut self) {
        assert!(self.child.is_none(), "start() while a server is running");
        match launch(self.dir.path()).await {
            Ok((child, base)) => {
                self.child = Some(child);
                self.base = base;
            }
            Err(e) => panic!(
                "dxstack did not start: {e}\n--- server.log tail ---\n{}",
                self.log_tail()
            ),
        }
    }

    /// SIGKILL and reap the process (no chance to flush anything).
    pub(crate) async fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: no server running");
        child.kill().await.expect("SIGKILL dxstack");
    }

    /// SIGTERM and wait (bounded) for the process to exit; returns its exit status.
    pub(crate) async fn terminate(&mut self) -> ExitStatus {
        self.signal_term().await;
        self.wait_exit().await
    }

    /// Sends SIGTERM without waiting (the process keeps running until it decides to stop).
    pub(crate) async fn signal_term(&self) {
        self.signal("TERM").await;
    }

    /// Sends signal `name` (`TERM`, `KILL`, ...) via `kill(1)` without waiting; lets a test
    /// signal the server while its own requests are in flight. Follow with `wait_exit`.
    pub(crate) async fn signal(&self, name: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("signal: no server running");
        let st = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .await
            .expect("run kill");
        assert!(st.success(), "kill -{name} {pid} failed: {st:?}");
    }

    /// Waits (bounded) for the process to exit after a signal; returns its exit status.
    pub(crate) async fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("wait_exit: no server running");
        match tokio::time::timeout(START_DEADLINE, child.wait()).await {
            Ok(status) => status.expect("wait for dxstack"),
            Err(_) => {
                let _ = child.kill().await;
                panic!(
                    "dxstack did not exit within 30 s of SIGTERM; log tail:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Starts a new process on the same data directory (after `kill9` or `terminate`).
    pub(crate) async fn restart(&mut self) {
        self.start().await;
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The last lines the server wrote to stderr (for failure messages).
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Polls `probe` every 100 ms until it returns `Some`, or panics after `deadline` naming `what`.
pub(crate) async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_config(dir: &Path, extra_toml: &str) {
    let path = |p: &str| toml::Value::String(dir.join(p).display().to_string()).to_string();
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\
         [store]\npath = {data}\n\
         [admin]\ntoken = \"{ADMIN_TOKEN}\"\n\
         [demo]\nload_on_empty_store = false\n\
         [limits]\nrequests_per_second = 100000\nburst = 100000\n\
         [security]\nmaster_key_file = {key}\n\
         [reports]\ndir = {reports}\n",
        data = path("data"),
        key = path("master.key"),
        reports = path("reports"),
    );
    let mut table: toml::Table = base.parse().expect("base config parses");
    let extra: toml::Table = extra_toml.parse().expect("extra config parses");
    merge(&mut table, extra);
    let text = toml::to_string(&table).expect("serialise config");
    std::fs::write(dir.join("config.toml"), text).expect("write config.toml");
}

fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        if let (Some(toml::Value::Table(b)), toml::Value::Table(e)) = (base.get_mut(&k), &v) {
            merge(b, e.clone());
            continue;
        }
        base.insert(k, v);
    }
}

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dxstack"));
    cmd.arg("serve")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    // Environment overrides (DXSTACK_ADMIN_TOKEN, DXSTACK_LISTEN, ...) would beat the file.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DXSTACK_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

async fn launch(dir: &Path) -> Result<(Child, String), String> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .map_err(|e| format!("open server.log: {e}"))?;
    let mut child = command(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", env!("CARGO_BIN_EXE_dxstack")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = match tokio::time::timeout(START_DEADLINE, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => {
            let status = child.wait().await.ok();
            return Err(format!(
                "stdout closed before the listening line; exit {status:?}"
            ));
        }
        Ok(Err(e)) => return Err(format!("read stdout: {e}")),
        Err(_) => return Err("no listening line within 30 s".into()),
    };
    let base = line
        .trim()
        .strip_prefix(LISTEN_PREFIX)
        .filter(|url| url.starts_with("http://127.0.0.1:"))
        .ok_or_else(|| format!("first stdout line is not the listening line: {line:?}"))?
        .trim_end_matches('/')
        .to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, base))
}
