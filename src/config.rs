//! Service configuration: `config.toml`, every key optional, unknown keys refused.
//!
//! Human durations (`"30m"`) and sizes (`"1MB"`) are parsed here, at start-up, so a bad value
//! stops the service with a message naming the key instead of failing later.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub store: Store,
    pub admin: Admin,
    pub engine: Engine,
    pub sla: Sla,
    pub webhooks: Webhooks,
    pub routing: Routing,
    pub reconciliation: Reconciliation,
    pub reports: Reports,
    pub exceptions: Exceptions,
    pub limits: Limits,
    pub security: Security,
    pub demo: Demo,
    pub cron: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    pub max_body: HumanSize,
    /// CSV and JSON Lines uploads.
    pub max_upload: HumanSize,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            max_body: HumanSize(1 << 20),
            max_upload: HumanSize(10 << 20),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    pub path: PathBuf,
    /// sled's page cache; bounds the store's share of memory.
    pub cache_capacity: HumanSize,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            path: PathBuf::from("data"),
            cache_capacity: HumanSize(64 << 20),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    pub token: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            token: "change-me".into(),
        }
    }
}

/// The committer's bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Engine {
    /// Commands waiting for the committer before submitters wait.
    pub queue_capacity: usize,
    /// Commands in one group commit at most.
    pub batch_commands_max: usize,
    /// Due timers the timer loop submits at once (a start-up backlog drains in such chunks).
    pub timer_chunk_max: usize,
    /// Write the audit chain. Only benchmarks turn this off, to measure what the chain costs.
    pub audit: bool,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            queue_capacity: 8192,
            batch_commands_max: 512,
            timer_chunk_max: 256,
            audit: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sla {
    pub at_risk_ratio: f64,
    pub reroute_on_acceptance_breach: bool,
}

impl Default for Sla {
    fn default() -> Self {
        Sla {
            at_risk_ratio: 0.8,
            reroute_on_acceptance_breach: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Webhooks {
    pub retry_schedule: Vec<HumanDuration>,
    pub timeout: HumanDuration,
    pub allow_http_hosts: Vec<String>,
}

impl Default for Webhooks {
    fn default() -> Self {
        let d = |s: u64| HumanDuration(Duration::from_secs(s));
        Webhooks {
            retry_schedule: vec![d(5), d(30), d(120), d(600), d(3600), d(21600), d(86400)],
            timeout: d(10),
            allow_http_hosts: vec!["127.0.0.1".into(), "localhost".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routing {
    pub weights: Weights,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            weights: Weights {
                distance: 0.4,
                quality: 0.3,
                load: 0.2,
                price: 0.1,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub distance: f64,
    pub quality: f64,
    pub load: f64,
    pub price: f64,
}

impl From<Weights> for workflows::routing::Weights {
    fn from(w: Weights) -> Self {
        workflows::routing::Weights {
            distance: w.distance,
            quality: w.quality,
            load: w.load,
            price: w.price,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Reconciliation {
    pub tolerance_paise: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reports {
    pub dir: PathBuf,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            dir: PathBuf::from("reports"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Exceptions {
    pub ack_within: HumanDuration,
}

impl Default for Exceptions {
    fn default() -> Self {
        Exceptions {
            ack_within: HumanDuration(Duration::from_secs(15 * 60)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub requests_per_second: u32,
    pub burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            requests_per_second: 200,
            burst: 400,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub master_key_file: PathBuf,
    pub retain_after_policy_end: HumanDuration,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            master_key_file: PathBuf::from("data/master.key"),
            retain_after_policy_end: HumanDuration(Duration::from_secs(3 * 365 * 86_400)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demo {
    pub load_on_empty_store: bool,
}

impl Default for Demo {
    fn default() -> Self {
        Demo {
            load_on_empty_store: true,
        }
    }
}

/// A duration written as `"30m"`, `"2s"`, `"48h"` or `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a human duration such as `"30m"`; used for config and admin payloads alike.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like \"30m\", \"2s\" or \"48h\": {e}"))
}

/// A byte size written as `"1MB"`, `"512KB"`, `"10MiB"` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanSize(pub u64);

impl<'de> Deserialize<'de> for HumanSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(HumanSize(n)),
            Raw::S(s) => parse_size(&s)
                .map(HumanSize)
                .map_err(serde::de::Error::custom),
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size like \"1MB\""))?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        _ => return Err(format!("`{s}` has an unknown unit (use B, KB, MB or GB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

impl Config {
    /// Loads `path` (all keys optional), applies environment overrides and validates.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("cannot read config {}: {e}", path.display()),
        };
        let mut config =
            Config::parse(&text).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        config.apply_env();
        config.validate()?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    fn apply_env(&mut self) {
        if let Ok(t) = std::env::var("DXSTACK_ADMIN_TOKEN") {
            self.admin.token = t;
        }
        if let Ok(l) = std::env::var("DXSTACK_LISTEN") {
            self.server.listen = l;
        }
        if let Ok(p) = std::env::var("DXSTACK_STORE_PATH") {
            self.store.path = PathBuf::from(p);
        }
    }

    /// Checks values that parse but make no sense; the message names the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let r = self.sla.at_risk_ratio;
        anyhow::ensure!(
            r > 0.0 && r < 1.0,
            "[sla] at_risk_ratio must be between 0 and 1 (exclusive), got {r}"
        );
        anyhow::ensure!(
            self.admin.token.len() >= 8,
            "[admin] token must be at least 8 characters"
        );
        anyhow::ensure!(
            self.engine.batch_commands_max >= 1
                && self.engine.queue_capacity >= 1
                && self.engine.timer_chunk_max >= 1,
            "[engine] batch_commands_max, queue_capacity and timer_chunk_max must be at least 1"
        );
        anyhow::ensure!(
            self.server.max_body.0 >= 1024,
            "[server] max_body must be at least 1KB"
        );
        let w = self.routing.weights;
        anyhow::ensure!(
            [w.distance, w.quality, w.load, w.price]
                .iter()
                .all(|x| x.is_finite() && *x >= 0.0),
            "[routing] weights must be non-negative numbers"
        );
        for (job, schedule) in &self.cron {
            anyhow::ensure!(
                !schedule.trim().is_empty(),
                "[cron] {job} has an empty schedule"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses_and_validates() {
        let text = include_str!("../config.toml");
        let c = Config::parse(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.server.max_body.0, 1 << 20);
        assert_eq!(c.webhooks.retry_schedule.len(), 7);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::parse("[server]\nlisten = \"x\"\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse("[exceptions]\nack_within = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("ack_within"), "{e}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1MB"), Ok(1 << 20));
        assert_eq!(parse_size("512 KB"), Ok(512 << 10));
        assert!(parse_size("1 parsec").is_err());
    }
}
