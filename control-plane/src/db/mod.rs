//! Queries of the control plane. Functions take any executor (pool, connection or
//! transaction), so handlers decide where transactions begin and end. Every query on an
//! organization's objects filters by `organization_id` (after `orgs::access` has checked the
//! caller's standing): another organization's rows behave as if they did not exist.

pub mod activity;
pub mod calls;
pub mod invitations;
pub mod keys;
pub mod oauth;
pub mod organizations;
pub mod server_sources;
pub mod servers;
pub mod sources;
pub mod users;
