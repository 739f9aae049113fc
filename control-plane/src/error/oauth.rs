//! OAuth's own error shape (RFC 6749 §5.2, RFC 7591 §3.2.2): `{"error": "invalid_grant",
//! "error_description": "..."}` on the token, registration and revocation endpoints, never
//! cached. Descriptions are fixed sentences: they never quote a token, code or secret.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// An error of an OAuth endpoint.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token.",
        )
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            description,
        )
    }

    pub fn slow_down(retry_after_secs: u64) -> Response {
        let mut response = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "Too many requests from this address; try again later.",
        )
        .into_response();
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        );
        response
    }

    /// The database or another internal part failed; the cause is logged, not shown.
    pub fn server_error(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "OAuth endpoint failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The authorization server cannot answer right now; try again shortly.",
        )
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The answer for an error a layer produced before the endpoint ran (a method other than
    /// POST, a body over the limit, a timeout), in OAuth's shape with the same status.
    pub fn of_status(status: StatusCode) -> Self {
        let (code, description) = match status {
            StatusCode::METHOD_NOT_ALLOWED => {
                ("invalid_request", "This endpoint accepts POST only.")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", "The request body is too large."),
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
                "temporarily_unavailable",
                "The request took too long or the service is unavailable.",
            ),
            s if s.is_client_error() => ("invalid_request", "The request was not understood."),
            _ => (
                "server_error",
                "Something went wrong on our side; it has been logged.",
            ),
        };
        Self::new(status, code, description)
    }
}

/// The endpoints that answer every error in OAuth's shape (RFC 6749 §5.2, RFC 7591 §3.2.2,
/// RFC 7009 §2.2.1), whichever layer produced it.
pub const ERROR_SHAPED_PATHS: [&str; 3] = ["/oauth/token", "/oauth/register", "/oauth/revoke"];

impl From<sqlx::Error> for OAuthError {
    fn from(err: sqlx::Error) -> Self {
        Self::server_error(&err)
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(err: anyhow::Error) -> Self {
        Self::server_error(&err)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, Json(body)).into_response();
        no_store(&mut response);
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 names the scheme the client could authenticate with.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"oauth\""),
            );
        }
        response
    }
}

/// Marks a response as never to be cached (token responses, pages with codes or CSRF tokens).
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
