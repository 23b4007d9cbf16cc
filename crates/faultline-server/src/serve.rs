//! Serving HTTP/1.1 connections so that no client can starve the server:
//! a cap on open connections shared by every listener (beyond it a new
//! connection is answered `503 too_many_connections` and closed at once),
//! a cap per client under it (an IPv4 address or an IPv6 /64, as the
//! rate limits count them; peers in `trusted_proxies` exempt, since every
//! client behind a proxy shares its address), answered the same way,
//! a header-read timeout (a request's headers must arrive within it, which
//! also closes a connection that sends nothing, fresh or between
//! keep-alive requests), and an idle timeout (a connection on which no byte
//! moves either way is closed: stalled bodies, clients that stop reading
//! their answer). Whole-request deadlines per route (reading the body
//! included) are tower layers on the routers (`http::router`,
//! `faultline_receivers::Ingest::router`), not here. `raise_fd_limit` lifts
//! the soft file-descriptor limit to the hard one at start.
//!
//! What it is not: routing or handlers, and not gRPC (tonic serves its own
//! connections; the cap and the idle timeout apply to them too, through
//! `Gate::admit` and `Guarded`, in `ingest::serve_listeners`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ratelimit::Source;

/// The connection bounds (from `Config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections across all listeners, at most.
    pub max_connections: usize,
    /// Open connections from one client, at most.
    pub max_connections_per_client: usize,
    /// A request's headers must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClosedLabels {
    reason: &'static str,
}

/// The shared connection budget and its counters:
/// `faultline_connections_open`, `faultline_connections_refused_total`,
/// `faultline_connections_closed_total{reason}` (`header_timeout`,
/// `idle_timeout`).
#[derive(Clone)]
pub struct Gate {
    permits: Arc<Semaphore>,
    limits: ConnectionLimits,
    /// Open connections per client. Bounded by `max_connections`: an entry
    /// exists only while its client holds a connection (removed at zero).
    per_client: Arc<std::sync::Mutex<std::collections::HashMap<Source, usize>>>,
    /// Peers not held to the per-client cap (`Config::trusted_proxies`).
    exempt: Arc<[ipnet::IpNet]>,
    refused_client: Counter,
    open: Gauge,
    refused: Counter,
    closed: Family<ClosedLabels, Counter>,
}

/// The answer to a connection beyond the cap: a clear refusal the client
/// can read before the close, in the API's error shape.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 106\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server is at its connection limit; retry shortly\"}}";

/// The answer to a connection beyond its client's cap.
const CLIENT_REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 126\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"this client is at its connection limit; close idle connections\"}}";

impl Gate {
    pub fn new(limits: ConnectionLimits, exempt: Arc<[ipnet::IpNet]>, registry: &mut Registry) -> Gate {
        let gate = Gate {
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            per_client: Arc::default(),
            exempt,
            refused_client: Counter::default(),
            open: Gauge::default(),
            refused: Counter::default(),
            closed: Family::default(),
        };
        registry.register("faultline_connections_open", "Client connections open (HTTP and gRPC)", gate.open.clone());
        registry.register("faultline_connections_refused", "Connections refused at the connection cap", gate.refused.clone());
        registry.register("faultline_connections_refused_client", "Connections refused at the per-client connection cap", gate.refused_client.clone());
        registry.register("faultline_connections_closed", "Connections the server closed, by reason", gate.closed.clone());
        gate
    }

    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// The connection, admitted under the cap and its client's, or `None`
    /// (refused, counted and closed); the refusal is written without
    /// waiting, so it never holds up the accept loop (a client whose buffer
    /// is full simply sees the close).
    pub fn admit(&self, stream: TcpStream) -> Option<Guarded> {
        let client = self.client_of(&stream);
        if let Some(c) = client
            && !self.take_client_place(c)
        {
            self.refused_client.inc();
            let _ = stream.try_write(CLIENT_REFUSAL);
            return None;
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                self.open.inc();
                let _ = stream.set_nodelay(true);
                let idle = self.limits.idle_timeout;
                Some(Guarded { permit: Some(permit), client, inner: stream, gate: self.clone(), idle, deadline: Box::pin(tokio::time::sleep(idle)) })
            }
            Err(_) => {
                if let Some(c) = client {
                    self.give_client_place(c);
                }
                self.refused.inc();
                let _ = stream.try_write(REFUSAL);
                None
            }
        }
    }

    /// The per-client key of the connection's peer, or `None` when it is not
    /// held to the per-client cap (a trusted proxy, or no address known).
    fn client_of(&self, stream: &TcpStream) -> Option<Source> {
        let peer = stream.peer_addr().ok()?.ip().to_canonical();
        if self.exempt.iter().any(|n| n.contains(&peer)) {
            return None;
        }
        Some(Source::of(Some(peer)))
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Source, usize>> {
        // Only counters are behind the lock; a panic elsewhere cannot leave them half-written.
        self.per_client.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take_client_place(&self, c: Source) -> bool {
        let mut clients = self.clients();
        let n = clients.entry(c).or_insert(0);
        // At least one per client, so a refused client never leaves an empty entry.
        if *n >= self.limits.max_connections_per_client.max(1) {
            return false;
        }
        *n += 1;
        true
    }

    fn give_client_place(&self, c: Source) {
        let mut clients = self.clients();
        if let Some(n) = clients.get_mut(&c) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                clients.remove(&c);
            }
        }
    }

    /// Clients holding at least one connection now.
    pub fn clients_connected(&self) -> usize {
        self.clients().len()
    }

    fn closed(&self, reason: &'static str) {
        self.closed.get_or_create(&ClosedLabels { reason }).inc();
    }
}

