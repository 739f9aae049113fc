//! The `outlook` source type: a Microsoft Graph mailbox, read with an Entra application's
//! client credentials.

use secrecy::SecretString;

use super::field::{
    Check, Field, GUID, GUID_PATTERN, SECRET, ValidatedMetadata, is_guid, ok_or_hint, req,
};
use super::spec::TypeSpec;
use crate::hosts::is_dns_name;

pub const SPEC: TypeSpec = TypeSpec::plain("outlook", FIELDS, "user_id");

const FIELDS: &[Field] = &[
    req("tenant_id", "Tenant ID", &TENANT),
    req("client_id", "Client ID", &GUID),
    req("client_secret", "Client secret", &SECRET),
    req("user_id", "Mailbox", &MAILBOX),
];

/// A Microsoft Graph mailbox (`outlook`).
#[derive(Debug, Clone)]
pub struct OutlookConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Mailbox GUID or user principal name.
    pub user_id: String,
}

impl OutlookConfig {
    pub fn from_validated(fields: &ValidatedMetadata) -> Self {
        Self {
            tenant_id: fields.text("tenant_id"),
            client_id: fields.text("client_id"),
            client_secret: fields.secret("client_secret"),
            user_id: fields.text("user_id"),
        }
    }
}

/// A tenant: GUID or a verified domain such as contoso.onmicrosoft.com.
static TENANT: Check = Check::text(
    "must be a tenant GUID or domain such as contoso.onmicrosoft.com",
    |v, _| ok_or_hint(is_guid(v) || (v.contains('.') && is_dns_name(v)), TENANT.hint),
    |_| {
        (
            format!(
                r"{GUID_PATTERN}|[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)+"
            ),
            253,
        )
    },
)
.normalised(|v| v.trim_end_matches('/').to_lowercase());

/// A mailbox: GUID or user principal name. Goes into a URL path, so no `/`, `?`, `#`, `%`.
static MAILBOX: Check = Check::text(
    "must be a mailbox GUID or user principal name such as ada@contoso.com",
    |v, _| {
        ok_or_hint(
            v.len() <= 320
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._-+'".contains(c))
                && (is_guid(v) || v.contains('@')),
            MAILBOX.hint,
        )
    },
    |_| {
        (
            format!(r"{GUID_PATTERN}|[A-Za-z0-9@._+'-]*@[A-Za-z0-9@._+'-]*"),
            320,
        )
    },
);
