//! The tool-call audit log. Every `tools/call` becomes a record that is handed to a bounded
//! queue without waiting; one writer task stores records in batches. A slow or unreachable
//! database therefore never slows or fails a tool call: the writer retries its batch with
//! backoff, the queue fills, and further records are dropped and counted.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::model::{SourceOutcome, SourceType, Tool, UpstreamErrorClass};
use sqlx::PgPool;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{snapshot::ServedSource, sql, types::SourceError};

/// Records stored per INSERT at most.
const BATCH: usize = 1000;
/// How long the writer gathers records before storing them: fewer, larger INSERTs cost the
/// database far less than one per call.
const GATHER: Duration = Duration::from_millis(250);
/// Longest argument kept, in characters.
const MAX_ARGUMENT_CHARS: usize = 1000;

/// How a tool call ended (the words are shared with the control plane's calls API).
pub use shared::model::CallStatus as Status;

/// One source's part in a call.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCall {
    pub source_id: Uuid,
    #[serde(rename = "type")]
    pub source_type: SourceType,
    pub outcome: SourceOutcome,
    /// Why the upstream call failed, by class; absent when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<UpstreamErrorClass>,
    pub latency_ms: u64,
    pub results: usize,
}

impl SourceCall {
    /// The record of one source's call that ended with `outcome` after `latency`.
    pub fn of<T>(
        source: &ServedSource,
        outcome: &Result<T, SourceError>,
        latency: Duration,
        results: usize,
    ) -> Self {
        Self {
            source_id: source.id,
            source_type: source.source_type,
            outcome: outcome
                .as_ref()
                .map_or_else(SourceError::outcome, |_| SourceOutcome::Ok),
            error_class: outcome.as_ref().err().map(SourceError::class),
            latency_ms: latency.as_millis() as u64,
            results,
        }
    }
}

/// What a tool reports about a call besides its result.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    /// `invalid_arguments`, `not_found`, `source_failed`, `all_sources_failed`.
    pub error_class: Option<&'static str>,
    pub result_count: usize,
    pub sources: Vec<SourceCall>,
}

impl Report {
    /// A call refused before any source was asked.
    pub fn refused(error_class: &'static str) -> Self {
        Self {
            status: Status::Error,
            error_class: Some(error_class),
            result_count: 0,
            sources: Vec::new(),
        }
    }
}

/// A stored tool call.
#[derive(Debug, Clone)]
pub struct Record {
    pub called_at: DateTime<Utc>,
    pub server_id: Uuid,
    pub key_id: Option<Uuid>,
    /// The OAuth grant the call came through.
    pub grant_id: Option<Uuid>,
    /// The person who approved that grant.
    pub user_id: Option<Uuid>,
    pub tool: Tool,
    pub argument: String,
    pub duration_ms: u64,
    pub report: Report,
}

/// The argument as stored: cut to 1,000 characters.
pub fn argument(value: Option<&serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(s)) => cut(s).to_owned(),
        Some(other) => cut(&other.to_string()).to_owned(),
        None => String::new(),
    }
}

