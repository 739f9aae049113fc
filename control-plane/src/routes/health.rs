//! Health: `GET /api/v1/checks` (a report), `/healthz` (process up) and `/readyz` (database
//! reachable) for load balancers and orchestrators.

use std::time::{Duration, Instant};

use axum::{extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    db::users,
    endpoints::PoolStatus,
    error::{ApiError, ErrorBody},
    session::AuthUser,
    state::AppState,
};

/// How long a health probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Routes under `/api/v1`.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(checks))
}

/// Routes at the root, outside the versioned API.
pub fn probe_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The health report.
#[derive(Serialize, ToSchema)]
pub struct Checks {
    /// `ok` when the database is reachable, `degraded` otherwise.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Version of this build.
    pub version: &'static str,
    /// Seconds since the process started.
    pub uptime_secs: u64,
    pub database: DatabaseCheck,
    /// Row counts; only shown to administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// Endpoint pool usage; only shown to administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_pool: Option<PoolStatus>,
}

/// Database reachability.
#[derive(Serialize, ToSchema)]
pub struct DatabaseCheck {
    pub reachable: bool,
    /// Round trip of `select 1`, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Connections open in this process's pool.
    pub pool_size: u32,
    /// Of those, connections idle.
    pub pool_idle: usize,
}

/// Row counts of the main tables.
#[derive(Serialize, ToSchema)]
pub struct Counts {
    pub users: i64,
    pub sources: i64,
    pub mcp_servers: i64,
    pub live_mcp_servers: i64,
}

/// Liveness or readiness status.
#[derive(Serialize, ToSchema)]
pub struct Probe {
    #[schema(example = "ok")]
    pub status: &'static str,
}

async fn ping(state: &AppState) -> Option<Duration> {
    let started = Instant::now();
    let query = sqlx::query("select 1").execute(&state.pool);
    match tokio::time::timeout(PROBE_TIMEOUT, query).await {
        Ok(Ok(_)) => Some(started.elapsed()),
        _ => None,
    }
}

/// Uptime, database reachability and latency; row counts for administrators.
#[utoipa::path(
    get, path = "/checks", tag = "health",
    responses((status = 200, description = "Health report (always 200; see `status`)", body = Checks))
)]
async fn checks(State(state): State<AppState>, caller: Option<AuthUser>) -> axum::Json<Checks> {
    let latency = ping(&state).await;
    let admin = caller.is_some_and(|c| c.user.is_admin()) && latency.is_some();
    let (counts, endpoint_pool) = if admin {
        let counts = users::counts(&state.pool).await.ok().map(|c| Counts {
            users: c.users,
            sources: c.sources,
            mcp_servers: c.mcp_servers,
            live_mcp_servers: c.live_mcp_servers,
        });
        (counts, state.allocator.status(&state.pool).await.ok())
    } else {
        (None, None)
    };
    axum::Json(Checks {
        status: if latency.is_some() { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started_at.elapsed().as_secs(),
        database: DatabaseCheck {
            reachable: latency.is_some(),
            latency_ms: latency.map(|d| d.as_secs_f64() * 1000.0),
            pool_size: state.pool.size(),
            pool_idle: state.pool.num_idle(),
        },
        counts,
        endpoint_pool,
    })
}

/// Liveness: the process is up and serving.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is up", body = Probe))
)]
async fn healthz() -> axum::Json<Probe> {
    axum::Json(Probe { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Probe),
        (status = 503, description = "Database unreachable (`database_unavailable`, with `Retry-After`)", body = ErrorBody),
    )
)]
async fn readyz(
    State(state): State<AppState>,
) -> Result<(StatusCode, axum::Json<Probe>), ApiError> {
    match ping(&state).await {
        Some(_) => Ok((StatusCode::OK, axum::Json(Probe { status: "ready" }))),
        None => Err(ApiError::database_unavailable(anyhow::anyhow!(
            "readiness probe failed"
        ))),
    }
}
