//! `/mcp-servers`: an organization's MCP servers, each reachable at its own endpoint from the
//! pool. Owners and admins manage them; members see the ones they may connect an agent to.

use std::collections::HashSet;

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    activity::{Action, Activity, Seen},
    auth::AuthUser,
    db::servers::{self, LIVE_ENDPOINT_UNIQUE, SOURCE_LINK_FKEY, ServerRow},
    endpoints::endpoint_taken,
    error::{ApiError, ErrorBody, FieldError, ResultExt},
    extract::{Json, Path, Query},
    orgs::{Role, access},
    routes::admin::page_bounds,
    state::AppState,
};

/// Most sources one server may have.
const MAX_SOURCES: usize = shared::model::MAX_SOURCES_PER_SERVER;
/// Most members one server may list.
const MAX_LISTED_MEMBERS: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_servers, create_server))
        .routes(routes!(get_server, update_server, delete_server))
        .routes(routes!(restore_server))
        .routes(routes!(attach_source, detach_source))
}

/// A server to create (`name` required), or the changes to one (fields left out stay).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerInput {
    /// 1 to 200 characters after trimming, not only white space, no control characters.
    #[schema(
        example = "Sales research",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// The caller's sources this server may search (at most 100 distinct ids); replaces the
    /// current list.
    #[schema(max_items = 100)]
    source_ids: Option<Vec<Uuid>>,
    /// Answer agents without an access key (default false: every MCP request needs a key of
    /// this server, see `/mcp-servers/{id}/keys`).
    public: Option<bool>,
    /// Who may connect an agent: `all` members of the organization (default) or only the
    /// `listed_members` (owners and admins always may).
    #[schema(value_type = Option<String>, example = "all", pattern = "^(all|listed)$")]
    member_access: Option<String>,
    /// The members who may connect when `member_access` is `listed` (user ids of members of
    /// the server's organization; at most 1,000); replaces the current list.
    #[schema(max_items = 1000)]
    listed_members: Option<Vec<Uuid>>,
    /// Create only: the organization to create it in (default: the caller's personal one;
    /// the caller must be an owner or admin there). On update, only the server's own.
    organization_id: Option<Uuid>,
    /// Refused, whatever its value (even null): the endpoint is assigned by the server.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    endpoint: bool,
}

/// A server to create: as [`ServerInput`], with `name` required. Documentation only; the
/// handler reads a `ServerInput` and checks the name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewServer {
    /// 1 to 200 characters after trimming, not only white space, no control characters.
    #[schema(
        example = "Sales research",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// The caller's sources this server may search (at most 100 distinct ids).
    #[schema(max_items = 100)]
    source_ids: Option<Vec<Uuid>>,
    /// Answer agents without an access key (default false: every MCP request needs a key of
    /// this server, see `/mcp-servers/{id}/keys`).
    public: Option<bool>,
    /// Who may connect an agent: `all` members of the organization (default) or only the
    /// `listed_members` (owners and admins always may).
    #[schema(value_type = Option<String>, example = "all", pattern = "^(all|listed)$")]
    member_access: Option<String>,
    /// The members who may connect when `member_access` is `listed` (user ids of members of
    /// the server's organization; at most 1,000); replaces the current list.
    #[schema(max_items = 1000)]
    listed_members: Option<Vec<Uuid>>,
    /// The organization to create it in (default: the caller's personal one; the caller must
    /// be an owner or admin there).
    organization_id: Option<Uuid>,
}

