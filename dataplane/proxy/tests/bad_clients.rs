//! Clients that misbehave get bounded treatment: a clear status code or a closed connection,
//! within the configured limits, and the proxy keeps serving everyone else.

mod support;

use std::time::{Duration, Instant};
use support::upstream::{self, Behavior};
use support::{any_port, client, get, proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn setup() -> (homeostat_proxy::Running, upstream::TestUpstream) {
    let up = upstream::start("up", any_port(), Behavior::default()).await;
    let p = proxy(&format!(
        "admin: {{ address: '127.0.0.1:0' }}
limits: {{ maxHeaderBytes: 8192, headerReadTimeout: 300ms, requestBodyTimeout: 300ms, maxRequestBodyBytes: 1024, maxConnections: 4 }}
listeners: [{{ name: http, address: '127.0.0.1:0', routeConfig: main }}]
routeConfigs:
  - name: main
    virtualHosts: [{{ name: all, domains: ['*'], routes: [{{ prefix: /, weightedClusters: [{{ cluster: c }}] }}] }}]
clusters:
  - {{ name: c, endpoints: [{{ address: '{}' }}] }}",
        up.addr
    ))
    .await;
    (p, up)
}

/// Reads until EOF or `limit`; returns what was read and whether EOF came in time.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(limit, s.read_to_end(&mut buf)).await;
    (String::from_utf8_lossy(&buf).into_owned(), r.is_ok())
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let (p, up) = setup().await;
    let mut s = TcpStream::connect(p.listeners[0]).await.expect("connect");
    let big = "a".repeat(16 * 1024);
    s.write_all(format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let (answer, closed) = read_to_close(&mut s, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert!(closed, "the connection is closed after a 431");
    assert_eq!(up.hits(), 0);
    p.shutdown().await;
}

#[tokio::test]
async fn a_slowloris_head_is_cut_off_at_the_header_read_timeout() {
    let (p, _up) = setup().await;
    let mut s = TcpStream::connect(p.listeners[0]).await.expect("connect");
    let t = Instant::now();
    // Half a request head, then nothing.
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let (_, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
    let took = t.elapsed();
    assert!(closed, "connection still open after 3 s");
    // headerReadTimeout is 300 ms.
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    p.shutdown().await;
}

#[tokio::test]
async fn a_trickled_body_gets_408_and_a_huge_one_413() {
    let (p, up) = setup().await;
    let mut s = TcpStream::connect(p.listeners[0]).await.expect("connect");
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        .await
        .expect("write");
    let (answer, _) = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");

    // Declared too large: refused before reading it.
    let mut s = TcpStream::connect(p.listeners[0]).await.expect("connect");
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    // Chunked, no length: cut off at the 1 KiB limit while reading.
    let mut s = TcpStream::connect(p.listeners[0]).await.expect("connect");
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .expect("write");
    let chunk = format!("800\r\n{}\r\n", "y".repeat(0x800));
    let _ = s.write_all(chunk.as_bytes()).await;
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("answer in time")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert_eq!(up.hits(), 0, "nothing reached the upstream");
    p.shutdown().await;
}

#[tokio::test]
async fn idle_connections_beyond_the_limit_wait_and_others_are_served_after() {
    let (p, _up) = setup().await;
    // maxConnections is 4: four silent clients hold every slot until their header read
    // timeout (300 ms) closes them; a fifth client is accepted after that and served.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(p.listeners[0]).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t = Instant::now();
    let (status, _, body) = get(&client(), p.listeners[0], "x", "/").await;
    assert_eq!((status, body.as_str()), (200, "up\n"));
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "served before a slot was free: {:?}",
        t.elapsed()
    );
    drop(idle);
    p.shutdown().await;
}
