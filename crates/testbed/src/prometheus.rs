//! A real Prometheus (Debian's package `prometheus`) for tests and benchmarks of Gantry's
//! utilisation and cost features: Gantry must read what Prometheus answers, including its
//! errors and its outages, and a stub would only answer what we think it answers.
//!
//! One Prometheus per [`Prometheus::start`], supervised like the testbed's control planes (it
//! dies with the test process), on a free loopback port, with its configuration and data in
//! a temporary directory removed when it is dropped. It scrapes its targets every second, so
//! a value set on a [`DcgmExporter`](crate::dcgm::DcgmExporter) is queryable within about
//! two seconds. [`stop`](Prometheus::stop) and [`start_again`](Prometheus::start_again) give
//! an outage on the same address with the data kept; [`backfill`](Prometheus::backfill)
//! loads history written by [`History`](crate::dcgm::History) with `promtool`.
//!
//! Retention is ten years: Prometheus measures retention from its newest block, and its
//! default of 15 days would delete a backfilled month. Queries see the default 5-minute
//! lookback, and a range query may return at most 11,000 points per series (30 days needs a
//! step of 4 minutes or more).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::process::{Process, SpawnSpec, Supervisor, free_port, log_tail, stop_all};
use crate::{Error, Result};

/// How long Prometheus gets to close its database between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long it may take to become ready (a restart replays its write-ahead log first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest block `promtool` writes: what Prometheus itself compacts to by default (31 days,
/// which promtool rounds down to its nearest block range, 486 h). The 2 h default would write
/// 360 blocks for a month and read the whole input once per block.
const BACKFILL_BLOCK: &str = "744h";

/// A running (or stopped) Prometheus. Dropping it stops it and removes its directory.
pub struct Prometheus {
    program: PathBuf,
    promtool: PathBuf,
    dir: PathBuf,
    port: u16,
    supervisor: Supervisor,
    process: Process,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`, job
    /// `dcgm-exporter`) every second, and waits until it is ready.
    pub async fn start(targets: &[String]) -> Result<Prometheus> {
        let program = find_program("prometheus")?;
        let promtool = find_program("promtool")?;
        let dir = unique_temp_dir();
        std::fs::create_dir_all(dir.join("data")).map_err(Error::io(format!("creating {}", dir.display())))?;
        let targets: Vec<String> = targets.iter().map(|t| serde_json::Value::from(t.as_str()).to_string()).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n- job_name: dcgm-exporter\n  static_configs:\n  - targets: [{}]\n",
            targets.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(Error::io(format!("writing {}", config_path.display())))?;
        let supervisor = Supervisor::start()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // A fresh connection per query: a kept-alive one outlives a stop and fails with
            // "connection closed" instead of "connection refused".
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| failure(ErrorKind::Other, "building an HTTP client", e.to_string()))?;
        let port = free_port()?;
        let child = supervisor.spawn(spec(&program, &dir, port)).await?;
        let log = dir.join("prometheus.log");
        let mut prometheus =
            Prometheus { program, promtool, dir, port, supervisor, process: Process::new(child, log), http };
        // From here on an error drops `prometheus`, which stops it and removes its directory.
        for attempt in 1.. {
            match prometheus.wait_ready().await {
                Ok(()) => break,
                // Someone took the port between `free_port` and Prometheus binding it.
                Err(e) if attempt < 5 && log_tail(&prometheus.process.log, 30).contains("address already in use") => {
                    tracing::warn!(port = prometheus.port, "Prometheus's port was taken, retrying on another: {e}");
                    stop_all(&[&prometheus.process], STOP_GRACE);
                    prometheus.port = free_port()?;
                    let child = prometheus
                        .supervisor
                        .spawn(spec(&prometheus.program, &prometheus.dir, prometheus.port))
                        .await?;
                    prometheus.process.replace(child);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(prometheus)
    }

    /// `http://127.0.0.1:<port>`, the same across [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its directory: `prometheus.yml`, `prometheus.log`, `data/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id while it runs; `None` once stopped or exited.
    pub fn pid(&self) -> Option<u32> {
        self.process.exit_status().is_none().then(|| self.process.pid()).flatten()
    }

    /// Stops Prometheus (SIGTERM; SIGKILL after 10 s). Queries then fail with an
    /// [`Error::Io`] of kind `ConnectionRefused`.
    pub fn stop(&self) {
        stop_all(&[&self.process], STOP_GRACE);
    }

    /// Starts Prometheus again, on the same port with the same data, and waits until it is
    /// ready. Does nothing if it is running.
    pub async fn start_again(&self) -> Result<()> {
        if self.pid().is_some() {
            return Ok(());
        }
        let child = self.supervisor.spawn(spec(&self.program, &self.dir, self.port)).await?;
        self.process.replace(child);
        self.wait_ready().await
    }

    /// An instant query now; returns the response's `data` (`resultType`, `result`). Errors
    /// are [`Error::Io`]: kind `ConnectionRefused` while stopped, `InvalidInput` with
    /// Prometheus's own message when it refuses the query.
    pub async fn query(&self, promql: &str) -> Result<serde_json::Value> {
        self.api("query", &[("query", promql.to_string())]).await
    }

    /// An instant query at `time`.
    pub async fn query_at(&self, promql: &str, time: SystemTime) -> Result<serde_json::Value> {
        self.api("query", &[("query", promql.to_string()), ("time", seconds(time))]).await
    }

