//! Remote MCP servers (`mcp`): the gateway is an MCP client (rmcp's, over streamable HTTP) of
//! each one and calls its search and fetch tools.
//!
//! One client per source, kept by source id with a fingerprint of its settings (a changed
//! URL or credential gets a new client): the protocol is negotiated once — `server/discover`
//! for 2026-07-28 servers, falling back to the `initialize` handshake (and its session) for
//! older ones — and the client is reused by every call. rmcp renews an expired upstream
//! session (HTTP 404 on it) once and retries the call. A client whose connection broke is
//! dropped so the next call connects afresh; a handshake or call answered 429 or 503 is tried
//! again as [`retry::MCP_BUSY`] says (twice, after 50 and 100 ms, within the source's
//! deadline); clients idle for [`IDLE`] are dropped, which also drops those of sources that
//! left the snapshot.
//!
//! Egress: one HTTP client whose resolver connects only to public addresses, except for hosts
//! in `MCP_ALLOWED_HOSTS`; no redirects; SSE events and JSON answers capped in size; every
//! request, its body included, under the source deadline. Only the configured credential is
//! sent: the agent's access key or OAuth token never leaves the gateway. What a hostile
//! server could make the client read or keep open is bounded in [`wire`]: no standalone event
//! stream, answer streams that carry answers only, capped in bytes.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rmcp::{
    RoleClient, ServiceError,
    model::{CallToolRequestParams, CallToolResponse, CallToolResult, JsonObject, ProtocolVersion},
    service::{ClientLifecycleMode, ClientServiceExt, RunningService},
    transport::{
        StreamableHttpClientTransport, common::client_side_sse::NeverRetry,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use secrecy::ExposeSecret;
use serde_json::Value;
use shared::{
    egress::{PublicOnly, is_public},
    model::{
        source::mcp as mcp_source,
        source::{McpAuth, McpConfig},
    },
};
use uuid::Uuid;

use crate::{
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self, retry},
    },
};

mod errors;
mod results;
pub mod wire;

/// A client unused this long is dropped (and its upstream session with it).
const IDLE: Duration = Duration::from_secs(300);
/// Largest SSE event read from an upstream (JSON answers are capped by rmcp at 16 MiB).
const MAX_EVENT_BYTES: usize = upstream::MAX_JSON_BYTES;
/// Calls in flight to one upstream at most; more wait for a place (within the deadline).
const CONCURRENT_CALLS: usize = 64;

type Client = RunningService<RoleClient, ()>;

/// The `mcp` handler.
pub struct Mcp {
    http: reqwest::Client,
    allowed_hosts: Arc<[String]>,
    clients: Mutex<HashMap<Uuid, Arc<Slot>>>,
    started: Instant,
    /// When idle clients were last looked for (ms since `started`).
    swept_at: AtomicU64,
}

/// One source's client, connected on first use.
struct Slot {
    fingerprint: String,
    client: tokio::sync::OnceCell<Client>,
    /// Last use, in ms since the handler started.
    used_at: AtomicU64,
}

impl Mcp {
    /// A handler reaching upstreams with `connect_timeout`, at public addresses or at
    /// `allowed_hosts` (`MCP_ALLOWED_HOSTS`, lowercase); no request, body included, outlives
    /// `deadline` (the source deadline).
    pub fn new(
        connect_timeout: Duration,
        deadline: Duration,
        allowed_hosts: &[String],
    ) -> anyhow::Result<Self> {
        // The resolver sees names only: a URL naming a listed host at a port not listed
        // was refused with its settings (when written and when loaded).
        let allowed_hosts: Arc<[String]> = mcp_source::allowed_host_names(allowed_hosts).into();
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(deadline)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("mcp-gateway/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(PublicOnly {
                allow: allowed_hosts.clone(),
            })
            .build()?;
        Ok(Self {
            http,
            allowed_hosts,
            clients: Mutex::default(),
            started: Instant::now(),
            swept_at: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The source's slot, new when there is none or its settings changed.
    fn slot(&self, source: Uuid, fingerprint: String) -> Arc<Slot> {
        let now = self.now_ms();
        let mut clients = self.clients.lock().expect("mcp clients lock");
        self.sweep(&mut clients, now);
        let slot = clients
            .entry(source)
            .and_modify(|slot| {
                if slot.fingerprint != fingerprint {
                    *slot = Arc::new(Slot::new(fingerprint.clone()));
                }
            })
            .or_insert_with(|| Arc::new(Slot::new(fingerprint)))
            .clone();
        slot.used_at.store(now, Ordering::Relaxed);
        slot
    }

    /// Drops idle clients, at most once per [`IDLE`] (a scan of the map).
    fn sweep(&self, clients: &mut HashMap<Uuid, Arc<Slot>>, now: u64) {
        let idle = IDLE.as_millis() as u64;
        if now.saturating_sub(self.swept_at.load(Ordering::Relaxed)) < idle {
            return;
        }
        self.swept_at.store(now, Ordering::Relaxed);
        clients.retain(|_, slot| now.saturating_sub(slot.used_at.load(Ordering::Relaxed)) < idle);
    }

    /// Forgets `slot` (if it is still the source's), so the next call connects afresh.
    fn evict(&self, source: Uuid, slot: &Arc<Slot>) {
        let mut clients = self.clients.lock().expect("mcp clients lock");
        if clients.get(&source).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            clients.remove(&source);
        }
    }

    /// Connects and negotiates the protocol: `server/discover` first, the `initialize`
    /// handshake for servers that do not know it.
    async fn connect(&self, config: &McpConfig) -> Result<Client, SourceError> {
        self.check_literal(config)?;
        let mut transport = StreamableHttpClientTransportConfig::with_uri(config.url.as_str())
            .max_sse_event_size(MAX_EVENT_BYTES)
            .max_concurrent_requests(CONCURRENT_CALLS)
            .reinit_on_expired_session(true);
        // A broken answer stream fails its call; it is never resumed (no GET streams at all).
        transport.retry_config = Arc::new(NeverRetry::default());
        match &config.auth {
            McpAuth::None => {}
            McpAuth::Bearer(token) => transport = transport.auth_header(token.expose_secret()),
            McpAuth::Header { name, value } => {
                let header = header(name, value.expose_secret()).ok_or_else(|| {
                    SourceError::Unusable("the auth header is invalid".to_owned())
                })?;
                transport = transport.custom_headers(HashMap::from([header]));
            }
        }
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: None,
        };
        let handshake = || {
            let transport = StreamableHttpClientTransport::with_client(
                wire::Guarded(self.http.clone()),
                transport.clone(),
            );
            ().serve_with_lifecycle(transport, lifecycle.clone())
        };
        retrying(handshake, errors::handshake_asks_to_retry)
            .await
            .map_err(|error| errors::handshake(&error))
    }

