//! The `snowflake` source type: a Cortex Search service (and Cortex Analyst when a semantic
//! model is set), called with a programmatic access token.

use secrecy::SecretString;
use url::Url;

use super::field::{
    Check, Field, IDENTIFIER, MAX_VALUE_LEN, NO_CONTROL, QUALIFIED_NAME, SECRET, ValidatedMetadata,
    WHITE_SPACE, def, ok_or_hint, opt, regex_escape, req,
};
use super::spec::TypeSpec;

pub const SPEC: TypeSpec = TypeSpec::plain("snowflake", FIELDS, "search_service");

const FIELDS: &[Field] = &[
    req("account_url", "Account URL", &ACCOUNT_URL),
    req("pat", "Programmatic access token (PAT)", &SECRET),
    req("search_service", "Cortex Search service", &QUALIFIED_NAME),
    def("id_column", "ID column", &IDENTIFIER, "ID"),
    def("title_column", "Title column", &IDENTIFIER, "TITLE"),
    def("text_column", "Text column", &IDENTIFIER, "CHUNK"),
    opt("url_column", "URL column", &IDENTIFIER),
    opt("semantic_model_file", "Semantic model file", &STAGE_FILE),
    opt("warehouse", "Warehouse", &IDENTIFIER),
    opt("role", "Role", &IDENTIFIER),
];

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

impl SnowflakeConfig {
    pub fn from_validated(fields: &ValidatedMetadata) -> Self {
        let service = fields.text("search_service");
        let mut parts = service.splitn(3, '.').map(str::to_owned);
        Self {
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
        }
    }
}

/// `https://<account>` on an allowed Snowflake host suffix, nothing after the host.
static ACCOUNT_URL: Check = Check::text(
    ACCOUNT_URL_HINT,
    |v, rules| check_snowflake_url(v, &rules.snowflake_suffixes),
    |rules| {
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
    },
)
.normalised(|v| v.trim_end_matches('/').to_lowercase());

const ACCOUNT_URL_HINT: &str = "must be an https Snowflake account URL";

/// A staged file such as `@DB.SCHEMA.STAGE/models/sales.yaml`.
static STAGE_FILE: Check = Check::text(
    "must be a staged YAML file such as @DB.SCHEMA.STAGE/models/sales.yaml",
    |v, _| {
        ok_or_hint(
            v.starts_with('@')
                && v.len() > 1
                && !v
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '\'')
                && (v.ends_with(".yaml") || v.ends_with(".yml")),
            STAGE_FILE.hint,
        )
    },
    |_| {
        (
            format!(r"@[^{NO_CONTROL}{WHITE_SPACE}']*\.ya?ml"),
            MAX_VALUE_LEN,
        )
    },
);

/// Checks a Snowflake account URL: `https://<host>` with nothing after the host, the host
/// ending with one of `suffixes`. Used by the control plane on input and the gateway on use.
pub fn check_snowflake_url(value: &str, suffixes: &[String]) -> Result<(), String> {
    let url = url::Url::parse(value).map_err(|_| ACCOUNT_URL_HINT.to_owned())?;
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
