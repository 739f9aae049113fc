//! A `postgres` source's `port` (a number or a numeric string) and `tables` (a list of
//! objects, checked field by field so every bad one is named, e.g.
//! `source_metadata.tables[1].text_columns`). Tables in the server's own schemas
//! (`pg_catalog`, `information_schema`, `pg_*`) are refused.

use serde_json::{Map, Value, json};

/// Most tables one source may search.
pub const MAX_TABLES: usize = 20;
/// Most text columns of one table.
pub const MAX_TEXT_COLUMNS: usize = 16;
/// Longest URL template, in bytes.
pub const MAX_URL_TEMPLATE: usize = 2048;
/// Longest identifier PostgreSQL keeps (longer ones are cut silently, so they are refused).
const MAX_IDENTIFIER: usize = 63;
/// What a URL template must contain: the row id goes there, URL-encoded.
pub const ID_PLACEHOLDER: &str = "{id}";

/// A port from 1 to 65535 as a string, without leading zeros.
const PORT_PATTERN: &str =
    "[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]";
/// The default port.
pub const DEFAULT_PORT: u16 = 5432;

/// The `port` as given (absent or null: 5432), or what is wrong with it.
pub fn port(value: Option<&Value>) -> Result<u16, &'static str> {
    const WRONG: &str = "must be a port number from 1 to 65535 (a number or a string of digits)";
    match value {
        None | Some(Value::Null) => Ok(DEFAULT_PORT),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (1.0..=65535.0).contains(f))
            .map(|f| f as u16)
            .ok_or(WRONG),
        Some(Value::String(s)) => {
            let digits =
                s.len() <= 5 && s.chars().all(|c| c.is_ascii_digit()) && !s.starts_with('0');
            match s.parse::<u16>() {
                Ok(port) if digits && port > 0 => Ok(port),
                _ => Err(WRONG),
            }
        }
        Some(_) => Err(WRONG),
    }
}

/// The schema of `port`.
pub fn port_schema() -> Value {
    json!({
        "description": "The server's port: a number or a string of digits, 1 to 65535. Default 5432. Stored as a number.",
        "type": ["integer", "string", "null"],
        "minimum": 1,
        "maximum": 65535,
        "pattern": format!("^(?:{PORT_PATTERN})$"),
    })
}

/// One table a source searches, as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub id_column: String,
    pub title_column: String,
    pub text_columns: Vec<String>,
    pub url_template: Option<String>,
}

impl Table {
    /// `schema.table`, as configured (the name in result ids).
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Reads a table from its stored (validated) form.
    fn from_value(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key)?.as_str().map(str::to_owned);
        let (schema, name) = text("table")?
            .split_once('.')
            .map(|(s, n)| (s.to_owned(), n.to_owned()))?;
        Some(Self {
            schema,
            name,
            id_column: text("id_column")?,
            title_column: text("title_column")?,
            text_columns: value
                .get("text_columns")?
                .as_array()?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            url_template: text("url_template"),
        })
    }
}

/// The tables of validated metadata (`tables` passed [`tables`]).
pub fn parse_tables(value: Option<&Value>) -> Vec<Table> {
    value
        .and_then(Value::as_array)
        .map(|tables| tables.iter().filter_map(Table::from_value).collect())
        .unwrap_or_default()
}

const TABLE_KEYS: [&str; 5] = [
    "table",
    "id_column",
    "title_column",
    "text_columns",
    "url_template",
];

/// Checks `tables` and returns its stored form, or every problem as `(path after the field
/// name, message)`, e.g. `("[1].text_columns", "…")`.
pub fn tables(value: &Value) -> Result<Value, Vec<(String, String)>> {
    let Some(list) = value
        .as_array()
        .filter(|l| (1..=MAX_TABLES).contains(&l.len()))
    else {
        return Err(vec![(
            String::new(),
            format!("must be an array of 1 to {MAX_TABLES} tables"),
        )]);
    };
    let mut problems = Vec::new();
    let mut stored = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let at = |key: &str| {
            if key.is_empty() {
                format!("[{index}]")
            } else {
                format!("[{index}].{key}")
            }
        };
        let Some(entry) = entry.as_object() else {
            problems.push((at(""), "must be an object".to_owned()));
            continue;
        };
        match table(entry) {
            Ok(table) => stored.push(table),
            Err(found) => problems.extend(found.into_iter().map(|(key, m)| (at(&key), m))),
        }
    }
    if problems.is_empty() {
        Ok(Value::Array(stored))
    } else {
        Err(problems)
    }
}

