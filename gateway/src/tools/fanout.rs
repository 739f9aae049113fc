//! How much upstream work one MCP server may cause at once. A `search` costs one upstream call
//! per source (up to [`MAX_SOURCES_PER_SERVER`]), so a few callers of a large server could
//! otherwise keep hundreds of calls in flight to its upstreams (and their token endpoints).
//! Each server gets `GATEWAY_UPSTREAM_CALLS_PER_SERVER` slots per replica, shared by all its
//! callers; a call waits for a slot within its own deadline, and a source whose call could not
//! start in time counts as timed out, like a slow one.
//!
//! Choice: a bound on calls in flight rather than a smaller cap on sources searched per call,
//! because it leaves every source of a server searchable while bounding what the server can
//! cost upstreams and this process, whoever calls it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

pub use shared::model::MAX_SOURCES_PER_SERVER;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::types::SourceError;

/// Slot pools by server. Only pools in use are held: an idle server's pool is dropped and
/// made again (full) on its next call.
pub struct UpstreamSlots {
    per_server: usize,
    pools: Mutex<Pools>,
}

struct Pools {
    by_server: HashMap<Uuid, Weak<Semaphore>>,
    /// Pools of idle servers are swept out when the map grows past this.
    sweep_at: usize,
}

/// The map is swept no earlier than this size.
const SWEEP_FLOOR: usize = 1024;

impl UpstreamSlots {
    /// `per_server` calls in flight per server.
    pub fn new(per_server: usize) -> Self {
        Self {
            per_server: per_server.max(1),
            pools: Mutex::new(Pools {
                by_server: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            }),
        }
    }

    /// The slot pool of `server`, shared by every call to it while any is running.
    pub fn of(&self, server: Uuid) -> Arc<Semaphore> {
        let mut pools = self.pools.lock().expect("slot pools lock");
        if let Some(pool) = pools.by_server.get(&server).and_then(Weak::upgrade) {
            return pool;
        }
        if pools.by_server.len() >= pools.sweep_at {
            pools.by_server.retain(|_, pool| pool.strong_count() > 0);
            pools.sweep_at = (pools.by_server.len() * 2).max(SWEEP_FLOOR);
        }
        let pool = Arc::new(Semaphore::new(self.per_server));
        pools.by_server.insert(server, Arc::downgrade(&pool));
        pool
    }
}

/// Runs `call` once a slot of `pool` is free, all within `deadline` (the wait included); the
/// call gets what is left of the deadline.
pub async fn in_slot<T, F, Fut>(
    pool: &Semaphore,
    deadline: Duration,
    call: F,
) -> Result<T, SourceError>
where
    F: FnOnce(Duration) -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    let started = Instant::now();
    // A free slot is taken at once, without arming the wait's timer (the common case).
    let _slot = match pool.try_acquire() {
        Ok(slot) => slot,
        Err(_) => match tokio::time::timeout(deadline, pool.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(SourceError::TimedOut(deadline)),
        },
    };
    let waited = started.elapsed();
    match call(deadline.saturating_sub(waited)).await {
        // Counted from the caller's start, the wait included: the deadline when the rest of it
        // ran out, a shorter figure when the source stopped sooner (a database's statement
        // timeout), so the message names what happened.
        Err(SourceError::TimedOut(after)) => {
            Err(SourceError::TimedOut((after + waited).min(deadline)))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_shares_its_slots_while_in_use_and_idle_pools_go() {
        let slots = UpstreamSlots::new(2);
        let server = Uuid::new_v4();
        let pool = slots.of(server);
        let _held = pool.clone().acquire_owned().await.unwrap();
        assert_eq!(slots.of(server).available_permits(), 1, "the same pool");
        assert_eq!(slots.of(Uuid::new_v4()).available_permits(), 2);
        drop((_held, pool));
        assert_eq!(slots.of(server).available_permits(), 2, "made again");
    }

    #[tokio::test]
    async fn waiting_for_a_slot_counts_against_the_deadline() {
        let pool = Semaphore::new(1);
        let _taken = pool.acquire().await.unwrap();
        let deadline = Duration::from_millis(50);
        let result = in_slot(&pool, deadline, |_| async { Ok(()) }).await;
        assert_eq!(result, Err(SourceError::TimedOut(deadline)));
    }

    #[tokio::test]
    async fn a_source_that_stops_before_the_deadline_is_reported_with_its_own_figure() {
        let pool = Semaphore::new(1);
        let deadline = Duration::from_millis(2000);
        let statement_timeout = Duration::from_millis(1600);
        let cut = in_slot(&pool, deadline, |_| async {
            Err::<(), _>(SourceError::TimedOut(statement_timeout))
        })
        .await
        .unwrap_err();
        let SourceError::TimedOut(after) = cut else {
            panic!("{cut:?}")
        };
        assert!(after >= statement_timeout && after < deadline, "{after:?}");
        let ran_out = in_slot(&pool, deadline, |rest| async move {
            Err::<(), _>(SourceError::TimedOut(rest))
        })
        .await;
        assert_eq!(ran_out, Err(SourceError::TimedOut(deadline)));
    }
}
