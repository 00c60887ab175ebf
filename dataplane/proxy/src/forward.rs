//! One downstream request, end to end: route → split → read the body (bounded) → attempts
//! with retries, back-off, per-try and route timeouts → the response, streamed back and
//! metered.
//!
//! Every decision is the dataplane's: the split is a `WeightedSplit`, endpoints come from the
//! cluster's balancer (outlier-filtered), whether to retry is `RetryState::should_retry`, the
//! back-off is `RetryState::start_retry`'s, and the retry budget is the cluster's. This file
//! only moves bytes and reads the clock.
//!
//! Timeouts: the route timeout bounds everything until the response headers (retries and
//! back-offs included); a per-try timeout bounds one attempt. Once the headers are forwarded
//! the body streams without a deadline of its own, as Envoy does with `timeout: 0` on a
//! streaming route. When the route timeout fires the attempt in flight counts as a timeout for
//! outlier detection, as Envoy reports it.

use crate::body::{Metered, ProxyBody, full, local_reply};
use crate::config::Limits;
use crate::pool::{Conn, SendError};
use crate::routing::CompiledRoute;
use crate::snapshot::SnapshotStore;
use crate::telemetry::{RequestRecord, Telemetry, flags};
use crate::upstream::{AttemptResult, Upstream};
use bytes::Bytes;
use homeostat_dataplane::cluster::EndpointId;
use homeostat_dataplane::retry::{AttemptOutcome, RetryState, is_retriable};
use http::header::{self, HeaderMap, HeaderName};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// What every request on one listener needs.
#[derive(Debug)]
pub struct Forwarder {
    pub store: Arc<SnapshotStore>,
    pub telemetry: Arc<Telemetry>,
    pub limits: Limits,
    /// The route configuration this listener serves.
    pub route_config: String,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1): meaningful for one connection only, never forwarded.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::TE,
    header::TRAILER,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers the client named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        h.remove(n);
    }
}

/// How a request ended before an upstream response could be forwarded.
struct LocalReply {
    status: StatusCode,
    flags: &'static str,
    text: &'static str,
}

const fn reply(status: StatusCode, flags: &'static str, text: &'static str) -> LocalReply {
    LocalReply {
        status,
        flags,
        text,
    }
}

impl Forwarder {
    /// The hyper service: never fails, every problem is a response.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Infallible> {
        let start = Instant::now();
        let protocol = if req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
        {
            "grpc"
        } else {
            "http"
        };
        let snapshot = self.store.current();
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
            })
            .unwrap_or("");
        let route = snapshot
            .routes
            .get(&self.route_config)
            .and_then(|t| t.find(host, req.uri().path()))
            .cloned();
        let Some(route) = route else {
            return Ok(self.local(
                start,
                None,
                protocol,
                0,
                reply(StatusCode::NOT_FOUND, flags::NO_ROUTE, "no route\n"),
            ));
        };
        let upstream = route.pick_cluster(rand::random()).clone();
        let (mut parts, body) = req.into_parts();
        // Once per request, not per attempt: every attempt clones these headers.
        strip_hop_by_hop(&mut parts.headers);
        let body = match read_body(body, &parts, &self.limits).await {
            Ok(b) => b,
            Err(r) => return Ok(self.local(start, Some(&upstream), protocol, 0, r)),
        };
        let request_bytes = body.len() as u64;
        match attempts(&upstream, &route, &parts, body).await {
            Ok((mut resp, response_flags, conn)) => {
                strip_hop_by_hop(resp.headers_mut());
                let (parts, incoming) = resp.into_parts();
                let telemetry = self.telemetry.clone();
                let labels = upstream.labels.clone();
                let code = parts.status.as_u16();
                let metered = Metered::new(
                    incoming,
                    Box::new(move |response_bytes, complete| {
                        // The response was read to its end: its connection can serve the next
                        // attempt (HTTP/1.1 only; an HTTP/2 stream needs no return).
                        if complete && let Some((addr, conn)) = conn {
                            upstream.pool().put(addr, conn);
                        }
                        telemetry.record(&RequestRecord {
                            destination: Some(labels),
                            protocol,
                            response_code: code,
                            response_flags,
                            duration_ms: millis(start),
                            request_bytes,
                            response_bytes,
                        });
                    }),
                );
                Ok(Response::from_parts(parts, metered.boxed()))
            }
            Err(r) => Ok(self.local(start, Some(&upstream), protocol, request_bytes, r)),
        }
    }

    fn local(
        &self,
        start: Instant,
        upstream: Option<&Arc<Upstream>>,
        protocol: &'static str,
        request_bytes: u64,
        r: LocalReply,
    ) -> Response<ProxyBody> {
        self.telemetry.record(&RequestRecord {
            destination: upstream.map(|u| u.labels.clone()),
            protocol,
            response_code: r.status.as_u16(),
            response_flags: r.flags,
            duration_ms: millis(start),
            request_bytes,
            response_bytes: r.text.len() as u64,
        });
        local_reply(r.status, r.flags, r.text)
    }
}

fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Reads the whole request body within the limits: 413 past the size limit, 408 past the
/// time limit (a client trickling its body), 400 if the client breaks the stream.
async fn read_body(body: Incoming, parts: &Parts, limits: &Limits) -> Result<Bytes, LocalReply> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_request_body_bytes as u64) {
        return Err(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            flags::DOWNSTREAM_PROTOCOL_ERROR,
            "request body too large\n",
        ));
    }
    let limited = Limited::new(body, limits.max_request_body_bytes);
    let timeout = crate::clock::duration(limits.request_body_timeout);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            flags::DOWNSTREAM_PROTOCOL_ERROR,
            "request body too large\n",
        )),
        Ok(Err(_)) => Err(reply(
            StatusCode::BAD_REQUEST,
            flags::DOWNSTREAM_TERMINATED,
            "request body broken\n",
        )),
        Err(_) => Err(reply(
            StatusCode::REQUEST_TIMEOUT,
            flags::DOWNSTREAM_PROTOCOL_ERROR,
            "request body timeout\n",
        )),
    }
}

/// The upstream request for one attempt: absolute-form for hyper-util's HTTP/2 client, which
/// takes the authority from it; origin-form (`/path?query`) on an HTTP/1.1 connection of our
/// own, which writes the target as given.
fn upstream_request(
    parts: &Parts,
    body: Bytes,
    addr: SocketAddr,
    http2: bool,
) -> Option<Request<ProxyBody>> {
    let uri: Uri = if http2 {
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{addr}{pq}").parse().ok()?
    } else {
        let pq = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Uri::from(pq)
    };
    let mut req = Request::new(full(body));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    // Hop-by-hop headers were stripped from `parts` when the request arrived.
    let mut headers = parts.headers.clone();
    if !headers.contains_key(header::HOST) {
        // An HTTP/2 client names the host in `:authority`; keep it for an HTTP/1.1 upstream.
        // Without either, name the endpoint, as an HTTP client does from its URL.
        let host = match parts.uri.authority() {
            Some(a) => a.as_str().parse().ok(),
            None => addr.to_string().parse().ok(),
        };
        if let Some(v) = host {
            headers.insert(header::HOST, v);
        }
    }
    *req.headers_mut() = headers;
    Some(req)
}

/// An attempt in flight: releases the cluster's counters exactly once, also when the request
/// future is dropped because the client went away.
struct InFlight<'a> {
    upstream: &'a Upstream,
    id: EndpointId,
    started: u64,
    was_retry: bool,
    done: bool,
}

impl InFlight<'_> {
    fn finish(mut self, result: AttemptResult) {
        self.done = true;
        self.upstream
            .end_attempt(self.id, self.started, result, self.was_retry);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.upstream.end_attempt(
                self.id,
                self.started,
                AttemptResult::Cancelled,
                self.was_retry,
            );
        }
    }
}

/// A retry granted by the budget and not yet sent: released if dropped.
struct GrantedRetry<'a>(Option<&'a Upstream>);

impl GrantedRetry<'_> {
    fn sent(mut self) {
        self.0 = None;
    }
}

impl Drop for GrantedRetry<'_> {
    fn drop(&mut self) {
        if let Some(u) = self.0 {
            u.cancel_retry();
        }
    }
}

/// Sends one attempt: over the pool's HTTP/1.1 connections (returning the connection with the
/// response) or hyper-util's HTTP/2 client.
async fn send(
    upstream: &Upstream,
    addr: SocketAddr,
    req: Request<ProxyBody>,
) -> Result<(Response<Incoming>, Option<Conn>), AttemptResult> {
    if upstream.http2() {
        match upstream.client().request(req).await {
            Ok(r) => Ok((r, None)),
            Err(e) if e.is_connect() => Err(AttemptResult::ConnectFailure),
            Err(_) => Err(AttemptResult::Reset),
        }
    } else {
        match upstream.pool().send(addr, req).await {
            Ok((r, conn)) => Ok((r, Some(conn))),
            Err(SendError::Connect) => Err(AttemptResult::ConnectFailure),
            Err(SendError::Reset) => Err(AttemptResult::Reset),
        }
    }
}

