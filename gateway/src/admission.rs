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
};

use axum::{
    body::Body,
    extract::Request,
    response::{IntoResponse, Response},
};
use futures::future::BoxFuture;
use rmcp::transport::streamable_http_server::{
    StreamableHttpService,
    session::{local::LocalSessionManager, never::NeverSessionManager},
};
use tower::Service;

use crate::{
    access::Access, context::CallContext, edge::ServedBy, jsonrpc, mcp::Gateway, routing::Routing,
    sessions::SessionBindings,
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
