//! Shared by the integration tests: start a proxy from YAML on ephemeral ports, send requests,
//! scrape and parse its stats.

#![allow(dead_code)] // each test binary uses a different part of it

pub use homeostat_proxy::test_upstream as upstream;

use bytes::Bytes;
use homeostat_proxy::config::Bootstrap;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::net::SocketAddr;

pub fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts a proxy from bootstrap YAML in which listener and admin addresses may be port 0.
pub async fn proxy(yaml: &str) -> homeostat_proxy::Running {
    let b = Bootstrap::parse("test.yaml", yaml).expect("valid test bootstrap");
    homeostat_proxy::start(b).await.expect("proxy starts")
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub fn h2_client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new())
}

/// GET `http://{addr}{path}` with `Host: {host}`; returns status, the flags header, body.
pub async fn get(
    c: &TestClient,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> (u16, String, String) {
    let req = hyper::Request::get(format!("http://{addr}{path}"))
        .header(hyper::header::HOST, host)
        .body(Full::new(Bytes::new()))
        .expect("request");
    send(c, req).await
}

pub async fn send(c: &TestClient, req: hyper::Request<Full<Bytes>>) -> (u16, String, String) {
    let resp = c.request(req).await.expect("proxy answers");
    let status = resp.status().as_u16();
    let flags = resp
        .headers()
        .get("x-homeostat-flags")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, flags, String::from_utf8_lossy(&body).into_owned())
}

/// The admin stats page as text.
pub async fn scrape(admin: SocketAddr) -> String {
    let (status, _, body) = get(&client(), admin, "admin", "/stats/prometheus").await;
    assert_eq!(status, 200);
    body
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub value: f64,
}

/// A strict parser of the text exposition format's sample lines (no timestamps, as we write
/// none): `name{k="v",...} value`, with `\\`, `\"` and `\n` escapes. Panics on anything else,
/// which is the point.
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment line {line:?}");
        let (head, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match head.split_once('{') {
            None => (head.to_owned(), HashMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                (name.to_owned(), parse_labels(body, line))
            }
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in {line:?}"
        );
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

fn parse_labels(body: &str, line: &str) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(
            chars.next(),
            Some('"'),
            "label {key:?} not quoted in {line:?}"
        );
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        }
        assert!(
            labels.insert(key.clone(), value).is_none(),
            "duplicate label {key} in {line:?}"
        );
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("unexpected {c:?} after a label in {line:?}"),
        }
    }
    labels
}

/// Sum of the samples named `name` whose labels include all of `matching`.
pub fn sum(samples: &[Sample], name: &str, matching: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            matching
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}
