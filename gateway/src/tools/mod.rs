//! The two MCP tools, `search` and `fetch`, in the shape ChatGPT connectors and deep research
//! require: exact input schemas, an output schema, `readOnlyHint`, and the result both as
//! `structuredContent` and as the same JSON in one text item. Upstream trouble is a tool error
//! with a short reason (the agent sees it and can adapt), never a protocol error.

pub mod fanout;
pub mod ids;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::{
    caps,
    observe::audit::{Report, SourceCall, Status},
    snapshot::ServedServer,
    sources::{Document, Registry, SourceError, merge_fairly},
    tools::fanout::{MAX_SOURCES_PER_SERVER, UpstreamSlots, in_slot},
};

/// Longest accepted `query`, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Longest accepted `id`, in bytes.
pub const MAX_ID_BYTES: usize = 4096;

/// What the tools need besides the server.
pub struct Tools {
    pub registry: Registry,
    pub source_timeout: Duration,
    pub max_results: usize,
    /// Upstream calls in flight per server.
    pub slots: UpstreamSlots,
}

fn object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

/// The tool list, the same on every server. Built once: rmcp looks a tool up on every
/// `tools/call`, and the schemas need not be rebuilt for each.
pub fn definitions() -> &'static [Tool] {
    static DEFINITIONS: std::sync::LazyLock<Vec<Tool>> =
        std::sync::LazyLock::new(build_definitions);
    &DEFINITIONS
}

fn build_definitions() -> Vec<Tool> {
    let read_only = ToolAnnotations::new().read_only(true);
    vec![
        Tool::new(
            "search",
            "Search this server's sources (mail, files, data) and return matching items. \
             Use `fetch` with a result's id to read it in full.",
            object(json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]})),
        )
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {"results": {"type": "array", "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "url": {"type": "string"}},
                "required": ["id", "title", "url"],
            }}},
            "required": ["results"],
        })))
        .with_annotations(read_only.clone()),
        Tool::new(
            "fetch",
            "Read one item in full by the id a `search` result gave.",
            object(json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]})),
        )
        .with_raw_output_schema(object(json!({
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "title": {"type": "string"}, "text": {"type": "string"},
                "url": {"type": "string"}, "metadata": {"type": "object"},
            },
            "required": ["id", "title", "text", "url", "metadata"],
        })))
        .with_annotations(read_only),
    ]
}

/// A tool error an agent can read.
fn failure(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// The string argument `name`, trimmed, or a sentence saying what is wrong with it.
fn argument<'a>(args: &'a JsonObject, name: &str, max: usize) -> Result<&'a str, String> {
    let value = match args.get(name) {
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(format!("`{name}` must be a string")),
        None => return Err(format!("`{name}` is required")),
    };
    if value.is_empty() {
        return Err(format!("`{name}` must not be empty"));
    }
    // Bytes first (cheap); characters decide, as the message says.
    if value.len() > max && value.chars().count() > max {
        return Err(format!("`{name}` is too long (at most {max} characters)"));
    }
    Ok(value)
}

