//! `/mcp-servers/{id}/keys`: the access keys agents present to a server's endpoint. A key is
//! shown once, when created; only its hash is stored. Owners and admins of the server's
//! organization only (members 403); another organization's server is a 404 here as everywhere.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::{
    ForeignOriginOrMember, MalformedId, MalformedJsonOrId, NotJson, NotSignedIn,
};
use crate::{
    activity::{Action, Activity, Seen},
    db::{
        keys::{self, KeyRow, KeyWrite},
        servers,
    },
    error::{ApiError, ErrorBody, FieldError},
    extract::{Json, Path},
    orgs::{Role, access},
    routes::write::recorded,
    session::AuthUser,
    state::AppState,
};

/// Active keys one server may have.
const MAX_KEYS: i64 = 20;
/// Keys one server may hold, revoked and expired ones included (they are deleted
/// [`keys::FORGET_AFTER_DAYS`] days after they stopped working).
const MAX_KEYS_KEPT: i64 = 200;
/// Furthest expiry accepted.
const MAX_LIFETIME_DAYS: i64 = 5 * 366;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// A key to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// What the key is for: 1 to 100 characters after trimming, not only white space, no
    /// control characters.
    #[schema(
        required = true,
        nullable = false,
        example = "ChatGPT connector",
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    name: Option<String>,
    /// When the key stops working (RFC 3339); none: until revoked. Must lie in the future and
    /// at most five years (1,830 days) ahead, or the answer is 422: a JSON schema cannot say
    /// "after now", so this rule is stated here only.
    expires_at: Option<DateTime<Utc>>,
}

/// Whether a key works now.
#[derive(Serialize, ToSchema, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Expired,
    Revoked,
}

/// A key as listed.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    #[schema(example = "mcpk_Xq3v9Z")]
    pub prefix: String,
    pub status: KeyStatus,
    /// The account that made it (none once that account is gone).
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Recorded by the gateways within about a minute of use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for KeyView {
    fn from(row: KeyRow) -> Self {
        let status = if row.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if row.expires_at.is_some_and(|at| at <= Utc::now()) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        };
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            status,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// A new key: the only time the key itself is shown.
#[derive(Serialize, ToSchema)]
pub struct NewKeyView {
    /// Give this to the agent as `Authorization: Bearer <key>`. It cannot be shown again.
    #[schema(example = "mcpk_Xq3v9Z…")]
    pub key: String,
    #[serde(flatten)]
    pub view: KeyView,
}

/// A server's keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

/// The keys of a server the caller manages (owner or admin), oldest first (revoked and expired ones included).
#[utoipa::path(
    get, path = "/mcp-servers/{id}/keys", tag = "keys",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    responses(
        (status = 200, description = "The keys (never the keys themselves)", body = KeyList),
        MalformedId,
        NotSignedIn,
        (status = 403, description = "The caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such live server the caller can see", body = ErrorBody),
    )
)]
async fn list_keys(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<KeyList>, ApiError> {
    let server = access::of_server(&state.pool, caller.user.id, id, false).await?;
    server.require(Role::Admin)?;
    let rows = keys::list(&state.pool, server.organization_id(), id).await?;
    Ok(axum::Json(KeyList {
        items: rows.into_iter().map(Into::into).collect(),
    }))
}

/// Create an access key for a server. The answer holds the key; it is never shown again.
#[utoipa::path(
    post, path = "/mcp-servers/{id}/keys", tag = "keys",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id")),
    request_body = KeyInput,
    responses(
        (status = 201, description = "Created; `key` is shown only now", body = NewKeyView),
        MalformedJsonOrId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such live server the caller can see", body = ErrorBody),
        (status = 409, description = "The server has the most active keys allowed (`key_limit_reached`)", body = ErrorBody),
        NotJson,
        (status = 422, description = "Invalid name or expiry", body = ErrorBody),
    )
)]
async fn create_key(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path(id): Path<Uuid>,
    Json(input): Json<KeyInput>,
) -> Result<(StatusCode, axum::Json<NewKeyView>), ApiError> {
    let activity = seen
        .activity(Action::KeyCreate)
        .by(caller.user.id)
        .server(id);
    let result = create(&state, &caller, id, input, activity.clone()).await;
    activity.record_refusal(&state.pool, &result).await;
    result
}

