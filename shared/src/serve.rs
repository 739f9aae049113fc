//! Serving a router over TCP, for both daemons, with the limits `axum::serve` lacks:
//! - a deadline for a request's head (`HTTP_HEADER_TIMEOUT_SECS`): a client that sends its
//!   request line and headers slowly is cut off when it passes, and so is a keep-alive
//!   connection left idle that long (hyper's timer starts whenever it waits for a head);
//! - a graceful stop: once `shutdown` resolves, no new connection is accepted, requests in
//!   flight finish, and idle connections are closed.
//!
//! Handlers see the peer address as axum's `ConnectInfo<SocketAddr>`, as with
//! `into_make_service_with_connect_info`.

use std::{convert::Infallible, time::Duration};

use axum::{body::Body, extract::ConnectInfo, response::Response};
use hyper::{Request, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto::Builder, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

/// Serves `router` (an axum `Router`, or a service wrapped around one) on `listener` until
/// `shutdown` resolves, then drains as described above.
pub async fn serve<S>(
    listener: TcpListener,
    router: S,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let service = router.clone().map_request(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request.map(Body::new)
                    });
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(err) = connection.await {
                            tracing::debug!(error = %err, %peer, "connection ended with an error");
                        }
                    });
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
