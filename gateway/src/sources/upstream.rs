//! What every upstream handler shares: one HTTP client, a per-source access-token cache that
//! refreshes with a single request however many calls wait, a sender that retries 429/503 as
//! [`retry`] says, and the one mapping of an HTTP request that got no answer
//! ([`transport_error`]). Failures become short reasons that never carry a secret, a token or
//! an upstream body.
//!
//! Every body is read with a cap, while it streams: an answer longer than the cap is refused
//! (by its `Content-Length` before reading, else as soon as the cap is passed), so an upstream
//! can never make the gateway hold more than the cap of one answer per call.

pub mod retry;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::sources::SourceError;

/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Longest JSON answer read. The largest legitimate ones (a Graph message with its text body,
/// a page of 200 Box or Cortex Search results, a partition of a statement's result) are well
/// under it; parsed, an answer takes a few times its size, so the cap bounds that too.
pub const MAX_JSON_BYTES: usize = 8 * 1024 * 1024;
/// Longest error answer read: only its code is used, and that comes first.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// One `reqwest::Client` for the process: connection pooling, connect timeout, no redirects
/// (a redirect could carry a bearer token to a host we did not choose).
pub fn client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mcp-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("HTTP client configuration is valid")
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub struct Token {
    pub value: Arc<str>,
    renew_at: Instant,
}

impl Token {
    /// A token valid for `expires_in` seconds from now. It is renewed a minute early, or
    /// halfway through its life when that is shorter.
    pub fn new(value: String, expires_in: u64) -> Self {
        let validity = Duration::from_secs(expires_in);
        let lifetime = validity.saturating_sub(EXPIRY_MARGIN.min(validity / 2));
        Self {
            value: value.into(),
            renew_at: Instant::now() + lifetime,
        }
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// Tokens by cache key (source id plus a fingerprint of its credentials, so changed
/// credentials never reuse a token obtained with the old ones).
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl TokenCache {
    fn slot(&self, key: &str) -> Slot {
        self.slots
            .lock()
            .expect("token cache lock")
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// The cached token for `key`, or a new one from `fetch`. Concurrent callers for the same
    /// key wait for the one request in flight instead of sending their own.
    pub async fn get<F, Fut>(&self, key: &str, fetch: F) -> Result<Token, SourceError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Token, SourceError>>,
    {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.clone());
        }
        let token = fetch().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Forgets `key`'s token if it is still `rejected` (after a 401).
    pub async fn invalidate(&self, key: &str, rejected: &Token) {
        let slot = self.slot(key);
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.value, &rejected.value))
        {
            *cached = None;
        }
    }
}

/// Requests an OAuth 2 client-credentials token (Microsoft identity platform, Box). A refusal
/// becomes `authentication failed (<error code>)`, never the upstream's description, which can
/// echo the credentials.
pub async fn client_credentials(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Token, SourceError> {
    let response = send(|| http.post(url).form(form)).await?;
    if !response.status().is_success() {
        let body = error_body(response).await;
        let code = body["error"].as_str().filter(|c| is_code(c));
        return Err(SourceError::Authentication(format!(
            "authentication failed ({})",
            code.unwrap_or("no reason given")
        )));
    }
    let body: Value = json(response).await?;
    match (body["access_token"].as_str(), body["expires_in"].as_u64()) {
        (Some(token), Some(expires_in)) => Ok(Token::new(token.to_owned(), expires_in)),
        _ => Err(SourceError::Authentication(
            "authentication failed (no token in the answer)".to_owned(),
        )),
    }
}

/// Sends the request `build` makes with a bearer token from `tokens` (obtained by `fetch` when
/// none is cached). A 401 drops that token and sends once more with a new one
/// ([`retry::NEW_TOKEN`]); the response is returned whatever its status. A token refused on
/// the last attempt stays cached: a new one did not help, so the next call does not ask twice.
pub async fn with_token<F, Fut>(
    tokens: &TokenCache,
    key: &str,
    fetch: F,
    build: impl Fn(&str) -> RequestBuilder,
) -> Result<Response, SourceError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Token, SourceError>>,
{
    let refused: Mutex<Option<Token>> = Mutex::default();
    let (fetch, build, refused) = (&fetch, &build, &refused);
    let attempt = || async move {
        let earlier = refused.lock().expect("refused token lock").take();
        if let Some(token) = earlier {
            tokens.invalidate(key, &token).await;
        }
        let token = tokens.get(key, fetch).await?;
        let response = send(|| build(&token.value)).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            *refused.lock().expect("refused token lock") = Some(token);
        }
        Ok(response)
    };
    let unauthorized = retry::on_status(&[StatusCode::UNAUTHORIZED]);
    retry::run(retry::NEW_TOKEN, "token", attempt, unauthorized).await
}

/// A cache key for a source's credentials: the source id and a hash of everything that
/// identifies the credentials, so changed credentials never reuse a token of the old ones.
pub fn credentials_key(source: uuid::Uuid, parts: &[&str]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{source}:{:x}", hasher.finish())
}

/// Sends the request built by `build`, retrying 429 and 503 ([`retry::THROTTLED`]). Returns
/// any other response, or the last one.
pub async fn send(build: impl Fn() -> RequestBuilder) -> Result<Response, SourceError> {
    let attempt = || async { build().send().await.map_err(|e| transport_error(&e, &SAAS)) };
    retry::run(
        retry::THROTTLED,
        "upstream",
        attempt,
        retry::on_status(retry::BUSY),
    )
    .await
}

/// How a transport failure names an upstream: `unreachable` leads the reason, and
/// `cannot_connect` says what a failed connection can mean for it.
pub struct Peer {
    pub unreachable: &'static str,
    pub cannot_connect: &'static str,
}

/// The SaaS APIs, reached with [`client`].
const SAAS: Peer = Peer {
    unreachable: "upstream unreachable",
    cannot_connect: "cannot connect",
};

/// An HTTP request that got no (whole) answer: timed out, not connected, or failed on the way,
/// as [`SourceError::Unreachable`]. The error's own text is never passed on (it names the URL).
pub fn transport_error(err: &reqwest::Error, peer: &Peer) -> SourceError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        peer.cannot_connect
    } else {
        "request failed"
    };
    SourceError::Unreachable(format!("{} ({what})", peer.unreachable))
}

