//! Source types and the rules for their metadata. Each type's fields are a table, so adding a
//! field is one line; secret fields are split off to be encrypted and never shown again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::mcp_source;
use super::postgres::{self, HostList, ProductDatabase};

/// A kind of upstream the gateway can search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    /// Microsoft Graph mail.
    Outlook,
    /// Box files.
    Box,
    /// Snowflake Cortex Search (and Analyst).
    Snowflake,
    /// A PostgreSQL database, read through a least-privilege role.
    Postgres,
    /// A remote MCP server's search and fetch tools, over streamable HTTP.
    Mcp,
}

impl SourceType {
    /// Every type, in documentation order.
    pub const ALL: [SourceType; 5] = [
        Self::Outlook,
        Self::Box,
        Self::Snowflake,
        Self::Postgres,
        Self::Mcp,
    ];

    /// The name used in the API, the database and result ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outlook => "outlook",
            Self::Box => "box",
            Self::Snowflake => "snowflake",
            Self::Postgres => "postgres",
            Self::Mcp => "mcp",
        }
    }

    /// Parses a stored or requested type name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    fn fields(self) -> &'static [Field] {
        match self {
            Self::Outlook => OUTLOOK,
            Self::Box => BOX,
            Self::Snowflake => SNOWFLAKE,
            Self::Postgres => POSTGRES,
            Self::Mcp => MCP,
        }
    }

    /// Names of this type's secret fields.
    pub fn secret_fields(self) -> impl Iterator<Item = &'static str> {
        self.fields()
            .iter()
            .filter(|f| f.kind == Kind::Secret)
            .map(|f| f.name)
    }
}

/// One field of a type's settings as a form shows it: its name, whether it is a secret
/// (write-only), whether it is required, its default and what it must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
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

impl SourceType {
    /// This type's fields, in documentation order (forms build themselves from this).
    pub fn field_specs(self) -> impl Iterator<Item = FieldSpec> {
        self.fields().iter().map(|f| FieldSpec {
            name: f.name,
            secret: f.kind == Kind::Secret,
            required: f.required,
            default: f.default,
            hint: describe(f.kind),
            shape: match f.kind {
                Kind::Port => FieldShape::Number,
                Kind::PgTables => FieldShape::Json,
                _ => FieldShape::Text,
            },
        })
    }
}

/// What a field must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A GUID such as an Entra application (client) id.
    Guid,
    /// A tenant: GUID or a verified domain such as contoso.onmicrosoft.com.
    Tenant,
    /// A mailbox: GUID or user principal name. Goes into a URL path, so no `/`, `?`, `#`, `%`.
    Mailbox,
    /// Letters and digits (Box client ids).
    Alphanumeric,
    /// `enterprise` or `user`.
    BoxSubjectType,
    /// Decimal digits (Box ids).
    Digits,
    /// `https://<account>` on an allowed Snowflake host suffix, nothing after the host.
    SnowflakeUrl,
    /// `DB.SCHEMA.SERVICE`, three unquoted identifiers.
    QualifiedName,
    /// One unquoted identifier (column, warehouse, role).
    Identifier,
    /// A staged file such as `@DB.SCHEMA.STAGE/models/sales.yaml`.
    StageFile,
    /// Write-only; encrypted at rest.
    Secret,
    /// A database host (name or IP address) listed in `POSTGRES_ALLOWED_HOSTS`.
    PgHost,
    /// A port, 1 to 65535: a number or a string of digits (stored as a number).
    Port,
    /// A PostgreSQL database or role name (a startup parameter, never SQL).
    PgName,
    /// `disable`, `prefer` or `require`.
    SslMode,
    /// The `postgres` tables: an array of objects (see [`super::postgres`]).
    PgTables,
    /// The http(s) URL of a remote MCP server's streamable HTTP endpoint (see [`mcp_source`]).
    McpUrl,
    /// How the gateway authenticates to a remote MCP server: `none`, `bearer` or `header`.
    McpAuth,
    /// An HTTP header name the gateway may set (not a reserved one).
    HeaderName,
    /// Write-only like [`Kind::Secret`], and sent as an HTTP header value: printable ASCII.
    HeaderSecret,
    /// An MCP tool name: 1 to 128 of letters, digits, `_`, `-` and `.`.
    ToolName,
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
    default: Option<&'static str>,
}

