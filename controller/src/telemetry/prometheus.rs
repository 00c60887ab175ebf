//! The Prometheus HTTP API client: sends a batch's queries (as range queries on the batch's
//! grid) and tells its failures apart.
//!
//! | what happened                                     | error          |
//! |---------------------------------------------------|----------------|
//! | connection refused / reset, no answer in time     | `Unavailable`  |
//! | Prometheus error: timeout, canceled, unavailable, execution, internal | `Unavailable` |
//! | Prometheus error `bad_data` (it rejects our query) | `Malformed`    |
//! | an answer that is not the API's JSON, or not a matrix, or off the grid | `Malformed` |
//!
//! Every error names the query. Queries are POSTed: a batch's service set can be long.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use prometheus_http_query::{Client, Error};

use super::TelemetryError;
use super::fanout::{Answer, Batch, ServiceKey};
use super::grid::Grid;
use super::promql::{self, Labels, Level, Selection, Signal};

/// How to reach and read one Prometheus (or Thanos Query / Mimir) endpoint.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.istio-system:9090`.
    pub url: String,
    /// Label names of the scrape configuration.
    pub labels: Labels,
    /// How often Prometheus scrapes the sidecars, seconds (Istio's sample: 15).
    pub scrape_interval_seconds: i64,
    /// Longest wait for one query; past it the store counts as unavailable.
    pub timeout: Duration,
}

impl PrometheusConfig {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            labels: Labels::default(),
            scrape_interval_seconds: 15,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A client for one Prometheus.
#[derive(Clone)]
pub struct Prometheus {
    client: Client,
    cfg: Arc<PrometheusConfig>,
}

impl Prometheus {
    pub fn new(cfg: PrometheusConfig) -> Result<Self, TelemetryError> {
        let client = Client::try_from(cfg.url.as_str())
            .map_err(|e| TelemetryError::Malformed(format!("prometheus URL {:?}: {e}", cfg.url)))?;
        Ok(Self {
            client,
            cfg: Arc::new(cfg),
        })
    }

    pub fn config(&self) -> &PrometheusConfig {
        &self.cfg
    }

    /// The queries of a batch over `keys` on `grid`: request and success rate at every level
    /// and as the callers report them (`Level::Callers`), the callers' duration buckets per
    /// service, the duration buckets per pod (the latency quantiles of every level are computed from
    /// them, see `quantiles.rs`), and the two CPU halves per pod.
    pub fn queries(
        &self,
        keys: &BTreeSet<ServiceKey>,
        grid: &Grid,
    ) -> Vec<(Signal, Level, String)> {
        let sel = selection(keys);
        let window = promql::rate_window(grid.step, self.cfg.scrape_interval_seconds);
        let mut out = Vec::new();
        for level in Level::ALL.into_iter().chain([Level::Callers]) {
            for signal in [Signal::RequestRate, Signal::SuccessRate] {
                out.push((
                    signal,
                    level,
                    promql::query(signal, level, &sel, &self.cfg.labels, &window),
                ));
            }
        }
        out.push((
            Signal::LatencyBuckets,
            Level::Callers,
            promql::query(
                Signal::LatencyBuckets,
                Level::Callers,
                &sel,
                &self.cfg.labels,
                &window,
            ),
        ));
        for signal in [
            Signal::LatencyBuckets,
            Signal::CpuUsage,
            Signal::CpuRequests,
        ] {
            out.push((
                signal,
                Level::Pod,
                promql::query(signal, Level::Pod, &sel, &self.cfg.labels, &window),
            ));
        }
        out
    }

    /// Runs every query of the batch and files the answers per service. A long grid over many
    /// services is fetched in consecutive time chunks (see [`chunks`]), each chunk's queries
    /// concurrently. The first failure (in query order) is the batch's error.
    pub async fn fetch(
        &self,
        keys: BTreeSet<ServiceKey>,
        grid: Grid,
    ) -> Result<Batch, TelemetryError> {
        let parts = chunks(grid, keys.len());
        if parts.len() == 1 {
            return self.fetch_one(keys, grid).await;
        }
        // An empty batch ending one chunk-length before the first chunk, advanced by every
        // chunk in turn, ends holding exactly the chunks' points on `grid`.
        let mut batch = Batch::empty(
            Grid {
                end: grid.start() - grid.step,
                ..grid
            },
            keys.clone(),
        );
        for part in parts {
            let chunk = self.fetch_one(keys.clone(), part).await?;
            batch.advance(&chunk)?;
        }
        Ok(batch)
    }

