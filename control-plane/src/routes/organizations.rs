//! `/organizations`: the organizations a person is in. Everyone has a personal one (made with
//! the account, theirs alone); anyone may create team organizations and becomes their first
//! owner. Anything of an organization the caller is not in is a 404.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{
    MalformedId, MalformedJson, MalformedJsonOrId, NoSuchOrganization, NotJson, NotSignedIn,
};
use crate::{
    activity::{Action, Seen},
    db::organizations::{self as db, OrganizationRow, SLUG_UNIQUE},
    domain::name::display_name,
    error::{ApiError, ErrorBody, FieldError, ResultExt},
    extract::{Json, Path},
    orgs::{Membership, Role, access},
    routes::write::recorded,
    session::AuthUser,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations, create_organization))
        .routes(routes!(
            get_organization,
            update_organization,
            delete_organization
        ))
}

/// The changes to a team organization (fields left out stay); the handler of `POST` reads it
/// too and requires both fields (see [`NewOrganization`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    /// 1 to 100 characters after trimming, not only white space, no control characters.
    #[schema(
        example = "Contoso",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// Unique: 1 to 48 lower-case letters, digits and inner hyphens.
    #[schema(example = "contoso", pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")]
    slug: Option<String>,
}

/// A team organization to create. Documentation only; the handler reads an
/// [`OrganizationInput`] and checks that both fields are there.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewOrganization {
    /// 1 to 100 characters after trimming, not only white space, no control characters.
    #[schema(
        example = "Contoso",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: String,
    /// Unique: 1 to 48 lower-case letters, digits and inner hyphens.
    #[schema(example = "contoso", pattern = "^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")]
    slug: String,
}

/// An organization as one of its members sees it.
#[derive(Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: Uuid,
    pub name: String,
    /// Team organizations only.
    pub slug: Option<String>,
    /// The caller's own organization (one account, its owner); it cannot be left or deleted.
    pub personal: bool,
    /// The caller's role in it.
    pub role: Role,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

impl From<OrganizationRow> for OrganizationView {
    fn from(row: OrganizationRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            slug: row.slug,
            personal: row.personal,
            role: row.role,
            member_count: row.member_count,
            created_at: row.created_at,
        }
    }
}

/// The caller's organizations.
#[derive(Serialize, ToSchema)]
pub struct OrganizationList {
    pub items: Vec<OrganizationView>,
}

