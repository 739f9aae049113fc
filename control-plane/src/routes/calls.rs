//! `/mcp-servers/{id}/calls`: the audit log of what agents asked a server, written by the
//! gateways, and a summary of it. Owners and admins read every call; a member reads only the
//! calls made through their own connections (and no summary). Soft-deleted servers' logs stay
//! readable to owners and admins until the retention period (`AUDIT_RETENTION_DAYS`) removes
//! them.

use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::model::{CallStatus, Tool};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::routes::responses::NotSignedIn;
use crate::{
    db::calls::{self, CallFilter, CallRow, GroupStats},
    error::{ApiError, ErrorBody, FieldError},
    extract::{Path, Query},
    orgs::{Role, access},
    routes::admin::page_bounds,
    session::AuthUser,
    state::AppState,
};

/// Longest window of a summary or series.
const MAX_WINDOW_DAYS: i64 = 93;

/// The `[from, to)` window a summary or series covers: `to` defaults to now, `from` to
/// `default_length` before it; `from` must be before `to` and at most 93 days earlier.
pub fn window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    default_length: Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - default_length);
    if from >= to || to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::validation(vec![FieldError::new(
            "from",
            format!("must be before `to`, at most {MAX_WINDOW_DAYS} days earlier"),
        )]));
    }
    Ok((from, to))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_calls))
        .routes(routes!(summarize_calls))
}

/// Which calls to list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallParams {
    /// Calls at or after this time (RFC 3339); not after `to` (422 otherwise).
    from: Option<DateTime<Utc>>,
    /// Calls before this time (RFC 3339); not before `from`.
    to: Option<DateTime<Utc>>,
    /// `search` or `fetch`.
    #[param(inline, value_type = Option<ToolFilter>)]
    tool: Option<String>,
    /// `ok`, `partial` (some sources failed) or `error`.
    #[param(inline, value_type = Option<StatusFilter>)]
    status: Option<String>,
    /// Only the calls made through this person's connections (a member may name only
    /// themselves and always gets only their own).
    user_id: Option<Uuid>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// The tools, as the filter names them (documentation only: the handler checks the string).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ToolFilter {
    Search,
    Fetch,
}

/// Call statuses, as the filter names them (documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum StatusFilter {
    Ok,
    Partial,
    Error,
}

/// One tool call.
#[derive(Serialize, ToSchema)]
pub struct CallView {
    pub id: i64,
    pub called_at: DateTime<Utc>,
    /// The access key used (none for OAuth calls and on a public server).
    pub key_id: Option<Uuid>,
    /// The OAuth grant the call came through (see `/mcp-servers/{id}/grants`).
    pub grant_id: Option<Uuid>,
    /// The person whose connection made the call (none for access keys and public servers).
    pub user_id: Option<Uuid>,
    #[schema(example = "search")]
    pub tool: String,
    /// The query or id, cut to 1,000 characters.
    pub argument: String,
    /// `ok`, `partial` or `error`.
    pub status: String,
    /// Why it failed: `invalid_arguments`, `not_found`, `source_failed`, `all_sources_failed`.
    pub error_class: Option<String>,
    pub result_count: i32,
    pub duration_ms: i32,
    /// Per source: `{source_id, type, outcome, latency_ms, results}`; outcome is `ok`,
    /// `not_found`, `error` or `timeout`.
    #[schema(value_type = Vec<Object>)]
    pub sources: Value,
}

impl From<CallRow> for CallView {
    fn from(row: CallRow) -> Self {
        Self {
            id: row.id,
            called_at: row.called_at,
            key_id: row.key_id,
            grant_id: row.grant_id,
            user_id: row.user_id,
            tool: row.tool,
            argument: row.argument,
            status: row.status,
            error_class: row.error_class,
            result_count: row.result_count,
            duration_ms: row.duration_ms,
            sources: row.sources,
        }
    }
}

/// One page of calls.
#[derive(Serialize, ToSchema)]
pub struct CallPage {
    pub items: Vec<CallView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The window of a summary.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Start (RFC 3339); default 24 hours before `to`. Must be before `to` and at most 93
    /// days earlier (422 otherwise), so a `from` alone must lie in the last 93 days.
    from: Option<DateTime<Utc>>,
    /// End (RFC 3339); default now. After `from`, at most 93 days later.
    to: Option<DateTime<Utc>>,
}

