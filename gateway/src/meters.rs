//! The gateway's per-call metrics, registered once: every tool call and upstream call updates
//! handles looked up in a table built at first use, instead of building and hashing a metric
//! key (and allocating its labels) on the hot path. The label sets are small and fixed.

use std::{collections::HashMap, sync::LazyLock, time::Duration};

use metrics::{Counter, Histogram};
use shared::model::{SourceOutcome, SourceType, Tool};

use crate::audit::Status;

struct Meters {
    tool_calls: HashMap<(&'static str, &'static str), Counter>,
    tool_latency: HashMap<&'static str, Histogram>,
    upstream_calls: HashMap<(&'static str, &'static str), Counter>,
    upstream_latency: HashMap<&'static str, Histogram>,
}

/// Built at the first call, after the recorder is installed (the daemon installs it at start).
static METERS: LazyLock<Meters> = LazyLock::new(|| {
    let mut meters = Meters {
        tool_calls: HashMap::new(),
        tool_latency: HashMap::new(),
        upstream_calls: HashMap::new(),
        upstream_latency: HashMap::new(),
    };
    for tool in Tool::ALL.iter().map(|t| t.as_str()) {
        for status in Status::ALL.iter().copied() {
            let counter =
                metrics::counter!("tool_calls_total", "tool" => tool, "outcome" => status.as_str());
            meters.tool_calls.insert((tool, status.as_str()), counter);
        }
        let histogram = metrics::histogram!("tool_call_duration_seconds", "tool" => tool);
        meters.tool_latency.insert(tool, histogram);
    }
    for source_type in SourceType::ALL.map(SourceType::as_str) {
        for outcome in SourceOutcome::ALL.iter().map(|o| o.as_str()) {
            let counter = metrics::counter!("upstream_calls_total",
                "source_type" => source_type, "outcome" => outcome);
            meters
                .upstream_calls
                .insert((source_type, outcome), counter);
        }
        let histogram =
            metrics::histogram!("upstream_call_duration_seconds", "source_type" => source_type);
        meters.upstream_latency.insert(source_type, histogram);
    }
    meters
});

/// Counts a tool call and records its duration.
pub fn tool_call(tool: Tool, status: Status, elapsed: Duration) {
    if let Some(counter) = METERS.tool_calls.get(&(tool.as_str(), status.as_str())) {
        counter.increment(1);
    }
    if let Some(histogram) = METERS.tool_latency.get(tool.as_str()) {
        histogram.record(elapsed.as_secs_f64());
    }
}

/// Counts an upstream call and records its duration.
pub fn upstream_call(source_type: SourceType, outcome: SourceOutcome, elapsed: Duration) {
    let source_type = source_type.as_str();
    if let Some(counter) = METERS.upstream_calls.get(&(source_type, outcome.as_str())) {
        counter.increment(1);
    }
    if let Some(histogram) = METERS.upstream_latency.get(source_type) {
        histogram.record(elapsed.as_secs_f64());
    }
}
