//! Building the application: the router with its layers, the listener, and the background
//! housekeeping. Tests build it exactly as `main` does, on port 0.

use std::time::Duration;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderValue, Method, Request, StatusCode, header},
    middleware,
};
use shared::{Settings, background::Background};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowOrigin, Any, CorsLayer},
    request_id::PropagateRequestIdLayer,
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    db,
    error::{no_route, panic_response, uniform_errors},
    openapi::{ApiDoc, DOCS_PATH, OPENAPI_PATH},
    routes,
    session::origin::require_same_origin_for_cookies,
    state::AppState,
};

/// A bound, ready-to-run control plane.
pub struct Application {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    router: Router,
    state: AppState,
    /// `HTTP_HEADER_TIMEOUT_SECS`.
    header_timeout: Duration,
}

impl Application {
    /// Builds the state and router and binds `settings.control_plane_addr` (port 0 picks one).
    pub async fn build(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let state = AppState::new(settings, pool).await?;
        crate::oauth::signing::prepare(&state.pool, &state.keyring).await;
        let router = router(state.clone(), settings);
        let listener = TcpListener::bind(settings.control_plane.addr)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot listen on {} (CONTROL_PLANE_ADDR): {err}",
                    settings.control_plane.addr
                )
            })?;
        let metrics = shared::prometheus::bind(
            "CONTROL_PLANE_METRICS_ADDR",
            &settings.control_plane.metrics_addr,
        )
        .await?;
        Ok(Self {
            listener,
            metrics,
            router,
            state,
            header_timeout: Duration::from_secs(settings.common.http_header_timeout_secs),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// The port of the `/metrics` listener, if there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        shared::prometheus::port(self.metrics.as_ref())
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // Stopped once the last request has been answered (or when this run is cut short).
        let mut background = Background::new(CancellationToken::new());
        if let Some(listener) = self.metrics {
            let state = self.state.clone();
            background.spawn("metrics", async move {
                let served = shared::prometheus::serve(listener, move || {
                    let state = state.clone();
                    async move { pool_gauges(&state).await }
                });
                if let Err(err) = served.await {
                    tracing::warn!(error = %err, "the metrics listener stopped");
                }
            });
        }
        background.spawn("housekeeping", housekeeping(self.state));
        let result =
            shared::serve::serve(self.listener, self.router, self.header_timeout, shutdown).await;
        background.stop().await;
        result
    }
}

/// Endpoint pool usage, read at each scrape.
async fn pool_gauges(state: &AppState) {
    match state.allocator.status(&state.pool).await {
        Ok(status) => {
            metrics::gauge!("endpoint_pool_fixed_total").set(status.total as f64);
            metrics::gauge!("endpoint_pool_fixed_used").set(status.used as f64);
            metrics::gauge!("endpoint_pool_wildcard_servers").set(status.wildcard_servers as f64);
            metrics::gauge!("endpoint_pool_orphaned_servers").set(status.orphaned.len() as f64);
        }
        Err(err) => tracing::debug!(error = %err, "pool status unavailable for metrics"),
    }
}

