//! Background tasks of a daemon (housekeeping, config followers, `/metrics`): each runs until
//! one token, a child of the daemon's root token, is cancelled, and a stop waits for all of them
//! to end, so a daemon stops its tasks at a defined point of its shutdown (and nothing outlives
//! the root).

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Tasks that run beside the server until their token, a child of the root, is cancelled (at
/// the latest when this is dropped).
pub struct Background {
    stop: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// Tasks stopped by cancelling `stop` (a child of the caller's root token).
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            stop,
            tasks: Vec::new(),
        }
    }

    /// Runs `task` until the background stops.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        let handle = tokio::spawn(async move {
            stop.run_until_cancelled_owned(task).await;
        });
        self.tasks.push((name, handle));
    }

    /// Stops every task and waits for each to end (at its next await point).
    pub async fn stop(mut self) {
        self.stop.cancel();
        for (name, task) in std::mem::take(&mut self.tasks) {
            if let Err(err) = task.await {
                tracing::error!(task = name, error = %err, "a background task failed");
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