const fn req(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: true,
        default: None,
    }
}
const fn opt(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        required: false,
        default: None,
    }
}
const fn def(name: &'static str, kind: Kind, default: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        default: Some(default),
    }
}

const OUTLOOK: &[Field] = &[
    req("tenant_id", Kind::Tenant),
    req("client_id", Kind::Guid),
    req("client_secret", Kind::Secret),
    req("user_id", Kind::Mailbox),
];
const BOX: &[Field] = &[
    req("client_id", Kind::Alphanumeric),
    req("client_secret", Kind::Secret),
    req("subject_type", Kind::BoxSubjectType),
    req("subject_id", Kind::Digits),
];
const SNOWFLAKE: &[Field] = &[
    req("account_url", Kind::SnowflakeUrl),
    req("pat", Kind::Secret),
    req("search_service", Kind::QualifiedName),
    def("id_column", Kind::Identifier, "ID"),
    def("title_column", Kind::Identifier, "TITLE"),
    def("text_column", Kind::Identifier, "CHUNK"),
    opt("url_column", Kind::Identifier),
    opt("semantic_model_file", Kind::StageFile),
    opt("warehouse", Kind::Identifier),
    opt("role", Kind::Identifier),
];
const POSTGRES: &[Field] = &[
    req("host", Kind::PgHost),
    def("port", Kind::Port, "5432"),
    req("database", Kind::PgName),
    req("user", Kind::PgName),
    req("password", Kind::Secret),
    def("sslmode", Kind::SslMode, "require"),
    req("tables", Kind::PgTables),
];
const MCP: &[Field] = &[
    req("url", Kind::McpUrl),
    def("auth", Kind::McpAuth, "none"),
    opt("token", Kind::HeaderSecret),
    opt("header_name", Kind::HeaderName),
    opt("header_value", Kind::HeaderSecret),
    def("search_tool", Kind::ToolName, "search"),
    def("fetch_tool", Kind::ToolName, "fetch"),
];

/// Longest accepted value of any field.
const MAX_VALUE_LEN: usize = 4096;

/// One bad field: its name (prefixed with `source_metadata.`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// Metadata that passed the rules, split into what may be shown and what must be encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedMetadata {
    /// Non-secret fields, with documented defaults filled in.
    pub public: Map<String, Value>,
    /// Secret fields by name.
    pub secrets: Map<String, Value>,
}

/// The deployment's rules a source's settings are checked against: where a source may send its
/// credentials or connect. The control plane applies them to input and the gateway again at
/// load, so a source that leaves the allowed set stops being served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRules {
    /// `SNOWFLAKE_ALLOWED_HOST_SUFFIXES`: the hosts a Snowflake account URL may name.
    pub snowflake_suffixes: Vec<String>,
    /// `POSTGRES_ALLOWED_HOSTS`: the hosts a `postgres` source may connect to.
    pub postgres_hosts: HostList,
    /// `POSTGRES_ALLOW_INSECURE_HOSTS`: the hosts a `postgres` source may reach without TLS
    /// (`sslmode` `disable` or `prefer`).
    pub postgres_insecure_hosts: HostList,
    /// `MCP_ALLOWED_HOSTS` (lowercase): the hosts a remote MCP server's URL may name beyond
    /// public DNS names, over http too, and at any address they resolve to.
    pub mcp_allowed_hosts: Vec<String>,
    /// The server `DATABASE_URL` names, which no `postgres` source may point at (`None`: no
    /// such check, as in tests of the rules alone).
    pub product_database: Option<ProductDatabase>,
}

