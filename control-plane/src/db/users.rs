//! The `users` and `revoked_tokens` tables.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// Name of the case-insensitive unique index on `users.email`.
pub const EMAIL_UNIQUE: &str = "users_email_key";

/// A user row, without the password hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub token_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// Whether the user holds the admin role.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// What a session check needs in one round trip.
#[derive(Debug, sqlx::FromRow)]
pub struct SessionRow {
    #[sqlx(flatten)]
    pub user: User,
    pub revoked: bool,
}

/// The columns of [`User`], as a literal so queries stay `&'static str` (sqlx refuses
/// dynamically built SQL).
macro_rules! user_columns {
    () => {
        "id, email, role, token_version, created_at, updated_at"
    };
}

/// Inserts a user unless the email is taken ([`EMAIL_UNIQUE`]): then `None`, and the
/// existing account is left as it was.
pub async fn insert_unless_taken(
    db: impl PgExecutor<'_>,
    email: &str,
    hashed_password: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(concat!(
        "insert into users (email, hashed_password) values ($1, $2) on conflict do nothing returning ",
        user_columns!()
    ))
    .bind(email)
    .bind(hashed_password)
    .fetch_optional(db)
    .await
}

/// The user and their hash, by normalised email.
pub async fn credentials_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<(Uuid, i32, String)>, sqlx::Error> {
    sqlx::query_as("select id, token_version, hashed_password from users where lower(email) = $1")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// The current hash of a user.
pub async fn hashed_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select hashed_password from users where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The user behind a token, and whether that token was revoked.
pub async fn session(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    jti: Uuid,
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        ", exists (select 1 from revoked_tokens where jti = $2) as revoked from users where id = $1"
    ))
    .bind(user_id)
    .bind(jti)
    .fetch_optional(db)
    .await
}

/// Stores a new hash and bumps the token version, which invalidates every earlier token.
/// Returns the new version.
pub async fn set_password(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hashed_password: &str,
) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "update users set hashed_password = $2, token_version = token_version + 1 \
         where id = $1 returning token_version",
    )
    .bind(id)
    .bind(hashed_password)
    .fetch_one(db)
    .await
}

/// Records a signed-out token until it would have expired anyway.
pub async fn revoke_token(
    db: impl PgExecutor<'_>,
    jti: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into revoked_tokens (jti, user_id, expires_at) values ($1, $2, $3) \
         on conflict (jti) do nothing",
    )
    .bind(jti)
    .bind(user_id)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes revocation records of tokens that have expired (with a margin larger than the
/// token leeway and any clock skew, so a signed-out token can never come back). Returns how many were deleted.
pub async fn purge_expired_revocations(db: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("delete from revoked_tokens where expires_at < now() - interval '10 minutes'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Deletes a user; sources, servers and links go with it (foreign keys cascade).
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("delete from users where id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        == 1)
}

/// Sets a user's role by email; returns their id, or none when no such user exists.
pub async fn set_role(
    db: impl PgExecutor<'_>,
    email: &str,
    role: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("update users set role = $2 where lower(email) = $1 returning id")
        .bind(email)
        .bind(role)
        .fetch_optional(db)
        .await
}

/// One page of users, oldest first, and the total count.
pub async fn page(
    db: &sqlx::PgPool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<User>, i64), sqlx::Error> {
    let total: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(db)
        .await?;
    let users = sqlx::query_as(concat!(
        "select ",
        user_columns!(),
        " from users order by created_at, id limit $1 offset $2"
    ))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    Ok((users, total))
}

/// Row counts for the health report.
#[derive(Debug, sqlx::FromRow)]
pub struct Counts {
    pub users: i64,
    pub sources: i64,
    pub mcp_servers: i64,
    pub live_mcp_servers: i64,
}

/// Counts of the main tables.
pub async fn counts(db: impl PgExecutor<'_>) -> Result<Counts, sqlx::Error> {
    sqlx::query_as(
        "select (select count(*) from users) as users, \
                (select count(*) from sources) as sources, \
                (select count(*) from mcp_servers) as mcp_servers, \
                (select count(*) from mcp_servers where deleted_at is null) as live_mcp_servers",
    )
    .fetch_one(db)
    .await
}
