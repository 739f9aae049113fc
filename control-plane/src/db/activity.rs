//! The `activity` table: writing a record ([`Activity::record`] and its best-effort forms),
//! reading pages of it, and trimming it to the retention period.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::{activity::Activity, error::ApiError};

/// Inserts one record.
pub async fn insert(db: impl PgExecutor<'_>, activity: &Activity) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into activity (actor_kind, actor_id, user_id, action, outcome, error_code, \
         source_id, server_id, key_id, grant_id, detail, client_addr, request_id, organization_id) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::inet, $13, $14)",
    )
    .bind(activity.actor_kind.as_str())
    .bind(activity.actor_id)
    .bind(activity.user_id)
    .bind(activity.action.as_str())
    .bind(if activity.error_code.is_some() {
        "failure"
    } else {
        "success"
    })
    .bind(activity.error_code)
    .bind(activity.source_id)
    .bind(activity.server_id)
    .bind(activity.key_id)
    .bind(activity.grant_id)
    .bind(Value::Object(activity.detail.clone()))
    .bind(activity.seen.client_ip.map(|ip| ip.to_string()))
    .bind(activity.seen.request_id.as_deref())
    .bind(activity.organization_id)
    .execute(db)
    .await?;
    Ok(())
}

impl Activity {
    /// Writes the record; call it inside the transaction of the change it describes.
    pub async fn record(&self, db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
        insert(db, self).await
    }

    /// Writes the record on its own, for an event that is no database change of its own or
    /// whose change has already committed. Best effort: a failure is logged and counted.
    pub async fn record_now(&self, pool: &PgPool) {
        if let Err(err) = self.record(pool).await {
            metrics::counter!("activity_records_failed_total").increment(1);
            tracing::warn!(error = %err, action = self.action.as_str(), "cannot record activity");
        }
    }

    /// After a handler's change was refused and rolled back: records the refusal as a failure
    /// when it is one an operator should see (a conflict such as `pool_exhausted`, a wrong
    /// password), and nothing for bad input or unknown ids.
    pub async fn record_refusal<T>(self, pool: &PgPool, result: &Result<T, ApiError>) {
        if let Err(err) = result
            && worth_recording(err)
        {
            self.failed(err.code()).record_now(pool).await;
        }
    }
}

/// Refusals recorded as failures.
fn worth_recording(err: &ApiError) -> bool {
    err.status() == axum::http::StatusCode::CONFLICT
        || matches!(err.code(), "wrong_password" | "invalid_credentials")
}

/// One stored record.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActivityRow {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub action: String,
    pub outcome: String,
    pub error_code: Option<String>,
    pub source_id: Option<Uuid>,
    pub server_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    pub detail: Value,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
}

/// Which records to list. `user`: the records of one account (as owner or as actor);
/// `organization`: those of one organization; neither: everyone's (administrators only; the
/// route decides).
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub user: Option<Uuid>,
    pub organization: Option<Uuid>,
    pub action: Option<&'static str>,
    pub outcome: Option<&'static str>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

macro_rules! activity_where {
    () => {
        "where ($1::uuid is null or user_id = $1 or actor_id = $1) \
         and ($2::text is null or action = $2) and ($3::text is null or outcome = $3) \
         and ($4::timestamptz is null or created_at >= $4) \
         and ($5::timestamptz is null or created_at < $5) \
         and ($6::uuid is null or organization_id = $6) "
    };
}

/// A page of records, newest first, and how many match.
pub async fn page(
    db: &PgPool,
    filter: &ActivityFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ActivityRow>, i64), sqlx::Error> {
    let total = sqlx::query_scalar(concat!("select count(*) from activity ", activity_where!()))
        .bind(filter.user)
        .bind(filter.action)
        .bind(filter.outcome)
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.organization)
        .fetch_one(db)
        .await?;
    let rows = sqlx::query_as(concat!(
        "select id, created_at, actor_kind, actor_id, user_id, organization_id, action, outcome, error_code, \
         source_id, server_id, key_id, grant_id, detail, host(client_addr) as client_ip, \
         request_id from activity ",
        activity_where!(),
        "order by created_at desc, id desc limit $7 offset $8"
    ))
    .bind(filter.user)
    .bind(filter.action)
    .bind(filter.outcome)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.organization)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    Ok((rows, total))
}

/// Deletes records older than `cutoff`, a batch at a time; returns how many went.
pub async fn purge_before(db: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    super::delete_in_batches(
        db,
        "delete from activity where id = any(array( \
         select id from activity where created_at < $1 limit $2))",
        cutoff,
    )
    .await
}
