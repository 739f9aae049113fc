//! The caller's standing towards an organization or one of its objects, read in the same query
//! that finds the object, so "not yours" and "does not exist" are one answer.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::Role;
use crate::error::ApiError;

/// The caller's membership of the organization an object belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Membership {
    pub organization_id: Uuid,
    pub role: Role,
    /// A personal organization (one account, its owner).
    pub personal: bool,
}

impl Membership {
    /// 403 unless the caller's role is at least `needed`; the message names the role.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.role >= needed {
            return Ok(());
        }
        Err(role_required(needed, self.role))
    }
}

/// 403 naming the role an action needs and the caller's.
pub fn role_required(needed: Role, held: Role) -> ApiError {
    ApiError::forbidden(
        "role_required",
        format!(
            "This needs the `{needed}` role in the organization or a higher one; yours is `{held}`."
        ),
    )
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    organization_id: Uuid,
    role: Role,
    personal: bool,
}

impl From<MembershipRow> for Membership {
    fn from(row: MembershipRow) -> Self {
        Self {
            organization_id: row.organization_id,
            role: row.role,
            personal: row.personal,
        }
    }
}

/// The caller's membership of `organization_id`; 404 if they are not in it.
pub async fn of_organization(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    organization_id: Uuid,
) -> Result<Membership, ApiError> {
    let row: Option<MembershipRow> = sqlx::query_as(
        "select m.organization_id, m.role, o.personal_user_id is not null as personal \
         from organization_members m join organizations o on o.id = m.organization_id \
         where m.organization_id = $2 and m.user_id = $1",
    )
    .bind(user_id)
    .bind(organization_id)
    .fetch_optional(db)
    .await?;
    row.map(Membership::from).ok_or_else(ApiError::not_found)
}

/// The caller's personal organization.
pub async fn personal_organization(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Uuid, ApiError> {
    let id: Option<Uuid> =
        sqlx::query_scalar("select id from organizations where personal_user_id = $1")
            .bind(user_id)
            .fetch_optional(db)
            .await?;
    // Made with the account by a trigger; missing only if the account is gone.
    id.ok_or_else(ApiError::unauthenticated)
}

/// The organization to create something in: the one named (the caller must hold `needed` in
/// it) or, when none is named, the caller's personal organization.
pub async fn for_create(
    db: &mut sqlx::PgConnection,
    user_id: Uuid,
    named: Option<Uuid>,
    needed: Role,
) -> Result<Membership, ApiError> {
    let id = match named {
        Some(id) => id,
        None => personal_organization(&mut *db, user_id).await?,
    };
    let membership = of_organization(&mut *db, user_id, id).await?;
    membership.require(needed)?;
    Ok(membership)
}

/// The caller's membership of a source's organization; 404 if there is no such source or the
/// caller is not in its organization.
pub async fn of_source(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    source_id: Uuid,
) -> Result<Membership, ApiError> {
    let row: Option<MembershipRow> = sqlx::query_as(
        "select s.organization_id, m.role, o.personal_user_id is not null as personal \
         from sources s \
         join organization_members m on m.organization_id = s.organization_id and m.user_id = $1 \
         join organizations o on o.id = s.organization_id \
         where s.id = $2",
    )
    .bind(user_id)
    .bind(source_id)
    .fetch_optional(db)
    .await?;
    row.map(Membership::from).ok_or_else(ApiError::not_found)
}

/// The caller's standing towards a server.
#[derive(Debug, Clone, Copy)]
pub struct ServerAccess {
    pub membership: Membership,
    /// The caller may connect an agent to it (and so see it): owners and admins always,
    /// members when it is open to all members or lists them.
    pub may_connect: bool,
}

impl ServerAccess {
    /// 403 unless the caller's role is at least `needed`.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        self.membership.require(needed)
    }

    pub fn organization_id(&self) -> Uuid {
        self.membership.organization_id
    }

    pub fn role(&self) -> Role {
        self.membership.role
    }
}

#[derive(sqlx::FromRow)]
struct ServerAccessRow {
    organization_id: Uuid,
    role: Role,
    personal: bool,
    open_to_caller: bool,
    deleted: bool,
}

/// The caller's standing towards a server (soft-deleted ones only when `include_deleted`,
/// and only for owners and admins). 404 if there is no such server, the caller is not in its
/// organization, or the caller is a member who may not connect to it.
pub async fn of_server(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    server_id: Uuid,
    include_deleted: bool,
) -> Result<ServerAccess, ApiError> {
    let row: Option<ServerAccessRow> = sqlx::query_as(
        "select s.organization_id, m.role, o.personal_user_id is not null as personal, \
                (s.member_access = 'all' or exists (select 1 from mcp_server_members l \
                    where l.server_id = s.id and l.user_id = $1)) as open_to_caller, \
                s.deleted_at is not null as deleted \
         from mcp_servers s \
         join organization_members m on m.organization_id = s.organization_id and m.user_id = $1 \
         join organizations o on o.id = s.organization_id \
         where s.id = $2 and ($3 or s.deleted_at is null)",
    )
    .bind(user_id)
    .bind(server_id)
    .bind(include_deleted)
    .fetch_optional(db)
    .await?;
    let row = row.ok_or_else(ApiError::not_found)?;
    let manager = row.role >= Role::Admin;
    if !manager && (row.deleted || !row.open_to_caller) {
        return Err(ApiError::not_found());
    }
    Ok(ServerAccess {
        membership: Membership {
            organization_id: row.organization_id,
            role: row.role,
            personal: row.personal,
        },
        may_connect: !row.deleted && (manager || row.open_to_caller),
    })
}
