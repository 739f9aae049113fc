//! A new password that meets the length rules: at least 8 characters (what a person counts,
//! and what the OpenAPI document's `minLength` counts), at most 72 bytes (bcrypt reads at most
//! 72 bytes, so a longer password is refused rather than silently truncated).

use secrecy::{ExposeSecret, SecretString};

/// Shortest accepted password, in characters.
pub const MIN_CHARS: usize = 8;
/// Longest accepted password, in bytes (bcrypt's limit).
pub const MAX_BYTES: usize = 72;

/// A password of 8 characters to 72 bytes; `Debug` never shows it.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    /// Checks the length rules; the error is a sentence for the client.
    pub fn parse(raw: SecretString) -> Result<Self, String> {
        let raw_text = raw.expose_secret();
        if raw_text.chars().count() < MIN_CHARS {
            return Err(format!("must be at least {MIN_CHARS} characters long"));
        }
        if raw_text.len() > MAX_BYTES {
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
    fn at_least_8_characters_and_at_most_72_bytes() {
        assert!(parse(&"a".repeat(7)).is_err());
        // Seven characters are too few however many bytes they take.
        assert!(parse(&"\u{1F600}".repeat(7)).is_err());
        assert!(parse(&"é".repeat(8)).is_ok());
        assert!(parse(&"a".repeat(8)).is_ok());
        assert!(parse(&"a".repeat(72)).is_ok());
        assert!(parse(&"a".repeat(73)).is_err());
        // 24 three-byte characters are 72 bytes; 25 are 75.
        assert!(parse(&"€".repeat(24)).is_ok());
        assert!(parse(&"€".repeat(25)).is_err());
    }
}
