//! `/mcp-servers/{id}/grants`: the agents connected to a server through OAuth (one grant per
//! client the owner approved). Disconnecting one deletes its grant: every gateway refuses its
//! tokens within a second and its refresh token stops working. Owner only.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    activity::{Action, Seen},
    auth::AuthUser,
    db::{
        oauth::{self as db, GrantRow},
        servers,
    },
    error::{ApiError, ErrorBody},
    extract::Path,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_grants))
        .routes(routes!(delete_grant))
}

/// An agent connected through OAuth.
#[derive(Serialize, ToSchema)]
pub struct GrantView {
    pub id: Uuid,
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
            client_id: row.client_id,
            // Names stored before format characters were dropped at registration.
            client_name: crate::web::text::plain(&row.client_name).into_owned(),
            redirect_host,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// The grants of a server.
#[derive(Serialize, ToSchema)]
pub struct GrantList {
    pub items: Vec<GrantView>,
}

/// List the agents connected to a server through OAuth, newest first.
#[utoipa::path(
    get, path = "/mcp-servers/{id}/grants", tag = "grants",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 200, description = "The server's grants", body = GrantList),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such live server of the caller's", body = ErrorBody),
    )
)]
async fn list_grants(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<GrantList>, ApiError> {
    if !servers::owns(&state.pool, caller.user.id, id, false).await? {
        return Err(ApiError::not_found());
    }
    let rows = db::grants_of_server(&state.pool, caller.user.id, id).await?;
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
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Cookie request from a foreign origin", body = ErrorBody),
        (status = 404, description = "No such grant on a server of the caller's", body = ErrorBody),
    )
)]
async fn delete_grant(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, grant_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.pool.begin().await?;
    if !db::delete_grant(&mut *tx, caller.user.id, id, grant_id).await? {
        return Err(ApiError::not_found());
    }
    seen.activity(Action::GrantDelete)
        .by(caller.user.id)
        .server(id)
        .grant(grant_id)
        .record(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(user_id = %caller.user.id, server_id = %id, %grant_id, "agent disconnected (grant deleted)");
    Ok(StatusCode::NO_CONTENT)
}
