//! Admission of an MCP request, in one step before rmcp: the server behind the Host and the
//! Origin rule (`routing.rs`), the caller's credential and rate budget (`access.rs`), then the
//! body as one JSON-RPC message (`jsonrpc.rs`). What it resolved travels to the tools as one
//! [`CallContext`]; nothing after it looks the server or the caller up again.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{access::Access, context::CallContext, edge::ServedBy, jsonrpc, routing::Routing};

/// What admission needs.
#[derive(Clone)]
pub struct Admission {
    pub routing: Routing,
    pub access: Access,
}

/// The middleware, in front of `/mcp`. The response names the server for the access line.
pub async fn admit(
    State(admission): State<Arc<Admission>>,
    mut request: Request,
    next: Next,
) -> Response {
    let server = match admission.routing.admit(&request) {
        Ok(server) => server,
        Err(refused) => return refused.into_response(),
    };
    let served_by = ServedBy(server.id);
    let mut response = match admission.access.admit(&server, &mut request) {
        Ok(caller) => {
            let context = CallContext::new(&request, server, caller);
            request.extensions_mut().insert(context);
            match jsonrpc::read_checked(request).await {
                Ok(request) => next.run(request).await,
                Err(refused) => *refused,
            }
        }
        Err(refused) => refused.into_response(),
    };
    response.extensions_mut().insert(served_by);
    response
}
