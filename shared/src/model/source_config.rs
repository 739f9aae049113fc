//! Each source type's settings as one typed value, parsed once by the rules of
//! [`SourceType::validate`] (which also fills in the documented defaults): the control plane
//! validates with them, the gateway parses a loaded source into one. Secrets are
//! [`SecretString`]s, so formatting a configuration with `{:?}` shows none.

use secrecy::SecretString;
use serde_json::{Map, Value};
use url::Url;

use super::{
    postgres::{self, Table},
    source::{FieldProblem, SourceRules, SourceType, ValidatedMetadata},
};

/// A Microsoft Graph mailbox (`outlook`).
#[derive(Debug, Clone)]
pub struct OutlookConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Mailbox GUID or user principal name.
    pub user_id: String,
}

/// A Box account (`box`), client-credentials grant.
#[derive(Debug, Clone)]
pub struct BoxConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// `enterprise` or `user`.
    pub subject_type: String,
    pub subject_id: String,
}

/// A Snowflake Cortex Search service (`snowflake`), with Cortex Analyst when a semantic model
/// is set.
#[derive(Debug, Clone)]
pub struct SnowflakeConfig {
    /// `https://<account host>`, the host on an allowed suffix.
    pub account_url: Url,
    pub pat: SecretString,
    /// `search_service` split: `DATABASE.SCHEMA.SERVICE`.
    pub database: String,
    pub schema: String,
    pub service: String,
    pub id_column: String,
    pub title_column: String,
    pub text_column: String,
    pub url_column: Option<String>,
    pub semantic_model_file: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
}

/// A PostgreSQL database (`postgres`), read through a least-privilege role.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// A host name or IP address, lowercase; allowed by `POSTGRES_ALLOWED_HOSTS`.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: SecretString,
    pub sslmode: SslMode,
    /// The tables searched, in the configured order.
    pub tables: Vec<Table>,
}

/// How a `postgres` source uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Never (hosts in `POSTGRES_ALLOW_INSECURE_HOSTS` only).
    Disable,
    /// When the server offers it (hosts in `POSTGRES_ALLOW_INSECURE_HOSTS` only).
    Prefer,
    /// Always (the default).
    Require,
}

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

/// One source's configuration: a closed set, one variant per source type.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Outlook(OutlookConfig),
    Box(BoxConfig),
    /// Boxed: far larger than the others.
    Snowflake(Box<SnowflakeConfig>),
    Postgres(Box<PostgresConfig>),
    Mcp(McpConfig),
}

impl SourceConfig {
    /// Parses a source's stored settings (`metadata`) and decrypted `secrets` by the rules the
    /// control plane applies to input, with the Snowflake hosts allowed now.
    pub fn parse(
        source_type: SourceType,
        metadata: &Map<String, Value>,
        secrets: &Map<String, Value>,
        rules: &SourceRules,
    ) -> Result<Self, Vec<FieldProblem>> {
        let validated = source_type.validate(metadata, secrets, rules)?;
        Ok(Self::from_validated(source_type, &validated))
    }

    /// The typed form of metadata that passed [`SourceType::validate`].
    pub fn from_validated(source_type: SourceType, validated: &ValidatedMetadata) -> Self {
        let fields = Fields(validated);
        match source_type {
            SourceType::Outlook => Self::Outlook(OutlookConfig {
                tenant_id: fields.text("tenant_id"),
                client_id: fields.text("client_id"),
                client_secret: fields.secret("client_secret"),
                user_id: fields.text("user_id"),
            }),
            SourceType::Box => Self::Box(BoxConfig {
                client_id: fields.text("client_id"),
                client_secret: fields.secret("client_secret"),
                subject_type: fields.text("subject_type"),
                subject_id: fields.text("subject_id"),
            }),
            SourceType::Snowflake => {
                let service = fields.text("search_service");
                let mut parts = service.splitn(3, '.').map(str::to_owned);
                Self::Snowflake(Box::new(SnowflakeConfig {
                    account_url: Url::parse(&fields.text("account_url"))
                        .expect("validated as an https URL"),
                    pat: fields.secret("pat"),
                    database: parts.next().unwrap_or_default(),
                    schema: parts.next().unwrap_or_default(),
                    service: parts.next().unwrap_or_default(),
                    id_column: fields.text("id_column"),
                    title_column: fields.text("title_column"),
                    text_column: fields.text("text_column"),
                    url_column: fields.optional("url_column"),
                    semantic_model_file: fields.optional("semantic_model_file"),
                    warehouse: fields.optional("warehouse"),
                    role: fields.optional("role"),
                }))
            }
            SourceType::Postgres => Self::Postgres(Box::new(PostgresConfig {
                host: fields.text("host"),
                port: validated
                    .public
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(postgres::DEFAULT_PORT),
                database: fields.text("database"),
                user: fields.text("user"),
                password: fields.secret("password"),
                sslmode: match fields.text("sslmode").as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    _ => SslMode::Require,
                },
                tables: postgres::parse_tables(validated.public.get("tables")),
            })),
            SourceType::Mcp => Self::Mcp(McpConfig {
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
            }),
        }
    }

    /// The type this configuration is of.
    pub fn source_type(&self) -> SourceType {
        match self {
            Self::Outlook(_) => SourceType::Outlook,
            Self::Box(_) => SourceType::Box,
            Self::Snowflake(_) => SourceType::Snowflake,
            Self::Postgres(_) => SourceType::Postgres,
            Self::Mcp(_) => SourceType::Mcp,
        }
    }
}