/// Serves `router` on `listener` under the gate's bounds until `shutdown`
/// resolves; then stops accepting and waits for in-flight requests (the
/// caller bounds that wait by its grace period).
pub async fn serve(listener: TcpListener, router: Router, gate: Gate, shutdown: impl Future<Output = ()> + Send) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors (or a connection reset before
                    // accept): back off briefly instead of spinning; the cap
                    // below the fd limit makes this rare.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(stream) = gate.admit(stream) else { continue };
        let svc = tower::ServiceExt::map_request(router.clone(), move |mut req: axum::http::Request<hyper::body::Incoming>| {
            // Per-client budgets count against the peer (`http::client_ip`).
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(gate.limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        let gate = gate.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await
                && e.is_timeout()
            {
                gate.closed("header_timeout");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// An admitted connection: holds its place under the cap until dropped, and
/// fails its reads and writes with `TimedOut` once no byte has moved for
/// the idle timeout (the timer is polled with every pending read or write,
/// so it fires whatever the protocol above is waiting for).
pub struct Guarded {
    // Given back before the socket is shut down or closed (`poll_shutdown`,
    // and field order on drop), so a client that saw the close finds its
    // place free.
    permit: Option<OwnedSemaphorePermit>,
    /// Whose per-client place this connection holds (given back with the permit).
    client: Option<Source>,
    inner: TcpStream,
    gate: Gate,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Guarded {
    pub fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }

    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }

    fn moved(&mut self) {
        self.deadline.as_mut().reset(tokio::time::Instant::now() + self.idle);
    }

    /// On a pending read or write: has the idle time run out?
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.gate.closed("idle_timeout");
            true
        } else {
            false
        }
    }
}

impl Guarded {
    /// Gives the place under the cap back (once).
    fn release(&mut self) {
        if self.permit.take().is_some() {
            self.gate.open.dec();
        }
        if let Some(c) = self.client.take() {
            self.gate.give_client_place(c);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.release();
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle for too long")
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.release();
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (where the platform
/// has one); returns the soft limit now in force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The soft file-descriptor limit, if the platform has one.
pub fn fd_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
}

/// The connection cap that fits the descriptors this process may open:
/// the configured one, lowered to leave `RESERVED_FDS` for the database,
/// listeners, outbound webhooks and probes.
pub fn effective_max_connections(configured: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(l) => configured.min(l.saturating_sub(RESERVED_FDS).max(16) as usize),
        None => configured,
    }
}

/// Descriptors kept free of client connections.
pub const RESERVED_FDS: u64 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "too_many_connections");
    }

    #[test]
    fn the_cap_leaves_descriptors_for_everything_else() {
        assert_eq!(effective_max_connections(4096, Some(1024)), 896);
        assert_eq!(effective_max_connections(4096, Some(1_048_576)), 4096);
        assert_eq!(effective_max_connections(100, None), 100);
        assert_eq!(effective_max_connections(4096, Some(20)), 16);
    }
}