/// The whole HTTP surface: `/api/v1`, the probes, the OpenAPI document and its viewer.
pub fn router(state: AppState, settings: &Settings) -> Router {
    let (routes, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            routes::api().layer(middleware::from_fn_with_state(
                state.clone(),
                require_same_origin_for_cookies,
            )),
        )
        .merge(routes::health::probe_router())
        .split_for_parts();

    let no_store = SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let layers = shared::request_id::assign()
        .layer(
            TraceLayer::new_for_http()
                // Method and path only: headers (tokens, cookies) and bodies are never logged.
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get(shared::request_id::HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    let path = loggable_path(request.uri().path());
                    tracing::info_span!("request", method = %request.method(), %path, request_id)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(uniform_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(settings.control_plane.request_timeout_secs),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(DefaultBodyLimit::max(settings.control_plane.max_body_bytes));

    routes
        .merge(crate::routes::docs::viewer(
            DOCS_PATH,
            OPENAPI_PATH,
            openapi,
        ))
        .layer(cors(&settings.control_plane.cors_allowed_origins))
        // OAuth endpoints serve browser-based agents (MCP Inspector) from any origin, without
        // credentials; the authorization pages are navigated to, never fetched.
        .merge(crate::routes::oauth::router())
        // The web console for people, on this origin (its own forms' guard, no CORS).
        .merge(crate::console::router(&state))
        .fallback(no_route)
        .with_state(state)
        .layer(layers)
        // Token responses must not sit in caches; the docs viewer's assets may.
        .route_layer(no_store)
        // After routing, so requests are counted by route template.
        .route_layer(middleware::from_fn(shared::prometheus::track_http))
}

/// CORS from `CORS_ALLOWED_ORIGINS`: none by default; `*` allows any origin without
/// credentials; a list allows those origins with credentials (cookies).
/// The request path as the access log shows it. An invitation link's token is the one
/// credential that travels in a path (`/invitations/{token}` of the console and of the API):
/// it is replaced by `{token}`.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for route in ["/invitations/", "/api/v1/invitations/"] {
        if let Some(rest) = path.strip_prefix(route)
            && !rest.is_empty()
        {
            let after = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{route}{{token}}{after}").into();
        }
    }
    path.into()
}

fn cors(origins: &[String]) -> CorsLayer {
    let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE];
    let headers = [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        shared::request_id::HEADER,
    ];
    let base = CorsLayer::new()
        .allow_methods(methods)
        .allow_headers(headers)
        .expose_headers([shared::request_id::HEADER, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    if origins.is_empty() {
        CorsLayer::new()
    } else if origins.iter().any(|o| o == "*") {
        base.allow_origin(Any)
    } else {
        let list = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok());
        base.allow_origin(AllowOrigin::list(list))
            .allow_credentials(true)
    }
}

/// Periodic clean-up: forget idle rate-limit keys, delete expired token revocations and OAuth
/// leftovers (every ten minutes) and audit and activity records past their retention periods
/// (hourly).
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        state.signin_limiter.forget_idle();
        state.oauth.forget_idle();
        if round.is_multiple_of(60) {
            purge_audit(&state).await;
            purge_activity(&state).await;
        }
        if round.is_multiple_of(10) {
            match db::users::purge_expired_revocations(&state.pool).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "purged expired token revocations"),
                Err(err) => tracing::warn!(error = %err, "cannot purge token revocations"),
            }
            crate::oauth::housekeeping(&state.pool, &state.oauth).await;
            match db::keys::purge_stopped(&state.pool).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted keys that stopped working long ago"),
                Err(err) => tracing::warn!(error = %err, "cannot purge old keys"),
            }
        }
        round += 1;
    }
}

/// Deletes tool-call records older than `AUDIT_RETENTION_DAYS`.
pub async fn purge_audit(state: &AppState) {
    let cutoff =
        chrono::Utc::now() - chrono::Duration::days(i64::from(state.config.audit_retention_days));
    match db::calls::purge_before(&state.pool, cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, %cutoff, "purged audit records past retention"),
        Err(err) => tracing::warn!(error = %err, "cannot purge audit records"),
    }
}

/// Deletes activity records older than `ACTIVITY_RETENTION_DAYS`.
pub async fn purge_activity(state: &AppState) {
    let cutoff = chrono::Utc::now()
        - chrono::Duration::days(i64::from(state.config.activity_retention_days));
    match db::activity::purge_before(&state.pool, cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, %cutoff, "purged activity records past retention"),
        Err(err) => tracing::warn!(error = %err, "cannot purge activity records"),
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn invitation_tokens_never_reach_the_access_log() {
        assert_eq!(
            loggable_path("/invitations/mcpinv_abc"),
            "/invitations/{token}"
        );
        assert_eq!(
            loggable_path("/invitations/mcpinv_abc/accept"),
            "/invitations/{token}/accept"
        );
        assert_eq!(
            loggable_path("/api/v1/invitations/mcpinv_abc/accept"),
            "/api/v1/invitations/{token}/accept"
        );
        // Other paths, invitation ids under an organization among them, stay as they are.
        for path in [
            "/api/v1/organizations/7f0c/invitations/1d2e",
            "/invitations/",
            "/servers",
        ] {
            assert_eq!(loggable_path(path), path);
        }
    }
}
