//! The values that travel between the gateway's stages: what a source answers (hits,
//! documents) or why it failed. Imports nothing of this crate, so every stage may use it.

use std::{fmt, time::Duration};

use serde_json::Value;
use shared::model::{SourceOutcome, UpstreamErrorClass};

/// One search hit from an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The upstream's own id (goes into the result id after the source uuid).
    pub upstream_id: String,
    pub title: String,
    pub url: String,
}

/// A fetched document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub text: String,
    pub url: String,
    pub metadata: Value,
}

/// Why a source call failed, by class: a short reason safe to show an agent and log (never a
/// secret, token or upstream body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The item does not exist (fetch).
    NotFound,
    /// The source did not answer within the tool call's deadline.
    TimedOut(Duration),
    /// The upstream's answer was longer than this many bytes; reading stopped there.
    TooLarge(usize),
    /// The upstream refused the source's credentials, e.g. `authentication failed
    /// (invalid_client)`.
    Authentication(String),
    /// The upstream still asked us to slow down after the retries.
    Throttled(String),
    /// No connection to the upstream.
    Unreachable(String),
    /// An answer we cannot use (an error status, malformed JSON, a missing field).
    BadResponse(String),
    /// The source cannot be called as configured (nothing was sent).
    Unusable(String),
}

impl SourceError {
    /// The outcome's name in metrics and the audit log.
    pub fn outcome(&self) -> SourceOutcome {
        match self {
            Self::NotFound => SourceOutcome::NotFound,
            Self::TimedOut(_) => SourceOutcome::Timeout,
            _ => SourceOutcome::Error,
        }
    }

    /// The class recorded in the audit log.
    pub fn class(&self) -> UpstreamErrorClass {
        match self {
            Self::NotFound => UpstreamErrorClass::NotFound,
            Self::TimedOut(_) => UpstreamErrorClass::Timeout,
            Self::TooLarge(_) | Self::BadResponse(_) => UpstreamErrorClass::BadResponse,
            Self::Authentication(_) => UpstreamErrorClass::Authentication,
            Self::Throttled(_) => UpstreamErrorClass::Throttled,
            Self::Unreachable(_) => UpstreamErrorClass::Unreachable,
            Self::Unusable(_) => UpstreamErrorClass::Configuration,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::TimedOut(after) => write!(f, "timed out after {} ms", after.as_millis()),
            Self::TooLarge(limit) if limit % (1024 * 1024) == 0 => write!(
                f,
                "upstream answer too large (over {} MiB); not read further",
                limit / (1024 * 1024)
            ),
            Self::TooLarge(limit) => write!(
                f,
                "upstream answer too large (over {} KiB); not read further",
                limit / 1024
            ),
            Self::Authentication(reason)
            | Self::Throttled(reason)
            | Self::Unreachable(reason)
            | Self::BadResponse(reason)
            | Self::Unusable(reason) => f.write_str(reason),
        }
    }
}

/// The MCP server a response came from, for the access line (admission sets it).
#[derive(Clone, Copy)]
pub struct ServedBy(pub uuid::Uuid);

/// Who is calling, for the audit log: the key's id or the OAuth grant's, or neither on a
/// public server.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub key_id: Option<uuid::Uuid>,
    pub grant_id: Option<uuid::Uuid>,
    /// The person whose grant it is.
    pub user_id: Option<uuid::Uuid>,
}
