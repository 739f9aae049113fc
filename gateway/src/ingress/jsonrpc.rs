//! The MCP request body, read and checked before rmcp sees it, so every malformed request gets
//! the JSON-RPC answer the MCP transport prescribes (rmcp itself answers some of them with a
//! plain-text 415):
//! - not JSON (or nested beyond serde_json's limit): 400 with error -32700;
//! - JSON but not one JSON-RPC 2.0 message (a batch, `jsonrpc` other than "2.0", an `id` that is
//!   null, fractional or boolean, a `method` that is not a string): 400 with error -32600;
//! - larger than 256 KiB: 413; not arrived within 10 s: 408.
//!
//! The check borrows from the body and builds no document, so it costs little beside rmcp's
//! own parse.

use std::time::Duration;

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, value::RawValue};

/// Largest accepted MCP request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// How long a client may take to send a request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The request with its body read, if it is one JSON-RPC message (or not a POST); the
/// answer to send instead otherwise.
pub async fn read_checked(request: Request) -> Result<Request, Box<Response>> {
    if request.method() != Method::POST {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let read = to_bytes(body, MAX_BODY_BYTES);
    tokio::pin!(read);
    // A small body has usually arrived with the headers: read it without arming the timer.
    let read = match futures::FutureExt::now_or_never(&mut read) {
        Some(read) => Ok(read),
        None => tokio::time::timeout(BODY_READ_TIMEOUT, read).await,
    };
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            let message = format!("MCP request bodies are limited to {MAX_BODY_BYTES} bytes.");
            let body = json!({"error": {"code": "payload_too_large", "message": message}});
            return Err(Box::new(closing(
                (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response(),
            )));
        }
        Err(_) => {
            let body = json!({"error": {"code": "request_timeout", "message": "The request body took too long to arrive."}});
            return Err(Box::new(closing(
                (StatusCode::REQUEST_TIMEOUT, Json(body)).into_response(),
            )));
        }
    };
    if let Err((code, message)) = check(&bytes) {
        return Err(Box::new(rpc_error(code, message)));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The parts of a message that decide whether it is one JSON-RPC 2.0 message.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a str>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
}

/// A field that is present, null included (`Option` alone would read null as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// `Err((code, message))` unless `body` is one JSON-RPC 2.0 message.
fn check(body: &[u8]) -> Result<(), (i32, &'static str)> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        // Parse it anyway, so that broken JSON still gets the parse error.
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err((
                -32600,
                "Invalid Request: batches are not supported; send one message per request",
            )),
            Err(_) => Err((-32700, "Parse error: the body is not valid JSON")),
        };
    }
    if first != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err((
                -32600,
                "Invalid Request: the body must be a JSON-RPC message object",
            )),
            Err(_) => Err((-32700, "Parse error: the body is not valid JSON")),
        };
    }
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|_| (-32700, "Parse error: the body is not valid JSON"))?;
    if envelope.jsonrpc != Some("2.0") {
        return Err((-32600, "Invalid Request: `jsonrpc` must be \"2.0\""));
    }
    if let Some(id) = envelope.id
        && !valid_id(id.get())
    {
        return Err((
            -32600,
            "Invalid Request: `id` must be a string or an integer",
        ));
    }
    if envelope.method.is_some_and(|m| !m.get().starts_with('"')) {
        return Err((-32600, "Invalid Request: `method` must be a string"));
    }
    Ok(())
}

/// A string or an integer (MCP forbids null ids; fractions and booleans are not ids).
fn valid_id(raw: &str) -> bool {
    raw.starts_with('"')
        || (!raw.is_empty()
            && raw
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-')))
}

fn rpc_error(code: i32, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut response = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The body may not have been read to its end: the connection cannot be reused.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_rpc_message_passes_and_anything_else_is_named() {
        for good in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":-7,"result":{}}"#,
        ] {
            assert_eq!(check(good.as_bytes()), Ok(()), "{good}");
        }
        for (bad, code) in [
            (r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, -32600),
            (r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":true,"method":"ping"}"#, -32600),
            (r#"{"id":1,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#, -32600),
            (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, -32600),
            ("42", -32600),
            ("{not json", -32700),
            ("[1,", -32700),
        ] {
            assert_eq!(check(bad.as_bytes()).map_err(|e| e.0), Err(code), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(check(deep.as_bytes()).is_err());
    }
}
