//! Credentials: password hashing, session tokens (JWTs) and the rate limits of signing in and
//! of other per-client requests. Nothing here reads a request: the extractors that do are in
//! `session`.

pub mod jwt;
pub mod password;
pub mod rate_limit;
