//! `/mcp-servers`: an organization's MCP servers, each reachable at its own endpoint from the
//! pool. Owners and admins manage them; members see the ones they may connect an agent to.

mod deletion;
mod links;
mod shapes;

use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{
    ForeignOriginOrMember, MalformedId, MalformedJson, MalformedJsonOrId, NotJson, NotSignedIn,
};
use crate::{
    activity::{Action, Activity, Seen},
    db::{
        server_sources::{self, SOURCE_LINK_FKEY},
        servers::{self, LIVE_ENDPOINT_UNIQUE},
    },
    endpoints::endpoint_taken,
    error::{ApiError, ErrorBody, FieldError, ResultExt},
    extract::{Json, Path, Query},
    orgs::{Role, access},
    routes::{admin::page_bounds, write::recorded},
    session::AuthUser,
    state::AppState,
};

use shapes::{ListParams, MAX_SOURCES, ShowParams, validate};
pub use shapes::{NewServer, ServerInput, ServerPage, ServerView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, update_server, deletion::delete_server))
        .routes(routes!(deletion::restore_server))
        .routes(routes!(links::attach_source, links::detach_source))
}

/// The servers the caller can see, newest first: every server of the organizations where
/// they are an owner or admin, and the ones they may connect to where they are a member.
#[utoipa::path(
    get, path = "/mcp-servers", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of servers", body = ServerPage),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        NotSignedIn,
        (status = 404, description = "`organization_id` names no organization of the caller's", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    )
)]
async fn list_servers(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<ServerPage>, ApiError> {
    let (limit, offset) = page_bounds(params.limit, params.offset)?;
    let include_deleted = params.include_deleted.unwrap_or(false);
    if let Some(org) = params.organization_id {
        access::of_organization(&state.pool, caller.user.id, org).await?;
    }
    let (rows, total) = servers::page(
        &state.pool,
        caller.user.id,
        params.organization_id,
        include_deleted,
        limit,
        offset,
    )
    .await?;
    let roles: std::collections::HashMap<Uuid, Role> =
        crate::db::organizations::roles_of(&state.pool, caller.user.id)
            .await?
            .into_iter()
            .collect();
    let role_in = |org: &Uuid| roles.get(org).copied().unwrap_or(Role::Member);
    Ok(axum::Json(ServerPage {
        items: rows
            .into_iter()
            .map(|row| {
                let role = role_in(&row.organization_id);
                ServerView::from(row).seen_by(role)
            })
            .collect(),
        total,
        limit,
        offset,
    }))
}

/// Create a server; it is given a free endpoint from the pool.
#[utoipa::path(
    post, path = "/mcp-servers", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    request_body = NewServer,
    responses(
        (status = 201, description = "Created", body = ServerView),
        MalformedJson,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member of the organization (`role_required`)", body = ErrorBody),
        (status = 404, description = "`organization_id` names no organization of the caller's, or a source id is not one of the organization's sources (`source_not_found`)", body = ErrorBody),
        (status = 409, description = "No endpoint is free (`pool_exhausted`), or the organization has the most servers allowed (`server_limit_reached`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid name, member access or listed members, too many sources, or an endpoint given", body = ErrorBody),
    )
)]
async fn create_server(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Json(input): Json<ServerInput>,
) -> Result<(StatusCode, axum::Json<ServerView>), ApiError> {
    let activity = seen.activity(Action::ServerCreate).by(caller.user.id);
    let result = create(&state, &caller, input, activity.clone()).await;
    activity.record_refusal(&state.pool, &result).await;
    result
}

