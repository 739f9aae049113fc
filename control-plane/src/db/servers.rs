//! The `mcp_servers` table and who may connect to a server (`mcp_server_members`); which
//! sources a server serves is [`super::server_sources`].

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

/// The partial unique index: one live server per endpoint host.
pub const LIVE_ENDPOINT_UNIQUE: &str = "mcp_servers_live_endpoint_key";

/// A server and the ids of its sources (in the order they were added).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServerRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// `all` or `listed`.
    pub member_access: String,
    /// The members named on it (who may connect when `member_access` is `listed`).
    pub listed_members: Vec<Uuid>,
    pub endpoint: String,
    pub endpoint_host: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub public: bool,
    pub source_ids: Vec<Uuid>,
}

macro_rules! server_select {
    () => {
        "select s.id, s.organization_id, s.name, s.member_access, \
         array(select x.user_id from mcp_server_members x where x.server_id = s.id \
               order by x.created_at, x.user_id) as listed_members, \
         s.endpoint, s.endpoint_host, s.created_at, s.updated_at, \
         s.deleted_at, s.public, coalesce(array_agg(l.source_id order by l.created_at, l.source_id) \
         filter (where l.source_id is not null), '{}') as source_ids \
         from mcp_servers s left join mcp_server_sources l on l.server_id = s.id "
    };
}

/// One of the organization's servers; soft-deleted ones only when asked for.
pub async fn get(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
    include_deleted: bool,
) -> Result<Option<ServerRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        server_select!(),
        "where s.id = $1 and s.organization_id = $2 and ($3 or s.deleted_at is null) group by s.id"
    ))
    .bind(id)
    .bind(organization_id)
    .bind(include_deleted)
    .fetch_optional(db)
    .await
}

/// Servers `$1` (a user) can see, of organization `$2` if it is not null: every server of
/// organizations where they are an owner or admin, and the live servers they may connect to
/// in those where they are a member.
macro_rules! visible_to {
    () => {
        "exists (select 1 from organization_members m \
                 where m.organization_id = s.organization_id and m.user_id = $1 \
                   and (m.role in ('owner', 'admin') \
                        or (s.deleted_at is null and (s.member_access = 'all' \
                            or exists (select 1 from mcp_server_members x \
                                       where x.server_id = s.id and x.user_id = $1))))) \
         and ($2::uuid is null or s.organization_id = $2) "
    };
}

/// A page of the servers the caller can see, newest first, and their total.
pub async fn page(
    db: &PgPool,
    user_id: Uuid,
    organization_id: Option<Uuid>,
    include_deleted: bool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ServerRow>, i64), sqlx::Error> {
    let total = sqlx::query_scalar(concat!(
        "select count(*) from mcp_servers s where ",
        visible_to!(),
        "and ($3 or s.deleted_at is null)"
    ))
    .bind(user_id)
    .bind(organization_id)
    .bind(include_deleted)
    .fetch_one(db)
    .await?;
    let rows = sqlx::query_as(concat!(
        server_select!(),
        "where ",
        visible_to!(),
        "and ($3 or s.deleted_at is null) group by s.id \
         order by s.created_at desc, s.id limit $4 offset $5"
    ))
    .bind(user_id)
    .bind(organization_id)
    .bind(include_deleted)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// Whether a live server holds the endpoint host (of any user).
pub async fn live_on_host(db: impl PgExecutor<'_>, host: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from mcp_servers where endpoint_host = $1 and deleted_at is null)",
    )
    .bind(host)
    .fetch_one(db)
    .await
}

/// Inserts a live server on an endpoint; returns its id.
pub async fn insert(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    name: &str,
    endpoint: &str,
    endpoint_host: &str,
    public: bool,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "insert into mcp_servers (organization_id, name, endpoint, endpoint_host, public) \
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(organization_id)
    .bind(name)
    .bind(endpoint)
    .bind(endpoint_host)
    .bind(public)
    .fetch_one(db)
    .await
}

/// Locks a live server of the organization for the rest of the transaction; `false` if there is none.
pub async fn lock_live(
    db: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, Uuid>(
        "select id from mcp_servers where id = $1 and organization_id = $2 and deleted_at is null for update",
    )
    .bind(id)
    .bind(organization_id)
    .fetch_optional(db)
    .await?
    .is_some())
}

