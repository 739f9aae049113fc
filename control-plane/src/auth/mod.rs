//! Who is calling: password hashing, session tokens, the authenticated-user extractors, signin
//! rate limits and the cross-origin rule for cookie sessions.

pub mod jwt;
pub mod origin;
pub mod password;
pub mod rate_limit;
pub mod session;
pub mod signin;

pub use session::{AdminUser, AuthUser};
