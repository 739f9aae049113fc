//! Admission of an MCP request, in one step before rmcp: the server behind the Host and the
//! Origin rule (`routing.rs`), the caller's credential and rate budget (`access.rs`), then the
//! body as one JSON-RPC message (`jsonrpc.rs`) and, with sessions on, the session's host
//! (`sessions.rs`). What it resolved travels to the tools as one [`CallContext`]; nothing after
//! it looks the server or the caller up again.
//!
//! Why a service of its own that calls rmcp's `handle` by reference, rather than axum's
//! `from_fn` middleware in front of rmcp's tower service: every request then cost two clones
//! of rmcp's service and three boxed futures (the middleware's, its `Next`'s, and rmcp's own
//! `call`'s). Each clone of that service clones its cancellation token, which takes and
//! releases a lock every request shares, once to clone and once to drop (issue 15); rmcp's own
//! child token for each request is the one such lock left.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderName, HeaderValue, Method, header},
    response::{IntoResponse, Response},
};
use futures::future::BoxFuture;
use futures::future::Either;
use rmcp::transport::streamable_http_server::{
    StreamableHttpService,
    session::{local::LocalSessionManager, never::NeverSessionManager},
};
use tower::Layer;
use tower::Service;
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

use crate::{
    ingress::access::Access, ingress::jsonrpc, ingress::routing::Routing,
    ingress::sessions::SessionBindings, mcp::Gateway, mcp::context::CallContext, types::ServedBy,
};

/// `/mcp`: admission, then rmcp's service.
pub struct Admission {
    pub routing: Routing,
    pub access: Access,
    pub rmcp: Rmcp,
}

/// rmcp's streamable HTTP service, as the gateway runs it.
pub enum Rmcp {
    /// Every request stands alone (the default).
    Stateless(StreamableHttpService<Gateway, NeverSessionManager>),
    /// With sessions, each bound to the server on whose host it was created.
    Sessions(
        StreamableHttpService<Gateway, LocalSessionManager>,
        SessionBindings,
    ),
}

/// [`Admission`] as a tower service (cloning it counts a reference).
#[derive(Clone)]
pub struct Admitted(Arc<Admission>);

impl Admitted {
    pub fn new(admission: Admission) -> Self {
        Self(Arc::new(admission))
    }
}

impl Service<Request> for Admitted {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let admission = self.0.clone();
        Box::pin(async move { Ok(admission.admit(request).await) })
    }
}

impl Admission {
    /// The response to `request`, naming the server it came from for the access line.
    async fn admit(&self, mut request: Request) -> Response {
        let server = match self.routing.admit(&request) {
            Ok(server) => server,
            Err(refused) => return refused.into_response(),
        };
        let served_by = ServedBy(server.id);
        let mut response = match self.access.admit(&server, &mut request) {
            Ok(caller) => {
                let context = CallContext::new(&request, server, caller);
                request.extensions_mut().insert(context);
                match jsonrpc::read_checked(request).await {
                    Ok(request) => self.serve(served_by, request).await,
                    Err(refused) => *refused,
                }
            }
            Err(refused) => refused.into_response(),
        };
        response.extensions_mut().insert(served_by);
        response
    }

    /// rmcp's answer, within the session rule when sessions are on.
    async fn serve(&self, served_by: ServedBy, request: Request) -> Response {
        match &self.rmcp {
            Rmcp::Stateless(rmcp) => rmcp.handle(request).await.map(Body::new),
            Rmcp::Sessions(rmcp, sessions) => {
                if let Some(refused) = sessions.refusal(served_by.0, &request) {
                    return refused;
                }
                let response = rmcp.handle(request).await.map(Body::new);
                sessions.note(served_by.0, &response);
                response
            }
        }
    }
}

/// `/mcp`: admission, with CORS for the origins `GATEWAY_ALLOWED_ORIGINS` lists when it lists
/// any (a server's own origin needs none, and agents calling from servers send no Origin).
#[derive(Clone)]
pub enum Mcp {
    Admitted(Admitted),
    // Boxed: the CORS rules are large beside a pointer, and the edge is copied per connection.
    WithCors(Box<Cors<Admitted>>),
}

impl Mcp {
    /// Admission, behind CORS when origins are allowed.
    pub fn new(admitted: Admitted, allowed_origins: &Arc<[String]>) -> Self {
        if allowed_origins.is_empty() {
            Self::Admitted(admitted)
        } else {
            Self::WithCors(Box::new(mcp_cors(allowed_origins.clone()).layer(admitted)))
        }
    }
}

impl tower::Service<Request> for Mcp {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        <Admitted as tower::Service<Request>>::Future,
        <Cors<Admitted> as tower::Service<Request>>::Future,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self {
            Self::Admitted(admitted) => Either::Left(admitted.call(request)),
            Self::WithCors(cors) => Either::Right(cors.call(request)),
        }
    }
}

/// What a browser-based MCP client on an allowed origin needs: its preflight answered (without
/// a credential, which preflights never carry), its credential and protocol headers accepted,
/// and the session id and the OAuth challenge readable. Origins compare as the Origin rule
/// does (`routing.rs`), ignoring case; no cookies are involved, so no credentials mode.
fn mcp_cors(origins: Arc<[String]>) -> CorsLayer {
    let allowed = move |origin: &HeaderValue, _: &_| {
        let origin = origin.to_str().unwrap_or_default();
        origins.iter().any(|a| a.eq_ignore_ascii_case(origin))
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ])
        .max_age(Duration::from_secs(600))
}
