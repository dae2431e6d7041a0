//! Serving a router on a listener with the limits a public port needs (issue 19):
//!
//! - header read timeout: a client that has not sent a whole request head within
//!   `header_timeout` is disconnected. hyper starts this timer whenever the connection
//!   waits for a request head, so it is also the idle keep-alive limit: a kept-alive
//!   connection with no next request is closed after the same time;
//! - whole-request timeout: reading the body and answering take at most
//!   `request_timeout` (a 503 after that);
//! - a limit on open connections (`max_connections`: the accept loop waits for a free
//!   slot) and on requests handled at once (`max_concurrent_requests`: a request waits
//!   for a slot within its timeout, else 503);
//! - a body limit before any work: a declared `Content-Length` above `max_body_bytes` is
//!   answered 413 before routing, and every body is cut off at that size while read.
//!
//! Each request carries its peer address as axum's `ConnectInfo<SocketAddr>`.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time for a request head (and the idle keep-alive limit, see the module docs).
    pub header_timeout: Duration,
    /// Time for the body and the answer of one request.
    pub request_timeout: Duration,
    /// Connections open at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Requests handled at once; further ones wait (within their timeout).
    pub max_concurrent_requests: usize,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_concurrent_requests: 64,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Bytes of a request head (request line and headers) hyper buffers at most.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// What the limit layer shares between requests.
#[derive(Clone)]
struct Limiter {
    limits: HttpLimits,
    slots: Arc<Semaphore>,
}

/// `router` behind the request limits (timeout, concurrency, body size).
pub fn limited(router: Router, limits: HttpLimits) -> Router {
    let limiter = Limiter {
        limits,
        slots: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
    };
    router.layer(axum::middleware::from_fn_with_state(limiter, limit))
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONNECTION, "close")],
        format!("{message}\n"),
    )
        .into_response()
}

async fn limit(State(l): State<Limiter>, req: Request, next: Next) -> Response {
    let max = l.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {max} bytes"),
        );
    }
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, Body::new(http_body_util::Limited::new(body, max)));
    let deadline = tokio::time::Instant::now() + l.limits.request_timeout;
    let _slot = match tokio::time::timeout_at(deadline, l.slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        _ => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests at once; retry",
            )
        }
    };
    match tokio::time::timeout_at(deadline, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "request timed out"),
    }
}

/// Serves `router` on `listener` until `shutdown` turns true, then lets open
/// connections finish their request (for at most the request timeout).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut open = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = async { let _ = shutdown.wait_for(|v| *v).await; } => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    tracing::warn!(error = %e, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = async { let _ = shutdown.wait_for(|v| *v).await; } => break,
        };
        let router = router.clone();
        let mut stop = shutdown.clone();
        open.spawn(async move {
            let _permit = permit;
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let router = router.clone();
                    async move {
                        let resp = tower::ServiceExt::oneshot(router, req).await;
                        resp
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true)
                .max_buf_size(MAX_HEAD_BYTES);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(peer = %peer, error = %e, "Connection closed");
                    }
                }
                _ = async { let _ = stop.wait_for(|v| *v).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap the connections that ended.
        while open.try_join_next().is_some() {}
    }
    let drain = async { while open.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.request_timeout, drain)
        .await
        .is_err()
    {
        open.abort_all();
    }
}

/// The peer address of a request (set by [`serve`]).
pub fn peer(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
