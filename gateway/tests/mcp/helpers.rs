//! Both daemons on port 0 against one test database, and clients for each.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use gateway::{snapshot::SnapshotStore, sources::Registry};
use reqwest::{Method, StatusCode};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use shared::{
    Settings,
    testing::{Api, host, id},
};
use sqlx::PgPool;

use crate::fake::{FakeFiles, SECRET};

/// The shared test settings, with short source deadlines for this suite's failure tests.
pub fn settings() -> Settings {
    let mut settings = shared::testing::settings();
    settings.gateway.source_timeout_ms = 500;
    // Tests stop gateways often; the drain is tested on its own.
    settings.gateway.drain_secs = 0;
    settings
}

/// The production handlers, with the test settings' upstream URLs (no upstream is called
/// unless a test points one at its fake).
pub fn base_registry() -> Registry {
    Registry::new(&settings()).expect("upstream settings are valid")
}

/// The registry the tests serve: the fake for `box`, the production handlers of the other
/// types with the test settings' upstream URLs.
pub fn registry() -> Registry {
    registry_for(&settings())
}

/// As [`registry`], the other types' handlers pointed where `settings` point them (a stack's
/// tweaked settings).
pub fn registry_for(settings: &Settings) -> Registry {
    Registry {
        box_files: Arc::new(FakeFiles),
        ..Registry::new(settings).expect("upstream settings are valid")
    }
}

