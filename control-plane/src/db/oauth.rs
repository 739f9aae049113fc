//! The OAuth tables: clients, grants, authorization codes, refresh tokens and signing keys.
//! Codes and refresh tokens are stored as SHA-256 hashes only. Grant queries that a person
//! reaches name the owner: another user's grants behave as if they did not exist.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A client as stored (registered, or known by its metadata document).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: String,
    pub kind: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

/// Stores a newly registered client.
pub async fn insert_client(
    db: impl PgExecutor<'_>,
    client_id: &str,
    client_name: &str,
    redirect_uris: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'registered', $2, $3)",
    )
    .bind(client_id)
    .bind(client_name)
    .bind(redirect_uris)
    .execute(db)
    .await?;
    Ok(())
}

/// Records (or refreshes) a client known by its metadata document.
pub async fn upsert_document_client(
    db: impl PgExecutor<'_>,
    client_id: &str,
    client_name: &str,
    redirect_uris: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into oauth_clients (client_id, kind, client_name, redirect_uris) \
         values ($1, 'metadata_document', $2, $3) \
         on conflict (client_id) do update set client_name = excluded.client_name, \
             redirect_uris = excluded.redirect_uris, last_used_at = now() \
         where oauth_clients.kind = 'metadata_document'",
    )
    .bind(client_id)
    .bind(client_name)
    .bind(redirect_uris)
    .execute(db)
    .await?;
    Ok(())
}

/// A registered client by id (reading it is not a use: see [`touch_client`]).
pub async fn registered_client(
    db: impl PgExecutor<'_>,
    client_id: &str,
) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "select client_id, kind, client_name, redirect_uris from oauth_clients \
         where client_id = $1 and kind = 'registered'",
    )
    .bind(client_id)
    .fetch_optional(db)
    .await
}

/// Notes a real use of a client (a consent approved), which keeps it from the idle purge.
pub async fn touch_client(db: impl PgExecutor<'_>, client_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update oauth_clients set last_used_at = now() where client_id = $1")
        .bind(client_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes registered clients that have no grant and were not used for `idle_days`.
pub async fn purge_idle_clients(
    db: impl PgExecutor<'_>,
    idle_days: i32,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from oauth_clients c where c.last_used_at < now() - make_interval(days => $1) \
         and not exists (select 1 from oauth_grants g where g.client_id = c.client_id)",
    )
    .bind(idle_days)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

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
