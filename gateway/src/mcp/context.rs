//! One MCP request as the HTTP layers resolved it, handed to rmcp as a single request
//! extension: the server behind the host (routing), who is calling (access check) and the
//! request id. The tools read it once instead of digging each part out of the request.

use std::sync::Arc;

use axum::http::HeaderValue;
use rmcp::model::Extensions;

use crate::{snapshot::ServedServer, types::Caller};

/// What a tool call needs to know about its request.
#[derive(Clone)]
pub struct CallContext {
    pub server: Arc<ServedServer>,
    pub caller: Caller,
    /// `X-Request-Id` (always set by the outer layers).
    pub request_id: Option<HeaderValue>,
    /// The `Host` the request was routed by.
    pub host: Option<HeaderValue>,
}

impl CallContext {
    /// The context of `request`, for `server` and `caller` as admission found them.
    pub fn new(
        request: &axum::extract::Request,
        server: Arc<ServedServer>,
        caller: Caller,
    ) -> Self {
        let header = |name| request.headers().get(name).cloned();
        Self {
            request_id: header(shared::request_id::HEADER),
            host: header(axum::http::header::HOST),
            server,
            caller,
        }
    }

    /// The context of the HTTP request rmcp is serving.
    pub fn of(extensions: &Extensions) -> Option<&Self> {
        extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Self>())
    }

    /// The span of one tool call: host, server id, request id and tool name. rmcp may run the
    /// call on a task of its own, where the HTTP request's span is not current.
    pub fn span(&self, tool: &str) -> tracing::Span {
        tracing::info_span!("tool_call", host = %text(self.host.as_ref()), server_id = %self.server.id,
            request_id = %text(self.request_id.as_ref()), tool = %tool)
    }
}

/// A header's text, or `-`.
pub fn text(value: Option<&HeaderValue>) -> &str {
    value.and_then(|v| v.to_str().ok()).unwrap_or("-")
}
