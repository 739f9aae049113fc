//! The `postgres` source type: a PostgreSQL database read through a least-privilege role, its
//! host allowed by `POSTGRES_ALLOWED_HOSTS` (a database host is a way into the operator's
//! network), never the product's own database.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::field::{
    Check, Field, FieldProblem, FieldShape, SECRET, Structured, ValidatedMetadata, def, ok_or_hint,
    req,
};
use super::rules::SourceRules;
use super::spec::TypeSpec;
use crate::hosts::{self, HOST_PATTERN};

pub mod tables;

pub use tables::{DEFAULT_PORT, Table};

pub const SPEC: TypeSpec = TypeSpec {
    cross_check: address_problems,
    ..TypeSpec::plain("postgres", FIELDS, "database")
};

const FIELDS: &[Field] = &[
    req("host", "Host", &HOST),
    def("port", "Port", &PORT, "5432"),
    req("database", "Database", &NAME),
    req("user", "User (role)", &NAME),
    req("password", "Password", &SECRET),
    def("sslmode", "TLS (sslmode)", &SSLMODE, "require"),
    req("tables", "Tables", &TABLES),
];

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

impl PostgresConfig {
    pub fn from_validated(fields: &ValidatedMetadata) -> Self {
        Self {
            host: fields.text("host"),
            port: fields
                .public
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(DEFAULT_PORT),
            database: fields.text("database"),
            user: fields.text("user"),
            password: fields.secret("password"),
            sslmode: match fields.text("sslmode").as_str() {
                "disable" => SslMode::Disable,
                "prefer" => SslMode::Prefer,
                _ => SslMode::Require,
            },
            tables: tables::parse_tables(fields.public.get("tables")),
        }
    }
}

/// A database host (name or IP address) listed in `POSTGRES_ALLOWED_HOSTS`.
static HOST: Check = Check::text(
    "must be a host name or IP address listed in POSTGRES_ALLOWED_HOSTS",
    |v, rules| {
        if !hosts::is_host(v) {
            return Err(HOST.hint.to_owned());
        }
        // The port is checked with the host once both are read (an entry may name one).
        if rules.postgres_hosts.lists_host(v) {
            Ok(())
        } else {
            Err(format!(
                "is not a host this deployment allows (POSTGRES_ALLOWED_HOSTS{}): a \
                 database host is a way into the operator's network",
                if rules.postgres_hosts.is_empty() {
                    " lists none"
                } else {
                    ""
                }
            ))
        }
    },
    |_| (HOST_PATTERN.to_owned(), 254),
)
.normalised(|v| hosts::normal_host(&v));

/// A PostgreSQL database or role name (a startup parameter, never SQL).
static NAME: Check = Check::text(
    "must be a database or role name (letters, digits, _, $, . and -; at most 63)",
    |v, _| {
        ok_or_hint(
            (1..=63).contains(&v.len())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_$.-".contains(c)),
            NAME.hint,
        )
    },
    |_| (r"[A-Za-z0-9_$.-]{1,63}".to_owned(), 63),
);

/// `disable`, `prefer` or `require`.
static SSLMODE: Check = Check::text(
    "must be `require`, or `disable`/`prefer` for hosts allowed to skip TLS",
    |v, _| ok_or_hint(matches!(v, "disable" | "prefer" | "require"), SSLMODE.hint),
    |_| ("disable|prefer|require".to_owned(), 7),
);

/// A port, 1 to 65535: a number or a string of digits (stored as a number).
static PORT: Check = Check {
    structured: Some(Structured {
        parse: |value| {
            tables::port(value)
                .map(Value::from)
                .map_err(|message| vec![(String::new(), message.to_owned())])
        },
        schema: tables::port_schema,
    }),
    shape: FieldShape::Number,
    ..Check::text(
        "must be a port number from 1 to 65535",
        |_, _| Ok(()),
        |_| (String::new(), 0),
    )
};

/// The tables searched: an array of objects (see [`tables`]).
static TABLES: Check = Check {
    structured: Some(Structured {
        parse: |value| match value {
            None | Some(Value::Null) => Err(vec![(String::new(), "is required".to_owned())]),
            Some(value) => tables::tables(value),
        },
        schema: tables::tables_schema,
    }),
    shape: FieldShape::Json,
    ..Check::text(tables::TABLES_HINT, |_, _| Ok(()), |_| (String::new(), 0))
};

/// What the host and port break together: the product's own database, a port
/// `POSTGRES_ALLOWED_HOSTS` does not allow for the host (its entries may name one), or
/// `sslmode` `disable` or `prefer` for a host `POSTGRES_ALLOW_INSECURE_HOSTS` does not list.
fn address_problems(
    _input: &Map<String, Value>,
    out: &mut ValidatedMetadata,
    rules: &SourceRules,
    problems: &mut Vec<FieldProblem>,
) {
    let public = &out.public;
    let (Some(host), Some(port)) = (
        public.get("host").and_then(Value::as_str),
        public
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok()),
    ) else {
        return;
    };
    if rules
        .product_database
        .as_ref()
        .is_some_and(|db| db.is_named_by(host, port))
    {
        problems.push(FieldProblem::new("host", hosts::PRODUCT_DATABASE));
        return;
    }
    if !rules.postgres_hosts.allows_host(host, port) {
        problems.push(FieldProblem::new(
            "port",
            "is not a port POSTGRES_ALLOWED_HOSTS allows for this host (its entry names \
             another)",
        ));
    }
    let sslmode = public.get("sslmode").and_then(Value::as_str);
    if sslmode.is_some_and(|m| m != "require")
        && !rules.postgres_insecure_hosts.allows_host(host, port)
    {
        problems.push(FieldProblem::new(
            "sslmode",
            "must be `require` for this host (`disable` and `prefer` only for hosts \
             listed in POSTGRES_ALLOW_INSECURE_HOSTS)",
        ));
    }
}
