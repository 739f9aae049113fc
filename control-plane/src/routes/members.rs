//! `/organizations/{id}/members`: who is in a team organization and with which role. Owners
//! and admins list members and change roles or remove people (only owners touch owners; an
//! organization always keeps one owner); anyone may leave. Removing someone, or lowering their
//! role, ends their agents' connections on every gateway within a second (in the schema).

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{
    MalformedId, MalformedJsonOrId, NoSuchOrganization, NotJson, NotSignedIn,
};
use crate::{
    activity::{Action, Seen},
    db::organizations::{self as db, MemberRow},
    error::{ApiError, ErrorBody},
    extract::{Json, Path},
    orgs::{Membership, Role, access},
    routes::{organizations::team_organization, write::recorded},
    session::AuthUser,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(change_role, remove_member))
}

/// A member.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl From<MemberRow> for MemberView {
    fn from(row: MemberRow) -> Self {
        Self {
            user_id: row.user_id,
            email: row.email,
            role: row.role,
            joined_at: row.joined_at,
        }
    }
}

/// An organization's members.
#[derive(Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberView>,
}

/// A member's new role.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub role: Role,
}

/// The members of an organization, owners first (owners and admins).
#[utoipa::path(
    get, path = "/organizations/{id}/members", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "The members", body = MemberList),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "The caller is only a member (`role_required`)", body = ErrorBody),
        NoSuchOrganization,
    )
)]
async fn list_members(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<MemberList>, ApiError> {
    access::of_organization(&state.pool, caller.user.id, id)
        .await?
        .require(Role::Admin)?;
    let rows = db::members(&state.pool, id).await?;
    Ok(axum::Json(MemberList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Change a member's role. Owners and admins may; only owners make or unmake owners; the last
/// owner cannot step down. A lowered role ends the member's connections.
#[utoipa::path(
    put, path = "/organizations/{id}/members/{user_id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id"), ("user_id" = Uuid, Path, description = "The member's user id")),
    request_body = RoleInput,
    responses(
        (status = 200, description = "The member with the new role", body = MemberView),
        MalformedJsonOrId,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller lacks the role (`role_required`: admin, or owner when an owner is involved)", body = ErrorBody),
        (status = 404, description = "No such organization of the caller's, or no such member", body = ErrorBody),
        (status = 409, description = "A personal organization (`personal_organization`), or the last owner stepping down (`last_owner`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Unknown role", body = ErrorBody),
    )
)]
async fn change_role(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    Json(input): Json<RoleInput>,
) -> Result<axum::Json<MemberView>, ApiError> {
    let row = recorded(&state.pool, async |tx| {
        let (membership, current) = member_to_change(tx, caller.user.id, id, user_id).await?;
        // Nobody raises their own role: changing one, even one's own, takes an admin.
        membership.require(Role::Admin)?;
        if current == Role::Owner || input.role == Role::Owner {
            membership.require(Role::Owner)?;
        }
        if current == Role::Owner
            && input.role < Role::Owner
            && db::owner_count(&mut *tx, id).await? <= 1
        {
            return Err(last_owner());
        }
        db::set_role(&mut *tx, id, user_id, input.role).await?;
        let row = db::member(&mut *tx, id, user_id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        let activity = seen
            .activity(Action::MemberRoleChange)
            .by(caller.user.id)
            .on_user(user_id)
            .in_org(id)
            .detail("role", input.role.as_str());
        Ok((row, activity))
    })
    .await?;
    tracing::info!(actor = %caller.user.id, organization_id = %id, %user_id, role = input.role.as_str(), "member role changed");
    Ok(axum::Json(row.into()))
}

/// Remove a member, or leave (a member may always remove themselves). Their connections to the
/// organization's servers end on every gateway within a second.
#[utoipa::path(
    delete, path = "/organizations/{id}/members/{user_id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id"), ("user_id" = Uuid, Path, description = "The member's user id")),
    responses(
        (status = 204, description = "Removed"),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller lacks the role (`role_required`: admin, or owner to remove an owner)", body = ErrorBody),
        (status = 404, description = "No such organization of the caller's, or no such member", body = ErrorBody),
        (status = 409, description = "A personal organization (`personal_organization`), or the last owner (`last_owner`)", body = ErrorBody),
    )
)]
async fn remove_member(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        let (membership, current) = member_to_change(tx, caller.user.id, id, user_id).await?;
        if current == Role::Owner {
            if user_id != caller.user.id {
                membership.require(Role::Owner)?;
            }
            if db::owner_count(&mut *tx, id).await? <= 1 {
                return Err(last_owner());
            }
        }
        db::remove_member(&mut *tx, id, user_id).await?;
        let activity = seen
            .activity(Action::MemberRemove)
            .by(caller.user.id)
            .on_user(user_id)
            .in_org(id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(actor = %caller.user.id, organization_id = %id, %user_id, "member removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Checks that the caller may change `user_id`'s membership of team organization `id` (an
/// admin, or the member themselves) and locks the organization: `(caller's membership, the
/// member's current role)`.
async fn member_to_change(
    tx: &mut sqlx::PgConnection,
    caller: Uuid,
    id: Uuid,
    user_id: Uuid,
) -> Result<(Membership, Role), ApiError> {
    // Anyone may leave; changing someone else takes an admin.
    let needed = if user_id == caller {
        Role::Member
    } else {
        Role::Admin
    };
    let membership = team_organization(&mut *tx, caller, id, needed).await?;
    db::lock(&mut *tx, id).await?;
    let current = db::role_of(&mut *tx, id, user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok((membership, current))
}

fn last_owner() -> ApiError {
    ApiError::conflict(
        "last_owner",
        "An organization needs at least one owner: make another member an owner first.",
    )
}
