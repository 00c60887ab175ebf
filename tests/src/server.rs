//! A real Prometheus over a backfilled TSDB, on a free loopback port.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::tools::Tools;

/// A running Prometheus. Dropping it kills the process and waits for it, so a failing
/// assertion (a panic) still stops it.
pub struct PrometheusServer {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Backfills a TSDB from `openmetrics` with promtool, then serves it.
    pub fn backfilled(tools: &Tools, openmetrics: &str) -> Result<PrometheusServer> {
        Self::backfilled_all(tools, &[openmetrics])
    }

    /// Backfills one TSDB from several OpenMetrics documents (one promtool run each, into the
    /// same directory: Prometheus merges overlapping blocks), then serves it.
    pub fn backfilled_all(tools: &Tools, documents: &[&str]) -> Result<PrometheusServer> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let mut files = Vec::new();
        for (i, text) in documents.iter().enumerate() {
            let om = dir.path().join(format!("incident-{i}.om"));
            std::fs::write(&om, text).context("writing the OpenMetrics file")?;
            files.push(om);
        }
        Self::backfilled_files(tools, dir, &files)
    }

    /// Backfills a TSDB in `dir` from OpenMetrics files, then serves it.
    pub fn backfilled_files(
        tools: &Tools,
        dir: tempfile::TempDir,
        files: &[std::path::PathBuf],
    ) -> Result<PrometheusServer> {
        let tsdb = dir.path().join("tsdb");
        for om in files {
            let out = Command::new(&tools.promtool)
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(om)
                .arg(&tsdb)
                .output()
                .context("running promtool")?;
            if !out.status.success() {
                bail!(
                    "promtool tsdb create-blocks-from openmetrics {} failed: {}{}",
                    om.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Self::start(tools, dir, &tsdb)
    }

    /// The Prometheus process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    fn start(tools: &Tools, dir: tempfile::TempDir, tsdb: &Path) -> Result<PrometheusServer> {
        let config = dir.path().join("prometheus.yml");
        // No scrape jobs: the backfilled blocks are all it serves.
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(&tools.prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Blocks are judged against the newest block, but be explicit: keep everything.
            .arg("--storage.tsdb.retention.time=100y")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting prometheus")?;
        let mut server = PrometheusServer {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        server.wait_ready(port)?;
        Ok(server)
    }

    fn wait_ready(&mut self, port: u16) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!(
                    "prometheus exited ({status}) before ready: {}",
                    self.log_tail()
                );
            }
            if get(port, "/-/ready").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("prometheus not ready after 60 s: {}", self.log_tail())
    }

    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Stops Prometheus now (the "store goes away mid-run" case).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bare HTTP/1.1 GET; the whole response, or None when nothing answers.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