impl SourceRules {
    /// The rules the deployment's settings give.
    pub fn from_settings(settings: &crate::config::SourceSettings) -> Self {
        // Settings are validated when loaded, so the lists parse; a list that did not would
        // allow nothing.
        let hosts = |entries: &[String]| HostList::parse(entries).unwrap_or_default();
        Self {
            snowflake_suffixes: settings.snowflake_allowed_host_suffixes.clone(),
            postgres_hosts: hosts(&settings.postgres_allowed_hosts),
            postgres_insecure_hosts: hosts(&settings.postgres_allow_insecure_hosts),
            mcp_allowed_hosts: settings
                .mcp_allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            product_database: None,
        }
    }

    /// The rules a daemon applies: the deployment's settings, and the product's own database
    /// (its host resolved now) kept out of reach of `postgres` sources.
    pub fn for_deployment(settings: &crate::Settings) -> Self {
        use secrecy::ExposeSecret;
        Self {
            product_database: ProductDatabase::resolve(
                settings.common.database_url.expose_secret(),
            ),
            ..Self::from_settings(&settings.sources)
        }
    }
}

impl SourceType {
    /// Validates `input` for this type. A secret field left out keeps its value from
    /// `stored_secrets` (an update that does not repeat the secret). Every problem is reported,
    /// not just the first.
    pub fn validate(
        self,
        input: &Map<String, Value>,
        stored_secrets: &Map<String, Value>,
        rules: &SourceRules,
    ) -> Result<ValidatedMetadata, Vec<FieldProblem>> {
        let fields = self.fields();
        let mut problems = Vec::new();
        let mut out = ValidatedMetadata {
            public: Map::new(),
            secrets: Map::new(),
        };
        let problem = |name: &str, message: &str| FieldProblem {
            field: format!("source_metadata.{name}"),
            message: message.to_owned(),
        };

        for key in input.keys() {
            if self == Self::Mcp && mcp_source::STDIO_FIELDS.contains(&key.as_str()) {
                problems.push(problem(key, mcp_source::STDIO_REFUSED));
            } else if !fields.iter().any(|f| f.name == key) {
                let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
                problems.push(problem(
                    key,
                    &format!(
                        "is not a {} field (expected: {})",
                        self.as_str(),
                        known.join(", ")
                    ),
                ));
            }
        }
        for field in fields {
            if let Some(checked) = structured(field, input.get(field.name)) {
                match checked {
                    Ok(value) => {
                        out.public.insert(field.name.to_owned(), value);
                    }
                    Err(found) => {
                        problems.extend(found.into_iter().map(|(path, message)| FieldProblem {
                            field: format!("source_metadata.{}{path}", field.name),
                            message,
                        }));
                    }
                }
                continue;
            }
            let value = match input.get(field.name) {
                Some(Value::String(s)) => Some(s.trim().to_owned()),
                Some(Value::Null) | None => None,
                Some(_) => {
                    problems.push(problem(field.name, "must be a string"));
                    continue;
                }
            };
            let value = match (value, field.kind) {
                (Some(v), _) if !v.is_empty() => v,
                (_, Kind::Secret | Kind::HeaderSecret) => match stored_secrets.get(field.name) {
                    Some(stored) => {
                        out.secrets.insert(field.name.to_owned(), stored.clone());
                        continue;
                    }
                    None if field.required => {
                        problems.push(problem(field.name, "is required"));
                        continue;
                    }
                    None => continue,
                },
                _ => match field.default {
                    Some(default) => default.to_owned(),
                    None if field.required => {
                        problems.push(problem(field.name, "is required"));
                        continue;
                    }
                    None => continue,
                },
            };
            if value.len() > MAX_VALUE_LEN {
                problems.push(problem(
                    field.name,
                    &format!("must be at most {MAX_VALUE_LEN} characters"),
                ));
            } else if let Err(message) = check(field.kind, &value, rules) {
                problems.push(problem(field.name, &message));
            } else if matches!(field.kind, Kind::Secret | Kind::HeaderSecret) {
                out.secrets
                    .insert(field.name.to_owned(), Value::String(value));
            } else {
                out.public.insert(
                    field.name.to_owned(),
                    Value::String(normalise(field.kind, value)),
                );
            }
        }
        if self == Self::Postgres {
            problems.extend(postgres_address_problems(&out.public, rules));
        }
        if self == Self::Mcp {
            mcp_source::check_auth(input, &mut out, &mut problems);
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// The checked value of a field that is not a flat string (`port`, `tables`), or its problems
/// as `(path after the field name, message)`; `None` for flat string fields.
#[allow(clippy::type_complexity)]
fn structured(
    field: &Field,
    value: Option<&Value>,
) -> Option<Result<Value, Vec<(String, String)>>> {
    match field.kind {
        Kind::Port => Some(
            postgres::port(value)
                .map(Value::from)
                .map_err(|message| vec![(String::new(), message.to_owned())]),
        ),
        Kind::PgTables => Some(match value {
            None | Some(Value::Null) => Err(vec![(String::new(), "is required".to_owned())]),
            Some(tables) => postgres::tables(tables),
        }),
        _ => None,
    }
}

/// What the host and port of a `postgres` source break together: the product's own database,
/// a port `POSTGRES_ALLOWED_HOSTS` does not allow for the host (its entries may name one), or
/// `sslmode` `disable` or `prefer` for a host `POSTGRES_ALLOW_INSECURE_HOSTS` does not list.
fn postgres_address_problems(
    public: &Map<String, Value>,
    rules: &SourceRules,
) -> Vec<FieldProblem> {
    let (Some(host), Some(port)) = (
        public.get("host").and_then(Value::as_str),
        public
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
    ) else {
        return Vec::new();
    };
    let problem = |field: &str, message: &str| FieldProblem {
        field: format!("source_metadata.{field}"),
        message: message.to_owned(),
    };
    if rules
        .product_database
        .as_ref()
        .is_some_and(|db| db.is_named_by(host, port))
    {
        return vec![problem("host", postgres::PRODUCT_DATABASE)];
    }
    let mut problems = Vec::new();
    if !rules.postgres_hosts.allows_host(host, port) {
        problems.push(problem(
            "port",
            "is not a port POSTGRES_ALLOWED_HOSTS allows for this host (its entry names \
             another)",
        ));
    }
    let sslmode = public.get("sslmode").and_then(Value::as_str);
    if sslmode.is_some_and(|m| m != "require")
        && !rules.postgres_insecure_hosts.allows_host(host, port)
    {
        problems.push(problem(
            "sslmode",
            "must be `require` for this host (`disable` and `prefer` only for hosts \
             listed in POSTGRES_ALLOW_INSECURE_HOSTS)",
        ));
    }
    problems
}

fn normalise(kind: Kind, value: String) -> String {
    match kind {
        Kind::SnowflakeUrl | Kind::Tenant => value.trim_end_matches('/').to_lowercase(),
        Kind::PgHost => postgres::normal_host(&value),
        Kind::McpUrl => mcp_source::normalise_url(value),
        _ => value,
    }
}

fn check(kind: Kind, value: &str, rules: &SourceRules) -> Result<(), String> {
    let ok = match kind {
        Kind::Guid => is_guid(value),
        Kind::Tenant => is_guid(value) || is_domain(value),
        Kind::Mailbox => {
            value.len() <= 320
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@._-+'".contains(c))
                && (is_guid(value) || value.contains('@'))
        }
        Kind::Alphanumeric => {
            value.len() <= 128 && value.chars().all(|c| c.is_ascii_alphanumeric())
        }
        Kind::BoxSubjectType => matches!(value, "enterprise" | "user"),
        Kind::Digits => value.len() <= 32 && value.chars().all(|c| c.is_ascii_digit()),
        Kind::SnowflakeUrl => return check_snowflake_url(value, &rules.snowflake_suffixes),
        Kind::QualifiedName => value.split('.').count() == 3 && value.split('.').all(is_identifier),
        Kind::Identifier => is_identifier(value),
        Kind::StageFile => {
            value.starts_with('@')
                && value.len() > 1
                && !value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '\'')
                && (value.ends_with(".yaml") || value.ends_with(".yml"))
        }
        Kind::Secret => !value.chars().any(char::is_control),
        Kind::PgHost if postgres::is_host(value) => {
            // The port is checked with the host once both are read (an entry may name one).
            if rules.postgres_hosts.lists_host(value) {
                true
            } else {
                return Err(format!(
                    "is not a host this deployment allows (POSTGRES_ALLOWED_HOSTS{}): a \
                     database host is a way into the operator's network",
                    if rules.postgres_hosts.is_empty() {
                        " lists none"
                    } else {
                        ""
                    }
                ));
            }
        }
        Kind::PgHost => false,
        Kind::PgName => is_pg_name(value),
        Kind::SslMode => matches!(value, "disable" | "prefer" | "require"),
        // Checked by `structured`.
        Kind::Port | Kind::PgTables => true,
        Kind::McpUrl => return mcp_source::check_url(value, &rules.mcp_allowed_hosts),
        Kind::McpAuth => mcp_source::AUTH_KINDS.contains(&value),
        Kind::HeaderName => return mcp_source::check_header_name(value),
        Kind::HeaderSecret => value.bytes().all(|b| (0x20..0x7f).contains(&b)),
        Kind::ToolName => {
            value.len() <= 128
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(describe(kind).to_owned())
    }
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Guid => "must be a GUID such as 00000000-0000-0000-0000-000000000000",
        Kind::Tenant => "must be a tenant GUID or domain such as contoso.onmicrosoft.com",
        Kind::Mailbox => "must be a mailbox GUID or user principal name such as ada@contoso.com",
        Kind::Alphanumeric => "must be letters and digits only",
        Kind::BoxSubjectType => "must be `enterprise` or `user`",
        Kind::Digits => "must be a numeric id",
        Kind::SnowflakeUrl => "must be an https Snowflake account URL",
        Kind::QualifiedName => "must be DATABASE.SCHEMA.SERVICE (unquoted identifiers)",
        Kind::Identifier => {
            "must be an unquoted identifier (letters, digits, _ and $, not starting with a digit)"
        }
        Kind::StageFile => "must be a staged YAML file such as @DB.SCHEMA.STAGE/models/sales.yaml",
        Kind::Secret => "must not contain control characters",
        Kind::PgHost => "must be a host name or IP address listed in POSTGRES_ALLOWED_HOSTS",
        Kind::Port => "must be a port number from 1 to 65535",
        Kind::PgName => {
            "must be a database or role name (letters, digits, _, $, . and -; at most 63)"
        }
        Kind::SslMode => "must be `require`, or `disable`/`prefer` for hosts allowed to skip TLS",
        Kind::PgTables => postgres::TABLES_HINT,
        Kind::McpUrl => mcp_source::URL_HINT,
        Kind::McpAuth => {
            "must be `none`, `bearer` (with `token`) or `header` (with `header_name` and `header_value`)"
        }
        Kind::HeaderName => mcp_source::HEADER_NAME_HINT,
        Kind::HeaderSecret => "must be printable ASCII (it is sent as an HTTP header value)",
        Kind::ToolName => "must be an MCP tool name: 1 to 128 letters, digits, `_`, `-` or `.`",
    }
}

/// Checks a Snowflake account URL: `https://<host>` with nothing after the host, the host
/// ending with one of `suffixes`. Used by the control plane on input and the gateway on use.
pub fn check_snowflake_url(value: &str, suffixes: &[String]) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|_| describe(Kind::SnowflakeUrl).to_owned())?;
    if url.scheme() != "https" {
        return Err("must use https".to_owned());
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.port().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("must be only https://<account host>, with no port, path or query".to_owned());
    }
    let host = url.host_str().unwrap_or_default().to_lowercase();
    if !suffixes
        .iter()
        .any(|s| host.len() > s.len() && host.ends_with(&s.to_lowercase()))
    {
        return Err(format!(
            "host must end with one of: {}",
            suffixes.join(", ")
        ));
    }
    Ok(())
}

