//! With sessions enabled (`GATEWAY_SESSIONS=true`), a session belongs to the MCP server on
//! whose host it was created; presenting its id on another host is answered as if the session
//! did not exist. (Without sessions, the default, every request stands alone.)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;
use uuid::Uuid;

use crate::context::CallContext;

const SESSION_HEADER: &str = "mcp-session-id";
/// Bindings older than this are forgotten (rmcp's sessions do not outlive it either).
const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Session id → (server id, created).
#[derive(Clone, Default)]
pub struct SessionBindings(Arc<Mutex<HashMap<String, (Uuid, Instant)>>>);

/// The middleware (runs after admission).
pub async fn bind_sessions_to_hosts(
    State(bindings): State<SessionBindings>,
    request: Request,
    next: Next,
) -> Response {
    let Some(server_id) = request
        .extensions()
        .get::<CallContext>()
        .map(|call| call.server.id)
    else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &presented {
        let owner = bindings
            .0
            .lock()
            .expect("bindings lock")
            .get(session)
            .map(|(id, _)| *id);
        if owner.is_some_and(|owner| owner != server_id) {
            let body = json!({"error": {"code": "session_not_found", "message": "No such MCP session on this host."}});
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
    }
    let response = next.run(request).await;
    if let Some(created) = response
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let mut map = bindings.0.lock().expect("bindings lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < MAX_AGE);
        }
        map.entry(created.to_owned())
            .or_insert((server_id, Instant::now()));
    }
    response
}
