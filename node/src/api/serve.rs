//! The plain-HTTP accept loop: hyper, with the connection limits that
//! `axum::serve` does not set.
//!
//! Why not `axum::serve`: it gives hyper no timer, so no header read timeout
//! is enforced (a client trickling a request head byte by byte, or opening
//! a connection and sending nothing, holds a socket and a task for ever),
//! and it accepts connections without bound. Here:
//! - a request head must arrive whole within [`HEADER_READ_TIMEOUT`] of the
//!   connection opening or of the previous response (idle keep-alive
//!   connections are closed after as long);
//! - at most [`CONNECTIONS_MAX`] connections are open; one more is closed
//!   as soon as it is accepted, so file descriptors and memory stay bounded;
//! - bodies and handling are bounded by the router's layers (the body
//!   limit, [`super::REQUEST_TIMEOUT`] for the whole request, body included).
//!
//! HTTP/1.1 only: plain-HTTP clients speak it; HTTPS (with HTTP/2 by ALPN)
//! is served by [`crate::tls`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Longest a request head may take to arrive, counted from the connection
/// opening or from the previous response on a keep-alive connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most connections served at once (each costs a file descriptor, a task
/// and its buffers). Well above what a node's clients need; what bounds the
/// damage of a flood of idle connections.
pub const CONNECTIONS_MAX: usize = 16_384;

/// Pause after a failed accept (e.g. out of file descriptors) before the
/// next, so a persistent error does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long open connections get to finish once the node stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `stop` fires, then lets open
/// connections finish their requests (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(listener: TcpListener, router: Router, mut stop: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting an API connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Over the limit: closing at once costs nothing to keep.
            drop(stream);
            continue;
        };
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            });
        let mut closing = closing_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %remote, "API connection ended with an error");
                    }
                }
                _ = closing.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}
