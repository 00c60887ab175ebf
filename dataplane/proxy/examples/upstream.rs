//! The test upstream as a process, for the benchmark (`scripts` in `bench/`):
//! `cargo run --release -p homeostat-proxy --example upstream -- 127.0.0.1:18080 [body-bytes]`.
#![forbid(unsafe_code)]

use homeostat_proxy::test_upstream as upstream;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 18080)));
    let body_bytes = args.next().and_then(|b| b.parse().ok()).unwrap_or(0);
    let up = upstream::start(
        "upstream",
        addr,
        upstream::Behavior {
            body_bytes,
            ..upstream::Behavior::default()
        },
    )
    .await;
    println!("upstream listening on {}", up.addr);
    let _ = tokio::signal::ctrl_c().await;
}
