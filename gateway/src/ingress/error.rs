//! HTTP errors of the gateway, in the product's shared shape
//! `{"error": {"code", "message"}}`. (MCP tool failures are tool results, not HTTP errors.)

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// What an unauthorized request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    None,
    Key,
    Token,
}

/// An HTTP error answered before rmcp sees the request.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    retry_after_secs: Option<u64>,
    /// `WWW-Authenticate` challenge of a 401.
    challenge: Option<HeaderValue>,
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

    /// No credential, or not a key or OAuth token of this server (expired and revoked ones
    /// included: the answer does not tell which). `challenge` points OAuth clients to the
    /// server's protected resource metadata.
    pub fn unauthorized(given: Credential, challenge: HeaderValue) -> Self {
        let mut err = match given {
            Credential::Key => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_key",
                "The access key is not valid for this MCP server (unknown, revoked or expired).",
            ),
            Credential::Token => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The OAuth access token is not valid for this MCP server (expired, revoked, or issued for another server); get a new one.",
            ),
            Credential::None => Self::new(
                StatusCode::UNAUTHORIZED,
                "key_required",
                "This MCP server needs an access key or an OAuth access token: send `Authorization: Bearer <key or token>`, or connect with OAuth (see the WWW-Authenticate header).",
            ),
        };
        err.challenge = Some(challenge);
        err
    }

    /// The key (or public server) made too many requests this minute.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests with this access key; wait before trying again.",
        );
        err.retry_after_secs = Some(retry_after_secs.max(1));
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
            challenge: None,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        // Answered before the request body was read: the connection cannot be reused safely,
        // so say so instead of closing it under the client.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(challenge) = self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
