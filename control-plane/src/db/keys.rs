//! The `mcp_server_keys` table (and the gateways' `mcp_server_key_usage`). Every query names
//! the organization: another organization's keys behave as if they did not exist.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A key as listed (never the key itself: only its hash is stored).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    /// Who made it (none once their account is gone).
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

macro_rules! key_select {
    () => {
        "select k.id, k.name, k.prefix, k.created_by, k.created_at, k.expires_at, k.revoked_at, u.last_used_at \
         from mcp_server_keys k left join mcp_server_key_usage u on u.key_id = k.id "
    };
}

/// Days after revocation or expiry that a key is deleted.
pub const FORGET_AFTER_DAYS: i32 = 30;

/// Every key row of a server, revoked and expired ones included.
pub async fn count_all(db: impl PgExecutor<'_>, server_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from mcp_server_keys where server_id = $1")
        .bind(server_id)
        .fetch_one(db)
        .await
}

/// Deletes keys revoked or expired more than [`FORGET_AFTER_DAYS`] ago.
pub async fn purge_stopped(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from mcp_server_keys where least(revoked_at, expires_at) < now() - make_interval(days => $1)",
    )
    .bind(FORGET_AFTER_DAYS)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Keys of a server that are neither revoked nor expired.
pub async fn count_active(db: impl PgExecutor<'_>, server_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from mcp_server_keys where server_id = $1 and revoked_at is null \
         and (expires_at is null or expires_at > now())",
    )
    .bind(server_id)
    .fetch_one(db)
    .await
}

/// Stores a new key's hash; returns the row.
// One argument per column of the row written, like the other inserts of this module.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    created_by: Uuid,
    server_id: Uuid,
    name: &str,
    prefix: &str,
    hash: &[u8],
    expires_at: Option<DateTime<Utc>>,
) -> Result<KeyRow, sqlx::Error> {
    sqlx::query_as(
        "insert into mcp_server_keys \
         (organization_id, server_id, name, prefix, key_hash, expires_at, created_by) \
         values ($1, $2, $3, $4, $5, $6, $7) \
         returning id, name, prefix, created_by, created_at, expires_at, revoked_at, null::timestamptz as last_used_at",
    )
    .bind(organization_id)
    .bind(server_id)
    .bind(name)
    .bind(prefix)
    .bind(hash)
    .bind(expires_at)
    .bind(created_by)
    .fetch_one(db)
    .await
}

/// Every key of one of the organization's servers, oldest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    server_id: Uuid,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        key_select!(),
        "where k.server_id = $1 and k.organization_id = $2 order by k.created_at, k.id"
    ))
    .bind(server_id)
    .bind(organization_id)
    .fetch_all(db)
    .await
}

/// Revokes a key (no change if it already is); `false` if the organization's server has no
/// such key.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    server_id: Uuid,
    key_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let found: Option<Uuid> = sqlx::query_scalar(
        "update mcp_server_keys set revoked_at = coalesce(revoked_at, now()) \
         where id = $1 and server_id = $2 and organization_id = $3 returning id",
    )
    .bind(key_id)
    .bind(server_id)
    .bind(organization_id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}
