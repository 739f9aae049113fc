//! What a source type's field is ([`Field`]: name, label, required or default, and its
//! [`Check`]), the checks every type shares, and what validation hands back. Each type states
//! its fields once, in its own module; validation, the OpenAPI schema and the console form are
//! all built from that one table.

use serde_json::{Map, Value};

use super::rules::SourceRules;

/// One field of a type's settings.
pub struct Field {
    pub name: &'static str,
    /// What a form calls it ("Tenant ID").
    pub label: &'static str,
    pub check: &'static Check,
    pub required: bool,
    pub default: Option<&'static str>,
}

/// What a field's value must look like, stated once for validation, the schema and the form.
pub struct Check {
    /// What the value must look like, as a sentence fragment ("must be a numeric id").
    pub hint: &'static str,
    /// Write-only: split off to be encrypted, never shown again.
    pub secret: bool,
    /// Accepts a flat value (trimmed, non-empty, at most [`MAX_VALUE_LEN`] bytes) or says what
    /// is wrong with it.
    pub accept: fn(&str, &SourceRules) -> Result<(), String>,
    /// The stored form of an accepted value.
    pub normalise: fn(String) -> String,
    /// The schema's pattern (without anchors) and longest length.
    pub pattern: fn(&SourceRules) -> (String, usize),
    /// A field that is not a flat string has its own parse and schema.
    pub structured: Option<Structured>,
    /// The JSON value it takes.
    pub shape: FieldShape,
}

/// A field whose value is not a flat string (`port`, `tables`).
pub struct Structured {
    /// The checked value, or its problems as `(path after the field name, message)`.
    #[allow(clippy::type_complexity)]
    pub parse: fn(Option<&Value>) -> Result<Value, Vec<(String, String)>>,
    pub schema: fn() -> Value,
}

impl Check {
    /// A flat text value checked by `accept`, stored as given (trimmed).
    pub const fn text(
        hint: &'static str,
        accept: fn(&str, &SourceRules) -> Result<(), String>,
        pattern: fn(&SourceRules) -> (String, usize),
    ) -> Self {
        Self {
            hint,
            secret: false,
            accept,
            normalise: kept,
            pattern,
            structured: None,
            shape: FieldShape::Text,
        }
    }

    /// The same check, stored in the form `normalise` gives.
    pub const fn normalised(self, normalise: fn(String) -> String) -> Self {
        Self { normalise, ..self }
    }

    /// The same check, for a write-only value.
    pub const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }
}

/// A value stored as given.
pub fn kept(value: String) -> String {
    value
}

/// `Ok` when `ok`, else the hint.
pub fn ok_or_hint(ok: bool, hint: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(hint.to_owned()) }
}

pub const fn req(name: &'static str, label: &'static str, check: &'static Check) -> Field {
    Field {
        name,
        label,
        check,
        required: true,
        default: None,
    }
}
pub const fn opt(name: &'static str, label: &'static str, check: &'static Check) -> Field {
    Field {
        name,
        label,
        check,
        required: false,
        default: None,
    }
}
pub const fn def(
    name: &'static str,
    label: &'static str,
    check: &'static Check,
    default: &'static str,
) -> Field {
    Field {
        name,
        label,
        check,
        required: false,
        default: Some(default),
    }
}

/// One field of a type's settings as a form shows it: its name and label, whether it is a
/// secret (write-only), whether it is required, its default and what it must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub label: &'static str,
    pub secret: bool,
    pub required: bool,
    pub default: Option<&'static str>,
    /// What the value must look like, as a sentence fragment ("must be a numeric id").
    pub hint: &'static str,
    /// The JSON value it takes.
    pub shape: FieldShape,
}

/// The JSON value a field takes: forms send text, and JSON for [`FieldShape::Json`] fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldShape {
    /// A string.
    Text,
    /// A number, or a string of digits.
    Number,
    /// A JSON array or object (a form's text area holds its JSON).
    Json,
}

impl Field {
    /// How a form shows this field.
    pub fn spec(&self) -> FieldSpec {
        FieldSpec {
            name: self.name,
            label: self.label,
            secret: self.check.secret,
            required: self.required,
            default: self.default,
            hint: self.check.hint,
            shape: self.check.shape,
        }
    }
}

