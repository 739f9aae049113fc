//! Building the gateway: the snapshot keeper, the routing middleware in front of rmcp's
//! streamable HTTP service at `/mcp`, the probes, and graceful shutdown (in-flight calls
//! finish; SSE streams close through rmcp's cancellation token).

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderName, Method, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService,
    session::{local::LocalSessionManager, never::NeverSessionManager},
};
use serde_json::json;
use shared::{Settings, model::SourceRules};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, util::MapRequestLayer};
use tower_http::{
    cors::{Any, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    access::{Access, Limits, Usage, require_key},
    audit::AuditLog,
    error::HttpError,
    fanout::UpstreamSlots,
    jsonrpc,
    mcp::Gateway,
    oauth,
    routing::{Routing, route_by_host},
    sessions::{SessionBindings, bind_sessions_to_hosts},
    snapshot::{self, Loader, SnapshotStore},
    sources::Registry,
    tools::Tools,
};

/// How often key last-used times are written.
const USAGE_FLUSH: Duration = Duration::from_secs(15);
/// How long the audit writer may take to store what is queued at shutdown.
const AUDIT_DRAIN: Duration = Duration::from_secs(3);

/// A bound, ready-to-run gateway.
pub struct Application {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    router: Router,
    store: Arc<SnapshotStore>,
    pool: PgPool,
    audit: AuditLog,
    audit_writer: tokio::task::JoinHandle<()>,
    stop_audit: CancellationToken,
    usage: Arc<Usage>,
    access: Access,
    keeper: tokio::task::JoinHandle<()>,
    /// Tells the source handlers which sources are served ([`crate::sources::retain_served`]).
    retainer: tokio::task::JoinHandle<()>,
    registry: Registry,
    cancel: CancellationToken,
    /// How long calls in flight may take to finish after the stop signal.
    grace: Duration,
    /// `HTTP_HEADER_TIMEOUT_SECS`.
    header_timeout: Duration,
    /// Set at the stop signal.
    draining: Draining,
    /// `GATEWAY_DRAIN_SECS`: how long a stopping replica keeps accepting.
    drain: Duration,
}

impl Application {
    /// Starts loading the configuration and binds `settings.gateway_addr` (port 0 picks one).
    pub async fn build(
        settings: &Settings,
        pool: PgPool,
        registry: Registry,
    ) -> anyhow::Result<Self> {
        let store = Arc::new(SnapshotStore::default());
        let loader = Loader {
            pool: pool.clone(),
            keyring: Arc::new(settings.common.keyring()?),
            rules: Arc::new(SourceRules::from_settings(&settings.sources)),
        };
        let stop_audit = CancellationToken::new();
        let (audit, writer) = AuditLog::new(
            pool.clone(),
            settings.gateway.audit_buffer,
            stop_audit.clone(),
        );
        let audit_writer = tokio::spawn(writer);
        let usage = Arc::new(Usage::default());
        let limits = Limits {
            per_minute: settings.gateway.key_requests_per_minute,
            trust_forwarded_for: settings.gateway.trust_forwarded_for,
        };
        let access = Access::new(
            limits,
            usage.clone(),
            &settings.common.control_plane_public_url,
            store.clone(),
        );
        let keeper = tokio::spawn(snapshot::keep_current(
            store.clone(),
            loader,
            Duration::from_secs(settings.gateway.resync_secs),
        ));
        let cancel = CancellationToken::new();
        let draining = Draining::default();
        let retainer = tokio::spawn(crate::sources::retain_served(
            store.clone(),
            registry.clone(),
        ));
        let tools = Arc::new(Tools {
            registry: registry.clone(),
            source_timeout: Duration::from_millis(settings.gateway.source_timeout_ms),
            max_results: settings.gateway.max_results,
            slots: UpstreamSlots::new(settings.gateway.upstream_calls_per_server),
        });
        let routing = Routing {
            store: store.clone(),
            trust_forwarded_host: settings.gateway.trust_forwarded_host,
            allowed_origins: settings.gateway.allowed_origins.clone().into(),
        };
        let router = router(
            Gateway {
                tools,
                audit: audit.clone(),
            },
            routing,
            access.clone(),
            settings.common.control_plane_public_url.as_str().into(),
            draining.clone(),
            settings.gateway.sessions,
            cancel.clone(),
        );
        let listener = TcpListener::bind(settings.gateway.addr)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot listen on {} (GATEWAY_ADDR): {err}",
                    settings.gateway.addr
                )
            })?;
        let metrics =
            shared::prometheus::bind("GATEWAY_METRICS_ADDR", &settings.gateway.metrics_addr)
                .await?;
        // The longest call is bounded by the source deadline.
        let grace =
            Duration::from_millis(settings.gateway.source_timeout_ms) + Duration::from_secs(2);
        Ok(Self {
            listener,
            metrics,
            router,
            store,
            pool,
            audit,
            audit_writer,
            stop_audit,
            usage,
            access,
            keeper,
            retainer,
            registry,
            cancel,
            grace,
            header_timeout: Duration::from_secs(settings.common.http_header_timeout_secs),
            draining,
            drain: Duration::from_secs(settings.gateway.drain_secs),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// The snapshot holder (tests and benchmarks watch it).
    pub fn store(&self) -> Arc<SnapshotStore> {
        self.store.clone()
    }

    /// The port of the `/metrics` listener, if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        shared::prometheus::port(self.metrics.as_ref())
    }

    /// How many audit records were dropped because the queue was full.
    pub fn audit_drops(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.audit.drops()
    }

    /// Serves until `shutdown` resolves. Then it stops accepting connections at once, lets
    /// the calls in flight finish, and after the grace period closes what is still open (MCP
    /// event streams, which would otherwise keep the process alive).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (cancel, grace) = (self.cancel.clone(), self.grace);
        let metrics = self.metrics.map(|listener| {
            let store = self.store.clone();
            tokio::spawn(shared::prometheus::serve(listener, move || {
                let store = store.clone();
                async move { snapshot_gauges(&store) }
            }))
        });
        let usage_flush = tokio::spawn(
            self.usage
                .clone()
                .flush_every(self.pool.clone(), USAGE_FLUSH),
        );
        let access = self.access.clone();
        let forget = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                access.forget_idle();
            }
        });
        let (draining, drain) = (self.draining.clone(), self.drain);
        let stopping = async move {
            shutdown.await;
            // Unready at once; keep answering (each response closing its connection) while
            // proxies notice, then stop accepting.
            draining.start();
            tracing::info!(
                drain_ms = drain.as_millis() as u64,
                "stopping: draining connections"
            );
            tokio::time::sleep(drain).await;
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                "stopping: finishing calls in flight"
            );
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                cancel.cancel();
            });
        };
        let result =
            shared::serve::serve(self.listener, self.router, self.header_timeout, stopping).await;
        self.cancel.cancel();
        self.keeper.abort();
        self.retainer.abort();
        // Connections a handler keeps (database pools) are closed.
        self.registry.retain(&std::collections::HashSet::new());
        forget.abort();
        usage_flush.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // What was queued still gets written (unless the database is away too long).
        self.stop_audit.cancel();
        if tokio::time::timeout(AUDIT_DRAIN, self.audit_writer)
            .await
            .is_err()
        {
            tracing::warn!("audit records still queued at shutdown were not written");
        }
        self.usage.flush(&self.pool).await;
        result
    }
}

