//! Source types: one closed enum ([`SourceType`]) and one typed configuration per type
//! ([`SourceConfig`]). Each type lives in its own module, which states its fields once (name,
//! label, check, default: [`spec::TypeSpec`]) and parses them into its typed configuration;
//! validation, the OpenAPI schema and the console form are built from that table. Adding a
//! type: its module here, a variant in both enums below (the compiler then names every match,
//! here and in the gateway), its handler in the gateway, and a migration for the database's
//! type check.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strum::EnumCount;

pub mod box_files;
pub mod field;
pub mod mcp;
pub mod outlook;
pub mod postgres;
pub mod rules;
pub mod schema;
pub mod snowflake;
pub mod spec;
pub mod validate;

pub use box_files::BoxConfig;
pub use field::{FieldProblem, FieldShape, FieldSpec, ValidatedMetadata, describe_problems};
pub use mcp::{McpAuth, McpConfig};
pub use outlook::OutlookConfig;
pub use postgres::{PostgresConfig, SslMode};
pub use rules::SourceRules;
pub use snowflake::{SnowflakeConfig, check_snowflake_url};
use spec::TypeSpec;

/// A kind of upstream the gateway can search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumCount)]
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

impl SourceType {
    /// Every type, in declaration order (metrics index their tables by it). Its length is the
    /// number of variants, so a type missing here does not compile.
    pub const ALL: [SourceType; <SourceType as EnumCount>::COUNT] = [
        Self::Outlook,
        Self::Box,
        Self::Snowflake,
        Self::Postgres,
        Self::Mcp,
    ];

    /// What the type states about itself, from its own module.
    fn spec(self) -> &'static TypeSpec {
        match self {
            Self::Outlook => &outlook::SPEC,
            Self::Box => &box_files::SPEC,
            Self::Snowflake => &snowflake::SPEC,
            Self::Postgres => &postgres::SPEC,
            Self::Mcp => &mcp::SPEC,
        }
    }

    /// The name used in the API, the database and result ids.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// Parses a stored or requested type name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// This type's fields, in documentation order (forms build themselves from this).
    pub fn field_specs(self) -> impl Iterator<Item = FieldSpec> {
        self.spec().fields.iter().map(field::Field::spec)
    }

    /// Names of this type's secret fields.
    pub fn secret_fields(self) -> impl Iterator<Item = &'static str> {
        self.field_specs().filter(|f| f.secret).map(|f| f.name)
    }

    /// The field that tells one source of this type from another in a list.
    pub fn identity_field(self) -> &'static str {
        self.spec().identity
    }

    /// What a form calls the field `name` (the name itself for a field the type lacks).
    pub fn label_of(self, name: &str) -> String {
        self.field_specs()
            .find(|f| f.name == name)
            .map_or_else(|| name.to_owned(), |f| f.label.to_owned())
    }

    /// Validates `input` for this type. A secret field left out keeps its value from
    /// `stored_secrets` (an update that does not repeat the secret). Every problem is reported,
    /// not just the first.
    pub fn validate(
        self,
        input: &Map<String, Value>,
        stored_secrets: &Map<String, Value>,
        rules: &SourceRules,
    ) -> Result<ValidatedMetadata, Vec<FieldProblem>> {
        validate::validate(self.spec(), input, stored_secrets, rules)
    }

    /// A JSON schema of this type's `source_metadata` (see [`schema::metadata_schema`]).
    pub fn metadata_schema(self, rules: &SourceRules, update: bool) -> Value {
        schema::metadata_schema(self.spec(), rules, update)
    }
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
    pub fn from_validated(source_type: SourceType, fields: &ValidatedMetadata) -> Self {
        match source_type {
            SourceType::Outlook => Self::Outlook(OutlookConfig::from_validated(fields)),
            SourceType::Box => Self::Box(BoxConfig::from_validated(fields)),
            SourceType::Snowflake => {
                Self::Snowflake(Box::new(SnowflakeConfig::from_validated(fields)))
            }
            SourceType::Postgres => {
                Self::Postgres(Box::new(PostgresConfig::from_validated(fields)))
            }
            SourceType::Mcp => Self::Mcp(McpConfig::from_validated(fields)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_types_reference_describes_every_type() {
        let reference = include_str!("../../../../docs/source-types.md");
        for source_type in SourceType::ALL {
            let row = format!("| `{}` |", source_type.as_str());
            assert!(
                reference.contains(&row),
                "docs/source-types.md has no fields row for {source_type:?}"
            );
        }
    }
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
        let local = crate::hosts::HostList::parse(&["127.0.0.1".to_owned()]).unwrap();
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
            postgres_hosts: crate::hosts::HostList::parse(&["db.example.com".to_owned()]).unwrap(),
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