/// A server as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ServerView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// Assigned from the pool; read-only.
    #[schema(example = "https://mcp1.example.com")]
    pub endpoint: String,
    /// What to give an MCP client: the endpoint followed by `/mcp`.
    #[schema(example = "https://mcp1.example.com/mcp")]
    pub mcp_url: String,
    /// Its sources (empty in a member's view: members never see the organization's sources).
    pub source_ids: Vec<Uuid>,
    /// Whether agents may call it without an access key.
    pub public: bool,
    /// Who may connect an agent: `all` members, or the `listed_members` (owners and admins
    /// always may).
    #[schema(example = "all")]
    pub member_access: String,
    /// The members who may connect when `listed` (empty in a member's view).
    pub listed_members: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<ServerRow> for ServerView {
    fn from(row: ServerRow) -> Self {
        Self {
            mcp_url: format!("{}/mcp", row.endpoint),
            id: row.id,
            organization_id: row.organization_id,
            name: row.name,
            endpoint: row.endpoint,
            source_ids: row.source_ids,
            public: row.public,
            member_access: row.member_access,
            listed_members: row.listed_members,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

impl ServerView {
    /// What a member (not an owner or admin) is shown: the server, not how it is made.
    fn seen_by(mut self, role: Role) -> Self {
        if role < Role::Admin {
            self.source_ids.clear();
            self.listed_members.clear();
        }
        self
    }
}

/// One page of servers.
#[derive(Serialize, ToSchema)]
pub struct ServerPage {
    pub items: Vec<ServerView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Listing options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this organization's servers.
    organization_id: Option<Uuid>,
    /// Include soft-deleted servers (default false; owners and admins only see them).
    include_deleted: Option<bool>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// Whether to show a soft-deleted server.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowParams {
    /// Also find a soft-deleted server (default false).
    include_deleted: Option<bool>,
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
        (status = 401, description = "Not signed in", body = ErrorBody),
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
        crate::db::organizations::of_user(&state.pool, caller.user.id)
            .await?
            .into_iter()
            .map(|org| (org.id, org.role))
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
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member of the organization (`role_required`)", body = ErrorBody),
        (status = 404, description = "`organization_id` names no organization of the caller's, or a source id is not one of the organization's sources (`source_not_found`)", body = ErrorBody),
        (status = 409, description = "No endpoint is free (`pool_exhausted`), or the organization has the most servers allowed (`server_limit_reached`)", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
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
    let mut tx = state.pool.begin().await?;
    let org = access::for_create(&mut tx, user_id, input.organization_id, Role::Admin)
        .await?
        .organization_id;
    // Sources first: a stranger's source id is a 404 whatever the state of the pool.
    if !servers::owns_sources(&mut *tx, org, &source_ids).await? {
        return Err(source_not_found());
    }
    let endpoint = state.allocator.allocate(&mut tx, org, None).await?;
    let public = input.public.unwrap_or(false);
    let id = servers::insert(&mut *tx, org, &name, &endpoint.url, &endpoint.host, public)
        .await
        .on_constraint(LIVE_ENDPOINT_UNIQUE, endpoint_taken)?;
    if !servers::set_sources(&mut tx, org, id, &source_ids)
        .await
        .on_constraint(SOURCE_LINK_FKEY, source_not_found)?
    {
        return Err(source_not_found());
    }
    set_member_access(&mut tx, org, id, &input).await?;
    activity
        .in_org(org)
        .server(id)
        .detail("endpoint", endpoint.url.as_str())
        .record(&mut *tx)
        .await?;
    let view = commit_and_show(tx, org, id).await?;
    tracing::info!(%user_id, server_id = %id, endpoint = %endpoint.url, "MCP server created");
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// One server.
#[utoipa::path(
    get, path = "/mcp-servers/{id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ShowParams),
    responses(
        (status = 200, description = "The server", body = ServerView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
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
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such live server, or a source that is not the organization's", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
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
    let mut tx = state.pool.begin().await?;
    let org = managed_server(&mut tx, user_id, id).await?;
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
    set_member_access(&mut tx, org, id, &input).await?;
    if let Some(source_ids) = source_ids
        && !servers::set_sources(&mut tx, org, id, &source_ids)
            .await
            .on_constraint(SOURCE_LINK_FKEY, source_not_found)?
    {
        return Err(source_not_found());
    }
    let changed: Vec<&str> = [
        (input.name.is_some(), "name"),
        (input.public.is_some(), "public"),
        (input.source_ids.is_some(), "source_ids"),
        (input.member_access.is_some(), "member_access"),
        (input.listed_members.is_some(), "listed_members"),
    ]
    .into_iter()
    .filter_map(|(given, field)| given.then_some(field))
    .collect();
    seen.activity(Action::ServerUpdate)
        .by(user_id)
        .in_org(org)
        .server(id)
        .detail("changed", changed)
        .record(&mut *tx)
        .await?;
    let view = commit_and_show(tx, org, id).await?;
    tracing::info!(%user_id, server_id = %id, "MCP server updated");
    Ok(axum::Json(view))
}

/// Soft-delete a server: it stops being served and its endpoint is freed at once.
#[utoipa::path(
    delete, path = "/mcp-servers/{id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 204, description = "Soft-deleted; restore with POST /mcp-servers/{id}/restore"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such live server the caller can see", body = ErrorBody),
    )
)]
async fn delete_server(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.pool.begin().await?;
    let org = managed_server(&mut tx, caller.user.id, id).await?;
    if !servers::soft_delete(&mut *tx, org, id).await? {
        return Err(ApiError::not_found());
    }
    seen.activity(Action::ServerDelete)
        .by(caller.user.id)
        .in_org(org)
        .server(id)
        .record(&mut *tx)
        .await?;
    tx.commit().await?;
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
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such server the caller can see", body = ErrorBody),
        (status = 409, description = "The server is not deleted (`not_deleted`), no endpoint is free (`pool_exhausted`), or the organization has the most servers allowed (`server_limit_reached`)", body = ErrorBody),
    )
)]
async fn restore_server(
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
    let mut tx = state.pool.begin().await?;
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
    let endpoint = state
        .allocator
        .allocate(&mut tx, org, Some(&old_host))
        .await?;
    servers::restore(&mut *tx, org, id, &endpoint.url, &endpoint.host)
        .await
        .on_constraint(LIVE_ENDPOINT_UNIQUE, endpoint_taken)?;
    activity
        .in_org(org)
        .detail("endpoint", endpoint.url.as_str())
        .record(&mut *tx)
        .await?;
    let view = commit_and_show(tx, org, id).await?;
    tracing::info!(%user_id, server_id = %id, endpoint = %endpoint.url, "MCP server restored");
    Ok(axum::Json(view))
}

