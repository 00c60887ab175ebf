//! Accepting connections: HTTP/1.1 and HTTP/2 (prior knowledge / h2c) on one port through
//! hyper-util's `auto` builder, with the bounds from [`Limits`]:
//!
//! * at most `maxConnections` connections: the accept loop waits for a free slot, so extra
//!   clients queue in the kernel backlog instead of in our memory;
//! * HTTP/1 heads capped at `maxHeaderBytes` (hyper answers 431) and due within
//!   `headerReadTimeout` (slowloris: the connection is closed); the same deadline applies to
//!   a new connection's first bytes and to an idle keep-alive connection's next request;
//! * HTTP/2 header lists capped at the same size, `maxConcurrentStreams` per connection, and
//!   keep-alive pings that drop a peer that stopped answering.
//!
//! Shutdown is graceful: in-flight requests finish, then connections close.

use crate::clock::duration;
use crate::config::Limits;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The connection builder for `limits`.
pub fn builder(limits: &Limits) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .max_buf_size(limits.max_header_bytes)
        .header_read_timeout(duration(limits.header_read_timeout));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(std::time::Duration::from_secs(30))
        .keep_alive_timeout(std::time::Duration::from_secs(10));
    b
}

/// The HTTP/2 connection preface; hyper-util's `auto` builder reads up to its 24 bytes to tell
/// HTTP/1 from HTTP/2.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until the client has sent enough to tell its protocol: 24 bytes, or fewer that
/// already differ from the HTTP/2 preface. The `auto` builder waits for this without a
/// deadline and hyper's header-read timeout only starts after it, so a client that connects
/// and sends nothing (or a preface byte by byte) would hold a connection slot forever.
/// `false`: closed, failed or too slow.
async fn protocol_known(stream: &TcpStream, within: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 24];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return false,
        };
        if n == 0 {
            return false;
        }
        if n == buf.len() || buf[..n] != H2_PREFACE[..n] {
            return true;
        }
        // A partial preface: wait for more bytes rather than spin on the same peek.
        if tokio::time::timeout_at(deadline, stream.readable())
            .await
            .is_err()
        {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Serves `listener` with `handle` until `shutdown` resolves, then drains.
pub async fn serve<H, F>(
    listener: TcpListener,
    limits: Limits,
    handle: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<hyper::Response<crate::body::ProxyBody>, std::convert::Infallible>>
        + Send
        + 'static,
{
    let builder = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let handle = handle.clone();
        let watcher = graceful.watcher();
        let first_bytes = duration(limits.header_read_timeout);
        tokio::spawn(async move {
            if !protocol_known(&stream, first_bytes).await {
                tracing::debug!(%peer, "no request head in time; closed");
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), service_fn(handle));
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
}
