//! Queries of the control plane. Functions take any executor (pool, connection or
//! transaction), so handlers decide where transactions begin and end. Every query on a user's
//! objects filters by `user_id`: another user's rows behave as if they did not exist.

pub mod activity;
pub mod calls;
pub mod keys;
pub mod oauth;
pub mod servers;
pub mod sources;
pub mod users;
