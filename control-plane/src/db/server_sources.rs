//! The `mcp_server_sources` table: which of its organization's sources a server serves.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A link's foreign key to its source (violated when the source is deleted meanwhile).
pub const SOURCE_LINK_FKEY: &str = "mcp_server_sources_source_fkey";

/// Whether every id names one of the organization's sources.
pub async fn owns_sources(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    source_ids: &[Uuid],
) -> Result<bool, sqlx::Error> {
    let owned: i64 = sqlx::query_scalar(
        "select count(*) from sources where organization_id = $1 and id = any($2)",
    )
    .bind(organization_id)
    .bind(source_ids)
    .fetch_one(db)
    .await?;
    Ok(usize::try_from(owned).unwrap_or(0) == source_ids.len())
}

/// Makes a server's sources exactly `source_ids`. Returns `false` (and changes nothing the
/// caller's transaction keeps) if any id is not one of the organization's sources.
pub async fn set_sources(
    db: &mut PgConnection,
    organization_id: Uuid,
    server_id: Uuid,
    source_ids: &[Uuid],
) -> Result<bool, sqlx::Error> {
    if !owns_sources(&mut *db, organization_id, source_ids).await? {
        return Ok(false);
    }
    sqlx::query("delete from mcp_server_sources where server_id = $1 and organization_id = $2 and not (source_id = any($3))")
        .bind(server_id)
        .bind(organization_id)
        .bind(source_ids)
        .execute(&mut *db)
        .await?;
    sqlx::query(
        "insert into mcp_server_sources (server_id, source_id, organization_id) \
         select $1, id, organization_id from sources where organization_id = $2 and id = any($3) \
         on conflict do nothing",
    )
    .bind(server_id)
    .bind(organization_id)
    .bind(source_ids)
    .execute(&mut *db)
    .await?;
    Ok(true)
}

/// Links one of the organization's sources to a live server; `false` if the source is not theirs.
pub async fn attach(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    server_id: Uuid,
    source_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "with link as (insert into mcp_server_sources (server_id, source_id, organization_id) \
         select $1, id, organization_id from sources where id = $2 and organization_id = $3 \
         on conflict do nothing returning 1) \
         select true from sources where id = $2 and organization_id = $3",
    )
    .bind(server_id)
    .bind(source_id)
    .bind(organization_id)
    .fetch_optional(db)
    .await?;
    Ok(found.is_some())
}

/// How many sources a server has.
pub async fn source_count(db: impl PgExecutor<'_>, server_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from mcp_server_sources where server_id = $1")
        .bind(server_id)
        .fetch_one(db)
        .await
}

/// Unlinks a source; `false` if it was not linked.
pub async fn detach(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    server_id: Uuid,
    source_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "delete from mcp_server_sources where server_id = $1 and source_id = $2 and organization_id = $3",
    )
    .bind(server_id)
    .bind(source_id)
    .bind(organization_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Names of the organization's servers that use a source, live ones first (the console's warning
/// before a source is deleted).
pub async fn using_source(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    source_id: Uuid,
) -> Result<Vec<(String, bool)>, sqlx::Error> {
    sqlx::query_as(
        "select s.name, s.deleted_at is not null from mcp_servers s \
         join mcp_server_sources l on l.server_id = s.id and l.organization_id = s.organization_id \
         where l.source_id = $1 and s.organization_id = $2 \
         order by s.deleted_at is not null, s.name",
    )
    .bind(source_id)
    .bind(organization_id)
    .fetch_all(db)
    .await
}
