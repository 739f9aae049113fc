//! Admission of an MCP request, in one step before rmcp: the server behind the Host and the
//! Origin rule (`routing.rs`), the caller's credential and rate budget (`access.rs`), then the
//! body as one JSON-RPC message (`jsonrpc.rs`). What it resolved travels to the tools as one
//! [`CallContext`]; nothing after it looks the server or the caller up again.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{access::Access, context::CallContext, jsonrpc, routing::Routing};

/// What admission needs.
#[derive(Clone)]
pub struct Admission {
    pub routing: Routing,
    pub access: Access,
}

/// The middleware, in front of `/mcp`.
pub async fn admit(
    State(admission): State<Admission>,
    mut request: Request,
    next: Next,
) -> Response {
    let server = match admission.routing.admit(&request) {
        Ok(server) => server,
        Err(refused) => return refused.into_response(),
    };
    let caller = match admission.access.admit(&server, &mut request) {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let context = CallContext::new(&request, server, caller);
    request.extensions_mut().insert(context);
    match jsonrpc::read_checked(request).await {
        Ok(request) => next.run(request).await,
        Err(refused) => *refused,
    }
}
