//! The `mcp` source type: a remote MCP server's `search` and `fetch` tools, over streamable
//! HTTP, with the credentials configured here (never the agent's).

use ::url::Url;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::field::{
    Check, Field, FieldProblem, MAX_VALUE_LEN, ValidatedMetadata, WHITE_SPACE, def, ok_or_hint,
    opt, req,
};
use super::rules::SourceRules;
use super::spec::TypeSpec;

pub mod header;
pub mod url;

pub use self::url::{allowed_entry, allowed_host_names, check_url};

pub const SPEC: TypeSpec = TypeSpec {
    name: "mcp",
    fields: FIELDS,
    identity: "url",
    refused: &STDIO_FIELDS,
    refused_reason: STDIO_REFUSED,
    cross_check: check_auth,
    schema_notes: SCHEMA_NOTES,
};

const FIELDS: &[Field] = &[
    req("url", "URL", &URL),
    def("auth", "Authentication", &AUTH, "none"),
    opt("token", "Bearer token", &HEADER_SECRET),
    opt("header_name", "Header name", &HEADER_NAME),
    opt("header_value", "Header value", &HEADER_SECRET),
    def("search_tool", "Search tool", &TOOL_NAME, "search"),
    def("fetch_tool", "Fetch tool", &TOOL_NAME, "fetch"),
];

/// A remote MCP server (`mcp`) whose search and fetch tools the gateway calls.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// The streamable HTTP endpoint, checked against `MCP_ALLOWED_HOSTS`.
    pub url: Url,
    pub auth: McpAuth,
    pub search_tool: String,
    pub fetch_tool: String,
}

/// How the gateway authenticates to a remote MCP server: only ever with these configured
/// credentials, never with the agent's.
#[derive(Debug, Clone)]
pub enum McpAuth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// One header of the user's choice, e.g. `X-Api-Key`.
    Header {
        name: String,
        value: SecretString,
    },
}

impl McpConfig {
    pub fn from_validated(fields: &ValidatedMetadata) -> Self {
        Self {
            url: Url::parse(&fields.text("url")).expect("validated as an http(s) URL"),
            auth: match fields.text("auth").as_str() {
                "bearer" => McpAuth::Bearer(fields.secret("token")),
                "header" => McpAuth::Header {
                    name: fields.text("header_name"),
                    value: fields.secret("header_value"),
                },
                _ => McpAuth::None,
            },
            search_tool: fields.text("search_tool"),
            fetch_tool: fields.text("fetch_tool"),
        }
    }
}

/// The http(s) URL of a remote MCP server's streamable HTTP endpoint (see [`url`]).
static URL: Check = Check::text(
    self::url::URL_HINT,
    |v, rules| check_url(v, &rules.mcp_allowed_hosts),
    |rules| {
        (
            self::url::url_pattern(&rules.mcp_allowed_hosts),
            MAX_VALUE_LEN,
        )
    },
)
.normalised(self::url::normalise_url);

/// How the gateway authenticates to a remote MCP server: `none`, `bearer` or `header`.
// The patterns bound these lengths; a blank value (left out) may be longer.
static AUTH: Check = Check::text(
    "must be `none`, `bearer` (with `token`) or `header` (with `header_name` and `header_value`)",
    |v, _| ok_or_hint(AUTH_KINDS.contains(&v), AUTH.hint),
    |_| (AUTH_KINDS.join("|"), MAX_VALUE_LEN),
);

/// An HTTP header name the gateway may set (not a reserved one).
static HEADER_NAME: Check = Check::text(
    header::HEADER_NAME_HINT,
    |v, _| header::check_header_name(v),
    |_| (header::HEADER_NAME_PATTERN.to_owned(), MAX_VALUE_LEN),
);

