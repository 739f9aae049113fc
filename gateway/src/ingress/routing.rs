//! Host → MCP server: resolves the request's host to a live server in the current snapshot
//! (404 if none, 503 before the first load) and applies the Origin rule of the MCP transport
//! (DNS rebinding). The first step of admission (`admission.rs`).

use std::sync::Arc;

use axum::{
    extract::Request,
    http::{HeaderMap, Uri, header},
};
use shared::model::routing_key;

use crate::{
    ingress::error::HttpError,
    snapshot::{ServedServer, SnapshotStore},
};

/// What routing needs.
#[derive(Clone)]
pub struct Routing {
    pub store: Arc<SnapshotStore>,
    pub trust_forwarded_host: bool,
    pub allowed_origins: Arc<[String]>,
}

impl Routing {
    /// The server an MCP request is for, once its Origin passes the transport's rule (an
    /// Origin is either the server's own endpoint or one the deployment allows).
    pub fn admit(&self, request: &Request) -> Result<Arc<ServedServer>, HttpError> {
        let server = self.server_for(request)?;
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            let own = origin.eq_ignore_ascii_case(&server.endpoint);
            if !own
                && !self
                    .allowed_origins
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(origin))
            {
                return Err(HttpError::forbidden_origin());
            }
        }
        Ok(server)
    }

    /// The live server behind the request's host: 503 before the first snapshot, 404 for a
    /// host no live server is on.
    pub fn server_for(&self, request: &Request) -> Result<Arc<ServedServer>, HttpError> {
        let key = request_host(request.headers(), request.uri(), self.trust_forwarded_host)
            .as_deref()
            .map(routing_key);
        self.store
            .read(|snapshot| key.and_then(|key| snapshot.server(&key).cloned()))
            .ok_or_else(HttpError::not_ready)?
            .ok_or_else(HttpError::unknown_host)
    }
}

/// `X-Forwarded-Host` (first hop) when the proxy is trusted, else `Host`, else the URI's
/// authority (HTTP/2).
fn request_host(headers: &HeaderMap, uri: &Uri, trust_forwarded_host: bool) -> Option<String> {
    let header_value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned())
    };
    let forwarded = trust_forwarded_host
        .then(|| header_value("x-forwarded-host"))
        .flatten();
    forwarded
        .or_else(|| header_value(header::HOST.as_str()))
        .or_else(|| uri.host().map(str::to_owned))
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_host_counts_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("gateway.internal:8081"));
        headers.insert(
            "x-forwarded-host",
            HeaderValue::from_static("mcp1.example.com, proxy.internal"),
        );
        let uri: Uri = "/mcp".parse().unwrap();
        assert_eq!(
            request_host(&headers, &uri, false).as_deref(),
            Some("gateway.internal:8081")
        );
        assert_eq!(
            request_host(&headers, &uri, true).as_deref(),
            Some("mcp1.example.com")
        );
    }
}
