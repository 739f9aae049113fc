//! Log output for both daemons: human-readable lines for a terminal or one JSON object per line
//! for a log pipeline, filtered by `RUST_LOG` when set and by the `log_level` setting otherwise.
//!
//! Lines are formatted on the thread that logs and written by a thread of their own through a
//! bounded queue: a request never waits for standard error (a slow terminal or a stalled log
//! pipe used to stall every request thread). When the queue is full, lines are dropped and
//! counted ([`dropped_lines`], exported as `log_lines_dropped_total`), never waited for.

use std::sync::{Mutex, OnceLock};

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

/// Libraries that log at INFO for every request or connection (rmcp's `input stream
/// terminated` and `serve finished`, hyper's connection handling): warnings only, unless the
/// filter names them (`LOG_LEVEL=info,rmcp=info` brings rmcp's lines back).
const PER_REQUEST_CHATTER: [&str; 4] = ["rmcp", "hyper", "hyper_util", "h2"];

/// Lines waiting for the writer thread at most (each a formatted line of a few hundred bytes).
const QUEUED_LINES: usize = 64 * 1024;

/// Bytes the writer thread gathers before writing.
const WRITE_BUFFER: usize = 64 * 1024;

/// The writer thread's guard (dropping it flushes what is queued) and its drop counter.
static WRITER: OnceLock<(ErrorCounter, Mutex<Option<WorkerGuard>>)> = OnceLock::new();

/// The filter: `RUST_LOG` if set and valid, else `level`, after the quiet defaults for the
/// libraries' per-request chatter (a later directive for the same target replaces an earlier one,
/// so naming a library in the filter overrides its default).
fn filter(level: &str) -> EnvFilter {
    let given = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .unwrap_or_else(|| level.to_owned());
    let mut directives: Vec<String> = PER_REQUEST_CHATTER
        .iter()
        .map(|target| format!("{target}=warn"))
        .collect();
    directives.push(given);
    EnvFilter::try_new(directives.join(","))
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

use crate::LogFormat;

/// Builds the subscriber both daemons use, writing to `writer` without terminal colours. Tests
/// pass an in-memory writer to check what the real format would print.
pub fn subscriber<W>(
    format: LogFormat,
    level: &str,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_coloured(format, level, writer, false)
}

/// Whether human lines get terminal colours: only on a terminal, and never with `NO_COLOR`
/// set. A log file or pipe gets plain text (the colour codes made each line a third longer and
/// cost their formatting on every request).
fn colours_for_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn subscriber_coloured<W>(
    format: LogFormat,
    level: &str,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // RUST_LOG wins so an operator can turn on one module's debug output without a config change.
    let registry = tracing_subscriber::registry().with(filter(level));
    match format {
        LogFormat::Human => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(ansi)
                    .with_target(true),
            ),
        ),
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(writer),
            ),
        ),
    }
}

/// Installs the global subscriber writing to standard error through the bounded queue (see
/// the module's documentation). Call [`flush`] before the process exits.
pub fn init(format: LogFormat, level: &str) {
    install(format, level, std::io::stderr(), colours_for_stderr());
}

/// [`init`] writing to `destination` instead of standard error (the benchmark logs to a file
/// at the daemons' default level).
pub fn init_with(
    format: LogFormat,
    level: &str,
    destination: impl std::io::Write + Send + 'static,
) {
    install(format, level, destination, false);
}

fn install(
    format: LogFormat,
    level: &str,
    destination: impl std::io::Write + Send + 'static,
    ansi: bool,
) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        // The writer thread writes what is queued and flushes when the queue is empty: buffered,
        // a burst of lines is one write instead of one system call a line.
        .finish(std::io::BufWriter::with_capacity(WRITE_BUFFER, destination));
    let counter = writer.error_counter();
    // A second call (tests, embedding) keeps the first subscriber instead of panicking.
    if subscriber_coloured(format, level, writer, ansi)
        .try_init()
        .is_ok()
    {
        let _ = WRITER.set((counter, Mutex::new(Some(guard))));
    }
}

/// Writes out the lines still queued (the daemons call it last, before exiting).
pub fn flush() {
    if let Some((_, guard)) = WRITER.get() {
        drop(guard.lock().map(|mut g| g.take()));
    }
}

/// Log lines dropped since start because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    WRITER
        .get()
        .map_or(0, |(counter, _)| counter.dropped_lines() as u64)
}

/// An in-memory log destination: hand it to [`subscriber`] to see exactly what the daemons
/// would print (tests use it to check what is, and is not, logged).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer lock")).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("log buffer lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
