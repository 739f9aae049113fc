//! What every REST write shares: its change and the activity record that describes it commit
//! together, or neither does ([`recorded`]).

use sqlx::{PgConnection, PgPool};

use crate::{activity::Activity, error::ApiError};

/// Runs `change` in a transaction, writes the activity it returns in the same transaction and
/// commits: a change that fails rolls back and leaves no record. Returns the change's value.
/// The activity may be `None` when the change found nothing to record.
pub async fn recorded<T, A>(
    pool: &PgPool,
    change: impl AsyncFnOnce(&mut PgConnection) -> Result<(T, A), ApiError>,
) -> Result<T, ApiError>
where
    A: Into<Option<Activity>>,
{
    let mut tx = pool.begin().await?;
    let (value, activity) = change(&mut tx).await?;
    if let Some(activity) = activity.into() {
        activity.record(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(value)
}
