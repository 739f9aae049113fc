//! The `organizations` and `organization_members` tables (invitations: `db::invitations`).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::orgs::Role;

/// The unique index on team organizations' slugs.
pub const SLUG_UNIQUE: &str = "organizations_slug_key";

/// An organization as one of its members sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: Uuid,
    pub name: String,
    pub slug: Option<String>,
    pub personal: bool,
    /// The caller's role in it.
    pub role: Role,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

macro_rules! organization_select {
    () => {
        "select o.id, o.name, o.slug, o.personal_user_id is not null as personal, m.role, \
                (select count(*) from organization_members c where c.organization_id = o.id) \
                    as member_count, o.created_at \
         from organizations o join organization_members m on m.organization_id = o.id \
         where m.user_id = $1 "
    };
}

/// Every organization the user is in, personal first, then by name.
pub async fn of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<OrganizationRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        organization_select!(),
        "order by o.personal_user_id is null, o.name, o.id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await
}

/// One organization the user is in.
pub async fn get(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<OrganizationRow>, sqlx::Error> {
    sqlx::query_as(concat!(organization_select!(), "and o.id = $2"))
        .bind(user_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Locks the user's account row (serialising their organization creations) and counts the
/// team organizations they own.
pub async fn lock_and_count_owned(
    db: &mut PgConnection,
    user_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query("select 1 from users where id = $1 for update")
        .bind(user_id)
        .execute(&mut *db)
        .await?;
    sqlx::query_scalar(
        "select count(*) from organization_members m join organizations o on o.id = m.organization_id \
         where m.user_id = $1 and m.role = 'owner' and o.personal_user_id is null",
    )
    .bind(user_id)
    .fetch_one(&mut *db)
    .await
}

/// Creates a team organization with `owner` as its first owner; returns its id.
pub async fn create(
    db: &mut PgConnection,
    owner: Uuid,
    name: &str,
    slug: &str,
) -> Result<Uuid, sqlx::Error> {
    let id: Uuid =
        sqlx::query_scalar("insert into organizations (name, slug) values ($1, $2) returning id")
            .bind(name)
            .bind(slug)
            .fetch_one(&mut *db)
            .await?;
    sqlx::query(
        "insert into organization_members (organization_id, user_id, role) values ($1, $2, 'owner')",
    )
    .bind(id)
    .bind(owner)
    .execute(&mut *db)
    .await?;
    Ok(id)
}

/// Renames a team organization and/or changes its slug.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    name: Option<&str>,
    slug: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update organizations set name = coalesce($2, name), slug = coalesce($3, slug) \
         where id = $1 and personal_user_id is null",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes a team organization with everything in it (servers, sources, keys, grants).
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from organizations where id = $1 and personal_user_id is null")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Locks an organization's row until the transaction ends: membership changes take it, so
/// "at least one owner" holds under concurrency.
pub async fn lock(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("select 1 from organizations where id = $1 for update")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A member as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// The members of an organization, owners first, then by email.
pub async fn members(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "select m.user_id, u.email, m.role, m.created_at as joined_at \
         from organization_members m join users u on u.id = m.user_id \
         where m.organization_id = $1 \
         order by role_rank(m.role) desc, u.email",
    )
    .bind(organization_id)
    .fetch_all(db)
    .await
}

/// One member, if they are one.
pub async fn member(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "select m.user_id, u.email, m.role, m.created_at as joined_at \
         from organization_members m join users u on u.id = m.user_id \
         where m.organization_id = $1 and m.user_id = $2",
    )
    .bind(organization_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Whether an account with `email` (stored lower-case) is a member.
pub async fn has_member_with_email(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    email: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from organization_members m join users u on u.id = m.user_id \
         where m.organization_id = $1 and u.email = $2)",
    )
    .bind(organization_id)
    .bind(email)
    .fetch_one(db)
    .await
}

/// The user's role in each organization they are in.
pub async fn roles_of(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<(Uuid, Role)>, sqlx::Error> {
    sqlx::query_as("select organization_id, role from organization_members where user_id = $1")
        .bind(user_id)
        .fetch_all(db)
        .await
}

/// One member's role, if they are a member.
pub async fn role_of(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Role>, sqlx::Error> {
    sqlx::query_scalar(
        "select role from organization_members where organization_id = $1 and user_id = $2",
    )
    .bind(organization_id)
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// How many owners an organization has.
pub async fn owner_count(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from organization_members where organization_id = $1 and role = 'owner'",
    )
    .bind(organization_id)
    .fetch_one(db)
    .await
}

/// Sets a member's role (a lowered role ends their grants, in the schema).
pub async fn set_role(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update organization_members set role = $3 where organization_id = $1 and user_id = $2",
    )
    .bind(organization_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(db)
    .await?;
    Ok(())
}

/// Adds a member (nothing if they already are one); `true` if added.
pub async fn add_member(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into organization_members (organization_id, user_id, role) values ($1, $2, $3) \
         on conflict do nothing",
    )
    .bind(organization_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a member: their grants end and they leave every server list (in the schema).
pub async fn remove_member(
    db: impl PgExecutor<'_>,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("delete from organization_members where organization_id = $1 and user_id = $2")
            .bind(organization_id)
            .bind(user_id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Team organizations where the user is the only owner, with how many members each has
/// (before the account is deleted: an organization of others needs another owner first).
pub async fn solely_owned(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Vec<(Uuid, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select o.id, o.name, (select count(*) from organization_members c \
                               where c.organization_id = o.id) \
         from organizations o join organization_members m on m.organization_id = o.id \
         where m.user_id = $1 and m.role = 'owner' and o.personal_user_id is null \
           and not exists (select 1 from organization_members x where x.organization_id = o.id \
                           and x.role = 'owner' and x.user_id <> $1) \
         order by o.name",
    )
    .bind(user_id)
    .fetch_all(db)
    .await
}
