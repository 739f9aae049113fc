//! The gateway's per-call metrics, registered once: every tool call and upstream call updates
//! handles from a table built at first use, indexed by the closed enums that label them, instead
//! of building and hashing a metric key (and allocating its labels) on the hot path.

use std::{sync::LazyLock, time::Duration};

use metrics::{Counter, Histogram};
use shared::model::{SourceOutcome, SourceType, Tool};

use shared::model::CallStatus as Status;

/// Handles by the labels' enum discriminants (each `ALL` lists its enum in declaration order;
/// a unit test holds them to it).
struct Meters {
    /// By tool, then status.
    tool_calls: Vec<Vec<Counter>>,
    /// By tool.
    tool_latency: Vec<Histogram>,
    /// By source type, then outcome.
    upstream_calls: Vec<Vec<Counter>>,
    /// By source type.
    upstream_latency: Vec<Histogram>,
}

/// Built at the first call, after the recorder is installed (the daemon installs it at start).
static METERS: LazyLock<Meters> = LazyLock::new(|| Meters {
    tool_calls: Tool::ALL
        .iter()
        .map(|tool| {
            Status::ALL
                .iter()
                .map(|status| {
                    metrics::counter!("tool_calls_total", "tool" => tool.as_str(),
                        "outcome" => status.as_str())
                })
                .collect()
        })
        .collect(),
    tool_latency: Tool::ALL
        .iter()
        .map(|tool| metrics::histogram!("tool_call_duration_seconds", "tool" => tool.as_str()))
        .collect(),
    upstream_calls: SourceType::ALL
        .iter()
        .map(|source_type| {
            SourceOutcome::ALL
                .iter()
                .map(|outcome| {
                    metrics::counter!("upstream_calls_total",
                        "source_type" => source_type.as_str(), "outcome" => outcome.as_str())
                })
                .collect()
        })
        .collect(),
    upstream_latency: SourceType::ALL
        .iter()
        .map(|source_type| {
            metrics::histogram!("upstream_call_duration_seconds",
                "source_type" => source_type.as_str())
        })
        .collect(),
});

/// Counts a tool call and records its duration.
pub fn tool_call(tool: Tool, status: Status, elapsed: Duration) {
    METERS.tool_calls[tool as usize][status as usize].increment(1);
    METERS.tool_latency[tool as usize].record(elapsed.as_secs_f64());
}

/// Counts an upstream call and records its duration.
pub fn upstream_call(source_type: SourceType, outcome: SourceOutcome, elapsed: Duration) {
    METERS.upstream_calls[source_type as usize][outcome as usize].increment(1);
    METERS.upstream_latency[source_type as usize].record(elapsed.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_set_is_at_its_enum_index() {
        assert!(Tool::ALL.iter().enumerate().all(|(i, t)| *t as usize == i));
        assert!(
            Status::ALL
                .iter()
                .enumerate()
                .all(|(i, s)| *s as usize == i)
        );
        assert!(
            SourceType::ALL
                .iter()
                .enumerate()
                .all(|(i, t)| *t as usize == i)
        );
        assert!(
            SourceOutcome::ALL
                .iter()
                .enumerate()
                .all(|(i, o)| *o as usize == i)
        );
    }
}
