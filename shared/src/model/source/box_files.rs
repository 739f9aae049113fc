//! The `box` source type: a Box account's files, read with a client-credentials grant.

use secrecy::SecretString;

use super::field::{
    ALPHANUMERIC, Check, DIGITS, Field, SECRET, ValidatedMetadata, ok_or_hint, req,
};
use super::spec::TypeSpec;

pub const SPEC: TypeSpec = TypeSpec::plain("box", FIELDS, "subject_id");

const FIELDS: &[Field] = &[
    req("client_id", "Client ID", &ALPHANUMERIC),
    req("client_secret", "Client secret", &SECRET),
    req("subject_type", "Subject type", &SUBJECT_TYPE),
    req("subject_id", "Subject ID", &DIGITS),
];

/// A Box account (`box`), client-credentials grant.
#[derive(Debug, Clone)]
pub struct BoxConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// `enterprise` or `user`.
    pub subject_type: String,
    pub subject_id: String,
}

impl BoxConfig {
    pub fn from_validated(fields: &ValidatedMetadata) -> Self {
        Self {
            client_id: fields.text("client_id"),
            client_secret: fields.secret("client_secret"),
            subject_type: fields.text("subject_type"),
            subject_id: fields.text("subject_id"),
        }
    }
}

/// `enterprise` or `user`.
static SUBJECT_TYPE: Check = Check::text(
    "must be `enterprise` or `user`",
    |v, _| ok_or_hint(matches!(v, "enterprise" | "user"), SUBJECT_TYPE.hint),
    |_| ("enterprise|user".to_owned(), 10),
);
