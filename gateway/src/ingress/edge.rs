//! What every request to the gateway passes through first and last, as one tower service:
//! - its request id: the client's `X-Request-Id` if short and plain, else a new UUID
//!   (`shared::request_id`), set on the request and copied onto the response;
//! - the access log: one INFO line under the target `access` with the method, path, host,
//!   request id, server id, status and latency as its own fields (`LOG_LEVEL=info,access=off`
//!   turns it off);
//! - the HTTP metrics by route, method and status (`http_requests_total`,
//!   `http_request_duration_seconds`), as the control plane counts its own;
//! - while draining, `Connection: close` on every response (proxies and clients then move
//!   their keep-alive connections elsewhere before the listener closes);
//! - the dispatch: `/mcp` straight to admission (`admission.rs`), any other path to the router.
//!
//! Why one hand-written service rather than tower-http's request-id layers and axum's
//! `from_fn` middleware: each `from_fn` layer clones its inner service into a new box and
//! boxes its future on every request, and these five layers cost the gateway about a tenth of
//! its throughput in `./dev bench` (issue 15). This one allocates nothing of its own.
//!
//! The request's span is at DEBUG: at the default level no span is made per request; the
//! access line carries what it would have shown. Tool calls keep an INFO span of their own
//! (`context.rs`), so their warnings still name host, server and request id.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::Request,
    http::{HeaderValue, Method, Uri, header},
    response::Response,
};
use futures::future::Either;
use pin_project_lite::pin_project;
use tower::Service;

use crate::{ingress::admission::Mcp, mcp::context::text, types::ServedBy};

/// The gateway's routes. None has a parameter, so a path that is one of them is its own
/// route template (the metrics label); any other path is `unmatched`.
pub const ROUTES: [&str; 5] = [
    MCP,
    HEALTHZ,
    READYZ,
    RESOURCE_METADATA,
    RESOURCE_METADATA_MCP,
];
pub const MCP: &str = "/mcp";
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
/// Protected resource metadata (RFC 9728), at the root and under the MCP path.
pub const RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
pub const RESOURCE_METADATA_MCP: &str = "/.well-known/oauth-protected-resource/mcp";

/// See the module documentation. `/mcp` goes straight to admission; every other path to the
/// router `S` (the hot path skips the router's lookup, its copy of the route and its boxed
/// future).
#[derive(Clone)]
pub struct Edge<S> {
    mcp: Mcp,
    inner: S,
    draining: Draining,
}

impl<S> Edge<S> {
    pub fn new(mcp: Mcp, inner: S, draining: Draining) -> Self {
        Self {
            mcp,
            inner,
            draining,
        }
    }
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<Either<<Mcp as Service<Request>>::Future, S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let request_id = shared::request_id::ensure(&mut request);
        let seen = Seen {
            started,
            method: request.method().clone(),
            uri: request.uri().clone(),
            host: request.headers().get(header::HOST).cloned(),
            request_id,
            draining: self.draining.clone(),
        };
        let span = tracing::debug_span!("request", method = %seen.method, path = %seen.uri.path(),
            host = %text(seen.host.as_ref()), request_id = %text(Some(&seen.request_id)));
        let inner = if seen.uri.path() == MCP {
            Either::Left(self.mcp.call(request))
        } else {
            Either::Right(self.inner.call(request))
        };
        EdgeFuture {
            inner,
            span,
            seen: Some(seen),
        }
    }
}

/// What the access line and the metrics need from the request.
struct Seen {
    started: Instant,
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    request_id: HeaderValue,
    draining: Draining,
}

pin_project! {
    /// The inner service's response, finished as the module documentation says.
    pub struct EdgeFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        seen: Option<Seen>,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = {
            let _entered = this.span.enter();
            std::task::ready!(this.inner.poll(cx))
        };
        let seen = this.seen.take().expect("polled after completion");
        finish(&mut response, seen);
        Poll::Ready(Ok(response))
    }
}

/// The metrics label of `path`: its route, or `unmatched` (never the raw path, which would make
/// unbounded series).
fn route(path: &str) -> &'static str {
    ROUTES
        .into_iter()
        .find(|route| *route == path)
        .unwrap_or(shared::prometheus::UNMATCHED)
}

fn finish(response: &mut Response, seen: Seen) {
    let path = seen.uri.path();
    shared::prometheus::record_http(route(path), &seen.method, response.status(), seen.started);
    let server_id = response.extensions().get::<ServedBy>().map(|s| s.0);
    tracing::info!(target: "access", method = %seen.method, path = %path,
        host = %text(seen.host.as_ref()), request_id = %text(Some(&seen.request_id)),
        server_id = server_id.map(tracing::field::display),
        status = response.status().as_u16(), latency_us = seen.started.elapsed().as_micros() as u64,
        "request served");
    let headers = response.headers_mut();
    if !headers.contains_key(shared::request_id::HEADER) {
        headers.insert(shared::request_id::HEADER, seen.request_id);
    }
    if seen.draining.is_on() {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Set once the replica is stopping: `/readyz` answers 503 and every response says
/// `Connection: close` (see `edge.rs`).
#[derive(Clone, Default)]
pub struct Draining(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_labelled_by_its_route_or_as_unmatched() {
        for path in ROUTES {
            assert_eq!(route(path), path);
        }
        for path in [
            "/",
            "/mcp/",
            "/MCP",
            "/mcp/x",
            "/.well-known/oauth-protected-resource/x",
        ] {
            assert_eq!(route(path), "unmatched", "{path}");
        }
    }
}
