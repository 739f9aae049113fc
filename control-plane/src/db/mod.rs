//! Queries of the control plane. Functions take any executor (pool, connection or
//! transaction), so handlers decide where transactions begin and end.

pub mod users;
