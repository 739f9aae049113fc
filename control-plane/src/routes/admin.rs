//! Administrator routes: `GET /users`, the endpoint pool, hard deletes, and ending a user's
//! endpoint cooldowns.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{MalformedId, NotSignedIn};
use crate::{
    activity::{Action, Seen},
    db::{servers, users},
    endpoints::PoolStatus,
    error::{ApiError, ErrorBody, FieldError},
    extract::{Path, Query},
    routes::{account::UserView, write::recorded},
    session::AdminUser,
    state::AppState,
};

/// Largest page a list route returns.
pub const MAX_PAGE: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(pool_status))
        .routes(routes!(hard_delete_server))
        .routes(routes!(clear_endpoint_reservations))
}

/// Fixed endpoints that became free for everyone.
#[derive(Serialize, ToSchema)]
pub struct Freed {
    /// Host names, in order.
    pub freed: Vec<String>,
}

/// End the cooldown of every endpoint a user (or a deleted account) released, so others can
/// have those endpoints now. The cooldown keeps an agent holding an old URL away from a
/// stranger's server; use this when one person holds fixed endpoints reserved (for example
/// through several accounts) and others need them more.
#[utoipa::path(
    delete, path = "/admin/users/{id}/endpoint-reservations", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "User id (a deleted account's too)")),
    responses(
        (status = 200, description = "Cooldowns ended; the fixed endpoints now free for everyone (possibly none)", body = Freed),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "Caller is not an administrator, or cookie request from a foreign origin", body = ErrorBody),
    )
)]
async fn clear_endpoint_reservations(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Freed>, ApiError> {
    let freed = state.allocator.clear_reservations(&state.pool, id).await?;
    tracing::info!(admin_id = %admin.0.user.id, user_id = %id, ?freed, "endpoint cooldowns ended");
    Ok(axum::Json(Freed { freed }))
}

/// Endpoint pool usage: fixed endpoints total, used and free, those cooling down, wildcard
/// entries, and live servers whose endpoint left `MCP_GATEWAY_URL_POOLS`.
#[utoipa::path(
    get, path = "/admin/pool", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "Pool status", body = PoolStatus),
        NotSignedIn,
        (status = 403, description = "Caller is not an administrator (`admin_required`)", body = ErrorBody),
    )
)]
async fn pool_status(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<axum::Json<PoolStatus>, ApiError> {
    Ok(axum::Json(state.allocator.status(&state.pool).await?))
}

/// Delete any user's server for good. A live server's endpoint is released (cooldown applies);
/// a soft-deleted one's was released already.
#[utoipa::path(
    delete, path = "/admin/mcp-servers/{id}", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 204, description = "Deleted for good"),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "Caller is not an administrator, or cookie request from a foreign origin", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    )
)]
async fn hard_delete_server(
    State(state): State<AppState>,
    admin: AdminUser,
    seen: Seen,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        let Some((organization, owner)) = servers::hard_delete(&mut *tx, id).await? else {
            return Err(ApiError::not_found());
        };
        // The administrator acted; the record also belongs to the organization (and the
        // account of a personal one), whose owners see it.
        let activity = seen
            .activity(Action::ServerHardDelete)
            .by(admin.0.user.id)
            .on_user(owner)
            .in_org(organization)
            .server(id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(admin_id = %admin.0.user.id, server_id = %id, "MCP server hard-deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of list routes.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

impl PageParams {
    /// `(limit, offset)` after checking the bounds.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        page_bounds(self.limit, self.offset)
    }
}

/// `(limit, offset)` with defaults (50, 0), checked: 422 naming the bad parameter.
pub fn page_bounds(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    let mut fields = Vec::new();
    if !(1..=MAX_PAGE).contains(&limit) {
        fields.push(FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    if offset < 0 {
        fields.push(FieldError::new("offset", "must not be negative"));
    }
    if fields.is_empty() {
        Ok((limit, offset))
    } else {
        Err(ApiError::validation(fields))
    }
}

/// One page of users.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// List every user (administrators only), oldest first.
#[utoipa::path(
    get, path = "/users", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "Caller is not an administrator (`admin_required`)", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<UserPage>, ApiError> {
    let (limit, offset) = params.bounds()?;
    let (items, total) = users::page(&state.pool, limit, offset).await?;
    Ok(axum::Json(UserPage {
        items: items.into_iter().map(UserView::from).collect(),
        total,
        limit,
        offset,
    }))
}