/// Counts and latencies of a tool or a source.
#[derive(Serialize, ToSchema)]
pub struct Stats {
    /// The tool name, or the source id.
    pub name: String,
    /// The source type (sources only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    pub calls: i64,
    pub errors: i64,
    /// Tools only: calls where some sources failed.
    pub partial: i64,
    /// errors / calls.
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

impl From<GroupStats> for Stats {
    fn from(row: GroupStats) -> Self {
        Self {
            error_rate: rate(row.errors, row.calls),
            name: row.name,
            source_type: row.source_type,
            calls: row.calls,
            errors: row.errors,
            partial: row.partial,
            p50_ms: row.p50_ms,
            p95_ms: row.p95_ms,
        }
    }
}

/// A server's calls over a window.
#[derive(Serialize, ToSchema)]
pub struct CallSummary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub calls: i64,
    pub errors: i64,
    pub partial: i64,
    pub error_rate: f64,
    /// Per tool.
    pub tools: Vec<Stats>,
    /// Per source called (upstream latency and failures).
    pub sources: Vec<Stats>,
}

fn rate(errors: i64, calls: i64) -> f64 {
    if calls == 0 {
        0.0
    } else {
        errors as f64 / calls as f64
    }
}

/// The calls agents made to a server, newest first: all of them for its organization's owners
/// and admins, a member's own for a member.
#[utoipa::path(
    get, path = "/mcp-servers/{id}/calls", tag = "calls",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), CallParams),
    responses(
        (status = 200, description = "One page of calls", body = CallPage),
        (status = 400, description = "Malformed id or query string", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "A member named someone else in `user_id` (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such server the caller can see", body = ErrorBody),
        (status = 422, description = "Bad tool, status, time range, limit or offset", body = ErrorBody),
    )
)]
async fn list_calls(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<CallParams>,
) -> Result<axum::Json<CallPage>, ApiError> {
    let (limit, offset) = page_bounds(params.limit, params.offset)?;
    let mut fields = Vec::new();
    if params
        .tool
        .as_deref()
        .is_some_and(|t| Tool::parse(t).is_none())
    {
        fields.push(FieldError::new("tool", "must be `search` or `fetch`"));
    }
    if params
        .status
        .as_deref()
        .is_some_and(|s| CallStatus::parse(s).is_none())
    {
        fields.push(FieldError::new(
            "status",
            "must be `ok`, `partial` or `error`",
        ));
    }
    if let (Some(from), Some(to)) = (params.from, params.to)
        && from > to
    {
        fields.push(FieldError::new("from", "must not be after `to`"));
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    let server = access::of_server(&state.pool, caller.user.id, id, true).await?;
    let user = match params.user_id {
        _ if server.role() >= Role::Admin => params.user_id,
        Some(other) if other != caller.user.id => {
            return Err(access::role_required(Role::Admin, server.role()));
        }
        _ => Some(caller.user.id),
    };
    let filter = CallFilter {
        from: params.from,
        to: params.to,
        tool: params.tool,
        status: params.status,
        user,
    };
    let (rows, total) = calls::page(&state.pool, id, &filter, limit, offset).await?;
    Ok(axum::Json(CallPage {
        items: rows.into_iter().map(Into::into).collect(),
        total,
        limit,
        offset,
    }))
}

/// Counts, error rates and p50/p95 latencies per tool and per source over a window.
#[utoipa::path(
    get, path = "/mcp-servers/{id}/calls/summary", tag = "calls",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "Server id"), SummaryParams),
    responses(
        (status = 200, description = "The summary", body = CallSummary),
        (status = 400, description = "Malformed id or query string", body = ErrorBody),
        NotSignedIn,
        (status = 403, description = "The caller is only a member (`role_required`)", body = ErrorBody),
        (status = 404, description = "No such server the caller can see", body = ErrorBody),
        (status = 422, description = "Bad window (from after to, or longer than 93 days)", body = ErrorBody),
    )
)]
async fn summarize_calls(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(params): Query<SummaryParams>,
) -> Result<axum::Json<CallSummary>, ApiError> {
    let (from, to) = window(params.from, params.to, Duration::hours(24))?;
    access::of_server(&state.pool, caller.user.id, id, true)
        .await?
        .require(Role::Admin)?;
    let tools: Vec<Stats> = calls::by_tool(&state.pool, id, from, to)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let sources = calls::by_source(&state.pool, id, from, to)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let (calls, errors, partial) = tools.iter().fold((0, 0, 0), |(c, e, p), t| {
        (c + t.calls, e + t.errors, p + t.partial)
    });
    Ok(axum::Json(CallSummary {
        from,
        to,
        calls,
        errors,
        partial,
        error_rate: rate(errors, calls),
        tools,
        sources,
    }))
}