async fn create(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    input: KeyInput,
    activity: Activity,
) -> Result<(StatusCode, axum::Json<NewKeyView>), ApiError> {
    let name = validate(&input)?;
    let user_id = caller.user.id;
    let (new, row) = recorded(&state.pool, async |tx| {
        let server = access::of_server(&mut *tx, user_id, id, false).await?;
        server.require(Role::Admin)?;
        let org = server.organization_id();
        // The lock serialises key creation per server, so the limit holds under concurrency.
        if !servers::lock_live(tx, org, id).await? {
            return Err(ApiError::not_found());
        }
        if keys::count_active(&mut *tx, id).await? >= MAX_KEYS {
            return Err(ApiError::conflict(
                "key_limit_reached",
                format!("A server may have at most {MAX_KEYS} active keys; revoke one first."),
            ));
        }
        if keys::count_all(&mut *tx, id).await? >= MAX_KEYS_KEPT {
            return Err(ApiError::conflict(
                "key_limit_reached",
                format!(
                    "A server keeps at most {MAX_KEYS_KEPT} keys, revoked and expired ones included; they are deleted {} days after they stop working.",
                    keys::FORGET_AFTER_DAYS
                ),
            ));
        }
        let new = shared::access_key::generate();
        let write = KeyWrite {
            name: &name,
            prefix: &new.shown_prefix,
            hash: &new.hash,
            expires_at: input.expires_at,
        };
        let row = keys::insert(&mut *tx, org, user_id, id, &write).await?;
        let activity = activity.in_org(org).key(row.id);
        Ok(((new, row), activity))
    })
    .await?;
    tracing::info!(%user_id, server_id = %id, key_id = %row.id, "access key created");
    Ok((
        StatusCode::CREATED,
        axum::Json(NewKeyView {
            key: new.key,
            view: row.into(),
        }),
    ))
}

/// Revoke a key: gateways refuse it within a second. Revoking a revoked key changes nothing.
#[utoipa::path(
    delete, path = "/mcp-servers/{id}/keys/{key_id}", tag = "keys",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), ("key_id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        MalformedId,
        NotSignedIn,
        ForeignOriginOrMember,
        (status = 404, description = "No such key on a server the caller can see", body = ErrorBody),
    )
)]
async fn revoke_key(
    State(state): State<AppState>,
    caller: AuthUser,
    seen: Seen,
    Path((id, key_id)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    recorded(&state.pool, async |tx| {
        let server = access::of_server(&mut *tx, caller.user.id, id, false).await?;
        server.require(Role::Admin)?;
        let org = server.organization_id();
        if !keys::revoke(&mut *tx, org, id, key_id).await? {
            return Err(ApiError::not_found());
        }
        let activity = seen
            .activity(Action::KeyRevoke)
            .by(caller.user.id)
            .in_org(org)
            .server(id)
            .key(key_id);
        Ok(((), activity))
    })
    .await?;
    tracing::info!(user_id = %caller.user.id, server_id = %id, %key_id, "access key revoked");
    Ok(StatusCode::NO_CONTENT)
}

fn validate(input: &KeyInput) -> Result<String, ApiError> {
    let mut fields = Vec::new();
    let name = input.name.as_deref().map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > 100 {
        fields.push(FieldError::new("name", "must be 1 to 100 characters"));
    } else if name.chars().any(char::is_control) {
        fields.push(FieldError::new(
            "name",
            "must not contain control characters",
        ));
    }
    if let Some(at) = input.expires_at {
        let now = Utc::now();
        if at <= now {
            fields.push(FieldError::new("expires_at", "must be in the future"));
        } else if at > now + Duration::days(MAX_LIFETIME_DAYS) {
            fields.push(FieldError::new("expires_at", "must be within five years"));
        }
    }
    if fields.is_empty() {
        Ok(name.to_owned())
    } else {
        Err(ApiError::validation(fields))
    }
}