impl Tools {
    /// `search {query}`: every source at once, each under the deadline, merged fairly.
    pub async fn search(
        &self,
        server: &ServedServer,
        args: &JsonObject,
    ) -> (CallToolResult, Report) {
        let query = match argument(args, "query", MAX_QUERY_CHARS) {
            Ok(query) => query,
            Err(problem) => return (failure(problem), Report::refused("invalid_arguments")),
        };
        if server.sources.len() > MAX_SOURCES_PER_SERVER {
            tracing::warn!(server_id = %server.id, sources = server.sources.len(),
                "server has more sources than a search covers; the first {MAX_SOURCES_PER_SERVER} are searched");
        }
        let slots = self.slots.of(server.id);
        let calls = server
            .sources
            .iter()
            .take(MAX_SOURCES_PER_SERVER)
            .map(|source| {
                let slots = &slots;
                async move {
                    let started = Instant::now();
                    let outcome = in_slot(slots, self.source_timeout, |deadline| {
                        self.registry
                            .search(source, query, self.max_results, deadline)
                    })
                    .await;
                    (source, outcome, started.elapsed())
                }
            });
        let outcomes = futures::future::join_all(calls).await;

        let mut lists = Vec::with_capacity(outcomes.len());
        let mut failures = Vec::new();
        let mut sources = Vec::with_capacity(outcomes.len());
        for (source, outcome, latency) in outcomes {
            let results = outcome.as_ref().map_or(0, Vec::len);
            sources.push(SourceCall::of(source, &outcome, latency, results));
            match outcome {
                Ok(hits) => lists.push(
                    hits.into_iter()
                        .filter_map(|hit| {
                            let id = ids::encode(source.source_type, source.id, &hit.upstream_id);
                            // An id `fetch` would refuse is no use to the agent.
                            (id.len() <= MAX_ID_BYTES).then(|| {
                                json!({"id": id, "title": caps::title(hit.title), "url": caps::url(hit.url)})
                            })
                        })
                        .collect(),
                ),
                Err(error) => {
                    tracing::warn!(server_id = %server.id, source_id = %source.id, source_type = source.source_type.as_str(), %error, "source search failed");
                    failures.push(format!(
                        "{} source {}: {error}",
                        source.source_type.as_str(),
                        source.id
                    ));
                }
            }
        }
        if lists.is_empty() && !failures.is_empty() {
            let report = Report {
                status: Status::Error,
                error_class: Some("all_sources_failed"),
                result_count: 0,
                sources,
            };
            return (
                failure(format!("Every source failed. {}", failures.join("; "))),
                report,
            );
        }
        let results = caps::results(merge_fairly(lists, self.max_results));
        let report = Report {
            status: if failures.is_empty() {
                Status::Ok
            } else {
                Status::Partial
            },
            error_class: None,
            result_count: results.len(),
            sources,
        };
        (
            CallToolResult::structured(json!({"results": results})),
            report,
        )
    }

    /// `fetch {id}`: only ids of this server's own sources; anything else is "not found".
    pub async fn fetch(
        &self,
        server: &ServedServer,
        args: &JsonObject,
    ) -> (CallToolResult, Report) {
        let id = match argument(args, "id", MAX_ID_BYTES) {
            Ok(id) => id,
            Err(problem) => return (failure(problem), Report::refused("invalid_arguments")),
        };
        let not_found = || {
            (
                failure(format!(
                    "No item with id {id:?} is available on this server."
                )),
                Report::refused("not_found"),
            )
        };
        let Some(parsed) = ids::decode(id) else {
            return not_found();
        };
        let Some(source) = server
            .source(parsed.source_id)
            .filter(|s| s.source_type == parsed.source_type)
        else {
            return not_found();
        };
        let started = Instant::now();
        let outcome = in_slot(&self.slots.of(server.id), self.source_timeout, |deadline| {
            self.registry.fetch(source, parsed.upstream, deadline)
        })
        .await;
        let call = SourceCall::of(
            source,
            &outcome,
            started.elapsed(),
            usize::from(outcome.is_ok()),
        );
        let report = |status, error_class| Report {
            status,
            error_class,
            result_count: call.results,
            sources: vec![call.clone()],
        };
        match outcome {
            Ok(document) => (
                CallToolResult::structured(fetched(id, document)),
                report(Status::Ok, None),
            ),
            Err(SourceError::NotFound) => (not_found().0, report(Status::Error, Some("not_found"))),
            Err(error) => {
                tracing::warn!(server_id = %server.id, source_id = %source.id, %error, "source fetch failed");
                let message = format!(
                    "{} source {}: {error}",
                    source.source_type.as_str(),
                    source.id
                );
                (
                    failure(message),
                    report(Status::Error, Some("source_failed")),
                )
            }
        }
    }
}

/// The `fetch` result for a document, every part cut to its cap and the whole under
/// [`caps::MAX_RESULT_BYTES`].
fn fetched(id: &str, document: Document) -> Value {
    let mut result = json!({
        "id": id,
        "title": caps::title(document.title),
        "text": "",
        "url": caps::url(document.url),
        "metadata": caps::metadata(document.metadata),
    });
    let budget = caps::MAX_RESULT_BYTES.saturating_sub(caps::serialized_len(&result));
    result["text"] = caps::text_within(caps::text(document.text), budget).into();
    result
}

/// What `initialize` tells the agent about a server.
pub fn instructions(server: &ServedServer) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for source in &server.sources {
        let name = source.source_type.as_str();
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => counts.push((name, 1)),
        }
    }
    let listed = if counts.is_empty() {
        "no sources yet".to_owned()
    } else {
        counts
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "MCP server \"{}\" searches these sources: {listed}. Call `search` with a query to find \
         items, then `fetch` with a result's id to read one in full.",
        server.name
    )
}
