//! `/mcp-servers/{id}/grants`: the agents connected to a server through OAuth (one grant per
//! person and client, approved by that person). Disconnecting one deletes its grant: every
//! gateway refuses its tokens within a second and its refresh token stops working. Owners and
//! admins see and end everyone's; a member sees and ends their own. `/me/grants` lists the
//! caller's own connections on every server ("My connections").

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{MalformedId, NotSignedIn};
use crate::{
    activity::{Action, Seen},
    db::oauth::{self as db, GrantRow},
    error::{ApiError, ErrorBody},
    extract::{Path, Query},
    orgs::{Role, access},
    routes::write::recorded,
    session::AuthUser,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_grants))
        .routes(routes!(delete_grant))
        .routes(routes!(my_grants))
}

/// An agent connected through OAuth.
#[derive(Serialize, ToSchema)]
pub struct GrantView {
    pub id: Uuid,
    pub server_id: Uuid,
    pub server_name: String,
    pub organization_id: Uuid,
    /// The person who approved the connection; its calls are theirs.
    pub user_id: Uuid,
    pub user_email: String,
    /// The client's id: a registration id, or the URL of its metadata document.
    pub client_id: String,
    /// The name the client gave (self-declared unless `client_id` is a URL).
    #[schema(example = "ChatGPT")]
    pub client_name: String,
    /// Where the authorization was sent back to.
    #[schema(example = "chatgpt.com")]
    pub redirect_host: String,
    pub created_at: DateTime<Utc>,
    /// When the agent last obtained tokens (tokens last an hour, so this is within an hour
    /// of its last call while it is in use).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<GrantRow> for GrantView {
    fn from(row: GrantRow) -> Self {
        let redirect_host = url::Url::parse(&row.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            id: row.id,
            server_id: row.server_id,
            server_name: row.server_name,
            organization_id: row.organization_id,
            user_id: row.user_id,
            user_email: row.user_email,
            client_id: row.client_id,
            // Names stored before format characters were dropped at registration.
            client_name: crate::web::text::plain(&row.client_name).into_owned(),
            redirect_host,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A list of grants.
#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub items: Vec<GrantView>,
}

/// Whose grants to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantParams {
    /// Only this person's (a member may name only themselves and always gets only their own).
    user_id: Option<Uuid>,
}

/// List the agents connected to a server through OAuth, newest first.
#[utoipa::path(
    get, path = "/mcp-servers/{id}/grants", tag = "grants",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), GrantParams),
    responses(
        (status = 200, description = "The server's grants (a member's own only)", body = GrantList),
        (status = 400, description = "Malformed id or query string", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "A member named someone else in `user_id` (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such live server the caller can see", body = ErrorBody),
    )
)]
async fn list_grants(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<GrantParams>,
) -> Result<axum::Json<GrantList>, ApiError> {
    let server = access::of_server(&state.pool, caller.user.id, id, false).await?;
    let user = match params.user_id {
        _ if server.role() >= Role::Admin => params.user_id,
        Some(other) if other != caller.user.id => {
            return Err(access::role_required(Role::Admin, server.role()));
        }
        _ => Some(caller.user.id),
    };
    let rows = db::grants_of_server(&state.pool, id, user).await?;
    Ok(axum::Json(GrantList {
        items: rows.into_iter().map(GrantView::from).collect(),
    }))
}

/// Disconnect an agent: its tokens stop working on every gateway within a second.
#[utoipa::path(
    delete, path = "/mcp-servers/{id}/grants/{grant_id}", tag = "grants",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ("grant_id" = Uuid, Path, description = "Grant id")),
    responses(
        (status = 204, description = "Disconnected"),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin", body = ErrorBody),
        (status = 404, description = "No such grant on a server the caller can see (for a member: of their own)", body = ErrorBody),
    )
)]
async fn delete_grant(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, grant_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        let server = access::of_server(&mut *tx, caller.user.id, id, false).await?;
        let only_own = (server.role() < Role::Admin).then_some(caller.user.id);
        let Some(approver) = db::delete_grant(&mut *tx, id, grant_id, only_own).await? else {
            return Err(ApiError::not_found());
        };
        let activity = seen
            .activity(Action::GrantDelete)
            .by(caller.user.id)
            .on_user(approver)
            .in_org(server.organization_id())
            .server(id)
            .grant(grant_id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, server_id = %id, %grant_id, "agent disconnected (grant deleted)");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own connections on every server they may use, newest first.
#[utoipa::path(
    get, path = "/me/grants", tag = "grants",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's grants", body = GrantList),
        NotSignedIn,
    )
)]
async fn my_grants(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<axum::Json<GrantList>, ApiError> {
    let rows = db::grants_of_user(&state.pool, caller.user.id).await?;
    Ok(axum::Json(GrantList {
        items: rows.into_iter().map(GrantView::from).collect(),
    }))
}