/// The first [`MAX_ARGUMENT_CHARS`] characters of `text`, as a slice (one copy, not one push a
/// character).
fn cut(text: &str) -> &str {
    match text.char_indices().nth(MAX_ARGUMENT_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Record>,
    /// Tells the writer a full batch is waiting (it otherwise sleeps out its gathering time).
    batch_ready: Arc<Notify>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// A log with room for `capacity` waiting records, and its writer (to be spawned). Once
    /// `stop` is cancelled the writer stores what is queued and ends.
    pub fn new(
        pool: PgPool,
        capacity: usize,
        stop: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send) {
        let (queue, receiver) = mpsc::channel(capacity);
        let batch_ready = Arc::new(Notify::new());
        let log = Self {
            queue,
            batch_ready: batch_ready.clone(),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (log, write_batches(pool, receiver, batch_ready, stop))
    }

    /// Queues a record; drops it (and counts the drop) when the queue is full.
    pub fn record(&self, record: Record) {
        if self.queue.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("audit_records_dropped_total").increment(1);
            return;
        }
        let waiting = self.queue.max_capacity() - self.queue.capacity();
        if waiting >= BATCH {
            // Stores one wake-up at most, however often it is called before the writer wakes.
            self.batch_ready.notify_one();
        }
    }

    /// The count of records dropped since start.
    pub fn drops(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

/// Stores batches until stopped (then drains the queue) or every sender is gone. A failed batch
/// is retried with backoff (records keep queueing, up to the queue's capacity, meanwhile).
async fn write_batches(
    pool: PgPool,
    mut receiver: mpsc::Receiver<Record>,
    batch_ready: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut wait = Duration::from_millis(100);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => received,
            () = stop.cancelled() => {
                // No new records from now on; what is queued is still received.
                receiver.close();
                receiver.recv_many(&mut batch, BATCH).await
            }
        };
        if received == 0 {
            return;
        }
        gather(&mut receiver, &mut batch, &batch_ready, &stop).await;
        // Encoded once, whatever the number of attempts.
        let columns = Columns::new(batch.drain(..));
        loop {
            match insert(&pool, &columns).await {
                Ok(()) => {
                    metrics::counter!("audit_records_written_total")
                        .increment(columns.server_id.len() as u64);
                    wait = Duration::from_millis(100);
                    break;
                }
                Err(err) => {
                    metrics::counter!("audit_write_failures_total").increment(1);
                    tracing::warn!(error = %err, records = columns.server_id.len(), retry_in_ms = wait.as_millis() as u64,
                        "cannot write audit records; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Completes `batch` with what arrives within `GATHER`: sooner when a full batch is waiting or
/// the writer is stopped. The writer sleeps meanwhile instead of waking for every record (at
/// thousands of calls a second, those wake-ups cost more than the writing).
async fn gather(
    receiver: &mut mpsc::Receiver<Record>,
    batch: &mut Vec<Record>,
    batch_ready: &Notify,
    stop: &CancellationToken,
) {
    if batch.len() + receiver.len() < BATCH && !stop.is_cancelled() {
        tokio::select! {
            () = tokio::time::sleep(GATHER) => {}
            () = batch_ready.notified() => {}
            () = stop.cancelled() => {}
        }
    }
    while batch.len() < BATCH {
        match receiver.try_recv() {
            Ok(record) => batch.push(record),
            Err(_) => return,
        }
    }
}

/// One INSERT for the whole batch, committed asynchronously (the audit log is best-effort by
/// design; a database crash may lose its last fraction of a second). Records of servers
/// deleted meanwhile are skipped.
async fn insert(pool: &PgPool, columns: &Columns) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(sql::ASYNC_COMMIT).execute(&mut *tx).await?;
    sqlx::query(sql::INSERT_TOOL_CALLS)
        .bind(&columns.server_id)
        .bind(&columns.key_id)
        .bind(&columns.grant_id)
        .bind(&columns.called_at)
        .bind(&columns.tool)
        .bind(&columns.argument)
        .bind(&columns.status)
        .bind(&columns.error_class)
        .bind(&columns.result_count)
        .bind(&columns.duration_ms)
        .bind(&columns.sources)
        .bind(&columns.user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// A batch as column arrays, for `unnest`.
#[derive(Default)]
struct Columns {
    server_id: Vec<Uuid>,
    key_id: Vec<Option<Uuid>>,
    grant_id: Vec<Option<Uuid>>,
    user_id: Vec<Option<Uuid>>,
    called_at: Vec<DateTime<Utc>>,
    tool: Vec<&'static str>,
    argument: Vec<String>,
    status: Vec<&'static str>,
    error_class: Vec<Option<&'static str>>,
    result_count: Vec<i32>,
    duration_ms: Vec<i32>,
    /// JSON text (cast to `json` by the INSERT: one serialisation, no intermediate value).
    sources: Vec<String>,
}

impl Columns {
    fn new(records: impl ExactSizeIterator<Item = Record>) -> Self {
        let n = records.len();
        let mut columns = Self {
            server_id: Vec::with_capacity(n),
            key_id: Vec::with_capacity(n),
            grant_id: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            called_at: Vec::with_capacity(n),
            tool: Vec::with_capacity(n),
            argument: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            error_class: Vec::with_capacity(n),
            result_count: Vec::with_capacity(n),
            duration_ms: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
        };
        let clamp = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        for record in records {
            columns.server_id.push(record.server_id);
            columns.key_id.push(record.key_id);
            columns.grant_id.push(record.grant_id);
            columns.user_id.push(record.user_id);
            columns.called_at.push(record.called_at);
            columns.tool.push(record.tool.as_str());
            // Postgres text cannot hold NUL.
            columns.argument.push(if record.argument.contains('\0') {
                record.argument.replace('\0', "")
            } else {
                record.argument
            });
            columns.status.push(record.report.status.as_str());
            columns.error_class.push(record.report.error_class);
            columns
                .result_count
                .push(clamp(record.report.result_count as u64));
            columns.duration_ms.push(clamp(record.duration_ms));
            columns.sources.push(
                serde_json::to_string(&record.report.sources).unwrap_or_else(|_| "[]".to_owned()),
            );
        }
        columns
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_argument_is_kept_to_its_first_thousand_characters() {
        let short = "budget ✓";
        assert_eq!(argument(Some(&json!(short))), short);
        let long = "é".repeat(MAX_ARGUMENT_CHARS + 5);
        let kept = argument(Some(&json!(long)));
        assert_eq!(kept.chars().count(), MAX_ARGUMENT_CHARS);
        assert!(long.starts_with(&kept));
        let exact = "x".repeat(MAX_ARGUMENT_CHARS);
        assert_eq!(argument(Some(&json!(exact))), exact);
        assert_eq!(argument(Some(&json!(42))), "42");
        assert_eq!(argument(None), "");
    }
}