/// One table entry: its stored form, or its problems by key.
fn table(entry: &Map<String, Value>) -> Result<Value, Vec<(String, String)>> {
    let mut problems = Vec::new();
    for key in entry.keys() {
        if !TABLE_KEYS.contains(&key.as_str()) {
            problems.push((
                key.clone(),
                format!(
                    "is not a table setting (expected: {})",
                    TABLE_KEYS.join(", ")
                ),
            ));
        }
    }
    let mut string = |key: &str, ok: fn(&str) -> bool, what: &str| match entry.get(key) {
        Some(Value::String(s)) if ok(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            problems.push((key.to_owned(), what.to_owned()));
            None
        }
        None | Some(Value::Null) => {
            problems.push((key.to_owned(), "is required".to_owned()));
            None
        }
        Some(_) => {
            problems.push((key.to_owned(), "must be a string".to_owned()));
            None
        }
    };
    let name = string("table", is_qualified, QUALIFIED_HINT);
    let id_column = string("id_column", is_identifier, IDENTIFIER_HINT);
    let title_column = string("title_column", is_identifier, IDENTIFIER_HINT);
    let name = name.filter(|name| {
        let system = is_system_table(name);
        if system {
            problems.push(("table".to_owned(), SYSTEM_SCHEMA_HINT.to_owned()));
        }
        !system
    });
    let text_columns = match entry.get("text_columns") {
        Some(Value::Array(columns))
            if (1..=MAX_TEXT_COLUMNS).contains(&columns.len())
                && columns
                    .iter()
                    .all(|c| c.as_str().is_some_and(is_identifier)) =>
        {
            Some(columns.clone())
        }
        None | Some(Value::Null) => {
            problems.push(("text_columns".to_owned(), "is required".to_owned()));
            None
        }
        Some(_) => {
            problems.push(("text_columns".to_owned(), TEXT_COLUMNS_HINT.to_owned()));
            None
        }
    };
    let url_template = match entry.get("url_template") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_url_template(s) => Some(s.clone()),
        Some(_) => {
            problems.push(("url_template".to_owned(), URL_TEMPLATE_HINT.to_owned()));
            None
        }
    };
    match (name, id_column, title_column, text_columns) {
        (Some(table), Some(id_column), Some(title_column), Some(text_columns))
            if problems.is_empty() =>
        {
            let mut stored = json!({"table": table, "id_column": id_column,
                "title_column": title_column, "text_columns": text_columns});
            if let Some(template) = url_template {
                stored["url_template"] = template.into();
            }
            Ok(stored)
        }
        _ => Err(problems),
    }
}

const IDENTIFIER_HINT: &str = "must be a plain identifier (letters, digits, _ and $, not starting with a digit, at most 63 characters)";
const QUALIFIED_HINT: &str =
    "must be schema.table, two plain identifiers (letters, digits, _ and $; at most 63 each)";
const TEXT_COLUMNS_HINT: &str =
    "must be an array of 1 to 16 plain identifiers (letters, digits, _ and $; at most 63 each)";
const URL_TEMPLATE_HINT: &str = "must be an http(s) URL of at most 2048 characters (letters, digits and -._~:/?#@!$&'()*+,;=%) containing {id}, e.g. https://crm.example.com/tickets/{id}";

/// What `tables` must look like, in a sentence (forms show it).
pub const TABLES_HINT: &str = "must be a JSON array of 1 to 20 tables, each {\"table\": \"schema.table\", \"id_column\", \"title_column\", \"text_columns\": [...], \"url_template\" (optional, with {id})}";

const SYSTEM_SCHEMA_HINT: &str = "must not be in a system schema (pg_catalog, information_schema, pg_toast or any pg_* schema): they describe the server and its roles, not a tenant's data";

/// A table of the server's own schemas: the catalog (`pg_catalog.pg_authid` holds password
/// hashes), `information_schema`, `pg_toast` and the rest of `pg_*`. A role may read much of
/// them by default, so a source's role being least-privilege does not keep them out.
fn is_system_table(qualified: &str) -> bool {
    qualified.split_once('.').is_some_and(|(schema, _)| {
        let schema = schema.to_ascii_lowercase();
        schema.starts_with("pg_") || schema == "information_schema"
    })
}

fn is_identifier(value: &str) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && value.len() <= MAX_IDENTIFIER
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

fn is_qualified(value: &str) -> bool {
    value
        .split_once('.')
        .is_some_and(|(schema, table)| is_identifier(schema) && is_identifier(table))
}

/// Characters a URL template may hold besides `{id}`: RFC 3986's unreserved and reserved
/// characters and `%`, without `[` and `]` (an IPv6 host is not worth the ambiguity).
const URL_CHARS: &str = "-._~:/?#@!$&'()*+,;=%";

