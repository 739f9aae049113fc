//! A server's usage in the console: calls over time stacked by outcome (an SVG drawn here,
//! no chart library and no script), latency p50/p95 per source, error classes, and the recent
//! calls filterable by tool and status. Three API calls: series, summary, one page of calls.

use askama::Template;
use axum::{
    extract::{Path, Query},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::console::{
    items::{ServerItem, when},
    pages::{Fail, Nav, segment, show},
    session::Session,
};

/// Calls per page of the recent-calls table.
const PAGE: i64 = 50;
/// The chart's drawing area, in SVG units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;

#[derive(Deserialize, Default)]
pub struct UsageQuery {
    bucket: Option<String>,
    tool: Option<String>,
    status: Option<String>,
    offset: Option<i64>,
}

#[derive(Deserialize)]
struct Series {
    buckets: Vec<Bucket>,
    error_classes: Vec<ErrorClass>,
}

#[derive(Deserialize)]
struct Bucket {
    start: DateTime<Utc>,
    ok: i64,
    partial: i64,
    error: i64,
}

#[derive(Deserialize)]
struct ErrorClass {
    error_class: String,
    calls: i64,
}

#[derive(Deserialize)]
struct Summary {
    calls: i64,
    errors: i64,
    partial: i64,
    sources: Vec<Stats>,
}

#[derive(Deserialize)]
struct Stats {
    name: String,
    source_type: Option<String>,
    calls: i64,
    errors: i64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
}

impl Stats {
    fn p50(&self) -> String {
        ms(self.p50_ms)
    }

    fn p95(&self) -> String {
        ms(self.p95_ms)
    }

    fn kind(&self) -> &str {
        self.source_type.as_deref().unwrap_or("source")
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} ms"))
}

#[derive(Deserialize)]
struct Call {
    called_at: DateTime<Utc>,
    tool: String,
    argument: String,
    status: String,
    error_class: Option<String>,
    result_count: i32,
    duration_ms: i32,
}

impl Call {
    fn at(&self) -> String {
        when(&self.called_at)
    }
}

#[derive(Deserialize)]
struct Calls {
    items: Vec<Call>,
    total: i64,
}

/// One stacked bar of the chart.
struct Bar {
    x: f64,
    width: f64,
    /// `(css class, y, height)` from the bottom up.
    parts: Vec<(&'static str, f64, f64)>,
    label: String,
}

#[derive(Template)]
#[template(path = "console/usage.html")]
struct Usage {
    nav: Option<Nav>,
    server: ServerItem,
    bucket: &'static str,
    tool: &'static str,
    status: &'static str,
    bars: Vec<Bar>,
    peak: i64,
    first: String,
    last: String,
    summary: Summary,
    classes: Vec<ErrorClass>,
    calls: Vec<Call>,
    total: i64,
    previous: Option<String>,
    next: Option<String>,
}

/// Bars from buckets, scaled to the tallest.
fn bars(buckets: &[Bucket]) -> (Vec<Bar>, i64) {
    let peak = buckets
        .iter()
        .map(|b| b.ok + b.partial + b.error)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = WIDTH / buckets.len().max(1) as f64;
    let scale = HEIGHT / peak as f64;
    let bars = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut y = HEIGHT;
            let mut parts = Vec::new();
            for (class, count) in [("ok", b.ok), ("partial", b.partial), ("error", b.error)] {
                if count > 0 {
                    let height = count as f64 * scale;
                    y -= height;
                    parts.push((class, y, height));
                }
            }
            Bar {
                x: i as f64 * slot + slot * 0.1,
                width: slot * 0.8,
                parts,
                label: format!(
                    "{}: {} ok, {} partial, {} error",
                    when(&b.start),
                    b.ok,
                    b.partial,
                    b.error
                ),
            }
        })
        .collect();
    (bars, peak)
}

/// The filter's value if it is one the API knows (anything else shows everything).
fn pick(value: Option<&str>, allowed: &[&'static str]) -> &'static str {
    allowed
        .iter()
        .find(|a| value == Some(**a))
        .copied()
        .unwrap_or_default()
}

/// `GET /servers/{id}/usage?bucket=hour|day&tool=&status=&offset=`.
pub async fn usage(
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<UsageQuery>,
) -> Result<Response, Fail> {
    let bucket = if query.bucket.as_deref() == Some("day") {
        "day"
    } else {
        "hour"
    };
    let tool = pick(query.tool.as_deref(), &["search", "fetch"]);
    let status = pick(query.status.as_deref(), &["ok", "partial", "error"]);
    let offset = query.offset.unwrap_or(0).max(0);
    let id = segment(&id);
    let server = format!("/mcp-servers/{id}?include_deleted=true");
    let series = format!("/mcp-servers/{id}/calls/series?bucket={bucket}");
    let window = if bucket == "day" { 30 * 24 } else { 24 };
    let from = segment(&(Utc::now() - chrono::Duration::hours(window)).to_rfc3339());
    let summary = format!("/mcp-servers/{id}/calls/summary?from={from}");
    let mut calls = format!("/mcp-servers/{id}/calls?limit={PAGE}&offset={offset}");
    for (name, value) in [("tool", tool), ("status", status)] {
        if !value.is_empty() {
            calls.push_str(&format!("&{name}={value}"));
        }
    }
    let api = &session.api;
    let caller = &session.caller;
    let (server, series, summary, calls) = tokio::join!(
        api.get(caller, &server),
        api.get(caller, &series),
        api.get(caller, &summary),
        api.get(caller, &calls),
    );
    let server: ServerItem = server.parse()?;
    let series: Series = series.parse()?;
    let summary: Summary = summary.parse()?;
    let calls: Calls = calls.parse()?;
    let (bars, peak) = bars(&series.buckets);
    let link = |offset: i64| {
        format!(
            "/servers/{}/usage?bucket={bucket}&tool={tool}&status={status}&offset={offset}",
            server.id
        )
    };
    let page = Usage {
        nav: Some(session.nav.clone()),
        first: series
            .buckets
            .first()
            .map(|b| when(&b.start))
            .unwrap_or_default(),
        last: series
            .buckets
            .last()
            .map(|b| when(&b.start))
            .unwrap_or_default(),
        previous: (offset > 0).then(|| link((offset - PAGE).max(0))),
        next: (offset + PAGE < calls.total).then(|| link(offset + PAGE)),
        bucket,
        bars,
        peak,
        summary,
        classes: series.error_classes,
        total: calls.total,
        calls: calls.items,
        server,
        tool,
        status,
    };
    Ok(show(session.jar, &page))
}