/// Give a server one more source (no change if it already has it).
#[utoipa::path(
    put, path = "/mcp-servers/{id}/sources/{source_id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ("source_id" = Uuid, Path, description = "Source id")),
    responses(
        (status = 200, description = "The server with the source", body = ServerView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such live server, or the source is not the organization's (`source_not_found`)", body = ErrorBody),
        (status = 422, description = "The server already has the most sources allowed (100)", body = ErrorBody),
    )
)]
async fn attach_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, source_id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let user_id = caller.user.id;
    let mut tx = state.pool.begin().await?;
    let org = managed_server(&mut tx, user_id, id).await?;
    if servers::source_count(&mut *tx, id).await? >= MAX_SOURCES as i64 {
        return Err(ApiError::validation(vec![FieldError::new(
            "source_id",
            format!("a server may have at most {MAX_SOURCES} sources"),
        )]));
    }
    if !servers::attach(&mut *tx, org, id, source_id)
        .await
        .on_constraint(SOURCE_LINK_FKEY, source_not_found)?
    {
        return Err(source_not_found());
    }
    seen.activity(Action::ServerSourceAttach)
        .by(user_id)
        .in_org(org)
        .server(id)
        .source(source_id)
        .record(&mut *tx)
        .await?;
    let view = commit_and_show(tx, org, id).await?;
    Ok(axum::Json(view))
}

/// Take a source away from a server.
#[utoipa::path(
    delete, path = "/mcp-servers/{id}/sources/{source_id}", tag = "mcp-servers",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ("source_id" = Uuid, Path, description = "Source id")),
    responses(
        (status = 200, description = "The server without the source", body = ServerView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such live server, or the source is not assigned to it", body = ErrorBody),
    )
)]
async fn detach_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, source_id)): Path<(Uuid, Uuid)>,
) -> Result<axum::Json<ServerView>, ApiError> {
    let user_id = caller.user.id;
    let mut tx = state.pool.begin().await?;
    let org = managed_server(&mut tx, user_id, id).await?;
    if !servers::detach(&mut *tx, org, id, source_id).await? {
        return Err(ApiError::not_found());
    }
    seen.activity(Action::ServerSourceDetach)
        .by(user_id)
        .in_org(org)
        .server(id)
        .source(source_id)
        .record(&mut *tx)
        .await?;
    let view = commit_and_show(tx, org, id).await?;
    Ok(axum::Json(view))
}

/// Reads the server back inside the transaction, then commits: the answer shows exactly what
/// was committed.
async fn commit_and_show(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    organization_id: Uuid,
    id: Uuid,
) -> Result<ServerView, ApiError> {
    let row = servers::get(&mut *tx, organization_id, id, false)
        .await?
        .ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(row.into())
}

/// `true` when the field is in the body at all.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer)?;
    Ok(true)
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

/// Checks the input; `(trimmed name, distinct source ids)`.
fn validate(
    input: &ServerInput,
    creating: bool,
) -> Result<(Option<String>, Option<Vec<Uuid>>), ApiError> {
    let mut fields = Vec::new();
    if input.endpoint {
        fields.push(FieldError::new(
            "endpoint",
            "is assigned by the server and cannot be set or changed",
        ));
    }
    let name = crate::domain::name::display_name(input.name.as_deref(), 200, creating)
        .map_err(|problem| fields.push(FieldError::new("name", problem)))
        .unwrap_or_default();
    let source_ids = input.source_ids.as_ref().map(|ids| {
        let mut seen = HashSet::new();
        ids.iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect::<Vec<_>>()
    });
    if source_ids
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_SOURCES)
    {
        fields.push(FieldError::new(
            "source_ids",
            format!("must list at most {MAX_SOURCES} sources"),
        ));
    }
    if input
        .member_access
        .as_deref()
        .is_some_and(|a| a != "all" && a != "listed")
    {
        fields.push(FieldError::new(
            "member_access",
            "must be `all` or `listed`",
        ));
    }
    if input
        .listed_members
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_LISTED_MEMBERS)
    {
        fields.push(FieldError::new(
            "listed_members",
            format!("must list at most {MAX_LISTED_MEMBERS} members"),
        ));
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    Ok((name, source_ids))
}
