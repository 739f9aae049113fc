//! rmcp's client errors as [`SourceError`] classes with short reasons: an HTTP status, what
//! failed, never an upstream message or body (they can echo credentials).

use std::error::Error;

use rmcp::{
    ErrorData, RoleClient, ServiceError,
    model::ErrorCode,
    service::{ClientInitializeError, RunningService},
    transport::{DynamicTransportError, streamable_http_client::StreamableHttpError},
};

use crate::sources::{
    SourceError,
    upstream::{self, Peer, retry},
};

/// Why connecting (and negotiating the protocol) failed.
pub fn handshake(error: &ClientInitializeError) -> SourceError {
    match error {
        ClientInitializeError::TransportError { error, .. } => transport(error),
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => handshake(fallback),
        ClientInitializeError::ConnectionClosed(_) => SourceError::Unreachable(
            "the remote MCP server closed the connection during the handshake".to_owned(),
        ),
        ClientInitializeError::NoCompatibleProtocolVersion { .. } => SourceError::BadResponse(
            "the remote MCP server speaks no protocol version the gateway knows".to_owned(),
        ),
        _ => SourceError::BadResponse("the remote MCP server refused the handshake".to_owned()),
    }
}

/// Why a call on a connected client failed (other than a JSON-RPC error).
pub fn call(error: &ServiceError) -> SourceError {
    match error {
        ServiceError::TransportSend(error) => transport(error),
        // rmcp does not pass on why an answer stream ended: the guard's byte budget is one
        // reason, named here since it is the one a hostile server would meet.
        ServiceError::TransportClosed => SourceError::Unreachable(format!(
            "the connection to the remote MCP server closed before its answer (or its answer \
             stream ran over {} MiB of events)",
            super::wire::MAX_STREAM_BYTES / (1024 * 1024)
        )),
        _ => SourceError::BadResponse(
            "the remote MCP server answered something unexpected".to_owned(),
        ),
    }
}

/// A JSON-RPC error answering `tools/call`: the tool is missing, or the server refused.
pub async fn refused_call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    error: &ErrorData,
) -> SourceError {
    if matches!(
        error.code,
        ErrorCode::METHOD_NOT_FOUND | ErrorCode::INVALID_PARAMS
    ) && client
        .list_all_tools()
        .await
        .is_ok_and(|tools| !tools.iter().any(|t| t.name == tool))
    {
        return SourceError::BadResponse(format!("the remote MCP server has no `{tool}` tool"));
    }
    SourceError::BadResponse(format!(
        "the remote MCP server refused the `{tool}` call (JSON-RPC error {})",
        error.code.0
    ))
}

/// Whether a failed call's answer asked to come back later (HTTP 429 or 503).
pub fn call_asks_to_retry(error: &ServiceError) -> bool {
    matches!(error, ServiceError::TransportSend(error) if asks_to_retry(error))
}

/// Whether a failed handshake's answer asked to come back later (HTTP 429 or 503).
pub fn handshake_asks_to_retry(error: &ClientInitializeError) -> bool {
    match error {
        ClientInitializeError::TransportError { error, .. } => asks_to_retry(error),
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
            handshake_asks_to_retry(fallback)
        }
        _ => false,
    }
}

fn asks_to_retry(error: &DynamicTransportError) -> bool {
    let status = match http_cause(error) {
        Some(HttpCause::Streamable(StreamableHttpError::HttpStatus(failure))) => {
            Some(failure.status)
        }
        Some(HttpCause::Streamable(StreamableHttpError::UnexpectedServerResponse(text))) => {
            status_of(text)
        }
        Some(HttpCause::Request(request)) => request.status().map(|s| s.as_u16()),
        _ => None,
    };
    status.is_some_and(retry::is_busy)
}

