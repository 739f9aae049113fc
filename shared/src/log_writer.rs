//! Where formatted log lines go: appended to one bounded in-memory batch, which a thread of its
//! own writes out every [`EVERY`] (sooner once [`EARLY`] bytes wait) with one write.
//!
//! Why not a channel with a thread blocked on it (tracing-appender's non-blocking writer, used
//! before): at thousands of lines a second its writer thread woke for nearly every line,
//! spinning and yielding in the channel's receive and then writing each small drain with its
//! own system call. Measured under the gateway's benchmark on two cores: 3,500 `sched_yield`
//! and 2,500 `write` calls a second, each taking a core from the requests. Here a line costs
//! a short lock and a copy, the writer sleeps between batches, and a request never waits for
//! the destination: when [`CAPACITY`] bytes wait (a stalled terminal or log pipe), further lines
//! are dropped and counted, never waited for.

use std::{
    io::Write,
    sync::{
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits before it is written.
pub const EVERY: Duration = Duration::from_millis(20);
/// Bytes waiting that wake the writer before its time.
pub const EARLY: usize = 256 * 1024;
/// Bytes waiting at most; lines beyond are dropped.
pub const CAPACITY: usize = 4 * 1024 * 1024;

struct Shared {
    batch: Mutex<Vec<u8>>,
    /// The writer waits on it between batches.
    wake: Condvar,
    stopping: AtomicBool,
    dropped: AtomicU64,
}

impl Shared {
    fn batch(&self) -> MutexGuard<'_, Vec<u8>> {
        self.batch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side, for the subscriber: cheap to clone, never blocks on the destination.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// The writer thread; dropping it writes what waits and ends the thread.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer to `destination` and the guard of its thread.
pub fn spawn(destination: impl Write + Send + 'static) -> std::io::Result<(LogWriter, Guard)> {
    let shared = Arc::new(Shared {
        batch: Mutex::new(Vec::with_capacity(EARLY)),
        wake: Condvar::new(),
        stopping: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || write_batches(&shared, destination))?
    };
    let guard = Guard {
        shared: shared.clone(),
        thread: Some(thread),
    };
    Ok((LogWriter { shared }, guard))
}

/// Writes batches until stopped, then what is left.
fn write_batches(shared: &Shared, mut destination: impl Write) {
    let mut out = Vec::with_capacity(EARLY);
    loop {
        let stopping = {
            let mut batch = shared.batch();
            let stopping = shared.stopping.load(Ordering::Acquire);
            if batch.len() < EARLY && !stopping {
                batch = shared
                    .wake
                    .wait_timeout(batch, EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut *batch, &mut out);
            stopping
        };
        if !out.is_empty() {
            // Nowhere to report a failed log write to; the next batch tries again.
            let _ = destination
                .write_all(&out)
                .and_then(|()| destination.flush());
            out.clear();
        }
        if stopping {
            return;
        }
    }
}

impl LogWriter {
    /// Lines dropped since start because [`CAPACITY`] bytes were waiting.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Write for LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        (&*self).write(line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the subscriber writes through: a borrow, so a line counts no reference to the shared
/// batch (a write to a cache line every logging thread shares).
impl Write for &LogWriter {
    /// Takes one formatted line (the subscriber writes each line with one call).
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut batch = self.shared.batch();
        if batch.len() + line.len() > CAPACITY {
            drop(batch);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(line.len());
        }
        let below = batch.len() < EARLY;
        batch.extend_from_slice(line);
        if below && batch.len() >= EARLY {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> &'a LogWriter {
        self
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Under the lock, so the writer is either before its check or already waiting.
        let batch = self.shared.batch();
        self.shared.wake.notify_one();
        drop(batch);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        sync::mpsc,
        time::{Duration, Instant},
    };

    /// A destination that hands each write to the test.
    struct Sent(mpsc::Sender<Vec<u8>>);

    impl Write for Sent {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.send(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_arrive_in_order_batched_and_all_on_stop() {
        let (sent, written) = mpsc::channel();
        let (mut writer, guard) = spawn(Sent(sent)).unwrap();
        writer.write_all(b"one\n").unwrap();
        let first = written.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, b"one\n", "written within its time, without a stop");
        for n in 0..1000 {
            writer.write_all(format!("{n}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let rest: Vec<u8> = written.try_iter().flatten().collect();
        let expected: String = (0..1000).map(|n| format!("{n}\n")).collect();
        assert_eq!(String::from_utf8(rest).unwrap(), expected);
        assert_eq!(writer.dropped(), 0);
    }

    #[test]
    fn a_stalled_destination_never_blocks_a_line_and_drops_are_counted() {
        /// Blocks every write until the test lets it go.
        struct Stalled(Arc<Mutex<()>>);
        impl Write for Stalled {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                drop(self.0.lock().unwrap());
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let (mut writer, guard) = spawn(Stalled(gate.clone())).unwrap();
        let line = [b'x'; 1000];
        let started = Instant::now();
        for _ in 0..20_000 {
            writer.write_all(&line).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no line waited");
        // At most two capacities' worth were taken: the batch being written and the next.
        let dropped = writer.dropped();
        assert!(
            dropped >= 20_000 - 2 * (CAPACITY / line.len()) as u64,
            "{dropped}"
        );
        drop(held);
        drop(guard);
    }
}
