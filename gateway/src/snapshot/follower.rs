//! Keeping the store current: LISTEN for the control plane's notifications, patch the servers
//! they name (queued newest first, see [`Pending`]), reload everything after a reconnect, on a
//! timer and after a large burst, and back off while the database is away.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use super::{Loader, SnapshotStore};

/// Channel the control plane notifies on.
pub const CHANNEL: &str = "mcp_config";
/// The notification that the OAuth signing keys changed (others name servers).
const SIGNING_KEYS_CHANGED: &str = "signing_keys";
/// The notification that anything may have changed.
const EVERYTHING_CHANGED: &str = "*";
/// A batch naming more servers than this is applied as one full reload (one query for all,
/// instead of a long `= any($1)` list and as many map updates).
pub const FULL_RELOAD_AT: usize = 10_000;

/// Keeps `store` current until the process ends: first load (retrying), then LISTEN.
pub async fn keep_current(store: Arc<SnapshotStore>, loader: Loader, resync: Duration) {
    let mut backoff = Backoff::default();
    loop {
        match follow(&store, &loader, resync).await {
            Ok(()) => backoff = Backoff::default(),
            Err(err) => {
                store.mark_stale();
                let wait = backoff.next();
                tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, stale = store.load().is_some(),
                    "configuration database unreachable; serving the last snapshot");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// One listener session: listen, load everything, then apply notifications as they come and
/// reload everything on the timer. Returns on any database error (the caller backs off).
async fn follow(
    store: &SnapshotStore,
    loader: &Loader,
    resync: Duration,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&loader.pool).await?;
    // Listening starts before the full load, so no change can fall between the two.
    listener.listen(CHANNEL).await?;
    reload(store, loader, "connect").await?;
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending = Pending::default();
    loop {
        if pending.is_empty() {
            tokio::select! {
                notification = listener.try_recv() => match notification? {
                    Some(notification) => pending.add(notification.payload()),
                    None => return lost(),
                },
                _ = timer.tick() => {
                    reload(store, loader, "resync").await?;
                    continue;
                }
            }
        }
        // Everything already waiting joins the queue before the next patch, at its front.
        while let Some(more) = listener.try_recv().now_or_never() {
            match more? {
                Some(notification) => pending.add(notification.payload()),
                None => return lost(),
            }
        }
        apply_next(store, loader, &mut pending).await?;
    }
}

/// The listener's connection dropped: changes may have been missed, so the caller reconnects
/// and reloads everything.
fn lost() -> Result<(), sqlx::Error> {
    tracing::warn!("LISTEN connection lost; reconnecting and reloading");
    Ok(())
}

/// Loads everything; `reason` labels the reload in the metrics.
async fn reload(
    store: &SnapshotStore,
    loader: &Loader,
    reason: &'static str,
) -> Result<(), sqlx::Error> {
    metrics::counter!("config_full_reloads_total", "reason" => reason).increment(1);
    let started = Instant::now();
    let version = store.load().map_or(1, |s| s.version + 1);
    let snapshot = loader.full(version).await?;
    tracing::info!(
        servers = snapshot.len(),
        version,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "configuration loaded"
    );
    store.publish(snapshot);
    Ok(())
}

/// Changes notified and not yet applied. A payload is `signing_keys`, `*` (anything), or
/// server ids separated by commas; any of them may end in `@` and the milliseconds since the
/// epoch of the transaction that sent it (for the lag metric).
///
/// Servers queue newest first and are applied [`PATCH_CHUNK`] at a time, so a change made
/// during a long burst (a rotation re-sealing every source) waits for one chunk, not for the
/// burst; a queue longer than [`full_reload_at`] is one full reload instead.
#[derive(Debug, Default)]
pub struct Pending {
    order: VecDeque<Uuid>,
    queued: HashSet<Uuid>,
    everything: bool,
    signing_keys: bool,
    /// When the oldest change waiting was made (ms since the epoch), if it said.
    oldest_ms: Option<i64>,
}

/// Servers re-read per patch at most: a patch of this many takes tens of milliseconds, and
/// fewer, larger patches drain a burst sooner than many small ones.
pub const PATCH_CHUNK: usize = 2_000;

/// Past this many servers waiting (half of those served, at least [`FULL_RELOAD_AT`]), one
/// full reload is cheaper than patches.
fn full_reload_at(served: usize) -> usize {
    FULL_RELOAD_AT.max(served / 2)
}

impl Pending {
    /// Adds one notification's payload.
    pub fn add(&mut self, payload: &str) {
        let (body, at) = match payload.rsplit_once('@') {
            Some((body, at)) => (body, at.parse::<i64>().ok()),
            None => (payload, None),
        };
        if let Some(at) = at {
            self.oldest_ms = Some(self.oldest_ms.map_or(at, |oldest| oldest.min(at)));
        }
        match body {
            SIGNING_KEYS_CHANGED => self.signing_keys = true,
            EVERYTHING_CHANGED => self.everything = true,
            ids => {
                for id in ids.split(',') {
                    match id.parse() {
                        Ok(id) => {
                            if self.queued.insert(id) {
                                self.order.push_front(id);
                            }
                        }
                        Err(_) => {
                            tracing::warn!("unreadable change notification; reloading everything");
                            self.everything = true;
                        }
                    }
                }
            }
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty() && !self.everything && !self.signing_keys
    }

    /// Whether what waits is better applied as one full reload.
    pub fn needs_full_reload(&self, served: usize) -> bool {
        self.everything || self.order.len() > full_reload_at(served)
    }

    /// The next servers to re-read, newest first.
    fn take_chunk(&mut self) -> Vec<Uuid> {
        let n = self.order.len().min(PATCH_CHUNK);
        let chunk: Vec<Uuid> = self.order.drain(..n).collect();
        for id in &chunk {
            self.queued.remove(id);
        }
        chunk
    }

    fn clear(&mut self) {
        let oldest_ms = self.oldest_ms;
        *self = Self::default();
        self.oldest_ms = oldest_ms;
    }
}

/// Applies the next chunk of `pending` (or everything at once), then, if nothing is left,
/// records how long the oldest change waited.
async fn apply_next(
    store: &SnapshotStore,
    loader: &Loader,
    pending: &mut Pending,
) -> Result<(), sqlx::Error> {
    match store.load() {
        Some(base) if !pending.needs_full_reload(base.len()) => {
            let ids = pending.take_chunk();
            let keys_changed = std::mem::take(&mut pending.signing_keys);
            metrics::histogram!("config_patch_servers").record(ids.len() as f64);
            let next = loader.patch(&base, &ids, keys_changed).await?;
            tracing::debug!(
                changed = ids.len(),
                waiting = pending.order.len(),
                version = next.version,
                "configuration updated"
            );
            store.publish(next);
        }
        _ => {
            pending.clear();
            reload(store, loader, "burst").await?;
        }
    }
    if pending.is_empty()
        && let Some(oldest) = pending.oldest_ms.take()
    {
        let lag_ms = chrono::Utc::now()
            .timestamp_millis()
            .saturating_sub(oldest)
            .max(0);
        metrics::histogram!("config_notification_lag_seconds").record(lag_ms as f64 / 1000.0);
    }
    Ok(())
}

/// Exponential backoff from 100 ms to 10 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(10));
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "6f2c1c9e-3b7a-4d0e-9a51-0c8f3e2d1b4a";
    const B: &str = "0b8e4f6a-9c2d-4e1f-8a3b-5d7c9e1f2a4b";

    #[test]
    fn payloads_queue_servers_newest_first_once_each() {
        let mut pending = Pending::default();
        pending.add(&format!("{A}@1000"));
        pending.add(&format!("{B},{A}@900"));
        assert_eq!(
            pending.order,
            [B.parse::<Uuid>().unwrap(), A.parse().unwrap()]
        );
        assert_eq!(pending.oldest_ms, Some(900));
        assert!(!pending.needs_full_reload(0));
        assert_eq!(pending.take_chunk().len(), 2);
        assert!(pending.is_empty());
    }

    #[test]
    fn old_payloads_keys_everything_and_garbage() {
        let mut pending = Pending::default();
        pending.add(A);
        assert_eq!(pending.order.len(), 1);
        assert_eq!(pending.oldest_ms, None);
        pending.add("signing_keys@5");
        assert!(pending.signing_keys && !pending.needs_full_reload(0));
        pending.add("not-a-uuid");
        assert!(
            pending.needs_full_reload(0),
            "unreadable: reload everything"
        );
        let mut pending = Pending::default();
        pending.add("*@7");
        assert!(pending.needs_full_reload(1_000_000));
    }

    #[test]
    fn a_long_queue_is_one_full_reload() {
        let mut pending = Pending::default();
        for _ in 0..=FULL_RELOAD_AT {
            pending.add(&Uuid::new_v4().to_string());
        }
        assert!(pending.needs_full_reload(100));
        assert!(
            !pending.needs_full_reload(4 * FULL_RELOAD_AT),
            "under half of those served"
        );
        assert_eq!(pending.take_chunk().len(), PATCH_CHUNK);
    }
}
