//! The `organization_invitations` table: one-time links to join an organization (only their
//! SHA-256 is stored).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::orgs::Role;

/// An invitation as listed (never its token: only a hash is stored).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
}

macro_rules! invitation_select {
    () => {
        "select i.id, i.organization_id, o.name as organization_name, i.email, i.role, \
                i.invited_by, i.created_at, i.expires_at, i.accepted_at, i.accepted_by, \
                i.revoked_at \
         from organization_invitations i join organizations o on o.id = i.organization_id "
    };
}

/// Stores an invitation's hash, revoking earlier pending ones for the same email.
pub async fn invite(
    db: &mut PgConnection,
    organization_id: Uuid,
    email: &str,
    role: Role,
    token_hash: &[u8],
    invited_by: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<InvitationRow, sqlx::Error> {
    sqlx::query(
        "update organization_invitations set revoked_at = now() \
         where organization_id = $1 and email = $2 \
           and accepted_at is null and revoked_at is null",
    )
    .bind(organization_id)
    .bind(email)
    .execute(&mut *db)
    .await?;
    let id: Uuid = sqlx::query_scalar(
        "insert into organization_invitations \
         (organization_id, email, role, token_hash, invited_by, expires_at) \
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(organization_id)
    .bind(email)
    .bind(role.as_str())
    .bind(token_hash)
    .bind(invited_by)
    .bind(expires_at)
    .fetch_one(&mut *db)
    .await?;
    sqlx::query_as(concat!(invitation_select!(), "where i.id = $1"))
        .bind(id)
        .fetch_one(&mut *db)
        .await
}

/// How many invitations of an organization are still pending.
pub async fn pending_count(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from organization_invitations where organization_id = $1 \
         and accepted_at is null and revoked_at is null and expires_at > now()",
    )
    .bind(organization_id)
    .fetch_one(db)
    .await
}

/// An organization's invitations, newest first (at most `limit`).
pub async fn invitations(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    limit: i64,
) -> Result<Vec<InvitationRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        invitation_select!(),
        "where i.organization_id = $1 order by i.created_at desc, i.id limit $2"
    ))
    .bind(organization_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Revokes a pending invitation; returns it as it now is, none if there is no such
/// invitation in the organization.
pub async fn revoke_invitation(
    db: &mut PgConnection,
    organization_id: Uuid,
    id: Uuid,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query(
        "update organization_invitations set revoked_at = now() \
         where id = $1 and organization_id = $2 and accepted_at is null and revoked_at is null",
    )
    .bind(id)
    .bind(organization_id)
    .execute(&mut *db)
    .await?;
    sqlx::query_as(concat!(
        invitation_select!(),
        "where i.id = $1 and i.organization_id = $2"
    ))
    .bind(id)
    .bind(organization_id)
    .fetch_optional(&mut *db)
    .await
}

/// The invitation whose token hashes to `token_hash`, locked for the rest of the transaction
/// when `lock` (accepting it).
pub async fn invitation_by_hash(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
    lock: bool,
) -> Result<Option<InvitationRow>, sqlx::Error> {
    let sql = if lock {
        concat!(
            invitation_select!(),
            "where i.token_hash = $1 for update of i"
        )
    } else {
        concat!(invitation_select!(), "where i.token_hash = $1")
    };
    sqlx::query_as(sql)
        .bind(token_hash)
        .fetch_optional(db)
        .await
}

/// Marks an invitation accepted by `user_id`.
pub async fn mark_accepted(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update organization_invitations set accepted_at = now(), accepted_by = $2 where id = $1",
    )
    .bind(id)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(())
}
