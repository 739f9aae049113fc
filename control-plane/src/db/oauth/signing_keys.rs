//! The keys access tokens are signed with: the active one and retired ones that still
//! verify.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// A signing key as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
    pub private_key_key_id: String,
    pub retired_at: Option<DateTime<Utc>>,
}

/// The key that signs now.
pub async fn active_signing_key(
    db: impl PgExecutor<'_>,
) -> Result<Option<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select kid, public_key, private_key, private_key_key_id, retired_at \
         from oauth_signing_keys where retired_at is null",
    )
    .fetch_optional(db)
    .await
}

/// Every key that still verifies (the active one and retired ones not yet purged).
pub async fn signing_keys(db: impl PgExecutor<'_>) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select kid, public_key, private_key, private_key_key_id, retired_at \
         from oauth_signing_keys order by created_at",
    )
    .fetch_all(db)
    .await
}

/// Stores a new active key; `false` if another process stored one first.
pub async fn insert_signing_key(
    db: impl PgExecutor<'_>,
    kid: &str,
    public_key: &[u8],
    private_key: &[u8],
    private_key_key_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into oauth_signing_keys (kid, public_key, private_key, private_key_key_id) \
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(kid)
    .bind(public_key)
    .bind(private_key)
    .bind(private_key_key_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Retires the active key (it keeps verifying until purged).
pub async fn retire_signing_key(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("update oauth_signing_keys set retired_at = now() where retired_at is null")
        .execute(db)
        .await?;
    Ok(())
}

/// Re-seals a key's private half (secrets key rotation).
pub async fn reseal_signing_key(
    db: impl PgExecutor<'_>,
    kid: &str,
    private_key: &[u8],
    private_key_key_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update oauth_signing_keys set private_key = $2, private_key_key_id = $3 where kid = $1",
    )
    .bind(kid)
    .bind(private_key)
    .bind(private_key_key_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes keys retired more than `after_secs` ago (every token they signed has expired).
pub async fn purge_retired_signing_keys(
    db: impl PgExecutor<'_>,
    after_secs: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from oauth_signing_keys \
         where retired_at < now() - make_interval(secs => $1::double precision)",
    )
    .bind(after_secs as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
