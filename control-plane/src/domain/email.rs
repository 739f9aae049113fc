//! An email address, validated and normalised (trimmed, lower-cased).

use std::fmt;

/// A syntactically valid, lower-cased email address of at most 254 bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Validates and normalises `raw`; the error is a sentence for the client.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err("must not be empty");
        }
        if normalised.len() > 254 {
            return Err("must be at most 254 characters");
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            &normalised,
            email_address::Options::default().without_display_text(),
        )
        .map_err(|_| "is not a valid email address")?;
        // Quoted local parts and IP-literal domains are valid but no mail system a company uses
        // needs them, and they make look-alike accounts easy.
        let domain = parsed.domain();
        if normalised.contains('"') || domain.starts_with('[') || !domain.contains('.') {
            return Err("is not a valid email address");
        }
        Ok(Self(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn valid_addresses_are_normalised() {
        assert_eq!(
            Email::parse("  Ada.Lovelace@Example.COM ")
                .unwrap()
                .as_str(),
            "ada.lovelace@example.com"
        );
        assert!(Email::parse("a+tag@sub.example.org").is_ok());
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in [
            "",
            " ",
            "plain",
            "@example.com",
            "a@",
            "a@@example.com",
            "a b@example.com",
            "a@localhost",
            "\"q\"@example.com",
            "a@[127.0.0.1]",
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