/// Write-only, and sent as an HTTP header value: printable ASCII.
static HEADER_SECRET: Check = Check::text(
    "must be printable ASCII (it is sent as an HTTP header value)",
    |v, _| {
        ok_or_hint(
            v.bytes().all(|b| (0x20..0x7f).contains(&b)),
            HEADER_SECRET.hint,
        )
    },
    |_| {
        (
            format!(r"[{WHITE_SPACE}]*[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?[{WHITE_SPACE}]*"),
            MAX_VALUE_LEN,
        )
    },
)
.secret();

/// An MCP tool name: 1 to 128 of letters, digits, `_`, `-` and `.`.
static TOOL_NAME: Check = Check::text(
    "must be an MCP tool name: 1 to 128 letters, digits, `_`, `-` or `.`",
    |v, _| {
        ok_or_hint(
            v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            TOOL_NAME.hint,
        )
    },
    |_| ("[A-Za-z0-9_.-]{1,128}".to_owned(), MAX_VALUE_LEN),
);

/// The `auth` values.
pub const AUTH_KINDS: [&str; 3] = ["none", "bearer", "header"];

/// Fields of a stdio (command) configuration, refused with [`STDIO_REFUSED`].
pub const STDIO_FIELDS: [&str; 6] = ["command", "args", "env", "cwd", "transport", "stdio"];

/// Why a stdio configuration is refused.
pub const STDIO_REFUSED: &str = "is refused: stdio MCP servers (a command to start) are not \
     supported, because a multi-tenant gateway never starts a user-given command; give `url`, \
     the server's streamable HTTP endpoint";

/// Notes for the metadata schema's description: the rules a JSON schema here does not state.
pub const SCHEMA_NOTES: &str = " `auth` `bearer` requires `token`, `header` requires \
     `header_name` and `header_value`; a credential field of another `auth` than the one given \
     is refused (a stored one is dropped). `header_name` must not be a reserved header (Host, \
     Authorization, Proxy-Authorization, Content-Length, Content-Type, Content-Encoding, \
     Transfer-Encoding, Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Expect, \
     Cookie, Accept, Accept-Encoding, User-Agent, Mcp-Session-Id, Mcp-Protocol-Version, \
     Last-Event-ID, Origin, Referer, Forwarded, Via, X-Real-IP, and names starting with Mcp-, \
     Proxy-, Sec- or X-Forwarded-; any case). Fields of a stdio configuration (`command`, `args`, `env`, `cwd`, \
     `transport`, `stdio`) are refused: the gateway never starts a command.";

/// The credential fields `auth` needs.
fn needed(auth: &str) -> &'static [&'static str] {
    match auth {
        "bearer" => &["token"],
        "header" => &["header_name", "header_value"],
        _ => &[],
    }
}

/// Cross-field rules of `auth`: the fields it needs are there; a field of another kind is
/// refused when given and dropped when it is only a stored secret (the auth kind changed).
fn check_auth(
    input: &Map<String, Value>,
    out: &mut ValidatedMetadata,
    _rules: &SourceRules,
    problems: &mut Vec<FieldProblem>,
) {
    let field = |name: &str| format!("source_metadata.{name}");
    if problems.iter().any(|p| p.field == field("auth")) {
        return;
    }
    let auth = out
        .public
        .get("auth")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_owned();
    let needed = needed(&auth);
    for name in ["token", "header_name", "header_value"] {
        if problems.iter().any(|p| p.field == field(name)) {
            continue;
        }
        let present = out.public.contains_key(name) || out.secrets.contains_key(name);
        let given = input
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty());
        if needed.contains(&name) && !present {
            problems.push(FieldProblem {
                field: field(name),
                message: format!("is required with auth `{auth}`"),
            });
        } else if !needed.contains(&name) && given {
            problems.push(FieldProblem {
                field: field(name),
                message: format!("is not used with auth `{auth}`; leave it out"),
            });
        } else if !needed.contains(&name) {
            out.public.remove(name);
            out.secrets.remove(name);
        }
    }
}
