//! `/mcp-servers/{id}/sources/{source_id}`: one source more or less on a server (owners and
//! admins; the source must be of the server's organization).

use axum::extract::State;
use uuid::Uuid;

use super::{MAX_SOURCES, ServerView, managed_server, show, source_not_found};
use crate::routes::responses::{ForeignOriginOrMember, MalformedId, NotSignedIn};
use crate::{
    activity::{Action, Seen},
    db::server_sources::{self, SOURCE_LINK_FKEY},
    error::{ApiError, ErrorBody, FieldError, ResultExt},
    extract::Path,
    routes::write::recorded,
    session::AuthUser,
    state::AppState,
};

/// Give a server one more source (no change if it already has it).
#[utoipa::path(
    put, path = "/mcp-servers/{id}/sources/{source_id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ("source_id" = Uuid, Path, description = "Source id")),
    responses(
        (status = 200, description = "The server with the source", body = ServerView),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such live server, or the source is not the organization's (`source_not_found`)", body = ErrorBody),
        (status = 422, description = "The server already has the most sources allowed (100)", body = ErrorBody),
    )
)]
pub(super) async fn attach_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, source_id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let user_id = caller.user.id;
    let view = recorded(&state.pool, async |tx| {
        let org = managed_server(tx, user_id, id).await?;
        if server_sources::source_count(&mut *tx, id).await? >= MAX_SOURCES as i64 {
            return Err(ApiError::validation(vec![FieldError::new(
                "source_id",
                format!("a server may have at most {MAX_SOURCES} sources"),
            )]));
        }
        if !server_sources::attach(&mut *tx, org, id, source_id)
            .await
            .on_constraint(SOURCE_LINK_FKEY, source_not_found)?
        {
            return Err(source_not_found());
        }
        let view = show(tx, org, id).await?;
        let activity = seen
            .activity(Action::ServerSourceAttach)
            .by(user_id)
            .in_org(org)
            .server(id)
            .source(source_id);
        Ok((view, activity))
    })
    .await?;
    Ok(axum::Json(view))
}

/// Take a source away from a server.
#[utoipa::path(
    delete, path = "/mcp-servers/{id}/sources/{source_id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ("source_id" = Uuid, Path, description = "Source id")),
    responses(
        (status = 200, description = "The server without the source", body = ServerView),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such live server, or the source is not assigned to it", body = ErrorBody),
    )
)]
pub(super) async fn detach_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, source_id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let user_id = caller.user.id;
    let view = recorded(&state.pool, async |tx| {
        let org = managed_server(tx, user_id, id).await?;
        if !server_sources::detach(&mut *tx, org, id, source_id).await? {
            return Err(ApiError::not_found());
        }
        let view = show(tx, org, id).await?;
        let activity = seen
            .activity(Action::ServerSourceDetach)
            .by(user_id)
            .in_org(org)
            .server(id)
            .source(source_id);
        Ok((view, activity))
    })
    .await?;
    Ok(axum::Json(view))
}
