//! OAuth grants: a person's approval of an agent on a server, and what an approval reads
//! (the servers a person may connect, their sources). Queries that a person reaches name the
//! owner: another user's grants behave as if they did not exist.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The id of the person's live grant for (server, client), created if there is none. The
/// person must be a member of the server's organization (the schema refuses otherwise).
pub async fn upsert_grant(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    organization_id: Uuid,
    server_id: Uuid,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "insert into oauth_grants (user_id, server_id, client_id, redirect_uri, scope, organization_id) \
         values ($1, $2, $3, $4, $5, $6) \
         on conflict (server_id, client_id, user_id) do update set redirect_uri = excluded.redirect_uri \
         returning id",
    )
    .bind(user_id)
    .bind(server_id)
    .bind(client_id)
    .bind(redirect_uri)
    .bind(scope)
    .bind(organization_id)
    .fetch_one(db)
    .await
}

/// A grant as the people who may see it see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: Uuid,
    pub server_id: Uuid,
    pub server_name: String,
    pub organization_id: Uuid,
    /// The person who approved it.
    pub user_id: Uuid,
    pub user_email: String,
    pub client_id: String,
    pub client_name: String,
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

macro_rules! grant_select {
    () => {
        "select g.id, g.server_id, s.name as server_name, g.organization_id, g.user_id, \
                u.email as user_email, g.client_id, c.client_name, g.redirect_uri, g.created_at, \
                g.last_used_at \
         from oauth_grants g join oauth_clients c on c.client_id = g.client_id \
         join mcp_servers s on s.id = g.server_id join users u on u.id = g.user_id "
    };
}

/// The grants of a server, newest first: everyone's, or one person's.
pub async fn grants_of_server(
    db: impl PgExecutor<'_>,
    server_id: Uuid,
    user_id: Option<Uuid>,
) -> Result<Vec<GrantRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        grant_select!(),
        "where g.server_id = $1 and ($2::uuid is null or g.user_id = $2) \
         order by g.created_at desc, g.id"
    ))
    .bind(server_id)
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// A person's grants on live servers of every organization, newest first ("My connections").
pub async fn grants_of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<GrantRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        grant_select!(),
        "where g.user_id = $1 and s.deleted_at is null order by g.created_at desc, g.id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Deletes a grant of a server (every token under it stops working), if it is `user_id`'s
/// when one is named; returns the person who had approved it, none if there is no such grant.
pub async fn delete_grant(
    db: impl PgExecutor<'_>,
    server_id: Uuid,
    grant_id: Uuid,
    user_id: Option<Uuid>,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "delete from oauth_grants where id = $1 and server_id = $2 \
         and ($3::uuid is null or user_id = $3) returning user_id",
    )
    .bind(grant_id)
    .bind(server_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Deletes a grant, if it belongs to `client_id` (revocation, or a replayed credential).
pub async fn end_grant(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    client_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "delete from oauth_grants where id = $1 and ($2::text is null or client_id = $2)",
    )
    .bind(grant_id)
    .bind(client_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a grant at its client's request if it belongs to `client_id`; returns its owner
/// and server.
pub async fn revoke_grant(
    db: impl PgExecutor<'_>,
    grant_id: Uuid,
    client_id: &str,
) -> Result<Option<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "delete from oauth_grants where id = $1 and client_id = $2 returning user_id, server_id",
    )
    .bind(grant_id)
    .bind(client_id)
    .fetch_optional(db)
    .await
}

/// A live server an authorization request may name as its `resource`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ResourceServer {
    pub id: Uuid,
    pub name: String,
    pub endpoint: String,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub personal: bool,
}

/// The live servers a person may connect an agent to (for matching a `resource`): every
/// server of organizations where they are an owner or admin, and where they are a member,
/// those open to all members or listing them.
pub async fn live_servers_of(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<ResourceServer>, sqlx::Error> {
    sqlx::query_as(
        "select s.id, s.name, s.endpoint, s.organization_id, o.name as organization_name, \
                o.personal_user_id is not null as personal \
         from mcp_servers s \
         join organization_members m on m.organization_id = s.organization_id and m.user_id = $1 \
         join organizations o on o.id = s.organization_id \
         where s.deleted_at is null \
           and (m.role in ('owner', 'admin') or s.member_access = 'all' \
                or exists (select 1 from mcp_server_members x \
                           where x.server_id = s.id and x.user_id = $1))",
    )
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// Inside an approval's transaction: whether `user_id` may still connect to `server_id`, read
/// after taking share locks on the organization and the server. Membership and role changes lock
/// the organization, listing changes lock the server (both for update), so either they finish
/// first and this read sees them, or they wait for the new grant and their triggers end it.
pub async fn still_connectable(
    db: &mut PgConnection,
    user_id: Uuid,
    organization_id: Uuid,
    server_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query("select 1 from organizations where id = $1 for share")
        .bind(organization_id)
        .execute(&mut *db)
        .await?;
    sqlx::query("select 1 from mcp_servers where id = $1 for share")
        .bind(server_id)
        .execute(&mut *db)
        .await?;
    // A new statement: a new snapshot, taken after the locks were granted.
    sqlx::query_scalar(
        "select exists (select 1 from mcp_servers s \
           join organization_members m on m.organization_id = s.organization_id and m.user_id = $1 \
           where s.id = $2 and s.deleted_at is null \
             and (m.role in ('owner', 'admin') or s.member_access = 'all' \
                  or exists (select 1 from mcp_server_members x \
                             where x.server_id = s.id and x.user_id = $1)))",
    )
    .bind(user_id)
    .bind(server_id)
    .fetch_one(&mut *db)
    .await
}

/// The sources of a server, as `(type, label)` for the consent page.
pub async fn source_labels(
    db: impl PgExecutor<'_>,
    server_id: Uuid,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select s.type, coalesce(s.source_metadata->>'user_id', s.source_metadata->>'subject_id', \
                s.source_metadata->>'search_service', s.source_metadata->>'account_url', '') \
         from mcp_server_sources l join sources s on s.id = l.source_id \
         where l.server_id = $1 order by l.created_at, s.id",
    )
    .bind(server_id)
    .fetch_all(db)
    .await
}
