//! Queries of the control plane. Functions take any executor (pool, connection or
//! transaction), so handlers decide where transactions begin and end. Every query on an
//! organization's objects filters by `organization_id` (after `orgs::access` has checked the
//! caller's standing): another organization's rows behave as if they did not exist.

pub mod activity;
pub mod calls;
pub mod invitations;
pub mod keys;
pub mod oauth;
pub mod organizations;
pub mod server_sources;
pub mod servers;
pub mod sources;
pub mod users;

/// Rows deleted per statement when trimming a table to its retention period.
const PURGE_BATCH: i64 = 10_000;

/// Runs `delete` (a statement deleting at most `$2` rows older than `$1`) until a batch comes
/// back short, so no statement holds locks for long; returns how many rows went.
async fn delete_in_batches(
    db: &sqlx::PgPool,
    delete: &'static str,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let done = sqlx::query(delete)
            .bind(cutoff)
            .bind(PURGE_BATCH)
            .execute(db)
            .await?;
        deleted += done.rows_affected();
        if done.rows_affected() < PURGE_BATCH as u64 {
            return Ok(deleted);
        }
    }
}