/// Renames a live server.
pub async fn rename(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update mcp_servers set name = $3 where id = $1 and organization_id = $2 and deleted_at is null",
    )
    .bind(id)
    .bind(organization_id)
    .bind(name)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a live server of the organization public (answering agents without a key) or not.
pub async fn set_public(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
    public: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update mcp_servers set public = $3 \
         where id = $1 and organization_id = $2 and deleted_at is null and public <> $3",
    )
    .bind(id)
    .bind(organization_id)
    .bind(public)
    .execute(db)
    .await?;
    Ok(())
}

/// Soft-deletes a live server (its endpoint is free at once).
pub async fn soft_delete(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update mcp_servers set deleted_at = now() where id = $1 and organization_id = $2 and deleted_at is null",
    )
    .bind(id)
    .bind(organization_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Brings a soft-deleted server back on a newly allocated endpoint.
pub async fn restore(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
    endpoint: &str,
    endpoint_host: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update mcp_servers set deleted_at = null, endpoint = $3, endpoint_host = $4 \
         where id = $1 and organization_id = $2 and deleted_at is not null",
    )
    .bind(id)
    .bind(organization_id)
    .bind(endpoint)
    .bind(endpoint_host)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The endpoint host a soft-deleted server of the organization had, if any.
pub async fn deleted_endpoint_host(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<Option<String>>, sqlx::Error> {
    let row: Option<(Option<DateTime<Utc>>, String)> = sqlx::query_as(
        "select deleted_at, endpoint_host from mcp_servers where id = $1 and organization_id = $2",
    )
    .bind(id)
    .bind(organization_id)
    .fetch_optional(db)
    .await?;
    // None: no such server; Some(None): it is live; Some(Some(host)): soft-deleted.
    Ok(row.map(|(deleted_at, host)| deleted_at.map(|_| host)))
}

/// Deletes a server for good (administrators). Returns its organization and, for a personal
/// one, its account; none if there is no such server.
pub async fn hard_delete(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<(Uuid, Option<Uuid>)>, sqlx::Error> {
    sqlx::query_as(
        "delete from mcp_servers s where s.id = $1 returning s.organization_id, \
         (select personal_user_id from organizations o where o.id = s.organization_id)",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Every live server's id and endpoint (pool status).
pub async fn live_endpoints(
    db: impl PgExecutor<'_>,
) -> Result<Vec<(Uuid, String, String)>, sqlx::Error> {
    sqlx::query_as("select id, endpoint, endpoint_host from mcp_servers where deleted_at is null order by endpoint_host")
        .fetch_all(db)
        .await
}

/// Sets who may connect to a live server: `all` members or the `listed` ones, and the list.
/// Returns `false` (changing nothing the transaction keeps) if a listed id is not a member of
/// the server's organization.
pub async fn set_member_access(
    db: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
    member_access: Option<&str>,
    listed: Option<&[Uuid]>,
) -> Result<bool, sqlx::Error> {
    if let Some(listed) = listed {
        let members: i64 = sqlx::query_scalar(
            "select count(*) from organization_members where organization_id = $1 and user_id = any($2)",
        )
        .bind(organization_id)
        .bind(listed)
        .fetch_one(&mut *db)
        .await?;
        let distinct: std::collections::HashSet<&Uuid> = listed.iter().collect();
        if usize::try_from(members).unwrap_or(0) != distinct.len() {
            return Ok(false);
        }
        // Listing first, then the access rule: a server turned `listed` ends the grants of
        // the members not on the list, and only theirs.
        sqlx::query(
            "delete from mcp_server_members where server_id = $1 and not (user_id = any($2))",
        )
        .bind(id)
        .bind(listed)
        .execute(&mut *db)
        .await?;
        sqlx::query(
            "insert into mcp_server_members (server_id, organization_id, user_id) \
             select $1, $2, u from unnest($3::uuid[]) as u on conflict do nothing",
        )
        .bind(id)
        .bind(organization_id)
        .bind(listed)
        .execute(&mut *db)
        .await?;
    }
    if let Some(access) = member_access {
        sqlx::query(
            "update mcp_servers set member_access = $3 \
             where id = $1 and organization_id = $2 and member_access <> $3",
        )
        .bind(id)
        .bind(organization_id)
        .bind(access)
        .execute(&mut *db)
        .await?;
    }
    Ok(true)
}
