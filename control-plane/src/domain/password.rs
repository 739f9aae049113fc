//! A new password that meets the length rules. bcrypt reads at most 72 bytes, so a longer
//! password is refused rather than silently truncated.

use secrecy::{ExposeSecret, SecretString};

/// Shortest accepted password, in bytes.
pub const MIN_BYTES: usize = 8;
/// Longest accepted password, in bytes (bcrypt's limit).
pub const MAX_BYTES: usize = 72;

/// A password of 8 to 72 bytes; `Debug` never shows it.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    /// Checks the length rules; the error is a sentence for the client.
    pub fn parse(raw: SecretString) -> Result<Self, String> {
        let len = raw.expose_secret().len();
        if len < MIN_BYTES {
            return Err(format!("must be at least {MIN_BYTES} bytes long"));
        }
        if len > MAX_BYTES {
            return Err(format!(
                "must be at most {MAX_BYTES} bytes long (UTF-8); longer passwords would be truncated by bcrypt"
            ));
        }
        Ok(Self(raw))
    }

    /// The password itself, for hashing.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Password, String> {
        Password::parse(SecretString::from(s.to_owned()))
    }

    #[test]
    fn bounds_are_counted_in_bytes() {
        assert!(parse(&"a".repeat(7)).is_err());
        assert!(parse(&"a".repeat(8)).is_ok());
        assert!(parse(&"a".repeat(72)).is_ok());
        assert!(parse(&"a".repeat(73)).is_err());
        // 24 three-byte characters are 72 bytes; 25 are 75.
        assert!(parse(&"€".repeat(24)).is_ok());
        assert!(parse(&"€".repeat(25)).is_err());
    }
}
