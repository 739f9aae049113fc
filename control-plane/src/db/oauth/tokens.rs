//! Authorization codes and refresh tokens, stored as SHA-256 hashes only, each under a grant.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Stores a new authorization code's hash.
pub async fn insert_code(
    db: impl PgExecutor<'_>,
    code_hash: &[u8],
    grant_id: Uuid,
    redirect_uri: &str,
    code_challenge: &str,
    resource: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oauth_codes (code_hash, grant_id, redirect_uri, code_challenge, resource, expires_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(code_hash)
    .bind(grant_id)
    .bind(redirect_uri)
    .bind(code_challenge)
    .bind(resource)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A stored code or refresh token with the grant it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Redeemable {
    pub grant_id: Uuid,
    pub user_id: Uuid,
    pub server_id: Uuid,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// Codes only.
    pub redirect_uri: Option<String>,
    /// Codes only.
    pub code_challenge: Option<String>,
}

/// The code with this hash, locked for redemption.
pub async fn code_for_update(
    db: &mut PgConnection,
    code_hash: &[u8],
) -> Result<Option<Redeemable>, sqlx::Error> {
    sqlx::query_as(
        "select c.grant_id, g.user_id, g.server_id, g.client_id, g.scope, c.resource, c.expires_at, \
                c.used_at, c.redirect_uri, c.code_challenge \
         from oauth_codes c join oauth_grants g on g.id = c.grant_id \
         where c.code_hash = $1 for update of c",
    )
    .bind(code_hash)
    .fetch_optional(db)
    .await
}

/// Marks a code used (it can never be redeemed again).
pub async fn use_code(db: impl PgExecutor<'_>, code_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("update oauth_codes set used_at = now() where code_hash = $1")
        .bind(code_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Counts a wrong redemption of a code (locked by [`code_for_update`] in the same
/// transaction); the code is deleted at the `limit`-th, so guessing its verifier stops there.
/// Deleted, not marked used: no tokens came from it, so a later presentation is an unknown
/// code, not a replay that would end the grant. Returns whether the code was deleted.
pub async fn fail_code(
    db: &mut PgConnection,
    code_hash: &[u8],
    limit: i32,
) -> Result<bool, sqlx::Error> {
    let failed: Option<i32> = sqlx::query_scalar(
        "update oauth_codes set failed_attempts = failed_attempts + 1 where code_hash = $1 \
         returning failed_attempts",
    )
    .bind(code_hash)
    .fetch_optional(&mut *db)
    .await?;
    if failed.is_none_or(|n| n < limit) {
        return Ok(false);
    }
    sqlx::query("delete from oauth_codes where code_hash = $1")
        .bind(code_hash)
        .execute(db)
        .await?;
    Ok(true)
}

/// The refresh token with this hash, locked for rotation.
pub async fn refresh_for_update(
    db: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<Redeemable>, sqlx::Error> {
    sqlx::query_as(
        "select r.grant_id, g.user_id, g.server_id, g.client_id, g.scope, r.resource, r.expires_at, \
                r.used_at, null::text as redirect_uri, null::text as code_challenge \
         from oauth_refresh_tokens r join oauth_grants g on g.id = r.grant_id \
         where r.token_hash = $1 for update of r",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Marks a refresh token used: presenting it again ends its grant.
pub async fn use_refresh(db: impl PgExecutor<'_>, token_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("update oauth_refresh_tokens set used_at = now() where token_hash = $1")
        .bind(token_hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Stores a new refresh token's hash and notes the use of its grant and client.
pub async fn insert_refresh(
    db: &mut PgConnection,
    token_hash: &[u8],
    grant_id: Uuid,
    resource: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oauth_refresh_tokens (token_hash, grant_id, resource, expires_at) \
         values ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(grant_id)
    .bind(resource)
    .bind(expires_at)
    .execute(&mut *db)
    .await?;
    // Tokens issued are a use of the grant and of its client (which keeps it from the idle
    // purge once its grants are gone).
    sqlx::query(
        "with used as (update oauth_grants set last_used_at = now() where id = $1 \
             returning client_id) \
         update oauth_clients set last_used_at = now() where client_id in (select client_id from used)",
    )
    .bind(grant_id)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// The grant a refresh token belongs to (for revocation), used or not.
pub async fn grant_of_refresh(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "select g.id, g.client_id from oauth_refresh_tokens r \
         join oauth_grants g on g.id = r.grant_id where r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Deletes expired codes and refresh tokens (kept until then to detect replays).
pub async fn purge_expired(db: &mut PgConnection) -> Result<u64, sqlx::Error> {
    let codes = sqlx::query("delete from oauth_codes where expires_at < now()")
        .execute(&mut *db)
        .await?;
    let refresh = sqlx::query("delete from oauth_refresh_tokens where expires_at < now()")
        .execute(&mut *db)
        .await?;
    Ok(codes.rows_affected() + refresh.rows_affected())
}
