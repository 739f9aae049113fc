//! The HTTP side of the gateway's MCP client: rmcp's reqwest client with the rules a gateway
//! serving many tenants needs against a remote MCP server that may be hostile.
//!
//! The gateway needs nothing from a remote server but answers to its own calls, so:
//! - **No standalone stream.** rmcp opens a GET event stream after the handshake, kept for
//!   the client's whole life and outside any call's deadline: a server could stream into it
//!   for as long as it liked. Every GET is refused here as unsupported (rmcp then goes on
//!   without it), which also rules out resuming an answer stream by GET.
//! - **Answer streams carry answers.** On the event stream answering a call, notifications are
//!   dropped on arrival (never parsed by rmcp nor queued for the handler), and only the first
//!   [`REQUESTS_PER_STREAM`] server requests reach the client handler, which answers them at
//!   once with nothing (no roots; elicitation declined; sampling refused); later ones are
//!   dropped, so they cannot pile up replies.
//! - **Nothing to resume.** Event ids and `retry` pauses are removed, so rmcp never waits to
//!   reconnect (it would wait as long as the server said, then be refused).
//! - **Bounded bytes and time.** An answer stream ends after [`MAX_STREAM_BYTES`] of events;
//!   and the reqwest client given here has a total timeout (the source deadline), so no body
//!   is read past it.

use std::{collections::HashMap, sync::Arc};

use futures::{StreamExt, stream::BoxStream};
use http::{HeaderName, HeaderValue};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_client::{
        SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    },
};
use serde::{Deserialize, de::IgnoredAny};

/// Most event bytes read from one answer stream.
pub const MAX_STREAM_BYTES: usize = 8 * 1024 * 1024;
/// Server requests on one answer stream that are answered; later ones are dropped.
pub const REQUESTS_PER_STREAM: usize = 4;

/// rmcp's reqwest client, guarded as the module says.
#[derive(Clone)]
pub struct Guarded(pub reqwest::Client);

/// Why the gateway stopped reading an answer stream.
#[derive(Debug, thiserror::Error)]
#[error("the remote MCP server sent over {MAX_STREAM_BYTES} bytes of events without its answer")]
pub struct StreamTooLong;

type Events = BoxStream<'static, Result<sse_stream::Sse, SseError>>;

impl StreamableHttpClient for Guarded {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.0
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await
            .map(guard)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.0
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
            .map(guard)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.0
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        _uri: Arc<str>,
        _session_id: Option<Arc<str>>,
        _last_event_id: Option<String>,
        _auth_header: Option<String>,
        _custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<Events, StreamableHttpError<Self::Error>> {
        Err(StreamableHttpError::ServerDoesNotSupportSse)
    }
}

fn guard(response: StreamableHttpPostResponse) -> StreamableHttpPostResponse {
    match response {
        StreamableHttpPostResponse::Sse(events, session) => {
            StreamableHttpPostResponse::Sse(answers_only(events), session)
        }
        other => other,
    }
}

/// What an event's JSON-RPC message is, read without building it.
#[derive(Deserialize)]
struct Kind {
    method: Option<IgnoredAny>,
    id: Option<IgnoredAny>,
}

enum Verdict {
    Keep,
    Drop,
    Stop,
}

/// The answer stream with notifications and surplus requests left out, ended with
/// [`StreamTooLong`] past [`MAX_STREAM_BYTES`].
fn answers_only(events: Events) -> Events {
    let (mut bytes, mut requests) = (0usize, 0usize);
    events
        .map(move |event| {
            let Ok(mut event) = event else {
                return (Verdict::Keep, event);
            };
            // Nothing here is ever resumed: an id or a retry pause would only make rmcp wait
            // (for as long as the server says) before a GET that is refused anyway.
            event.id = None;
            event.retry = None;
            let data = event.data.as_deref().unwrap_or_default();
            bytes += data.len() + event.event.as_deref().map_or(0, str::len);
            if bytes > MAX_STREAM_BYTES {
                return (Verdict::Stop, Err(SseError::Body(Box::new(StreamTooLong))));
            }
            let verdict = match serde_json::from_str::<Kind>(data) {
                Ok(Kind {
                    method: Some(_),
                    id: None,
                }) => Verdict::Drop,
                Ok(Kind {
                    method: Some(_),
                    id: Some(_),
                }) => {
                    requests += 1;
                    if requests > REQUESTS_PER_STREAM {
                        Verdict::Drop
                    } else {
                        Verdict::Keep
                    }
                }
                // Answers, and whatever rmcp should judge itself.
                _ => Verdict::Keep,
            };
            (verdict, Ok(event))
        })
        .scan(false, |stopped, (verdict, event)| {
            // The item after a stop ends the stream.
            if *stopped {
                return std::future::ready(None);
            }
            *stopped = matches!(verdict, Verdict::Stop);
            std::future::ready(Some((verdict, event)))
        })
        .filter_map(|(verdict, event)| {
            std::future::ready(match verdict {
                Verdict::Drop => None,
                Verdict::Keep | Verdict::Stop => Some(event),
            })
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Result<sse_stream::Sse, SseError> {
        Ok(sse_stream::Sse {
            event: None,
            data: Some(data.to_owned()),
            id: None,
            retry: None,
        })
    }

    async fn passed(events: Vec<Result<sse_stream::Sse, SseError>>) -> Vec<String> {
        answers_only(futures::stream::iter(events).boxed())
            .map(|e| match e {
                Ok(e) => e.data.unwrap_or_default(),
                Err(e) => format!("error: {e}"),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn notifications_are_dropped_and_requests_past_the_first_few() {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#;
        let request = r#"{"jsonrpc":"2.0","id":7,"method":"roots/list"}"#;
        let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let mut events: Vec<_> = (0..10).map(|_| event(note)).collect();
        events.extend((0..10).map(|_| event(request)));
        events.push(event(answer));
        let passed = passed(events).await;
        assert_eq!(passed.len(), REQUESTS_PER_STREAM + 1, "{passed:?}");
        let resumable = Ok(sse_stream::Sse {
            event: None,
            data: Some(answer.to_owned()),
            id: Some("7".to_owned()),
            retry: Some(3_600_000),
        });
        let mut guarded = answers_only(futures::stream::iter([resumable]).boxed());
        let kept = guarded.next().await.unwrap().unwrap();
        assert_eq!((kept.id, kept.retry), (None, None));
        assert_eq!(passed.last().map(String::as_str), Some(answer));
    }

    #[tokio::test]
    async fn a_stream_ends_with_an_error_past_its_byte_budget() {
        let note = format!(
            r#"{{"jsonrpc":"2.0","method":"n","params":"{}"}}"#,
            "x".repeat(1 << 20)
        );
        let answer = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let mut events: Vec<_> = (0..9).map(|_| event(&note)).collect();
        events.push(event(answer));
        let passed = passed(events).await;
        assert_eq!(passed.len(), 1, "{passed:?}");
        assert!(passed[0].starts_with("error: "), "{passed:?}");
    }
}
