//! What every upstream handler shares: one HTTP client, a per-source access-token cache that
//! refreshes with a single request however many calls wait, and a sender that retries 429/503
//! as the upstream asks (`Retry-After`, fractional seconds included) or with exponential
//! backoff, a bounded number of times (the caller's deadline bounds the rest). Failures become
//! short reasons that never carry a secret, a token or an upstream body.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use crate::sources::SourceError;

/// Retries of one request after 429/503 before giving up.
const MAX_RETRIES: u32 = 3;
/// Longest single wait we accept from `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Tokens are renewed this long before they expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

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
    /// A token valid for `expires_in` seconds from now.
    pub fn new(value: String, expires_in: u64) -> Self {
        let lifetime = Duration::from_secs(expires_in).saturating_sub(EXPIRY_MARGIN);
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

/// Sends the request built by `build`, retrying 429 and 503. Returns any other response.
pub async fn send(build: impl Fn() -> RequestBuilder) -> Result<Response, SourceError> {
    let mut backoff = Duration::from_millis(200);
    for attempt in 0..=MAX_RETRIES {
        let response = build().send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        if !(status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE)
            || attempt == MAX_RETRIES
        {
            return Ok(response);
        }
        let wait = retry_after(&response)
            .unwrap_or(backoff)
            .min(MAX_RETRY_AFTER);
        tracing::debug!(%status, wait_ms = wait.as_millis() as u64, "upstream throttled; retrying");
        tokio::time::sleep(wait).await;
        backoff *= 2;
    }
    unreachable!("the last attempt returns")
}

/// `Retry-After` in seconds (`2`, `2.128`); HTTP dates are treated as absent.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn transport_error(err: &reqwest::Error) -> SourceError {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    SourceError::Failed(format!("upstream unreachable ({what})"))
}

/// The JSON body of a successful response, or the failure described by `describe_error`.
pub async fn json<T: DeserializeOwned>(response: Response) -> Result<T, SourceError> {
    let bytes = response.bytes().await.map_err(|e| transport_error(&e))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| SourceError::Failed("upstream answered malformed JSON".to_owned()))
}

/// A short reason for a non-success response: the status and the upstream's error code (a
/// machine word such as `invalid_client` or `ErrorItemNotFound`), never its message or body.
pub async fn failure(response: Response, what: &str) -> SourceError {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = [&body["error"]["code"], &body["error"], &body["code"]]
        .into_iter()
        .find_map(|v| v.as_str())
        .filter(|c| {
            c.len() <= 64
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '.')
        });
    let detail = code.map(|c| format!(" ({c})")).unwrap_or_default();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SourceError::Failed(format!("{what} refused: HTTP {}{detail}", status.as_u16()))
        }
        StatusCode::TOO_MANY_REQUESTS => SourceError::Failed(format!(
            "{what} throttled: still HTTP 429 after retries{detail}"
        )),
        _ => SourceError::Failed(format!("{what} failed: HTTP {}{detail}", status.as_u16())),
    }
}