/// Longest accepted value of any field.
pub const MAX_VALUE_LEN: usize = 4096;

/// One bad field: its name (prefixed with `source_metadata.`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    /// A problem with the field `name` of `source_metadata`.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            field: format!("source_metadata.{name}"),
            message: message.into(),
        }
    }
}

/// Metadata that passed the rules, split into what may be shown and what must be encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedMetadata {
    /// Non-secret fields, with documented defaults filled in.
    pub public: Map<String, Value>,
    /// Secret fields by name.
    pub secrets: Map<String, Value>,
}

impl ValidatedMetadata {
    /// A non-secret text field (empty when left out).
    pub fn text(&self, name: &str) -> String {
        self.optional(name).unwrap_or_default()
    }

    /// A non-secret text field that may be left out.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.public
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// A secret field (empty when left out).
    pub fn secret(&self, name: &str) -> secrecy::SecretString {
        let value = self.secrets.get(name).and_then(Value::as_str);
        secrecy::SecretString::from(value.unwrap_or_default().to_owned())
    }
}

/// Problems as one sentence (`account_url host must end with …; pat is required`).
pub fn describe_problems(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| {
            let field = p.field.strip_prefix("source_metadata.").unwrap_or(&p.field);
            format!("{field} {}", p.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// White space as `str::trim` removes it (Unicode `White_Space`), as a regex class body.
pub const WHITE_SPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters, as a regex class body.
pub const NO_CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
pub const GUID_PATTERN: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const IDENTIFIER_PATTERN: &str = r"[A-Za-z_][A-Za-z0-9_$]{0,254}";

/// A GUID such as an Entra application (client) id.
pub static GUID: Check = Check::text(
    "must be a GUID such as 00000000-0000-0000-0000-000000000000",
    |v, _| ok_or_hint(is_guid(v), GUID.hint),
    |_| (GUID_PATTERN.to_owned(), 36),
);

/// Letters and digits (Box client ids).
pub static ALPHANUMERIC: Check = Check::text(
    "must be letters and digits only",
    |v, _| {
        ok_or_hint(
            v.len() <= 128 && v.chars().all(|c| c.is_ascii_alphanumeric()),
            ALPHANUMERIC.hint,
        )
    },
    |_| ("[A-Za-z0-9]+".to_owned(), 128),
);

/// Decimal digits (Box ids).
pub static DIGITS: Check = Check::text(
    "must be a numeric id",
    |v, _| {
        ok_or_hint(
            v.len() <= 32 && v.chars().all(|c| c.is_ascii_digit()),
            DIGITS.hint,
        )
    },
    |_| ("[0-9]+".to_owned(), 32),
);

/// One unquoted identifier (column, warehouse, role).
pub static IDENTIFIER: Check = Check::text(
    "must be an unquoted identifier (letters, digits, _ and $, not starting with a digit)",
    |v, _| ok_or_hint(is_identifier(v), IDENTIFIER.hint),
    |_| (IDENTIFIER_PATTERN.to_owned(), 255),
);

/// `DB.SCHEMA.NAME`, three unquoted identifiers.
pub static QUALIFIED_NAME: Check = Check::text(
    "must be DATABASE.SCHEMA.SERVICE (unquoted identifiers)",
    |v, _| {
        ok_or_hint(
            v.split('.').count() == 3 && v.split('.').all(is_identifier),
            QUALIFIED_NAME.hint,
        )
    },
    |_| {
        (
            format!(r"{IDENTIFIER_PATTERN}\.{IDENTIFIER_PATTERN}\.{IDENTIFIER_PATTERN}"),
            767,
        )
    },
);

/// Write-only; encrypted at rest.
pub static SECRET: Check = Check::text(
    "must not contain control characters",
    |v, _| ok_or_hint(!v.chars().any(char::is_control), SECRET.hint),
    |_| {
        (
            format!(r"[^{NO_CONTROL}]*[^{NO_CONTROL}{WHITE_SPACE}][^{NO_CONTROL}]*"),
            MAX_VALUE_LEN,
        )
    },
)
.secret();

pub fn is_guid(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::parse_str(value).is_ok()
}

pub fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && value.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Escapes the regex metacharacters of a literal (host suffixes: letters, digits, `.`, `-`).
pub fn regex_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() * 2);
    for c in literal.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
