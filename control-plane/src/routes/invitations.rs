//! Invitations to a team organization: an owner or admin invites an email with a role and gets
//! a one-time link (shown once; only its hash is stored; 7 days; revocable). The person opens
//! it, signs in or up with that email, and accepts. Refusals say why and join nobody.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{
    ForeignOriginOrMember, MalformedId, MalformedJsonOrId, NoSuchOrganization, NotJson, NotSignedIn,
};
use crate::{
    activity::{Action, Seen},
    db::{
        invitations::{self as db, InvitationRow},
        organizations,
    },
    domain::Email,
    error::{ApiError, ErrorBody, FieldError},
    extract::{Json, Path},
    orgs::{Role, access},
    routes::{
        organizations::{OrganizationView, team_organization},
        write::recorded,
    },
    session::AuthUser,
    state::AppState,
};

/// How long an invitation link works.
const VALID_FOR: Duration = Duration::days(7);
/// Prefix of invitation tokens (tells them apart from keys and OAuth tokens in a leak scan).
const TOKEN_PREFIX: &str = "mcpinv_";
/// Most pending invitations one organization may have.
const MAX_PENDING: i64 = 500;
/// Most invitations listed (newest first).
const MAX_LISTED: i64 = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invitations, create_invitation))
        .routes(routes!(revoke_invitation))
        .routes(routes!(show_invitation))
        .routes(routes!(accept_invitation))
}

/// Whom to invite.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationInput {
    /// A valid address of at most 254 bytes (no quoted local part, no IP-literal domain); the
    /// account that accepts must have it (compared without case).
    #[schema(format = Email, max_length = 254, example = "ada@contoso.com")]
    pub email: String,
    /// The role they get on accepting (`owner` only from an owner).
    pub role: Role,
}

/// Where an invitation stands.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

/// An invitation as listed (its link is shown only when it is made).
#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub email: String,
    pub role: Role,
    pub status: InvitationStatus,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<InvitationRow> for InvitationView {
    fn from(row: InvitationRow) -> Self {
        Self {
            status: status_of(&row),
            id: row.id,
            organization_id: row.organization_id,
            organization_name: row.organization_name,
            email: row.email,
            role: row.role,
            invited_by: row.invited_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            accepted_at: row.accepted_at,
            accepted_by: row.accepted_by,
            revoked_at: row.revoked_at,
        }
    }
}

fn status_of(row: &InvitationRow) -> InvitationStatus {
    if row.accepted_at.is_some() {
        InvitationStatus::Accepted
    } else if row.revoked_at.is_some() {
        InvitationStatus::Revoked
    } else if row.expires_at <= Utc::now() {
        InvitationStatus::Expired
    } else {
        InvitationStatus::Pending
    }
}

/// A new invitation: the only time its link is shown.
#[derive(Serialize, ToSchema)]
pub struct NewInvitationView {
    /// Give this link to the person (by any channel you trust). It works once, for 7 days,
    /// for an account with the invited email.
    #[schema(example = "https://console.example.com/invitations/mcpinv_…")]
    pub accept_url: String,
    /// The token in the link, for `POST /invitations/{token}/accept`.
    pub token: String,
    #[serde(flatten)]
    pub invitation: InvitationView,
}

/// An organization's invitations.
#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    pub items: Vec<InvitationView>,
}

/// What an invitation link leads to (readable by whoever holds the link).
#[derive(Serialize, ToSchema)]
pub struct InvitationPreview {
    pub organization_name: String,
    pub email: String,
    pub role: Role,
    pub status: InvitationStatus,
    pub expires_at: DateTime<Utc>,
}

/// Invite someone by email (owners and admins; only owners invite owners).
#[utoipa::path(
    post, path = "/organizations/{id}/invitations", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = InvitationInput,
    responses(
        (status = 201, description = "Created; `accept_url` and `token` are shown only now", body = NewInvitationView),
        MalformedJsonOrId,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller lacks the role (`role_required`: admin, owner to invite an owner)", body = ErrorBody),
        NoSuchOrganization,
        (status = 409, description = "A personal organization (`personal_organization`), the email is a member already (`already_member`), or too many pending invitations (`invitation_limit_reached`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid email or role", body = ErrorBody),
    )
)]
async fn create_invitation(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
    Json(input): Json<InvitationInput>,
) -> Result<(StatusCode, axum::Json<NewInvitationView>), ApiError> {
    let email = Email::parse(&input.email)
        .map_err(|problem| ApiError::validation(vec![FieldError::new("email", problem)]))?;
    let (token, row) = recorded(&state.pool, async |tx| {
        // Admins invite; only owners invite owners.
        let needed = input.role.max(Role::Admin);
        team_organization(&mut *tx, caller.user.id, id, needed).await?;
        organizations::lock(&mut *tx, id).await?;
        if organizations::has_member_with_email(&mut *tx, id, email.as_str()).await? {
            return Err(ApiError::conflict(
                "already_member",
                "Someone with this email is a member already; change their role instead.",
            ));
        }
        if db::pending_count(&mut *tx, id).await? >= MAX_PENDING {
            return Err(ApiError::conflict(
                "invitation_limit_reached",
                format!(
                    "An organization may have at most {MAX_PENDING} pending invitations; revoke some first."
                ),
            ));
        }
        let token = shared::oauth::random_token(TOKEN_PREFIX);
        let hash = shared::access_key::hash(&token);
        let row = db::invite(
            tx,
            id,
            email.as_str(),
            input.role,
            &hash,
            caller.user.id,
            Utc::now() + VALID_FOR,
        )
        .await?;
        let activity = seen
            .activity(Action::InvitationCreate)
            .by(caller.user.id)
            .in_org(id)
            .detail("role", input.role.as_str())
            .detail("invitation_id", row.id.to_string());
        Ok(((token, row), activity))
    })
    .await?;
    tracing::info!(actor = %caller.user.id, organization_id = %id, invitation_id = %row.id, "invitation created");
    Ok((
        StatusCode::CREATED,
        axum::Json(NewInvitationView {
            accept_url: state.oauth.url(&format!("/invitations/{token}")),
            token,
            invitation: row.into(),
        }),
    ))
}

