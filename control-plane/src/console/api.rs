//! The console is a client of the REST API, in process: each page calls the very handlers
//! `curl` reaches (same validation, tenant checks, activity records and error shape) through
//! the API router, without a network hop. So the console can never do what the API refuses,
//! and a validation error names the field the console shows it beside.

use std::{collections::BTreeMap, net::SocketAddr};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;

use crate::{routes, state::AppState};

/// Longest API answer the console reads (lists are paged, so far below this).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// The `/api/v1` routes with their state, ready to be called in process.
#[derive(Clone)]
pub struct Api(Router);

impl Api {
    pub fn new(state: AppState) -> Self {
        let (router, _) = OpenApiRouter::new()
            .nest("/api/v1", routes::api())
            .split_for_parts();
        Self(router.with_state(state))
    }

    /// Calls `method path` (under `/api/v1`) as `caller`, with an optional JSON body.
    pub async fn call(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(headers) = request.headers_mut() {
            caller.fill(headers);
            if body.is_some() {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
        }
        if let Some(peer) = caller.peer {
            request = request.extension(ConnectInfo(peer));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let Ok(request) = request.body(body) else {
            return Reply::bad_path();
        };
        let Ok(response) = self.0.clone().oneshot(request).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body }
    }

    pub async fn get(&self, caller: &Caller, path: &str) -> Reply {
        self.call(caller, Method::GET, path, None).await
    }
}

/// Who the console calls the API as: the session token and what the API reads of the
/// browser's request (its address for rate limits and activity records, its request id).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub token: Option<String>,
    peer: Option<SocketAddr>,
    forwarded: Vec<(header::HeaderName, HeaderValue)>,
}

impl Caller {
    /// The browser's request, without a session yet.
    pub fn of(parts: &Parts) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let forwarded = ["x-forwarded-for", "x-request-id", "user-agent"]
            .into_iter()
            .filter_map(|name| {
                let value = parts.headers.get(name)?.clone();
                Some((header::HeaderName::from_static(name), value))
            })
            .collect();
        Self {
            token: None,
            peer,
            forwarded,
        }
    }

    /// The same browser with a session token.
    pub fn with_token(mut self, token: String) -> Self {
        self.token = Some(token);
        self
    }

    fn fill(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.forwarded {
            headers.insert(name, value.clone());
        }
        if let Some(token) = &self.token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert(header::AUTHORIZATION, value);
        }
    }
}

/// An API answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    fn bad_path() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: Value::Null,
        }
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The body as `T`, when the call succeeded.
    pub fn parse<T: DeserializeOwned>(self) -> Result<T, Self> {
        if !self.is_success() {
            return Err(self);
        }
        serde_json::from_value(self.body.clone()).map_err(|err| {
            tracing::error!(error = %err, "the console cannot read an API answer");
            Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: Value::Null,
            }
        })
    }

    /// The error's code (`validation_failed`, `pool_exhausted`...).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// The error's sentence for a person.
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("The request failed.")
            .to_owned()
    }

    /// For `validation_failed`: what is wrong, by field name (`source_metadata.` dropped, so
    /// names match the form's inputs).
    pub fn field_errors(&self) -> BTreeMap<String, String> {
        let Some(fields) = self.body["error"]["fields"].as_array() else {
            return BTreeMap::new();
        };
        fields
            .iter()
            .filter_map(|f| {
                let name = f["field"].as_str()?;
                let name = name.strip_prefix("source_metadata.").unwrap_or(name);
                Some((name.to_owned(), f["message"].as_str()?.to_owned()))
            })
            .collect()
    }
}
