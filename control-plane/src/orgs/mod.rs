//! Organizations: who may do what with an organization's objects. Every source, server and
//! access key belongs to one organization; the caller's role in it decides. Anything of an
//! organization the caller is not in is answered as if it did not exist (404); in it without
//! the role, 403 naming the role needed.

pub mod access;
pub mod role;

pub use access::{Membership, ServerAccess};
pub use role::Role;