/// Snapshot health, read at each scrape.
fn snapshot_gauges(store: &SnapshotStore) {
    let snapshot = store.load();
    metrics::gauge!("snapshot_loaded").set(if snapshot.is_some() { 1.0 } else { 0.0 });
    metrics::gauge!("snapshot_version").set(snapshot.as_ref().map_or(0.0, |s| s.version as f64));
    metrics::gauge!("snapshot_servers").set(snapshot.as_ref().map_or(0.0, |s| s.len() as f64));
    metrics::gauge!("snapshot_age_seconds").set(store.age_secs());
    metrics::gauge!("snapshot_stale").set(if store.is_stale() { 1.0 } else { 0.0 });
}

/// `/mcp` behind the host routing, plus the probes.
fn router(
    gateway: Gateway,
    routing: Routing,
    access: Access,
    issuer: Arc<str>,
    draining: Draining,
    sessions: bool,
    cancel: CancellationToken,
) -> Router {
    let config = StreamableHttpServerConfig::default()
        // Our routing middleware decides which hosts are served; rmcp's loopback-only
        // default would refuse every pool domain.
        .disable_allowed_hosts()
        .with_legacy_session_mode(sessions)
        .with_json_response(!sessions)
        .with_max_request_body_bytes(jsonrpc::MAX_BODY_BYTES)
        .with_cancellation_token(cancel);
    let mcp = if sessions {
        let service = StreamableHttpService::new(
            move || Ok(gateway.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        Router::new()
            .route_service("/mcp", service)
            .layer(middleware::from_fn_with_state(
                SessionBindings::default(),
                bind_sessions_to_hosts,
            ))
    } else {
        let service = StreamableHttpService::new(
            move || Ok(gateway.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        );
        Router::new().route_service("/mcp", service)
    };
    let store = routing.store.clone();
    // Protected resource metadata (RFC 9728): public, readable from any origin.
    let metadata = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth::resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(oauth::resource_metadata),
        )
        .with_state((routing.clone(), issuer))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET])
                .allow_headers([
                    header::AUTHORIZATION,
                    HeaderName::from_static("mcp-protocol-version"),
                ]),
        );
    let mcp = mcp
        .layer(middleware::from_fn(jsonrpc::read_and_check))
        .layer(middleware::from_fn_with_state(access, require_key))
        .layer(middleware::from_fn_with_state(routing, route_by_host));

    let layers = ServiceBuilder::new()
        .layer(MapRequestLayer::new(shared::request_id::sanitize::<Body>))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    // Borrowed: the span records the values as it is created (no copy per request).
                    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(),
                        host = %header("host"), request_id = %header("x-request-id"), server_id = tracing::field::Empty)
                })
                .on_request(())
                .on_response(access_line),
        )
        .layer(PropagateRequestIdLayer::x_request_id());

    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz).with_state((store, draining.clone())))
        .merge(mcp)
        .merge(metadata)
        .fallback(|| async { HttpError::no_route() })
        // After routing, so requests are counted by route.
        .route_layer(middleware::from_fn(shared::prometheus::track_http))
        .layer(layers)
        .layer(middleware::from_fn_with_state(
            draining,
            close_when_draining,
        ))
}

