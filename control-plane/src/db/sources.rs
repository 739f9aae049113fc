//! The `sources` table.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A source row; `secrets` is ciphertext.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SourceRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[sqlx(rename = "type")]
    pub source_type: String,
    pub source_metadata: Value,
    pub secrets: Option<Vec<u8>>,
    pub secrets_key_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What is written for a source.
pub struct SourceWrite<'a> {
    pub source_type: &'a str,
    pub metadata: &'a Value,
    pub secrets: &'a [u8],
    pub secrets_key_id: &'a str,
}

/// Rows of organizations where `$1` (a user) is an owner or admin, and of `$2` if it is not null.
macro_rules! managed_by {
    () => {
        "organization_id in (select organization_id from organization_members \
         where user_id = $1 and role in ('owner', 'admin')) \
         and ($2::uuid is null or organization_id = $2)"
    };
}

macro_rules! source_columns {
    () => {
        "id, organization_id, type, source_metadata, secrets, secrets_key_id, created_at, updated_at"
    };
}

/// Inserts a source with a caller-chosen id (the id is sealed into the ciphertext).
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    organization_id: Uuid,
    write: &SourceWrite<'_>,
) -> Result<SourceRow, sqlx::Error> {
    sqlx::query_as(concat!(
        "insert into sources (id, organization_id, type, source_metadata, secrets, secrets_key_id) \
         values ($1, $2, $3, $4, $5, $6) returning ",
        source_columns!()
    ))
    .bind(id)
    .bind(organization_id)
    .bind(write.source_type)
    .bind(write.metadata)
    .bind(write.secrets)
    .bind(write.secrets_key_id)
    .fetch_one(db)
    .await
}

/// One of the organization's sources.
pub async fn get(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<SourceRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        source_columns!(),
        " from sources where id = $1 and organization_id = $2"
    ))
    .bind(id)
    .bind(organization_id)
    .fetch_optional(db)
    .await
}

/// One of the organization's sources, locked until the transaction ends (read-modify-write).
pub async fn get_for_update(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<SourceRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        source_columns!(),
        " from sources where id = $1 and organization_id = $2 for update"
    ))
    .bind(id)
    .bind(organization_id)
    .fetch_optional(db)
    .await
}

/// A page of the sources the caller manages (in organizations where they are an owner or
/// admin), optionally of one organization, newest first, and their total.
pub async fn page(
    db: &PgPool,
    user_id: Uuid,
    organization_id: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<SourceRow>, i64), sqlx::Error> {
    let total = sqlx::query_scalar(concat!(
        "select count(*) from sources where ",
        managed_by!()
    ))
    .bind(user_id)
    .bind(organization_id)
    .fetch_one(db)
    .await?;
    let rows = sqlx::query_as(concat!(
        "select ",
        source_columns!(),
        " from sources where ",
        managed_by!(),
        " order by created_at desc, id limit $3 offset $4"
    ))
    .bind(user_id)
    .bind(organization_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// Replaces a source's type, metadata and secrets.
pub async fn update(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
    write: &SourceWrite<'_>,
) -> Result<Option<SourceRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "update sources set type = $3, source_metadata = $4, secrets = $5, secrets_key_id = $6 \
         where id = $1 and organization_id = $2 returning ",
        source_columns!()
    ))
    .bind(id)
    .bind(organization_id)
    .bind(write.source_type)
    .bind(write.metadata)
    .bind(write.secrets)
    .bind(write.secrets_key_id)
    .fetch_optional(db)
    .await
}

/// Deletes a source; its server links go with it.
pub async fn delete(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from sources where id = $1 and organization_id = $2")
        .bind(id)
        .bind(organization_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Sources whose secrets are sealed under a key other than `key_id` (for rotation).
pub async fn sealed_under_other_keys(
    db: impl PgExecutor<'_>,
    key_id: &str,
    limit: i64,
) -> Result<Vec<(Uuid, Vec<u8>, String)>, sqlx::Error> {
    sqlx::query_as(
        "select id, secrets, secrets_key_id from sources \
         where secrets is not null and secrets_key_id <> $1 order by id limit $2 for update",
    )
    .bind(key_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Stores re-sealed secrets `(source id, sealed secrets, key id)` in one statement, so the
/// change is announced to gateways once per hundred servers rather than once per source.
pub async fn reseal_many(
    db: impl PgExecutor<'_>,
    resealed: &[(Uuid, Vec<u8>, String)],
) -> Result<(), sqlx::Error> {
    let ids: Vec<Uuid> = resealed.iter().map(|r| r.0).collect();
    let secrets: Vec<&[u8]> = resealed.iter().map(|r| r.1.as_slice()).collect();
    let key_ids: Vec<&str> = resealed.iter().map(|r| r.2.as_str()).collect();
    sqlx::query(
        "update sources s set secrets = r.secrets, secrets_key_id = r.key_id \
         from unnest($1::uuid[], $2::bytea[], $3::text[]) as r(id, secrets, key_id) \
         where s.id = r.id",
    )
    .bind(ids)
    .bind(secrets)
    .bind(key_ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Locks the organization's row (serialising its source creations) and counts its sources.
pub async fn lock_and_count(
    db: &mut sqlx::PgConnection,
    organization_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query("select 1 from organizations where id = $1 for update")
        .bind(organization_id)
        .execute(&mut *db)
        .await?;
    sqlx::query_scalar("select count(*) from sources where organization_id = $1")
        .bind(organization_id)
        .fetch_one(&mut *db)
        .await
}
