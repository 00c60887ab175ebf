//! A small upstream for tests and the benchmark: a hyper HTTP/1.1 + HTTP/2 server on loopback
//! whose behaviour is set at run time — status, latency, a share of failing requests, the
//! first N requests failing, or resetting the connection instead of answering. It answers with
//! its own name so a test can tell which endpoint served a request, and counts what it got.
//! Used by this crate's tests and benchmark and by the controller's xDS tests, so there is one
//! copy of it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// How the upstream answers.
#[derive(Debug, Clone)]
pub struct Behavior {
    /// Status of a normal answer.
    pub status: u16,
    /// Delay before answering.
    pub latency: Duration,
    /// Every request fails with `fail_status`.
    pub fail_all: bool,
    /// The first `fail_first` requests fail with `fail_status`.
    pub fail_first: u64,
    /// Share of requests failing with `fail_status` (deterministic: request n fails when
    /// ⌊n·rate⌋ > ⌊(n−1)·rate⌋, so exactly ⌊N·rate⌋ of the first N fail).
    pub error_rate: f64,
    pub fail_status: u16,
    /// Failing requests reset the connection instead of answering.
    pub reset: bool,
    /// Bytes of response body (0: the upstream's name and a newline).
    pub body_bytes: usize,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            status: 200,
            latency: Duration::ZERO,
            fail_all: false,
            fail_first: 0,
            error_rate: 0.0,
            fail_status: 503,
            reset: false,
            body_bytes: 0,
        }
    }
}

/// A running upstream.
pub struct TestUpstream {
    pub name: String,
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    behavior: Arc<Mutex<Behavior>>,
}

impl TestUpstream {
    /// Connections accepted so far (a proxy that reuses its connections opens few).
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Changes the behaviour from now on.
    pub fn set(&self, b: Behavior) {
        *self.behavior.lock().expect("behavior lock") = b;
    }
}

/// Starts an upstream named `name` on `addr` (port 0 for any).
pub async fn start(name: &str, addr: SocketAddr, behavior: Behavior) -> TestUpstream {
    let listener = TcpListener::bind(addr).await.expect("bind upstream");
    let addr = listener.local_addr().expect("local addr");
    let hits = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let behavior = Arc::new(Mutex::new(behavior));
    let up = TestUpstream {
        name: name.to_owned(),
        addr,
        hits: hits.clone(),
        connections: connections.clone(),
        behavior: behavior.clone(),
    };
    let name = Bytes::from(format!("{name}\n"));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            connections.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            let (hits, behavior, name) = (hits.clone(), behavior.clone(), name.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (hits, behavior, name) = (hits.clone(), behavior.clone(), name.clone());
                    async move { answer(req, &hits, &behavior, name).await }
                });
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    up
}

/// An error makes hyper reset the stream / close the connection without a response.
#[derive(Debug)]
struct Reset;
impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected reset")
    }
}
impl std::error::Error for Reset {}

async fn answer(
    req: Request<hyper::body::Incoming>,
    hits: &AtomicU64,
    behavior: &Mutex<Behavior>,
    name: Bytes,
) -> Result<Response<Full<Bytes>>, Reset> {
    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
    let b = behavior.lock().expect("behavior lock").clone();
    // Drain the request body so the connection can be reused.
    let _ = req.into_body().collect().await;
    if !b.latency.is_zero() {
        tokio::time::sleep(b.latency).await;
    }
    let by_rate = b.error_rate > 0.0
        && ((n as f64 * b.error_rate).floor() > ((n - 1) as f64 * b.error_rate).floor());
    let fail = b.fail_all || n <= b.fail_first || by_rate;
    if fail && b.reset {
        return Err(Reset);
    }
    let status = if fail { b.fail_status } else { b.status };
    let body = if b.body_bytes > 0 {
        Bytes::from(vec![b'x'; b.body_bytes])
    } else {
        name
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    Ok(r)
}
