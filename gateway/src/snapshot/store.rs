//! The current snapshot, shared by every request: swapped atomically, with its health (stale
//! when the database could not be read, and when it was last known current).

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use arc_swap::ArcSwapOption;

use super::Snapshot;

/// Shared holder of the current snapshot and its health.
#[derive(Debug, Default)]
pub struct SnapshotStore {
    current: ArcSwapOption<Snapshot>,
    stale: AtomicBool,
    /// Milliseconds since the Unix epoch of the last successful load or update.
    refreshed_at_ms: AtomicU64,
}

impl SnapshotStore {
    /// The current snapshot; `None` until the first load.
    pub fn load(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// `read` of the current snapshot, without taking a count of it (on every request, that
    /// count would be a write to one cache line from every core); `None` until the first load.
    pub fn read<R>(&self, read: impl FnOnce(&Snapshot) -> R) -> Option<R> {
        self.current.load().as_deref().map(read)
    }

    /// Whether the database could not be read at the last attempt.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// Seconds since the snapshot was last known to be current.
    pub fn age_secs(&self) -> f64 {
        let then = self.refreshed_at_ms.load(Ordering::Relaxed);
        (now_ms().saturating_sub(then)) as f64 / 1000.0
    }

    pub(super) fn publish(&self, snapshot: Snapshot) {
        self.current.store(Some(Arc::new(snapshot)));
        self.fresh();
    }

    fn fresh(&self) {
        self.stale.store(false, Ordering::Relaxed);
        self.refreshed_at_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub(super) fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}
