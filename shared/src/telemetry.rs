//! Log output for both daemons: human-readable lines for a terminal or one JSON object per line
//! for a log pipeline, filtered by `RUST_LOG` when set and by the `log_level` setting otherwise.
//!
//! Lines are formatted on the thread that logs and written in batches by a thread of their own
//! (`log_writer.rs`): a request never waits for standard error (a slow terminal or a stalled log
//! pipe used to stall every request thread). When the batch is full, lines are dropped and
//! counted ([`dropped_lines`], exported as `log_lines_dropped_total`), never waited for.

use std::{
    cell::RefCell,
    fmt::Write as _,
    sync::{Mutex, OnceLock},
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::field::{Field, Visit};
use tracing_subscriber::{
    EnvFilter,
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::{
        MakeWriter,
        format::{DefaultVisitor, Writer},
        time::FormatTime,
    },
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Libraries that log at INFO for every request or connection (rmcp's `input stream
/// terminated` and `serve finished`, hyper's connection handling): warnings only, unless the
/// filter names them (`LOG_LEVEL=info,rmcp=info` brings rmcp's lines back).
const PER_REQUEST_CHATTER: [&str; 4] = ["rmcp", "hyper", "hyper_util", "h2"];

/// The writer thread's guard (dropping it writes what waits) and the sending side, which
/// counts drops.
static WRITER: OnceLock<(log_writer::LogWriter, Mutex<Option<log_writer::Guard>>)> =
    OnceLock::new();

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

use crate::{LogFormat, log_writer};

/// The time on each line, as tracing-subscriber's default timer prints it (RFC 3339 in UTC with
/// microseconds: `2026-12-07T00:05:28.123456Z`), with the part up to the second formatted once a
/// second per thread: formatting the whole date for every line was a fifth of the cost of the
/// gateway's access line.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineTime;

impl FormatTime for LineTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        thread_local! {
            /// The second last formatted, and its text up to the seconds.
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seconds = now.as_secs();
        SECOND.with_borrow_mut(|(cached, text)| {
            if *cached != seconds || text.is_empty() {
                let at = i64::try_from(seconds)
                    .ok()
                    .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                    .unwrap_or_default();
                text.clear();
                write!(text, "{}", at.format("%Y-%m-%dT%H:%M:%S"))?;
                *cached = seconds;
            }
            w.write_str(text)?;
            let mut fraction = *b".000000Z";
            let mut micros = now.subsec_micros();
            for digit in fraction[1..7].iter_mut().rev() {
                *digit = b'0' + (micros % 10) as u8;
                micros /= 10;
            }
            w.write_str(std::str::from_utf8(&fraction).unwrap_or(".000000Z"))
        })
    }
}

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

/// Fields of human lines, printed as tracing-subscriber's default prints them (`name=value`,
/// space-separated, values in their `Debug` form) but without its styling calls when there are
/// no colours: it painted every field's name and `=` with an empty style, over a third of the
/// cost of formatting the gateway's access line and its tool-call span. Colours, the message,
/// raw identifiers and errors go to the library's own visitor.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFields;

impl<'a> MakeVisitor<Writer<'a>> for PlainFields {
    type Visitor = PlainVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> PlainVisitor<'a> {
        PlainVisitor {
            writer,
            is_empty: true,
            result: Ok(()),
        }
    }
}

/// See [`PlainFields`].
pub struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    /// One field through the library's visitor, padded as it pads.
    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut library = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut library);
        self.is_empty = false;
        self.result = library.finish();
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.delegate(|library| library.record_str(field, value));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.delegate(|library| library.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        // The library skips the metadata of `log` records (already on the line).
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        if self.writer.has_ansi_escapes() || name == "message" || name.starts_with("r#") {
            return self.delegate(|library| library.record_debug(field, value));
        }
        let pad = if self.is_empty { "" } else { " " };
        self.is_empty = false;
        self.result = write!(self.writer, "{pad}{name}={value:?}");
    }
}

impl VisitOutput<std::fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.result
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        &mut self.writer
    }
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
                    .fmt_fields(PlainFields)
                    .with_timer(LineTime)
                    .with_writer(writer)
                    .with_ansi(ansi)
                    .with_target(true),
            ),
        ),
        LogFormat::Json => Box::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_timer(LineTime)
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
    let Ok((writer, guard)) = log_writer::spawn(destination) else {
        eprintln!("cannot start the log writer thread; logging to standard error directly");
        let _ = subscriber_coloured(format, level, std::io::stderr, ansi).try_init();
        return;
    };
    // A second call (tests, embedding) keeps the first subscriber instead of panicking.
    if subscriber_coloured(format, level, writer.clone(), ansi)
        .try_init()
        .is_ok()
    {
        let _ = WRITER.set((writer, Mutex::new(Some(guard))));
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
    WRITER.get().map_or(0, |(writer, _)| writer.dropped())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::time::SystemTime as LibraryTime;

    fn formatted(timer: &impl FormatTime) -> String {
        let mut text = String::new();
        timer.format_time(&mut Writer::new(&mut text)).unwrap();
        text
    }

    /// Lines of a few events and spans, printed with `fields` (the time cut off).
    fn lines_with<N>(fields: N) -> Vec<String>
    where
        N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        let logs = CapturedLogs::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(fields)
                .with_ansi(false)
                .with_writer(logs.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let error = std::io::Error::other("refused \u{1b}[31m");
            let span =
                tracing::info_span!("tool_call", host = %"a.example.com", n = 3, r#type = "box");
            let _entered = span.enter();
            tracing::info!(target: "access", method = %"POST", path = "/mcp", status = 200u16,
                ok = true, ratio = 0.5, id = ?Some(7), "request served");
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "upstream \u{1b}[2J failed"
            );
            tracing::info!(empty = tracing::field::Empty, text = "quoted \"here\"");
            tracing::info!("only a message {}", 42);
            let inner = tracing::info_span!("inner");
            inner.record("late", 1);
            inner.in_scope(|| tracing::error!(r#type = %"x", log.target = "skipped", last = -1i64));
        });
        logs.contents()
            .lines()
            .map(|line| line.split_once(' ').expect("a time").1.to_owned())
            .collect()
    }

    #[test]
    fn plain_fields_print_as_the_library_default() {
        let ours = lines_with(PlainFields);
        assert_eq!(
            ours,
            lines_with(tracing_subscriber::fmt::format::DefaultFields::new())
        );
        assert_eq!(ours.len(), 5, "{ours:#?}");
        assert!(
            ours[0].contains("method=POST path=\"/mcp\" status=200"),
            "{}",
            ours[0]
        );
    }

    #[test]
    fn line_time_reads_as_the_library_default() {
        // Read at the same second (retried across a second's boundary): the same text up to the
        // microseconds, which are six digits and a `Z`.
        let (ours, theirs) = (0..5)
            .map(|_| (formatted(&LineTime), formatted(&LibraryTime)))
            .find(|(ours, theirs)| ours[..19] == theirs[..19])
            .expect("the same second");
        assert_eq!(ours.len(), theirs.len(), "{ours} / {theirs}");
        assert_eq!(&ours[19..20], ".");
        assert!(ours[20..26].bytes().all(|b| b.is_ascii_digit()), "{ours}");
        assert!(ours.ends_with('Z'));
    }
}