/// Reads validated fields (required ones are present: validation said so).
struct Fields<'a>(&'a ValidatedMetadata);

impl Fields<'_> {
    fn optional(&self, name: &str) -> Option<String> {
        self.0
            .public
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn text(&self, name: &str) -> String {
        self.optional(name).unwrap_or_default()
    }

    fn secret(&self, name: &str) -> SecretString {
        let value = self.0.secrets.get(name).and_then(Value::as_str);
        SecretString::from(value.unwrap_or_default().to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn object(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn snowflake_settings_parse_once_with_defaults_and_hide_the_pat() {
        let suffixes = SourceRules::from_settings(&crate::config::SourceSettings::default());
        let config = SourceConfig::parse(
            SourceType::Snowflake,
            &object(
                &json!({"account_url": "https://acme.snowflakecomputing.com",
                "search_service": "DOCS.PUBLIC.SEARCH"}),
            ),
            &object(&json!({"pat": "pat-value"})),
            &suffixes,
        )
        .unwrap();
        let SourceConfig::Snowflake(snowflake) = &config else {
            panic!("{config:?}")
        };
        assert_eq!(
            (snowflake.id_column.as_str(), snowflake.text_column.as_str()),
            ("ID", "CHUNK")
        );
        assert_eq!(snowflake.service, "SEARCH");
        assert_eq!(snowflake.pat.expose_secret(), "pat-value");
        assert!(!format!("{config:?}").contains("pat-value"));
    }

    #[test]
    fn postgres_settings_parse_with_the_port_as_a_number_and_hide_the_password() {
        let local = postgres::HostList::parse(&["127.0.0.1".to_owned()]).unwrap();
        let rules = SourceRules {
            postgres_hosts: local.clone(),
            postgres_insecure_hosts: local,
            ..SourceRules::default()
        };
        let metadata = object(
            &json!({"host": "127.0.0.1", "port": "6543", "database": "crm",
            "user": "reader", "sslmode": "disable", "tables": [{"table": "public.tickets",
            "id_column": "id", "title_column": "subject", "text_columns": ["subject", "body"]}]}),
        );
        let validated = SourceType::Postgres
            .validate(&metadata, &object(&json!({"password": "pw-value"})), &rules)
            .unwrap();
        assert_eq!(validated.public["port"], 6543, "stored as a number");
        let SourceConfig::Postgres(config) =
            SourceConfig::from_validated(SourceType::Postgres, &validated)
        else {
            panic!("a postgres config")
        };
        assert_eq!((config.port, config.sslmode), (6543, SslMode::Disable));
        assert_eq!(config.tables[0].qualified(), "public.tickets");
        assert_eq!(config.password.expose_secret(), "pw-value");
        assert!(!format!("{config:?}").contains("pw-value"));

        let mut elsewhere = metadata.clone();
        elsewhere.insert("host".into(), json!("10.0.0.5"));
        let problems = SourceType::Postgres
            .validate(&elsewhere, &object(&json!({"password": "p"})), &rules)
            .unwrap_err();
        assert_eq!(problems[0].field, "source_metadata.host");
        let mut weak = metadata;
        weak.insert("host".into(), json!("db.example.com"));
        let rules = SourceRules {
            postgres_hosts: postgres::HostList::parse(&["db.example.com".to_owned()]).unwrap(),
            ..rules
        };
        let problems = SourceType::Postgres
            .validate(&weak, &object(&json!({"password": "p"})), &rules)
            .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["source_metadata.sslmode"]);
    }

    #[test]
    fn a_host_off_the_allowed_suffixes_is_a_problem_named_by_field() {
        let problems = SourceConfig::parse(
            SourceType::Snowflake,
            &object(&json!({"account_url": "https://evil.example", "search_service": "A.B.C"})),
            &object(&json!({"pat": "p"})),
            &SourceRules::from_settings(&crate::config::SourceSettings::default()),
        )
        .unwrap_err();
        assert!(
            describe_problems(&problems).starts_with("account_url host must end with"),
            "{problems:?}"
        );
    }
}
