//! HTTP/1.1 connections to one cluster's endpoints: per endpoint address, a stack of idle
//! hyper `client::conn::http1` senders. An attempt takes the most recently used idle
//! connection (or opens one), and the connection goes back on the stack when the response
//! body has been read to its end; a response dropped before its end closes the connection,
//! since HTTP/1.1 cannot abandon a response mid-body.
//!
//! Why not hyper-util's legacy `Client`, which the proxy used first: profiled under wrk
//! (docs/benchmarks-proxy.md), it spends per request a keyed pool checkout raced against a
//! lazily built connect future, and a spawned task per request that waits for the connection
//! to become idle before returning it to the pool. Here the return is a push onto a stack from
//! the response body's end hook, and the next user awaits the sender's `ready()` — no task, no
//! race. HTTP/2 upstreams multiplex one connection and stay on the legacy client.
//!
//! An idle connection the upstream has closed is found at checkout (`ready()` fails) and
//! dropped; a request that hyper reports as never written (the connection died between
//! checkout and send) is sent again on the next connection, as the legacy client's
//! `retry_canceled_requests` does. At most [`MAX_IDLE_PER_ENDPOINT`] idle connections are
//! kept per endpoint; more are closed.

use crate::body::ProxyBody;
use crate::clock::duration;
use homeostat_dataplane::time::Nanos;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use tokio::net::TcpStream;

/// Idle connections kept per endpoint. The bound keeps a burst from leaving thousands of idle
/// sockets behind; 128 is what the benchmark's nginx keeps (`keepalive 128`), so both proxies
/// hold the same number of warm connections.
pub const MAX_IDLE_PER_ENDPOINT: usize = 128;

/// One HTTP/1.1 connection, checked out for one attempt.
pub type Conn = SendRequest<ProxyBody>;

/// Why an attempt got no response.
#[derive(Debug)]
pub enum SendError {
    /// The TCP connection or the HTTP/1 handshake failed or timed out.
    Connect,
    /// The connection failed after the request was (possibly) written.
    Reset,
}

/// The idle connections of one cluster (see the module docs).
#[derive(Debug)]
pub struct Pool {
    connect_timeout: Nanos,
    idle: Mutex<HashMap<SocketAddr, Vec<Conn>>>,
}

impl Pool {
    /// An empty pool whose new connections must be established within `connect_timeout`.
    pub fn new(connect_timeout: Nanos) -> Pool {
        Pool {
            connect_timeout,
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Vec<Conn>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self, addr: SocketAddr) -> Option<Conn> {
        self.lock().get_mut(&addr)?.pop()
    }

    /// Returns a connection whose response was read to the end.
    pub fn put(&self, addr: SocketAddr, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let stack = idle.entry(addr).or_default();
        if stack.len() < MAX_IDLE_PER_ENDPOINT {
            stack.push(conn);
        }
    }

    /// Forgets the idle connections of endpoints not in `keep` (an EDS update removed them).
    pub fn retain(&self, keep: impl Fn(&SocketAddr) -> bool) {
        self.lock().retain(|a, _| keep(a));
    }

    /// Sends `req` to `addr` on an idle connection or a new one; on success also returns the
    /// connection, to [`Pool::put`] back once the response body has ended.
    pub async fn send(
        &self,
        addr: SocketAddr,
        mut req: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Conn), SendError> {
        while let Some(mut conn) = self.take(addr) {
            if conn.ready().await.is_err() {
                continue;
            }
            match conn.try_send_request(req).await {
                Ok(resp) => return Ok((resp, conn)),
                Err(mut e) => match e.take_message() {
                    // Never written: safe to send on the next connection.
                    Some(r) => req = r,
                    None => return Err(SendError::Reset),
                },
            }
        }
        let mut conn = self.connect(addr).await?;
        match conn.send_request(req).await {
            Ok(resp) => Ok((resp, conn)),
            Err(_) => Err(SendError::Reset),
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Conn, SendError> {
        let within = duration(self.connect_timeout);
        let stream = match tokio::time::timeout(within, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) | Err(_) => return Err(SendError::Connect),
        };
        let _ = stream.set_nodelay(true);
        let (conn, driver) = http1::handshake::<_, ProxyBody>(TokioIo::new(stream))
            .await
            .map_err(|_| SendError::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(%addr, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(conn)
    }
}
