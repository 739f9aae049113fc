//! The gateway's HTTP surface: rmcp's streamable HTTP service at `/mcp` behind the host
//! routing, access and JSON-RPC checks, the OAuth protected resource metadata, the probes,
//! and draining (a stopping replica turns unready and closes connections); request ids, the
//! access log and HTTP metrics around all of it (`edge.rs`).

pub mod access;
pub mod admission;
pub mod client;
pub mod edge;
pub mod error;
pub mod jsonrpc;
pub mod oauth;
pub mod routing;
pub mod sessions;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderName, Method, header},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService,
    session::{local::LocalSessionManager, never::NeverSessionManager},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{Any, CorsLayer};

use crate::{
    ingress::access::Access,
    ingress::admission::{Admission, Admitted, Mcp, Rmcp},
    ingress::edge::{Draining, Edge, HEALTHZ, READYZ, RESOURCE_METADATA, RESOURCE_METADATA_MCP},
    ingress::error::HttpError,
    ingress::routing::Routing,
    ingress::sessions::SessionBindings,
    mcp::Gateway,
    snapshot::SnapshotStore,
};

/// What the gateway serves: `/mcp` behind the host routing, the probes and the resource
/// metadata, inside the edge service (request ids, access log, metrics, draining).
pub type Service = Edge<Router>;

/// See [`Service`].
pub fn service(
    gateway: Gateway,
    routing: Routing,
    access: Access,
    issuer: Arc<str>,
    draining: Draining,
    sessions: bool,
    cancel: CancellationToken,
) -> Service {
    let config = StreamableHttpServerConfig::default()
        // Our routing middleware decides which hosts are served; rmcp's loopback-only
        // default would refuse every pool domain.
        .disable_allowed_hosts()
        .with_legacy_session_mode(sessions)
        .with_json_response(!sessions)
        .with_max_request_body_bytes(jsonrpc::MAX_BODY_BYTES)
        .with_cancellation_token(cancel);
    let rmcp = if sessions {
        let service = StreamableHttpService::new(
            move || Ok(gateway.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        Rmcp::Sessions(service, SessionBindings::default())
    } else {
        let service = StreamableHttpService::new(
            move || Ok(gateway.clone()),
            Arc::new(NeverSessionManager::default()),
            config,
        );
        Rmcp::Stateless(service)
    };
    let admitted = Admitted::new(Admission {
        routing: routing.clone(),
        access,
        rmcp,
    });
    let mcp = Mcp::new(admitted, &routing.allowed_origins);
    let store = routing.store.clone();
    let draining_state = draining.clone();
    // Protected resource metadata (RFC 9728): public, readable from any origin.
    let metadata = Router::new()
        .route(RESOURCE_METADATA, get(oauth::resource_metadata))
        .route(RESOURCE_METADATA_MCP, get(oauth::resource_metadata))
        .with_state((routing, issuer))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET])
                .allow_headers([
                    header::AUTHORIZATION,
                    HeaderName::from_static("mcp-protocol-version"),
                ]),
        );

    let router = Router::new()
        .route(HEALTHZ, get(|| async { Json(json!({"status": "ok"})) }))
        .route(READYZ, get(readyz).with_state((store, draining_state)))
        .merge(metadata)
        .fallback(|| async { HttpError::no_route() });
    // Around the whole router rather than through `Router::layer`, which would wrap (and box)
    // each route on its own.
    Edge::new(mcp, router, draining)
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