fn is_guid(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::parse_str(value).is_ok()
}

fn is_domain(value: &str) -> bool {
    value.contains('.') && is_dns_name(value)
}

/// One or more DNS labels (letters, digits, inner `-`), at most 253 characters in all.
pub(super) fn is_dns_name(value: &str) -> bool {
    value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn is_pg_name(value: &str) -> bool {
    (1..=63).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_$.-".contains(c))
}

fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && value.len() <= 255
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// White space as `str::trim` removes it (Unicode `White_Space`), as a regex class body.
const WHITE_SPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const GUID_PATTERN: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const IDENTIFIER_PATTERN: &str = r"[A-Za-z_][A-Za-z0-9_$]{0,254}";

impl SourceType {
    /// A JSON schema of this type's `source_metadata`, stating the rules [`Self::validate`]
    /// applies: required fields, one pattern and length per field kind (of the value as given;
    /// the server trims white space first, and an optional field that is empty, blank or null
    /// counts as left out), and no other field. Lengths count characters where the server
    /// counts UTF-8 bytes (4,096 at most), which agree for ASCII. With `update`, secret fields
    /// may be left out (the stored value stays when the type does).
    pub fn metadata_schema(self, rules: &SourceRules, update: bool) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in self.fields() {
            if let Some(schema) = structured_schema(field.kind) {
                if field.required {
                    required.push(Value::String(field.name.to_owned()));
                }
                properties.insert(field.name.to_owned(), schema);
                continue;
            }
            let (pattern, max_length, description) = kind_schema(field.kind, rules);
            let mut schema = Map::new();
            let description = match field.default {
                Some(default) => format!("{description} Default `{default}`."),
                None => description.to_owned(),
            };
            let description = if matches!(field.kind, Kind::Secret | Kind::HeaderSecret) {
                format!(
                    "{description} Write-only: encrypted at rest and never shown again; on \
                     update, leaving it out keeps the stored value (same type only)."
                )
            } else {
                description
            };
            schema.insert("description".to_owned(), Value::String(description));
            if field.required
                && !(update && matches!(field.kind, Kind::Secret | Kind::HeaderSecret))
            {
                required.push(Value::String(field.name.to_owned()));
                schema.insert("type".to_owned(), "string".into());
                schema.insert("minLength".to_owned(), 1.into());
                schema.insert("pattern".to_owned(), format!("^(?:{pattern})$").into());
            } else {
                schema.insert("type".to_owned(), serde_json::json!(["string", "null"]));
                schema.insert(
                    "pattern".to_owned(),
                    format!("^(?:[{WHITE_SPACE}]*|{pattern})$").into(),
                );
            }
            schema.insert("maxLength".to_owned(), max_length.into());
            properties.insert(field.name.to_owned(), Value::Object(schema));
        }
        let notes = match self {
            Self::Mcp => mcp_source::SCHEMA_NOTES,
            _ => "",
        };
        serde_json::json!({
            "type": "object",
            "description": format!("The settings of a {} source.{notes}", self.as_str()),
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

/// The schema of a field that is not a flat string.
fn structured_schema(kind: Kind) -> Option<Value> {
    match kind {
        Kind::Port => Some(postgres::port_schema()),
        Kind::PgTables => Some(postgres::tables_schema()),
        _ => None,
    }
}

/// `(pattern without anchors, longest length, description)` of a field kind.
fn kind_schema(kind: Kind, rules: &SourceRules) -> (String, usize, &'static str) {
    let no_control = r"\x00-\x1f\x7f-\x9f";
    let (pattern, max) = match kind {
        Kind::Guid => (GUID_PATTERN.to_owned(), 36),
        Kind::Tenant => (
            format!(
                r"{GUID_PATTERN}|[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?)+"
            ),
            253,
        ),
        Kind::Mailbox => (
            format!(r"{GUID_PATTERN}|[A-Za-z0-9@._+'-]*@[A-Za-z0-9@._+'-]*"),
            320,
        ),
        Kind::Alphanumeric => ("[A-Za-z0-9]+".to_owned(), 128),
        Kind::BoxSubjectType => ("enterprise|user".to_owned(), 10),
        Kind::Digits => ("[0-9]+".to_owned(), 32),
        Kind::SnowflakeUrl => {
            let suffixes: Vec<String> = rules
                .snowflake_suffixes
                .iter()
                .map(|s| regex_escape(&s.to_lowercase()))
                .collect();
            (
                format!(
                    r"https://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?:{})/?",
                    suffixes.join("|")
                ),
                MAX_VALUE_LEN,
            )
        }
        Kind::QualifiedName => (
            format!(r"{IDENTIFIER_PATTERN}\.{IDENTIFIER_PATTERN}\.{IDENTIFIER_PATTERN}"),
            767,
        ),
        Kind::Identifier => (IDENTIFIER_PATTERN.to_owned(), 255),
        Kind::StageFile => (
            format!(r"@[^{no_control}{WHITE_SPACE}']*\.ya?ml"),
            MAX_VALUE_LEN,
        ),
        Kind::Secret => (
            format!(r"[^{no_control}]*[^{no_control}{WHITE_SPACE}][^{no_control}]*"),
            MAX_VALUE_LEN,
        ),
        Kind::PgHost => (postgres::HOST_PATTERN.to_owned(), 254),
        Kind::PgName => (r"[A-Za-z0-9_$.-]{1,63}".to_owned(), 63),
        Kind::SslMode => ("disable|prefer|require".to_owned(), 7),
        // Never asked: `structured_schema` answers for these.
        Kind::Port | Kind::PgTables => (String::new(), 0),
        Kind::McpUrl => (
            mcp_source::url_pattern(&rules.mcp_allowed_hosts),
            MAX_VALUE_LEN,
        ),
        // The patterns bound these lengths; a blank value (left out) may be longer.
        Kind::McpAuth => (mcp_source::AUTH_KINDS.join("|"), MAX_VALUE_LEN),
        Kind::HeaderName => (mcp_source::HEADER_NAME_PATTERN.to_owned(), MAX_VALUE_LEN),
        Kind::HeaderSecret => (
            format!(r"[{WHITE_SPACE}]*[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?[{WHITE_SPACE}]*"),
            MAX_VALUE_LEN,
        ),
        Kind::ToolName => ("[A-Za-z0-9_.-]{1,128}".to_owned(), MAX_VALUE_LEN),
    };
    (pattern, max, describe(kind))
}

/// Escapes the regex metacharacters of a literal (host suffixes: letters, digits, `.`, `-`).
pub(super) fn regex_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() * 2);
    for c in literal.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }
    fn suffixes() -> SourceRules {
        SourceRules {
            snowflake_suffixes: vec![".snowflakecomputing.com".to_owned()],
            mcp_allowed_hosts: vec!["127.0.0.1".to_owned()],
            ..SourceRules::default()
        }
    }

    #[test]
    fn outlook_metadata_splits_secrets_off() {
        let input = map(
            json!({"tenant_id": "Contoso.onmicrosoft.com", "client_id": "11111111-2222-3333-4444-555555555555",
            "client_secret": "s3cret", "user_id": "ada@contoso.com"}),
        );
        let ok = SourceType::Outlook
            .validate(&input, &Map::new(), &suffixes())
            .unwrap();
        assert_eq!(ok.secrets, map(json!({"client_secret": "s3cret"})));
        assert!(!ok.public.contains_key("client_secret"));
        assert_eq!(ok.public["tenant_id"], "contoso.onmicrosoft.com");
    }

    #[test]
    fn every_bad_field_is_named() {
        let input = map(
            json!({"tenant_id": "not a tenant", "client_id": 5, "user_id": "a/b@c", "extra": "x"}),
        );
        let problems = SourceType::Outlook
            .validate(&input, &Map::new(), &suffixes())
            .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "source_metadata.extra",
                "source_metadata.tenant_id",
                "source_metadata.client_id",
                "source_metadata.client_secret",
                "source_metadata.user_id"
            ]
        );
    }

    #[test]
    fn a_missing_secret_keeps_the_stored_one() {
        let input =
            map(json!({"client_id": "abc123", "subject_type": "enterprise", "subject_id": "42"}));
        let stored = map(json!({"client_secret": "old"}));
        let ok = SourceType::Box
            .validate(&input, &stored, &suffixes())
            .unwrap();
        assert_eq!(ok.secrets["client_secret"], "old");
    }

    #[test]
    fn snowflake_urls_must_be_https_on_an_allowed_suffix() {
        let base = json!({"pat": "p", "search_service": "DB.SCHEMA.SVC"});
        let with = |url: &str| {
            let mut m = map(base.clone());
            m.insert("account_url".into(), json!(url));
            SourceType::Snowflake.validate(&m, &Map::new(), &suffixes())
        };
        let ok = with("https://Org-Acct.snowflakecomputing.com/").unwrap();
        assert_eq!(
            ok.public["account_url"],
            "https://org-acct.snowflakecomputing.com"
        );
        assert_eq!(
            ok.public["id_column"], "ID",
            "documented defaults are filled in"
        );
        for bad in [
            "http://org-acct.snowflakecomputing.com",
            "https://evil.example.com",
            "https://snowflakecomputing.com",
            "https://x.snowflakecomputing.com.evil.com",
            "https://u:p@x.snowflakecomputing.com",
            "https://x.snowflakecomputing.com/path",
            "https://x.snowflakecomputing.com:8443",
            "not a url",
        ] {
            let problems = with(bad).unwrap_err();
            assert_eq!(problems[0].field, "source_metadata.account_url", "{bad}");
        }
    }

    #[test]
    fn identifiers_cannot_smuggle_sql_or_paths() {
        let m = map(
            json!({"account_url": "https://a.snowflakecomputing.com", "pat": "p", "search_service": "DB.S.SVC; drop",
            "id_column": "ID\"", "semantic_model_file": "@s/m.yaml' or 1=1"}),
        );
        let problems = SourceType::Snowflake
            .validate(&m, &Map::new(), &suffixes())
            .unwrap_err();
        assert_eq!(problems.len(), 3);
    }

    #[test]
    fn mcp_auth_fields_follow_the_auth_kind() {
        let with = |v: Value| SourceType::Mcp.validate(&map(v), &Map::new(), &suffixes());
        let ok =
            with(json!({"url": "https://MCP.example.com/mcp", "auth": "bearer", "token": "t0k"}))
                .unwrap();
        assert_eq!(ok.public["url"], "https://mcp.example.com/mcp");
        assert_eq!(ok.public["search_tool"], "search");
        assert_eq!(ok.secrets["token"], "t0k");
        let fields = |v: Value| -> Vec<String> {
            with(v).unwrap_err().into_iter().map(|p| p.field).collect()
        };
        assert_eq!(
            fields(
                json!({"url": "https://m.example.com", "auth": "header", "header_name": "Host"})
            ),
            [
                "source_metadata.header_name",
                "source_metadata.header_value"
            ]
        );
        assert_eq!(
            fields(json!({"url": "https://m.example.com", "token": "t"})),
            ["source_metadata.token"]
        );
        // A stored secret of another auth kind is dropped, not refused.
        let stored = map(json!({"token": "old"}));
        let ok = SourceType::Mcp
            .validate(
                &map(json!({"url": "http://127.0.0.1:9/mcp"})),
                &stored,
                &suffixes(),
            )
            .unwrap();
        assert!(ok.secrets.is_empty());
    }

    #[test]
    fn stdio_configurations_and_private_urls_are_refused_with_the_reason() {
        let problems = SourceType::Mcp
            .validate(
                &map(json!({"command": "/bin/sh", "url": "https://10.0.0.8/mcp"})),
                &Map::new(),
                &suffixes(),
            )
            .unwrap_err();
        assert_eq!(problems[0].field, "source_metadata.command");
        assert!(
            problems[0]
                .message
                .contains("never starts a user-given command")
        );
        assert_eq!(problems[1].field, "source_metadata.url");
    }
}
