//! `GET /activity`: the activity log. A user reads the records of their own account (what they
//! did, and what an administrator, an agent or the command line did to it); an administrator
//! reads everyone's and may pick one user.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::NotSignedIn;
use crate::{
    activity::{Action, ActorKind},
    db::activity::{self as db, ActivityFilter, ActivityRow},
    error::{ApiError, ErrorBody, FieldError},
    extract::Query,
    orgs::{Role, access},
    routes::admin::page_bounds,
    session::AuthUser,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_activity))
}

/// Which records to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Administrators only: the records of this user (as the one who acted or the account
    /// acted on). Others get 403 `admin_required`.
    user_id: Option<Uuid>,
    /// The records of this organization (its owners and admins; members get 403
    /// `role_required`, non-members 404). Without it: the caller's own records.
    organization_id: Option<Uuid>,
    /// One action, e.g. `signin` or `server_create`.
    #[param(value_type = Option<Action>)]
    action: Option<String>,
    /// `success` or `failure`.
    #[param(inline, value_type = Option<OutcomeFilter>)]
    outcome: Option<String>,
    /// Records at or after this time (RFC 3339); not after `to` (422 otherwise).
    from: Option<DateTime<Utc>>,
    /// Records before this time (RFC 3339); not before `from`.
    to: Option<DateTime<Utc>>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// Outcomes, as the filter names them (documentation only: the handler checks the string).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum OutcomeFilter {
    Success,
    Failure,
}

/// One recorded action. Never a secret or a request body.
#[derive(Serialize, ToSchema)]
pub struct ActivityView {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// One of the recorded actions (shown as stored).
    #[schema(value_type = Action)]
    pub action: String,
    /// `success` or `failure`.
    #[schema(example = "success")]
    pub outcome: String,
    /// The error code the request was answered with, for failures.
    #[schema(example = "pool_exhausted")]
    pub error_code: Option<String>,
    #[schema(value_type = ActorKind)]
    pub actor_kind: String,
    /// The user who acted (`actor_kind = user`).
    pub actor_id: Option<Uuid>,
    /// The account the record belongs to: the actor's own, the owner of what an administrator
    /// or agent changed, or the account a failed sign-in named (none for unknown emails).
    pub user_id: Option<Uuid>,
    /// The organization the action was in.
    pub organization_id: Option<Uuid>,
    pub source_id: Option<Uuid>,
    pub server_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    /// A few non-secret facts chosen by the server (source type, changed field names, role,
    /// OAuth client id, counts).
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The client address (see `TRUST_FORWARDED_FOR`); none for the command line.
    #[schema(example = "203.0.113.7")]
    pub client_ip: Option<String>,
    /// The request's `X-Request-Id`, to find it in the logs.
    pub request_id: Option<String>,
}

impl From<ActivityRow> for ActivityView {
    fn from(row: ActivityRow) -> Self {
        Self {
            id: row.id,
            created_at: row.created_at,
            action: row.action,
            outcome: row.outcome,
            error_code: row.error_code,
            actor_kind: row.actor_kind,
            actor_id: row.actor_id,
            user_id: row.user_id,
            organization_id: row.organization_id,
            source_id: row.source_id,
            server_id: row.server_id,
            key_id: row.key_id,
            grant_id: row.grant_id,
            detail: row.detail,
            client_ip: row.client_ip,
            request_id: row.request_id,
        }
    }
}

/// One page of records.
#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    pub items: Vec<ActivityView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The activity log, newest first: the caller's own records, or (administrators) everyone's.
#[utoipa::path(
    get, path = "/activity", tag = "activity",
    security(("bearer" = []), ("cookie" = [])),
    params(ActivityParams),
    responses(
        (status = 200, description = "One page of records", body = ActivityPage),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "`user_id` given by someone who is not an administrator (`admin_required`), or `organization_id` by a plain member (`role_required`)", body = ErrorBody),
        (status = 404, description = "`organization_id` names no organization of the caller's", body = ErrorBody),
        (status = 422, description = "Unknown action or outcome, from after to, bad limit or offset", body = ErrorBody),
    )
)]
async fn list_activity(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<ActivityParams>,
) -> Result<axum::Json<ActivityPage>, ApiError> {
    let (limit, offset) = page_bounds(params.limit, params.offset)?;
    let admin = caller.user.is_admin();
    if params.user_id.is_some() && !admin {
        return Err(ApiError::forbidden(
            "admin_required",
            "Only administrators may read other users' activity.",
        ));
    }
    let mut fields = Vec::new();
    let action = match params.action.as_deref().map(Action::parse) {
        Some(None) => {
            fields.push(FieldError::new("action", "is not a recorded action"));
            None
        }
        other => other.flatten(),
    };
    let outcome = match params.outcome.as_deref() {
        None => None,
        Some("success") => Some("success"),
        Some("failure") => Some("failure"),
        Some(_) => {
            fields.push(FieldError::new("outcome", "must be `success` or `failure`"));
            None
        }
    };
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from > to
    {
        fields.push(FieldError::new("from", "must not be after `to`"));
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    if let Some(org) = params.organization_id {
        access::of_organization(&state.pool, caller.user.id, org)
            .await?
            .require(Role::Admin)?;
    }
    let filter = ActivityFilter {
        user: match (admin, params.organization_id) {
            (true, _) => params.user_id,
            (false, Some(_)) => None,
            (false, None) => Some(caller.user.id),
        },
        organization: params.organization_id,
        action: action.map(Action::as_str),
        outcome,
        from: params.from,
        to: params.to,
    };
    let (rows, total) = db::page(&state.pool, &filter, limit, offset).await?;
    Ok(axum::Json(ActivityPage {
        items: rows.into_iter().map(Into::into).collect(),
        total,
        limit,
        offset,
    }))
}