    /// A range query from `start` to `end` (both included) every `step`; returns `data`
    /// (`resultType: matrix`).
    pub async fn query_range(
        &self,
        promql: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<serde_json::Value> {
        let step = format!("{}.{:03}", step.as_secs(), step.subsec_millis());
        self.api(
            "query_range",
            &[("query", promql.to_string()), ("start", seconds(start)), ("end", seconds(end)), ("step", step)],
        )
        .await
    }

    /// Loads the samples of an OpenMetrics file (timestamps required; see
    /// [`History::write_openmetrics`](crate::dcgm::History::write_openmetrics)) into the
    /// database: `promtool tsdb create-blocks-from openmetrics` writes blocks beside it while
    /// Prometheus runs, then Prometheus is stopped, the blocks moved in, and started again.
    /// Leave out the last 3 hours: Prometheus's documentation calls backfilling the range of
    /// the head block it is still writing unsafe.
    pub async fn backfill(&self, openmetrics: &Path) -> Result<()> {
        let staging = self.dir.join("backfill");
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(Error::io(format!("creating {}", staging.display())))?;
        let log = self.dir.join("promtool.log");
        let input =
            std::path::absolute(openmetrics).map_err(Error::io(format!("resolving {}", openmetrics.display())))?;
        let mut child = self
            .supervisor
            .spawn(SpawnSpec {
                program: self.promtool.clone(),
                args: vec![
                    "tsdb".into(),
                    "create-blocks-from".into(),
                    "openmetrics".into(),
                    format!("--max-block-duration={BACKFILL_BLOCK}"),
                    input.display().to_string(),
                    staging.display().to_string(),
                ],
                log: log.clone(),
                cwd: self.dir.clone(),
                env: Vec::new(),
            })
            .await?;
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .map_err(|e| failure(ErrorKind::Other, "waiting for promtool", e.to_string()))?
            .map_err(Error::io("waiting for promtool"))?;
        if !status.success() {
            return Err(failure(
                ErrorKind::InvalidData,
                format!("backfilling {} with promtool", openmetrics.display()),
                format!("{status}; last lines of {}:\n{}", log.display(), log_tail(&log, 30)),
            ));
        }
        self.stop();
        let blocks = std::fs::read_dir(&staging).map_err(Error::io(format!("reading {}", staging.display())))?;
        for block in blocks {
            let block = block.map_err(Error::io(format!("reading {}", staging.display())))?;
            let to = self.dir.join("data").join(block.file_name());
            std::fs::rename(block.path(), &to).map_err(Error::io(format!("moving a block to {}", to.display())))?;
        }
        let _ = std::fs::remove_dir_all(&staging);
        self.start_again().await
    }

    async fn api(&self, endpoint: &str, form: &[(&str, String)]) -> Result<serde_json::Value> {
        let url = format!("{}/api/v1/{endpoint}", self.url());
        let context = format!("querying {url}");
        let response = self
            .http
            .post(&url)
            .form(form)
            .send()
            .await
            .map_err(|e| failure(kind(&e), context.clone(), e.to_string()))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| failure(ErrorKind::InvalidData, context.clone(), format!("{status}: {e}")))?;
        if body["status"] != "success" {
            return Err(failure(
                ErrorKind::InvalidInput,
                context,
                format!("{status}: {}: {}", body["errorType"], body["error"]),
            ));
        }
        Ok(body["data"].clone())
    }

    async fn wait_ready(&self) -> Result<()> {
        let started = Instant::now();
        let ready = format!("{}/-/ready", self.url());
        loop {
            if let Some(status) = self.process.exit_status() {
                return Err(failure(
                    ErrorKind::Other,
                    "starting Prometheus",
                    format!(
                        "it exited ({status}); last lines of {}:\n{}",
                        self.process.log.display(),
                        log_tail(&self.process.log, 30)
                    ),
                ));
            }
            let answer = self.http.get(&ready).timeout(Duration::from_secs(2)).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(failure(
                    ErrorKind::TimedOut,
                    "starting Prometheus",
                    format!(
                        "not ready after {}s; last lines of {}:\n{}",
                        READY_TIMEOUT.as_secs(),
                        self.process.log.display(),
                        log_tail(&self.process.log, 30)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        self.supervisor.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spec(program: &Path, dir: &Path, port: u16) -> SpawnSpec {
    SpawnSpec {
        program: program.to_path_buf(),
        args: vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--storage.tsdb.retention.time=10y".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        log: dir.join("prometheus.log"),
        cwd: dir.to_path_buf(),
        env: Vec::new(),
    }
}

/// `name` on PATH, else in /usr/bin (where Debian puts it, even when PATH is bare).
fn find_program(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            failure(
                ErrorKind::NotFound,
                format!("finding `{name}`"),
                "not on PATH nor in /usr/bin; it comes with Debian's package `prometheus` \
                 (apt-get install prometheus, which scripts/setup.sh does)",
            )
        })
}

/// What went wrong underneath, as the OS said it (`ConnectionRefused` while stopped).
fn kind(error: &reqwest::Error) -> ErrorKind {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind();
        }
        source = e.source();
    }
    if error.is_timeout() { ErrorKind::TimedOut } else { ErrorKind::Other }
}

fn failure(kind: ErrorKind, context: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Io { context: context.into(), source: std::io::Error::new(kind, message.into()) }
}

/// Unix seconds with milliseconds, as the HTTP API takes times.
fn seconds(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

fn unique_temp_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nonce: u32 = rand::random();
    std::env::temp_dir().join(format!("gantry-prometheus-{}-{n}-{nonce:08x}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_the_debian_package() {
        let err = find_program("prometheus-not-installed").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("package `prometheus`") && message.contains("apt-get install"), "{message}");
        assert!(matches!(err, Error::Io { ref source, .. } if source.kind() == ErrorKind::NotFound));
    }

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)), "1700000000.250");
    }
}
