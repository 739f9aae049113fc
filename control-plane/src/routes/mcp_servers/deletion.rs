//! `DELETE /mcp-servers/{id}` (a soft delete: the server stops being served and its endpoint
//! is freed at once) and `POST /mcp-servers/{id}/restore`.

use axum::{extract::State, http::StatusCode};
use uuid::Uuid;

use super::{ServerView, managed_server, show};
use crate::routes::responses::{ForeignOriginOrMember, MalformedId, NotSignedIn};
use crate::{
    activity::{Action, Activity, Seen},
    db::servers::{self, LIVE_ENDPOINT_UNIQUE},
    endpoints::endpoint_taken,
    error::{ApiError, ErrorBody, ResultExt},
    extract::Path,
    orgs::{Role, access},
    routes::write::recorded,
    session::AuthUser,
    state::AppState,
};

/// Soft-delete a server: it stops being served and its endpoint is freed at once.
#[utoipa::path(
    delete, path = "/mcp-servers/{id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 204, description = "Soft-deleted; restore with POST /mcp-servers/{id}/restore"),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such live server the caller can see", body = ErrorBody),
    )
)]
pub async fn delete_server(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        let org = managed_server(tx, caller.user.id, id).await?;
        if !servers::soft_delete(&mut *tx, org, id).await? {
            return Err(ApiError::not_found());
        }
        let activity = seen
            .activity(Action::ServerDelete)
            .by(caller.user.id)
            .in_org(org)
            .server(id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, server_id = %id, "MCP server soft-deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Undo a soft delete. The server gets its old endpoint back if it is still free, else another.
#[utoipa::path(
    post, path = "/mcp-servers/{id}/restore", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 200, description = "Restored", body = ServerView),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such server the caller can see", body = ErrorBody),
        (status = 409, description = "The server is not deleted (`not_deleted`), no endpoint is free (`pool_exhausted`), or the organization has the most servers allowed (`server_limit_reached`)", body = ErrorBody),
    )
)]
pub async fn restore_server(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let activity = seen
        .activity(Action::ServerRestore)
        .by(caller.user.id)
        .server(id);
    let result = restore(&state, &caller, id, activity.clone()).await;
    activity.record_refusal(&state.pool, &result).await;
    result
}

async fn restore(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    activity: Activity,
) -> Result<axum::Json<ServerView>, ApiError> {
    let user_id = caller.user.id;
    let (view, endpoint) = recorded(&state.pool, async |tx| {
        let server = access::of_server(&mut *tx, user_id, id, true).await?;
        server.require(Role::Admin)?;
        let org = server.organization_id();
        let old_host = match servers::deleted_endpoint_host(&mut *tx, org, id).await? {
            None => return Err(ApiError::not_found()),
            Some(None) => {
                return Err(ApiError::conflict(
                    "not_deleted",
                    "The server is not deleted.",
                ));
            }
            Some(Some(host)) => host,
        };
        let endpoint = state.allocator.allocate(tx, org, Some(&old_host)).await?;
        servers::restore(&mut *tx, org, id, &endpoint.url, &endpoint.host)
            .await
            .on_constraint(LIVE_ENDPOINT_UNIQUE, endpoint_taken)?;
        let view = show(tx, org, id).await?;
        let activity = activity
            .in_org(org)
            .detail("endpoint", endpoint.url.as_str());
        Ok(((view, endpoint), activity))
    })
    .await?;
    tracing::info!(%user_id, server_id = %id, endpoint = %endpoint.url, "MCP server restored");
    Ok(axum::Json(view))
}