    /// IP literals never reach the resolver: one off the allowed list must be public (the
    /// settings' rules refuse such URLs already; this guards the connection itself).
    fn check_literal(&self, config: &McpConfig) -> Result<(), SourceError> {
        let ip = match config.url.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            _ => return Ok(()),
        };
        let host = config.url.host_str().unwrap_or_default();
        if is_public(ip) || self.allowed_hosts.iter().any(|h| h == host) {
            Ok(())
        } else {
            Err(SourceError::Unusable(
                "the remote MCP server is at a non-public address not in MCP_ALLOWED_HOSTS"
                    .to_owned(),
            ))
        }
    }

    /// Calls `tool` with `arguments` on the source's upstream, connecting first if needed.
    async fn call(
        &self,
        source: &ServedSource,
        config: &McpConfig,
        tool: &str,
        arguments: JsonObject,
    ) -> Result<CallToolResult, SourceError> {
        let slot = self.slot(source.id, fingerprint(source.id, config));
        let client = slot.client.get_or_try_init(|| self.connect(config)).await?;
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let once = || client.call_tool_once(params.clone());
        match retrying(once, errors::call_asks_to_retry).await {
            Ok(CallToolResponse::Complete(result)) => Ok(result),
            Ok(_) => Err(SourceError::BadResponse(format!(
                "the remote MCP server's `{tool}` tool asked for input; it cannot be given here"
            ))),
            Err(ServiceError::McpError(error)) => {
                Err(errors::refused_call(client, tool, &error).await)
            }
            Err(error) => {
                // The connection may be unusable: the next call starts a new one.
                self.evict(source.id, &slot);
                Err(errors::call(&error))
            }
        }
    }

    async fn search_remote(
        &self,
        source: &ServedSource,
        config: &McpConfig,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, SourceError> {
        let arguments = object("query", query);
        let result = self
            .call(source, config, &config.search_tool, arguments)
            .await?;
        results::hits(&config.search_tool, result, limit)
    }

    async fn fetch_remote(
        &self,
        source: &ServedSource,
        config: &McpConfig,
        upstream_id: &str,
    ) -> Result<Document, SourceError> {
        if upstream_id.len() > results::MAX_ID_BYTES {
            return Err(SourceError::NotFound);
        }
        let arguments = object("id", upstream_id);
        let result = self
            .call(source, config, &config.fetch_tool, arguments)
            .await?;
        results::document(&config.fetch_tool, result)
    }
}

/// Runs `attempt` again while its failure says the remote MCP server asked to be called
/// later (`asks`: HTTP 429 or 503), as [`retry::MCP_BUSY`] allows. Its other failures, and
/// the last one, are returned as they are.
async fn retrying<T, E, F>(attempt: impl FnMut() -> F, asks: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    retry::run(
        retry::MCP_BUSY,
        "remote MCP server",
        attempt,
        |outcome| match outcome {
            Err(error) if asks(error) => retry::Verdict::Again(None),
            _ => retry::Verdict::Done,
        },
    )
    .await
}

impl Slot {
    fn new(fingerprint: String) -> Self {
        Self {
            fingerprint,
            client: tokio::sync::OnceCell::new(),
            used_at: AtomicU64::new(0),
        }
    }
}

/// What identifies a client: the URL and the credential (tool names are per call).
fn fingerprint(source: Uuid, config: &McpConfig) -> String {
    let url = config.url.as_str();
    match &config.auth {
        McpAuth::None => upstream::credentials_key(source, &[url]),
        McpAuth::Bearer(token) => {
            upstream::credentials_key(source, &[url, "bearer", token.expose_secret()])
        }
        McpAuth::Header { name, value } => {
            upstream::credentials_key(source, &[url, "header", name, value.expose_secret()])
        }
    }
}

fn object(name: &str, value: &str) -> JsonObject {
    JsonObject::from_iter([(name.to_owned(), Value::String(value.to_owned()))])
}

/// The configured auth header, its value marked sensitive (never in a debug output).
fn header(name: &str, value: &str) -> Option<(http::HeaderName, http::HeaderValue)> {
    let name = http::HeaderName::try_from(name).ok()?;
    let mut value = http::HeaderValue::try_from(value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

crate::source_handler!(Mcp, McpConfig, search: search_remote, fetch: fetch_remote);