/// The access log: one line per request, at INFO under the target `access`, inside the
/// request's span (method, path, host, request id, server id). `LOG_LEVEL=info,access=off`
/// turns it off.
fn access_line(response: &Response, latency: Duration, _span: &tracing::Span) {
    tracing::info!(target: "access", status = response.status().as_u16(),
        latency_us = latency.as_micros() as u64, "request served");
}

/// Ready once a snapshot is loaded, and stays ready while the database is away: the last
/// snapshot keeps serving (taking every replica out of rotation would turn an outage of the
/// configuration store into an outage of the product). Unready at once when stopping.
async fn readyz(State((store, draining)): State<(Arc<SnapshotStore>, Draining)>) -> Response {
    if draining.is_on() {
        let body = json!({"status": "draining", "message": "This replica is stopping; send requests elsewhere."});
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    match store.load() {
        Some(snapshot) => Json(json!({
            "status": "ready",
            "servers": snapshot.len(),
            "snapshot_version": snapshot.version,
            "stale": store.is_stale(),
            "snapshot_age_secs": store.age_secs(),
        }))
        .into_response(),
        None => HttpError::not_ready().into_response(),
    }
}

/// Set once the replica is stopping: `/readyz` answers 503 and every response says
/// `Connection: close`, so proxies and clients move their keep-alive connections elsewhere
/// before the listener closes.
#[derive(Clone, Default)]
pub struct Draining(Arc<std::sync::atomic::AtomicBool>);

impl Draining {
    fn start(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Adds `Connection: close` to every response while draining.
async fn close_when_draining(
    State(draining): State<Draining>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    if draining.is_on() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}
