//! `/sources`: an organization's data sources, managed by its owners and admins (members never
//! see a source's settings). Metadata is validated per type; secret fields are
//! encrypted at rest and write-only (responses say which are set, never their values). What a
//! request body is, per type, is [`input`].

mod input;

use std::collections::BTreeMap;

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::model::SourceType;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{
    ForeignOriginOrMember, MalformedId, MalformedJson, MalformedJsonOrId, NotJson, NotSignedIn,
};
use crate::{
    activity::{Action, Seen},
    db::sources::{self, SourceRow, SourceWrite},
    error::{ApiError, ErrorBody, FieldError},
    extract::{Json, Path, Query},
    orgs::{Role, access},
    routes::admin::page_bounds,
    routes::sources::input::{SourceInput, SourceUpdate},
    routes::write::recorded,
    session::AuthUser,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, update_source, delete_source))
}

/// Listing options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this organization's sources.
    organization_id: Option<Uuid>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// A source as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "box")]
    pub source_type: String,
    /// Non-secret settings, with defaults filled in.
    #[schema(value_type = Object)]
    pub source_metadata: Value,
    /// Which secret fields are set (values are never returned).
    #[schema(example = json!({"client_secret": true}))]
    pub secrets: BTreeMap<String, bool>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SourceRow> for SourceView {
    fn from(row: SourceRow) -> Self {
        let set = row.secrets.is_some();
        let secrets = SourceType::parse(&row.source_type)
            .map(|t| t.secret_fields().map(|f| (f.to_owned(), set)).collect())
            .unwrap_or_default();
        Self {
            id: row.id,
            organization_id: row.organization_id,
            source_type: row.source_type,
            source_metadata: row.source_metadata,
            secrets,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// One page of sources.
#[derive(Serialize, ToSchema)]
pub struct SourcePage {
    pub items: Vec<SourceView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The sources of the organizations the caller manages (owner or admin), newest first.
#[utoipa::path(
    get, path = "/sources", tag = "sources",
    security(("bearer" = []), ("cookie" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "One page of sources", body = SourcePage),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "`organization_id` names an organization where the caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "`organization_id` names no organization of the caller's", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    )
)]
async fn list_sources(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<SourcePage>, ApiError> {
    let (limit, offset) = page_bounds(params.limit, params.offset)?;
    if let Some(org) = params.organization_id {
        access::of_organization(&state.pool, caller.user.id, org)
            .await?
            .require(Role::Admin)?;
    }
    let (rows, total) = sources::page(
        &state.pool,
        caller.user.id,
        params.organization_id,
        limit,
        offset,
    )
    .await?;
    Ok(axum::Json(SourcePage {
        items: rows.into_iter().map(SourceView::from).collect(),
        total,
        limit,
        offset,
    }))
}

/// Create a source.
#[utoipa::path(
    post, path = "/sources", tag = "sources",
    security(("bearer" = []), ("cookie" = [])),
    request_body = SourceInput,
    responses(
        (status = 201, description = "Created", body = SourceView),
        MalformedJson,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller is only a member of the organization (`role_required`)", body = ErrorBody),
        (status = 404, description = "`organization_id` names no organization of the caller's", body = ErrorBody),
        (status = 409, description = "The organization has the most sources allowed (`source_limit_reached`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Unknown type or invalid metadata; each bad field is named", body = ErrorBody),
    )
)]
async fn create_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Json(input): Json<SourceInput>,
) -> Result<(StatusCode, axum::Json<SourceView>), ApiError> {
    let id = Uuid::new_v4();
    let source_type = parse_type(&input.source_type)?;
    let sealed = validate_and_seal(&state, id, source_type, &input.source_metadata, &Map::new())?;
    let row = recorded(&state.pool, async |tx| {
        let org = access::for_create(tx, caller.user.id, input.organization_id, Role::Admin)
            .await?
            .organization_id;
        // Locking the organization serialises its source creations, so the limit holds under load.
        let count = sources::lock_and_count(tx, org).await?;
        let max = state.config.max_sources_per_user;
        if count >= i64::from(max) {
            return Err(ApiError::conflict(
                "source_limit_reached",
                format!("An organization may have at most {max} sources; delete one first."),
            ));
        }
        let row = sources::insert(&mut *tx, id, org, &sealed.write()).await?;
        let activity = seen
            .activity(Action::SourceCreate)
            .by(caller.user.id)
            .in_org(org)
            .source(id)
            .detail("type", source_type.as_str());
        Ok((row, activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, source_id = %id, source_type = source_type.as_str(), "source created");
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// One source.
#[utoipa::path(
    get, path = "/sources/{id}", tag = "sources",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Source id")),
    responses(
        (status = 200, description = "The source", body = SourceView),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "The caller is only a member of the source's organization (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such source in an organization of the caller's", body = ErrorBody),
    )
)]
async fn get_source(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<SourceView>, ApiError> {
    let org = managed_source(&state.pool, caller.user.id, id).await?;
    let row = sources::get(&state.pool, org, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(row.into()))
}

/// Replace a source's type and metadata. A secret field left out keeps its stored value (when
/// the type stays the same).
#[utoipa::path(
    put, path = "/sources/{id}", tag = "sources",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Source id")),
    request_body = SourceUpdate,
    responses(
        (status = 200, description = "Updated", body = SourceView),
        MalformedJsonOrId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such source in an organization of the caller's", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid type or metadata, or another `organization_id`", body = ErrorBody),
    )
)]
async fn update_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
    Json(input): Json<SourceInput>,
) -> Result<axum::Json<SourceView>, ApiError> {
    let row = recorded(&state.pool, async |tx| {
        let org = managed_source(&mut *tx, caller.user.id, id).await?;
        let existing = sources::get_for_update(&mut *tx, org, id)
            .await?
            .ok_or_else(ApiError::not_found)?;
        if input.organization_id.is_some_and(|named| named != org) {
            return Err(ApiError::validation(vec![FieldError::new(
                "organization_id",
                "a source stays in its organization; leave this out",
            )]));
        }
        let source_type = parse_type(&input.source_type)?;
        let stored = match (&existing.secrets, &existing.secrets_key_id) {
            (Some(sealed), Some(key_id)) if existing.source_type == source_type.as_str() => state
                .keyring
                .open_source(id, sealed, key_id)
                .map_err(|err| ApiError::internal(anyhow::anyhow!("source {id}: {err}")))?,
            _ => Map::new(),
        };
        let sealed = validate_and_seal(&state, id, source_type, &input.source_metadata, &stored)?;
        let row = sources::update(&mut *tx, org, id, &sealed.write())
            .await?
            .ok_or_else(ApiError::not_found)?;
        let activity = seen
            .activity(Action::SourceUpdate)
            .by(caller.user.id)
            .in_org(org)
            .source(id)
            .detail("type", source_type.as_str());
        Ok((row, activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, source_id = %id, "source updated");
    Ok(axum::Json(row.into()))
}

/// Delete a source; it is removed from every server it was assigned to.
#[utoipa::path(
    delete, path = "/sources/{id}", tag = "sources",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Source id")),
    responses(
        (status = 204, description = "Deleted"),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such source in an organization of the caller's", body = ErrorBody),
    )
)]
async fn delete_source(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        let org = managed_source(&mut *tx, caller.user.id, id).await?;
        if !sources::delete(&mut *tx, org, id).await? {
            return Err(ApiError::not_found());
        }
        let activity = seen
            .activity(Action::SourceDelete)
            .by(caller.user.id)
            .in_org(org)
            .source(id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, source_id = %id, "source deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The organization of a source the caller manages: 404 if it is not in one of theirs, 403
/// if they are only a member there.
async fn managed_source(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Uuid, ApiError> {
    let membership = access::of_source(db, user_id, id).await?;
    membership.require(Role::Admin)?;
    Ok(membership.organization_id)
}

fn parse_type(name: &str) -> Result<SourceType, ApiError> {
    SourceType::parse(name).ok_or_else(|| {
        let names: Vec<&str> = SourceType::ALL.iter().map(|t| t.as_str()).collect();
        ApiError::validation(vec![FieldError::new(
            "type",
            format!("must be one of {}", names.join(", ")),
        )])
    })
}

/// A source's validated settings, its secrets sealed: what is stored.
struct Sealed {
    source_type: SourceType,
    metadata: Value,
    secrets: Vec<u8>,
    key_id: String,
}

impl Sealed {
    fn write(&self) -> SourceWrite<'_> {
        SourceWrite {
            source_type: self.source_type.as_str(),
            metadata: &self.metadata,
            secrets: &self.secrets,
            secrets_key_id: &self.key_id,
        }
    }
}

/// Validates metadata and seals its secrets.
fn validate_and_seal(
    state: &AppState,
    id: Uuid,
    source_type: SourceType,
    input: &Map<String, Value>,
    stored: &Map<String, Value>,
) -> Result<Sealed, ApiError> {
    let valid = source_type
        .validate(input, stored, &state.config.source_rules)
        .map_err(|problems| {
            ApiError::validation(
                problems
                    .into_iter()
                    .map(|p| FieldError::new(&p.field, p.message))
                    .collect(),
            )
        })?;
    let (secrets, key_id) = state.keyring.seal_source(id, &valid.secrets);
    Ok(Sealed {
        source_type,
        metadata: Value::Object(valid.public),
        secrets,
        key_id,
    })
}