/// The body of a response as text, at most `max_bytes` of it (cut at a character boundary);
/// the flag says whether anything was cut.
pub async fn text(mut response: Response, max_bytes: usize) -> Result<(String, bool), SourceError> {
    let mut bytes = Vec::new();
    let mut cut = false;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, &SAAS))?
    {
        let room = max_bytes - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        // A multi-byte character cut in half decodes as U+FFFD at the end: drop it.
        while text.ends_with('\u{FFFD}') {
            text.pop();
        }
    }
    Ok((text, cut))
}

/// Whether an upstream error code is a short machine word, safe to repeat.
fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
}

/// The whole body, at most `max_bytes` of it: a longer body is [`SourceError::TooLarge`],
/// known from its `Content-Length` before anything is read, else when the cap is passed (the
/// rest is never read: dropping the response closes the connection).
pub async fn bytes_capped(
    mut response: Response,
    max_bytes: usize,
) -> Result<Vec<u8>, SourceError> {
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(SourceError::TooLarge(max_bytes));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&e, &SAAS))?
    {
        if chunk.len() > max_bytes - bytes.len() {
            return Err(SourceError::TooLarge(max_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The JSON body of a response whose status the caller has checked, at most
/// [`MAX_JSON_BYTES`] of it.
pub async fn json<T: DeserializeOwned>(response: Response) -> Result<T, SourceError> {
    let bytes = bytes_capped(response, MAX_JSON_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|_| SourceError::BadResponse("upstream answered malformed JSON".to_owned()))
}

/// An error answer's JSON, or `null` when it is not JSON or too long to be worth reading.
async fn error_body(response: Response) -> Value {
    bytes_capped(response, MAX_ERROR_BYTES)
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// A short reason for a non-success response: the status and the upstream's error code (a
/// machine word such as `invalid_client` or `ErrorItemNotFound`), never its message or body.
pub async fn failure(response: Response, what: &str) -> SourceError {
    let status = response.status();
    let body = error_body(response).await;
    let code = [&body["error"]["code"], &body["error"], &body["code"]]
        .into_iter()
        .find_map(|v| v.as_str())
        .filter(|c| is_code(c));
    let detail = code.map(|c| format!(" ({c})")).unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SourceError::Authentication(format!("{what} refused: HTTP {}{detail}", status.as_u16()))
        }
        StatusCode::TOO_MANY_REQUESTS => SourceError::Throttled(format!(
            "{what} throttled: still HTTP 429 after retries{detail}"
        )),
        _ => SourceError::BadResponse(format!("{what} failed: HTTP {}{detail}", status.as_u16())),
    }
}