pub struct Stack {
    /// The REST API's base URL (`…/api/v1`).
    pub control_plane: String,
    /// The control plane's origin (the OAuth issuer in OAuth stacks).
    pub origin: String,
    /// The access key the helpers send, by host (one key per server created with `server`).
    pub keys: std::sync::Mutex<HashMap<String, String>>,
    pub metrics_port: Option<u16>,
    /// Audit records the gateway dropped (queue full).
    pub audit_drops: Arc<std::sync::atomic::AtomicU64>,
    pub gateway_port: u16,
    pub store: Arc<SnapshotStore>,
    pub http: reqwest::Client,
    /// Sends the gateway its shutdown signal.
    pub stop_gateway: Option<tokio::sync::oneshot::Sender<()>>,
    /// Ends when the gateway has stopped.
    pub gateway_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the control plane on `pool` and a gateway on `gateway_pool` (usually the same),
/// serving `box` sources with the fake.
pub async fn spawn_stack(
    pool: PgPool,
    gateway_pool: PgPool,
    tweak: impl FnOnce(&mut Settings),
) -> Stack {
    spawn_stack_serving(pool, gateway_pool, tweak, registry_for).await
}

/// Starts both daemons with the production handlers of every source type, pointed wherever
/// `tweak` points the upstream settings.
pub async fn spawn_real_stack(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> Stack {
    spawn_stack_serving(pool.clone(), pool, tweak, |settings| {
        gateway::sources::Registry::new(settings).expect("upstream settings are valid")
    })
    .await
}

/// Both daemons as OAuth needs them: the control plane on a known port that is also its issuer
/// (`CONTROL_PLANE_PUBLIC_URL`), and an endpoint pool on the gateway's own listener, so that
/// the first server's MCP URL is a real URL a client can connect to (`http://localhost:<port>`;
/// pool entries must be domain names, and `localhost` is the only one that resolves here).
/// Later servers get `https://mcp2.example.com` and on, reached with a Host header.
pub async fn spawn_oauth_stack(pool: PgPool, tweak: impl FnOnce(&mut Settings)) -> Stack {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    spawn_stack_around_gateway(
        pool.clone(),
        pool,
        |settings| {
            settings.control_plane.addr = ([127, 0, 0, 1], port).into();
            settings.common.control_plane_public_url = format!("http://127.0.0.1:{port}");
            tweak(settings);
        },
        |settings, gateway_port| {
            settings.control_plane.mcp_gateway_url_pools = format!(
                "http://localhost:{gateway_port},https://mcp2.example.com,https://mcp3.example.com"
            );
        },
        registry_for,
    )
    .await
}

async fn spawn_stack_serving(
    pool: PgPool,
    gateway_pool: PgPool,
    tweak: impl FnOnce(&mut Settings),
    registry: impl FnOnce(&Settings) -> Registry,
) -> Stack {
    spawn_stack_around_gateway(pool, gateway_pool, tweak, |_, _| {}, registry).await
}

/// The gateway first, so that the control plane's settings may name its port.
async fn spawn_stack_around_gateway(
    pool: PgPool,
    gateway_pool: PgPool,
    tweak: impl FnOnce(&mut Settings),
    with_gateway_port: impl FnOnce(&mut Settings, u16),
    registry: impl FnOnce(&Settings) -> Registry,
) -> Stack {
    let mut settings = settings();
    tweak(&mut settings);
    let registry = registry(&settings);
    let gw = gateway::Application::build(&settings, gateway_pool, registry)
        .await
        .expect("gateway");
    with_gateway_port(&mut settings, gw.port());
    let cp = control_plane::Application::build(&settings, pool)
        .await
        .expect("control plane");
    let origin = format!("http://127.0.0.1:{}", cp.port());
    let control_plane = format!("{origin}/api/v1");
    tokio::spawn(cp.run_until_stopped(std::future::pending()));
    let (gateway_port, store, metrics_port, audit) =
        (gw.port(), gw.store(), gw.metrics_port(), gw.audit_drops());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway_task = tokio::spawn(gw.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Stack {
        control_plane,
        origin,
        keys: std::sync::Mutex::default(),
        metrics_port,
        audit_drops: audit,
        gateway_port,
        store,
        http: reqwest::Client::new(),
        stop_gateway: Some(stop),
        gateway_task,
    }
}

/// Waits for `check` to hold, polling every 10 ms for at most `limit`. Returns how long it took.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Stack {
    /// The control plane's REST API.
    pub fn api(&self) -> Api {
        Api::new(self.control_plane.clone(), self.http.clone())
    }

    /// Signs up and in; returns a session token.
    pub async fn user(&self, email: &str) -> String {
        self.api().user(email).await
    }

    /// A `box` source whose fake behaviour is chosen by `subject_id`.
    pub async fn files(&self, token: &str, subject_id: &str) -> String {
        let body = json!({"type": "box", "source_metadata": {"client_id": "abc", "client_secret": SECRET,
            "subject_type": "enterprise", "subject_id": subject_id}});
        self.source(token, body).await
    }

    /// Creates a source from a `POST /sources` body; returns its id.
    pub async fn source(&self, token: &str, body: Value) -> String {
        self.api().source(token, &body).await
    }

    /// Creates a server and an access key for it, which the helpers then send to its host;
    /// returns `(id, host)`.
    pub async fn server(&self, token: &str, name: &str, sources: &[&str]) -> (String, String) {
        let (id, host) = self.server_without_key(token, name, sources).await;
        let key = self.key(token, &id).await;
        self.keys.lock().unwrap().insert(host.clone(), key);
        (id, host)
    }

    /// A new access key for a server.
    pub async fn key(&self, token: &str, server_id: &str) -> String {
        self.api().key(token, server_id, "test agent").await
    }

    /// The key the helpers send to `host`, if any.
    pub fn key_of(&self, host: &str) -> Option<String> {
        self.keys.lock().unwrap().get(host).cloned()
    }

    /// Creates a server without a key; returns `(id, host)`.
    pub async fn server_without_key(
        &self,
        token: &str,
        name: &str,
        sources: &[&str],
    ) -> (String, String) {
        let server = self
            .api()
            .server(token, &json!({"name": name, "source_ids": sources}))
            .await;
        (id(&server), host(&server))
    }

    /// Any control-plane call; returns the status.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.api()
            .call(method, path, Some(token), body.as_ref())
            .await
    }

    /// The gateway's MCP URL.
    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.gateway_port)
    }

    /// An rmcp client connected to the server on `host`.
    pub async fn client(&self, host: &str) -> RunningService<RoleClient, ()> {
        let headers = HashMap::from([(
            http::header::HOST,
            http::HeaderValue::from_str(host).unwrap(),
        )]);
        let mut config =
            StreamableHttpClientTransportConfig::with_uri(self.mcp_url()).custom_headers(headers);
        if let Some(key) = self.key_of(host) {
            config = config.auth_header(key);
        }
        let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
        ().serve(transport).await.expect("MCP client connects")
    }

    /// A raw JSON-RPC POST to `/mcp` with a Host header (and the host's key, if any).
    pub async fn raw(&self, host: &str, body: &Value) -> reqwest::Response {
        self.raw_with_key(host, self.key_of(host).as_deref(), body)
            .await
    }

    /// A raw JSON-RPC POST to `/mcp` with a Host header and the given key.
    pub async fn raw_with_key(
        &self,
        host: &str,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.mcp_url())
            .header("host", host)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("gateway answers")
    }

    /// Whether the gateway serves `host` right now (a stateless `tools/list`).
    pub async fn serves(&self, host: &str) -> bool {
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
        self.raw(host, &list).await.status() == StatusCode::OK
    }
}

/// Calls a tool with JSON arguments.
pub async fn call(
    client: &RunningService<RoleClient, ()>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let args = args.as_object().expect("object").clone();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("tools/call answers")
}

/// The text of a tool error.
pub fn error_text(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error: {result:?}"
    );
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join(" ")
}
