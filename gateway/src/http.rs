//! The gateway's HTTP surface: rmcp's streamable HTTP service at `/mcp` behind the host
//! routing, access and JSON-RPC checks, the OAuth protected resource metadata, the probes,
//! the access log, and draining (a stopping replica turns unready and closes connections).

use std::{sync::Arc, time::Instant};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderName, Method, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService,
    session::{local::LocalSessionManager, never::NeverSessionManager},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::{
    cors::{Any, CorsLayer},
    request_id::PropagateRequestIdLayer,
};
use tracing::Instrument;

use crate::{
    access::Access,
    admission::{self, Admission},
    context::text,
    error::HttpError,
    jsonrpc,
    mcp::Gateway,
    oauth,
    routing::Routing,
    sessions::{SessionBindings, bind_sessions_to_hosts},
    snapshot::SnapshotStore,
};

/// `/mcp` behind the host routing, plus the probes.
pub fn router(
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
    let draining_state = draining.clone();
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
    let mcp = mcp.layer(middleware::from_fn_with_state(
        Arc::new(Admission { routing, access }),
        admission::admit,
    ));

    let layers = shared::request_id::assign()
        .layer(middleware::from_fn_with_state(draining, observe))
        .layer(PropagateRequestIdLayer::x_request_id());

    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz).with_state((store, draining_state)))
        .merge(mcp)
        .merge(metadata)
        .fallback(|| async { HttpError::no_route() })
        // After routing, so requests are counted by route.
        .route_layer(middleware::from_fn(shared::prometheus::track_http))
        .layer(layers)
}

/// The MCP server a response came from, for the access line (admission sets it).
#[derive(Clone, Copy)]
pub struct ServedBy(pub uuid::Uuid);

/// Around every request: the access log (one line at INFO under the target `access`, with the
/// method, path, host, request id, server id, status and latency as its own fields;
/// `LOG_LEVEL=info,access=off` turns it off) and, while draining, `Connection: close` on every
/// response (proxies and clients then move their keep-alive connections elsewhere before the
/// listener closes).
///
/// The request's span is at DEBUG: at the default level no span is made per request (making,
/// formatting, entering and leaving one on every poll cost about a tenth of the gateway's CPU a
/// call); the line carries what the span would have shown. Tool calls keep an INFO span of
/// their own (`context.rs`), so their warnings still name host, server and request id.
async fn observe(State(draining): State<Draining>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let (host, request_id) = {
        let headers = request.headers();
        (
            headers.get(header::HOST).cloned(),
            headers.get(shared::request_id::HEADER).cloned(),
        )
    };
    let span = tracing::debug_span!("request", method = %method, path = %uri.path(),
        host = %text(host.as_ref()), request_id = %text(request_id.as_ref()));
    let mut response = next.run(request).instrument(span).await;
    let server_id = response.extensions().get::<ServedBy>().map(|s| s.0);
    tracing::info!(target: "access", method = %method, path = %uri.path(),
        host = %text(host.as_ref()), request_id = %text(request_id.as_ref()),
        server_id = server_id.map(tracing::field::display),
        status = response.status().as_u16(), latency_us = started.elapsed().as_micros() as u64,
        "request served");
    if draining.is_on() {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
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
/// `Connection: close` (see [`observe`]).
#[derive(Clone, Default)]
pub struct Draining(Arc<std::sync::atomic::AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}
