//! The OAuth tables: clients, grants, authorization codes, refresh tokens and signing keys,
//! one module each, read as one (`db::oauth::insert_client`, `db::oauth::upsert_grant`...).

mod clients;
mod grants;
mod signing_keys;
mod tokens;

pub use clients::*;
pub use grants::*;
pub use signing_keys::*;
pub use tokens::*;
