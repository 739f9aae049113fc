//! Validated input types: a value of one of these types has passed its rules.

mod email;
pub mod name;
pub mod password;

pub use email::Email;
pub use password::Password;