    async fn fetch_one(
        &self,
        keys: BTreeSet<ServiceKey>,
        grid: Grid,
    ) -> Result<Batch, TelemetryError> {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, (signal, level, q)) in self.queries(&keys, &grid).into_iter().enumerate() {
            let this = self.clone();
            tasks.spawn(async move { (i, this.range(signal, level, q, grid).await) });
        }
        let mut answers: Vec<(usize, Result<Answer, TelemetryError>)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let done = joined.map_err(|e| {
                TelemetryError::Unavailable(format!("prometheus query task failed: {e}"))
            })?;
            answers.push(done);
        }
        answers.sort_by_key(|(i, _)| *i);
        let answers = answers
            .into_iter()
            .map(|(_, a)| a)
            .collect::<Result<Vec<_>, _>>()?;
        Batch::build(grid, keys, &answers, &self.cfg.labels)
    }

    async fn range(
        &self,
        signal: Signal,
        level: Level,
        query: String,
        grid: Grid,
    ) -> Result<Answer, TelemetryError> {
        let what = format!("{} by {}", signal.name(), level.name());
        let call = self
            .client
            .query_range(&query, grid.start(), grid.end, grid.step as f64)
            // Ask Prometheus to give up a little before we do, so its own error says why.
            .timeout(self.cfg.timeout.as_millis() as i64)
            .post();
        let answer = match tokio::time::timeout(self.cfg.timeout, call).await {
            Err(_) => {
                return Err(TelemetryError::Unavailable(format!(
                    "{what}: no answer from {} within {:?} (query: {})",
                    self.cfg.url,
                    self.cfg.timeout,
                    promql::abbreviated(&query)
                )));
            }
            Ok(r) => r.map_err(|e| classify(&e, &what, &self.cfg.url, &query))?,
        };
        Answer::from_data(signal, level, query, answer.into_inner().0)
    }
}

/// Sorts a client error into the seam's three kinds.
pub fn classify(e: &Error, what: &str, url: &str, query: &str) -> TelemetryError {
    let msg = format!(
        "{what} from {url}: {e}{} (query: {})",
        source_chain(e),
        promql::abbreviated(query)
    );
    match e {
        Error::Prometheus(p) if p.is_bad_data() => TelemetryError::Malformed(msg),
        Error::Prometheus(_) => TelemetryError::Unavailable(msg),
        Error::Client(c) => match c.inner() {
            // A gateway or proxy in front of Prometheus failing (502, 503, 504, 429).
            Some(r)
                if r.status()
                    .is_some_and(|s| s.is_server_error() || s.as_u16() == 429) =>
            {
                TelemetryError::Unavailable(msg)
            }
            // The body arrived but is not the API's JSON: the store answered nonsense.
            Some(r) if r.is_decode() => TelemetryError::Malformed(msg),
            _ if c.to_string().starts_with("failed to parse") => TelemetryError::Malformed(msg),
            _ => TelemetryError::Unavailable(msg),
        },
        _ => TelemetryError::Malformed(msg),
    }
}

fn source_chain(e: &Error) -> String {
    let mut out = String::new();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The most samples one answer of bucket rates should carry. The bucket answer is the largest
/// (20 series per pod: Istio's 19 bounds and +Inf); at ~170 bytes of JSON for a series' first
/// point and ~15 for each further one (measured in docs/benchmarks-telemetry.md: 200,000
/// series × 8 points = 65 MB), 2,000,000 samples keep an answer near 100 MB and 25 times
/// below Prometheus' default `--query.max-samples` (50,000,000), leaving room for services
/// with many pods.
pub const MAX_BUCKET_SAMPLES: usize = 2_000_000;

/// Series per pod of the bucket answer (Istio's 19 bucket bounds and +Inf).
const BUCKETS_PER_POD: usize = 20;

/// `grid` cut into consecutive grids (oldest first) so that one bucket answer over `services`
/// one-pod services stays within [`MAX_BUCKET_SAMPLES`]: the whole grid when it fits — a
/// steady-state step always does, and so does a 1 h lookback for up to 416 services.
pub fn chunks(grid: Grid, services: usize) -> Vec<Grid> {
    let per_chunk = (MAX_BUCKET_SAMPLES / (services.max(1) * BUCKETS_PER_POD)).max(1);
    if per_chunk >= grid.points {
        return vec![grid];
    }
    let mut out = Vec::new();
    let mut first = 0usize;
    while first < grid.points {
        let points = per_chunk.min(grid.points - first);
        out.push(Grid {
            end: grid.start() + (first + points - 1) as i64 * grid.step,
            step: grid.step,
            points,
        });
        first += points;
    }
    out
}

fn selection(keys: &BTreeSet<ServiceKey>) -> Selection {
    let namespaces: BTreeSet<&String> = keys.iter().map(|k| &k.namespace).collect();
    let services: BTreeSet<&String> = keys.iter().map(|k| &k.service).collect();
    Selection {
        namespaces: namespaces.into_iter().cloned().collect(),
        services: services.into_iter().cloned().collect(),
    }
}

#[cfg(test)]
mod tests;
