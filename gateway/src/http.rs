//! The gateway's HTTP surface: rmcp's streamable HTTP service at `/mcp` behind the host
//! routing, access and JSON-RPC checks, the OAuth protected resource metadata, the probes,
//! and draining (a stopping replica turns unready and closes connections); request ids, the
//! access log and HTTP metrics around all of it (`edge.rs`).

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::Request,
    extract::State,
    http::{HeaderName, HeaderValue, Method, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::future::Either;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService,
    session::{local::LocalSessionManager, never::NeverSessionManager},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::Layer;
use tower_http::cors::{AllowOrigin, Any, Cors, CorsLayer};

use crate::{
    access::Access,
    admission::{Admission, Admitted, Rmcp},
    edge::{Edge, HEALTHZ, READYZ, RESOURCE_METADATA, RESOURCE_METADATA_MCP},
    error::HttpError,
    jsonrpc,
    mcp::Gateway,
    oauth,
    routing::Routing,
    sessions::SessionBindings,
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
    let mcp = if routing.allowed_origins.is_empty() {
        Mcp::Admitted(admitted)
    } else {
        Mcp::WithCors(Box::new(
            mcp_cors(routing.allowed_origins.clone()).layer(admitted),
        ))
    };
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

/// `/mcp`: admission, with CORS for the origins `GATEWAY_ALLOWED_ORIGINS` lists when it lists
/// any (a server's own origin needs none, and agents calling from servers send no Origin).
#[derive(Clone)]
pub enum Mcp {
    Admitted(Admitted),
    // Boxed: the CORS rules are large beside a pointer, and the edge is copied per connection.
    WithCors(Box<Cors<Admitted>>),
}

impl tower::Service<Request> for Mcp {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        <Admitted as tower::Service<Request>>::Future,
        <Cors<Admitted> as tower::Service<Request>>::Future,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self {
            Self::Admitted(admitted) => Either::Left(admitted.call(request)),
            Self::WithCors(cors) => Either::Right(cors.call(request)),
        }
    }
}

/// What a browser-based MCP client on an allowed origin needs: its preflight answered (without
/// a credential, which preflights never carry), its credential and protocol headers accepted,
/// and the session id and the OAuth challenge readable. Origins compare as the Origin rule
/// does (`routing.rs`), ignoring case; no cookies are involved, so no credentials mode.
fn mcp_cors(origins: Arc<[String]>) -> CorsLayer {
    let allowed = move |origin: &HeaderValue, _: &_| {
        let origin = origin.to_str().unwrap_or_default();
        origins.iter().any(|a| a.eq_ignore_ascii_case(origin))
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ])
        .max_age(Duration::from_secs(600))
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
/// `Connection: close` (see `edge.rs`).
#[derive(Clone, Default)]
pub struct Draining(Arc<std::sync::atomic::AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}
