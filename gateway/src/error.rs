//! HTTP errors of the gateway, in the product's shared shape
//! `{"error": {"code", "message"}}`. (MCP tool failures are tool results, not HTTP errors.)

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An HTTP error answered before rmcp sees the request.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    retry_after_secs: Option<u64>,
}

impl HttpError {
    /// No MCP server is served on this host (unknown or soft-deleted).
    pub fn unknown_host() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_host",
            "No MCP server is served on this host.",
        )
    }

    /// A browser page of another origin tried to call this server.
    pub fn forbidden_origin() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "Requests from this Origin are not allowed.",
        )
    }

    /// No configuration has been loaded yet.
    pub fn not_ready() -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "The gateway has not loaded its configuration yet; try again shortly.",
        );
        err.retry_after_secs = Some(5);
        err
    }

    /// No route.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "The MCP endpoint is /mcp.",
        )
    }

    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
