//! The fast telemetry path: scrape the proxies' own stats pages (`:15090/stats/prometheus`,
//! Istio's names and labels) directly, and build the same [`Observation`] the Prometheus
//! adapter builds from the same counters — for the bundled mesh, where no Prometheus need
//! exist, and beside Prometheus where a loop should react faster than its scrape interval.
//!
//! Each target is one pod's destination-side proxy (`reporter="destination"`, as the Prometheus
//! adapter reads): the target's name is the pod label Prometheus' relabelling would have
//! given it. [`ProxyScraper::scrape`] fetches every target once (a background task calls it
//! every `scrape_every`); [`ObservationSource::observe`] reads the windows from the history.
//!
//! Failures never lead to an action: a target that cannot be reached makes the next
//! observation [`TelemetryError::Unavailable`], a page that is not valid exposition text (the
//! line is named) or has impossible counts makes it [`TelemetryError::Malformed`]; the bad
//! page is not recorded. CPU utilisation is not in the proxies' stats: it is NaN on this path.
//!
//! * [`text`] — the exposition-format parser.
//! * [`history`] — successive scrapes → per-step increases → the adapter's answers.

pub mod history;
pub mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use homeostat_models::governor::Observation;

use super::fanout::{Batch, ServiceKey};
use super::promql::Labels;
use super::source::grid_of;
use super::{ObservationSource, ObserveRequest, TelemetryError};
use history::{History, Scrape};

/// One proxy to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The pod the proxy serves (the Observation's endpoint name).
    pub pod: String,
    /// `http://10.0.0.7:15090/stats/prometheus`.
    pub url: String,
}

impl Target {
    /// Parses `pod=http://host:port/stats/prometheus` (or `pod=host:port`, the path and scheme
    /// being Istio's defaults).
    pub fn parse(s: &str) -> Result<Target, String> {
        let (pod, url) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected pod=http://host:15090/stats/prometheus"))?;
        if pod.is_empty() || url.is_empty() {
            return Err(format!("{s:?}: pod and address must not be empty"));
        }
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}/stats/prometheus")
        };
        url.parse::<http::Uri>()
            .map_err(|e| format!("{s:?}: {url:?} is not a URL: {e}"))?;
        Ok(Target {
            pod: pod.to_owned(),
            url,
        })
    }
}

/// How to scrape.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub targets: Vec<Target>,
    /// Longest wait for one page; past it the target counts as unavailable.
    pub timeout: Duration,
    /// History kept (the longest lookback of the policies, plus a step).
    pub retain: Duration,
    /// Largest page accepted (a proxy's page is bounded by its configuration: ~70 lines per
    /// cluster and response code).
    pub max_page_bytes: usize,
}

impl ScrapeConfig {
    pub fn new(targets: Vec<Target>) -> ScrapeConfig {
        ScrapeConfig {
            targets,
            timeout: Duration::from_secs(2),
            retain: Duration::from_secs(3600 + 60),
            max_page_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    history: History,
    /// The last failure of each target, cleared by its next good scrape.
    failed: BTreeMap<String, TelemetryError>,
}

/// Scrapes the proxies and serves Observations from what it scraped.
#[derive(Clone)]
pub struct ProxyScraper {
    cfg: Arc<ScrapeConfig>,
    client: Client<HttpConnector, Empty<Bytes>>,
    state: Arc<Mutex<State>>,
    labels: Labels,
}

impl ProxyScraper {
    pub fn new(cfg: ScrapeConfig) -> ProxyScraper {
        ProxyScraper {
            cfg: Arc::new(cfg),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            state: Arc::default(),
            labels: Labels::default(),
        }
    }

    /// Scrapes every target once, stamping the pages with `now` (unix seconds).
    pub async fn scrape(&self, now: f64) {
        let pages = futures::future::join_all(
            self.cfg
                .targets
                .iter()
                .map(|t| async move { (t, self.fetch(t).await) }),
        )
        .await;
        for (t, page) in pages {
            self.record(&t.pod, now, page.and_then(|text| parse_page(&t.url, &text)));
        }
    }

    /// Records the outcome of one scrape of `pod` at `now`.
    pub fn record(&self, pod: &str, now: f64, scrape: Result<Scrape, TelemetryError>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match scrape {
            Ok(s) => {
                st.failed.remove(pod);
                st.history.push(pod, now, s, self.cfg.retain.as_secs_f64());
            }
            Err(e) => {
                tracing::warn!(pod, error = %e, "proxy scrape failed");
                st.failed.insert(pod.to_owned(), e);
            }
        }
    }

    /// Scrapes every `every` until the task is dropped.
    pub fn spawn(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.scrape(unix_now()).await;
            }
        })
    }

    async fn fetch(&self, t: &Target) -> Result<String, TelemetryError> {
        let unavailable = |m: String| TelemetryError::Unavailable(format!("{}: {m}", t.url));
        let req = http::Request::get(&t.url)
            .body(Empty::new())
            .map_err(|e| TelemetryError::Malformed(format!("{}: {e}", t.url)))?;
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(unavailable(format!("answered {}", resp.status())));
            }
            let body = Limited::new(resp.into_body(), self.cfg.max_page_bytes)
                .collect()
                .await
                .map_err(|e| unavailable(format!("reading the page: {e}")))?
                .to_bytes();
            String::from_utf8(body.to_vec()).map_err(|_| {
                TelemetryError::Malformed(format!("{}: the page is not UTF-8 text", t.url))
            })
        };
        tokio::time::timeout(self.cfg.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(unavailable(format!(
                    "no page within {:?}",
                    self.cfg.timeout
                )))
            })
    }

    /// The Observation of `req` from the scrapes so far.
    pub fn observation(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = st.failed.values().next() {
            return Err(e.clone());
        }
        let grid = grid_of(req, req.end);
        let asked = BTreeSet::from([ServiceKey::of(req)]);
        let answers = st.history.answers(&grid, &asked, &self.labels.pod);
        drop(st);
        Batch::build(grid, asked, &answers, &self.labels)?.observation(req)
    }
}

impl ObservationSource for ProxyScraper {
    async fn observe(&self, req: &ObserveRequest) -> Result<Observation, TelemetryError> {
        self.observation(req)
    }
}

/// A page → the series this adapter reads; a bad page is `Malformed`, naming `url` and line.
pub fn parse_page(url: &str, text: &str) -> Result<Scrape, TelemetryError> {
    let samples = text::parse(text)
        .map_err(|e| TelemetryError::Malformed(format!("{url}: not Prometheus text: {e}")))?;
    Scrape::of(&samples, url)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests;