/// What a forwarded response carries besides itself: its response flag, and the HTTP/1.1
/// connection to return once its body has ended.
type Forwarded = (Response<Incoming>, &'static str, Option<(SocketAddr, Conn)>);

/// Runs the attempts of one request (see the module docs); returns the response to forward,
/// its response flag and connection, or the local reply.
async fn attempts(
    upstream: &Upstream,
    route: &CompiledRoute,
    parts: &Parts,
    body: Bytes,
) -> Result<Forwarded, LocalReply> {
    let policy = &route.retries;
    let deadline =
        (route.timeout > 0).then(|| Instant::now() + crate::clock::duration(route.timeout));
    let Some((mut id, mut addr)) = upstream.pick() else {
        return Err(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            flags::NO_HEALTHY_UPSTREAM,
            "no healthy upstream\n",
        ));
    };
    let mut retry = RetryState::new();
    let mut tried: Vec<EndpointId> = Vec::with_capacity(1);
    loop {
        tried.push(id);
        let attempt = InFlight {
            upstream,
            id,
            started: upstream.now(),
            was_retry: retry.retries_used() > 0,
            done: false,
        };
        let try_deadline = policy
            .per_try_timeout
            .map(|t| Instant::now() + crate::clock::duration(t));
        let until = match (deadline, try_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let Some(req) = upstream_request(parts, body.clone(), addr, upstream.http2()) else {
            attempt.finish(AttemptResult::Cancelled);
            return Err(reply(
                StatusCode::BAD_REQUEST,
                flags::DOWNSTREAM_PROTOCOL_ERROR,
                "bad request target\n",
            ));
        };
        let sent = send(upstream, addr, req);
        let answer = match until {
            Some(t) => tokio::time::timeout_at(t, sent).await.ok(),
            None => Some(sent.await),
        };
        let (result, response) = match answer {
            None => (AttemptResult::Timeout, None),
            Some(Err(failed)) => (failed, None),
            Some(Ok((r, conn))) => (AttemptResult::Status(r.status().as_u16()), Some((r, conn))),
        };
        attempt.finish(result);
        if deadline.is_some_and(|d| Instant::now() >= d) && response.is_none() {
            return Err(reply(
                StatusCode::GATEWAY_TIMEOUT,
                flags::UPSTREAM_TIMEOUT,
                "upstream request timeout\n",
            ));
        }
        let outcome = match result {
            AttemptResult::Status(code) => AttemptOutcome::Response(code),
            AttemptResult::ConnectFailure => AttemptOutcome::ConnectFailure,
            AttemptResult::Timeout => AttemptOutcome::PerTryTimeout,
            AttemptResult::Reset | AttemptResult::Cancelled => AttemptOutcome::Reset,
        };
        let give_up = |response: Option<(Response<Incoming>, Option<Conn>)>, retry: &RetryState| {
            let exhausted =
                retry.retries_used() >= policy.attempts && is_retriable(policy, outcome);
            match response {
                Some((r, conn)) => Ok((
                    r,
                    if exhausted {
                        flags::RETRY_LIMIT
                    } else {
                        flags::NONE
                    },
                    conn.map(|c| (addr, c)),
                )),
                None => Err(match result {
                    AttemptResult::ConnectFailure => reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        flags::UPSTREAM_CONNECT_FAILURE,
                        "upstream connect error\n",
                    ),
                    AttemptResult::Timeout => reply(
                        StatusCode::GATEWAY_TIMEOUT,
                        flags::UPSTREAM_TIMEOUT,
                        "upstream request timeout\n",
                    ),
                    _ => reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        flags::UPSTREAM_RESET,
                        "upstream reset before response\n",
                    ),
                }),
            }
        };
        if !retry.should_retry(policy, outcome) || !upstream.try_begin_retry() {
            return give_up(response, &retry);
        }
        let granted = GrantedRetry(Some(upstream));
        let wait = crate::clock::duration(retry.start_retry(policy, rand::random()));
        let resume = Instant::now() + wait;
        if deadline.is_some_and(|d| resume >= d) {
            // The back-off would outlast the route: answer now with what we have.
            drop(granted);
            return give_up(response, &retry);
        }
        // The failed response is dropped: its connection cannot be reused mid-body, which is
        // the price of retrying it.
        drop(response);
        tokio::time::sleep_until(resume).await;
        match upstream.pick_retry(&tried, policy) {
            Some((next_id, next_addr)) => {
                granted.sent();
                id = next_id;
                addr = next_addr;
            }
            None => {
                // `pick_retry` already released the retry.
                granted.sent();
                return Err(reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    flags::NO_HEALTHY_UPSTREAM,
                    "no healthy upstream\n",
                ));
            }
        }
    }
}