/// The organizations the caller is in: the personal one first, then by name.
#[utoipa::path(
    get, path = "/organizations", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "The caller's organizations", body = OrganizationList),
        NotSignedIn,
    )
)]
async fn list_organizations(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<axum::Json<OrganizationList>, ApiError> {
    let rows = db::of_user(&state.pool, caller.user.id).await?;
    Ok(axum::Json(OrganizationList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Create a team organization; the caller becomes its owner.
#[utoipa::path(
    post, path = "/organizations", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    request_body = NewOrganization,
    responses(
        (status = 201, description = "Created", body = OrganizationView),
        MalformedJson,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin", body = ErrorBody),
        (status = 409, description = "The slug is taken (`slug_taken`), or the caller owns the most team organizations allowed (`organization_limit_reached`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid or missing name or slug", body = ErrorBody),
    )
)]
async fn create_organization(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Json(input): Json<OrganizationInput>,
) -> Result<(StatusCode, axum::Json<OrganizationView>), ApiError> {
    let (name, slug) = validate(&input, true)?;
    let (name, slug) = (name.unwrap_or_default(), slug.unwrap_or_default());
    let row = recorded(&state.pool, async |tx| {
        let owned = db::lock_and_count_owned(tx, caller.user.id).await?;
        let max = state.config.max_organizations_per_user;
        if owned >= i64::from(max) {
            return Err(ApiError::conflict(
                "organization_limit_reached",
                format!(
                    "An account may own at most {max} team organizations (MAX_ORGANIZATIONS_PER_USER); delete one first."
                ),
            ));
        }
        let id = db::create(tx, caller.user.id, &name, &slug)
            .await
            .on_constraint(SLUG_UNIQUE, slug_taken)?;
        let row = organization(tx, caller.user.id, id).await?;
        let activity = seen
            .activity(Action::OrganizationCreate)
            .by(caller.user.id)
            .in_org(id);
        Ok((row, activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, organization_id = %row.id, "organization created");
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// One organization the caller is in.
#[utoipa::path(
    get, path = "/organizations/{id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        MalformedId,
        NotSignedIn,
        NoSuchOrganization,
    )
)]
async fn get_organization(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<OrganizationView>, ApiError> {
    let row = db::get(&state.pool, caller.user.id, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(row.into()))
}

/// Rename a team organization or change its slug (owners).
#[utoipa::path(
    put, path = "/organizations/{id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = OrganizationInput,
    responses(
        (status = 200, description = "Updated", body = OrganizationView),
        MalformedJsonOrId,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller is not an owner (`role_required`)", body = ErrorBody),
        NoSuchOrganization,
        (status = 409, description = "A personal organization (`personal_organization`), or the slug is taken (`slug_taken`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid name or slug", body = ErrorBody),
    )
)]
async fn update_organization(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
    Json(input): Json<OrganizationInput>,
) -> Result<axum::Json<OrganizationView>, ApiError> {
    let (name, slug) = validate(&input, false)?;
    let row = recorded(&state.pool, async |tx| {
        team_organization(&mut *tx, caller.user.id, id, Role::Owner).await?;
        db::update(&mut *tx, id, name.as_deref(), slug.as_deref())
            .await
            .on_constraint(SLUG_UNIQUE, slug_taken)?;
        let row = organization(tx, caller.user.id, id).await?;
        let activity = seen
            .activity(Action::OrganizationUpdate)
            .by(caller.user.id)
            .in_org(id)
            .changed([(name.is_some(), "name"), (slug.is_some(), "slug")]);
        Ok((row, activity))
    })
    .await?;
    Ok(axum::Json(row.into()))
}

/// Delete a team organization and everything in it: its servers (their endpoints are
/// released), sources, keys and every member's connections (owners).
#[utoipa::path(
    delete, path = "/organizations/{id}", tag = "organizations",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 204, description = "Deleted"),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "Cookie request from a foreign origin, or the caller is not an owner (`role_required`)", body = ErrorBody),
        NoSuchOrganization,
        (status = 409, description = "A personal organization, deleted only with its account (`personal_organization`)", body = ErrorBody),
    )
)]
async fn delete_organization(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        team_organization(&mut *tx, caller.user.id, id, Role::Owner).await?;
        db::delete(&mut *tx, id).await?;
        let activity = seen
            .activity(Action::OrganizationDelete)
            .by(caller.user.id)
            .in_org(id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, organization_id = %id, "organization deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's membership of team organization `id`: 404 if they are not in it, 403 if their
/// role is below `needed`, 409 if it is a personal one.
pub async fn team_organization(
    db: impl PgExecutor<'_>,
    caller: Uuid,
    id: Uuid,
    needed: Role,
) -> Result<Membership, ApiError> {
    let membership = access::of_organization(db, caller, id).await?;
    membership.require(needed)?;
    if membership.personal {
        return Err(personal_organization());
    }
    Ok(membership)
}

/// Organization `id` as `user_id` sees it; 404 if they are not in it.
async fn organization(
    tx: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<OrganizationRow, ApiError> {
    db::get(tx, user_id, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

/// 409: personal organizations have no slug, cannot be renamed, left or deleted.
pub fn personal_organization() -> ApiError {
    ApiError::conflict(
        "personal_organization",
        "This is a personal organization: it belongs to one account and cannot be changed, \
         shared, left or deleted. Create a team organization to work with others.",
    )
}

fn slug_taken() -> ApiError {
    ApiError::conflict(
        "slug_taken",
        "Another organization has this slug; choose another.",
    )
}

/// Checks the input: `(trimmed name, slug)`.
fn validate(
    input: &OrganizationInput,
    creating: bool,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let mut fields = Vec::new();
    let name = display_name(input.name.as_deref(), 100, creating)
        .map_err(|problem| fields.push(FieldError::new("name", problem)))
        .unwrap_or_default();
    match input.slug.as_deref() {
        None if creating => fields.push(FieldError::new("slug", "is required")),
        Some(s) if !valid_slug(s) => fields.push(FieldError::new(
            "slug",
            "must be 1 to 48 lower-case letters, digits and hyphens, starting and ending with a letter or digit",
        )),
        _ => {}
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    Ok((name, input.slug.clone()))
}

/// The schema's rule for slugs: `^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$`.
fn valid_slug(slug: &str) -> bool {
    let bytes = slug.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    !bytes.is_empty()
        && bytes.len() <= 48
        && bytes.iter().all(allowed)
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

#[cfg(test)]
mod tests {
    use super::valid_slug;

    #[test]
    fn slugs_follow_the_schema() {
        for good in ["a", "contoso", "team-7", &"a".repeat(48)] {
            assert!(valid_slug(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a b", "é", &"a".repeat(49)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