fn is_url_template(value: &str) -> bool {
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    else {
        return false;
    };
    value.len() <= MAX_URL_TEMPLATE
        && value.contains(ID_PLACEHOLDER)
        && rest
            .split(ID_PLACEHOLDER)
            .flat_map(str::chars)
            .all(|c| c.is_ascii_alphanumeric() || URL_CHARS.contains(c))
}

const IDENTIFIER_PATTERN: &str = r"[A-Za-z_][A-Za-z0-9_$]{0,62}";
/// One character of a URL template, or `{id}`, as the schema states it ([`URL_CHARS`]).
const URL_PART: &str = r"(?:[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]|\{id\})";

/// The schema of `tables`.
pub fn tables_schema() -> Value {
    let identifier = format!("^{IDENTIFIER_PATTERN}$");
    json!({
        "description": format!("The tables searched: 1 to {MAX_TABLES}. Identifiers are plain (unquoted) names, matched as written (they are quoted in SQL, so case matters). `url_template` builds each row's URL: `{{id}}` is replaced by the URL-encoded row id."),
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_TABLES,
        "items": {
            "type": "object",
            "properties": {
                "table": {"type": "string", "description": "schema.table", "pattern": format!("^{IDENTIFIER_PATTERN}\\.{IDENTIFIER_PATTERN}$")},
                "id_column": {"type": "string", "pattern": identifier},
                "title_column": {"type": "string", "pattern": identifier},
                "text_columns": {"type": "array", "minItems": 1, "maxItems": MAX_TEXT_COLUMNS,
                    "items": {"type": "string", "pattern": identifier}},
                "url_template": {"type": ["string", "null"], "maxLength": MAX_URL_TEMPLATE,
                    "pattern": format!("^https?://{URL_PART}*\\{{id\\}}{URL_PART}*$")},
            },
            "required": ["table", "id_column", "title_column", "text_columns"],
            "additionalProperties": false,
        },
    })
}

/// The row's URL from a table's template: `{id}` replaced by the id, percent-encoded.
pub fn row_url(template: &str, row_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(row_id.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    template.replace(ID_PLACEHOLDER, &encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_schemas_are_refused() {
        for system in [
            "pg_catalog.pg_authid",
            "information_schema.tables",
            "pg_toast.pg_toast_1",
            "PG_temp_3.t",
            "Information_Schema.x",
        ] {
            let problems = tables(&json!([{"table": system, "id_column": "oid", "title_column": "rolname", "text_columns": ["rolname"]}])).unwrap_err();
            assert_eq!(problems.len(), 1, "{system}");
            assert_eq!(problems[0].0, "[0].table", "{system}");
            assert!(problems[0].1.contains("system schema"), "{system}");
        }
        assert!(tables(&json!([{"table": "pgdata.docs", "id_column": "id", "title_column": "t", "text_columns": ["t"]}])).is_ok());
    }

    #[test]
    fn ports_are_numbers_or_digit_strings() {
        assert_eq!(port(None), Ok(5432));
        assert_eq!(port(Some(&json!(6543))), Ok(6543));
        assert_eq!(port(Some(&json!("6543"))), Ok(6543));
        for bad in [
            json!(0),
            json!(65536),
            json!("065"),
            json!(" 5432"),
            json!(1.5),
            json!(true),
        ] {
            assert!(port(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_table_field_is_named_by_its_path() {
        let problems = tables(&json!([
            {"table": "public.docs", "id_column": "id", "title_column": "title", "text_columns": ["body"]},
            {"table": "docs", "id_column": "id\"; drop", "title_column": 5, "text_columns": [], "extra": 1},
        ]))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "[1].extra",
                "[1].table",
                "[1].id_column",
                "[1].title_column",
                "[1].text_columns"
            ]
        );
        assert!(tables(&json!([])).is_err());
        assert!(tables(&json!("public.docs")).is_err());
    }

    #[test]
    fn url_templates_are_plain_urls_with_the_placeholder() {
        for good in [
            "https://x.example/t/{id}",
            "http://x.example/?a={id}&b=%20{id}",
        ] {
            assert!(is_url_template(good), "{good}");
        }
        for bad in [
            "https://x.example/t/",
            "ftp://x.example/{id}",
            "http://[{id}",
            "https://x.example/{id} ",
            "https://x.example/{i}{id}",
            "javascript:alert({id})",
        ] {
            assert!(!is_url_template(bad), "{bad}");
        }
    }

    #[test]
    fn row_urls_encode_the_id() {
        assert_eq!(
            row_url("https://x.example/t/{id}", "a b/c?d"),
            "https://x.example/t/a%20b%2Fc%3Fd"
        );
    }
}
