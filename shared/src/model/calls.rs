//! The words of a tool call that cross from the gateway (which writes them into the audit log
//! and its metrics) to the control plane (which filters and reports by them): each a closed
//! set, spelled once here.

use serde::{Deserialize, Serialize};

/// Spells each member of a closed set once: `as_str`, `parse` and `ALL`.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every member.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The word stored in the database and shown in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            /// The member this word names.
            pub fn parse(word: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|m| m.as_str() == word)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// A gateway tool.
    Tool { Search = "search", Fetch = "fetch" }
}

words! {
    /// How a tool call ended.
    CallStatus {
        Ok = "ok",
        /// Some sources failed, the others answered.
        Partial = "partial",
        Error = "error",
    }
}

words! {
    /// How one source's part of a call ended.
    SourceOutcome { Ok = "ok", NotFound = "not_found", Error = "error", Timeout = "timeout" }
}

words! {
    /// Why an upstream call failed, by class (the audit log's per-source `error_class`).
    UpstreamErrorClass {
        /// The upstream refused the source's credentials (401, 403, a refused token grant).
        Authentication = "authentication",
        /// The upstream asked us to slow down (429).
        Throttled = "throttled",
        /// No answer within the deadline.
        Timeout = "timeout",
        /// No connection (refused, DNS, TLS).
        Unreachable = "unreachable",
        /// An answer we cannot use: a 5xx, a malformed or oversized body.
        BadResponse = "bad_response",
        /// The item does not exist.
        NotFound = "not_found",
        /// The source's own settings or credentials are unusable (nothing was sent).
        Configuration = "configuration",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_the_stored_strings_and_parse_back() {
        assert_eq!(serde_json::to_value(Tool::Search).unwrap(), "search");
        assert_eq!(
            serde_json::to_value(CallStatus::Partial).unwrap(),
            "partial"
        );
        assert_eq!(
            serde_json::to_value(SourceOutcome::NotFound).unwrap(),
            "not_found"
        );
        assert_eq!(
            serde_json::to_value(UpstreamErrorClass::BadResponse).unwrap(),
            "bad_response"
        );
        for status in CallStatus::ALL {
            assert_eq!(CallStatus::parse(status.as_str()), Some(*status));
        }
        assert_eq!(Tool::parse("delete"), None);
    }
}
