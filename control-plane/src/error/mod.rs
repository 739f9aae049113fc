//! The one error shape of the REST API: `{"error": {"code", "message", ...}}` with the right
//! status. Internal causes are logged with their chain; the client gets a fixed sentence.
//! The OAuth endpoints answer in OAuth's own shape instead ([`oauth`]).

pub mod oauth;

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// Machine-readable code, human sentence, and details where they help.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_credentials`, `validation_failed`, `rate_limited`.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// A sentence for a person.
    #[schema(example = "Some fields are invalid.")]
    pub message: String,
    /// For `validation_failed`: each bad field and what is wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
    /// For `rate_limited`: seconds to wait (also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name in the request body.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field and the reason it was refused.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// An error a handler returns; converts into the shared body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    /// Logged, never shown.
    source: Option<anyhow::Error>,
}

impl ApiError {
    /// An error with a status, a code and a sentence.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after_secs: None,
            source: None,
        }
    }

    /// 404: also the answer for anything owned by another user.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested resource does not exist.",
        )
    }

    /// 401 for a missing, malformed, expired or revoked session token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in first: the session token is missing, invalid, expired or revoked.",
        )
    }

    /// 403 with a code saying which rule refused the request.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 409 for a request that clashes with stored state.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422 naming each bad field.
    pub fn validation(fields: Vec<FieldError>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Some fields are invalid; see `fields`.",
        );
        err.fields = fields;
        err
    }

    /// 429 with the seconds to wait; counted per limiter (`signup`, `signin`, `password`).
    pub fn rate_limited(limiter: &'static str, retry_after_secs: u64) -> Self {
        metrics::counter!("rate_limit_rejections_total", "limiter" => limiter).increment(1);
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many attempts; wait before trying again.",
        );
        err.retry_after_secs = Some(retry_after_secs.max(1));
        err
    }

    /// 503 when the database cannot be reached in time.
    pub fn database_unavailable(source: impl Into<anyhow::Error>) -> Self {
        let mut err = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "The database is not reachable right now; try again shortly.",
        );
        err.retry_after_secs = Some(5);
        err.source = Some(source.into());
        err
    }

    /// 500: the cause is logged, the client gets a fixed sentence.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut err = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side; it has been logged.",
        );
        err.source = Some(source.into());
        err
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Self::database_unavailable(err)
            }
            sqlx::Error::RowNotFound => Self::not_found(),
            other => Self::internal(other),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source
            && self.status.is_server_error()
        {
            tracing::error!(
                code = self.code,
                error = format!("{source:#}"),
                "request failed"
            );
        }
        let retry_after = self.retry_after_secs;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                fields: self.fields,
                retry_after_secs: retry_after,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Maps a named constraint violation to a client error instead of a 500.
pub trait ResultExt<T> {
    /// If the error is a violation of `constraint`, answer with `map()` instead.
    fn on_constraint(self, constraint: &str, map: impl FnOnce() -> ApiError)
    -> Result<T, ApiError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint(
        self,
        constraint: &str,
        map: impl FnOnce() -> ApiError,
    ) -> Result<T, ApiError> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.constraint() == Some(constraint) => map(),
            _ => ApiError::from(err),
        })
    }
}

/// Fallback for paths no route matches.
pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "No such route; see /docs for the API.",
    )
}

/// Gives every error response the shared body, whichever layer produced it (method not
/// allowed, timeouts, CORS, body limits): a client never has to parse two error formats. The
/// OAuth endpoints get OAuth's own shape instead, which their clients parse.
pub async fn uniform_errors(request: Request, next: Next) -> Response {
    let oauth = oauth::ERROR_SHAPED_PATHS.contains(&request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            // Our own answers: JSON errors, and the authorization pages (HTML, for people).
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This route does not accept that method.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large."),
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            "The request took too long or the service is unavailable.",
        ),
        StatusCode::NOT_FOUND => ("route_not_found", "No such route; see /docs for the API."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send JSON with Content-Type: application/json.",
        ),
        s if s.is_client_error() => ("bad_request", "The request was not understood."),
        _ => (
            "internal_error",
            "Something went wrong on our side; it has been logged.",
        ),
    };
    let fresh = if oauth {
        oauth::OAuthError::of_status(status).into_response()
    } else {
        ApiError::new(status, code, message).into_response()
    };
    // The layer's headers (`Allow`, `Retry-After`, ...) stay; the body's own replace theirs.
    let (mut parts, _) = response.into_parts();
    let (fresh, body) = fresh.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(fresh.headers);
    Response::from_parts(parts, Body::new(body))
}

/// Turns a panic into the shared 500 body (the panic itself is logged by the panic hook).
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
}
