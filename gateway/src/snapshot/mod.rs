//! The gateway's view of the configuration: every live MCP server by routing host, with its
//! sources and their decrypted credentials. A snapshot is immutable; a new one is built aside
//! and swapped in atomically, so a request never sees a half-loaded state.
//!
//! It stays current through `LISTEN mcp_config` (the control plane's triggers name the changed
//! servers; only those are re-read), a full reload after every listener reconnect and on a
//! timer. Every notification waiting is taken before each patch and queued newest first
//! (see [`Pending`]): a burst of changes costs a few swaps and the newest change never waits
//! behind the burst; a queue naming many servers (or everything) is one full reload instead.
//! The host maps are persistent (structurally shared), so a patch costs what changed, not
//! what is served. When Postgres is unreachable the last good snapshot keeps serving and is marked
//! stale; loading is retried with backoff. Until a first snapshot has loaded, there is none.
//!
//! The flow, one module each: `model` (what is served, and how a snapshot is patched) ←
//! `loader` (reads and parses it from Postgres, with the statements in [`crate::sql`]) ←
//! `follower` (when to load or patch: LISTEN, the timer, backoff) → `store` (the current
//! snapshot, swapped atomically, that requests read).

mod follower;
mod loader;
mod model;
mod store;

pub use follower::{CHANNEL, FULL_RELOAD_AT, PATCH_CHUNK, Pending, keep_current};
pub use loader::Loader;
pub use model::{Broken, ServedKey, ServedServer, ServedSource, Snapshot, VerifyingKeys};
pub use store::SnapshotStore;
