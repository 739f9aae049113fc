//! `GET /tls/ask?domain=…`: the check a reverse proxy with on-demand TLS (Caddy's `ask`) makes
//! before requesting a certificate. Yes (200) only for names agents can actually reach: a fixed
//! pool host, or a name under a wildcard pool entry that a live server holds now. Anything else
//! is 404, so nobody can make the proxy request certificates for arbitrary names (and burn the
//! CA's rate limits with random labels under a wildcard).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use shared::model::routing_key;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ApiError, ErrorBody, FieldError},
    extract::Query,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ask))
}

/// The name a certificate is wanted for.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AskParams {
    /// A host name, e.g. `mcp1.example.com`: required, 1 to 253 characters (letters, digits,
    /// `.` and `-`). Anything else is not a pool domain: 404, or 422 when empty.
    #[param(
        required = true,
        min_length = 1,
        max_length = 253,
        pattern = "^[A-Za-z0-9.-]+$"
    )]
    domain: Option<String>,
}

/// A name the proxy may get a certificate for.
#[derive(Serialize, ToSchema)]
pub struct Allowed {
    pub domain: String,
}

/// May the reverse proxy obtain a certificate for `domain`? (No authentication: the answer
/// only says whether a name is one of the pool's.)
#[utoipa::path(
    get, path = "/tls/ask", tag = "health",
    params(AskParams),
    responses(
        (status = 200, description = "A pool domain: a certificate may be obtained", body = Allowed),
        (status = 404, description = "Not a pool domain (or a wildcard name no server holds)", body = ErrorBody),
        (status = 422, description = "`domain` missing, blank or longer than 253 bytes", body = ErrorBody),
    )
)]
async fn ask(
    State(state): State<AppState>,
    Query(params): Query<AskParams>,
) -> Result<axum::Json<Allowed>, ApiError> {
    let Some(domain) = params
        .domain
        .filter(|d| !d.trim().is_empty() && d.len() <= 253)
    else {
        return Err(ApiError::validation(vec![FieldError::new(
            "domain",
            "is required: a host name",
        )]));
    };
    let host = routing_key(domain.trim());
    let pool = &state.allocator.pool;
    let fixed = pool.fixed_hosts().contains(&host);
    let held_under_wildcard = !fixed
        // Not a fixed host, so covered means under a wildcard entry.
        && pool.covers(&host)
        && crate::db::servers::live_on_host(&state.pool, &host).await?;
    if fixed || held_under_wildcard {
        Ok(axum::Json(Allowed { domain: host }))
    } else {
        Err(ApiError::not_found())
    }
}