/// An organization's invitations, newest first, with where each stands (owners and admins).
#[utoipa::path(
    get, path = "/organizations/{id}/invitations", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "The invitations (the newest 500)", body = InvitationList),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "The caller is only a member (`role_required`)", body = ErrorBody),
        NoSuchOrganization,
    )
)]
async fn list_invitations(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<InvitationList>, ApiError> {
    access::of_organization(&state.pool, caller.user.id, id)
        .await?
        .require(Role::Admin)?;
    let rows = db::invitations(&state.pool, id, MAX_LISTED).await?;
    Ok(axum::Json(InvitationList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke a pending invitation: its link stops working (owners and admins). Revoking a revoked
/// or expired one changes nothing.
#[utoipa::path(
    delete, path = "/organizations/{id}/invitations/{invitation_id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id"), ("invitation_id" = Uuid, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Revoked"),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such invitation of an organization of the caller's", body = ErrorBody),
        (status = 409, description = "Already accepted (`invitation_used`): remove the member instead", body = ErrorBody),
    )
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, invitation_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        access::of_organization(&mut *tx, caller.user.id, id)
            .await?
            .require(Role::Admin)?;
        let row = db::revoke_invitation(tx, id, invitation_id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        if row.accepted_at.is_some() {
            return Err(ApiError::conflict(
                "invitation_used",
                "This invitation was accepted already; remove the member instead.",
            ));
        }
        let activity = seen
            .activity(Action::InvitationRevoke)
            .by(caller.user.id)
            .in_org(id)
            .detail("invitation_id", invitation_id.to_string());
        Ok(((), activity))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What an invitation link is for: the organization, the email it was sent to, the role, and
/// whether it still works. No session needed: the link is the credential.
#[utoipa::path(
    get, path = "/invitations/{token}", tag = "organizations",
    params(("token" = String, Path, description = "The token from the invitation link")),
    responses(
        (status = 200, description = "The invitation", body = InvitationPreview),
        (status = 404, description = "No such invitation", body = ErrorBody),
    )
)]
async fn show_invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<axum::Json<InvitationPreview>, ApiError> {
    let row = db::invitation_by_hash(&state.pool, &shared::access_key::hash(&token), false)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(InvitationPreview {
        status: status_of(&row),
        organization_name: row.organization_name,
        email: row.email,
        role: row.role,
        expires_at: row.expires_at,
    }))
}

/// Accept an invitation as the signed-in account, which must have the invited email.
#[utoipa::path(
    post, path = "/invitations/{token}/accept", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("token" = String, Path, description = "The token from the invitation link")),
    responses(
        (status = 200, description = "Joined: the organization", body = OrganizationView),
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the account's email is not the invited one (`invitation_email_mismatch`)", body = ErrorBody),
        (status = 404, description = "No such invitation", body = ErrorBody),
        (status = 409, description = "The account is a member already (`already_member`)", body = ErrorBody),
        (status = 410, description = "Used (`invitation_used`), revoked (`invitation_revoked`) or expired (`invitation_expired`)", body = ErrorBody),
    )
)]
async fn accept_invitation(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(token): Path<String>,
) -> Result<axum::Json<OrganizationView>, ApiError> {
    let joined = recorded(&state.pool, async |tx| {
        let row = db::invitation_by_hash(&mut *tx, &shared::access_key::hash(&token), true)
            .await?
            .ok_or_else(ApiError::not_found)?;
        refuse_unusable(&row)?;
        if !row.email.eq_ignore_ascii_case(&caller.user.email) {
            return Err(ApiError::forbidden(
                "invitation_email_mismatch",
                format!(
                    "This invitation was sent to another email address than {}'s. Sign out, then sign in or sign up with the address it was sent to.",
                    caller.user.email
                ),
            ));
        }
        let org = row.organization_id;
        if !organizations::add_member(&mut *tx, org, caller.user.id, row.role).await? {
            return Err(ApiError::conflict(
                "already_member",
                "You are a member of this organization already.",
            ));
        }
        db::mark_accepted(&mut *tx, row.id, caller.user.id).await?;
        let joined = organizations::get(&mut *tx, caller.user.id, org)
            .await?
            .ok_or_else(ApiError::not_found)?;
        let activity = seen
            .activity(Action::InvitationAccept)
            .by(caller.user.id)
            .in_org(org)
            .detail("role", row.role.as_str())
            .detail("invitation_id", row.id.to_string());
        Ok((joined, activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, organization_id = %joined.id, "invitation accepted");
    Ok(axum::Json(joined.into()))
}

/// 410 for an invitation that can no longer be used, saying why.
fn refuse_unusable(row: &InvitationRow) -> Result<(), ApiError> {
    let (code, message) = match status_of(row) {
        InvitationStatus::Pending => return Ok(()),
        InvitationStatus::Accepted => (
            "invitation_used",
            "This invitation has been used already; ask for a new one.",
        ),
        InvitationStatus::Revoked => (
            "invitation_revoked",
            "This invitation was withdrawn; ask for a new one.",
        ),
        InvitationStatus::Expired => (
            "invitation_expired",
            "This invitation has expired (they last 7 days); ask for a new one.",
        ),
    };
    Err(ApiError::new(StatusCode::GONE, code, message))
}
