//! `/mcp-servers/{id}/calls/series`: a server's tool calls over time, counted per hour or day
//! and per outcome, with the error classes of the window: what the console's usage chart
//! draws, computed by the database rather than by a browser.

use axum::extract::State;
use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::NotSignedIn;
use crate::{
    db::calls,
    error::{ApiError, ErrorBody},
    extract::{Path, Query},
    orgs::{Role, access},
    session::AuthUser,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(call_series))
}

/// The width of a bucket.
#[derive(Deserialize, Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    #[default]
    Hour,
    Day,
}

impl Bucket {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn width(self) -> TimeDelta {
        match self {
            Self::Hour => TimeDelta::hours(1),
            Self::Day => TimeDelta::days(1),
        }
    }

    /// The window when `from` is not given.
    fn default_window(self) -> Duration {
        match self {
            Self::Hour => Duration::hours(24),
            Self::Day => Duration::days(30),
        }
    }
}

/// The window and bucket width.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// `hour` (default) or `day`; buckets start on the UTC hour or UTC midnight.
    #[param(inline)]
    bucket: Option<Bucket>,
    /// Start (RFC 3339); default 24 hours (`hour`) or 30 days (`day`) before `to`. Must be
    /// before `to` and at most 93 days earlier (422 otherwise), so a `from` alone must lie in
    /// the last 93 days. The first bucket is the one holding `from`.
    from: Option<DateTime<Utc>>,
    /// End (RFC 3339); default now. After `from`, at most 93 days later.
    to: Option<DateTime<Utc>>,
}

/// One bucket's calls by outcome.
#[derive(Serialize, ToSchema)]
pub struct SeriesBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime<Utc>,
    /// Calls every source answered.
    pub ok: i64,
    /// Calls where some sources failed.
    pub partial: i64,
    /// Failed calls.
    pub error: i64,
}

/// Failed calls of one class.
#[derive(Serialize, ToSchema)]
pub struct ErrorClassCount {
    /// `invalid_arguments`, `not_found`, `source_failed`, `all_sources_failed`...
    pub error_class: String,
    pub calls: i64,
}

/// A server's calls over time.
#[derive(Serialize, ToSchema)]
pub struct CallSeries {
    #[schema(inline)]
    pub bucket: Bucket,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every bucket from the one holding `from` to the one holding the end of the window,
    /// oldest first, empty ones included.
    pub buckets: Vec<SeriesBucket>,
    /// Failed calls of the window per error class, most frequent first.
    pub error_classes: Vec<ErrorClassCount>,
}

/// Calls per hour or day, by outcome (`ok`, `partial`, `error`), and the window's error classes.
#[utoipa::path(
    get, path = "/mcp-servers/{id}/calls/series", tag = "calls",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), SeriesParams),
    responses(
        (status = 200, description = "The series", body = CallSeries),
        (status = 400, description = "Malformed id or query string (an unknown bucket too)", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "The caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such server the caller can see", body = ErrorBody),
        (status = 422, description = "Bad window (from not before to, or longer than 93 days)", body = ErrorBody),
    )
)]
async fn call_series(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<SeriesParams>,
) -> Result<axum::Json<CallSeries>, ApiError> {
    let bucket = params.bucket.unwrap_or_default();
    let (from, to) = super::calls::window(params.from, params.to, bucket.default_window())?;
    access::of_server(&state.pool, caller.user.id, id, true)
        .await?
        .require(Role::Admin)?;
    let (counted, classes) = tokio::try_join!(
        calls::series(&state.pool, id, bucket.as_str(), from, to),
        calls::error_classes(&state.pool, id, from, to),
    )?;
    Ok(axum::Json(CallSeries {
        bucket,
        from,
        to,
        buckets: fill(bucket, from, to, counted),
        error_classes: classes
            .into_iter()
            .map(|(error_class, calls)| ErrorClassCount { error_class, calls })
            .collect(),
    }))
}

/// Every bucket of the window, with the counted ones in place.
fn fill(
    bucket: Bucket,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    counted: Vec<calls::BucketCounts>,
) -> Vec<SeriesBucket> {
    let width = bucket.width();
    let mut counted = counted.into_iter().peekable();
    let mut start = from.duration_trunc(width).unwrap_or(from);
    let mut out = Vec::new();
    while start < to {
        let mut item = SeriesBucket {
            start,
            ok: 0,
            partial: 0,
            error: 0,
        };
        if let Some(row) = counted.next_if(|row| row.start == start) {
            (item.ok, item.partial, item.error) = (row.ok, row.partial, row.error);
        }
        out.push(item);
        let Some(next) = start.checked_add_signed(width) else {
            break;
        };
        start = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_of_the_window_is_there_and_counts_land_in_theirs() {
        let from: DateTime<Utc> = "2026-01-01T10:30:00Z".parse().unwrap();
        let to: DateTime<Utc> = "2026-01-01T13:10:00Z".parse().unwrap();
        let counted = vec![calls::BucketCounts {
            start: "2026-01-01T12:00:00Z".parse().unwrap(),
            ok: 3,
            partial: 1,
            error: 2,
        }];
        let buckets = fill(Bucket::Hour, from, to, counted);
        let starts: Vec<String> = buckets
            .iter()
            .map(|b| b.start.format("%H").to_string())
            .collect();
        assert_eq!(starts, ["10", "11", "12", "13"]);
        assert_eq!(
            (buckets[2].ok, buckets[2].partial, buckets[2].error),
            (3, 1, 2)
        );
        assert_eq!(buckets[0].ok + buckets[1].error + buckets[3].partial, 0);
    }
}