async fn create(
    state: &AppState,
    caller: &AuthUser,
    input: ServerInput,
    activity: Activity,
) -> Result<(StatusCode, axum::Json<ServerView>), ApiError> {
    let (name, source_ids) = validate(&input, true)?;
    let name = name.unwrap_or_default();
    let source_ids = source_ids.unwrap_or_default();
    let user_id = caller.user.id;
    let (view, endpoint) = recorded(&state.pool, async |tx| {
        let org = access::for_create(tx, user_id, input.organization_id, Role::Admin)
            .await?
            .organization_id;
        // Sources first: a stranger's source id is a 404 whatever the state of the pool.
        if !server_sources::owns_sources(&mut *tx, org, &source_ids).await? {
            return Err(source_not_found());
        }
        let endpoint = state.allocator.allocate(tx, org, None).await?;
        let public = input.public.unwrap_or(false);
        let id = servers::insert(&mut *tx, org, &name, &endpoint.url, &endpoint.host, public)
            .await
            .on_constraint(LIVE_ENDPOINT_UNIQUE, endpoint_taken)?;
        if !server_sources::set_sources(tx, org, id, &source_ids)
            .await
            .on_constraint(SOURCE_LINK_FKEY, source_not_found)?
        {
            return Err(source_not_found());
        }
        set_member_access(tx, org, id, &input).await?;
        let view = show(tx, org, id).await?;
        let activity = activity
            .in_org(org)
            .server(id)
            .detail("endpoint", endpoint.url.as_str());
        Ok(((view, endpoint), activity))
    })
    .await?;
    tracing::info!(%user_id, server_id = %view.id, endpoint = %endpoint.url, "MCP server created");
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// One server.
#[utoipa::path(
    get, path = "/mcp-servers/{id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ShowParams),
    responses(
        (status = 200, description = "The server", body = ServerView),
        MalformedId,
        NotSignedIn,
        (status = 404, description = "No such server the caller can see (or soft-deleted)", body = ErrorBody),
    )
)]
async fn get_server(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<ShowParams>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let include_deleted = params.include_deleted.unwrap_or(false);
    let server = access::of_server(&state.pool, caller.user.id, id, include_deleted).await?;
    let row = servers::get(&state.pool, server.organization_id(), id, include_deleted)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(ServerView::from(row).seen_by(server.role())))
}

/// Rename a server, replace its sources and/or make it public or not. The endpoint cannot be
/// changed.
#[utoipa::path(
    put, path = "/mcp-servers/{id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    request_body = ServerInput,
    responses(
        (status = 200, description = "Updated", body = ServerView),
        MalformedJsonOrId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such live server, or a source that is not the organization's", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid name, member access or listed members, too many sources, another `organization_id`, or an endpoint given", body = ErrorBody),
    )
)]
async fn update_server(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
    Json(input): Json<ServerInput>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let (name, source_ids) = validate(&input, false)?;
    let user_id = caller.user.id;
    let view = recorded(&state.pool, async |tx| {
        let org = managed_server(tx, user_id, id).await?;
        if input.organization_id.is_some_and(|named| named != org) {
            return Err(ApiError::validation(vec![FieldError::new(
                "organization_id",
                "a server stays in its organization; leave this out",
            )]));
        }
        if let Some(name) = name {
            servers::rename(&mut *tx, org, id, &name).await?;
        }
        if let Some(public) = input.public {
            servers::set_public(&mut *tx, org, id, public).await?;
        }
        set_member_access(tx, org, id, &input).await?;
        if let Some(source_ids) = source_ids
            && !server_sources::set_sources(tx, org, id, &source_ids)
                .await
                .on_constraint(SOURCE_LINK_FKEY, source_not_found)?
        {
            return Err(source_not_found());
        }
        let view = show(tx, org, id).await?;
        let activity = seen
            .activity(Action::ServerUpdate)
            .by(user_id)
            .in_org(org)
            .server(id)
            .changed([
                (input.name.is_some(), "name"),
                (input.public.is_some(), "public"),
                (input.source_ids.is_some(), "source_ids"),
                (input.member_access.is_some(), "member_access"),
                (input.listed_members.is_some(), "listed_members"),
            ]);
        Ok((view, activity))
    })
    .await?;
    tracing::info!(%user_id, server_id = %id, "MCP server updated");
    Ok(axum::Json(view))
}

/// Reads the server back inside the transaction of a change, so the answer shows exactly what
/// is committed.
async fn show(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<ServerView, ApiError> {
    let row = servers::get(tx, organization_id, id, false)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(row.into())
}

fn source_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "source_not_found",
        "A source id does not name one of the organization's sources.",
    )
}

/// Locks a live server the caller manages (owner or admin of its organization) for the rest
/// of the transaction; returns its organization. 404 if the caller cannot see it, 403 if they
/// are only a member.
async fn managed_server(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Uuid, ApiError> {
    let server = access::of_server(&mut *tx, user_id, id, false).await?;
    server.require(Role::Admin)?;
    let org = server.organization_id();
    if !servers::lock_live(tx, org, id).await? {
        return Err(ApiError::not_found());
    }
    Ok(org)
}

/// Applies `member_access` and `listed_members` from the input (checked by [`validate`]).
async fn set_member_access(
    tx: &mut sqlx::PgConnection,
    organization_id: Uuid,
    id: Uuid,
    input: &ServerInput,
) -> Result<(), ApiError> {
    if input.member_access.is_none() && input.listed_members.is_none() {
        return Ok(());
    }
    let listed = servers::set_member_access(
        tx,
        organization_id,
        id,
        input.member_access.as_deref(),
        input.listed_members.as_deref(),
    )
    .await?;
    if !listed {
        return Err(ApiError::validation(vec![FieldError::new(
            "listed_members",
            "every id must be a member of the server's organization",
        )]));
    }
    Ok(())
}