/// The first HTTP-level cause in a transport error's chain.
enum HttpCause<'a> {
    Streamable(&'a StreamableHttpError<reqwest::Error>),
    Request(&'a reqwest::Error),
}

fn http_cause(error: &DynamicTransportError) -> Option<HttpCause<'_>> {
    let mut next: Option<&(dyn Error + 'static)> = Some(error.error.as_ref());
    while let Some(cause) = next {
        if let Some(http) = cause.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            return Some(HttpCause::Streamable(http));
        }
        if let Some(request) = cause.downcast_ref::<reqwest::Error>() {
            return Some(HttpCause::Request(request));
        }
        next = cause.source();
    }
    None
}

fn transport(error: &DynamicTransportError) -> SourceError {
    match http_cause(error) {
        Some(HttpCause::Streamable(http)) => streamable(http),
        Some(HttpCause::Request(request)) => request_failed(request),
        None => SourceError::Unreachable("the remote MCP server could not be reached".to_owned()),
    }
}

/// The status rmcp writes first in an unexpected answer (`HTTP 401 Unauthorized: <body>`).
fn status_of(text: &str) -> Option<u16> {
    text.strip_prefix("HTTP ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
}

fn streamable(error: &StreamableHttpError<reqwest::Error>) -> SourceError {
    match error {
        StreamableHttpError::AuthRequired(_) => status(401),
        StreamableHttpError::InsufficientScope(_) => status(403),
        StreamableHttpError::HttpStatus(failure) => status(failure.status),
        StreamableHttpError::Client(request) => request_failed(request),
        StreamableHttpError::ResponseBodyTooLarge { max_size } => SourceError::TooLarge(*max_size),
        StreamableHttpError::SessionExpired
        | StreamableHttpError::SessionRecoveryTimeout
        | StreamableHttpError::ReinitializationFailed(_) => SourceError::Unreachable(
            "the remote MCP session expired and could not be renewed".to_owned(),
        ),
        StreamableHttpError::Sse(_) => SourceError::BadResponse(
            "the remote MCP server sent an unreadable event stream (or an event over 8 MiB)"
                .to_owned(),
        ),
        // Only the status is kept, never the body.
        StreamableHttpError::UnexpectedServerResponse(text) if let Some(code) = status_of(text) => {
            status(code)
        }
        StreamableHttpError::UnexpectedContentType(_)
        | StreamableHttpError::UnexpectedServerResponse(_)
        | StreamableHttpError::Deserialize(_)
        | StreamableHttpError::MissingSessionIdInResponse => SourceError::BadResponse(
            "the remote MCP server's answer is not MCP over streamable HTTP (check url)".to_owned(),
        ),
        _ => SourceError::Unreachable("the remote MCP server could not be reached".to_owned()),
    }
}

/// How a request failure names the remote MCP server; its resolver refuses non-public
/// addresses, so a failed connection may be that too.
const REMOTE: Peer = Peer {
    unreachable: "the remote MCP server is unreachable",
    cannot_connect: "cannot connect: refused, unreachable, or at a non-public address",
};

fn request_failed(error: &reqwest::Error) -> SourceError {
    match error.status() {
        Some(code) => status(code.as_u16()),
        None => upstream::transport_error(error, &REMOTE),
    }
}

fn status(code: u16) -> SourceError {
    match code {
        401 | 403 => SourceError::Authentication(format!(
            "the remote MCP server refused the credentials (HTTP {code})"
        )),
        429 => SourceError::Throttled("the remote MCP server is throttling (HTTP 429)".to_owned()),
        502..=504 => SourceError::Unreachable(format!(
            "the remote MCP server is unavailable (HTTP {code})"
        )),
        300..=399 => SourceError::BadResponse(format!(
            "the remote MCP server answered a redirect (HTTP {code}); redirects are not followed"
        )),
        404 => {
            SourceError::BadResponse("no MCP endpoint at the configured url (HTTP 404)".to_owned())
        }
        _ => SourceError::BadResponse(format!("the remote MCP server answered HTTP {code}")),
    }
}
