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
    extract::Request,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use uuid::Uuid;

const SESSION_HEADER: &str = "mcp-session-id";
/// Bindings older than this are forgotten (rmcp's sessions do not outlive it either).
const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// Session id → (server id, created).
#[derive(Clone, Default)]
pub struct SessionBindings(Arc<Mutex<HashMap<String, (Uuid, Instant)>>>);

impl SessionBindings {
    /// The refusal of a request presenting a session created on another server's host.
    pub fn refusal(&self, server_id: Uuid, request: &Request) -> Option<Response> {
        let presented = request.headers().get(SESSION_HEADER)?.to_str().ok()?;
        let owner = self
            .0
            .lock()
            .expect("bindings lock")
            .get(presented)
            .map(|(id, _)| *id);
        if owner.is_some_and(|owner| owner != server_id) {
            let body = json!({"error": {"code": "session_not_found", "message": "No such MCP session on this host."}});
            return Some((StatusCode::NOT_FOUND, Json(body)).into_response());
        }
        None
    }

    /// Binds the session a response created (if any) to the server it was created on.
    pub fn note(&self, server_id: Uuid, response: &Response) {
        let Some(created) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        let mut map = self.0.lock().expect("bindings lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < MAX_AGE);
        }
        map.entry(created.to_owned())
            .or_insert((server_id, Instant::now()));
    }
}
